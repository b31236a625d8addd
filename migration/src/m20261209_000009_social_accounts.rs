//! Accounts that sign in only through a provider: `users.has_password` says whether the
//! account has a password of its own. Every account before this migration had one (`true`);
//! an account created by a social sign-in holds the dummy hash (which matches nothing) and
//! `false` until a password reset sets one. Unlinking an identity counts it among the ways
//! left to sign in.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    HasPassword,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .add_column(boolean(Users::HasPassword).default(true))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .drop_column(Users::HasPassword)
                    .to_owned(),
            )
            .await
    }
}
