//! The JWT signing secret and the key that encrypts TOTP secrets: from the environment, or in
//! development generated once and kept on disk beside the database, so tokens and enrolments
//! survive restarts.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::secret_box::{EncryptionKey, KeyFormatError, SecretBox};
use super::signing_keys::{
    self, JwtAlgorithm, KeyError, SigningKey, VerifyingKey, from_private_pem, previous_from_pem,
};

/// HS256 wants a key at least as long as its 256-bit output.
pub const JWT_SECRET_MIN_BYTES: usize = 32;

/// Why no usable secret could be found.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error(
        "JWT_SECRET is not set. In production the signing secret must come from the environment: \
         set JWT_SECRET to at least {JWT_SECRET_MIN_BYTES} random bytes, e.g. the output of \
         `openssl rand -base64 48`."
    )]
    Missing,
    #[error(
        "JWT_SECRET is {0} bytes long; at least {JWT_SECRET_MIN_BYTES} are needed. Generate one \
         with `openssl rand -base64 48`."
    )]
    TooShort(usize),
    #[error(
        "MFA_ENCRYPTION_KEY is not set. In production the key that encrypts TOTP secrets must \
         come from the environment: set MFA_ENCRYPTION_KEY to 32 random bytes in base64, e.g. \
         the output of `openssl rand -base64 32`, and keep it: what it encrypts opens with no \
         other key."
    )]
    MfaKeyMissing,
    #[error(
        "{setting} {problem}: it must be 32 random bytes in base64, e.g. the output of \
         `openssl rand -base64 32`"
    )]
    MalformedKey {
        setting: String,
        problem: KeyFormatError,
    },
    #[error("cannot read or write the development {setting} at {path}: {source}")]
    File {
        setting: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path} does not hold a usable development {setting}: set {setting}, or delete the file \
         to generate a new one (what the old one encrypted will no longer open)"
    )]
    UnusableFile {
        setting: &'static str,
        path: PathBuf,
    },
    #[error(
        "JWT_PRIVATE_KEY is not set. In production the key that signs access tokens with {0} \
         must come from the environment: set JWT_PRIVATE_KEY (or JWT_PRIVATE_KEY_FILE) to a PEM \
         private key, e.g. from `openssl genpkey -algorithm EC -pkeyopt \
         ec_paramgen_curve:P-256` (ES256) or `openssl genpkey -algorithm ed25519` (EdDSA)."
    )]
    JwtKeyMissing(&'static str),
    #[error("{setting} {problem}")]
    MalformedJwtKey { setting: String, problem: KeyError },
    #[error("the operating system's random source failed: {0}")]
    Random(getrandom::Error),
}

/// What the configuration says about the keys of access tokens.
pub struct JwtKeySettings<'a> {
    pub algorithm: JwtAlgorithm,
    pub secret: Option<&'a str>,
    pub previous_secrets: Vec<&'a str>,
    /// The PEM text of JWT_PRIVATE_KEY (or of the file JWT_PRIVATE_KEY_FILE names).
    pub private_key: Option<String>,
    /// The PEM blocks of JWT_PREVIOUS_KEYS.
    pub previous_keys: Vec<String>,
}

/// The keys that sign and verify access tokens: the signing key, then every key whose tokens
/// still verify (its own half first).
pub struct JwtKeys {
    pub signing: SigningKey,
    pub verifying: Vec<VerifyingKey>,
}

/// Picks the keys of access tokens. Secrets of retired HMAC keys (and JWT_SECRET after a
/// switch to a key pair) still verify what they signed; they are never published.
pub fn resolve_jwt_keys(
    settings: &JwtKeySettings<'_>,
    dev_dir: Option<&Path>,
) -> Result<JwtKeys, SecretError> {
    let algorithm = settings.algorithm;
    let (signing, own) = if algorithm.is_asymmetric() {
        let (setting, pem) = match (&settings.private_key, dev_dir) {
            (Some(pem), _) => ("JWT_PRIVATE_KEY".to_owned(), pem.clone()),
            (None, None) => return Err(SecretError::JwtKeyMissing(algorithm.name())),
            (None, Some(dir)) => {
                let generated_key = match algorithm {
                    JwtAlgorithm::EdDsa => &JWT_EDDSA_KEY,
                    _ => &JWT_ES256_KEY,
                };
                (
                    format!("the key in {}", dir.join(generated_key.file).display()),
                    generated(dir, generated_key)?,
                )
            }
        };
        from_private_pem(&pem, algorithm)
            .map_err(|problem| SecretError::MalformedJwtKey { setting, problem })?
    } else {
        let secret = resolve_jwt_secret(settings.secret, dev_dir)?;
        signing_keys::hmac(&secret)
    };
    let mut verifying = vec![own];
    for (i, pem) in settings.previous_keys.iter().enumerate() {
        verifying.push(
            previous_from_pem(pem).map_err(|problem| SecretError::MalformedJwtKey {
                setting: format!("JWT_PREVIOUS_KEYS (key {})", i + 1),
                problem,
            })?,
        );
    }
    let retired_secrets = settings
        .previous_secrets
        .iter()
        .chain(settings.secret.iter().filter(|_| algorithm.is_asymmetric()))
        .filter(|s| !s.is_empty());
    verifying.extend(retired_secrets.map(|s| signing_keys::hmac(s.as_bytes()).1));
    Ok(JwtKeys { signing, verifying })
}

