//! Column types that must behave the same on every backend.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

/// A UTC instant with microsecond precision. MySQL's `TIMESTAMP` (what a "timestamp with time
/// zone" becomes there) ends in 2038 and drops fractions, so MySQL gets `DATETIME(6)`; the
/// driver reads and writes it as UTC.
pub fn instant(backend: DbBackend, name: impl IntoIden) -> ColumnDef {
    let mut column = ColumnDef::new(name);
    match backend {
        DbBackend::MySql => column.custom("DATETIME(6)"),
        _ => column.timestamp_with_time_zone(),
    };
    column
}
