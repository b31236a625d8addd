//! One-time tokens sent by email: password reset and email verification.

use chrono::{DateTime, Utc};

use super::{Email, TokenHash, UserId};

/// What a one-time token lets its holder do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenPurpose {
    PasswordReset,
    EmailVerification,
    /// Sent to the address an account asked to move to: using it completes the move.
    EmailChange,
    /// "This wasn't me": sent to the address an account is leaving (with an email change) or
    /// has (with a security notice). For its whole window it gives the account back to that
    /// address, however the account changed since (see `AccountRecoveryStore::secure`), so it
    /// is bound to nothing but its account: a hijacker's later changes cannot void it.
    SecureAccount,
    /// Handed out by a sign-in whose password was right, for an account with a second
    /// factor: it completes that sign-in with a code, within minutes and a few tries.
    MfaTicket,
}

impl TokenPurpose {
    /// The stable name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenPurpose::PasswordReset => "password_reset",
            TokenPurpose::EmailVerification => "email_verification",
            TokenPurpose::EmailChange => "email_change",
            // The name it shipped with, as the cancel link of an email change.
            TokenPurpose::SecureAccount => "email_change_cancel",
            TokenPurpose::MfaTicket => "mfa_ticket",
        }
    }

    /// Whether a newer token of this purpose voids the account's earlier ones. Not a
    /// recovery link: a hijacker asking for another change must not void the owner's.
    pub fn replaces_earlier(self) -> bool {
        self != TokenPurpose::SecureAccount
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
    /// The account's address when the link was issued (for the links of a change, the one it
    /// moves from); the link is void once the account's address differs.
    pub email: Email,
    pub credential_version: i64,
    /// For the links of an email change: the address it moves to.
    pub target_email: Option<Email>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// A link that was just used: its account and the addresses it was issued with (which the
/// account still has, as its purpose requires).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsedToken {
    pub user_id: UserId,
    pub email: Email,
    pub target_email: Option<Email>,
    /// The account's credential version the link was issued for.
    pub credential_version: i64,
}

/// What giving an account back to its owner did (see `AccountRecoveryStore::secure`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Secured {
    pub user_id: UserId,
    /// The address the account is back at: the one the link was sent to.
    pub email: Email,
    pub sessions_ended: u64,
    /// Whether a second factor enrolled within the link's window was removed.
    pub factor_removed: bool,
    pub recovery_codes_removed: u64,
    /// Passkeys added within the link's window, removed (an older passkey is the owner's).
    pub passkeys_removed: u64,
    /// Links issued since, voided (recovery links to other addresses among them).
    pub links_voided: u64,
}