/// Picks the signing secret. `dev_dir` is where a generated secret is kept; `None` means
/// production, where only the environment counts.
pub fn resolve_jwt_secret(
    configured: Option<&str>,
    dev_dir: Option<&Path>,
) -> Result<Vec<u8>, SecretError> {
    match (configured, dev_dir) {
        (Some(secret), None) if secret.len() < JWT_SECRET_MIN_BYTES => {
            Err(SecretError::TooShort(secret.len()))
        }
        (Some(secret), Some(_)) if secret.len() < JWT_SECRET_MIN_BYTES => {
            tracing::warn!(
                bytes = secret.len(),
                "JWT_SECRET is shorter than {JWT_SECRET_MIN_BYTES} bytes; production mode refuses this"
            );
            Ok(secret.as_bytes().to_vec())
        }
        (Some(secret), _) => Ok(secret.as_bytes().to_vec()),
        (None, None) => Err(SecretError::Missing),
        (None, Some(dir)) => Ok(generated(dir, &JWT_SECRET)?.into_bytes()),
    }
}

/// Builds the sealer of TOTP secrets from `MFA_ENCRYPTION_KEY` (`configured`) and
/// `MFA_PREVIOUS_ENCRYPTION_KEYS` (`previous`). A malformed key is refused in every mode: it
/// would encrypt with something other than what the operator meant, and nothing sealed could
/// be opened once it is corrected. `dev_dir` as for [`resolve_jwt_secret`].
pub fn resolve_mfa_keys(
    configured: Option<&str>,
    previous: &[&str],
    dev_dir: Option<&Path>,
) -> Result<SecretBox, SecretError> {
    let parse = |setting: String, text: &str| {
        EncryptionKey::parse(text).map_err(|problem| SecretError::MalformedKey { setting, problem })
    };
    let current = match (configured.filter(|k| !k.trim().is_empty()), dev_dir) {
        (Some(key), _) => parse("MFA_ENCRYPTION_KEY".into(), key)?,
        (None, None) => return Err(SecretError::MfaKeyMissing),
        (None, Some(dir)) => parse(
            format!("the key in {}", dir.join(MFA_KEY.file).display()),
            &generated(dir, &MFA_KEY)?,
        )?,
    };
    let previous = previous
        .iter()
        .enumerate()
        .filter(|(_, key)| !key.trim().is_empty())
        .map(|(i, key)| {
            parse(
                format!("MFA_PREVIOUS_ENCRYPTION_KEYS (entry {})", i + 1),
                key,
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(SecretBox::new(&current, &previous))
}

/// A secret development generates on first start and keeps in a file of its own, so what
/// it signed or sealed still checks out after a restart.
struct Generated {
    /// The setting that replaces it.
    setting: &'static str,
    /// The file's name in the development directory.
    file: &'static str,
    /// A fresh secret, as the text the file holds.
    make: fn() -> Result<String, getrandom::Error>,
    /// Whether a file's (trimmed) text is a usable secret.
    usable: fn(&str) -> bool,
    /// What to do with a file that is not: a signing secret is replaced (sessions sign in
    /// again), an encryption key is not (what it sealed would be lost for good), so the
    /// developer decides.
    replace_unusable: bool,
}

const JWT_SECRET: Generated = Generated {
    setting: "JWT_SECRET",
    file: "jwt-secret",
    make: || {
        let mut bytes = [0u8; 48];
        getrandom::fill(&mut bytes)?;
        Ok(URL_SAFE_NO_PAD.encode(bytes))
    },
    usable: |text| text.len() >= JWT_SECRET_MIN_BYTES,
    replace_unusable: true,
};

const JWT_ES256_KEY: Generated = Generated {
    setting: "JWT_PRIVATE_KEY",
    file: "jwt-es256-key.pem",
    make: || Ok(signing_keys::generate_pem(JwtAlgorithm::Es256)?.unwrap_or_default()),
    usable: |text| from_private_pem(text, JwtAlgorithm::Es256).is_ok(),
    replace_unusable: true,
};

const JWT_EDDSA_KEY: Generated = Generated {
    setting: "JWT_PRIVATE_KEY",
    file: "jwt-eddsa-key.pem",
    make: || Ok(signing_keys::generate_pem(JwtAlgorithm::EdDsa)?.unwrap_or_default()),
    usable: |text| from_private_pem(text, JwtAlgorithm::EdDsa).is_ok(),
    replace_unusable: true,
};

const MFA_KEY: Generated = Generated {
    setting: "MFA_ENCRYPTION_KEY",
    file: "mfa-encryption-key",
    make: EncryptionKey::generate_text,
    usable: |text| EncryptionKey::parse(text).is_ok(),
    replace_unusable: false,
};

/// The secret kept in `dir`, generated and saved (owner-only) the first time. Two processes
/// starting at once agree on one: the file appears whole, and only once.
fn generated(dir: &Path, secret: &Generated) -> Result<String, SecretError> {
    let path = dir.join(secret.file);
    let file_error = |source| SecretError::File {
        setting: secret.setting,
        path: path.clone(),
        source,
    };
    match fs::read_to_string(&path) {
        Ok(text) if (secret.usable)(text.trim()) => return Ok(text.trim().to_owned()),
        Ok(_) if secret.replace_unusable => {
            tracing::warn!(path = %path.display(), "the development {} file is unusable; replacing it", secret.setting);
            fs::remove_file(&path).map_err(file_error)?;
        }
        Ok(_) => {
            return Err(SecretError::UnusableFile {
                setting: secret.setting,
                path,
            });
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(file_error(e)),
    }
    let text = (secret.make)().map_err(SecretError::Random)?;
    fs::create_dir_all(dir).map_err(file_error)?;
    match write_owner_only(&path, text.as_bytes()) {
        Ok(()) => {}
        // Another process started at the same moment and saved its own first: use that.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return generated(dir, secret);
        }
        Err(e) => return Err(file_error(e)),
    }
    tracing::warn!(
        path = %path.display(),
        "{} is not set: generated a development one and saved it (owner-only). \
         Set {} and APP_ENV=production for a real deployment.",
        secret.setting,
        secret.setting,
    );
    Ok(text)
}

/// Writes `contents` to a new file at `path` readable by the owner only, and never over an
/// existing one. The file appears whole: written beside it, then linked into place (or, where
/// the file system has no hard links, written in place).
fn write_owner_only(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    static DRAFTS: AtomicU64 = AtomicU64::new(0);
    let mut draft = path.as_os_str().to_owned();
    draft.push(format!(
        ".{}-{}.tmp",
        std::process::id(),
        DRAFTS.fetch_add(1, Ordering::Relaxed)
    ));
    let draft = PathBuf::from(draft);
    let linked = create_owner_only(&draft, contents).and_then(|()| fs::hard_link(&draft, path));
    let _ = fs::remove_file(&draft);
    match linked {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
            create_owner_only(path, contents)
        }
        linked => linked,
    }
}

fn create_owner_only(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::application::ports::SecretSealer;
    use crate::domain::UserId;

    const GOOD: &str = "an-adequately-long-secret-of-40-bytes!!!";
    const KEY: &str = "q3d5xX1JQ0b9Cw4m7V2e8kYtZlR6uNpHsGfJ0aIoBcM=";
    const OLD_KEY: &str = "Zm9vYmFyYmF6cXV4cXV1eHF1dXpjb3JnZ3JhdWx0Z2E=";

    #[test]
    fn production_requires_a_long_enough_secret() {
        assert!(matches!(
            resolve_jwt_secret(None, None),
            Err(SecretError::Missing)
        ));
        assert!(matches!(
            resolve_jwt_secret(Some("short"), None),
            Err(SecretError::TooShort(5))
        ));
        assert_eq!(
            resolve_jwt_secret(Some(GOOD), None).unwrap(),
            GOOD.as_bytes()
        );
    }

    #[test]
    fn development_generates_a_secret_once_and_keeps_it_private() {
        let dir = tempfile::tempdir().unwrap();
        let first = resolve_jwt_secret(None, Some(dir.path())).unwrap();
        let second = resolve_jwt_secret(None, Some(dir.path())).unwrap();
        assert_eq!(first, second, "the secret survives restarts");
        assert!(first.len() >= JWT_SECRET_MIN_BYTES);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.path().join("jwt-secret"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn development_prefers_a_configured_secret() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            resolve_jwt_secret(Some(GOOD), Some(dir.path())).unwrap(),
            GOOD.as_bytes()
        );
        assert!(!dir.path().join("jwt-secret").exists());
    }

    #[test]
    fn production_requires_a_well_formed_mfa_key() {
        assert!(matches!(
            resolve_mfa_keys(None, &[], None),
            Err(SecretError::MfaKeyMissing)
        ));
        assert!(matches!(
            resolve_mfa_keys(Some("  "), &[], None),
            Err(SecretError::MfaKeyMissing)
        ));
        assert!(resolve_mfa_keys(Some(KEY), &[OLD_KEY, ""], None).is_ok());
    }

    #[test]
    fn a_malformed_mfa_key_is_refused_in_every_mode_without_showing_it() {
        let dir = tempfile::tempdir().unwrap();
        for dev_dir in [None, Some(dir.path())] {
            let short = "c2hvcnQta2V5LXNlY3JldA==";
            let error = resolve_mfa_keys(Some(short), &[], dev_dir).unwrap_err();
            let said = error.to_string();
            assert!(
                said.starts_with("MFA_ENCRYPTION_KEY decodes to 16 bytes; 32 are needed"),
                "{said}"
            );
            assert!(!said.contains(short), "{said}");

            let said = resolve_mfa_keys(Some(KEY), &[OLD_KEY, "not base64!"], dev_dir)
                .unwrap_err()
                .to_string();
            assert!(
                said.starts_with("MFA_PREVIOUS_ENCRYPTION_KEYS (entry 2) is not base64"),
                "{said}"
            );
            assert!(!said.contains("not base64!"), "{said}");
        }
        assert!(!dir.path().join("mfa-encryption-key").exists());
    }

    #[test]
    fn a_previous_mfa_key_opens_what_it_sealed() {
        let owner = UserId::generate();
        let sealed = resolve_mfa_keys(Some(OLD_KEY), &[], None)
            .unwrap()
            .seal(owner, b"totp")
            .unwrap();
        let rotated = resolve_mfa_keys(Some(KEY), &[OLD_KEY], None).unwrap();
        assert_eq!(rotated.open(owner, &sealed).unwrap().as_slice(), b"totp");
    }

    #[test]
    fn development_generates_an_mfa_key_once_and_keeps_it_private() {
        let dir = tempfile::tempdir().unwrap();
        let owner = UserId::generate();
        let sealed = resolve_mfa_keys(None, &[], Some(dir.path()))
            .unwrap()
            .seal(owner, b"totp")
            .unwrap();
        let restarted = resolve_mfa_keys(None, &[], Some(dir.path())).unwrap();
        assert_eq!(
            restarted.open(owner, &sealed).unwrap().as_slice(),
            b"totp",
            "the key survives restarts"
        );
        let path = dir.path().join("mfa-encryption-key");
        let text = fs::read_to_string(&path).unwrap();
        assert!(
            EncryptionKey::parse(&text).is_ok(),
            "{text} is what MFA_ENCRYPTION_KEY takes"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let leftovers: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(leftovers, ["mfa-encryption-key"]);
    }

    #[test]
    fn development_prefers_a_configured_mfa_key() {
        let dir = tempfile::tempdir().unwrap();
        let owner = UserId::generate();
        let sealed = resolve_mfa_keys(Some(KEY), &[], None)
            .unwrap()
            .seal(owner, b"totp")
            .unwrap();
        let sealer = resolve_mfa_keys(Some(KEY), &[], Some(dir.path())).unwrap();
        assert_eq!(sealer.open(owner, &sealed).unwrap().as_slice(), b"totp");
        assert!(!dir.path().join("mfa-encryption-key").exists());
    }

    #[test]
    fn development_keeps_an_unusable_mfa_key_file_for_the_developer_to_decide() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mfa-encryption-key");
        fs::write(&path, "half a key").unwrap();
        let said = resolve_mfa_keys(None, &[], Some(dir.path()))
            .unwrap_err()
            .to_string();
        assert!(
            said.contains("does not hold a usable development MFA_ENCRYPTION_KEY"),
            "{said}"
        );
        assert_eq!(fs::read_to_string(&path).unwrap(), "half a key");
    }

    #[test]
    fn processes_starting_at_once_agree_on_one_generated_secret() {
        let dir = tempfile::tempdir().unwrap();
        let keys: Vec<String> = std::thread::scope(|scope| {
            let starts: Vec<_> = (0..8)
                .map(|_| scope.spawn(|| generated(dir.path(), &MFA_KEY).unwrap()))
                .collect();
            starts.into_iter().map(|s| s.join().unwrap()).collect()
        });
        assert!(keys.iter().all(|k| *k == keys[0]), "{keys:?}");
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no drafts left"
        );
    }
}
