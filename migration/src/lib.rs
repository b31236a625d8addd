//! Schema migrations, written once for SQLite, PostgreSQL and MySQL/MariaDB.

pub use sea_orm_migration::prelude::*;

mod columns;
mod m20261125_000001_create_accounts;
mod m20261125_000002_account_tokens;
mod m20261125_000003_admin_and_audit;
mod m20261129_000004_credential_binding;
mod m20261129_000005_pending_email_change;
mod m20261130_000006_second_factor;
mod m20261207_000007_passkeys;
mod m20261208_000008_social_sign_in;
mod m20261209_000009_social_accounts;
mod m20261212_000012_directory_indexes;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261125_000001_create_accounts::Migration),
            Box::new(m20261125_000002_account_tokens::Migration),
            Box::new(m20261125_000003_admin_and_audit::Migration),
            Box::new(m20261129_000004_credential_binding::Migration),
            Box::new(m20261129_000005_pending_email_change::Migration),
            Box::new(m20261130_000006_second_factor::Migration),
            Box::new(m20261207_000007_passkeys::Migration),
            Box::new(m20261208_000008_social_sign_in::Migration),
            Box::new(m20261209_000009_social_accounts::Migration),
            Box::new(m20261212_000012_directory_indexes::Migration),
        ]
    }
}
