//! Social sign-in (OpenID Connect): the identities linked to accounts, the sign-in flows in
//! progress, and the one-time codes a flow ends with.
//!
//! - `social_identities`: an account's identities at providers, keyed on (issuer, subject),
//!   never on email. Uniqueness is on `key_hash`, the SHA-256 of issuer and subject: an index
//!   on the two strings would pass MariaDB's index key limit with utf8mb4, and would compare
//!   them under the column's collation (case-insensitive and blind to trailing spaces on
//!   MariaDB), while a subject is an exact, case-sensitive string (OIDC Core §2). An account
//!   has one identity per provider at most (it unlinks by provider).
//! - `social_flows`: a redirect to a provider on its way back. The row's id is the hash of
//!   the `state` sent with it; `binding_hash` is the hash of a value kept in an HttpOnly cookie
//!   of the browser that started it. The PKCE verifier and the nonce never leave the server.
//!   Used once (one conditional delete), and only until `expires_at`. A flow that acts on a
//!   signed-in session (linking an identity, proving the user again) names that session, and
//!   is deleted with it.
//! - `social_codes`: what a finished flow hands on by a one-time code (hashes only): a sign-in
//!   for a bearer client to finish, or an identity waiting to be linked once its account
//!   proves itself.

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
enum Sessions {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum SocialIdentities {
    Table,
    Id,
    UserId,
    KeyHash,
    Provider,
    Issuer,
    Subject,
    Email,
    EmailVerified,
    LinkedAt,
}

#[derive(DeriveIden)]
enum SocialFlows {
    Table,
    Id,
    Provider,
    Purpose,
    UserId,
    SessionId,
    BindingHash,
    PkceVerifier,
    Nonce,
    RedirectTo,
    Delivery,
    CreatedAt,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum SocialCodes {
    Table,
    CodeHash,
    Kind,
    UserId,
    Provider,
    Issuer,
    Subject,
    Email,
    EmailVerified,
    ProviderMfa,
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
                    .table(SocialIdentities::Table)
                    .col(uuid(SocialIdentities::Id).primary_key())
                    .col(uuid(SocialIdentities::UserId))
                    .col(string_len_uniq(SocialIdentities::KeyHash, 64))
                    .col(string_len(SocialIdentities::Provider, 64))
                    .col(string_len(SocialIdentities::Issuer, 512))
                    .col(string_len(SocialIdentities::Subject, 255))
                    .col(string_len_null(SocialIdentities::Email, 254))
                    .col(boolean(SocialIdentities::EmailVerified).default(false))
                    .col(instant(db, SocialIdentities::LinkedAt).not_null())
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_social_identities_user")
                            .from(SocialIdentities::Table, SocialIdentities::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_social_identities_user_provider")
                    .table(SocialIdentities::Table)
                    .col(SocialIdentities::UserId)
                    .col(SocialIdentities::Provider)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(SocialFlows::Table)
                    .col(string_len(SocialFlows::Id, 64).primary_key())
                    .col(string_len(SocialFlows::Provider, 64))
                    .col(string_len(SocialFlows::Purpose, 16))
                    .col(uuid_null(SocialFlows::UserId))
                    .col(uuid_null(SocialFlows::SessionId))
                    .col(string_len(SocialFlows::BindingHash, 64))
                    .col(string_len(SocialFlows::PkceVerifier, 128))
                    .col(string_len(SocialFlows::Nonce, 128))
                    .col(string_len(SocialFlows::RedirectTo, 2048))
                    .col(string_len(SocialFlows::Delivery, 16))
                    .col(instant(db, SocialFlows::CreatedAt).not_null())
                    .col(instant(db, SocialFlows::ExpiresAt).not_null())
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_social_flows_user")
                            .from(SocialFlows::Table, SocialFlows::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_social_flows_session")
                            .from(SocialFlows::Table, SocialFlows::SessionId)
                            .to(Sessions::Table, Sessions::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_social_flows_expires")
                    .table(SocialFlows::Table)
                    .col(SocialFlows::ExpiresAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(SocialCodes::Table)
                    .col(string_len(SocialCodes::CodeHash, 64).primary_key())
                    .col(string_len(SocialCodes::Kind, 16))
                    .col(uuid(SocialCodes::UserId))
                    .col(string_len(SocialCodes::Provider, 64))
                    .col(string_len(SocialCodes::Issuer, 512))
                    .col(string_len(SocialCodes::Subject, 255))
                    .col(string_len_null(SocialCodes::Email, 254))
                    .col(boolean(SocialCodes::EmailVerified).default(false))
                    .col(boolean(SocialCodes::ProviderMfa).default(false))
                    .col(instant(db, SocialCodes::CreatedAt).not_null())
                    .col(instant(db, SocialCodes::ExpiresAt).not_null())
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_social_codes_user")
                            .from(SocialCodes::Table, SocialCodes::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_social_codes_user")
                    .table(SocialCodes::Table)
                    .col(SocialCodes::UserId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_social_codes_expires")
                    .table(SocialCodes::Table)
                    .col(SocialCodes::ExpiresAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            SocialCodes::Table.into_iden(),
            SocialFlows::Table.into_iden(),
            SocialIdentities::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
