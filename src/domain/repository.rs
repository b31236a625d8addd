//! Persistence ports, in domain terms. Adapters live in `infrastructure::persistence`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{
    AccountToken, AuditEvent, AuditFilter, Authentication, DisplayName, Email, Page, PageRequest,
    PasswordHash, RefreshChain, Role, Secured, Session, SessionId, Suspension, TokenHash,
    TokenPurpose, TotpFactor, UsedToken, User, UserCursor, UserFilter, UserId, UserOrder,
};

/// Why a repository call failed.
#[derive(Debug, thiserror::Error)]
pub enum RepositoryError {
    /// A uniqueness rule of the store rejected the write (e.g. the email is taken).
    #[error("the record conflicts with an existing one")]
    Conflict,
    /// The store cannot be reached right now (no connection, connection lost, still busy
    /// after retrying): the same call may well succeed in a moment. Details are for the log.
    #[error("storage unavailable: {0}")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The store failed otherwise (a bug, corrupt data); details are for the log only.
    #[error("storage failure: {0}")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// The accounts themselves: what signing up, signing in, sessions, emailed links and
/// self-service need.
#[async_trait]
pub trait AccountStore: Send + Sync {
    /// Adds a user; `Conflict` when the email is already registered.
    async fn insert(&self, user: &User) -> Result<(), RepositoryError>;
    /// The user with this id, if any.
    async fn find_by_id(&self, id: UserId) -> Result<Option<User>, RepositoryError>;
    /// The users with these ids that exist, in any order.
    async fn find_many(&self, ids: &[UserId]) -> Result<Vec<User>, RepositoryError>;
    /// Replaces a user's password hash, moving the credential version on.
    async fn set_password_hash(
        &self,
        id: UserId,
        hash: &PasswordHash,
        now: DateTime<Utc>,
    ) -> Result<(), RepositoryError>;
    /// Records that the user proved they own `email` (keeps an earlier date), if that is
    /// still the account's address; `false` otherwise.
    async fn mark_email_verified(
        &self,
        id: UserId,
        email: &Email,
        now: DateTime<Utc>,
    ) -> Result<bool, RepositoryError>;
    /// Replaces the display name.
    async fn set_display_name(
        &self,
        id: UserId,
        name: Option<&DisplayName>,
        now: DateTime<Utc>,
    ) -> Result<(), RepositoryError>;
    /// Records that the user asked to move to `email` (which waits for its link).
    async fn request_email_change(
        &self,
        id: UserId,
        email: &Email,
        now: DateTime<Utc>,
    ) -> Result<(), RepositoryError>;
    /// Moves the account to `email`, proven by a link sent there: confirmed, no pending
    /// address, the credential version moved on. Only if the account is still at credential
    /// version `version` (the link's): `false`, changing nothing, otherwise. `Conflict` when
    /// another account has the address.
    async fn change_email(
        &self,
        id: UserId,
        email: &Email,
        version: i64,
        now: DateTime<Utc>,
    ) -> Result<bool, RepositoryError>;
    /// Deletes the account with everything that belongs to it, unless that would leave no
    /// active administrator.
    async fn delete(
        &self,
        id: UserId,
        now: DateTime<Utc>,
    ) -> Result<GuardedChange, RepositoryError>;
}

/// The two reads on the hot paths, a port of their own: a backend with a faster way to run
/// them (the SQLite adapter's reads on the calling thread) implements these two and nothing
/// else, beside the generic implementation.
#[async_trait]
pub trait HotReads: Send + Sync {
    /// The user with this (normalised) email, if any: every sign-in, reset and verification
    /// request.
    async fn user_by_email(&self, email: &Email) -> Result<Option<User>, RepositoryError>;
    /// The session with this id and its user, read together: the check of every
    /// authenticated request.
    async fn session_with_user(
        &self,
        id: SessionId,
    ) -> Result<Option<(Session, User)>, RepositoryError>;
}

/// The "this wasn't me" path: recovery links give an account back to the address they were
/// sent to, whatever happened to the account since, and hold that address while they work.
#[async_trait]
pub trait AccountRecoveryStore: Send + Sync {
    /// Uses a recovery link (`TokenPurpose::SecureAccount`) once, if it is unused and
    /// unexpired, and in the same transaction gives its account back to the link's address.
    /// The link stands for every recovery link of the account to that address (one mailbox
    /// holds them all): its window starts at the earliest of them. Then: the account is at
    /// the address, confirmed, with no pending change; its password is `locked_password`
    /// (matched by none: a reset is needed); its credential version moves on; every session
    /// ends; every link issued since the window began dies (recovery links too, wherever
    /// they went; earlier ones stay); a second factor confirmed and recovery codes made
    /// since then are removed. `None` when the link cannot be used; `Conflict`, changing
    /// nothing, when another account has the address.
    async fn secure(
        &self,
        link: &TokenHash,
        locked_password: &PasswordHash,
        now: DateTime<Utc>,
    ) -> Result<Option<Secured>, RepositoryError>;
    /// Whether a usable recovery link of an account other than `except` holds `email`: such
    /// an address may not be taken by anyone else while the link may bring its account back.
    async fn is_reserved(
        &self,
        email: &Email,
        except: Option<UserId>,
        now: DateTime<Utc>,
    ) -> Result<bool, RepositoryError>;
}

/// What only administrators do with accounts: look through all of them (filters, orderings,
/// keyset paging), and change roles and suspensions.
#[async_trait]
pub trait UserDirectory: Send + Sync {
    /// A window of the users that pass `filter`, in `order`.
    async fn list(
        &self,
        filter: &UserFilter,
        order: UserOrder,
        page: &PageRequest<UserCursor>,
    ) -> Result<Page<User>, RepositoryError>;
    /// How many users pass `filter`, exactly when at most `exact_up_to` do (the count reads
    /// no further). Past that: for the unfiltered list, the database's estimate of the table's
    /// size (never below `exact_up_to + 1`; exact where the database keeps no estimate), and
    /// for a filtered list `exact_up_to + 1`, read "more than `exact_up_to`".
    async fn count(&self, filter: &UserFilter, exact_up_to: u64) -> Result<u64, RepositoryError>;
    /// Sets the role, unless that would leave no active administrator.
    async fn set_role(
        &self,
        id: UserId,
        role: Role,
        now: DateTime<Utc>,
    ) -> Result<GuardedChange, RepositoryError>;
    /// Suspends (`Some`, moving the credential version on) or reinstates (`None`) the
    /// account, unless suspending would leave no active administrator.
    async fn set_suspension(
        &self,
        id: UserId,
        suspension: Option<&Suspension>,
        now: DateTime<Utc>,
    ) -> Result<GuardedChange, RepositoryError>;
}

/// The outcome of a change that must leave at least one active administrator. The check and
/// the change are one atomic step, so two administrators demoting each other at the same
/// moment cannot both succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuardedChange {
    Applied,
    UnknownUser,
    /// Refused: no active administrator would remain.
    LastAdmin,
}

