//! In-memory stand-ins for the ports, so service tests run without a database, real crypto or
//! a mail server. The repository fakes implement only the ports the service tests need, and
//! `tests/api/contract/` runs one suite against them and the SeaORM repositories, so they
//! behave like the real thing (the `fakes` feature exposes them to it).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Duration, TimeZone, Utc};

use crate::domain::{
    AccountStore, AccountToken, AccountTokenRepository, AuditEvent, AuditStore, DisplayName, Email,
    GuardedChange, Page, PageRequest, Password, PasswordHash, PresentedRefreshToken, RefreshChain,
    RefreshTokenExchange, RepositoryError, Session, SessionId, SessionRepository, SiblingAdded,
    TokenHash, TokenPurpose, UsedToken, User, UserId,
};

use super::account::{AccountDeps, AccountService};
use super::audit::AuditTrail;
use super::auth::{AuthDeps, AuthService};
use super::links::AccountLinks;
use super::notices::SecurityNotices;
use super::passwords::Confirmation;
use super::ports::{
    AccessClaims, AccessTokens, AuditLog, Clock, Deferred, HashError, IssuedAccessToken, LimitKey,
    LimiterError, Mailer, OutgoingEmail, PasswordHasher, Quota, RateLimiter, TokenError,
};
use super::ports::{SealError, SecretSealer};
use super::second_factor::{MfaDeps, MfaPolicy, MfaService};
use super::sessions::{SessionDeps, SessionPolicy, SessionService};
use super::throttle::{Throttle, ThrottlePolicy};

pub const POLICY: SessionPolicy = SessionPolicy {
    idle_timeout: Duration::days(30),
    max_age: Duration::days(90),
    reuse_grace: Duration::seconds(10),
    require_verified_email: false,
    reauthentication_window: Duration::minutes(10),
};

/// The services the unit tests exercise. Administration and audit reading are tested over
/// HTTP against the real databases (`tests/api/`), so no fake directory or audit reader is
/// needed.
pub struct TestedServices {
    pub auth: Arc<AuthService>,
    pub sessions: Arc<SessionService>,
    pub account: Arc<AccountService>,
}

/// One set of fakes, shared by the services under test.
pub struct Fakes {
    pub users: Arc<InMemoryUsers>,
    pub sessions: Arc<InMemorySessions>,
    pub audit: Arc<InMemoryAudit>,
    pub account_tokens: Arc<InMemoryAccountTokens>,
    pub hasher: Arc<FakeHasher>,
    pub mailer: Arc<RecordingMailer>,
    pub deferred: Arc<HeldJobs>,
    pub clock: Arc<ManualClock>,
    pub policy: SessionPolicy,
    pub throttle: ThrottlePolicy,
    pub limiter: Arc<CountingLimiter>,
    pub factors: Arc<InMemoryFactors>,
}

impl Default for Fakes {
    fn default() -> Self {
        Self::new()
    }
}

impl Fakes {
    pub fn new() -> Self {
        Self::with_policy(POLICY)
    }

    pub fn with_policy(policy: SessionPolicy) -> Self {
        let users = Arc::new(InMemoryUsers::default());
        let users_for_factors = users.clone();
        Self {
            sessions: Arc::new(InMemorySessions::new(users.clone())),
            account_tokens: Arc::new(InMemoryAccountTokens::new(users.clone())),
            users,
            audit: Arc::default(),
            hasher: Arc::new(FakeHasher::default()),
            mailer: Arc::default(),
            deferred: Arc::default(),
            clock: Arc::new(ManualClock::new()),
            policy,
            throttle: ThrottlePolicy::default(),
            limiter: Arc::default(),
            factors: Arc::new(InMemoryFactors::new(users_for_factors)),
        }
    }

    pub fn with_throttle(mut self, throttle: ThrottlePolicy) -> Self {
        self.throttle = throttle;
        self
    }

