//! Social sign-in in `social_identities`, `social_flows` and `social_codes`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use entity::{passkey, social_code, social_flow, social_identity, user};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, QueryTrait, SqlErr,
};

use crate::domain::{
    CreateOutcome, Delivery, Email, FlowPurpose, IdentityKey, LinkOutcome, ProviderId, Replacing,
    RepositoryError, Role, SessionId, SocialCode, SocialCodeKind, SocialFlow, SocialFlowStore,
    SocialIdentity, SocialIdentityStore, TokenHash, UnlinkOutcome, User, UserId, VerifiedIdentity,
};

use super::repository_error;
use super::transactions::{Finish, Transactions};
use super::users::insert_statement;

/// Identities, flows and one-time codes of social sign-in.
pub struct SeaOrmSocialRepository {
    db: DatabaseConnection,
    /// Every write goes through it (retries on contention).
    writes: Transactions,
}

impl SeaOrmSocialRepository {
    pub fn new(writes: Transactions) -> Self {
        Self {
            db: writes.db().clone(),
            writes,
        }
    }

    fn backend(&self) -> DbBackend {
        self.db.get_database_backend()
    }

    /// Why a link's insert was refused, read after the fact: the pair is linked (to anyone),
    /// or else the account has an identity through the provider.
    async fn refusal(&self, identity: &SocialIdentity) -> Result<LinkOutcome, RepositoryError> {
        if self.find(&identity.key).await?.is_some() {
            return Ok(LinkOutcome::IdentityTaken);
        }
        let same_provider = social_identity::Entity::find()
            .filter(social_identity::Column::UserId.eq(identity.user_id.as_uuid()))
            .filter(social_identity::Column::Provider.eq(identity.provider.as_str()))
            .one(&self.db)
            .await
            .map_err(repository_error)?;
        Ok(if same_provider.is_some() {
            LinkOutcome::ProviderTaken
        } else {
            // What was in the way was unlinked meanwhile: the pair was taken when it mattered.
            LinkOutcome::IdentityTaken
        })
    }
}

#[async_trait]
impl SocialIdentityStore for SeaOrmSocialRepository {
    async fn link(&self, identity: &SocialIdentity) -> Result<LinkOutcome, RepositoryError> {
        let insert = identity_insert(identity, self.backend());
        // The unique indexes decide, so two links of one pair at once cannot both succeed.
        let inserted = self
            .writes
            .run(|txn| {
                let insert = insert.clone();
                Box::pin(async move {
                    match txn.execute_raw(insert).await {
                        Ok(_) => Ok(Finish::Commit(Some(LinkOutcome::Linked))),
                        Err(error) => match error.sql_err() {
                            Some(SqlErr::UniqueConstraintViolation(_)) => {
                                Ok(Finish::Rollback(None))
                            }
                            Some(SqlErr::ForeignKeyConstraintViolation(_)) => {
                                Ok(Finish::Rollback(Some(LinkOutcome::UnknownUser)))
                            }
                            _ => Err(error),
                        },
                    }
                })
            })
            .await?;
        match inserted {
            Some(outcome) => Ok(outcome),
            None => self.refusal(identity).await,
        }
    }

    async fn list_for_user(&self, user: UserId) -> Result<Vec<SocialIdentity>, RepositoryError> {
        social_identity::Entity::find()
            .filter(social_identity::Column::UserId.eq(user.as_uuid()))
            .order_by_asc(social_identity::Column::LinkedAt)
            .order_by_asc(social_identity::Column::Id)
            .all(&self.db)
            .await
            .map_err(repository_error)?
            .into_iter()
            .map(identity_from_row)
            .collect()
    }

    async fn find(&self, key: &IdentityKey) -> Result<Option<SocialIdentity>, RepositoryError> {
        let row = social_identity::Entity::find()
            .filter(social_identity::Column::KeyHash.eq(key.hash()))
            .one(&self.db)
            .await
            .map_err(repository_error)?;
        // The hash is the key; the strings are compared too, as a guard against a collision
        // ever lending one identity another's account.
        row.map(identity_from_row)
            .transpose()
            .map(|found| found.filter(|identity| identity.key == *key))
    }

    async fn unlink(&self, user: UserId, provider: &ProviderId) -> Result<bool, RepositoryError> {
        let delete = social_identity::Entity::delete_many()
            .filter(social_identity::Column::UserId.eq(user.as_uuid()))
            .filter(social_identity::Column::Provider.eq(provider.as_str()))
            .build(self.backend());
        Ok(self.writes.execute(delete).await?.rows_affected() == 1)
    }

