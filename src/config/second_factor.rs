//! The second factor: the key that seals TOTP secrets, and how a sign-in waits for its code.

use std::path::Path;
use std::time::Duration;

use clap::Args;
use secrecy::{ExposeSecret, SecretString};

use super::production::{MIN_SECRET_BITS, estimated_bits};
use super::{chrono_duration, secret};
use crate::application::MfaPolicy;
use crate::infrastructure::security::{EncryptionKey, SecretBox, resolve_mfa_keys};

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Second factor")]
pub struct SecondFactorConfig {
    /// Key that encrypts TOTP secrets at rest (XChaCha20-Poly1305): 32 random bytes in base64,
    /// standard or URL-safe (`openssl rand -base64 32`); refused if it is not 32 bytes.
    /// Required in production; in development a missing one is generated and kept in
    /// `mfa-encryption-key` beside the SQLite database (or in `./data`), owner-only. Keep it:
    /// what it encrypted opens with no other key.
    #[arg(
        long,
        env = "MFA_ENCRYPTION_KEY",
        hide_env_values = true,
        value_parser = secret,
        global = true
    )]
    pub mfa_encryption_key: Option<SecretString>,

    /// Retired encryption keys, comma-separated: what they encrypted still opens. Put the old
    /// MFA_ENCRYPTION_KEY here when you set a new one, and keep it while secrets it sealed
    /// remain.
    #[arg(
        long,
        env = "MFA_PREVIOUS_ENCRYPTION_KEYS",
        value_delimiter = ',',
        hide_env_values = true,
        value_parser = secret,
        global = true
    )]
    pub mfa_previous_encryption_keys: Vec<SecretString>,

    /// The name authenticator apps show for this service beside the account's email.
    #[arg(long, env = "MFA_ISSUER", default_value = "authgraph", global = true)]
    pub mfa_issuer: String,

    /// How long a sign-in whose password was right waits for its second-factor code.
    #[arg(long, env = "MFA_TICKET_TTL", default_value = "5m", value_parser = humantime::parse_duration, global = true)]
    pub mfa_ticket_ttl: Duration,

    /// Codes tried with one sign-in's ticket before it dies (the sign-in starts over).
    #[arg(long, env = "MFA_TICKET_ATTEMPTS", default_value_t = 5, global = true)]
    pub mfa_ticket_attempts: u32,
}

impl SecondFactorConfig {
    /// The second-factor service's policy; refuses a ticket lifetime too large to add to a
    /// date.
    pub fn policy(&self) -> anyhow::Result<MfaPolicy> {
        Ok(MfaPolicy {
            issuer: self.mfa_issuer.clone(),
            ticket_lifetime: chrono_duration(self.mfa_ticket_ttl, "MFA_TICKET_TTL")?,
            ticket_attempts: self.mfa_ticket_attempts.max(1),
        })
    }

    /// The sealer of TOTP secrets: MFA_ENCRYPTION_KEY, and MFA_PREVIOUS_ENCRYPTION_KEYS for
    /// what earlier keys sealed. In development (`dev_dir` set) a missing key is generated and
    /// kept in `dev_dir`.
    pub fn sealer(&self, dev_dir: Option<&Path>) -> anyhow::Result<SecretBox> {
        let previous: Vec<&str> = self
            .mfa_previous_encryption_keys
            .iter()
            .map(ExposeSecret::expose_secret)
            .collect();
        Ok(resolve_mfa_keys(
            self.mfa_encryption_key
                .as_ref()
                .map(ExposeSecret::expose_secret),
            &previous,
            dev_dir,
        )?)
    }

    /// Whether MFA_ENCRYPTION_KEY is set (otherwise development generates one).
    pub(super) fn key_is_configured(&self) -> bool {
        self.mfa_encryption_key.is_some()
    }

    /// What production refuses: a current key far from random. Only the current key: a
    /// previous one must still open what it sealed, weak or not, and a malformed key is
    /// refused in every mode where the keys are read.
    pub(super) fn production_findings(&self) -> Vec<String> {
        self.mfa_encryption_key
            .as_ref()
            .and_then(|key| weak_key("MFA_ENCRYPTION_KEY", key.expose_secret()))
            .into_iter()
            .collect()
    }
}

/// A well-formed encryption key whose bytes are far from random (zeros, a repeated word).
fn weak_key(name: &str, key: &str) -> Option<String> {
    let key = EncryptionKey::parse(key).ok()?;
    let bits = estimated_bits(key.bytes());
    (bits < MIN_SECRET_BITS).then(|| {
        format!(
            "{name} has about {bits:.0} bits of entropy; an encryption key must be 32 random \
             bytes: generate one with `openssl rand -base64 32` (and move the old one to \
             MFA_PREVIOUS_ENCRYPTION_KEYS)"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encryption_keys_need_entropy() {
        use base64::Engine;
        let encode = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
        assert!(weak_key("K", &encode(&[0; 32])).is_some());
        assert!(weak_key("K", &encode(b"passwordpasswordpasswordpassword")).is_some());
        for _ in 0..1000 {
            let random = EncryptionKey::generate_text().unwrap();
            assert!(weak_key("K", &random).is_none(), "{random}");
        }
        assert!(weak_key("K", "malformed: refused elsewhere").is_none());
    }
}
