//! An email change waits for the new address to confirm it: `users.pending_email` holds the
//! address asked for, and the links of a change keep the address they move the account to
//! (`account_tokens.target_email`).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    PendingEmail,
}

#[derive(DeriveIden)]
enum AccountTokens {
    Table,
    TargetEmail,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .add_column(string_len_null(Users::PendingEmail, 254))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(AccountTokens::Table)
                    .add_column(string_len_null(AccountTokens::TargetEmail, 254))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(AccountTokens::Table)
                    .drop_column(AccountTokens::TargetEmail)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .drop_column(Users::PendingEmail)
                    .to_owned(),
            )
            .await
    }
}