/// Exchanging a refresh token for a new one.
#[derive(Debug, Clone)]
pub struct RefreshTokenExchange<'a> {
    pub session: SessionId,
    pub presented: &'a TokenHash,
    pub successor: &'a TokenHash,
    /// The chain's current generation, as the caller found it: the change applies only if
    /// the chain is still there.
    pub generation: i64,
    pub now: DateTime<Utc>,
    /// The session's new expiry.
    pub expires_at: DateTime<Utc>,
}

/// A refresh token as found: its session, the generation it belongs to, and where the
/// session's chain stands.
#[derive(Debug, Clone)]
pub struct PresentedRefreshToken {
    pub session: Session,
    pub generation: i64,
    pub chain: RefreshChain,
}

/// What adding a sibling did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SiblingAdded {
    Added,
    /// The chain moved on (or the session is gone) meanwhile: judge the token again.
    Moved,
    /// The generation gave out its siblings already.
    Exhausted,
}

/// Stores sessions and the hashes of their refresh tokens.
#[async_trait]
pub trait SessionRepository: Send + Sync {
    /// Adds a session together with its first refresh token, atomically.
    async fn create(
        &self,
        session: &Session,
        refresh_token: &TokenHash,
    ) -> Result<(), RepositoryError>;
    /// The session with this id, if any (revoked or expired ones included).
    async fn find(&self, id: SessionId) -> Result<Option<Session>, RepositoryError>;
    /// The session a refresh token belongs to, with the token's generation and the chain's.
    async fn find_by_refresh_token(
        &self,
        token: &TokenHash,
    ) -> Result<Option<PresentedRefreshToken>, RepositoryError>;
    /// Atomically, if the session's chain is still at `exchange.generation`: moves it to the
    /// next generation (now, no siblings), marks the presented token used, stores the
    /// successor as the new generation's, and moves the session's last use and expiry.
    /// Returns `false`, changing nothing, if the chain had moved on or the session is gone.
    async fn rotate_refresh_token(
        &self,
        exchange: &RefreshTokenExchange<'_>,
    ) -> Result<bool, RepositoryError>;
    /// Atomically, if the chain is still at `exchange.generation` and has given fewer than
    /// `max_siblings` siblings since it moved on: stores the successor as one more token of
    /// that generation, counts it, and moves the session's last use and expiry.
    async fn add_sibling(
        &self,
        exchange: &RefreshTokenExchange<'_>,
        max_siblings: u32,
    ) -> Result<SiblingAdded, RepositoryError>;
    /// Records that an active session proved its user again; `false` if it is not active.
    async fn reauthenticate(
        &self,
        id: SessionId,
        authentication: Authentication,
    ) -> Result<bool, RepositoryError>;
    /// Ends a session; `false` if it was not active.
    async fn revoke(&self, id: SessionId, now: DateTime<Utc>) -> Result<bool, RepositoryError>;
    /// Ends every active session of a user but `except`; returns how many ended.
    async fn revoke_all(
        &self,
        user: UserId,
        except: Option<SessionId>,
        now: DateTime<Utc>,
    ) -> Result<u64, RepositoryError>;
    /// A user's active sessions, newest first.
    async fn list_active(
        &self,
        user: UserId,
        now: DateTime<Utc>,
        page: &PageRequest<SessionId>,
    ) -> Result<Page<Session>, RepositoryError>;
    /// How many active sessions a user has, counting no further than `exact_up_to + 1`.
    async fn count_active(
        &self,
        user: UserId,
        now: DateTime<Utc>,
        exact_up_to: u64,
    ) -> Result<u64, RepositoryError>;
    /// Deletes sessions that have ended (expired or revoked); returns how many.
    async fn delete_ended(&self, now: DateTime<Utc>) -> Result<u64, RepositoryError>;
}

