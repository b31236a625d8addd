//! The repository contract: one set of tests, written once against the port traits, run
//! against the in-memory fakes the unit tests use and against the SeaORM repositories (on
//! SQLite, or on the server `TEST_DATABASE_URL` names), so the fakes are proven to behave like
//! the real thing. `contract!` runs a test on both; what only the real repositories implement
//! (the administrator's directory) runs on them alone.
//!
//! Times are whole seconds from a fixed instant: every backend stores them exactly, and the
//! repositories take the time from their caller, never from the system clock.

mod accounts;
mod admin_guard;
mod audit_retention;
mod directory;
mod links;
mod recovery;
mod refresh;
mod second_factor;
mod sessions;
mod social;

use std::sync::Arc;
use std::time::Duration;

use authgraph::app::account_and_session_stores;
use authgraph::application::fakes::{
    InMemoryAccountTokens, InMemoryAudit, InMemoryFactors, InMemoryRecovery, InMemorySessions,
    InMemoryUsers,
};
use authgraph::domain::{
    AccountRecoveryStore, AccountStore, AccountToken, AccountTokenRepository, AuditStore, Email,
    PasswordHash, Role, SecondFactorStore, Session, SessionId, SessionRepository, UsedToken, User,
    UserDirectory,
};
use authgraph::infrastructure::persistence::{
    self, DatabaseSettings, OverlapGate, QueryCounter, RetryCounter, SeaOrmAccountRecovery,
    SeaOrmAccountTokenRepository, SeaOrmAuditRepository, SeaOrmSecondFactorRepository,
    SeaOrmUserRepository, Transactions,
};
use chrono::{DateTime, TimeZone, Utc};

use crate::helpers::TestDatabase;

/// The repositories under test, over one store.
pub struct Stores {
    pub accounts: Arc<dyn AccountStore>,
    pub sessions: Arc<dyn SessionRepository>,
    pub links: Arc<dyn AccountTokenRepository>,
    pub audit: Arc<dyn AuditStore>,
    pub factors: Arc<dyn SecondFactorStore>,
    pub recovery: Arc<dyn AccountRecoveryStore>,
    /// Holds a transaction until a racing one has begun (the SeaORM stores only).
    overlap: Option<OverlapGate>,
    _database: Option<TestDatabase>,
}

impl Stores {
    /// The fakes of the unit tests, wired together as `Fakes` wires them.
    pub async fn in_memory() -> Self {
        let users = Arc::new(InMemoryUsers::default());
        let sessions = Arc::new(InMemorySessions::new(users.clone()));
        let links = Arc::new(InMemoryAccountTokens::new(users.clone()));
        let factors = Arc::new(InMemoryFactors::new(users.clone()));
        Self {
            recovery: Arc::new(InMemoryRecovery {
                users: users.clone(),
                tokens: links.clone(),
                sessions: sessions.clone(),
                factors: factors.clone(),
            }),
            sessions,
            links,
            audit: Arc::new(InMemoryAudit::default()),
            factors,
            accounts: users,
            overlap: None,
            _database: None,
        }
    }

    /// The SeaORM repositories on a fresh, migrated database, wired as the composition root
    /// wires them (with the direct reads on SQLite).
    pub async fn sea_orm() -> Self {
        Self::sea_orm_with_directory().await.0
    }

    /// The same, with the administrator's directory over the same table.
    pub async fn sea_orm_with_directory() -> (Self, Arc<dyn UserDirectory>) {
        let database = TestDatabase::create().await;
        let queries = QueryCounter::default();
        let db = persistence::connect(
            &DatabaseSettings {
                url: database.url.clone(),
                max_connections: 5,
                connect_timeout: Duration::from_secs(10),
            },
            &queries,
        )
        .await
        .expect("the test database answers");
        persistence::migrate(&db).await.expect("migrations apply");
        let overlap = OverlapGate::default();
        let writes =
            Transactions::new(db, RetryCounter::default()).with_overlap_gate(overlap.clone());
        let (accounts, sessions) =
            account_and_session_stores(&database.url, true, &writes, &queries);
        let stores = Self {
            accounts,
            sessions,
            links: Arc::new(SeaOrmAccountTokenRepository::new(writes.clone())),
            audit: Arc::new(SeaOrmAuditRepository::new(writes.clone())),
            factors: Arc::new(SeaOrmSecondFactorRepository::new(writes.clone())),
            recovery: Arc::new(SeaOrmAccountRecovery::new(writes.clone())),
            overlap: Some(overlap),
            _database: Some(database),
        };
        (stores, Arc::new(SeaOrmUserRepository::new(writes)))
    }

    /// Runs the calls of a race so that they overlap for sure: on the SeaORM stores the
    /// first transaction to finish is held until another has begun (the in-memory fakes
    /// serialise every call under one lock: there is nothing to overlap).
    pub async fn race<T>(&self, calls: impl std::future::Future<Output = T>) -> T {
        if let Some(gate) = &self.overlap {
            gate.arm();
        }
        let outcome = calls.await;
        if let Some(gate) = &self.overlap {
            assert!(gate.finish(), "the racing calls did not overlap");
        }
        outcome
    }

    /// Stores a new account with this address and role, created at `at`.
    pub async fn account(&self, email: &str, role: Role, at: DateTime<Utc>) -> User {
        let user = User::new(
            Email::parse(email).unwrap(),
            None,
            role,
            PasswordHash::new("$argon2id$not-checked-here".into()),
            None,
            at,
        );
        self.accounts.insert(&user).await.unwrap();
        user
    }

    /// The account as stored now.
    pub async fn reread(&self, user: &User) -> Option<User> {
        self.accounts.find_by_id(user.id).await.unwrap()
    }
}

/// The instant every contract test starts from.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap()
}

/// `seconds` after [`t0`].
pub fn at(seconds: i64) -> DateTime<Utc> {
    t0() + chrono::Duration::seconds(seconds)
}

/// `address` as an [`Email`].
pub fn email(address: &str) -> Email {
    Email::parse(address).unwrap()
}

/// Issues `token`, which must not have been issued before.
pub async fn issued(stores: &Stores, token: &AccountToken) {
    assert!(
        stores.links.issue(token).await.unwrap(),
        "the token is issued"
    );
}

/// Uses `token` once, `seconds` after t0: what it was issued for, or none when it does not work.
pub async fn used(stores: &Stores, token: &AccountToken, seconds: i64) -> Option<UsedToken> {
    stores
        .links
        .consume(&token.hash, token.purpose, at(seconds))
        .await
        .unwrap()
}

/// A new session of `user`, opened at `opened`, that expires a day later.
pub fn session_of(user: &User, opened: DateTime<Utc>) -> Session {
    Session {
        id: SessionId::generate(),
        user_id: user.id,
        created_at: opened,
        last_used_at: opened,
        expires_at: opened + chrono::Duration::days(1),
        revoked_at: None,
        user_agent: Some("contract-test".into()),
        ip: Some("192.0.2.7".into()),
        authenticated: authgraph::domain::Authentication {
            at: opened,
            methods: authgraph::domain::AuthMethods::Password,
        },
    }
}

/// Runs each named test, an `async fn(Stores)`, once on the fakes and once on the SeaORM
/// repositories.
macro_rules! contract {
    ($($test:ident),+ $(,)?) => {
        mod in_memory {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test($crate::contract::Stores::in_memory().await).await;
                }
            )+
        }

        mod sea_orm {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test($crate::contract::Stores::sea_orm().await).await;
                }
            )+
        }
    };
}
pub(crate) use contract;
