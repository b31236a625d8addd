//! One-time tokens sent by email: password reset and email verification.

use chrono::{DateTime, Utc};

use super::{Email, TokenHash, UserId};

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

/// A one-time token as stored: only its hash, whose it is, what for, until when, and the
/// account state it was issued for: the address it was sent to and the account's credential
/// version. It works only while the account still has both, so a change of password, email
/// or suspension voids every link issued before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountToken {
    pub hash: TokenHash,
    pub user_id: UserId,
    pub purpose: TokenPurpose,
    /// The address the link is sent to.
    pub email: Email,
    pub credential_version: i64,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// A link that was just used: its account and the address it was sent to (which the
/// account still has).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsedToken {
    pub user_id: UserId,
    pub email: Email,
}