    /// The services wired to these fakes, as the composition root wires the real adapters.
    pub fn services(&self) -> TestedServices {
        let audit = AuditTrail::new(self.audit.clone(), self.clock.clone());
        let throttle = Arc::new(Throttle::new(self.limiter.clone(), self.throttle));
        let sessions = Arc::new(SessionService::new(SessionDeps {
            sessions: self.sessions.clone(),
            users: self.users.clone(),
            tokens: Arc::new(FakeTokens),
            clock: self.clock.clone(),
            audit: audit.clone(),
            throttle: throttle.clone(),
            policy: self.policy,
        }));
        let confirmation = Arc::new(Confirmation::new(
            self.hasher.clone(),
            throttle.clone(),
            sessions.clone(),
        ));
        let links = Arc::new(AccountLinks {
            public_url: "https://app.example.com/".into(),
            password_reset_ttl: Duration::minutes(30),
            email_verification_ttl: Duration::hours(24),
            email_change_revert_window: Duration::hours(72),
        });
        let notices = Arc::new(SecurityNotices::new(
            self.users.clone(),
            self.account_tokens.clone(),
            self.mailer.clone(),
            self.deferred.clone(),
            links.clone(),
            audit.clone(),
        ));
        let mfa = Arc::new(MfaService::new(MfaDeps {
            users: self.users.clone(),
            factors: self.factors.clone(),
            tickets: self.account_tokens.clone(),
            sealer: Arc::new(FakeSealer),
            clock: self.clock.clone(),
            confirmation: confirmation.clone(),
            notices: notices.clone(),
            sessions: sessions.clone(),
            throttle: throttle.clone(),
            audit: audit.clone(),
            policy: MfaPolicy {
                issuer: "authgraph".into(),
                ticket_lifetime: Duration::minutes(5),
                ticket_attempts: 5,
            },
        }));
        let account = Arc::new(AccountService::new(AccountDeps {
            users: self.users.clone(),
            tokens: self.account_tokens.clone(),
            recovery: Arc::new(InMemoryRecovery {
                users: self.users.clone(),
                tokens: self.account_tokens.clone(),
                sessions: self.sessions.clone(),
                factors: self.factors.clone(),
            }),
            notices: notices.clone(),
            hasher: self.hasher.clone(),
            sessions: sessions.clone(),
            mfa: mfa.clone(),
            mailer: self.mailer.clone(),
            deferred: self.deferred.clone(),
            clock: self.clock.clone(),
            audit: audit.clone(),
            throttle: throttle.clone(),
            links,
        }));
        let auth = Arc::new(AuthService::new(AuthDeps {
            users: self.users.clone(),
            notices,
            hasher: self.hasher.clone(),
            confirmation,
            sessions: sessions.clone(),
            account: account.clone(),
            mfa,
            clock: self.clock.clone(),
            audit,
            throttle,
        }));
        TestedServices {
            auth,
            sessions,
            account,
        }
    }

    /// Runs the jobs deferred so far (the emails with links), as the queue would.
    pub async fn settle(&self) {
        self.deferred.run_pending().await;
    }

    /// The token in the link of the last email sent to `to` (deferred jobs run first).
    pub async fn last_link_token(&self, to: &str) -> String {
        self.settle().await;
        let emails = self.mailer.sent.lock().unwrap();
        let email = emails
            .iter()
            .rev()
            .find(|e| e.to == to)
            .expect("an email was sent");
        let (_, rest) = email.text.split_once("?token=").expect("a link");
        rest.split_whitespace().next().unwrap().to_owned()
    }
}

#[derive(Default)]
pub struct InMemoryUsers(Mutex<HashMap<UserId, User>>);

impl InMemoryUsers {
    pub fn get(&self, id: UserId) -> Option<User> {
        self.0.lock().unwrap().get(&id).cloned()
    }

    pub fn is_empty(&self) -> bool {
        self.0.lock().unwrap().is_empty()
    }

    pub fn get_by_email(&self, email: &str) -> Option<User> {
        self.0
            .lock()
            .unwrap()
            .values()
            .find(|u| u.email.as_str() == email)
            .cloned()
    }

    fn update(&self, id: UserId, change: impl FnOnce(&mut User)) {
        if let Some(user) = self.0.lock().unwrap().get_mut(&id) {
            change(user);
        }
    }
}

#[async_trait]
impl AccountStore for InMemoryUsers {
    async fn insert(&self, user: &User) -> Result<(), RepositoryError> {
        let mut users = self.0.lock().unwrap();
        if users.values().any(|u| u.email == user.email) {
            return Err(RepositoryError::Conflict);
        }
        users.insert(user.id, user.clone());
        Ok(())
    }

    async fn find_by_id(&self, id: UserId) -> Result<Option<User>, RepositoryError> {
        Ok(self.get(id))
    }

    async fn find_by_email(&self, email: &Email) -> Result<Option<User>, RepositoryError> {
        let users = self.0.lock().unwrap();
        Ok(users.values().find(|u| &u.email == email).cloned())
    }

    async fn set_password_hash(
        &self,
        id: UserId,
        hash: &PasswordHash,
        now: DateTime<Utc>,
    ) -> Result<(), RepositoryError> {
        self.update(id, |user| {
            user.password_hash = hash.clone();
            user.updated_at = now;
            user.credential_version += 1;
        });
        Ok(())
    }

    async fn mark_email_verified(
        &self,
        id: UserId,
        email: &Email,
        now: DateTime<Utc>,
    ) -> Result<bool, RepositoryError> {
        let mut marked = false;
        self.update(id, |user| {
            if &user.email == email {
                user.email_verified_at.get_or_insert(now);
                user.updated_at = now;
                marked = true;
            }
        });
        Ok(marked)
    }

    async fn find_many(&self, ids: &[UserId]) -> Result<Vec<User>, RepositoryError> {
        Ok(ids.iter().filter_map(|id| self.get(*id)).collect())
    }

    async fn set_display_name(
        &self,
        id: UserId,
        name: Option<&DisplayName>,
        now: DateTime<Utc>,
    ) -> Result<(), RepositoryError> {
        self.update(id, |user| {
            user.display_name = name.cloned();
            user.updated_at = now;
        });
        Ok(())
    }

    async fn request_email_change(
        &self,
        id: UserId,
        email: &Email,
        now: DateTime<Utc>,
    ) -> Result<(), RepositoryError> {
        self.update(id, |user| {
            user.pending_email = Some(email.clone());
            user.updated_at = now;
        });
        Ok(())
    }

