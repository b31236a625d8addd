//! SeaORM repositories over the `entity` crate, and the database connection.

mod account_tokens;
mod audit;
mod counting;
mod failure;
mod health;
mod hot_reads;
mod passkeys;
mod recovery;
mod second_factor;
mod sessions;
mod social;
pub mod sqlite;
mod transactions;
mod user_directory;
mod users;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr, Statement,
    TransactionTrait,
};

pub use account_tokens::SeaOrmAccountTokenRepository;
pub use audit::SeaOrmAuditRepository;
pub use failure::Contention;
pub use health::DatabaseHealth;
pub use hot_reads::SeaOrmHotReads;
pub use passkeys::SeaOrmPasskeyRepository;
pub use recovery::SeaOrmAccountRecovery;
pub use second_factor::SeaOrmSecondFactorRepository;
pub use sessions::SeaOrmSessionRepository;
pub use social::SeaOrmSocialRepository;
#[cfg(feature = "test-hooks")]
pub use transactions::OverlapGate;
pub use transactions::{RetryCounter, RetryPolicy, Transactions};
pub use users::SeaOrmUserRepository;

use failure::repository_error;

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

    /// Counts statements sent past SeaORM (the SQLite fast paths).
    fn add(&self, statements: u64) {
        self.0.fetch_add(statements, Ordering::Relaxed);
    }
}

/// A pooled connection to a database server idle this long is pinged before it is used.
const PING_IF_IDLE_FOR: Duration = Duration::from_secs(5);

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
    let sqlite = settings.url.starts_with("sqlite:");
    let mut options = ConnectOptions::new(settings.url.clone());
    options
        // SQLite lets one writer in at a time. With more connections, a writer that finds
        // another one writing waits in SQLite's busy handler, which sleeps in growing steps,
        // and the tail of every write grows with them (bench/RESULTS.md has the figures).
        // With one connection, statements queue in the pool, first come first served. The
        // reads on the hot paths do not use the pool (sqlite/reads.rs).
        .max_connections(if sqlite { 1 } else { settings.max_connections })
        .connect_timeout(settings.connect_timeout)
        .acquire_timeout(settings.connect_timeout)
        .sqlx_logging(false);
    // By default every checkout pings the connection first: a second round trip for every
    // statement (on SQLite, two more thread hand-offs). A file cannot hang up; a server can,
    // but a connection used within the last seconds almost surely still works.
    if sqlite {
        options.test_before_acquire(false);
    } else {
        options.test_before_acquire_if_idle_for(PING_IF_IDLE_FOR);
    }
    // InnoDB's default, REPEATABLE READ, takes next-key (gap) locks on every locking read,
    // update and delete, and nothing here relies on them. Two sign-ups each deleting "the
    // earlier verification links" of their brand-new account (none) both locked the gap at
    // the end of the index, since UUIDv7 ids sort last, then each waited for the other to
    // insert there: a deadlock for one sign-up in seven at eight clients. READ COMMITTED takes
    // no gap locks outside foreign-key and duplicate checks, and is what PostgreSQL runs every
    // transaction at, where the same code is tested.
    options.map_sqlx_mysql_pool_opts(|pool| {
        pool.after_connect(|connection, _| {
            Box::pin(async move {
                sea_orm::sqlx::raw_sql("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
                    .execute(connection)
                    .await
                    .map(|_| ())
            })
        })
    });
    options.map_sqlx_sqlite_opts(|opts: SqliteConnectOptions| {
        opts.journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true)
    });
    let mut db = Database::connect(options).await?;
    let counter = counter.clone();
    db.set_metric_callback(move |_| counter.add(1));
    Ok(db)
}

/// Applies pending migrations. Instances starting together take turns: one applies them,
/// the others wait and then find nothing left to do. On SQLite the caller holds its
/// [`startup_turn`] through connecting and migrating.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    match db.get_database_backend() {
        // A lock held by a transaction's connection while the migrations run on the pool.
        DbBackend::Postgres => {
            let lock = db.begin().await?;
            lock.execute_unprepared(&format!(
                "SELECT pg_advisory_xact_lock({MIGRATION_LOCK_ID})"
            ))
            .await?;
            let applied = Migrator::up(db, None).await;
            lock.commit().await?;
            applied
        }
        DbBackend::MySql => {
            let lock = db.begin().await?;
            let held = lock
                .query_one_raw(Statement::from_string(
                    DbBackend::MySql,
                    format!("SELECT GET_LOCK('{MIGRATION_LOCK_NAME}', 300) AS held"),
                ))
                .await?
                .and_then(|row| row.try_get::<Option<i64>>("", "held").ok().flatten());
            if held != Some(1) {
                return Err(DbErr::Migration(
                    "timed out waiting for the migration lock".into(),
                ));
            }
            let applied = Migrator::up(db, None).await;
            lock.execute_unprepared(&format!("DO RELEASE_LOCK('{MIGRATION_LOCK_NAME}')"))
                .await?;
            lock.commit().await?;
            applied
        }
        // SQLite: the caller holds the `startup_turn`.
        _ => Migrator::up(db, None).await,
    }
}

