//! Opaque tokens: random secrets whose hashes the server keeps.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

/// An opaque secret handed to a client: a refresh token, or the token in a password-reset or
/// email-verification link. 256 random bits, shown once and stored only as a hash. Never printed,
/// and wiped from memory when dropped.
pub struct OpaqueToken(SecretString);

impl OpaqueToken {
    /// A new token from the operating system's CSPRNG.
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
        getrandom::fill(bytes.as_mut_slice())?;
        Ok(Self(URL_SAFE_NO_PAD.encode(bytes.as_slice()).into()))
    }

    /// Wraps a token presented by a client.
    pub fn from_client(token: String) -> Self {
        Self(token.into())
    }

    /// The token to hand to the client.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// What is stored and looked up. A fast hash is enough: the token has 256 bits of entropy,
    /// so there is nothing to brute-force, unlike a password.
    pub fn hash(&self) -> TokenHash {
        TokenHash(hex(&Sha256::digest(self.expose().as_bytes())))
    }
}

impl fmt::Debug for OpaqueToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OpaqueToken(<redacted>)")
    }
}

/// The SHA-256 of an opaque token, lower-case hex: what is stored and looked up.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TokenHash(String);

impl TokenHash {
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
    use super::*;

    #[test]
    fn tokens_are_unique_url_safe_and_256_bits() {
        let a = OpaqueToken::generate().unwrap();
        let b = OpaqueToken::generate().unwrap();
        assert_ne!(a.expose(), b.expose());
        assert_eq!(a.expose().len(), 43, "32 bytes in unpadded base64url");
        assert!(
            a.expose()
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
    }

    #[test]
    fn a_token_hash_is_stable_and_reveals_nothing_of_the_token() {
        let token = OpaqueToken::from_client("abc".into());
        assert_eq!(
            token.hash().as_str(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(!format!("{token:?}").contains("abc"));
    }
}
