//! Passkeys in `passkeys`, and the state of their ceremonies in `passkey_ceremonies`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use entity::{passkey, passkey_ceremony, user};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait,
    ExprTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, QueryTrait, Statement,
};

use crate::domain::{
    Ceremony, CeremonyBinding, CeremonyId, CeremonyPurpose, CredentialId, Passkey, PasskeyId,
    PasskeyName, PasskeyRemoval, PasskeyStore, PasskeyUse, RepositoryError, UserId,
};

use super::repository_error;
use super::transactions::{Finish, Transactions};

pub struct SeaOrmPasskeyRepository {
    db: DatabaseConnection,
    writes: Transactions,
}

impl SeaOrmPasskeyRepository {
    pub fn new(writes: Transactions) -> Self {
        Self {
            db: writes.db().clone(),
            writes,
        }
    }

    fn backend(&self) -> DbBackend {
        self.db.get_database_backend()
    }

    /// Moves the account's credential version on: a change of its factors voids the links
    /// and MFA tickets issued before.
    fn next_credential_version(&self, user: UserId) -> Statement {
        user::Entity::update_many()
            .col_expr(
                user::Column::CredentialVersion,
                Expr::col(user::Column::CredentialVersion).add(1),
            )
            .filter(user::Column::Id.eq(user.as_uuid()))
            .build(self.backend())
    }
}

#[async_trait]
impl PasskeyStore for SeaOrmPasskeyRepository {
    async fn add(&self, passkey: &Passkey) -> Result<(), RepositoryError> {
        let insert = passkey::Entity::insert(passkey::ActiveModel {
            id: Set(passkey.id.as_uuid()),
            user_id: Set(passkey.user_id.as_uuid()),
            credential_id: Set(passkey.credential_id.encoded()),
            credential_key: Set(passkey.credential_id.lookup_key()),
            credential: Set(passkey.credential.clone()),
            name: Set(passkey.name.as_str().to_owned()),
            sign_count: Set(i64::from(passkey.sign_count)),
            backup_eligible: Set(passkey.backup_eligible),
            backed_up: Set(passkey.backed_up),
            created_at: Set(passkey.created_at),
            last_used_at: Set(passkey.last_used_at),
        })
        .build(self.backend());
        let bump = self.next_credential_version(passkey.user_id);
        // The unique index on the credential's key refuses an id registered anywhere, and
        // the whole transaction with it.
        self.writes
            .run(|txn| {
                let (insert, bump) = (insert.clone(), bump.clone());
                Box::pin(async move {
                    txn.execute_raw(insert).await?;
                    txn.execute_raw(bump).await?;
                    Ok(Finish::Commit(()))
                })
            })
            .await
    }

    async fn list(&self, user: UserId) -> Result<Vec<Passkey>, RepositoryError> {
        passkey::Entity::find()
            .filter(passkey::Column::UserId.eq(user.as_uuid()))
            .order_by_asc(passkey::Column::CreatedAt)
            .order_by_asc(passkey::Column::Id)
            .all(&self.db)
            .await
            .map_err(repository_error)?
            .into_iter()
            .map(to_domain)
            .collect()
    }

    async fn find_by_credential(
        &self,
        credential: &CredentialId,
    ) -> Result<Option<Passkey>, RepositoryError> {
        passkey::Entity::find()
            .filter(passkey::Column::CredentialKey.eq(credential.lookup_key()))
            .one(&self.db)
            .await
            .map_err(repository_error)?
            .map(to_domain)
            .transpose()
    }

    async fn rename(
        &self,
        user: UserId,
        id: PasskeyId,
        name: &PasskeyName,
    ) -> Result<bool, RepositoryError> {
        let rename = passkey::Entity::update_many()
            .col_expr(passkey::Column::Name, Expr::value(name.as_str()))
            .filter(passkey::Column::Id.eq(id.as_uuid()))
            .filter(passkey::Column::UserId.eq(user.as_uuid()))
            .build(self.backend());
        // sqlx asks MySQL for the rows matched, not changed: a rename to the same name counts.
        Ok(self.writes.execute(rename).await?.rows_affected() == 1)
    }

    async fn remove(
        &self,
        user: UserId,
        id: PasskeyId,
        keep_last: bool,
    ) -> Result<PasskeyRemoval, RepositoryError> {
        let delete = passkey::Entity::delete_many()
            .filter(passkey::Column::Id.eq(id.as_uuid()))
            .filter(passkey::Column::UserId.eq(user.as_uuid()))
            .build(self.backend());
        let bump = self.next_credential_version(user);
        self.writes
            .run(|txn| {
                let (delete, bump) = (delete.clone(), bump.clone());
                Box::pin(async move {
                    let of_user = || {
                        passkey::Entity::find().filter(passkey::Column::UserId.eq(user.as_uuid()))
                    };
                    // Two removals of an account's last two passkeys must not both see the
                    // other one still there: PostgreSQL and MySQL lock the account's passkeys
                    // first; on SQLite (one writer) the delete takes the lock, and the other
                    // removal's transaction starts after this one ends.
                    if keep_last {
                        of_user().lock_exclusive().all(txn).await?;
                    }
                    if txn.execute_raw(delete).await?.rows_affected() != 1 {
                        return Ok(Finish::Rollback(PasskeyRemoval::NotFound));
                    }
                    if keep_last && of_user().count(txn).await? == 0 {
                        return Ok(Finish::Rollback(PasskeyRemoval::LastPasskey));
                    }
                    txn.execute_raw(bump).await?;
                    Ok(Finish::Commit(PasskeyRemoval::Removed))
                })
            })
            .await
    }

