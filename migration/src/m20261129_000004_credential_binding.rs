//! Credentials bound to the account state they were issued for.
//!
//! - `users.credential_version` moves on whenever the password, the email or a suspension
//!   changes; an emailed link keeps the version (and the address) it was issued for and is
//!   void once the account's differ.
//! - Refresh tokens belong to a generation of their session's chain. The session keeps its
//!   current generation, when it last moved on, and how many siblings a racing double submit
//!   has had since, so only the immediate predecessor can be exchanged again, briefly and a
//!   bounded number of times.
//!
//! Existing rows keep working: links get the address and version of their account as it is,
//! unused refresh tokens are the current generation and used ones its predecessor.

use sea_orm_migration::{prelude::*, schema::*};

use crate::columns::instant;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    Email,
    CredentialVersion,
}

#[derive(DeriveIden)]
enum AccountTokens {
    Table,
    UserId,
    Email,
    CredentialVersion,
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    LastUsedAt,
    Generation,
    RotatedAt,
    Siblings,
}

#[derive(DeriveIden)]
enum RefreshTokens {
    Table,
    UsedAt,
    Generation,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_database_backend();
        // One column per statement: SQLite alters one at a time.
        let columns: [(DynIden, ColumnDef); 7] = [
            (
                Users::Table.into_iden(),
                big_integer(Users::CredentialVersion).default(0).to_owned(),
            ),
            (
                AccountTokens::Table.into_iden(),
                string_len_null(AccountTokens::Email, 254),
            ),
            (
                AccountTokens::Table.into_iden(),
                big_integer(AccountTokens::CredentialVersion)
                    .default(0)
                    .to_owned(),
            ),
            (
                Sessions::Table.into_iden(),
                big_integer(Sessions::Generation).default(0).to_owned(),
            ),
            (
                Sessions::Table.into_iden(),
                instant(db, Sessions::RotatedAt).null().to_owned(),
            ),
            (
                Sessions::Table.into_iden(),
                integer(Sessions::Siblings).default(0).to_owned(),
            ),
            (
                RefreshTokens::Table.into_iden(),
                big_integer(RefreshTokens::Generation).default(0).to_owned(),
            ),
        ];
        for (table, column) in columns {
            manager
                .alter_table(Table::alter().table(table).add_column(column).to_owned())
                .await?;
        }
        // Outstanding links: bound to their account's address as it is now.
        manager
            .exec_stmt(
                Query::update()
                    .table(AccountTokens::Table)
                    .value(
                        AccountTokens::Email,
                        SimpleExpr::SubQuery(
                            None,
                            Box::new(
                                Query::select()
                                    .column((Users::Table, Users::Email))
                                    .from(Users::Table)
                                    .and_where(
                                        Expr::col((Users::Table, Users::Id))
                                            .equals((AccountTokens::Table, AccountTokens::UserId)),
                                    )
                                    .to_owned()
                                    .into_sub_query_statement(),
                            ),
                        ),
                    )
                    .to_owned(),
            )
            .await?;
        // Used refresh tokens precede the current (unused) ones.
        manager
            .exec_stmt(
                Query::update()
                    .table(RefreshTokens::Table)
                    .value(RefreshTokens::Generation, -1)
                    .and_where(Expr::col(RefreshTokens::UsedAt).is_not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .exec_stmt(
                Query::update()
                    .table(Sessions::Table)
                    .value(Sessions::RotatedAt, Expr::col(Sessions::LastUsedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let drops: [(DynIden, DynIden); 7] = [
            (
                Users::Table.into_iden(),
                Users::CredentialVersion.into_iden(),
            ),
            (
                AccountTokens::Table.into_iden(),
                AccountTokens::Email.into_iden(),
            ),
            (
                AccountTokens::Table.into_iden(),
                AccountTokens::CredentialVersion.into_iden(),
            ),
            (
                Sessions::Table.into_iden(),
                Sessions::Generation.into_iden(),
            ),
            (Sessions::Table.into_iden(), Sessions::RotatedAt.into_iden()),
            (Sessions::Table.into_iden(), Sessions::Siblings.into_iden()),
            (
                RefreshTokens::Table.into_iden(),
                RefreshTokens::Generation.into_iden(),
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