    async fn change_email(
        &self,
        id: UserId,
        email: &Email,
        version: i64,
        now: DateTime<Utc>,
    ) -> Result<bool, RepositoryError> {
        let mut users = self.0.lock().unwrap();
        if users.values().any(|u| &u.email == email && u.id != id) {
            return Err(RepositoryError::Conflict);
        }
        let Some(user) = users
            .get_mut(&id)
            .filter(|u| u.credential_version == version)
        else {
            return Ok(false);
        };
        user.email = email.clone();
        user.email_verified_at = Some(now);
        user.pending_email = None;
        user.updated_at = now;
        user.credential_version += 1;
        Ok(true)
    }

    async fn delete(
        &self,
        id: UserId,
        _now: DateTime<Utc>,
    ) -> Result<GuardedChange, RepositoryError> {
        Ok(self.guarded(id, |users| {
            users.remove(&id);
        }))
    }
}

impl InMemoryUsers {
    /// Applies `change` and undoes it if no active administrator is left.
    fn guarded(
        &self,
        id: UserId,
        change: impl FnOnce(&mut HashMap<UserId, User>),
    ) -> GuardedChange {
        let mut users = self.0.lock().unwrap();
        let Some(was_admin) = users.get(&id).map(User::is_active_admin) else {
            return GuardedChange::UnknownUser;
        };
        let before = users.clone();
        change(&mut users);
        if was_admin && !users.values().any(User::is_active_admin) {
            *users = before;
            return GuardedChange::LastAdmin;
        }
        GuardedChange::Applied
    }
}

/// Refresh-token hash → (session, generation).
type RefreshTokens = HashMap<TokenHash, (SessionId, i64)>;

pub struct InMemorySessions {
    sessions: Mutex<HashMap<SessionId, Session>>,
    chains: Mutex<HashMap<SessionId, RefreshChain>>,
    tokens: Mutex<RefreshTokens>,
    users: Arc<InMemoryUsers>,
}

impl InMemorySessions {
    /// Sessions of the accounts in `users`.
    pub fn new(users: Arc<InMemoryUsers>) -> Self {
        Self {
            sessions: Mutex::default(),
            chains: Mutex::default(),
            tokens: Mutex::default(),
            users,
        }
    }

    pub fn get(&self, id: SessionId) -> Option<Session> {
        self.forget_deleted_accounts();
        self.sessions.lock().unwrap().get(&id).cloned()
    }

    /// Deleting an account deletes its sessions and their tokens (a cascade in the
    /// database): forget those whose account is gone.
    fn forget_deleted_accounts(&self) {
        let mut sessions = self.sessions.lock().unwrap();
        sessions.retain(|_, s| self.users.get(s.user_id).is_some());
        self.chains
            .lock()
            .unwrap()
            .retain(|id, _| sessions.contains_key(id));
        self.tokens
            .lock()
            .unwrap()
            .retain(|_, (id, _)| sessions.contains_key(id));
    }

    /// Stores a token of `generation` and moves the session's last use and expiry.
    fn record_use(&self, exchange: &RefreshTokenExchange<'_>, generation: i64) {
        self.tokens
            .lock()
            .unwrap()
            .insert(exchange.successor.clone(), (exchange.session, generation));
        if let Some(session) = self.sessions.lock().unwrap().get_mut(&exchange.session) {
            session.last_used_at = exchange.now;
            session.expires_at = exchange.expires_at;
        }
    }

    fn active(&self, user: UserId, now: DateTime<Utc>) -> Vec<Session> {
        let mut sessions: Vec<Session> = self
            .sessions
            .lock()
            .unwrap()
            .values()
            .filter(|s| s.user_id == user && s.is_active_at(now))
            .cloned()
            .collect();
        sessions.sort_by_key(|s| std::cmp::Reverse(s.id.as_uuid()));
        sessions
    }
}

#[async_trait]
impl SessionRepository for InMemorySessions {
    async fn create(
        &self,
        session: &Session,
        refresh_token: &TokenHash,
    ) -> Result<(), RepositoryError> {
        self.sessions
            .lock()
            .unwrap()
            .insert(session.id, session.clone());
        self.chains.lock().unwrap().insert(
            session.id,
            RefreshChain {
                generation: 0,
                rotated_at: session.created_at,
                siblings: 0,
            },
        );
        self.tokens
            .lock()
            .unwrap()
            .insert(refresh_token.clone(), (session.id, 0));
        Ok(())
    }

    async fn find(&self, id: SessionId) -> Result<Option<Session>, RepositoryError> {
        Ok(self.get(id))
    }

    async fn find_with_user(
        &self,
        id: SessionId,
    ) -> Result<Option<(Session, User)>, RepositoryError> {
        Ok(self
            .get(id)
            .and_then(|session| Some((session.clone(), self.users.get(session.user_id)?))))
    }

    async fn find_by_refresh_token(
        &self,
        token: &TokenHash,
    ) -> Result<Option<PresentedRefreshToken>, RepositoryError> {
        self.forget_deleted_accounts();
        let found = self.tokens.lock().unwrap().get(token).copied();
        Ok(found.and_then(|(id, generation)| {
            Some(PresentedRefreshToken {
                session: self.get(id)?,
                generation,
                chain: *self.chains.lock().unwrap().get(&id)?,
            })
        }))
    }

