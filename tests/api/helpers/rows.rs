//! Rows written straight into a table, as an older release or a person at the database's
//! prompt wrote them. Shared by the integration tests (`helpers::insert_row`) and the unit
//! tests of the SQLite fast paths, which include this file by path: one copy for both.

use sea_orm::sea_query::{Alias, Query};
use sea_orm::{ConnectionTrait, DatabaseConnection, Value};

/// Inserts one row of `(column, value)` pairs into `table`.
pub async fn insert_row(db: &DatabaseConnection, table: &str, row: Vec<(&str, Value)>) {
    let (columns, values): (Vec<_>, Vec<_>) = row.into_iter().unzip();
    let statement = Query::insert()
        .into_table(Alias::new(table))
        .columns(columns.into_iter().map(Alias::new))
        .values_panic(values.into_iter().map(Into::into))
        .to_owned();
    db.execute(&statement).await.unwrap();
}
