//! Secrets encrypted at rest (TOTP keys): XChaCha20-Poly1305 with a key from configuration.
//!
//! A sealed value is `v1.<key id>.<base64url(nonce ‖ ciphertext ‖ tag)>`. The key id (the first
//! 8 hex digits of the key's SHA-256) says which configured key opens it, so a new key can
//! take over sealing while the previous ones still open what they sealed. The nonce is 24
//! random bytes: XChaCha's nonce is long enough that random ones never collide in practice,
//! so no counter has to be kept in step across instances. The associated data binds the
//! value to its owner's id, so a value copied to another account's row does not open.

use std::fmt;

use base64::Engine;
use base64::alphabet;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, URL_SAFE_NO_PAD};
use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{Key, KeyInit, XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::application::ports::{SealError, SecretSealer};
use crate::domain::UserId;

/// The length of an encryption key: XChaCha20-Poly1305 takes 256 bits.
pub const ENCRYPTION_KEY_BYTES: usize = 32;

const VERSION: &str = "v1";
const NONCE_BYTES: usize = 24;
const TAG_BYTES: usize = 16;
/// Separates this use of the key from any other, and this format from a later one.
const PURPOSE: &[u8] = b"authgraph secret-box v1";

/// Why a configured key is unusable. The messages never show the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyFormatError {
    #[error("is not base64")]
    NotBase64,
    #[error("decodes to {0} bytes; {ENCRYPTION_KEY_BYTES} are needed")]
    WrongLength(usize),
}

/// A 256-bit encryption key, wiped from memory when dropped.
pub struct EncryptionKey(Zeroizing<[u8; ENCRYPTION_KEY_BYTES]>);

impl EncryptionKey {
    /// Reads a key written as base64 (standard or URL-safe, padded or not), as
    /// `openssl rand -base64 32` prints one.
    pub fn parse(text: &str) -> Result<Self, KeyFormatError> {
        let text = text.trim();
        let alphabet = if text.contains(['-', '_']) {
            &alphabet::URL_SAFE
        } else {
            &alphabet::STANDARD
        };
        let engine = GeneralPurpose::new(
            alphabet,
            GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
        );
        let decoded = Zeroizing::new(engine.decode(text).map_err(|_| KeyFormatError::NotBase64)?);
        let mut key = Zeroizing::new([0u8; ENCRYPTION_KEY_BYTES]);
        if decoded.len() != ENCRYPTION_KEY_BYTES {
            return Err(KeyFormatError::WrongLength(decoded.len()));
        }
        key.copy_from_slice(&decoded);
        Ok(Self(key))
    }

    /// A fresh random key, as base64 text (what `parse` reads).
    pub fn generate_text() -> Result<String, getrandom::Error> {
        let mut bytes = Zeroizing::new([0u8; ENCRYPTION_KEY_BYTES]);
        getrandom::fill(bytes.as_mut_slice())?;
        Ok(base64::engine::general_purpose::STANDARD.encode(bytes.as_slice()))
    }

    /// The key's bytes, for an entropy check.
    pub fn bytes(&self) -> &[u8] {
        self.0.as_slice()
    }

    /// The name a sealed value gives its key: not secret, it is stored beside every value.
    pub fn id(&self) -> String {
        Sha256::digest(self.0.as_slice())[..4]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

impl fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("EncryptionKey").field(&self.id()).finish()
    }
}

/// One configured key, ready to use.
struct SealingKey {
    id: String,
    cipher: XChaCha20Poly1305,
}

impl SealingKey {
    fn new(key: &EncryptionKey) -> Self {
        Self {
            id: key.id(),
            cipher: XChaCha20Poly1305::new(<&Key>::from(&*key.0)),
        }
    }
}

/// Seals with the current key; opens with the current key or any previous one.
pub struct SecretBox {
    current: SealingKey,
    previous: Vec<SealingKey>,
}

impl SecretBox {
    /// `previous` are retired keys, still needed to open what they sealed. A key given twice
    /// is kept once.
    pub fn new(current: &EncryptionKey, previous: &[EncryptionKey]) -> Self {
        let mut retired: Vec<&EncryptionKey> = Vec::new();
        for key in previous {
            if key.bytes() != current.bytes() && !retired.iter().any(|k| k.bytes() == key.bytes()) {
                retired.push(key);
            }
        }
        Self {
            current: SealingKey::new(current),
            previous: retired.into_iter().map(SealingKey::new).collect(),
        }
    }

