//! Password hashing, access-token signing and secret handling.

mod jwt;
mod password;
mod secret;

pub use jwt::{JwtSettings, JwtTokens, key_id};
pub use password::{Argon2Hasher, HashPriority, HashingSettings};
pub use secret::{JWT_SECRET_MIN_BYTES, SecretError, resolve_jwt_secret};
