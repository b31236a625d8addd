//! The security audit trail: who did what to which account, when and from where.

use std::fmt;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::UserId;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditKind {
    Registered,
    LoginSucceeded,
    LoginFailed,
    LoggedOut,
    SessionRevoked,
    RefreshTokenReused,
    PasswordChanged,
    PasswordResetRequested,
    PasswordReset,
    EmailChanged,
    EmailVerified,
    ProfileUpdated,
    RoleChanged,
    Suspended,
    Unsuspended,
    AccountDeleted,
    EmailChangeRequested,
    EmailChangeCancelled,
    MfaEnabled,
    MfaDisabled,
    MfaReset,
    MfaFailed,
    RecoveryCodeUsed,
    RecoveryCodesRegenerated,
    AccountSecured,
    SecurityNoticeSent,
}

impl AuditKind {
    pub const ALL: [AuditKind; 26] = [
        AuditKind::Registered,
        AuditKind::LoginSucceeded,
        AuditKind::LoginFailed,
        AuditKind::LoggedOut,
        AuditKind::SessionRevoked,
        AuditKind::RefreshTokenReused,
        AuditKind::PasswordChanged,
        AuditKind::PasswordResetRequested,
        AuditKind::PasswordReset,
        AuditKind::EmailChanged,
        AuditKind::EmailVerified,
        AuditKind::ProfileUpdated,
        AuditKind::RoleChanged,
        AuditKind::Suspended,
        AuditKind::Unsuspended,
        AuditKind::AccountDeleted,
        AuditKind::EmailChangeRequested,
        AuditKind::EmailChangeCancelled,
        AuditKind::MfaEnabled,
        AuditKind::MfaDisabled,
        AuditKind::MfaReset,
        AuditKind::MfaFailed,
        AuditKind::RecoveryCodeUsed,
        AuditKind::RecoveryCodesRegenerated,
        AuditKind::AccountSecured,
        AuditKind::SecurityNoticeSent,
    ];

    /// The stable name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditKind::Registered => "registered",
            AuditKind::LoginSucceeded => "login_succeeded",
            AuditKind::LoginFailed => "login_failed",
            AuditKind::LoggedOut => "logged_out",
            AuditKind::SessionRevoked => "session_revoked",
            AuditKind::RefreshTokenReused => "refresh_token_reused",
            AuditKind::PasswordChanged => "password_changed",
            AuditKind::PasswordResetRequested => "password_reset_requested",
            AuditKind::PasswordReset => "password_reset",
            AuditKind::EmailChanged => "email_changed",
            AuditKind::EmailVerified => "email_verified",
            AuditKind::ProfileUpdated => "profile_updated",
            AuditKind::RoleChanged => "role_changed",
            AuditKind::Suspended => "suspended",
            AuditKind::Unsuspended => "unsuspended",
            AuditKind::AccountDeleted => "account_deleted",
            AuditKind::EmailChangeRequested => "email_change_requested",
            AuditKind::EmailChangeCancelled => "email_change_cancelled",
            AuditKind::MfaEnabled => "mfa_enabled",
            AuditKind::MfaDisabled => "mfa_disabled",
            AuditKind::MfaReset => "mfa_reset",
            AuditKind::MfaFailed => "mfa_failed",
            AuditKind::RecoveryCodeUsed => "recovery_code_used",
            AuditKind::RecoveryCodesRegenerated => "recovery_codes_regenerated",
            AuditKind::AccountSecured => "account_secured",
            AuditKind::SecurityNoticeSent => "security_notice_sent",
        }
    }

    /// Reads a stored name.
    pub fn from_stored(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == name)
    }
}

impl fmt::Display for AuditKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One recorded event. It names accounts by id only, never by email, and holds no secret, so
/// the trail stays coherent (and harmless) after an account is deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    /// A UUIDv7: events sort by id in the order they happened.
    pub id: Uuid,
    pub kind: AuditKind,
    pub occurred_at: DateTime<Utc>,
    /// Who did it; `None` for an anonymous caller or the operator's command line.
    pub actor: Option<UserId>,
    /// Whose account it concerns; `None` when no account matched (a failed sign-in).
    pub subject: Option<UserId>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// A short, non-secret detail, e.g. `user -> admin` or a suspension reason.
    pub detail: Option<String>,
}

/// Which events to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Events whose actor or subject is this user.
    pub user: Option<UserId>,
    pub kind: Option<AuditKind>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips_through_its_stored_name() {
        for kind in AuditKind::ALL {
            assert_eq!(AuditKind::from_stored(kind.as_str()), Some(kind));
        }
        assert_eq!(AuditKind::from_stored("unknown"), None);
    }
}
