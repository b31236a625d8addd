//! Password hashing, access-token signing, secrets encrypted at rest and secret handling.

mod jwt;
mod password;
mod secret;
mod secret_box;
mod signing_keys;
mod verified_tokens;
mod webauthn;

pub use jwt::{JwtSettings, JwtTokens};
pub use password::{Argon2Hasher, HashPriority, HashingSettings};
pub use secret::{
    JWT_SECRET_MIN_BYTES, JwtKeySettings, JwtKeys, SecretError, resolve_jwt_keys,
    resolve_jwt_secret, resolve_mfa_keys,
};
pub use secret_box::{ENCRYPTION_KEY_BYTES, EncryptionKey, KeyFormatError, SecretBox};
pub use signing_keys::{
    JwtAlgorithm, KeyError, SigningKey, VerifyingKey, from_private_pem, generate_pem, key_id,
    pem_blocks, previous_from_pem,
};
pub use webauthn::{WebauthnCeremonies, WebauthnSettings, WebauthnSettingsError};
