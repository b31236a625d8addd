//! Where the data lives, and how the service reaches it.

use std::time::Duration;

use clap::Args;
use secrecy::{ExposeSecret, SecretString};

use super::secret;
use crate::infrastructure::persistence::DatabaseSettings;

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Database")]
pub struct DatabaseConfig {
    /// Database URL: `sqlite://…`, `postgres://…` or `mysql://…`. A SQLite file and its
    /// folder are created if missing.
    #[arg(
        long,
        env = "DATABASE_URL",
        hide_env_values = true,
        default_value = "sqlite://data/authgraph.db?mode=rwc",
        value_parser = secret,
        global = true
    )]
    pub database_url: SecretString,

    /// Most connections the pool opens (PostgreSQL and MySQL; on SQLite the pool has one:
    /// SQLite takes one writer at a time, and its hot-path reads bypass the pool).
    #[arg(
        long,
        env = "DATABASE_MAX_CONNECTIONS",
        default_value_t = 10,
        global = true
    )]
    pub database_max_connections: u32,

    /// How long to wait for a database connection before failing a request.
    #[arg(long, env = "DATABASE_CONNECT_TIMEOUT", default_value = "5s", value_parser = humantime::parse_duration, global = true)]
    pub database_connect_timeout: Duration,

    /// On SQLite, read the session check and the lookup by email on the calling thread
    /// (`infrastructure/persistence/sqlite/`). `false` keeps the generic repositories, to
    /// compare the two.
    #[arg(long, env = "SQLITE_FAST_PATHS", default_value_t = true, value_parser = clap::builder::BoolishValueParser::new(), action = clap::ArgAction::Set, global = true)]
    pub sqlite_fast_paths: bool,
}

impl DatabaseConfig {
    /// DATABASE_URL, password included.
    pub fn url(&self) -> &str {
        self.database_url.expose_secret()
    }

    pub fn settings(&self) -> DatabaseSettings {
        DatabaseSettings {
            url: self.url().to_owned(),
            max_connections: self.database_max_connections,
            connect_timeout: self.database_connect_timeout,
        }
    }
}
