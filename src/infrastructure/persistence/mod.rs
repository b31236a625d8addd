//! SeaORM repositories over the `entity` crate, and the database connection.

mod account_tokens;
mod audit;
mod sessions;
mod users;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr};

use crate::domain::RepositoryError;

pub use account_tokens::SeaOrmAccountTokenRepository;
pub use audit::SeaOrmAuditRepository;
pub use sessions::SeaOrmSessionRepository;
pub use users::SeaOrmUserRepository;

/// Pool settings.
#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    pub url: String,
    pub max_connections: u32,
    pub connect_timeout: Duration,
}

/// Counts the statements sent to the database (tests use it to prove batching; it costs an
/// atomic increment per statement).
#[derive(Debug, Clone, Default)]
pub struct QueryCounter(Arc<AtomicU64>);

impl QueryCounter {
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Opens a pool. For SQLite the file and its folder are created if missing, and the
/// connection is set up for a server: WAL so readers never block the writer, a busy timeout
/// so concurrent writers wait instead of failing, foreign keys on, and `synchronous = FULL`
/// so an acknowledged write survives a power cut, not only a crash.
pub async fn connect(
    settings: &DatabaseSettings,
    counter: &QueryCounter,
) -> Result<DatabaseConnection, DbErr> {
    if let Some(path) = sqlite_file(&settings.url)
        && let Some(dir) = Path::new(path).parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir).map_err(|e| {
            DbErr::Custom(format!("cannot create the folder {}: {e}", dir.display()))
        })?;
    }
    let mut options = ConnectOptions::new(settings.url.clone());
    options
        .max_connections(settings.max_connections)
        .connect_timeout(settings.connect_timeout)
        .acquire_timeout(settings.connect_timeout)
        .sqlx_logging(false)
        .map_sqlx_sqlite_opts(|opts: SqliteConnectOptions| {
            opts.journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .busy_timeout(Duration::from_secs(5))
                .foreign_keys(true)
        });
    let mut db = Database::connect(options).await?;
    let counter = counter.clone();
    db.set_metric_callback(move |_| {
        counter.0.fetch_add(1, Ordering::Relaxed);
    });
    Ok(db)
}

/// Applies pending migrations.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    Migrator::up(db, None).await
}

/// The file path of a `sqlite:` URL, if it names a file (not `:memory:`).
pub fn sqlite_file(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("sqlite:")?;
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && !path.starts_with(":memory:")).then_some(path)
}

/// Unique-index violations become `Conflict`; anything else is a storage failure. Driver
/// messages may contain SQL and values, so they stay inside the error source, for the log.
fn repository_error(error: DbErr) -> RepositoryError {
    match error.sql_err() {
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_)) => RepositoryError::Conflict,
        _ => RepositoryError::Unavailable(Box::new(error)),
    }
}

#[cfg(test)]
mod tests {
    use super::sqlite_file;

    #[test]
    fn sqlite_file_paths_are_found_in_every_url_form() {
        assert_eq!(
            sqlite_file("sqlite://data/app.db?mode=rwc"),
            Some("data/app.db")
        );
        assert_eq!(sqlite_file("sqlite:app.db"), Some("app.db"));
        assert_eq!(sqlite_file("sqlite:///tmp/app.db"), Some("/tmp/app.db"));
        assert_eq!(sqlite_file("sqlite::memory:"), None);
        assert_eq!(sqlite_file("postgres://localhost/app"), None);
    }
}
