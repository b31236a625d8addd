//! What a database error means for the caller: a conflict the use case expects, contention
//! that a repeat of the whole transaction resolves, a database that cannot be reached, or
//! anything else. Decided here once, for every backend, from the driver's error codes.

use std::ops::Deref;

use sea_orm::sqlx;
use sea_orm::{DbErr, RuntimeErr};

use crate::domain::RepositoryError;

/// The kinds of failure the rest of the persistence layer acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// A unique index rejected the write.
    Conflict,
    /// The transaction lost a race for locks (deadlock, serialization failure, lock wait
    /// timeout, SQLite busy) and was rolled back: running it again from the start is safe.
    Contention(Contention),
    /// The database cannot be reached: no connection in time, the connection was lost, the
    /// server is shutting down or refuses writes (a failover in progress).
    Unavailable,
    /// Anything else (a bug, corrupt data, a schema out of date).
    Other,
}

/// Which kind of contention, for the retry metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Contention {
    Deadlock,
    SerializationFailure,
    LockTimeout,
    Busy,
}

impl Contention {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deadlock => "deadlock",
            Self::SerializationFailure => "serialization_failure",
            Self::LockTimeout => "lock_timeout",
            Self::Busy => "busy",
        }
    }
}

/// Classifies a SeaORM error.
pub fn classify(error: &DbErr) -> Failure {
    match error {
        // Failing to get a connection from the pool, or to open one.
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => Failure::Unavailable,
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => {
            classify_sqlx(e)
        }
        _ => Failure::Other,
    }
}

fn classify_sqlx(error: &sqlx::Error) -> Failure {
    match error {
        sqlx::Error::Database(database) => classify_database(database.deref()),
        // The socket broke (the server went away or killed the connection), or the pool could
        // not hand out a working connection in time.
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => Failure::Unavailable,
        _ => Failure::Other,
    }
}

fn classify_database(error: &dyn sqlx::error::DatabaseError) -> Failure {
    if let Some(mysql) = error.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
        return mysql_number(mysql.number());
    }
    if let Some(postgres) = error.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
        return postgres_code(postgres.code());
    }
    if error
        .try_downcast_ref::<sqlx::sqlite::SqliteError>()
        .is_some()
    {
        // sqlx reports the extended result code; the primary code is its low byte.
        let code = error.code().and_then(|c| c.parse::<i32>().ok());
        return code.map_or(Failure::Other, |code| sqlite_code(code & 0xff));
    }
    Failure::Other
}

/// MySQL and MariaDB error numbers.
pub fn mysql_number(number: u16) -> Failure {
    match number {
        1022 | 1062 | 1169 | 1586 => Failure::Conflict,
        // ER_LOCK_DEADLOCK: the whole transaction was rolled back.
        1213 => Failure::Contention(Contention::Deadlock),
        // ER_LOCK_WAIT_TIMEOUT: only the statement was rolled back (innodb_rollback_on_timeout
        // is off by default); the helper rolls the transaction back before repeating it.
        1205 => Failure::Contention(Contention::LockTimeout),
        // Too many connections, server shutdown, connection killed (MariaDB), server gone
        // away / lost during query, read-only server or transaction (a failover).
        1040 | 1053 | 1927 | 2006 | 2013 | 1290 | 1792 | 1836 => Failure::Unavailable,
        _ => Failure::Other,
    }
}

/// PostgreSQL SQLSTATE codes.
pub fn postgres_code(code: &str) -> Failure {
    match code {
        "23505" => Failure::Conflict,
        "40001" => Failure::Contention(Contention::SerializationFailure),
        "40P01" => Failure::Contention(Contention::Deadlock),
        // lock_not_available: a lock_timeout ran out.
        "55P03" => Failure::Contention(Contention::LockTimeout),
        // admin_shutdown (pg_terminate_backend, a fast shutdown), crash_shutdown,
        // cannot_connect_now (starting up), too_many_connections, read_only_sql_transaction
        // (a standby after failover), and every connection exception.
        "57P01" | "57P02" | "57P03" | "53300" | "25006" => Failure::Unavailable,
        code if code.starts_with("08") => Failure::Unavailable,
        _ => Failure::Other,
    }
}

/// SQLite primary result codes.
pub fn sqlite_code(primary: i32) -> Failure {
    match primary {
        // SQLITE_BUSY, SQLITE_LOCKED: another connection holds the lock.
        5 | 6 => Failure::Contention(Contention::Busy),
        // SQLITE_CONSTRAINT is also foreign keys, not null and checks: the extended codes
        // tell them apart, and only uniqueness is a conflict (see `repository_error`).
        _ => Failure::Other,
    }
}

/// Turns a SeaORM error into the port's error. Unique-index violations become `Conflict`;
/// contention that outlasted its retries and an unreachable database are `Unavailable` (a
/// client should try again in a moment); anything else is `Internal`. Driver messages may
/// contain SQL and values, so they stay inside the error source, for the log.
pub fn repository_error(error: DbErr) -> RepositoryError {
    if let Some(sea_orm::SqlErr::UniqueConstraintViolation(_)) = error.sql_err() {
        return RepositoryError::Conflict;
    }
    match classify(&error) {
        Failure::Contention(_) | Failure::Unavailable => {
            RepositoryError::Unavailable(Box::new(error))
        }
        Failure::Conflict | Failure::Other => RepositoryError::Internal(Box::new(error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_races_are_contention_on_every_backend() {
        assert_eq!(
            mysql_number(1213),
            Failure::Contention(Contention::Deadlock)
        );
        assert_eq!(
            mysql_number(1205),
            Failure::Contention(Contention::LockTimeout)
        );
        assert_eq!(
            postgres_code("40001"),
            Failure::Contention(Contention::SerializationFailure)
        );
        assert_eq!(
            postgres_code("40P01"),
            Failure::Contention(Contention::Deadlock)
        );
        assert_eq!(sqlite_code(5), Failure::Contention(Contention::Busy));
        assert_eq!(
            sqlite_code(517 & 0xff),
            Failure::Contention(Contention::Busy)
        );
    }

    #[test]
    fn a_server_going_away_is_unavailable_and_a_bad_statement_is_not() {
        for code in ["57P01", "57P03", "08006", "53300", "25006"] {
            assert_eq!(postgres_code(code), Failure::Unavailable, "{code}");
        }
        for number in [1040, 1053, 1927, 1290] {
            assert_eq!(mysql_number(number), Failure::Unavailable, "{number}");
        }
        assert_eq!(postgres_code("42P01"), Failure::Other, "undefined table");
        assert_eq!(mysql_number(1064), Failure::Other, "syntax error");
        assert_eq!(sqlite_code(1), Failure::Other);
    }

    #[test]
    fn pool_and_connection_failures_are_unavailable() {
        let timed_out = DbErr::ConnectionAcquire(sea_orm::ConnAcquireErr::Timeout);
        assert_eq!(classify(&timed_out), Failure::Unavailable);
        let lost = DbErr::Exec(RuntimeErr::SqlxError(std::sync::Arc::new(sqlx::Error::Io(
            std::io::ErrorKind::ConnectionReset.into(),
        ))));
        assert_eq!(classify(&lost), Failure::Unavailable);
        assert!(matches!(
            repository_error(lost),
            RepositoryError::Unavailable(_)
        ));
        let other = DbErr::Custom("a bug".into());
        assert!(matches!(
            repository_error(other),
            RepositoryError::Internal(_)
        ));
    }
}