    async fn rotate_refresh_token(
        &self,
        exchange: &RefreshTokenExchange<'_>,
    ) -> Result<bool, RepositoryError> {
        self.forget_deleted_accounts();
        {
            let mut chains = self.chains.lock().unwrap();
            match chains.get_mut(&exchange.session) {
                Some(chain) if chain.generation == exchange.generation => {
                    *chain = RefreshChain {
                        generation: exchange.generation + 1,
                        rotated_at: exchange.now,
                        siblings: 0,
                    };
                }
                _ => return Ok(false),
            }
        }
        self.record_use(exchange, exchange.generation + 1);
        Ok(true)
    }

    async fn add_sibling(
        &self,
        exchange: &RefreshTokenExchange<'_>,
        max_siblings: u32,
    ) -> Result<SiblingAdded, RepositoryError> {
        self.forget_deleted_accounts();
        {
            let mut chains = self.chains.lock().unwrap();
            match chains.get_mut(&exchange.session) {
                Some(chain) if chain.generation != exchange.generation => {
                    return Ok(SiblingAdded::Moved);
                }
                None => return Ok(SiblingAdded::Moved),
                Some(chain) if chain.siblings >= max_siblings => {
                    return Ok(SiblingAdded::Exhausted);
                }
                Some(chain) => chain.siblings += 1,
            }
        }
        self.record_use(exchange, exchange.generation);
        Ok(SiblingAdded::Added)
    }

    async fn reauthenticate(
        &self,
        id: SessionId,
        authentication: crate::domain::Authentication,
    ) -> Result<bool, RepositoryError> {
        self.forget_deleted_accounts();
        let mut sessions = self.sessions.lock().unwrap();
        Ok(match sessions.get_mut(&id) {
            Some(session) if session.is_active_at(authentication.at) => {
                session.authenticated = authentication;
                true
            }
            _ => false,
        })
    }

    async fn revoke(&self, id: SessionId, now: DateTime<Utc>) -> Result<bool, RepositoryError> {
        self.forget_deleted_accounts();
        let mut sessions = self.sessions.lock().unwrap();
        Ok(match sessions.get_mut(&id) {
            Some(session) if session.revoked_at.is_none() => {
                session.revoked_at = Some(now);
                true
            }
            _ => false,
        })
    }

    async fn revoke_all(
        &self,
        user: UserId,
        except: Option<SessionId>,
        now: DateTime<Utc>,
    ) -> Result<u64, RepositoryError> {
        self.forget_deleted_accounts();
        let mut ended = 0;
        for session in self.sessions.lock().unwrap().values_mut() {
            if session.user_id == user && session.is_active_at(now) && Some(session.id) != except {
                session.revoked_at = Some(now);
                ended += 1;
            }
        }
        Ok(ended)
    }

    async fn list_active(
        &self,
        user: UserId,
        now: DateTime<Utc>,
        page: &PageRequest<SessionId>,
    ) -> Result<Page<Session>, RepositoryError> {
        self.forget_deleted_accounts();
        let newest_first = self.active(user, now);
        let probe: Vec<Session> = match page {
            PageRequest::Forward { after, first } => newest_first
                .into_iter()
                .filter(|s| after.is_none_or(|a| s.id.as_uuid() < a.as_uuid()))
                .take(first + 1)
                .collect(),
            PageRequest::Backward { before, last } => newest_first
                .into_iter()
                .rev()
                .filter(|s| before.is_none_or(|b| s.id.as_uuid() > b.as_uuid()))
                .take(last + 1)
                .collect(),
        };
        Ok(Page::from_probe(page, probe))
    }

    async fn count_active(&self, user: UserId, now: DateTime<Utc>) -> Result<u64, RepositoryError> {
        self.forget_deleted_accounts();
        Ok(self.active(user, now).len() as u64)
    }

    async fn delete_ended(&self, now: DateTime<Utc>) -> Result<u64, RepositoryError> {
        self.forget_deleted_accounts();
        let mut sessions = self.sessions.lock().unwrap();
        let before = sessions.len();
        sessions.retain(|_, s| s.is_active_at(now));
        Ok((before - sessions.len()) as u64)
    }
}

pub struct InMemoryAccountTokens {
    tokens: Mutex<Vec<(AccountToken, Option<DateTime<Utc>>)>>,
    attempts: Mutex<HashMap<TokenHash, u32>>,
    users: Arc<InMemoryUsers>,
}

impl InMemoryAccountTokens {
    pub fn new(users: Arc<InMemoryUsers>) -> Self {
        Self {
            tokens: Mutex::default(),
            attempts: Mutex::default(),
            users,
        }
    }

    /// Whether the token's account is still in the state it was issued for (see
    /// `AccountTokenRepository::consume`).
    fn bound(&self, token: &AccountToken) -> bool {
        self.users
            .get(token.user_id)
            .is_some_and(|user| match token.purpose {
                TokenPurpose::SecureAccount => true,
                purpose => {
                    user.email == token.email
                        && user.credential_version == token.credential_version
                        && (purpose != TokenPurpose::EmailChange
                            || user.pending_email == token.target_email)
                }
            })
    }

    /// Whether a stored token is `token` of `purpose`, unused, unexpired and still bound.
    fn usable(
        &self,
        (stored, used): &(AccountToken, Option<DateTime<Utc>>),
        token: &TokenHash,
        purpose: TokenPurpose,
        now: DateTime<Utc>,
    ) -> bool {
        &stored.hash == token
            && stored.purpose == purpose
            && used.is_none()
            && now < stored.expires_at
            && self.bound(stored)
    }

