//! Passkeys (WebAuthn credentials) and the server-side state of their ceremonies.
//!
//! - `passkeys`: an account's credentials. The credential id is kept as base64url text (up to
//!   1023 bytes, WebAuthn's limit, so up to 1364 characters) and is unique across all accounts
//!   through `credential_key`, its SHA-256 in hex: a unique index on the text itself would pass
//!   MariaDB's 3072-byte key limit in utf8mb4. `credential` is the credential as the WebAuthn
//!   library serialises it (public key, flags); `sign_count`, `backup_eligible` and `backed_up`
//!   are kept beside it so a use can be recorded by one conditional write.
//! - `passkey_ceremonies`: the state of a registration or an authentication between its start
//!   and its finish, so that any instance can finish what another started. Bound to what
//!   started it (a session, an MFA ticket, or nothing for a sign-in), it expires, and it is
//!   used once: finishing deletes it by one conditional delete.

use sea_orm_migration::{prelude::*, schema::*};

use crate::columns::instant;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Passkeys {
    Table,
    Id,
    UserId,
    CredentialId,
    CredentialKey,
    Credential,
    Name,
    SignCount,
    BackupEligible,
    BackedUp,
    CreatedAt,
    LastUsedAt,
}

#[derive(DeriveIden)]
enum PasskeyCeremonies {
    Table,
    Id,
    Purpose,
    UserId,
    Binding,
    State,
    CreatedAt,
    ExpiresAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_database_backend();
        manager
            .create_table(
                Table::create()
                    .table(Passkeys::Table)
                    .col(uuid(Passkeys::Id).primary_key())
                    .col(uuid(Passkeys::UserId))
                    .col(string_len(Passkeys::CredentialId, 1400))
                    .col(string_len(Passkeys::CredentialKey, 64).unique_key())
                    .col(text(Passkeys::Credential))
                    .col(string_len(Passkeys::Name, 255))
                    .col(big_integer(Passkeys::SignCount).default(0))
                    .col(boolean(Passkeys::BackupEligible))
                    .col(boolean(Passkeys::BackedUp))
                    .col(instant(db, Passkeys::CreatedAt).not_null())
                    .col(instant(db, Passkeys::LastUsedAt).null())
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_passkeys_user")
                            .from(Passkeys::Table, Passkeys::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_passkeys_user")
                    .table(Passkeys::Table)
                    .col(Passkeys::UserId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(PasskeyCeremonies::Table)
                    .col(uuid(PasskeyCeremonies::Id).primary_key())
                    .col(string_len(PasskeyCeremonies::Purpose, 32))
                    .col(uuid_null(PasskeyCeremonies::UserId))
                    .col(string_len_null(PasskeyCeremonies::Binding, 100))
                    .col(text(PasskeyCeremonies::State))
                    .col(instant(db, PasskeyCeremonies::CreatedAt).not_null())
                    .col(instant(db, PasskeyCeremonies::ExpiresAt).not_null())
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_passkey_ceremonies_user")
                            .from(PasskeyCeremonies::Table, PasskeyCeremonies::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_passkey_ceremonies_expires_at")
                    .table(PasskeyCeremonies::Table)
                    .col(PasskeyCeremonies::ExpiresAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_passkey_ceremonies_user")
                    .table(PasskeyCeremonies::Table)
                    .col(PasskeyCeremonies::UserId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(PasskeyCeremonies::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Passkeys::Table).to_owned())
            .await
    }
}
