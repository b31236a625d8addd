//! Persistence ports, in domain terms. Adapters live in `infrastructure::persistence`.

use async_trait::async_trait;

use super::{Email, RefreshTokenHash, Session, SessionId, User, UserId};

/// Why a repository call failed.
#[derive(Debug, thiserror::Error)]
pub enum RepositoryError {
    /// A uniqueness rule of the store rejected the write (e.g. the email is taken).
    #[error("the record conflicts with an existing one")]
    Conflict,
    /// The store failed or could not be reached; details are for the log only.
    #[error("storage failure: {0}")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Stores user accounts.
#[async_trait]
pub trait UserRepository: Send + Sync {
    /// Adds a user; `Conflict` when the email is already registered.
    async fn insert(&self, user: &User) -> Result<(), RepositoryError>;
    /// The user with this id, if any.
    async fn find_by_id(&self, id: UserId) -> Result<Option<User>, RepositoryError>;
    /// The user with this (normalised) email, if any.
    async fn find_by_email(&self, email: &Email) -> Result<Option<User>, RepositoryError>;
}

/// Stores sessions and the hashes of their refresh tokens.
#[async_trait]
pub trait SessionRepository: Send + Sync {
    /// Adds a session together with its first refresh token, atomically.
    async fn create(
        &self,
        session: &Session,
        refresh_token: &RefreshTokenHash,
    ) -> Result<(), RepositoryError>;
    /// The session with this id, if any (revoked or expired ones included).
    async fn find(&self, id: SessionId) -> Result<Option<Session>, RepositoryError>;
}
