//! The repository suite: every rule a store keeps, tested once, against the SeaORM
//! repositories as the composition root wires them (`app::stores`, with the SQLite fast
//! paths on SQLite) on a fresh database: SQLite by default, PostgreSQL or MySQL/MariaDB when
//! `TEST_DATABASE_URL` names a server. A new store method is tested here, once.
//!
//! Times are whole seconds from a fixed instant: every backend stores them exactly, and the
//! repositories take the time from their caller, never from the system clock.

mod accounts;
mod admin_guard;
mod audit_retention;
mod directory;
mod links;
mod passkeys;
mod recovery;
mod refresh;
mod second_factor;
mod sessions;
mod social;

use std::sync::Arc;
use std::time::Duration;

use authgraph::domain::{
    AccountRecoveryStore, AccountStore, AccountToken, AccountTokenRepository, AuditStore, Email,
    HotReads, PasskeyStore, PasswordHash, Role, SecondFactorStore, Session, SessionId,
    SessionRepository, UsedToken, User, UserDirectory,
};
use authgraph::infrastructure::persistence::{
    self, DatabaseSettings, OverlapGate, QueryCounter, RetryCounter, Transactions,
};
use chrono::{DateTime, TimeZone, Utc};

use crate::helpers::TestDatabase;

/// A fresh, migrated database and its transactions, whose overlap gate `race` arms.
pub struct Fresh {
    pub database: TestDatabase,
    pub writes: Transactions,
    pub overlap: OverlapGate,
    pub queries: QueryCounter,
}

impl Fresh {
    pub async fn database() -> Self {
        let database = TestDatabase::migrated().await;
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
        Self {
            database,
            writes,
            overlap,
            queries,
        }
    }
}

/// The repositories under test, over one fresh database.
pub struct Stores {
    pub accounts: Arc<dyn AccountStore>,
    /// On a SQLite file, the SQLite adapter's reads on the calling thread.
    pub reads: Arc<dyn HotReads>,
    pub sessions: Arc<dyn SessionRepository>,
    pub links: Arc<dyn AccountTokenRepository>,
    pub audit: Arc<dyn AuditStore>,
    pub factors: Arc<dyn SecondFactorStore>,
    pub recovery: Arc<dyn AccountRecoveryStore>,
    pub passkeys: Arc<dyn PasskeyStore>,
    pub directory: Arc<dyn UserDirectory>,
    /// Holds a transaction until a racing one has begun.
    overlap: OverlapGate,
    _database: TestDatabase,
}

impl Stores {
    /// The repositories on a fresh, migrated database, wired as the composition root wires
    /// them.
    pub async fn new() -> Self {
        let Fresh {
            database,
            writes,
            overlap,
            queries,
        } = Fresh::database().await;
        let stores = authgraph::app::stores(&database.url, true, &writes, &queries);
        Self {
            accounts: stores.accounts,
            reads: stores.reads,
            sessions: stores.sessions,
            links: stores.links,
            audit: stores.audit,
            factors: stores.factors,
            recovery: stores.recovery,
            passkeys: stores.passkeys,
            directory: stores.directory,
            overlap,
            _database: database,
        }
    }

    /// Runs the calls of a race so that they overlap for sure: the first transaction to
    /// finish is held until another has begun.
    pub async fn race<T>(&self, calls: impl std::future::Future<Output = T>) -> T {
        self.overlap.arm();
        let outcome = calls.await;
        assert!(self.overlap.finish(), "the racing calls did not overlap");
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

    /// The database's URL (which backend the suite runs on).
    pub fn url(&self) -> &str {
        &self._database.url
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
