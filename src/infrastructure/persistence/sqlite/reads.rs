//! Reads served from SQLite on the calling thread.
//!
//! Through sqlx, each statement is handed to the connection's worker thread and the answer
//! handed back: two thread wake-ups that cost more than the query itself (profiled: the
//! futex waits dominate the `me` path). A point lookup by primary key in a WAL database
//! takes microseconds, so it runs right here, on a plain read-only connection.
//!
//! It never waits on a lock: the connection has no busy timeout, and when SQLite answers
//! "busy" (a checkpoint resetting the WAL, for instance) the read goes to the generic
//! implementation instead. Every statement is its own read transaction, so it sees every commit
//! made before it began, by this process or another one — revocation still takes effect at
//! once.
//!
//! The statements are the ones SeaORM builds from the entities for the generic path, and rows
//! are read by the column names SeaORM gives them (`rows`), so the two paths cannot drift
//! apart.

use std::sync::Mutex;

use async_trait::async_trait;
use entity::{session, user};
use rusqlite::{Connection, OpenFlags, Row, ToSql};

use crate::domain::{Email, HotReads, RepositoryError, Session, SessionId, User};

use super::super::failure::{Failure, sqlite_code};
use super::super::{QueryCounter, SeaOrmHotReads, sessions, users};
use super::rows::{self, Columns, Query};

/// The hot reads of one SQLite file on the calling thread, through read-only connections
/// opened on first use and reused (at most one per thread is ever in use at once, since
/// nothing awaits while holding one); the generic reads when the file is busy.
pub struct DirectReads {
    path: String,
    idle: Mutex<Vec<Connection>>,
    /// The statements sent, counted with the pool's.
    statements: QueryCounter,
    generic: SeaOrmHotReads,
    user_by_email: Query<Columns<user::Column>>,
    session_with_user: Query<(Columns<session::Column>, Columns<user::Column>)>,
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

#[async_trait]
impl HotReads for DirectReads {
    async fn user_by_email(&self, email: &Email) -> Result<Option<User>, RepositoryError> {
        match self.user_row_by_email(email) {
            Ok(row) => row.map(users::to_domain).transpose(),
            Err(ReadError::Busy) => self.generic.user_by_email(email).await,
            Err(ReadError::Failed(error)) => Err(RepositoryError::Internal(Box::new(error))),
        }
    }

    async fn session_with_user(
        &self,
        id: SessionId,
    ) -> Result<Option<(Session, User)>, RepositoryError> {
        match self.session_rows(id) {
            Ok(Some((session, user))) => Ok(Some((
                sessions::to_domain(session),
                users::to_domain(user)?,
            ))),
            Ok(None) => Ok(None),
            Err(ReadError::Busy) => self.generic.session_with_user(id).await,
            Err(ReadError::Failed(error)) => Err(RepositoryError::Internal(Box::new(error))),
        }
    }
}

impl DirectReads {
    /// Reads from the SQLite file at `path`, counting statements in `statements`, and through
    /// `generic` when it is busy.
    pub fn new(path: impl Into<String>, statements: QueryCounter, generic: SeaOrmHotReads) -> Self {
        Self {
            path: path.into(),
            idle: Mutex::new(Vec::new()),
            statements,
            generic,
            user_by_email: rows::user_by_email(),
            session_with_user: rows::session_with_user(),
        }
    }

    /// The row of the user with this email, read on the calling thread.
    pub(super) fn user_row_by_email(
        &self,
        email: &Email,
    ) -> Result<Option<user::Model>, ReadError> {
        self.first_row(&self.user_by_email, email.as_str(), rows::user_row)
    }

    /// The rows of a session and its user, read on the calling thread.
    pub(super) fn session_rows(
        &self,
        id: SessionId,
    ) -> Result<Option<(session::Model, user::Model)>, ReadError> {
        let found = self.first_row(
            &self.session_with_user,
            id.as_uuid(),
            rows::session_and_user,
        )?;
        Ok(found.flatten())
    }

    /// Runs `query` with its one parameter and reads the first row it returns, if any.
    fn first_row<L, T>(
        &self,
        query: &Query<L>,
        parameter: impl ToSql,
        read: impl FnOnce(&Row<'_>, &L) -> rusqlite::Result<T>,
    ) -> Result<Option<T>, ReadError> {
        self.with_connection(|connection| {
            let mut statement = connection.prepare_cached(query.sql())?;
            let layout = query.layout(&statement)?;
            self.statements.add(1);
            let mut rows = statement.query([parameter])?;
            match rows.next()? {
                Some(row) => read(row, layout).map(Some),
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
