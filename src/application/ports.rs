//! What the services need from the outside world, implemented in `infrastructure`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::{Authentication, Password, PasswordHash, Role, SessionId, UserId};

/// Why hashing or verifying a password did not produce an answer.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// Every hashing slot is busy and the queue is full: shed load instead of queueing more.
    #[error("password hashing is saturated")]
    Overloaded,
    /// The stored hash is unreadable or the hashing worker failed.
    #[error("password hashing failed: {0}")]
    Failed(String),
}

/// Slow, salted password hashing. Implementations must keep the work off the async runtime.
#[async_trait]
pub trait PasswordHasher: Send + Sync {
    /// Hashes a new password with the current parameters.
    async fn hash(&self, password: Password) -> Result<PasswordHash, HashError>;
    /// Whether `password` matches `hash`.
    async fn verify(&self, password: Password, hash: &PasswordHash) -> Result<bool, HashError>;
    /// A hash that matches no password and costs as much to check as a real one: verifying
    /// against it when an account does not exist keeps sign-in timing identical.
    fn dummy_hash(&self) -> &PasswordHash;
    /// Whether a stored hash was made with other parameters than the current ones (and should
    /// be replaced the next time the password is known).
    fn needs_rehash(&self, hash: &PasswordHash) -> bool;
}

/// What a verified access token says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccessClaims {
    pub user_id: UserId,
    pub session_id: SessionId,
    /// When and how the session last proved its user (`auth_time`, `amr`), for services that
    /// verify the token themselves; this service reads it from the session.
    pub authenticated: Authentication,
}

/// A freshly signed access token.
#[derive(Debug, Clone)]
pub struct IssuedAccessToken {
    pub token: String,
    pub expires_in: std::time::Duration,
}

/// Why an access token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token has expired")]
    Expired,
    #[error("the token is malformed, forged or not meant for this service")]
    Invalid,
}

/// Claims an access token carries beyond the registered ones (an engine's preset, what the
/// claims hook added), as JSON; computed by the application (`claims.rs`), never by the
/// token adapter.
pub type CustomClaims = serde_json::Map<String, serde_json::Value>;

/// Signs and checks short-lived access tokens.
pub trait AccessTokens: Send + Sync {
    /// A token for this session, valid from `now` for the configured lifetime, carrying
    /// `custom` beside the registered claims. Refuses (`Invalid`) custom claims that name a
    /// registered one.
    fn issue(
        &self,
        claims: AccessClaims,
        custom: &CustomClaims,
        now: DateTime<Utc>,
    ) -> Result<IssuedAccessToken, TokenError>;
    /// The claims of a token whose signature, issuer and audience check out and which has
    /// not expired at `now`.
    fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<AccessClaims, TokenError>;
}

/// Why a token is about to be signed: what the claims hook is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenEvent {
    /// A new session (a password, a second factor, a passkey, a social sign-in).
    SignIn,
    /// A refresh token exchanged.
    Refresh,
    /// The session proved its user again (`reauthenticate`).
    StepUp,
}

impl TokenEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SignIn => "sign_in",
            Self::Refresh => "refresh",
            Self::StepUp => "step_up",
        }
    }
}

/// What the claims hook is told about a token about to be signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimsHookRequest {
    pub event: TokenEvent,
    pub user_id: UserId,
    pub email: String,
    pub role: Role,
    pub session_id: SessionId,
    pub authenticated: Authentication,
}

/// Why the claims hook gave no usable answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HookError {
    #[error("the claims hook did not answer in time")]
    Timeout,
    #[error("the claims hook could not be reached: {0}")]
    Unreachable(String),
    #[error("the claims hook answered HTTP {0}")]
    Status(u16),
    #[error("the claims hook's answer is not usable: {0}")]
    Invalid(String),
    #[error("the claims hook's answer is too large")]
    TooLarge,
}

