//! The direct reads against the generic ones, on the same rows of one SQLite file: each hot
//! read must answer exactly as the generic one does.

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use entity::{session, user};
use migration::MigratorTrait;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use uuid::Uuid;

/// The integration tests' row writer, one copy for both suites.
#[path = "../../../../tests/api/helpers/rows.rs"]
mod rows;

use super::DirectReads;
use super::reads::ReadError;
use crate::domain::{
    AccountStore, AuthMethods, Authentication, DisplayName, Email, HotReads, PasswordHash,
    RefreshTokenExchange, Role, Session, SessionId, SessionRepository, SiblingAdded, Suspension,
    SuspensionReason, TokenHash, User, UserId,
};
use crate::infrastructure::persistence::{
    DatabaseSettings, QueryCounter, RetryCounter, SeaOrmHotReads, SeaOrmSessionRepository,
    SeaOrmUserRepository, Transactions, connect, migrate,
};
use rows::insert_row;

/// One SQLite file, the repositories that write it, and both implementations of the hot
/// reads over it, all counting their statements in `counter`.
struct Both {
    db: DatabaseConnection,
    path: String,
    counter: QueryCounter,
    users: SeaOrmUserRepository,
    sessions: SeaOrmSessionRepository,
    generic: SeaOrmHotReads,
    fast: DirectReads,
}

/// Connected, with the migrations up to `up_to` applied (all of them when `None`).
async fn database(file: &Path, up_to: Option<u32>) -> (DatabaseConnection, QueryCounter) {
    let settings = DatabaseSettings {
        url: format!("sqlite://{}?mode=rwc", file.display()),
        max_connections: 1,
        connect_timeout: Duration::from_secs(5),
    };
    let counter = QueryCounter::default();
    let db = connect(&settings, &counter).await.unwrap();
    match up_to {
        Some(steps) => migration::Migrator::up(&db, Some(steps)).await.unwrap(),
        None => migrate(&db).await.unwrap(),
    }
    (db, counter)
}

impl Both {
    fn over(db: DatabaseConnection, path: &Path, counter: QueryCounter) -> Self {
        let writes = Transactions::new(db.clone(), RetryCounter::default());
        let generic = SeaOrmHotReads::new(db.clone());
        Self {
            path: path.display().to_string(),
            users: SeaOrmUserRepository::new(writes.clone()),
            sessions: SeaOrmSessionRepository::new(writes),
            fast: DirectReads::new(path.display().to_string(), counter.clone(), generic.clone()),
            generic,
            db,
            counter,
        }
    }

    async fn migrated(dir: &tempfile::TempDir) -> Self {
        let path = dir.path().join("both.db");
        let (db, counter) = database(&path, None).await;
        Self::over(db, &path, counter)
    }

    /// Both paths agree on this session, down to the columns the domain value leaves out,
    /// and on its user by email; returns what they read.
    async fn agree_on_session(&self, id: SessionId) -> Option<(Session, User)> {
        let generic = self.generic.session_with_user(id).await.unwrap();
        let fast = self.fast.session_with_user(id).await.unwrap();
        assert_eq!(fast, generic, "session {id}");

        let rows = self.fast.session_rows(id).unwrap();
        let pool = session::Entity::find_by_id(id.as_uuid())
            .find_also_related(user::Entity)
            .one(&self.db)
            .await
            .unwrap()
            .and_then(|(session, user)| Some((session, user?)));
        assert_eq!(rows, pool, "rows of session {id}");

        if let Some((_, user)) = &fast {
            self.agree_on_user(&user.email).await;
        }
        fast
    }

    /// Both paths agree on the user with this email, down to the row.
    async fn agree_on_user(&self, email: &Email) -> Option<User> {
        let generic = self.generic.user_by_email(email).await.unwrap();
        let fast = self.fast.user_by_email(email).await.unwrap();
        assert_eq!(fast, generic, "user {}", email.as_str());

        let row = self.fast.user_row_by_email(email).unwrap();
        let pool = user::Entity::find()
            .filter(user::Column::Email.eq(email.as_str()))
            .one(&self.db)
            .await
            .unwrap();
        assert_eq!(row, pool, "row of user {}", email.as_str());
        fast
    }
}

