//! The reads on every authenticated request and every sign-in, served from SQLite on the
//! calling thread.
//!
//! Through sqlx, each statement is handed to the connection's worker thread and the answer
//! handed back: two thread wake-ups that cost more than the query itself (profiled: the
//! futex waits dominate the `me` path). A point lookup by primary key in a WAL database
//! takes microseconds, so it runs right here, on a plain read-only connection.
//!
//! It never waits on a lock: the connection has no busy timeout, and when SQLite answers
//! "busy" (a checkpoint resetting the WAL, for instance) the caller falls back to the pool.
//! Every statement is its own read transaction, so it sees every commit made before it
//! began, by this process or another one — revocation still takes effect at once.

use std::sync::Mutex;

use chrono::{DateTime, Utc};
use entity::{session, user};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags, Row};

use crate::domain::RepositoryError;

use super::failure::{Failure, sqlite_code};

/// Read-only connections to one SQLite file, opened on first use and reused. At most one per
/// thread is ever in use at once, since nothing awaits while holding one.
pub struct SqliteReads {
    path: String,
    idle: Mutex<Vec<Connection>>,
}

/// Why a read did not answer.
#[derive(Debug)]
pub enum ReadError {
    /// The database is momentarily locked; ask the pool instead.
    Busy,
    Failed(rusqlite::Error),
}

impl From<rusqlite::Error> for ReadError {
    /// Busy is what the retry policy calls contention on SQLite (`failure::sqlite_code`): a
    /// read is always safe to repeat, and it is repeated once, through the pool, whose busy
    /// timeout waits.
    fn from(error: rusqlite::Error) -> Self {
        let primary = error.sqlite_error().map(|e| e.extended_code & 0xff);
        match primary.map(sqlite_code) {
            Some(Failure::Contention(_)) => Self::Busy,
            _ => Self::Failed(error),
        }
    }
}

/// Runs `read` on the direct connections when there are some and SQLite is not busy; `None`
/// tells the caller to ask the pool instead.
pub fn read_directly<T>(
    reads: Option<&SqliteReads>,
    read: impl FnOnce(&SqliteReads) -> Result<T, ReadError>,
) -> Result<Option<T>, RepositoryError> {
    match reads.map(read) {
        Some(Ok(found)) => Ok(Some(found)),
        Some(Err(ReadError::Failed(error))) => Err(RepositoryError::Internal(Box::new(error))),
        Some(Err(ReadError::Busy)) | None => Ok(None),
    }
}

const SESSION_WITH_USER: &str = "SELECT s.id, s.user_id, s.created_at, s.last_used_at, \
     s.expires_at, s.revoked_at, s.user_agent, s.ip, s.generation, s.rotated_at, s.siblings, \
     u.id, u.email, u.password_hash, u.display_name, u.role, u.email_verified_at, \
     u.suspended_at, u.suspension_reason, u.created_at, u.updated_at, u.credential_version, \
     u.pending_email FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = ?1";

const USER_BY_EMAIL: &str = "SELECT id, email, password_hash, display_name, role, \
     email_verified_at, suspended_at, suspension_reason, created_at, updated_at, \
     credential_version, pending_email FROM users WHERE email = ?1";