    async fn unlink_unless_last(
        &self,
        user: UserId,
        provider: &ProviderId,
    ) -> Result<UnlinkOutcome, RepositoryError> {
        let delete = social_identity::Entity::delete_many()
            .filter(social_identity::Column::UserId.eq(user.as_uuid()))
            .filter(social_identity::Column::Provider.eq(provider.as_str()))
            .build(self.backend());
        let sqlite = self.backend() == DbBackend::Sqlite;
        self.writes
            .run(|txn| {
                let delete = delete.clone();
                Box::pin(async move {
                    // Everything that decides "last" is counted under the account's lock, so
                    // two unlinks (or an unlink and a passkey removal that takes the same
                    // lock) cannot both see the other way still there. PostgreSQL and MySQL
                    // lock the account's row; on SQLite (one writer) the delete takes the
                    // lock, and the other transaction starts after this one ends.
                    let account = || user::Entity::find_by_id(user.as_uuid());
                    if !sqlite && account().lock_exclusive().one(txn).await?.is_none() {
                        return Ok(Finish::Rollback(UnlinkOutcome::NotLinked));
                    }
                    if txn.execute_raw(delete).await?.rows_affected() != 1 {
                        return Ok(Finish::Rollback(UnlinkOutcome::NotLinked));
                    }
                    let Some(account) = account().one(txn).await? else {
                        return Ok(Finish::Rollback(UnlinkOutcome::NotLinked));
                    };
                    let identities = social_identity::Entity::find()
                        .filter(social_identity::Column::UserId.eq(user.as_uuid()))
                        .count(txn)
                        .await?;
                    let passkeys = passkey::Entity::find()
                        .filter(passkey::Column::UserId.eq(user.as_uuid()))
                        .count(txn)
                        .await?;
                    if identities == 0 && passkeys == 0 && !account.has_password {
                        return Ok(Finish::Rollback(UnlinkOutcome::LastMethod));
                    }
                    Ok(Finish::Commit(UnlinkOutcome::Unlinked))
                })
            })
            .await
    }

    async fn create_with_identity(
        &self,
        user: &User,
        identity: &SocialIdentity,
        replacing: Option<Replacing>,
    ) -> Result<CreateOutcome, RepositoryError> {
        let backend = self.backend();
        let replace = replacing.map(|old| {
            user::Entity::delete_many()
                .filter(user::Column::Id.eq(old.user.as_uuid()))
                .filter(user::Column::CredentialVersion.eq(old.credential_version))
                .filter(user::Column::EmailVerifiedAt.is_null())
                .filter(user::Column::Role.eq(Role::User.as_str()))
                .build(backend)
        });
        let insert_user = insert_statement(user, backend);
        let insert_identity = identity_insert(identity, backend);
        self.writes
            .run(|txn| {
                let (replace, insert_user, insert_identity) = (
                    replace.clone(),
                    insert_user.clone(),
                    insert_identity.clone(),
                );
                Box::pin(async move {
                    // The delete cascades to the old account's sessions, refresh tokens,
                    // links, factors, passkeys and identities: whoever registered the address
                    // keeps nothing of it.
                    if let Some(replace) = replace
                        && txn.execute_raw(replace).await?.rows_affected() != 1
                    {
                        return Ok(Finish::Rollback(CreateOutcome::ReplacedChanged));
                    }
                    if let Err(error) = txn.execute_raw(insert_user).await {
                        return match error.sql_err() {
                            Some(SqlErr::UniqueConstraintViolation(_)) => {
                                Ok(Finish::Rollback(CreateOutcome::EmailTaken))
                            }
                            _ => Err(error),
                        };
                    }
                    if let Err(error) = txn.execute_raw(insert_identity).await {
                        return match error.sql_err() {
                            Some(SqlErr::UniqueConstraintViolation(_)) => {
                                Ok(Finish::Rollback(CreateOutcome::IdentityTaken))
                            }
                            _ => Err(error),
                        };
                    }
                    Ok(Finish::Commit(CreateOutcome::Created))
                })
            })
            .await
    }
}

/// The statement that inserts a linked identity.
fn identity_insert(identity: &SocialIdentity, backend: DbBackend) -> sea_orm::Statement {
    social_identity::Entity::insert(social_identity::ActiveModel {
        id: Set(identity.id),
        user_id: Set(identity.user_id.as_uuid()),
        key_hash: Set(identity.key.hash()),
        provider: Set(identity.provider.as_str().to_owned()),
        issuer: Set(identity.key.issuer().to_owned()),
        subject: Set(identity.key.subject().to_owned()),
        email: Set(identity.email.as_ref().map(|e| e.as_str().to_owned())),
        email_verified: Set(identity.email_verified),
        linked_at: Set(identity.linked_at),
    })
    .build(backend)
}