    fn keys(&self) -> impl Iterator<Item = &SealingKey> {
        std::iter::once(&self.current).chain(&self.previous)
    }
}

/// What the tag authenticates besides the ciphertext: the purpose and the owner.
fn associated_data(owner: UserId) -> Vec<u8> {
    let mut aad = PURPOSE.to_vec();
    aad.extend_from_slice(owner.as_uuid().as_bytes());
    aad
}

impl SecretSealer for SecretBox {
    fn seal(&self, owner: UserId, secret: &[u8]) -> Result<String, SealError> {
        let mut nonce = [0u8; NONCE_BYTES];
        getrandom::fill(&mut nonce).map_err(|e| SealError::Random(e.to_string()))?;
        let aad = associated_data(owner);
        let ciphertext = self
            .current
            .cipher
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: secret,
                    aad: &aad,
                },
            )
            // Encryption fails only for messages of gigabytes.
            .map_err(|_| SealError::Corrupt)?;
        let mut body = Vec::with_capacity(NONCE_BYTES + ciphertext.len());
        body.extend_from_slice(&nonce);
        body.extend_from_slice(&ciphertext);
        Ok(format!(
            "{VERSION}.{}.{}",
            self.current.id,
            URL_SAFE_NO_PAD.encode(body)
        ))
    }

    fn open(&self, owner: UserId, sealed: &str) -> Result<Zeroizing<Vec<u8>>, SealError> {
        let mut parts = sealed.splitn(3, '.');
        let (Some(VERSION), Some(key_id), Some(body)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(SealError::Corrupt);
        };
        let body = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| SealError::Corrupt)?;
        if body.len() < NONCE_BYTES + TAG_BYTES {
            return Err(SealError::Corrupt);
        }
        let (nonce, ciphertext) = body.split_at(NONCE_BYTES);
        let nonce = XNonce::try_from(nonce).map_err(|_| SealError::Corrupt)?;
        let aad = associated_data(owner);
        let mut candidates = self.keys().filter(|k| k.id == key_id).peekable();
        if candidates.peek().is_none() {
            return Err(SealError::UnknownKey(key_id.to_owned()));
        }
        // Two keys share an id only by a 1-in-4-billion accident; then each is tried.
        candidates
            .find_map(|key| {
                key.cipher
                    .decrypt(
                        &nonce,
                        Payload {
                            msg: ciphertext,
                            aad: &aad,
                        },
                    )
                    .ok()
            })
            .map(Zeroizing::new)
            .ok_or(SealError::Corrupt)
    }

    fn needs_reseal(&self, sealed: &str) -> bool {
        sealed
            .split('.')
            .nth(1)
            .is_some_and(|key_id| key_id != self.current.id)
    }
}