/// Stores one-time email tokens.
#[async_trait]
pub trait AccountTokenRepository: Send + Sync {
    /// Stores a token (voiding the user's earlier tokens of the same purpose, if it
    /// `replaces_earlier`), if the account still has the token's address and credential
    /// version (checked in the same write); `false`, storing nothing, when it has not: then
    /// the link must not be sent.
    async fn issue(&self, token: &AccountToken) -> Result<bool, RepositoryError>;
    /// Uses a token once: if it exists for this purpose, unused and unexpired, and its
    /// account is still in the state it was issued for, marks it used and returns its
    /// account and addresses. Concurrent uses of one token: exactly one succeeds. The state:
    /// the address and credential version it was issued with; for an email change's link,
    /// also the pending address it moves to; for a cancel link, only that the account has
    /// either address of its move.
    async fn consume(
        &self,
        token: &TokenHash,
        purpose: TokenPurpose,
        now: DateTime<Utc>,
    ) -> Result<Option<UsedToken>, RepositoryError>;
    /// The account and addresses of a token that `consume` would use now, without using it:
    /// for checks that must pass before the token is spent (a new password's strength
    /// against the account's own email and name).
    async fn peek(
        &self,
        token: &TokenHash,
        purpose: TokenPurpose,
        now: DateTime<Utc>,
    ) -> Result<Option<UsedToken>, RepositoryError>;
    /// Counts one more try with a token that allows `max_attempts` (an MFA ticket), if it is
    /// usable as `consume` would find it and has tries left; returns its account and
    /// addresses. The try is counted before the code is checked, so concurrent guesses cannot
    /// outrun the count.
    async fn attempt(
        &self,
        token: &TokenHash,
        purpose: TokenPurpose,
        max_attempts: u32,
        now: DateTime<Utc>,
    ) -> Result<Option<UsedToken>, RepositoryError>;
    /// Deletes used and expired tokens; returns how many.
    async fn delete_spent(&self, now: DateTime<Utc>) -> Result<u64, RepositoryError>;
}

