//! Access tokens: how they are signed, what they claim, how long they live, and where
//! verifiers find the keys.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use clap::Args;
use secrecy::{ExposeSecret, SecretString};

use super::production::{MIN_SECRET_BITS, estimated_bits};
use super::secret;
use crate::infrastructure::security::{
    JWT_SECRET_MIN_BYTES, JwtAlgorithm, JwtKeySettings, JwtKeys, JwtSettings, pem_blocks,
    resolve_jwt_keys,
};
use crate::interfaces::http::Discovery;

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Access tokens")]
pub struct TokenConfig {
    /// Secret that signs access tokens with HS256 (≥ 32 bytes: `openssl rand -base64 48`).
    /// Required in production under HS256; in development a missing one is generated and kept
    /// in `jwt-secret` beside the SQLite database (or in `./data`), owner-only. With ES256 or
    /// EdDSA it only verifies the tokens it signed before the switch.
    #[arg(
        long,
        env = "JWT_SECRET",
        hide_env_values = true,
        value_parser = secret,
        global = true
    )]
    pub jwt_secret: Option<SecretString>,

    /// Retired signing secrets, comma-separated: tokens they signed still verify until they
    /// expire. Put the old JWT_SECRET here when you set a new one.
    #[arg(
        long,
        env = "JWT_PREVIOUS_SECRETS",
        value_delimiter = ',',
        hide_env_values = true,
        value_parser = secret,
        global = true
    )]
    pub jwt_previous_secrets: Vec<SecretString>,

    /// How access tokens are signed: `ES256` (the default for new deployments), `EdDSA`, or
    /// `HS256` (a shared secret; the default while JWT_SECRET is set and no private key is).
    #[arg(
        long,
        env = "JWT_ALGORITHM",
        value_enum,
        ignore_case = true,
        global = true
    )]
    pub jwt_algorithm: Option<JwtAlgorithm>,

    /// The private key that signs access tokens (ES256 or EdDSA), PEM (PKCS#8, or SEC1 for
    /// P-256): `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256` or `openssl
    /// genpkey -algorithm ed25519`. Refused if it is not of JWT_ALGORITHM's kind. Required in
    /// production for those algorithms; in development a missing one is generated and kept in
    /// `jwt-es256-key.pem` or `jwt-eddsa-key.pem` beside the SQLite database (or in `./data`),
    /// owner-only.
    #[arg(
        long,
        env = "JWT_PRIVATE_KEY",
        hide_env_values = true,
        value_parser = secret,
        global = true
    )]
    pub jwt_private_key: Option<SecretString>,

    /// A file holding JWT_PRIVATE_KEY instead (a mounted secret); JWT_PRIVATE_KEY wins when
    /// both are set.
    #[arg(long, env = "JWT_PRIVATE_KEY_FILE", global = true)]
    pub jwt_private_key_file: Option<std::path::PathBuf>,

    /// Retired signing keys whose tokens still verify (and stay published) until they expire:
    /// PEM blocks one after the other, or comma-separated paths of PEM files. Private or
    /// public keys.
    #[arg(
        long,
        env = "JWT_PREVIOUS_KEYS",
        hide_env_values = true,
        value_parser = secret,
        global = true
    )]
    pub jwt_previous_keys: Option<SecretString>,

    /// `iss` claim of access tokens, checked on every request.
    #[arg(long, env = "JWT_ISSUER", default_value = "authgraph", global = true)]
    pub jwt_issuer: String,

    /// `aud` claim of access tokens, checked on every request.
    #[arg(long, env = "JWT_AUDIENCE", default_value = "authgraph", global = true)]
    pub jwt_audience: String,

    /// Lifetime of an access token (`expiresIn`).
    #[arg(long, env = "ACCESS_TOKEN_TTL", default_value = "15m", value_parser = humantime::parse_duration, global = true)]
    pub access_token_ttl: Duration,

    /// Access tokens whose ES256 or EdDSA signature is remembered once checked, so a session's
    /// later requests skip the check (bounded, least recently used out; expiry and the session
    /// are still checked on every request); 0 checks every signature every time.
    #[arg(
        long,
        env = "JWT_VERIFIED_TOKENS",
        default_value_t = 10_000,
        global = true
    )]
    pub jwt_verified_tokens: usize,

    /// The URL this service is reached at (e.g. `https://auth.example.com`), for the
    /// discovery document's `jwks_uri`. Default: JWT_ISSUER when it is a URL, else the
    /// address the server listens on.
    #[arg(long, env = "API_URL", global = true)]
    pub api_url: Option<String>,
}

impl TokenConfig {
    /// How access tokens are signed: JWT_ALGORITHM; otherwise HS256 for a deployment that has
    /// a JWT_SECRET and no private key (as before the choice existed), ES256 for a new one.
    pub fn algorithm(&self) -> JwtAlgorithm {
        let private_key = self.jwt_private_key.is_some() || self.jwt_private_key_file.is_some();
        self.jwt_algorithm
            .unwrap_or(if self.jwt_secret.is_some() && !private_key {
                JwtAlgorithm::Hs256
            } else {
                JwtAlgorithm::Es256
            })
    }