/// An instant with nanoseconds: `precision` 0 keeps whole seconds, 3 milliseconds, and so on
/// (sqlx writes as many fraction digits as the value has).
fn at(seconds: i64, precision: u32) -> DateTime<Utc> {
    let nanos = 123_456_789 / 10_u32.pow(9 - precision) * 10_u32.pow(9 - precision);
    Utc.timestamp_opt(1_790_000_000 + seconds, nanos).unwrap()
}

fn email(address: &str) -> Email {
    Email::parse(address).unwrap()
}

/// Accounts with every optional field set and unset, every role, every precision.
fn users() -> Vec<User> {
    let bare = User {
        id: UserId::from_uuid(Uuid::now_v7()),
        email: email("bob@example.com"),
        display_name: None,
        role: Role::User,
        password_hash: PasswordHash::new("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into()),
        email_verified_at: None,
        suspension: None,
        created_at: at(0, 9),
        updated_at: at(0, 0),
        credential_version: 0,
        pending_email: None,
        mfa_enabled_at: None,
        has_password: true,
    };
    vec![
        User {
            id: UserId::from_uuid(Uuid::now_v7()),
            email: email("ada@example.com"),
            display_name: Some(DisplayName::from_stored("Ada Lovelace — ✓".into())),
            role: Role::Admin,
            email_verified_at: Some(at(1, 6)),
            suspension: Some(Suspension {
                since: at(2, 9),
                reason: SuspensionReason::parse("abuse of the API").unwrap(),
            }),
            created_at: at(3, 0),
            updated_at: at(4, 3),
            credential_version: 42,
            pending_email: Some(email("ada@new.example.com")),
            mfa_enabled_at: Some(at(5, 6)),
            has_password: false,
            ..bare.clone()
        },
        User {
            id: UserId::from_uuid(Uuid::now_v7()),
            email: email("carol@example.com"),
            display_name: Some(DisplayName::from_stored("Carol".into())),
            email_verified_at: Some(at(5, 3)),
            ..bare.clone()
        },
        bare,
    ]
}

fn session_of(user: &User, created: i64, precision: u32) -> Session {
    Session {
        id: SessionId::generate(),
        user_id: user.id,
        created_at: at(created, precision),
        last_used_at: at(created + 1, precision),
        expires_at: at(created + 86_400, precision),
        revoked_at: None,
        user_agent: Some("Mozilla/5.0 (X11; Linux x86_64)".into()),
        ip: Some("2001:db8::1".into()),
        authenticated: Authentication {
            at: at(created + 1, precision),
            methods: if precision.is_multiple_of(2) {
                AuthMethods::PasswordAndOtp
            } else {
                AuthMethods::Password
            },
        },
    }
}

fn token(name: &str) -> TokenHash {
    TokenHash::from_stored(name.into())
}

#[tokio::test]
async fn the_fast_paths_read_every_field_as_the_generic_ones_do() {
    let dir = tempfile::tempdir().unwrap();
    let both = Both::migrated(&dir).await;
    let users = users();
    for user in &users {
        both.users.insert(user).await.unwrap();
    }
    let (ada, carol, bob) = (&users[0], &users[1], &users[2]);

    let plain = session_of(ada, 10, 6);
    both.sessions.create(&plain, &token("plain")).await.unwrap();

    // Sessions revoked, rotated, with siblings, without a user agent or address.
    let revoked = session_of(ada, 20, 9);
    both.sessions
        .create(&revoked, &token("revoked"))
        .await
        .unwrap();
    both.sessions.revoke(revoked.id, at(21, 3)).await.unwrap();
    let rotated = session_of(bob, 30, 3);
    both.sessions
        .create(&rotated, &token("rotated-0"))
        .await
        .unwrap();
    let exchange = |presented, successor, generation| RefreshTokenExchange {
        session: rotated.id,
        presented,
        successor,
        generation,
        now: at(31, 6),
        expires_at: at(40_000, 6),
    };
    let (first, second, sibling) = (token("rotated-0"), token("rotated-1"), token("sibling"));
    assert!(
        both.sessions
            .rotate_refresh_token(&exchange(&first, &second, 0))
            .await
            .unwrap()
    );
    assert_eq!(
        both.sessions
            .add_sibling(&exchange(&first, &sibling, 1), 3)
            .await
            .unwrap(),
        SiblingAdded::Added
    );
    let anonymous = Session {
        user_agent: None,
        ip: None,
        ..session_of(carol, 50, 0)
    };
    both.sessions
        .create(&anonymous, &token("anonymous"))
        .await
        .unwrap();

    for session in [&plain, &revoked, &rotated, &anonymous] {
        let (read, user) = both.agree_on_session(session.id).await.unwrap();
        assert_eq!(read.id, session.id);
        assert_eq!(user.id, session.user_id);
    }
    let (read, _) = both.agree_on_session(revoked.id).await.unwrap();
    assert_eq!(read.revoked_at, Some(at(21, 3)));
    let (rotated_row, _) = both.fast.session_rows(rotated.id).unwrap().unwrap();
    assert_eq!(
        (rotated_row.generation, rotated_row.siblings),
        (1, 1),
        "the chain columns are read too"
    );
    let (read, user) = both.agree_on_session(anonymous.id).await.unwrap();
    assert_eq!((read, &user), (anonymous, carol));
    for user in &users {
        assert_eq!(both.agree_on_user(&user.email).await.as_ref(), Some(user));
    }

    // Nothing there: both answer none.
    assert_eq!(both.agree_on_session(SessionId::generate()).await, None);
    assert_eq!(both.agree_on_user(&email("nobody@example.com")).await, None);
}

#[tokio::test]
async fn rows_of_an_older_release_or_written_by_hand_read_the_same_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("upgraded.db");
    // The schema of the release before credential versions, rotation chains and pending
    // emails, and rows it wrote.
    let (db, counter) = database(&path, Some(3)).await;
    let (old_user, old_session) = (Uuid::now_v7(), Uuid::now_v7());
    insert_row(
        &db,
        "users",
        vec![
            ("id", old_user.into()),
            ("email", "old@example.com".into()),
            ("password_hash", "hash".into()),
            ("role", "user".into()),
            ("created_at", at(0, 6).into()),
            ("updated_at", at(0, 6).into()),
        ],
    )
    .await;
    insert_row(
        &db,
        "sessions",
        vec![
            ("id", old_session.into()),
            ("user_id", old_user.into()),
            ("created_at", at(1, 6).into()),
            ("last_used_at", at(2, 6).into()),
            ("expires_at", at(3, 6).into()),
        ],
    )
    .await;
    migrate(&db).await.unwrap();

    // Timestamps as `sqlite3` or a hand-written fix-up would store them: no `T`, no offset,
    // no fraction, `Z`.
    let (hand_user, hand_session) = (Uuid::now_v7(), Uuid::now_v7());
    let writer = rusqlite::Connection::open(&path).unwrap();
    writer
        .execute(
            "INSERT INTO users (id, email, password_hash, role, created_at, updated_at) \
             VALUES (?1, 'dan@example.com', 'hash', 'admin', '2026-01-02 03:04:05', \
             '2026-01-02 03:04:05.250+00:00')",
            [hand_user],
        )
        .unwrap();
    writer
        .execute(
            "INSERT INTO sessions (id, user_id, created_at, last_used_at, expires_at, \
             rotated_at) VALUES (?1, ?2, '2026-01-02T03:04:05Z', '2026-01-02 03:04:05', \
             '2026-02-02T03:04:05.123456+00:00', '2026-01-02T03:04:05.5Z')",
            [hand_session, hand_user],
        )
        .unwrap();

    let both = Both::over(db, &path, counter);
    let (session, user) = both
        .agree_on_session(SessionId::from_uuid(old_session))
        .await
        .expect("the old session reads");
    assert_eq!(user.role, Role::User);
    assert_eq!(session.created_at, at(1, 6));
    let (_, user) = both
        .agree_on_session(SessionId::from_uuid(hand_session))
        .await
        .expect("the hand-written session reads");
    assert_eq!(
        user.created_at,
        Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap()
    );
}