    /// The issue-time check: the account has the address and version the token was made with.
    fn as_read(&self, token: &AccountToken) -> bool {
        self.users.get(token.user_id).is_some_and(|user| {
            user.email == token.email && user.credential_version == token.credential_version
        })
    }
}

#[async_trait]
impl AccountTokenRepository for InMemoryAccountTokens {
    async fn issue(&self, token: &AccountToken) -> Result<bool, RepositoryError> {
        if !self.as_read(token) {
            return Ok(false);
        }
        let mut tokens = self.tokens.lock().unwrap();
        if token.purpose.replaces_earlier() {
            tokens.retain(|(t, _)| !(t.user_id == token.user_id && t.purpose == token.purpose));
        }
        tokens.push((token.clone(), None));
        Ok(true)
    }

    async fn consume(
        &self,
        token: &TokenHash,
        purpose: TokenPurpose,
        now: DateTime<Utc>,
    ) -> Result<Option<UsedToken>, RepositoryError> {
        let mut tokens = self.tokens.lock().unwrap();
        Ok(tokens
            .iter_mut()
            .find(|entry| self.usable(entry, token, purpose, now))
            .map(|(t, used)| {
                *used = Some(now);
                used_token(t)
            }))
    }

    async fn peek(
        &self,
        token: &TokenHash,
        purpose: TokenPurpose,
        now: DateTime<Utc>,
    ) -> Result<Option<UsedToken>, RepositoryError> {
        let tokens = self.tokens.lock().unwrap();
        Ok(tokens
            .iter()
            .find(|entry| self.usable(entry, token, purpose, now))
            .map(|(t, _)| used_token(t)))
    }

    async fn attempt(
        &self,
        token: &TokenHash,
        purpose: TokenPurpose,
        max_attempts: u32,
        now: DateTime<Utc>,
    ) -> Result<Option<UsedToken>, RepositoryError> {
        let tokens = self.tokens.lock().unwrap();
        let mut attempts = self.attempts.lock().unwrap();
        let tried = attempts.entry(token.clone()).or_default();
        Ok(tokens
            .iter()
            .find(|entry| self.usable(entry, token, purpose, now))
            .filter(|_| *tried < max_attempts)
            .map(|(t, _)| {
                *tried += 1;
                used_token(t)
            }))
    }

    async fn delete_spent(&self, now: DateTime<Utc>) -> Result<u64, RepositoryError> {
        let mut tokens = self.tokens.lock().unwrap();
        // Deleting an account deleted its tokens (a cascade in the database).
        tokens.retain(|(t, _)| self.users.get(t.user_id).is_some());
        let before = tokens.len();
        tokens.retain(|(t, used)| used.is_none() && now < t.expires_at);
        Ok((before - tokens.len()) as u64)
    }
}

/// The account and addresses of a stored token.
fn used_token(token: &AccountToken) -> UsedToken {
    UsedToken {
        user_id: token.user_id,
        email: token.email.clone(),
        target_email: token.target_email.clone(),
        credential_version: token.credential_version,
    }
}

/// The recovery path over the other fakes, as the database does it in one transaction.
pub struct InMemoryRecovery {
    pub users: Arc<InMemoryUsers>,
    pub tokens: Arc<InMemoryAccountTokens>,
    pub sessions: Arc<InMemorySessions>,
    pub factors: Arc<InMemoryFactors>,
}

#[async_trait]
impl crate::domain::AccountRecoveryStore for InMemoryRecovery {
    async fn secure(
        &self,
        link: &TokenHash,
        locked_password: &PasswordHash,
        now: DateTime<Utc>,
    ) -> Result<Option<crate::domain::Secured>, RepositoryError> {
        let recovery = TokenPurpose::SecureAccount;
        let mut tokens = self.tokens.tokens.lock().unwrap();
        let usable = |(t, used): &(AccountToken, Option<DateTime<Utc>>)| {
            t.purpose == recovery && used.is_none() && now < t.expires_at
        };
        let Some(used) = tokens
            .iter()
            .find(|entry| &entry.0.hash == link && usable(entry))
            .map(|(t, _)| t.clone())
        else {
            return Ok(None);
        };
        let (owner, address) = (used.user_id, used.email.clone());
        let mailbox = tokens
            .iter()
            .filter(|e| usable(e) && e.0.user_id == owner && e.0.email == address)
            .map(|(t, _)| t);
        let since = mailbox.clone().map(|t| t.created_at).min().unwrap_or(now);
        let first_version = mailbox.map(|t| t.credential_version).min().unwrap_or(0);
        if self
            .users
            .get_by_email(address.as_str())
            .is_some_and(|u| u.id != owner)
        {
            return Err(RepositoryError::Conflict);
        }

        let factor_removed = {
            let mut factors = self.factors.factors.lock().unwrap();
            let factor = factors.get(&owner).cloned();
            let removed = factor
                .as_ref()
                .is_some_and(|f| f.confirmed_at.is_some_and(|at| at >= since));
            if factor.is_some_and(|f| f.confirmed_at.is_none() || removed) {
                factors.remove(&owner);
            }
            removed
        };
        let recovery_codes_removed = {
            let made = self.factors.codes_made.lock().unwrap().get(&owner).copied();
            let mut codes = self.factors.codes.lock().unwrap();
            if factor_removed || made.is_some_and(|at| at >= since) {
                codes.remove(&owner).map_or(0, |c| c.len() as u64)
            } else {
                0
            }
        };
        self.users.update(owner, |u| {
            u.email = address.clone();
            u.email_verified_at = Some(now);
            u.pending_email = None;
            u.password_hash = locked_password.clone();
            u.credential_version += 1;
            u.updated_at = now;
            if factor_removed {
                u.mfa_enabled_at = None;
            }
        });
        let sessions_ended = {
            let mut sessions = self.sessions.sessions.lock().unwrap();
            let mut ended = 0;
            for session in sessions.values_mut() {
                if session.user_id == owner && session.is_active_at(now) {
                    session.revoked_at = Some(now);
                    ended += 1;
                }
            }
            ended
        };
        let mut links_voided = 0;
        for (t, spent) in tokens.iter_mut() {
            if t.hash == *link {
                *spent = Some(now);
            } else if t.user_id == owner
                && spent.is_none()
                && (t.purpose != recovery || t.credential_version >= first_version)
            {
                *spent = Some(now);
                links_voided += 1;
            }
        }
        Ok(Some(crate::domain::Secured {
            user_id: owner,
            email: address,
            sessions_ended,
            factor_removed,
            recovery_codes_removed,
            links_voided,
        }))
    }