/// An outside service that adds claims to access tokens before they are signed.
#[async_trait]
pub trait ClaimsHook: Send + Sync {
    /// The claims to add (an object); the caller decides which it keeps.
    async fn claims(&self, request: &ClaimsHookRequest) -> Result<CustomClaims, HookError>;
}

/// The public half of a key that signs access tokens, as a JWK (RFC 7517): what other
/// services verify tokens with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedKey {
    pub kid: String,
    /// `EC` or `OKP`.
    pub kty: &'static str,
    /// `P-256` or `Ed25519`.
    pub crv: &'static str,
    /// `ES256` or `EdDSA`.
    pub alg: &'static str,
    /// Coordinates, base64url.
    pub x: String,
    pub y: Option<String>,
}

/// The keys whose tokens verify, for `/.well-known/jwks.json`: the public halves only, so
/// empty when tokens are signed with a shared secret.
pub trait PublishedKeys: Send + Sync {
    fn published_keys(&self) -> Vec<PublishedKey>;
}

/// The current time; a port so tests can move it.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// The system's wall clock, to the microsecond: the finest precision PostgreSQL and MySQL
/// store, so a time read back equals the time written on every backend (cursors rely on it).
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        chrono::SubsecRound::trunc_subsecs(Utc::now(), 6)
    }
}

/// A plain-text email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingEmail {
    pub to: String,
    pub subject: String,
    pub text: String,
}

/// Sends email. `send` returns once the message is delivered to the mail system or has
/// failed; failures are the adapter's to log. Services send from deferred jobs, so no
/// caller's answer waits for (or reveals) the mail system.
#[async_trait]
pub trait Mailer: Send + Sync {
    async fn send(&self, email: OutgoingEmail);
}

/// Work a request hands off instead of waiting for: emailing a link (its durable write and
/// the email). The answer, and how long it takes, are then the same whether or not there was
/// a link to send. `defer` returns at once; a job that cannot be queued is dropped by the
/// adapter, logged and counted.
pub trait Deferred: Send + Sync {
    fn defer(&self, what: &'static str, job: futures_util::future::BoxFuture<'static, ()>);
}

/// Takes audit events. `record` must return at once and never fail: the audit trail must not
/// slow down or break the operation it describes.
pub trait AuditLog: Send + Sync {
    fn record(&self, event: crate::domain::AuditEvent);
}

/// An allowance: `burst` events at once, refilled evenly over `period` (a token bucket, in
/// GCRA form).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Quota {
    pub burst: u32,
    pub period: std::time::Duration,
}

/// Whose allowance a key holds. Each class has room of its own in a bounded store, so a flood
/// of keys of one class (many client addresses) cannot take the room of the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyClass {
    /// A client's address or network.
    Address,
    /// An account (known or not: keyed by email) or one of its sessions.
    Account,
}

impl KeyClass {
    pub const ALL: [KeyClass; 2] = [KeyClass::Address, KeyClass::Account];

    pub fn name(self) -> &'static str {
        match self {
            KeyClass::Address => "address",
            KeyClass::Account => "account",
        }
    }
}

/// A rate-limit store key and its class.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LimitKey {
    pub class: KeyClass,
    pub name: String,
}

/// Why the rate-limit store did not answer.
#[derive(Debug, thiserror::Error)]
pub enum LimiterError {
    /// The store could not be reached or failed.
    #[error("rate-limit store failure: {0}")]
    Unavailable(String),
    /// The key is new and its class has no room: every key it holds carries a restriction
    /// still in force, and none is forgotten to make room. Room frees up after `retry_after`.
    #[error("no room for another {} key in the rate-limit store", .class.name())]
    Full {
        class: KeyClass,
        retry_after: std::time::Duration,
    },
}