#[tokio::test]
async fn every_statement_is_counted_as_the_generic_path_counts_it() {
    let dir = tempfile::tempdir().unwrap();
    let both = Both::migrated(&dir).await;
    let user = &users()[0];
    both.users.insert(user).await.unwrap();
    let (fast, generic) = (session_of(user, 0, 6), session_of(user, 0, 6));

    let counted = |before: u64| both.counter.get() - before;
    both.sessions.create(&fast, &token("fast")).await.unwrap();
    both.sessions
        .create(&generic, &token("generic"))
        .await
        .unwrap();

    let before = both.counter.get();
    both.fast.session_with_user(fast.id).await.unwrap();
    let fast_read = counted(before);
    let before = both.counter.get();
    both.generic.session_with_user(fast.id).await.unwrap();
    assert_eq!((fast_read, counted(before)), (1, 1), "session_with_user");

    let before = both.counter.get();
    both.fast.user_by_email(&user.email).await.unwrap();
    let fast_read = counted(before);
    let before = both.counter.get();
    both.generic.user_by_email(&user.email).await.unwrap();
    assert_eq!((fast_read, counted(before)), (1, 1), "user_by_email");
}

#[tokio::test]
async fn a_busy_database_sends_the_read_to_the_generic_path() {
    let dir = tempfile::tempdir().unwrap();
    let user = &users()[0];
    let session = session_of(user, 0, 6);
    let written = Both::migrated(&dir).await;
    written.users.insert(user).await.unwrap();
    written
        .sessions
        .create(&session, &token("t"))
        .await
        .unwrap();
    written.db.close().await.unwrap();

    // The direct reads go to a copy that an exclusive-mode writer holds (the one thing that
    // shuts readers out of a WAL database), the pool to the file itself: whatever answers
    // comes from the generic path.
    let locked = dir.path().join("locked.db");
    std::fs::copy(&written.path, &locked).unwrap();
    let locker = rusqlite::Connection::open(&locked).unwrap();
    locker
        .execute_batch("PRAGMA locking_mode = EXCLUSIVE; BEGIN EXCLUSIVE;")
        .unwrap();
    let (pool, counter) = database(Path::new(&written.path), None).await;
    let both = Both::over(pool, &locked, counter);

    // The direct read answers at once instead of waiting for the lock…
    let began = std::time::Instant::now();
    let read = both.fast.session_rows(session.id);
    assert!(matches!(read, Err(ReadError::Busy)), "{read:?}");
    let read = both.fast.user_row_by_email(&user.email);
    assert!(matches!(read, Err(ReadError::Busy)), "{read:?}");
    assert!(began.elapsed() < Duration::from_secs(1));

    // …and the reads go to the generic path instead.
    let (read, read_user) = both
        .fast
        .session_with_user(session.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((read, &read_user), (session, user));
    let read_user = both.fast.user_by_email(&user.email).await.unwrap();
    assert_eq!(read_user.as_ref(), Some(user));
}

#[tokio::test]
async fn a_commit_made_through_the_pool_is_read_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let both = Both::migrated(&dir).await;
    let user = &users()[1];
    let session = session_of(user, 0, 6);
    // A connection already open and used keeps no stale snapshot between reads.
    assert_eq!(both.fast.session_with_user(session.id).await.unwrap(), None);
    assert_eq!(both.fast.user_by_email(&user.email).await.unwrap(), None);

    both.users.insert(user).await.unwrap();
    both.sessions.create(&session, &token("t")).await.unwrap();
    let (read, _) = both
        .fast
        .session_with_user(session.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.revoked_at, None);
    assert!(
        both.fast
            .user_by_email(&user.email)
            .await
            .unwrap()
            .is_some()
    );

    both.sessions.revoke(session.id, at(7, 6)).await.unwrap();
    let (read, _) = both
        .fast
        .session_with_user(session.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.revoked_at, Some(at(7, 6)));
}