impl SqliteReads {
    pub fn new(path: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            idle: Mutex::new(Vec::new()),
        }
    }

    /// A session and its user, by the session's id.
    pub fn session_with_user(
        &self,
        id: uuid::Uuid,
    ) -> Result<Option<(session::Model, user::Model)>, ReadError> {
        self.with_connection(|connection| {
            let mut statement = connection.prepare_cached(SESSION_WITH_USER)?;
            let mut rows = statement.query([id])?;
            let Some(row) = rows.next()? else {
                return Ok(None);
            };
            Ok(Some((session_at(row, 0)?, user_at(row, 11)?)))
        })
    }

    /// A user, by email address (stored normalised, as the pool compares it).
    pub fn user_by_email(&self, email: &str) -> Result<Option<user::Model>, ReadError> {
        self.with_connection(|connection| {
            let mut statement = connection.prepare_cached(USER_BY_EMAIL)?;
            let mut rows = statement.query([email])?;
            match rows.next()? {
                Some(row) => Ok(Some(user_at(row, 0)?)),
                None => Ok(None),
            }
        })
    }

    fn with_connection<T>(
        &self,
        read: impl FnOnce(&Connection) -> Result<T, rusqlite::Error>,
    ) -> Result<T, ReadError> {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let connection = match idle {
            Some(connection) => connection,
            None => self.open()?,
        };
        let result = read(&connection);
        self.idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(connection);
        Ok(result?)
    }

    fn open(&self) -> Result<Connection, rusqlite::Error> {
        let connection = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        connection.busy_timeout(std::time::Duration::ZERO)?;
        Ok(connection)
    }
}

fn session_at(row: &Row<'_>, first: usize) -> Result<session::Model, rusqlite::Error> {
    Ok(session::Model {
        id: row.get(first)?,
        user_id: row.get(first + 1)?,
        created_at: timestamp(row, first + 2)?,
        last_used_at: timestamp(row, first + 3)?,
        expires_at: timestamp(row, first + 4)?,
        revoked_at: optional_timestamp(row, first + 5)?,
        user_agent: row.get(first + 6)?,
        ip: row.get(first + 7)?,
        generation: row.get(first + 8)?,
        rotated_at: optional_timestamp(row, first + 9)?,
        siblings: row.get(first + 10)?,
    })
}

fn user_at(row: &Row<'_>, first: usize) -> Result<user::Model, rusqlite::Error> {
    Ok(user::Model {
        id: row.get(first)?,
        email: row.get(first + 1)?,
        password_hash: row.get(first + 2)?,
        display_name: row.get(first + 3)?,
        role: row.get(first + 4)?,
        email_verified_at: optional_timestamp(row, first + 5)?,
        suspended_at: optional_timestamp(row, first + 6)?,
        suspension_reason: row.get(first + 7)?,
        created_at: timestamp(row, first + 8)?,
        updated_at: timestamp(row, first + 9)?,
        credential_version: row.get(first + 10)?,
        pending_email: row.get(first + 11)?,
    })
}

/// sqlx stores `DateTime<Utc>` as RFC 3339 text, which chrono's dedicated parser reads several
/// times faster than rusqlite's format-string one; anything else still goes to the latter.
fn timestamp(row: &Row<'_>, index: usize) -> Result<DateTime<Utc>, rusqlite::Error> {
    if let ValueRef::Text(text) = row.get_ref(index)?
        && let Ok(text) = std::str::from_utf8(text)
        && let Ok(parsed) = DateTime::parse_from_rfc3339(text)
    {
        return Ok(parsed.to_utc());
    }
    row.get(index)
}