/// Counters shared by every instance that uses the same store. A store may be bounded; it
/// then never forgets a key that still restricts anything (a block, failures not yet
/// forgotten, an allowance partly spent), and answers [`LimiterError::Full`] for a new key
/// it has no room for, including in `blocked_for`, so that what follows (a failure to count)
/// could be recorded.
#[async_trait]
pub trait RateLimiter: Send + Sync {
    /// Takes one event from `key`'s allowance. `Ok(None)` if allowed; `Ok(Some(wait))` if the
    /// allowance is used up, in which case nothing was taken.
    async fn acquire(
        &self,
        key: &LimitKey,
        quota: Quota,
    ) -> Result<Option<std::time::Duration>, LimiterError>;
    /// Counts a failure for `key`; failures older than `window` are forgotten. Returns the
    /// count, this one included.
    async fn count_failure(
        &self,
        key: &LimitKey,
        window: std::time::Duration,
    ) -> Result<u64, LimiterError>;
    /// Blocks `key` for `duration`.
    async fn block(
        &self,
        key: &LimitKey,
        duration: std::time::Duration,
    ) -> Result<(), LimiterError>;
    /// How much longer `key` is blocked, if it is.
    async fn blocked_for(
        &self,
        key: &LimitKey,
    ) -> Result<Option<std::time::Duration>, LimiterError>;
    /// Forgets `key`'s failures and block.
    async fn clear(&self, key: &LimitKey) -> Result<(), LimiterError>;
}

// What the operator watches: the readiness probe and `/metrics`. No service needs these;
// they are ports so the HTTP layer reads the adapters' figures without knowing the adapters
// (and infrastructure never depends on interfaces).

/// The database did not answer; the message is for the log.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StoreUnreachable(pub String);

/// The database's connections and the work sent to it, at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreUsage {
    /// Open connections in the pool.
    pub connections: u32,
    /// Open connections not in use.
    pub idle_connections: u32,
    /// Statements sent since start.
    pub statements: u64,
    /// Transactions run again after losing a race for locks, since start, by reason; every
    /// reason is listed, with zero if it never happened.
    pub retries: Vec<(&'static str, u64)>,
    /// Transactions still failing on contention after their last attempt, since start.
    pub retries_exhausted: u64,
}

/// Whether the database answers, and how its connections are used.
#[async_trait]
pub trait StoreHealth: Send + Sync {
    /// Succeeds when the database answers a round trip now.
    async fn ping(&self) -> Result<(), StoreUnreachable>;
    fn usage(&self) -> StoreUsage;
}

/// The password-hashing pool's load.
pub trait HashingLoad: Send + Sync {
    /// Hashes waiting for a worker or running now.
    fn in_flight(&self) -> u64;
    /// Hashes computed or verified since start.
    fn completed(&self) -> u64;
}

/// A bounded queue of background work, which drops what does not fit rather than wait.
pub trait DropCount: Send + Sync {
    /// Items dropped since start because the queue was full.
    fn dropped(&self) -> u64;
}

/// Why a secret could not be sealed or opened.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// The value was sealed with a key that is neither the current one nor a previous one:
    /// a key retired from the previous keys too soon, or another deployment's.
    #[error("sealed with key `{0}`, which is neither the current nor a previous key")]
    UnknownKey(String),
    /// Not a sealed value this version reads, tampered with, or sealed for another account.
    #[error("the sealed value is malformed, was altered, or belongs to another account")]
    Corrupt,
    /// The operating system's random source failed, so no nonce could be drawn.
    #[error("the operating system's random source failed: {0}")]
    Random(String),
}

/// Encrypts small secrets (a TOTP key) for storage, bound to the account they belong to: a
/// sealed value copied to another account's row does not open.
pub trait SecretSealer: Send + Sync {
    /// The secret encrypted with the current key, as short printable text to store.
    fn seal(&self, owner: UserId, secret: &[u8]) -> Result<String, SealError>;
    /// The secret `seal` was given for `owner`, with whichever configured key sealed it; the
    /// buffer is wiped when dropped.
    fn open(&self, owner: UserId, sealed: &str) -> Result<zeroize::Zeroizing<Vec<u8>>, SealError>;
    /// Whether `sealed` names another key than the current one, so should be sealed again
    /// the next time it is opened: once nothing needs it, a previous key can be retired.
    fn needs_reseal(&self, sealed: &str) -> bool;
}
