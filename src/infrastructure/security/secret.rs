//! The JWT signing secret: from the environment, or in development generated once and kept
//! on disk beside the database so tokens survive restarts.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

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
    #[error("cannot read or write the development JWT secret at {path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the operating system's random source failed: {0}")]
    Random(getrandom::Error),
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
        (None, Some(dir)) => development_secret(&dir.join("jwt-secret")),
    }
}

fn development_secret(path: &Path) -> Result<Vec<u8>, SecretError> {
    let file_error = |source| SecretError::File {
        path: path.to_owned(),
        source,
    };
    match fs::read_to_string(path) {
        Ok(secret) if secret.trim().len() >= JWT_SECRET_MIN_BYTES => {
            return Ok(secret.trim().as_bytes().to_vec());
        }
        Ok(_) => {
            tracing::warn!(path = %path.display(), "the development JWT secret file is too short; replacing it");
            fs::remove_file(path).map_err(file_error)?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(file_error(e)),
    }
    let mut bytes = [0u8; 48];
    getrandom::fill(&mut bytes).map_err(SecretError::Random)?;
    let secret = URL_SAFE_NO_PAD.encode(bytes);
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(file_error)?;
    }
    write_owner_only(path, secret.as_bytes()).map_err(file_error)?;
    tracing::warn!(
        path = %path.display(),
        "JWT_SECRET is not set: generated a development secret and saved it (owner-only). \
         Set JWT_SECRET and APP_ENV=production for a real deployment."
    );
    Ok(secret.into_bytes())
}

fn write_owner_only(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(contents)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "an-adequately-long-secret-of-40-bytes!!!";

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
}
