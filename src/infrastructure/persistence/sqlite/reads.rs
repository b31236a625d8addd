//! Reads served from SQLite on the calling thread.
//!
//! Through sqlx, each statement is handed to the connection's worker thread and the answer
//! handed back: two thread wake-ups that cost more than the query itself (profiled: the
//! futex waits dominate the `me` path). A point lookup by primary key in a WAL database
//! takes microseconds, so it runs right here, on a plain read-only connection.
//!
//! It never waits on a lock: the connection has no busy timeout, and when SQLite answers
//! "busy" (a checkpoint resetting the WAL, for instance) the caller asks the generic
//! repository instead. Every statement is its own read transaction, so it sees every commit
//! made before it began, by this process or another one — revocation still takes effect at
//! once.
//!
//! The statements are the ones SeaORM builds from the entities for the generic path, and rows
//! are read by the column names SeaORM gives them, so the two paths cannot drift apart.

use std::sync::{Mutex, OnceLock};

use chrono::{DateTime, Utc};
use rusqlite::types::{FromSql, FromSqlResult, ValueRef};
use rusqlite::{Connection, OpenFlags, Row, ToSql};
use sea_orm::ColumnTrait;

use super::super::QueryCounter;
use super::super::failure::{Failure, sqlite_code};

/// Read-only connections to one SQLite file, opened on first use and reused. At most one per
/// thread is ever in use at once, since nothing awaits while holding one.
pub struct DirectReads {
    path: String,
    idle: Mutex<Vec<Connection>>,
    /// The statements sent, counted with the pool's.
    statements: QueryCounter,
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

impl DirectReads {
    pub fn new(path: impl Into<String>, statements: QueryCounter) -> Self {
        Self {
            path: path.into(),
            idle: Mutex::new(Vec::new()),
            statements,
        }
    }

    /// Runs `query` with its one parameter and reads the first row it returns, if any.
    pub(super) fn first_row<L, T>(
        &self,
        query: &Query<L>,
        parameter: impl ToSql,
        read: impl FnOnce(&Row<'_>, &L) -> rusqlite::Result<T>,
    ) -> Result<Option<T>, ReadError> {
        self.with_connection(|connection| {
            let mut statement = connection.prepare_cached(&query.sql)?;
            let layout = match query.layout.get() {
                Some(layout) => layout,
                None => {
                    let located = (query.locate)(&statement)?;
                    query.layout.get_or_init(|| located)
                }
            };
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

/// A statement SeaORM built for SQLite, with one parameter bound at each read, and where its
/// columns are in a row: found by name the first time it runs (finding a name costs a scan of
/// every column's name, too dear for every value of every read).
pub(super) struct Query<L> {
    sql: String,
    layout: OnceLock<L>,
    locate: fn(&rusqlite::Statement<'_>) -> rusqlite::Result<L>,
}

impl<L> Query<L> {
    pub(super) fn new(
        statement: sea_orm::Statement,
        locate: fn(&rusqlite::Statement<'_>) -> rusqlite::Result<L>,
    ) -> Self {
        Self {
            sql: statement.sql,
            layout: OnceLock::new(),
            locate,
        }
    }
}

/// Where each column of an entity is in the rows of one statement: its name, after the
/// prefix SeaORM gives that entity's columns in the statement (`A_`, `B_` in a join).
pub(super) struct Columns<C> {
    at: Vec<(C, usize)>,
}

impl<C: ColumnTrait> Columns<C> {
    pub(super) fn locate(
        statement: &rusqlite::Statement<'_>,
        prefix: &str,
    ) -> rusqlite::Result<Self> {
        let at = C::iter()
            .map(|column| {
                let name = format!("{prefix}{}", column.as_str());
                Ok((column, statement.column_index(&name)?))
            })
            .collect::<rusqlite::Result<_>>()?;
        Ok(Self { at })
    }

    /// The value of `column` in `row`.
    pub(super) fn get<T: FromSql>(&self, row: &Row<'_>, column: C) -> rusqlite::Result<T> {
        let wanted = std::mem::discriminant(&column);
        match self
            .at
            .iter()
            .find(|(c, _)| std::mem::discriminant(c) == wanted)
        {
            Some((_, at)) => row.get(*at),
            None => Err(rusqlite::Error::InvalidColumnName(column.as_str().into())),
        }
    }

    pub(super) fn instant(&self, row: &Row<'_>, column: C) -> rusqlite::Result<DateTime<Utc>> {
        self.get(row, column).map(|Instant(at)| at)
    }

    pub(super) fn optional_instant(
        &self,
        row: &Row<'_>,
        column: C,
    ) -> rusqlite::Result<Option<DateTime<Utc>>> {
        self.get(row, column)
            .map(|at: Option<Instant>| at.map(|Instant(at)| at))
    }
}

/// A stored `DateTime<Utc>`, read as sqlx reads it for the generic path. sqlx writes RFC 3339
/// (`2026-01-02T03:04:05.123456+00:00`, as many fraction digits as the value has) and tries
/// chrono's RFC 3339 parser first; so does this, and it leaves anything else (a row written
/// by hand, `2026-01-02 03:04:05`) to rusqlite's chrono support. rusqlite alone would read
/// the RFC 3339 text through a format string, several times slower on the hottest read.
struct Instant(DateTime<Utc>);

impl FromSql for Instant {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        if let ValueRef::Text(text) = value
            && let Ok(text) = std::str::from_utf8(text)
            && let Ok(parsed) = DateTime::parse_from_rfc3339(text)
        {
            return Ok(Self(parsed.to_utc()));
        }
        DateTime::<Utc>::column_result(value).map(Self)
    }
}
