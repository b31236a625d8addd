use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use entity::user;
use rusqlite::Row;
use sea_orm::{ColumnTrait, DbBackend, EntityTrait, QueryFilter, QueryTrait};

use crate::domain::{
    AccountStore, DisplayName, Email, GuardedChange, PasswordHash, RepositoryError, User, UserId,
};

use super::super::{SeaOrmUserRepository, users::to_domain};
use super::reads::{Columns, DirectReads, Query, ReadError};

/// Users as [`SeaOrmUserRepository`] stores them, with the lookup by email of every sign-in
/// read on the calling thread (see `reads`).
pub struct SqliteUserRepository {
    generic: SeaOrmUserRepository,
    reads: Arc<DirectReads>,
    by_email: Query<Columns<user::Column>>,
}

impl SqliteUserRepository {
    pub fn new(generic: SeaOrmUserRepository, reads: Arc<DirectReads>) -> Self {
        // The generic path's statement, its email bound at each read.
        let by_email = user::Entity::find()
            .filter(user::Column::Email.eq(""))
            .build(DbBackend::Sqlite);
        Self {
            generic,
            reads,
            by_email: Query::new(by_email, |statement| Columns::locate(statement, "")),
        }
    }

    /// The row of the user with this email, read on the calling thread.
    pub(super) fn read_directly(&self, email: &Email) -> Result<Option<user::Model>, ReadError> {
        self.reads
            .first_row(&self.by_email, email.as_str(), user_row)
    }
}

/// A `users` row as SeaORM reads it.
pub(super) fn user_row(row: &Row<'_>, at: &Columns<user::Column>) -> rusqlite::Result<user::Model> {
    use user::Column;
    Ok(user::Model {
        id: at.get(row, Column::Id)?,
        email: at.get(row, Column::Email)?,
        password_hash: at.get(row, Column::PasswordHash)?,
        display_name: at.get(row, Column::DisplayName)?,
        role: at.get(row, Column::Role)?,
        email_verified_at: at.optional_instant(row, Column::EmailVerifiedAt)?,
        suspended_at: at.optional_instant(row, Column::SuspendedAt)?,
        suspension_reason: at.get(row, Column::SuspensionReason)?,
        created_at: at.instant(row, Column::CreatedAt)?,
        updated_at: at.instant(row, Column::UpdatedAt)?,
        credential_version: at.get(row, Column::CredentialVersion)?,
        pending_email: at.get(row, Column::PendingEmail)?,
        mfa_enabled_at: at.optional_instant(row, Column::MfaEnabledAt)?,
    })
}

#[async_trait]
impl AccountStore for SqliteUserRepository {
    async fn find_by_email(&self, email: &Email) -> Result<Option<User>, RepositoryError> {
        match self.read_directly(email) {
            Ok(row) => row.map(to_domain).transpose(),
            Err(ReadError::Busy) => self.generic.find_by_email(email).await,
            Err(ReadError::Failed(error)) => Err(RepositoryError::Internal(Box::new(error))),
        }
    }

    async fn insert(&self, user: &User) -> Result<(), RepositoryError> {
        self.generic.insert(user).await
    }

    async fn find_by_id(&self, id: UserId) -> Result<Option<User>, RepositoryError> {
        self.generic.find_by_id(id).await
    }

    async fn set_password_hash(
        &self,
        id: UserId,
        hash: &PasswordHash,
        now: DateTime<Utc>,
    ) -> Result<(), RepositoryError> {
        self.generic.set_password_hash(id, hash, now).await
    }

    async fn mark_email_verified(
        &self,
        id: UserId,
        email: &Email,
        now: DateTime<Utc>,
    ) -> Result<bool, RepositoryError> {
        self.generic.mark_email_verified(id, email, now).await
    }

    async fn find_many(&self, ids: &[UserId]) -> Result<Vec<User>, RepositoryError> {
        self.generic.find_many(ids).await
    }

    async fn set_display_name(
        &self,
        id: UserId,
        name: Option<&DisplayName>,
        now: DateTime<Utc>,
    ) -> Result<(), RepositoryError> {
        self.generic.set_display_name(id, name, now).await
    }

    async fn request_email_change(
        &self,
        id: UserId,
        email: &Email,
        now: DateTime<Utc>,
    ) -> Result<(), RepositoryError> {
        self.generic.request_email_change(id, email, now).await
    }

    async fn change_email(
        &self,
        id: UserId,
        email: &Email,
        version: i64,
        now: DateTime<Utc>,
    ) -> Result<bool, RepositoryError> {
        self.generic.change_email(id, email, version, now).await
    }

    async fn delete(
        &self,
        id: UserId,
        now: DateTime<Utc>,
    ) -> Result<GuardedChange, RepositoryError> {
        self.generic.delete(id, now).await
    }
}
