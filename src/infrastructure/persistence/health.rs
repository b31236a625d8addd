//! The database as the operator sees it: the readiness probe's round trip and the pool,
//! statement and retry figures of `/metrics`.

use async_trait::async_trait;
use sea_orm::{DatabaseConnection, DbBackend};

use crate::application::ports::{StoreHealth, StoreUnreachable, StoreUsage};

use super::{Contention, QueryCounter, RetryCounter};

/// The `StoreHealth` adapter over the SeaORM pool and the persistence layer's counters.
pub struct DatabaseHealth {
    db: DatabaseConnection,
    queries: QueryCounter,
    retries: RetryCounter,
}

impl DatabaseHealth {
    pub fn new(db: DatabaseConnection, queries: QueryCounter, retries: RetryCounter) -> Self {
        Self {
            db,
            queries,
            retries,
        }
    }

    /// Open connections, and how many of them are idle.
    fn pool(&self) -> (u32, usize) {
        match self.db.get_database_backend() {
            DbBackend::Postgres => {
                let pool = self.db.get_postgres_connection_pool();
                (pool.size(), pool.num_idle())
            }
            DbBackend::MySql => {
                let pool = self.db.get_mysql_connection_pool();
                (pool.size(), pool.num_idle())
            }
            _ => {
                let pool = self.db.get_sqlite_connection_pool();
                (pool.size(), pool.num_idle())
            }
        }
    }
}

#[async_trait]
impl StoreHealth for DatabaseHealth {
    async fn ping(&self) -> Result<(), StoreUnreachable> {
        self.db
            .ping()
            .await
            .map_err(|error| StoreUnreachable(error.to_string()))
    }

    fn usage(&self) -> StoreUsage {
        let (connections, idle) = self.pool();
        StoreUsage {
            connections,
            idle_connections: u32::try_from(idle).unwrap_or(u32::MAX),
            statements: self.queries.get(),
            retries: [
                Contention::Deadlock,
                Contention::SerializationFailure,
                Contention::LockTimeout,
                Contention::Busy,
            ]
            .into_iter()
            .map(|reason| (reason.as_str(), self.retries.retried(reason)))
            .collect(),
            retries_exhausted: self.retries.exhausted(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_reachable_database_answers_and_reports_its_pool_and_every_retry_reason() {
        let dir = tempfile::tempdir().unwrap();
        let queries = QueryCounter::default();
        let db = super::super::migrated_sqlite(&dir.path().join("health.db")).await;
        let health = DatabaseHealth::new(db, queries, RetryCounter::default());
        health.ping().await.unwrap();
        let usage = health.usage();
        assert_eq!(usage.connections, 1, "SQLite keeps one pooled connection");
        assert!(usage.idle_connections <= usage.connections);
        assert_eq!(
            usage.retries,
            [
                ("deadlock", 0),
                ("serialization_failure", 0),
                ("lock_timeout", 0),
                ("busy", 0)
            ]
        );
        assert_eq!(usage.retries_exhausted, 0);
    }

    #[tokio::test]
    async fn a_closed_pool_is_unreachable() {
        let dir = tempfile::tempdir().unwrap();
        let db = super::super::migrated_sqlite(&dir.path().join("closed.db")).await;
        let health = DatabaseHealth::new(db.clone(), QueryCounter::default(), Default::default());
        db.close_by_ref().await.unwrap();
        assert!(health.ping().await.is_err());
    }
}