impl fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretBox")
            .field("current", &self.current.id)
            .field(
                "previous",
                &self.previous.iter().map(|k| &k.id).collect::<Vec<_>>(),
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_A: &str = "q3d5xX1JQ0b9Cw4m7V2e8kYtZlR6uNpHsGfJ0aIoBcM=";
    const KEY_B: &str = "Zm9vYmFyYmF6cXV4cXV1eHF1dXpjb3JnZ3JhdWx0Z2E=";
    const SECRET: &[u8] = b"12345678901234567890";

    fn key(text: &str) -> EncryptionKey {
        EncryptionKey::parse(text).unwrap()
    }

    fn one_key(text: &str) -> SecretBox {
        SecretBox::new(&key(text), &[])
    }

    #[test]
    fn a_sealed_secret_opens_for_its_owner() {
        let sealer = one_key(KEY_A);
        let owner = UserId::generate();
        let sealed = sealer.seal(owner, SECRET).unwrap();
        assert_eq!(sealer.open(owner, &sealed).unwrap().as_slice(), SECRET);
        assert!(
            sealed.starts_with(&format!("v1.{}.", key(KEY_A).id())),
            "{sealed}"
        );
        assert!(!sealed.contains("1234567890"), "{sealed}");
        let again = sealer.seal(owner, SECRET).unwrap();
        assert_ne!(sealed, again, "every seal draws a new nonce");
    }

    #[test]
    fn another_owner_cannot_open_it() {
        let sealer = one_key(KEY_A);
        let sealed = sealer.seal(UserId::generate(), SECRET).unwrap();
        assert!(matches!(
            sealer.open(UserId::generate(), &sealed),
            Err(SealError::Corrupt)
        ));
    }

    #[test]
    fn any_altered_byte_fails() {
        let sealer = one_key(KEY_A);
        let owner = UserId::generate();
        let sealed = sealer.seal(owner, SECRET).unwrap();
        let (prefix, body) = sealed.rsplit_once('.').unwrap();
        let body = URL_SAFE_NO_PAD.decode(body).unwrap();
        for i in 0..body.len() {
            let mut altered = body.clone();
            altered[i] ^= 0x01;
            let altered = format!("{prefix}.{}", URL_SAFE_NO_PAD.encode(&altered));
            assert!(
                matches!(sealer.open(owner, &altered), Err(SealError::Corrupt)),
                "byte {i}"
            );
        }
        for malformed in [
            "",
            "v1",
            "v1.abcd",
            "v2.x.y",
            &sealed.replacen("v1.", "v2.", 1),
            &format!("{prefix}.not*base64"),
            &format!("{prefix}.{}", URL_SAFE_NO_PAD.encode([0u8; 39])),
        ] {
            assert!(
                matches!(sealer.open(owner, malformed), Err(SealError::Corrupt)),
                "{malformed}"
            );
        }
    }

    #[test]
    fn a_previous_key_still_opens_what_it_sealed() {
        let owner = UserId::generate();
        let sealed_before = one_key(KEY_A).seal(owner, SECRET).unwrap();
        let rotated = SecretBox::new(&key(KEY_B), &[key(KEY_A)]);
        assert_eq!(
            rotated.open(owner, &sealed_before).unwrap().as_slice(),
            SECRET
        );
        let sealed_after = rotated.seal(owner, SECRET).unwrap();
        assert!(sealed_after.starts_with(&format!("v1.{}.", key(KEY_B).id())));
        assert!(matches!(
            one_key(KEY_A).open(owner, &sealed_after),
            Err(SealError::UnknownKey(_))
        ));
        assert!(rotated.needs_reseal(&sealed_before));
        assert!(!rotated.needs_reseal(&sealed_after));
    }

    #[test]
    fn an_unknown_key_is_named() {
        let owner = UserId::generate();
        let sealed = one_key(KEY_A).seal(owner, SECRET).unwrap();
        match one_key(KEY_B).open(owner, &sealed) {
            Err(error @ SealError::UnknownKey(_)) => {
                assert!(error.to_string().contains(&key(KEY_A).id()), "{error}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn keys_are_base64_of_32_bytes() {
        let standard = key(KEY_A);
        let url_safe = KEY_A.replace('+', "-").replace('/', "_");
        assert_eq!(key(url_safe.trim_end_matches('=')).id(), standard.id());
        assert_eq!(key(&format!("  {KEY_A}\n")).id(), standard.id());
        assert_eq!(
            EncryptionKey::parse("not base64!").unwrap_err(),
            KeyFormatError::NotBase64
        );
        assert_eq!(
            EncryptionKey::parse("c2hvcnQ=").unwrap_err(),
            KeyFormatError::WrongLength(5)
        );
        let generated = EncryptionKey::generate_text().unwrap();
        assert_eq!(key(&generated).bytes().len(), ENCRYPTION_KEY_BYTES);
        assert_ne!(generated, EncryptionKey::generate_text().unwrap());
    }

    #[test]
    fn the_same_key_twice_is_kept_once() {
        let sealer = SecretBox::new(&key(KEY_A), &[key(KEY_B), key(KEY_A), key(KEY_B)]);
        assert_eq!(sealer.previous.len(), 1);
    }

    #[test]
    fn debug_output_shows_no_key_or_secret() {
        let sealer = SecretBox::new(&key(KEY_A), &[key(KEY_B)]);
        let owner = UserId::generate();
        let opened = sealer
            .open(owner, &sealer.seal(owner, SECRET).unwrap())
            .unwrap();
        let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
        let shown = format!("{sealer:?} {:?} {:?}", key(KEY_A), key(KEY_B));
        for (name, text) in [("A", KEY_A), ("B", KEY_B)] {
            let bytes = key(text).bytes().to_vec();
            assert!(
                !shown.contains(text.trim_end_matches('=')),
                "key {name}: {shown}"
            );
            assert!(!shown.contains(&hex(&bytes)), "key {name}: {shown}");
            assert!(
                !shown.contains(&format!("{:?}", &bytes[..8])),
                "key {name}: {shown}"
            );
        }
        assert!(shown.contains(&key(KEY_A).id()), "ids are shown: {shown}");
        assert_eq!(opened.as_slice(), SECRET);
    }
}
