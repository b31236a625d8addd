//! Totals beside a page that cost at most a bounded read, whatever the table's size.

use sea_orm::sea_query::{Alias, Expr, Query};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, PaginatorTrait, QueryTrait,
    Select, Statement,
};

use crate::domain::RepositoryError;

use super::repository_error;

/// How many rows `query` selects, reading no more than `up_to + 1` of them: exact when the
/// answer is at most `up_to`, `up_to + 1` otherwise.
pub async fn bounded<E: EntityTrait>(
    db: &DatabaseConnection,
    query: Select<E>,
    up_to: u64,
) -> Result<u64, RepositoryError> {
    let mut rows = query.into_query();
    rows.clear_selects()
        .expr_as(Expr::val(1), Alias::new("one"))
        .limit(up_to.saturating_add(1));
    let count = Query::select()
        .expr_as(Expr::cust("COUNT(*)"), Alias::new("n"))
        .from_subquery(rows, Alias::new("bounded"))
        .to_owned();
    let n: i64 = db
        .query_one(&count)
        .await
        .map_err(repository_error)?
        .map(|row| row.try_get("", "n"))
        .transpose()
        .map_err(repository_error)?
        .unwrap_or(0);
    Ok(u64::try_from(n).unwrap_or(0))
}

/// The number of rows of an unfiltered `query` over `table`: exact up to `up_to`, past it the
/// database's own estimate (PostgreSQL's `pg_class.reltuples`, MySQL's `TABLE_ROWS`), never
/// below `up_to + 1`. SQLite keeps no estimate: there the count is exact.
pub async fn estimated<E: EntityTrait>(
    db: &DatabaseConnection,
    query: Select<E>,
    table: &str,
    up_to: u64,
) -> Result<u64, RepositoryError>
where
    E::Model: Sync,
{
    let counted = bounded(db, query.clone(), up_to).await?;
    if counted <= up_to {
        return Ok(counted);
    }
    let backend = db.get_database_backend();
    let statement = match backend {
        // -1 until the table was first vacuumed or analysed (PostgreSQL 14+).
        DbBackend::Postgres => Statement::from_sql_and_values(
            backend,
            "SELECT CAST(reltuples AS BIGINT) AS n FROM pg_class WHERE oid = to_regclass($1)",
            [table.into()],
        ),
        DbBackend::MySql => Statement::from_sql_and_values(
            backend,
            "SELECT CAST(TABLE_ROWS AS SIGNED) AS n FROM information_schema.TABLES \
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?",
            [table.into()],
        ),
        _ => return query.count(db).await.map_err(repository_error),
    };
    let estimate: Option<i64> = db
        .query_one_raw(statement)
        .await
        .map_err(repository_error)?
        .and_then(|row| row.try_get::<Option<i64>>("", "n").ok().flatten());
    Ok(estimate
        .and_then(|n| u64::try_from(n).ok())
        .map_or(counted, |n| n.max(counted)))
}