fn optional_timestamp(
    row: &Row<'_>,
    index: usize,
) -> Result<Option<DateTime<Utc>>, rusqlite::Error> {
    match row.get_ref(index)? {
        ValueRef::Null => Ok(None),
        _ => timestamp(row, index).map(Some),
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use chrono::{TimeZone, Utc};
    use entity::{session, user};
    use sea_orm::{
        ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, IntoActiveModel,
        QueryFilter,
    };
    use uuid::Uuid;

    use super::{ReadError, SqliteReads, read_directly};
    use crate::domain::RepositoryError;
    use crate::infrastructure::persistence::migrated_sqlite;

    async fn database(dir: &tempfile::TempDir) -> (DatabaseConnection, String) {
        let path = dir.path().join("reads.db");
        (migrated_sqlite(&path).await, path.display().to_string())
    }

    fn at(micros: i64) -> chrono::DateTime<Utc> {
        Utc.timestamp_micros(1_790_000_000_000_000 + micros)
            .unwrap()
    }

    async fn insert(db: &DatabaseConnection, user: user::Model, session: session::Model) {
        user.into_active_model().insert(db).await.unwrap();
        session.into_active_model().insert(db).await.unwrap();
    }

    /// What the pool reads for the same id: the direct read must never differ from it.
    async fn through_the_pool(
        db: &DatabaseConnection,
        id: Uuid,
    ) -> Option<(session::Model, user::Model)> {
        let (session, user) = session::Entity::find_by_id(id)
            .find_also_related(user::Entity)
            .one(db)
            .await
            .unwrap()?;
        Some((session, user?))
    }

    #[tokio::test]
    async fn reads_every_column_exactly_as_the_pool_does() {
        let dir = tempfile::tempdir().unwrap();
        let (db, path) = database(&dir).await;
        let full_user = user::Model {
            id: Uuid::new_v4(),
            email: "ada@example.com".into(),
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
            display_name: Some("Ada Lovelace — ✓".into()),
            role: "ADMIN".into(),
            email_verified_at: Some(at(1)),
            suspended_at: Some(at(2)),
            suspension_reason: Some("abuse".into()),
            created_at: at(3),
            updated_at: at(999_999),
            credential_version: 42,
            pending_email: Some("ada@new.example.com".into()),
        };
        let full_session = session::Model {
            id: Uuid::new_v4(),
            user_id: full_user.id,
            created_at: at(4),
            last_used_at: at(5),
            expires_at: at(86_400_000_000),
            revoked_at: Some(at(6)),
            user_agent: Some("Mozilla/5.0 (X11; Linux x86_64)".into()),
            ip: Some("2001:db8::1".into()),
            generation: 7,
            rotated_at: Some(at(7)),
            siblings: 2,
        };
        let bare_user = user::Model {
            id: Uuid::new_v4(),
            email: "bob@example.com".into(),
            display_name: None,
            role: "USER".into(),
            email_verified_at: None,
            suspended_at: None,
            suspension_reason: None,
            created_at: at(0),
            updated_at: at(0),
            pending_email: None,
            ..full_user.clone()
        };
        let bare_session = session::Model {
            id: Uuid::new_v4(),
            user_id: bare_user.id,
            revoked_at: None,
            user_agent: None,
            ip: None,
            ..full_session.clone()
        };
        insert(&db, full_user.clone(), full_session.clone()).await;
        insert(&db, bare_user.clone(), bare_session.clone()).await;
        let reads = SqliteReads::new(path);

        for (session, user) in [(full_session, full_user), (bare_session, bare_user)] {
            let direct = reads.session_with_user(session.id).unwrap();
            assert_eq!(direct, Some((session.clone(), user.clone())));
            assert_eq!(direct, through_the_pool(&db, session.id).await);

            let by_email = reads.user_by_email(&user.email).unwrap();
            assert_eq!(by_email.as_ref(), Some(&user));
            let pool = user::Entity::find()
                .filter(user::Column::Email.eq(user.email.as_str()))
                .one(&db)
                .await
                .unwrap();
            assert_eq!(by_email, pool);
        }
        assert_eq!(reads.session_with_user(Uuid::new_v4()).unwrap(), None);
        assert_eq!(reads.user_by_email("nobody@example.com").unwrap(), None);
    }

    #[tokio::test]
    async fn reads_timestamps_written_by_hand_like_the_pool_does() {
        let dir = tempfile::tempdir().unwrap();
        let (db, path) = database(&dir).await;
        let (user, session) = (Uuid::new_v4(), Uuid::new_v4());
        // What `sqlite3` or a hand-written fix-up would store: no `T`, no offset, no fraction.
        let writer = rusqlite::Connection::open(&path).unwrap();
        writer
            .execute(
                "INSERT INTO users (id, email, password_hash, role, created_at, updated_at) \
                 VALUES (?1, 'dan@example.com', 'hash', 'USER', '2026-01-02 03:04:05', \
                 '2026-01-02 03:04:05.250+00:00')",
                [user],
            )
            .unwrap();
        writer
            .execute(
                "INSERT INTO sessions (id, user_id, created_at, last_used_at, expires_at) \
                 VALUES (?1, ?2, '2026-01-02T03:04:05Z', '2026-01-02 03:04:05', \
                 '2026-02-02T03:04:05.123456+00:00')",
                [session, user],
            )
            .unwrap();

        let direct = SqliteReads::new(path).session_with_user(session).unwrap();
        assert!(direct.is_some());
        assert_eq!(direct, through_the_pool(&db, session).await);
    }

    #[tokio::test]
    async fn sees_a_commit_made_through_the_pool_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let (db, path) = database(&dir).await;
        let reads = SqliteReads::new(path);
        let user = user::Model {
            id: Uuid::new_v4(),
            email: "carol@example.com".into(),
            password_hash: "hash".into(),
            display_name: None,
            role: "USER".into(),
            email_verified_at: None,
            suspended_at: None,
            suspension_reason: None,
            created_at: at(0),
            updated_at: at(0),
            credential_version: 0,
            pending_email: None,
        };
        let session = session::Model {
            id: Uuid::new_v4(),
            user_id: user.id,
            created_at: at(0),
            last_used_at: at(0),
            expires_at: at(1_000_000),
            revoked_at: None,
            user_agent: None,
            ip: None,
            generation: 0,
            rotated_at: None,
            siblings: 0,
        };
        // A connection already open and used keeps no stale snapshot between reads.
        assert_eq!(reads.session_with_user(session.id).unwrap(), None);
        insert(&db, user, session.clone()).await;
        let (read, _) = reads.session_with_user(session.id).unwrap().unwrap();
        assert_eq!(read.revoked_at, None);

        let mut revoked = session.clone().into_active_model();
        revoked.revoked_at = sea_orm::ActiveValue::Set(Some(at(7)));
        revoked.update(&db).await.unwrap();
        let (read, _) = reads.session_with_user(session.id).unwrap().unwrap();
        assert_eq!(read.revoked_at, Some(at(7)));
    }

    #[tokio::test]
    async fn answers_busy_at_once_instead_of_waiting_for_a_lock() {
        let dir = tempfile::tempdir().unwrap();
        let (db, path) = database(&dir).await;
        db.close().await.unwrap();
        let reads = SqliteReads::new(path.clone());
        // An exclusive-mode writer is the one thing that shuts readers out of a WAL database.
        let locker = rusqlite::Connection::open(&path).unwrap();
        locker
            .execute_batch("PRAGMA locking_mode = EXCLUSIVE; BEGIN EXCLUSIVE;")
            .unwrap();

        let began = Instant::now();
        let read = reads.session_with_user(Uuid::new_v4());
        assert!(matches!(read, Err(ReadError::Busy)), "{read:?}");
        let read = reads.user_by_email("ada@example.com");
        assert!(matches!(read, Err(ReadError::Busy)), "{read:?}");
        assert!(began.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn a_busy_database_or_none_at_all_sends_the_read_to_the_pool() {
        let reads = SqliteReads::new("unused.db");
        let answered = read_directly(Some(&reads), |_| Ok(7)).unwrap();
        assert_eq!(answered, Some(7));
        let busy = read_directly(Some(&reads), |_| Err::<i32, _>(ReadError::Busy)).unwrap();
        assert_eq!(busy, None);
        assert_eq!(read_directly(None, |_| Ok(7)).unwrap(), None);
        let failed = read_directly(Some(&reads), |_| {
            Err::<i32, _>(ReadError::Failed(rusqlite::Error::InvalidQuery))
        });
        assert!(matches!(failed, Err(RepositoryError::Internal(_))));
    }
}