    /// The setting the signing key comes from, for the startup log; `None` when development
    /// generates it.
    pub(super) fn key_source(&self) -> Option<&'static str> {
        if self.algorithm().is_asymmetric() {
            if self.jwt_private_key.is_some() {
                Some("JWT_PRIVATE_KEY")
            } else if self.jwt_private_key_file.is_some() {
                Some("JWT_PRIVATE_KEY_FILE")
            } else {
                None
            }
        } else {
            self.jwt_secret.as_ref().map(|_| "JWT_SECRET")
        }
    }

    /// What signs and verifies access tokens, with their claims and lifetime. In development
    /// (`dev_dir` set) a missing key is generated and kept in `dev_dir`.
    pub fn settings(&self, dev_dir: Option<&Path>) -> anyhow::Result<JwtSettings> {
        let keys = self.keys(dev_dir)?;
        Ok(JwtSettings {
            signing: keys.signing,
            verifying: keys.verifying,
            issuer: self.jwt_issuer.clone(),
            audience: self.jwt_audience.clone(),
            lifetime: self.access_token_ttl,
            remembered: self.jwt_verified_tokens,
        })
    }

    /// The keys of access tokens, from JWT_ALGORITHM, JWT_PRIVATE_KEY(_FILE),
    /// JWT_PREVIOUS_KEYS, JWT_SECRET and JWT_PREVIOUS_SECRETS (see
    /// `security::resolve_jwt_keys`).
    fn keys(&self, dev_dir: Option<&Path>) -> anyhow::Result<JwtKeys> {
        let read = |path: &Path, setting: &str| {
            std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("cannot read {setting} {}: {e}", path.display()))
        };
        let private_key = match (&self.jwt_private_key, &self.jwt_private_key_file) {
            (Some(pem), _) => Some(pem.expose_secret().to_owned()),
            (None, Some(path)) => Some(read(path, "JWT_PRIVATE_KEY_FILE")?),
            (None, None) => None,
        };
        // PEM blocks, or the paths of files that hold them.
        let previous_keys = match self
            .jwt_previous_keys
            .as_ref()
            .map(ExposeSecret::expose_secret)
        {
            Some(text) if text.contains("-----BEGIN") => pem_blocks(text),
            Some(paths) => {
                let mut blocks = Vec::new();
                for path in paths.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                    blocks.extend(pem_blocks(&read(path.as_ref(), "JWT_PREVIOUS_KEYS")?));
                }
                blocks
            }
            None => Vec::new(),
        };
        let settings = JwtKeySettings {
            algorithm: self.algorithm(),
            secret: self.jwt_secret.as_ref().map(ExposeSecret::expose_secret),
            previous_secrets: self
                .jwt_previous_secrets
                .iter()
                .map(ExposeSecret::expose_secret)
                .collect(),
            private_key,
            previous_keys,
        };
        Ok(resolve_jwt_keys(&settings, dev_dir)?)
    }

    /// Where verifiers find the keys: API_URL, else JWT_ISSUER when it is a URL, else the
    /// address the server listens on.
    pub fn discovery(&self, listening: SocketAddr) -> Discovery {
        let is_url = |s: &str| s.starts_with("https://") || s.starts_with("http://");
        let base = match &self.api_url {
            Some(url) => url.clone(),
            None if is_url(&self.jwt_issuer) => self.jwt_issuer.clone(),
            None => format!("http://{listening}"),
        };
        Discovery {
            issuer: self.jwt_issuer.clone(),
            jwks_uri: format!("{}/.well-known/jwks.json", base.trim_end_matches('/')),
        }
    }

    /// What production refuses: a signing secret, current or retired, that could be guessed.
    pub(super) fn production_findings(&self) -> Vec<String> {
        let mut found = Vec::new();
        if let Some(secret) = &self.jwt_secret {
            found.extend(weak_secret("JWT_SECRET", secret.expose_secret()));
        }
        for (i, secret) in self.jwt_previous_secrets.iter().enumerate() {
            let name = format!("JWT_PREVIOUS_SECRETS (entry {})", i + 1);
            found.extend(weak_secret(&name, secret.expose_secret()));
        }
        found
    }
}

fn weak_secret(name: &str, secret: &str) -> Option<String> {
    let bytes = secret.len();
    let bits = estimated_bits(secret.as_bytes());
    (bytes < JWT_SECRET_MIN_BYTES || bits < MIN_SECRET_BITS).then(|| {
        format!(
            "{name} is {bytes} bytes with about {bits:.0} bits of entropy; a signing secret \
             needs at least 32 bytes and {MIN_SECRET_BITS:.0} bits: generate one with \
             `openssl rand -base64 48`"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_need_length_and_entropy() {
        let said = weak_secret("S", &"a".repeat(64)).unwrap();
        assert!(said.contains("about 0 bits"), "{said}");
        assert!(
            weak_secret("S", &"abcd".repeat(12)).is_some(),
            "2 bits a byte"
        );
        assert!(weak_secret("S", "short but random: 9f$Kq!").is_some());
        assert!(
            weak_secret(
                "S",
                "pYyU3mZ0c7mNnY5wZ3Nw2hQ0zvJc5F0b6wqQm1o4J9k5TqW8nVbR2xXl3sA7eD1g"
            )
            .is_none()
        );
        assert!(weak_secret("S", "test-secret-that-is-long-enough-for-hs256!").is_none());
    }
}