    async fn is_reserved(
        &self,
        email: &Email,
        except: Option<UserId>,
        now: DateTime<Utc>,
    ) -> Result<bool, RepositoryError> {
        Ok(self.tokens.tokens.lock().unwrap().iter().any(|(t, used)| {
            t.purpose == TokenPurpose::SecureAccount
                && used.is_none()
                && now < t.expires_at
                && &t.email == email
                && Some(t.user_id) != except
        }))
    }
}

/// Keeps audit events in memory, written at once.
#[derive(Default)]
pub struct InMemoryAudit(Mutex<Vec<AuditEvent>>);

impl AuditLog for InMemoryAudit {
    fn record(&self, event: AuditEvent) {
        self.0.lock().unwrap().push(event);
    }
}

#[async_trait]
impl AuditStore for InMemoryAudit {
    async fn insert(&self, events: &[AuditEvent]) -> Result<(), RepositoryError> {
        self.0.lock().unwrap().extend_from_slice(events);
        Ok(())
    }

    async fn apply_retention(
        &self,
        delete_before: DateTime<Utc>,
        forget_client_before: DateTime<Utc>,
    ) -> Result<(u64, u64), RepositoryError> {
        let mut events = self.0.lock().unwrap();
        let before = events.len();
        events.retain(|e| e.occurred_at >= delete_before);
        let mut forgotten = 0;
        for event in events.iter_mut() {
            if event.occurred_at < forget_client_before
                && (event.ip.is_some() || event.user_agent.is_some())
            {
                event.ip = None;
                event.user_agent = None;
                forgotten += 1;
            }
        }
        Ok(((before - events.len()) as u64, forgotten))
    }
}

impl InMemoryAudit {
    /// The events stored so far, oldest first.
    pub fn events(&self) -> Vec<AuditEvent> {
        self.0.lock().unwrap().clone()
    }
}

/// "Hashes" by prefixing with the parameters' name; counts verifications so tests can see
/// the dummy hash was used.
pub struct FakeHasher {
    verifications: AtomicUsize,
    saturated: AtomicBool,
    dummy: PasswordHash,
}

impl Default for FakeHasher {
    fn default() -> Self {
        Self {
            verifications: AtomicUsize::new(0),
            saturated: AtomicBool::new(false),
            dummy: PasswordHash::new("current$<matches nothing>".into()),
        }
    }
}

impl FakeHasher {
    pub fn verifications(&self) -> usize {
        self.verifications.load(Ordering::SeqCst)
    }

    pub fn saturate(&self) {
        self.saturated.store(true, Ordering::SeqCst);
    }

    /// A hash as older parameters would have made it.
    pub fn outdated_hash(password: &str) -> PasswordHash {
        PasswordHash::new(format!("old${password}"))
    }