    async fn remove_all(&self, user: UserId) -> Result<u64, RepositoryError> {
        let delete = passkey::Entity::delete_many()
            .filter(passkey::Column::UserId.eq(user.as_uuid()))
            .build(self.backend());
        let bump = self.next_credential_version(user);
        self.writes
            .run(|txn| {
                let (delete, bump) = (delete.clone(), bump.clone());
                Box::pin(async move {
                    let removed = txn.execute_raw(delete).await?.rows_affected();
                    if removed > 0 {
                        txn.execute_raw(bump).await?;
                    }
                    Ok(Finish::Commit(removed))
                })
            })
            .await
    }

    async fn record_use(&self, used: &PasskeyUse<'_>) -> Result<bool, RepositoryError> {
        let counter = i64::from(used.sign_count);
        // The conditional write is the guard against a replayed or cloned assertion, across
        // instances too: of two uses carrying the same counter, one moves it.
        let forward = if counter == 0 {
            passkey::Column::SignCount.eq(0)
        } else {
            passkey::Column::SignCount.lt(counter)
        };
        let update = passkey::Entity::update_many()
            .col_expr(passkey::Column::Credential, Expr::value(used.credential))
            .col_expr(passkey::Column::SignCount, Expr::value(counter))
            .col_expr(passkey::Column::BackedUp, Expr::value(used.backed_up))
            .col_expr(passkey::Column::LastUsedAt, Expr::value(used.at))
            .filter(passkey::Column::Id.eq(used.passkey.as_uuid()))
            .filter(passkey::Column::UserId.eq(used.user.as_uuid()))
            .filter(passkey::Column::BackupEligible.eq(used.backup_eligible))
            .filter(forward)
            .build(self.backend());
        Ok(self.writes.execute(update).await?.rows_affected() == 1)
    }

    async fn save_ceremony(&self, ceremony: &Ceremony) -> Result<(), RepositoryError> {
        let insert = passkey_ceremony::Entity::insert(passkey_ceremony::ActiveModel {
            id: Set(ceremony.id.as_uuid()),
            purpose: Set(ceremony.purpose.as_str().to_owned()),
            user_id: Set(ceremony.user_id.map(|u| u.as_uuid())),
            binding: Set(ceremony.binding.to_stored()),
            state: Set(ceremony.state.clone()),
            created_at: Set(ceremony.created_at),
            expires_at: Set(ceremony.expires_at),
        })
        .build(self.backend());
        self.writes.execute(insert).await.map(|_| ())
    }

    async fn take_ceremony(
        &self,
        id: CeremonyId,
        purpose: CeremonyPurpose,
        binding: &CeremonyBinding,
        now: DateTime<Utc>,
    ) -> Result<Option<Ceremony>, RepositoryError> {
        // A ceremony is never changed once stored, so what is read here is what the delete
        // below removes, if it removes anything; and only the delete that removes it (one
        // row affected) hands it out.
        let Some(row) = passkey_ceremony::Entity::find_by_id(id.as_uuid())
            .one(&self.db)
            .await
            .map_err(repository_error)?
        else {
            return Ok(None);
        };
        let stored_binding = binding.to_stored();
        let take = passkey_ceremony::Entity::delete_many()
            .filter(passkey_ceremony::Column::Id.eq(id.as_uuid()))
            .filter(passkey_ceremony::Column::Purpose.eq(purpose.as_str()))
            .filter(match &stored_binding {
                Some(stored) => passkey_ceremony::Column::Binding.eq(stored.as_str()),
                None => passkey_ceremony::Column::Binding.is_null(),
            })
            .filter(passkey_ceremony::Column::ExpiresAt.gt(now))
            .build(self.backend());
        if self.writes.execute(take).await?.rows_affected() != 1 {
            return Ok(None);
        }
        ceremony_to_domain(row).map(Some)
    }

    async fn delete_expired_ceremonies(&self, now: DateTime<Utc>) -> Result<u64, RepositoryError> {
        let delete = passkey_ceremony::Entity::delete_many()
            .filter(passkey_ceremony::Column::ExpiresAt.lte(now))
            .build(self.backend());
        Ok(self.writes.execute(delete).await?.rows_affected())
    }
}

/// Rows were written through the domain types, so a row that fails to convert back means the
/// data was changed behind the service's back: report it rather than guess.
fn to_domain(row: passkey::Model) -> Result<Passkey, RepositoryError> {
    let corrupt =
        |what: &str| RepositoryError::Internal(format!("passkey {} has {what}", row.id).into());
    Ok(Passkey {
        id: PasskeyId::from_uuid(row.id),
        user_id: UserId::from_uuid(row.user_id),
        credential_id: CredentialId::parse(&row.credential_id)
            .map_err(|_| corrupt("an invalid credential id"))?,
        name: PasskeyName::from_stored(row.name.clone()),
        sign_count: u32::try_from(row.sign_count).map_err(|_| corrupt("a counter out of range"))?,
        backup_eligible: row.backup_eligible,
        backed_up: row.backed_up,
        created_at: row.created_at,
        last_used_at: row.last_used_at,
        credential: row.credential,
    })
}

fn ceremony_to_domain(row: passkey_ceremony::Model) -> Result<Ceremony, RepositoryError> {
    let corrupt = |what: &str| {
        RepositoryError::Internal(format!("passkey ceremony {} has {what}", row.id).into())
    };
    Ok(Ceremony {
        id: CeremonyId::from_uuid(row.id),
        purpose: CeremonyPurpose::from_stored(&row.purpose)
            .ok_or_else(|| corrupt("an unknown purpose"))?,
        user_id: row.user_id.map(UserId::from_uuid),
        binding: CeremonyBinding::from_stored(row.binding.as_deref())
            .ok_or_else(|| corrupt("an unknown binding"))?,
        created_at: row.created_at,
        expires_at: row.expires_at,
        state: row.state,
    })
}
