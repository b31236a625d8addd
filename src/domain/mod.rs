//! The rules that hold whatever the delivery: entities, value objects and the repository
//! ports expressed in their terms. Pure Rust: no SeaORM, no async-graphql, no axum, no I/O.

pub mod account_token;
pub mod audit;
pub mod page;
pub mod passkey;
pub mod repository;
pub mod second_factor;
pub mod session;
pub mod social;
pub mod token;
pub mod user;
pub mod user_query;

pub use account_token::{AccountToken, Secured, TokenPurpose, UsedToken};
pub use audit::{AuditEvent, AuditFilter, AuditKind};
pub use page::{EXACT_TOTAL_UP_TO, Page, PageRequest};
pub use passkey::{
    Ceremony, CeremonyBinding, CeremonyId, CeremonyPurpose, CredentialId, Passkey, PasskeyId,
    PasskeyName, PasskeyRemoval, PasskeyStore, PasskeyUse,
};
pub use repository::{
    AccountRecoveryStore, AccountStore, AccountTokenRepository, AuditQueries, AuditStore,
    GuardedChange, HotReads, PresentedRefreshToken, RefreshTokenExchange, RepositoryError,
    SecondFactorStore, SessionRepository, SiblingAdded, UserDirectory,
};
pub use second_factor::{RecoveryCode, Totp, TotpFactor};
pub use session::{AuthMethods, Authentication, RefreshChain, RefreshVerdict, Session, SessionId};
pub use social::{
    CreateOutcome, Delivery, FlowPurpose, IdentityKey, LinkOutcome, ProviderId, Replacing,
    SocialCode, SocialCodeKind, SocialFlow, SocialFlowStore, SocialIdentity, SocialIdentityStore,
    UnlinkOutcome, VerifiedIdentity,
};
pub use token::{OpaqueToken, TokenHash};
pub use user::{
    DisplayName, Email, NewUser, Password, PasswordAttempt, PasswordHash, Role, Suspension,
    SuspensionReason, User, UserId,
};
pub use user_query::{Direction, UserCursor, UserFilter, UserOrder, UserOrderField};

/// Why a value was rejected, in words a frontend developer can show to a user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ValidationError(pub String);

impl ValidationError {
    fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}