    fn check_capacity(&self) -> Result<(), HashError> {
        if self.saturated.load(Ordering::SeqCst) {
            Err(HashError::Overloaded)
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl PasswordHasher for FakeHasher {
    async fn hash(&self, password: Password) -> Result<PasswordHash, HashError> {
        self.check_capacity()?;
        Ok(PasswordHash::new(format!("current${}", password.expose())))
    }

    async fn verify(&self, password: Password, hash: &PasswordHash) -> Result<bool, HashError> {
        self.check_capacity()?;
        self.verifications.fetch_add(1, Ordering::SeqCst);
        Ok(hash.as_str().split_once('$').map(|(_, p)| p) == Some(password.expose()))
    }

    fn dummy_hash(&self) -> &PasswordHash {
        &self.dummy
    }

    fn needs_rehash(&self, hash: &PasswordHash) -> bool {
        !hash.as_str().starts_with("current$")
    }
}

/// Tokens of the form `user-id:session-id`: no signature, no expiry.
pub struct FakeTokens;

pub fn token_for(user: UserId, session: SessionId) -> String {
    format!("{user}:{session}")
}

impl AccessTokens for FakeTokens {
    fn issue(
        &self,
        claims: AccessClaims,
        _now: DateTime<Utc>,
    ) -> Result<IssuedAccessToken, TokenError> {
        Ok(IssuedAccessToken {
            token: token_for(claims.user_id, claims.session_id),
            expires_in: std::time::Duration::from_secs(900),
        })
    }

    fn verify(&self, token: &str, _now: DateTime<Utc>) -> Result<AccessClaims, TokenError> {
        let (user, session) = token.split_once(':').ok_or(TokenError::Invalid)?;
        Ok(AccessClaims {
            user_id: UserId::from_uuid(user.parse().map_err(|_| TokenError::Invalid)?),
            session_id: SessionId::from_uuid(session.parse().map_err(|_| TokenError::Invalid)?),
            authenticated: crate::domain::Authentication {
                at: _now,
                methods: crate::domain::AuthMethods::Password,
            },
        })
    }
}

/// Fixed windows that never refill (tests count attempts, not time); blocks never expire.
#[derive(Default)]
pub struct CountingLimiter {
    taken: Mutex<HashMap<String, u32>>,
    failures: Mutex<HashMap<String, u64>>,
    blocks: Mutex<HashMap<String, std::time::Duration>>,
}

#[async_trait]
impl RateLimiter for CountingLimiter {
    async fn acquire(
        &self,
        key: &LimitKey,
        quota: Quota,
    ) -> Result<Option<std::time::Duration>, LimiterError> {
        let mut taken = self.taken.lock().unwrap();
        let count = taken.entry(key.name.clone()).or_default();
        if *count >= quota.burst {
            return Ok(Some(quota.period / quota.burst));
        }
        *count += 1;
        Ok(None)
    }

    async fn count_failure(
        &self,
        key: &LimitKey,
        _window: std::time::Duration,
    ) -> Result<u64, LimiterError> {
        let mut failures = self.failures.lock().unwrap();
        let count = failures.entry(key.name.clone()).or_default();
        *count += 1;
        Ok(*count)
    }

    async fn block(
        &self,
        key: &LimitKey,
        duration: std::time::Duration,
    ) -> Result<(), LimiterError> {
        self.blocks
            .lock()
            .unwrap()
            .insert(key.name.clone(), duration);
        Ok(())
    }

    async fn blocked_for(
        &self,
        key: &LimitKey,
    ) -> Result<Option<std::time::Duration>, LimiterError> {
        Ok(self.blocks.lock().unwrap().get(&key.name).copied())
    }

    async fn clear(&self, key: &LimitKey) -> Result<(), LimiterError> {
        self.failures.lock().unwrap().remove(&key.name);
        self.blocks.lock().unwrap().remove(&key.name);
        Ok(())
    }
}

/// Holds deferred jobs until a test runs them, in order.
#[derive(Default)]
pub struct HeldJobs(Mutex<Vec<futures_util::future::BoxFuture<'static, ()>>>);

impl HeldJobs {
    pub async fn run_pending(&self) {
        loop {
            let jobs = std::mem::take(&mut *self.0.lock().unwrap());
            if jobs.is_empty() {
                return;
            }
            for job in jobs {
                job.await;
            }
        }
    }
}

impl Deferred for HeldJobs {
    fn defer(&self, _what: &'static str, job: futures_util::future::BoxFuture<'static, ()>) {
        self.0.lock().unwrap().push(job);
    }
}

/// Keeps every email.
#[derive(Default)]
pub struct RecordingMailer {
    pub sent: Mutex<Vec<OutgoingEmail>>,
}

#[async_trait]
impl Mailer for RecordingMailer {
    async fn send(&self, email: OutgoingEmail) {
        self.sent.lock().unwrap().push(email);
    }
}

/// A clock that stands still until told to move.
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl ManualClock {
    pub fn new() -> Self {
        Self(Mutex::new(
            Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap(),
        ))
    }

    pub fn advance(&self, by: Duration) {
        *self.0.lock().unwrap() += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

/// An account's recovery code hashes, with when each was used.
type RecoveryCodes = Vec<(TokenHash, Option<DateTime<Utc>>)>;

/// Second factors in memory; marks the account in the users' store as the database does.
pub struct InMemoryFactors {
    factors: Mutex<HashMap<UserId, crate::domain::TotpFactor>>,
    codes: Mutex<HashMap<UserId, RecoveryCodes>>,
    /// When each account's set of codes was made (a set is replaced whole).
    codes_made: Mutex<HashMap<UserId, DateTime<Utc>>>,
    users: Arc<InMemoryUsers>,
}

impl InMemoryFactors {
    pub fn new(users: Arc<InMemoryUsers>) -> Self {
        Self {
            factors: Mutex::default(),
            codes: Mutex::default(),
            codes_made: Mutex::default(),
            users,
        }
    }

    /// Deleting an account deletes its factor and recovery codes (a cascade in the
    /// database): forget those whose account is gone.
    fn forget_deleted_accounts(&self) {
        let exists = |user: &UserId| self.users.get(*user).is_some();
        self.factors.lock().unwrap().retain(|user, _| exists(user));
        self.codes.lock().unwrap().retain(|user, _| exists(user));
    }

    fn mark_account(&self, user: UserId, enabled_at: Option<DateTime<Utc>>) {
        self.users.update(user, |u| {
            u.mfa_enabled_at = enabled_at;
            u.credential_version += 1;
        });
    }

    fn store_codes(&self, user: UserId, codes: &[TokenHash], now: DateTime<Utc>) {
        self.codes_made.lock().unwrap().insert(user, now);
        self.codes
            .lock()
            .unwrap()
            .insert(user, codes.iter().map(|c| (c.clone(), None)).collect());
    }
}

#[async_trait]
impl crate::domain::SecondFactorStore for InMemoryFactors {
    async fn find(
        &self,
        user: UserId,
    ) -> Result<Option<crate::domain::TotpFactor>, RepositoryError> {
        self.forget_deleted_accounts();
        Ok(self.factors.lock().unwrap().get(&user).cloned())
    }

    async fn begin_enrollment(
        &self,
        factor: &crate::domain::TotpFactor,
    ) -> Result<bool, RepositoryError> {
        self.forget_deleted_accounts();
        let mut factors = self.factors.lock().unwrap();
        if factors
            .get(&factor.user_id)
            .is_some_and(|f| f.confirmed_at.is_some())
        {
            return Ok(false);
        }
        factors.insert(factor.user_id, factor.clone());
        Ok(true)
    }

    async fn confirm(
        &self,
        user: UserId,
        sealed_secret: &str,
        step: i64,
        recovery_codes: &[TokenHash],
        now: DateTime<Utc>,
    ) -> Result<bool, RepositoryError> {
        self.forget_deleted_accounts();
        {
            let mut factors = self.factors.lock().unwrap();
            match factors.get_mut(&user) {
                Some(f) if f.confirmed_at.is_none() && f.sealed_secret == sealed_secret => {
                    f.confirmed_at = Some(now);
                    f.last_step = step;
                }
                _ => return Ok(false),
            }
        }
        self.store_codes(user, recovery_codes, now);
        self.mark_account(user, Some(now));
        Ok(true)
    }

    async fn reseal(&self, user: UserId, from: &str, to: &str) -> Result<bool, RepositoryError> {
        let mut factors = self.factors.lock().unwrap();
        Ok(match factors.get_mut(&user) {
            Some(f) if f.sealed_secret == from => {
                f.sealed_secret = to.to_owned();
                true
            }
            _ => false,
        })
    }

    async fn accept_step(&self, user: UserId, step: i64) -> Result<bool, RepositoryError> {
        self.forget_deleted_accounts();
        let mut factors = self.factors.lock().unwrap();
        Ok(match factors.get_mut(&user) {
            Some(f) if f.confirmed_at.is_some() && f.last_step < step => {
                f.last_step = step;
                true
            }
            _ => false,
        })
    }

    async fn use_recovery_code(
        &self,
        user: UserId,
        code: &TokenHash,
        now: DateTime<Utc>,
    ) -> Result<bool, RepositoryError> {
        self.forget_deleted_accounts();
        let mut codes = self.codes.lock().unwrap();
        let unused = codes.get_mut(&user).and_then(|codes| {
            codes
                .iter_mut()
                .find(|(c, used)| c == code && used.is_none())
        });
        Ok(match unused {
            Some((_, used)) => {
                *used = Some(now);
                true
            }
            None => false,
        })
    }

    async fn replace_recovery_codes(
        &self,
        user: UserId,
        codes: &[TokenHash],
        now: DateTime<Utc>,
    ) -> Result<(), RepositoryError> {
        self.forget_deleted_accounts();
        self.store_codes(user, codes, now);
        Ok(())
    }

    async fn recovery_codes_left(&self, user: UserId) -> Result<u64, RepositoryError> {
        self.forget_deleted_accounts();
        Ok(self.codes.lock().unwrap().get(&user).map_or(0, |codes| {
            codes.iter().filter(|(_, used)| used.is_none()).count() as u64
        }))
    }

    async fn remove(&self, user: UserId) -> Result<bool, RepositoryError> {
        self.forget_deleted_accounts();
        let removed = {
            let mut factors = self.factors.lock().unwrap();
            match factors.get(&user) {
                Some(f) if f.confirmed_at.is_some() => factors.remove(&user).is_some(),
                _ => false,
            }
        };
        if removed {
            self.codes.lock().unwrap().remove(&user);
            self.mark_account(user, None);
        }
        Ok(removed)
    }
}

/// "Seals" by prefixing the owner: enough to tell that services store and open what they
/// sealed for the right account; the real cipher is tested in `security::secret_box`.
pub struct FakeSealer;

impl SecretSealer for FakeSealer {
    fn seal(&self, owner: UserId, secret: &[u8]) -> Result<String, SealError> {
        let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
        Ok(format!("{owner}:{hex}"))
    }

    fn open(&self, owner: UserId, sealed: &str) -> Result<zeroize::Zeroizing<Vec<u8>>, SealError> {
        let (sealed_for, hex) = sealed.split_once(':').ok_or(SealError::Corrupt)?;
        if sealed_for != owner.to_string() || hex.len() % 2 != 0 {
            return Err(SealError::Corrupt);
        }
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).map_err(|_| SealError::Corrupt))
            .collect::<Result<Vec<u8>, _>>()
            .map(zeroize::Zeroizing::new)
    }

    fn needs_reseal(&self, _sealed: &str) -> bool {
        false
    }
}