#[async_trait]
impl SocialFlowStore for SeaOrmSocialRepository {
    async fn save_flow(&self, flow: &SocialFlow) -> Result<(), RepositoryError> {
        let (purpose, user, session) = match flow.purpose {
            FlowPurpose::SignIn => ("sign_in", None, None),
            FlowPurpose::Link { user, session } => ("link", Some(user), Some(session)),
            FlowPurpose::Reauthenticate { user, session } => {
                ("reauthenticate", Some(user), Some(session))
            }
        };
        let insert = social_flow::Entity::insert(social_flow::ActiveModel {
            id: Set(flow.id.as_str().to_owned()),
            provider: Set(flow.provider.as_str().to_owned()),
            purpose: Set(purpose.to_owned()),
            user_id: Set(user.map(|u| u.as_uuid())),
            session_id: Set(session.map(|s| s.as_uuid())),
            binding_hash: Set(flow.binding.as_str().to_owned()),
            pkce_verifier: Set(flow.pkce_verifier.clone()),
            nonce: Set(flow.nonce.clone()),
            redirect_to: Set(flow.redirect_to.clone()),
            delivery: Set(flow.delivery.as_str().to_owned()),
            created_at: Set(flow.created_at),
            expires_at: Set(flow.expires_at),
        })
        .build(self.backend());
        self.writes.execute(insert).await.map(|_| ())
    }

    async fn take_flow(
        &self,
        id: &TokenHash,
        binding: &TokenHash,
        now: DateTime<Utc>,
    ) -> Result<Option<SocialFlow>, RepositoryError> {
        let usable = || {
            social_flow::Entity::find()
                .filter(social_flow::Column::Id.eq(id.as_str()))
                .filter(social_flow::Column::BindingHash.eq(binding.as_str()))
                .filter(social_flow::Column::ExpiresAt.gt(now))
        };
        let Some(row) = usable().one(&self.db).await.map_err(repository_error)? else {
            return Ok(None);
        };
        // A flow's row never changes, so what was read is what is deleted; the delete alone
        // decides who uses it: of concurrent takes, only one removes the row.
        let delete = social_flow::Entity::delete_many()
            .filter(social_flow::Column::Id.eq(id.as_str()))
            .filter(social_flow::Column::BindingHash.eq(binding.as_str()))
            .filter(social_flow::Column::ExpiresAt.gt(now))
            .build(self.backend());
        if self.writes.execute(delete).await?.rows_affected() != 1 {
            return Ok(None);
        }
        flow_from_row(row).map(Some)
    }

    async fn live_flows(
        &self,
        binding: Option<&TokenHash>,
        now: DateTime<Utc>,
    ) -> Result<u64, RepositoryError> {
        let mut live = social_flow::Entity::find().filter(social_flow::Column::ExpiresAt.gt(now));
        if let Some(binding) = binding {
            live = live.filter(social_flow::Column::BindingHash.eq(binding.as_str()));
        }
        live.count(&self.db).await.map_err(repository_error)
    }

    async fn save_code(&self, code: &SocialCode) -> Result<(), RepositoryError> {
        let identity = &code.identity;
        let insert = social_code::Entity::insert(social_code::ActiveModel {
            code_hash: Set(code.hash.as_str().to_owned()),
            kind: Set(code.kind.as_str().to_owned()),
            user_id: Set(code.user_id.as_uuid()),
            provider: Set(identity.provider.as_str().to_owned()),
            issuer: Set(identity.key.issuer().to_owned()),
            subject: Set(identity.key.subject().to_owned()),
            email: Set(identity.email.as_ref().map(|e| e.as_str().to_owned())),
            email_verified: Set(identity.email_verified),
            provider_mfa: Set(identity.provider_mfa),
            created_at: Set(code.created_at),
            expires_at: Set(code.expires_at),
        })
        .build(self.backend());
        self.writes.execute(insert).await.map(|_| ())
    }

