//! Indexes that keep the administrator's directory, the audit trail and the sessions list
//! paged by index at millions of rows.
//!
//! - `users (email, id)`: keyset pages ordered by email (the tie-breaking id included, so
//!   neither direction sorts). Pages by creation time already had `(created_at, id)`.
//! - `users.email` trigram index (PostgreSQL only, `pg_trgm` GIN): serves `emailContains`, a
//!   `LIKE '%…%'`. The extension is created when the database allows it; where it is not
//!   available (no superuser, a managed service without it) the migration succeeds without
//!   the index and `emailContains` scans, as before. Running the migration again after the
//!   extension is installed does not add it: `CREATE INDEX … USING gin (email gin_trgm_ops)`
//!   by hand does (docs/performance.md).
//! - MySQL/MariaDB and SQLite have no trigram index: `emailContains` reads the table in the
//!   page's order until the page is full (fast when matches are frequent, a scan when rare).
//! - `audit_events (actor_id, id)`, `(subject_id, id)`, `(kind, id)`: one user's or one kind's
//!   events newest first, by index, with no sort.
//! - `sessions (user_id, id)`: a user's sessions newest first, by index.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    Email,
}

#[derive(DeriveIden)]
enum AuditEvents {
    Table,
    Id,
    ActorId,
    SubjectId,
    Kind,
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    Id,
    UserId,
}

/// The trigram index's name (PostgreSQL).
const EMAIL_TRIGRAMS: &str = "idx_users_email_trgm";

/// Creates `pg_trgm` if it can, then the trigram index if the extension is there (in
/// whichever schema it lives). Each step is a PL/pgSQL block, whose exception handler runs in
/// a subtransaction: a refusal does not abort the migration's transaction.
const POSTGRES_TRIGRAMS: &str = r#"
DO $$
BEGIN
    CREATE EXTENSION IF NOT EXISTS pg_trgm;
EXCEPTION WHEN OTHERS THEN
    RAISE WARNING 'pg_trgm is not available (%): emailContains will scan the users table', SQLERRM;
END $$;
DO $$
DECLARE
    trgm_schema name;
BEGIN
    SELECT n.nspname INTO trgm_schema
    FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
    WHERE e.extname = 'pg_trgm';
    IF trgm_schema IS NOT NULL THEN
        EXECUTE format(
            'CREATE INDEX IF NOT EXISTS idx_users_email_trgm ON users USING gin (email %I.gin_trgm_ops)',
            trgm_schema
        );
    END IF;
END $$;
"#;

fn indexes() -> Vec<IndexCreateStatement> {
    vec![
        Index::create()
            .name("idx_users_email_id")
            .table(Users::Table)
            .col(Users::Email)
            .col(Users::Id)
            .to_owned(),
        Index::create()
            .name("idx_audit_events_actor_id_id")
            .table(AuditEvents::Table)
            .col(AuditEvents::ActorId)
            .col(AuditEvents::Id)
            .to_owned(),
        Index::create()
            .name("idx_audit_events_subject_id_id")
            .table(AuditEvents::Table)
            .col(AuditEvents::SubjectId)
            .col(AuditEvents::Id)
            .to_owned(),
        Index::create()
            .name("idx_audit_events_kind_id")
            .table(AuditEvents::Table)
            .col(AuditEvents::Kind)
            .col(AuditEvents::Id)
            .to_owned(),
        Index::create()
            .name("idx_sessions_user_id_id")
            .table(Sessions::Table)
            .col(Sessions::UserId)
            .col(Sessions::Id)
            .to_owned(),
    ]
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for index in indexes() {
            manager.create_index(index).await?;
        }
        if manager.get_database_backend() == DbBackend::Postgres {
            manager
                .get_connection()
                .execute_unprepared(POSTGRES_TRIGRAMS)
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == DbBackend::Postgres {
            // The extension stays: other schemas may use it.
            manager
                .get_connection()
                .execute_unprepared(&format!("DROP INDEX IF EXISTS {EMAIL_TRIGRAMS}"))
                .await?;
        }
        let drops = [
            ("idx_users_email_id", Users::Table.into_iden()),
            (
                "idx_audit_events_actor_id_id",
                AuditEvents::Table.into_iden(),
            ),
            (
                "idx_audit_events_subject_id_id",
                AuditEvents::Table.into_iden(),
            ),
            ("idx_audit_events_kind_id", AuditEvents::Table.into_iden()),
            ("idx_sessions_user_id_id", Sessions::Table.into_iden()),
        ];
        for (name, table) in drops {
            manager
                .drop_index(Index::drop().name(name).table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
