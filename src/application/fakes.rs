//! In-memory stand-ins for the ports, so service tests run without a database or real crypto.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Duration, TimeZone, Utc};

use crate::domain::{
    Email, Password, PasswordHash, RefreshTokenHash, RepositoryError, Session, SessionId,
    SessionRepository, User, UserId, UserRepository,
};

use super::auth::{AuthService, SessionPolicy};
use super::ports::{
    AccessClaims, AccessTokens, Clock, HashError, IssuedAccessToken, PasswordHasher, TokenError,
};

pub const POLICY: SessionPolicy = SessionPolicy {
    idle_timeout: Duration::days(30),
    max_age: Duration::days(90),
};

/// One set of fakes, shared by the services under test.
pub struct Fakes {
    pub users: Arc<InMemoryUsers>,
    pub sessions: Arc<InMemorySessions>,
    pub hasher: Arc<FakeHasher>,
    pub clock: Arc<ManualClock>,
}

impl Fakes {
    pub fn new() -> Self {
        Self {
            users: Arc::default(),
            sessions: Arc::default(),
            hasher: Arc::new(FakeHasher::default()),
            clock: Arc::new(ManualClock::new()),
        }
    }

    pub fn auth(&self) -> AuthService {
        AuthService::new(
            self.users.clone(),
            self.sessions.clone(),
            self.hasher.clone(),
            Arc::new(FakeTokens),
            self.clock.clone(),
            POLICY,
        )
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
}

#[async_trait]
impl UserRepository for InMemoryUsers {
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
}

#[derive(Default)]
pub struct InMemorySessions(Mutex<HashMap<SessionId, Session>>);

impl InMemorySessions {
    pub fn get(&self, id: SessionId) -> Option<Session> {
        self.0.lock().unwrap().get(&id).cloned()
    }
}

#[async_trait]
impl SessionRepository for InMemorySessions {
    async fn create(
        &self,
        session: &Session,
        _refresh_token: &RefreshTokenHash,
    ) -> Result<(), RepositoryError> {
        self.0.lock().unwrap().insert(session.id, session.clone());
        Ok(())
    }

    async fn find(&self, id: SessionId) -> Result<Option<Session>, RepositoryError> {
        Ok(self.get(id))
    }
}

/// "Hashes" by prefixing; counts verifications so tests can see the dummy hash was used.
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
            dummy: PasswordHash::new("fake$<matches nothing>".into()),
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
        Ok(PasswordHash::new(format!("fake${}", password.expose())))
    }

    async fn verify(&self, password: Password, hash: &PasswordHash) -> Result<bool, HashError> {
        self.check_capacity()?;
        self.verifications.fetch_add(1, Ordering::SeqCst);
        Ok(hash.as_str() == format!("fake${}", password.expose()))
    }

    fn dummy_hash(&self) -> &PasswordHash {
        &self.dummy
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

    fn verify(&self, token: &str) -> Result<AccessClaims, TokenError> {
        let (user, session) = token.split_once(':').ok_or(TokenError::Invalid)?;
        Ok(AccessClaims {
            user_id: UserId::from_uuid(user.parse().map_err(|_| TokenError::Invalid)?),
            session_id: SessionId::from_uuid(session.parse().map_err(|_| TokenError::Invalid)?),
        })
    }
}

/// A clock that stands still until told to move.
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    fn new() -> Self {
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