/// An account's second factor and its recovery codes. Every change of whether an account has
/// a factor also moves its credential version on, voiding links and tickets issued before.
#[async_trait]
pub trait SecondFactorStore: Send + Sync {
    /// The account's factor, confirmed or still enrolling.
    async fn find(&self, user: UserId) -> Result<Option<TotpFactor>, RepositoryError>;
    /// Stores a new, unconfirmed factor, replacing an unconfirmed one; `false`, storing
    /// nothing, when the account has a confirmed factor.
    async fn begin_enrollment(&self, factor: &TotpFactor) -> Result<bool, RepositoryError>;
    /// Confirms the unconfirmed factor whose sealed secret is `sealed_secret` with a code of
    /// `step`, stores `recovery_codes` (replacing any), and marks the account as having a
    /// second factor, atomically; `false` if that factor is no longer waiting.
    async fn confirm(
        &self,
        user: UserId,
        sealed_secret: &str,
        step: i64,
        recovery_codes: &[TokenHash],
        now: DateTime<Utc>,
    ) -> Result<bool, RepositoryError>;
    /// Replaces the factor's sealed secret `from` with `to` (the same secret sealed with the
    /// current key); `false` if the factor no longer holds `from`.
    async fn reseal(&self, user: UserId, from: &str, to: &str) -> Result<bool, RepositoryError>;
    /// Accepts a code of `step` once: moves the confirmed factor's last step forward to it if
    /// it is behind; `false` if it is not (a replayed code, or no factor).
    async fn accept_step(&self, user: UserId, step: i64) -> Result<bool, RepositoryError>;
    /// Uses a recovery code once; `false` if it is not an unused code of the account.
    async fn use_recovery_code(
        &self,
        user: UserId,
        code: &TokenHash,
        now: DateTime<Utc>,
    ) -> Result<bool, RepositoryError>;
    /// Replaces every recovery code of the account.
    async fn replace_recovery_codes(
        &self,
        user: UserId,
        codes: &[TokenHash],
        now: DateTime<Utc>,
    ) -> Result<(), RepositoryError>;
    /// How many unused recovery codes the account has.
    async fn recovery_codes_left(&self, user: UserId) -> Result<u64, RepositoryError>;
    /// Removes the factor and the recovery codes, and marks the account as having none;
    /// `false` if it had no confirmed factor.
    async fn remove(&self, user: UserId) -> Result<bool, RepositoryError>;
}

/// Where the audit trail is written, and kept within its retention.
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Adds events.
    async fn insert(&self, events: &[AuditEvent]) -> Result<(), RepositoryError>;
    /// Deletes the events that occurred before `delete_before`, and forgets the IP address
    /// and user agent of those that occurred before `forget_client_before`; returns how many
    /// of each.
    async fn apply_retention(
        &self,
        delete_before: DateTime<Utc>,
        forget_client_before: DateTime<Utc>,
    ) -> Result<(u64, u64), RepositoryError>;
}

/// Reading the audit trail back.
#[async_trait]
pub trait AuditQueries: Send + Sync {
    /// A window of the events that pass `filter`, newest first.
    async fn list(
        &self,
        filter: &AuditFilter,
        page: &PageRequest<uuid::Uuid>,
    ) -> Result<Page<AuditEvent>, RepositoryError>;
    /// How many events pass `filter`, counting no further than `exact_up_to + 1` (read "more
    /// than `exact_up_to`").
    async fn count(&self, filter: &AuditFilter, exact_up_to: u64) -> Result<u64, RepositoryError>;
    /// For each of `users`, their newest `limit` events (by or about them) of `kind` if given,
    /// newest first, and how many such events they have in all: one batch for many users.
    async fn latest_for_users(
        &self,
        users: &[UserId],
        kind: Option<super::AuditKind>,
        limit: usize,
    ) -> Result<std::collections::HashMap<UserId, (Vec<AuditEvent>, u64)>, RepositoryError>;
}
