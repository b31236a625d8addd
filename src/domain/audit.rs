//! The security audit trail: who did what to which account, when and from where.

use std::fmt;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::UserId;

/// Declares [`AuditKind`] from one list of `Variant => "stored_name"` rows: the enum, `ALL`,
/// and both directions of the stored name, so a new kind cannot miss one of them (a stored name
/// given twice is an unreachable pattern, which clippy rejects). What each kind means is
/// documented once, where clients read it: the GraphQL `AuditEventKind`.
macro_rules! audit_kinds {
    ($($kind:ident => $stored:literal,)+) => {
        /// What happened.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum AuditKind {
            $($kind,)+
        }

        impl AuditKind {
            /// Every kind, in declaration order.
            pub const ALL: [AuditKind; [$($stored),+].len()] = [$(AuditKind::$kind),+];

            /// The stable name stored in the database.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(AuditKind::$kind => $stored,)+
                }
            }

            /// Reads a stored name.
            pub fn from_stored(name: &str) -> Option<Self> {
                match name {
                    $($stored => Some(AuditKind::$kind),)+
                    _ => None,
                }
            }
        }
    };
}

// Stored names are in the database: never change one.
audit_kinds! {
    Registered => "registered",
    LoginSucceeded => "login_succeeded",
    LoginFailed => "login_failed",
    LoggedOut => "logged_out",
    SessionRevoked => "session_revoked",
    RefreshTokenReused => "refresh_token_reused",
    PasswordChanged => "password_changed",
    PasswordResetRequested => "password_reset_requested",
    PasswordReset => "password_reset",
    EmailChanged => "email_changed",
    EmailVerified => "email_verified",
    ProfileUpdated => "profile_updated",
    RoleChanged => "role_changed",
    Suspended => "suspended",
    Unsuspended => "unsuspended",
    AccountDeleted => "account_deleted",
    EmailChangeRequested => "email_change_requested",
    EmailChangeCancelled => "email_change_cancelled",
    MfaEnabled => "mfa_enabled",
    MfaDisabled => "mfa_disabled",
    MfaReset => "mfa_reset",
    MfaFailed => "mfa_failed",
    RecoveryCodeUsed => "recovery_code_used",
    RecoveryCodesRegenerated => "recovery_codes_regenerated",
    AccountSecured => "account_secured",
    PasskeyAdded => "passkey_added",
    PasskeyRenamed => "passkey_renamed",
    PasskeyRemoved => "passkey_removed",
    PasskeyRefused => "passkey_refused",
    SecurityNoticeSent => "security_notice_sent",
    SocialSignIn => "social_sign_in",
    SocialSignInRefused => "social_sign_in_refused",
    SocialAccountCreated => "social_account_created",
    SocialAccountReplaced => "social_account_replaced",
    IdentityLinked => "identity_linked",
    IdentityUnlinked => "identity_unlinked",
    ClaimsHookFailed => "claims_hook_failed",
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