    async fn take_code(
        &self,
        hash: &TokenHash,
        kind: SocialCodeKind,
        now: DateTime<Utc>,
    ) -> Result<Option<SocialCode>, RepositoryError> {
        let row = social_code::Entity::find()
            .filter(social_code::Column::CodeHash.eq(hash.as_str()))
            .filter(social_code::Column::Kind.eq(kind.as_str()))
            .filter(social_code::Column::ExpiresAt.gt(now))
            .one(&self.db)
            .await
            .map_err(repository_error)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let delete = social_code::Entity::delete_many()
            .filter(social_code::Column::CodeHash.eq(hash.as_str()))
            .filter(social_code::Column::Kind.eq(kind.as_str()))
            .filter(social_code::Column::ExpiresAt.gt(now))
            .build(self.backend());
        if self.writes.execute(delete).await?.rows_affected() != 1 {
            return Ok(None);
        }
        code_from_row(row).map(Some)
    }

    async fn delete_expired(&self, now: DateTime<Utc>) -> Result<u64, RepositoryError> {
        let flows = social_flow::Entity::delete_many()
            .filter(social_flow::Column::ExpiresAt.lte(now))
            .build(self.backend());
        let codes = social_code::Entity::delete_many()
            .filter(social_code::Column::ExpiresAt.lte(now))
            .build(self.backend());
        let flows = self.writes.execute(flows).await?.rows_affected();
        let codes = self.writes.execute(codes).await?.rows_affected();
        Ok(flows + codes)
    }
}

fn corrupt(table: &str, what: &str) -> RepositoryError {
    RepositoryError::Internal(format!("a row of {table} has an invalid {what}").into())
}

fn provider(raw: &str, table: &str) -> Result<ProviderId, RepositoryError> {
    ProviderId::parse(raw).map_err(|_| corrupt(table, "provider"))
}

fn identity_key(issuer: &str, subject: &str, table: &str) -> Result<IdentityKey, RepositoryError> {
    IdentityKey::new(issuer, subject).map_err(|_| corrupt(table, "issuer or subject"))
}

/// A stored address that no longer parses (the rules tightened) reads as none: the provider
/// is asked again at the next sign-in.
fn stored_email(raw: Option<String>) -> Option<Email> {
    raw.and_then(|raw| Email::parse(&raw).ok())
}

fn identity_from_row(row: social_identity::Model) -> Result<SocialIdentity, RepositoryError> {
    const TABLE: &str = "social_identities";
    Ok(SocialIdentity {
        id: row.id,
        user_id: UserId::from_uuid(row.user_id),
        provider: provider(&row.provider, TABLE)?,
        key: identity_key(&row.issuer, &row.subject, TABLE)?,
        email: stored_email(row.email),
        email_verified: row.email_verified,
        linked_at: row.linked_at,
    })
}

fn flow_from_row(row: social_flow::Model) -> Result<SocialFlow, RepositoryError> {
    const TABLE: &str = "social_flows";
    let signed_in = row
        .user_id
        .zip(row.session_id)
        .map(|(user, session)| (UserId::from_uuid(user), SessionId::from_uuid(session)));
    let purpose = match (row.purpose.as_str(), signed_in) {
        ("sign_in", None) => FlowPurpose::SignIn,
        ("link", Some((user, session))) => FlowPurpose::Link { user, session },
        ("reauthenticate", Some((user, session))) => FlowPurpose::Reauthenticate { user, session },
        _ => return Err(corrupt(TABLE, "purpose")),
    };
    Ok(SocialFlow {
        id: TokenHash::from_stored(row.id),
        provider: provider(&row.provider, TABLE)?,
        purpose,
        binding: TokenHash::from_stored(row.binding_hash),
        pkce_verifier: row.pkce_verifier,
        nonce: row.nonce,
        redirect_to: row.redirect_to,
        delivery: Delivery::from_stored(&row.delivery).ok_or_else(|| corrupt(TABLE, "delivery"))?,
        created_at: row.created_at,
        expires_at: row.expires_at,
    })
}

fn code_from_row(row: social_code::Model) -> Result<SocialCode, RepositoryError> {
    const TABLE: &str = "social_codes";
    Ok(SocialCode {
        hash: TokenHash::from_stored(row.code_hash),
        kind: SocialCodeKind::from_stored(&row.kind).ok_or_else(|| corrupt(TABLE, "kind"))?,
        user_id: UserId::from_uuid(row.user_id),
        identity: VerifiedIdentity {
            provider: provider(&row.provider, TABLE)?,
            key: identity_key(&row.issuer, &row.subject, TABLE)?,
            email: stored_email(row.email),
            email_verified: row.email_verified,
            provider_mfa: row.provider_mfa,
        },
        created_at: row.created_at,
        expires_at: row.expires_at,
    })
}
