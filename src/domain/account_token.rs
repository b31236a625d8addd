//! One-time tokens sent by email: password reset and email verification.

use chrono::{DateTime, Utc};

use super::{TokenHash, UserId};

/// What a one-time token lets its holder do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenPurpose {
    PasswordReset,
    EmailVerification,
}

impl TokenPurpose {
    /// The stable name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenPurpose::PasswordReset => "password_reset",
            TokenPurpose::EmailVerification => "email_verification",
        }
    }
}

/// A one-time token as stored: only its hash, whose it is, what for and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountToken {
    pub hash: TokenHash,
    pub user_id: UserId,
    pub purpose: TokenPurpose,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}
