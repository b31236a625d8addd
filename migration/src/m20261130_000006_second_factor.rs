//! A second factor (TOTP) with recovery codes, and when each session last proved who it is.
//!
//! - `totp_factors`: one per account at most; the secret sealed with the server's key, when
//!   it was confirmed (none while an enrolment waits for its first code), and the last time
//!   step a code was accepted for, which only moves forward (a code works once).
//! - `recovery_codes`: hashes only, each used once.
//! - `users.mfa_enabled_at`: set while a confirmed factor exists, so reading an account (every
//!   request) needs no second table.
//! - `sessions.authenticated_at` / `auth_methods`: when and how the session last proved its
//!   user (`pwd`, `pwd otp`), for sensitive changes that need a recent proof. Existing sessions
//!   proved a password when they were created.
//! - `account_tokens.attempts`: codes tried with a sign-in's MFA ticket, which dies after a
//!   few wrong ones.

use sea_orm_migration::{prelude::*, schema::*};

use crate::columns::instant;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    MfaEnabledAt,
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    CreatedAt,
    AuthenticatedAt,
    AuthMethods,
}

#[derive(DeriveIden)]
enum AccountTokens {
    Table,
    Attempts,
}

#[derive(DeriveIden)]
enum TotpFactors {
    Table,
    UserId,
    Secret,
    CreatedAt,
    ConfirmedAt,
    LastStep,
}

#[derive(DeriveIden)]
enum RecoveryCodes {
    Table,
    CodeHash,
    UserId,
    CreatedAt,
    UsedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_database_backend();
        // One column per statement: SQLite alters one at a time.
        let columns: [(DynIden, ColumnDef); 4] = [
            (
                Users::Table.into_iden(),
                instant(db, Users::MfaEnabledAt).null().to_owned(),
            ),
            (
                Sessions::Table.into_iden(),
                instant(db, Sessions::AuthenticatedAt).null().to_owned(),
            ),
            (
                Sessions::Table.into_iden(),
                string_len_null(Sessions::AuthMethods, 32),
            ),
            (
                AccountTokens::Table.into_iden(),
                integer(AccountTokens::Attempts).default(0).to_owned(),
            ),
        ];
        for (table, column) in columns {
            manager
                .alter_table(Table::alter().table(table).add_column(column).to_owned())
                .await?;
        }
        manager
            .exec_stmt(
                Query::update()
                    .table(Sessions::Table)
                    .value(Sessions::AuthenticatedAt, Expr::col(Sessions::CreatedAt))
                    .value(Sessions::AuthMethods, "pwd")
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(TotpFactors::Table)
                    .col(uuid(TotpFactors::UserId).primary_key())
                    .col(string_len(TotpFactors::Secret, 255))
                    .col(instant(db, TotpFactors::CreatedAt).not_null())
                    .col(instant(db, TotpFactors::ConfirmedAt).null())
                    .col(big_integer(TotpFactors::LastStep).default(0))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_totp_factors_user")
                            .from(TotpFactors::Table, TotpFactors::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(RecoveryCodes::Table)
                    .col(string_len(RecoveryCodes::CodeHash, 64).primary_key())
                    .col(uuid(RecoveryCodes::UserId))
                    .col(instant(db, RecoveryCodes::CreatedAt).not_null())
                    .col(instant(db, RecoveryCodes::UsedAt).null())
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_recovery_codes_user")
                            .from(RecoveryCodes::Table, RecoveryCodes::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_recovery_codes_user")
                    .table(RecoveryCodes::Table)
                    .col(RecoveryCodes::UserId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(RecoveryCodes::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(TotpFactors::Table).to_owned())
            .await?;
        let drops: [(DynIden, DynIden); 4] = [
            (Users::Table.into_iden(), Users::MfaEnabledAt.into_iden()),
            (
                Sessions::Table.into_iden(),
                Sessions::AuthenticatedAt.into_iden(),
            ),
            (
                Sessions::Table.into_iden(),
                Sessions::AuthMethods.into_iden(),
            ),
            (
                AccountTokens::Table.into_iden(),
                AccountTokens::Attempts.into_iden(),
            ),
        ];
        for (table, column) in drops {
            manager
                .alter_table(Table::alter().table(table).drop_column(column).to_owned())
                .await?;
        }
        Ok(())
    }
}