/// Keys of the migration lock; any value unlikely to clash with an application's own.
const MIGRATION_LOCK_ID: i64 = 0x6175_7468_6772_6170; // "authgrap"
const MIGRATION_LOCK_NAME: &str = "authgraph-migrations";

/// For SQLite, instances starting together take turns from before they connect until they
/// have migrated: setting up a connection (WAL) needs the file while another instance may be
/// migrating it. `None` for a server database, whose turns `migrate` takes itself.
pub async fn startup_turn(url: &str) -> Result<Option<FileLock>, DbErr> {
    let Some(file) = sqlite_file(url) else {
        return Ok(None);
    };
    if let Some(dir) = Path::new(file).parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir).map_err(|e| {
            DbErr::Custom(format!("cannot create the folder {}: {e}", dir.display()))
        })?;
    }
    FileLock::acquire(format!("{file}.migrate-lock"))
        .await
        .map(Some)
}

/// An exclusive lock (`File::lock`, a `flock` on Unix) on a file beside a SQLite database,
/// released when dropped (also by the kernel if the process dies).
pub struct FileLock {
    _held: std::fs::File,
}

impl FileLock {
    async fn acquire(path: String) -> Result<Self, DbErr> {
        tokio::task::spawn_blocking(move || {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
                .map_err(|e| DbErr::Custom(format!("cannot open {path}: {e}")))?;
            file.lock()
                .map_err(|e| DbErr::Custom(format!("cannot lock {path}: {e}")))?;
            Ok(Self { _held: file })
        })
        .await
        .map_err(|e| DbErr::Custom(format!("the migration lock task failed: {e}")))?
    }
}

/// The file path of a `sqlite:` URL, if it names a file (not `:memory:`).
pub fn sqlite_file(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("sqlite:")?;
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && !path.starts_with(":memory:")).then_some(path)
}

/// A migrated SQLite database in `file`, for the tests of the SQLite-only paths.
#[cfg(test)]
async fn migrated_sqlite(file: &Path) -> DatabaseConnection {
    let url = format!("sqlite://{}?mode=rwc", file.display());
    let settings = DatabaseSettings {
        url: url.clone(),
        max_connections: 1,
        connect_timeout: Duration::from_secs(5),
    };
    let db = connect(&settings, &QueryCounter::default()).await.unwrap();
    migrate(&db).await.unwrap();
    db
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_sqlite_pool_has_one_connection_whatever_the_setting() {
        let dir = tempfile::tempdir().unwrap();
        let settings = DatabaseSettings {
            url: format!("sqlite://{}?mode=rwc", dir.path().join("one.db").display()),
            max_connections: 10,
            connect_timeout: Duration::from_secs(5),
        };
        let db = connect(&settings, &QueryCounter::default()).await.unwrap();
        let pool = db.get_sqlite_connection_pool();
        assert_eq!(pool.options().get_max_connections(), 1);
    }

    // Two processes starting on one SQLite file must migrate in turn: while a turn is held, any
    // other open of the lock file is refused its lock, and gets it once the turn is dropped.
    #[tokio::test]
    async fn the_startup_turn_on_a_sqlite_file_is_exclusive_until_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("app.db");
        let url = format!("sqlite://{}?mode=rwc", db.display());
        let other = || {
            std::fs::File::options()
                .write(true)
                .open(format!("{}.migrate-lock", db.display()))
                .unwrap()
        };

        let turn = startup_turn(&url).await.unwrap();
        assert!(turn.is_some());
        assert!(matches!(
            other().try_lock(),
            Err(std::fs::TryLockError::WouldBlock)
        ));

        drop(turn);
        other().try_lock().unwrap();
        assert!(startup_turn("sqlite::memory:").await.unwrap().is_none());
    }

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
