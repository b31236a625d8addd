//! The one error type services return. Each variant maps to one `extensions.code` at the
//! GraphQL edge; messages are written for a frontend developer.

use crate::domain::{RepositoryError, ValidationError};

use super::ports::HashError;

/// Why a use case did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// An input value broke a rule; `field` names the input field.
    #[error("{message}")]
    InvalidInput {
        field: &'static str,
        message: String,
    },
    /// The caller's credentials are missing or not good enough.
    #[error(transparent)]
    Unauthenticated(#[from] AuthFailure),
    /// The account must confirm its email address before it may sign in.
    #[error(
        "Confirm your email address first: follow the link we sent, or ask for a new one with \
         resendVerificationEmail."
    )]
    EmailNotVerified,
    /// The password was right, and the account has a second factor: the sign-in completes
    /// with a code and this ticket (`verifyMfa`).
    #[error(
        "Enter the code from your authenticator app (or a recovery code) to finish signing in."
    )]
    MfaRequired { ticket: crate::domain::OpaqueToken },
    /// A sensitive change needs a recent proof of who the user is (`reauthenticate`).
    #[error(
        "Confirm it is you first: sign in again or call reauthenticate (with your code if the \
         account has a second factor)."
    )]
    ReauthenticationRequired,
    /// The account is suspended by an administrator.
    #[error("This account is suspended; contact the administrators.")]
    AccountSuspended,
    /// Signed in, but not allowed to do this.
    #[error("{0}")]
    Forbidden(&'static str),
    /// The thing does not exist, or the caller may not see it.
    #[error("{0}")]
    NotFound(&'static str),
    /// The change would leave no active administrator.
    #[error("This is the last active administrator: make another user an administrator first.")]
    LastAdmin,
    /// The state of the account does not allow it (e.g. a second factor is on already).
    #[error("{0}")]
    Conflict(&'static str),
    /// A social sign-in that would take over an account, or that a provider's unverified
    /// address cannot back.
    #[error("{0}")]
    SocialRefused(SocialRefusal),
    /// The email is registered already.
    #[error("An account with this email already exists.")]
    EmailTaken,
    /// Too many attempts from this address or at this account.
    #[error("Too many attempts; try again in {retry_after_secs} seconds.")]
    RateLimited { retry_after_secs: u64 },
    /// The service is shedding load; try again after `retry_after_secs`.
    #[error("The server is busy; try again in a moment.")]
    Overloaded { retry_after_secs: u64 },
    /// The database cannot be reached or stayed too busy; the same request may well succeed
    /// after `retry_after_secs`. The source is for the log, never for the client.
    #[error("The service is briefly unavailable; try again in {retry_after_secs} seconds.")]
    Unavailable {
        retry_after_secs: u64,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Anything unexpected. The source is for the log, never for the client.
    #[error("internal error: {0}")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Why a sign-in through a provider was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SocialRefusal {
    /// The provider vouched for an address whose account has proved it: the identity is
    /// linked only once that account proves itself (signed in, or the link emailed to it).
    #[error(
        "An account with this email already exists: sign in to it and link this provider, or          follow the link we emailed to that address."
    )]
    AccountExists,
    /// The provider did not vouch for an address that an account has.
    #[error(
        "The provider has not verified this email address, and an account already uses it:          sign in to that account first."
    )]
    UnverifiedProviderEmail,
    /// The provider gave no address, which a new account needs.
    #[error("The provider did not share an email address, which a new account needs.")]
    EmailRequired,
}

impl SocialRefusal {
    /// The stable name clients branch on (`extensions.reason`, the callback's `error`).
    pub fn reason(self) -> &'static str {
        match self {
            Self::AccountExists => "ACCOUNT_EXISTS",
            Self::UnverifiedProviderEmail => "UNVERIFIED_PROVIDER_EMAIL",
            Self::EmailRequired => "EMAIL_REQUIRED",
        }
    }
}

/// Why a caller is not authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthFailure {
    /// Unknown email or wrong password: one message for both, so accounts cannot be probed.
    #[error("Incorrect email or password.")]
    InvalidCredentials,
    #[error("Sign in first: send an access token as 'Authorization: Bearer <accessToken>'.")]
    MissingToken,
    #[error("The Authorization header must have the form 'Bearer <accessToken>'.")]
    MalformedHeader,
    #[error("The access token is invalid.")]
    InvalidToken,
    #[error("The access token has expired; get a new one with refreshToken.")]
    ExpiredToken,
    #[error("The session has ended; sign in again.")]
    SessionEnded,
    #[error("The refresh token is invalid; sign in again.")]
    InvalidRefreshToken,
    /// Neither the input nor a session cookie carries a refresh token.
    #[error("No refresh token: pass refreshToken, or sign in from a browser with cookie sessions.")]
    MissingRefreshToken,
    /// A refresh token was presented again after it had been exchanged: it may have been
    /// stolen, so its session was ended.
    #[error(
        "The refresh token was already used, so the session has been ended to protect the \
         account; sign in again."
    )]
    RefreshTokenReused,
    /// An MFA ticket that is unknown, used, expired, out of tries, or issued for an account
    /// state that has changed.
    #[error("This sign-in has expired or had too many wrong codes; sign in again.")]
    InvalidMfaTicket,
}

impl ServiceError {
    /// An input error on `field`.
    pub fn invalid(field: &'static str, error: ValidationError) -> Self {
        Self::InvalidInput {
            field,
            message: error.0,
        }
    }

    /// A write that may hit the unique email: that conflict is `EmailTaken`.
    pub fn email_conflict(error: RepositoryError) -> Self {
        match error {
            RepositoryError::Conflict => Self::EmailTaken,
            other => other.into(),
        }
    }

    /// Wraps an unexpected failure.
    pub fn internal(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Internal(error.into())
    }
}

/// How long a client should wait before trying again when the database is unavailable: long
/// enough for a pool to reconnect or a failover to finish, short enough not to lose the user.
pub const UNAVAILABLE_RETRY_AFTER_SECS: u64 = 2;

impl From<RepositoryError> for ServiceError {
    /// Conflicts a use case expects are matched where they happen; any that reaches this
    /// conversion is a bug, reported as internal.
    fn from(error: RepositoryError) -> Self {
        match error {
            RepositoryError::Unavailable(source) => Self::Unavailable {
                retry_after_secs: UNAVAILABLE_RETRY_AFTER_SECS,
                source,
            },
            other => Self::internal(other),
        }
    }
}

impl From<HashError> for ServiceError {
    fn from(error: HashError) -> Self {
        match error {
            HashError::Overloaded => Self::Overloaded {
                retry_after_secs: 1,
            },
            HashError::Failed(_) => Self::internal(error),
        }
    }
}

impl From<getrandom::Error> for ServiceError {
    fn from(error: getrandom::Error) -> Self {
        Self::internal(error)
    }
}
