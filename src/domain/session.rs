//! A signed-in device: the server-side record behind a refresh token and the access tokens
//! issued from it. Revoking it ends them all at once.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::UserId;

/// A session's identifier, carried inside access tokens as `sid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionId(Uuid);

impl SessionId {
    /// A fresh, time-ordered identifier.
    pub fn generate() -> Self {
        Self(Uuid::now_v7())
    }

    /// Wraps an identifier read from storage or a token.
    pub fn from_uuid(id: Uuid) -> Self {
        Self(id)
    }

    /// The underlying UUID.
    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A session as stored: who, from where, and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id: SessionId,
    pub user_id: UserId,
    pub created_at: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
    /// The earlier of the idle deadline and the absolute one; moved forward on each refresh.
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
}

impl Session {
    /// Whether tokens of this session may still be used at `now`.
    pub fn is_active_at(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && now < self.expires_at
    }
}

/// An opaque refresh token: 256 random bits, shown to the client once and stored only as a
/// hash. Never printed.
pub struct RefreshToken(String);

impl RefreshToken {
    /// A new token from the operating system's CSPRNG.
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)?;
        Ok(Self(URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// Wraps a token presented by a client.
    pub fn from_client(token: String) -> Self {
        Self(token)
    }

    /// The token to hand to the client.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// What is stored and looked up. A fast hash is enough: the token has 256 bits of entropy,
    /// so there is nothing to brute-force, unlike a password.
    pub fn hash(&self) -> RefreshTokenHash {
        RefreshTokenHash(hex(&Sha256::digest(self.0.as_bytes())))
    }
}

impl fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RefreshToken(<redacted>)")
    }
}

/// The SHA-256 of a refresh token, lower-case hex.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RefreshTokenHash(String);

impl RefreshTokenHash {
    /// Wraps a hash read from storage.
    pub fn from_stored(hash: String) -> Self {
        Self(hash)
    }

    /// The hex digest.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn hex(bytes: &[u8]) -> String {
    use fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;

    fn session(expires_in: Duration, revoked: bool) -> Session {
        let now = Utc::now();
        Session {
            id: SessionId::generate(),
            user_id: UserId::generate(),
            created_at: now,
            last_used_at: now,
            expires_at: now + expires_in,
            revoked_at: revoked.then_some(now),
            user_agent: None,
            ip: None,
        }
    }

    #[test]
    fn a_session_is_active_until_it_expires_or_is_revoked() {
        let now = Utc::now();
        assert!(session(Duration::minutes(5), false).is_active_at(now));
        assert!(!session(Duration::minutes(-1), false).is_active_at(now));
        assert!(!session(Duration::minutes(5), true).is_active_at(now));
    }

    #[test]
    fn refresh_tokens_are_unique_url_safe_and_256_bits() {
        let a = RefreshToken::generate().unwrap();
        let b = RefreshToken::generate().unwrap();
        assert_ne!(a.expose(), b.expose());
        assert_eq!(a.expose().len(), 43, "32 bytes in unpadded base64url");
        assert!(
            a.expose()
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
    }

    #[test]
    fn a_refresh_token_hash_is_stable_and_reveals_nothing_of_the_token() {
        let token = RefreshToken::from_client("abc".into());
        assert_eq!(
            token.hash().as_str(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(!format!("{token:?}").contains("abc"));
    }
}
