use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use entity::{session, user};
use rusqlite::Row;
use sea_orm::IdenStatic;
use sea_orm::{DbBackend, EntityTrait, QueryTrait, SelectA, SelectB};
use uuid::Uuid;

use crate::domain::{
    Authentication, Page, PageRequest, PresentedRefreshToken, RefreshTokenExchange,
    RepositoryError, Session, SessionId, SessionRepository, SiblingAdded, TokenHash, User, UserId,
};

use super::super::sessions::to_domain;
use super::super::{SeaOrmSessionRepository, users};
use super::reads::{Columns, DirectReads, Query, ReadError};
use super::users::user_row;

/// Sessions as [`SeaOrmSessionRepository`] stores them, with the session check of every
/// authenticated request read on the calling thread (see `reads`).
pub struct SqliteSessionRepository {
    generic: SeaOrmSessionRepository,
    reads: Arc<DirectReads>,
    with_user: Query<(Columns<session::Column>, Columns<user::Column>)>,
}

impl SqliteSessionRepository {
    pub fn new(generic: SeaOrmSessionRepository, reads: Arc<DirectReads>) -> Self {
        // The generic path's statement, its session id bound at each read.
        let with_user = session::Entity::find_by_id(Uuid::nil())
            .find_also_related(user::Entity)
            .build(DbBackend::Sqlite);
        Self {
            generic,
            reads,
            with_user: Query::new(with_user, |statement| {
                Ok((
                    Columns::locate(statement, SelectA.as_str())?,
                    Columns::locate(statement, SelectB.as_str())?,
                ))
            }),
        }
    }

    /// The rows of a session and its user, read on the calling thread.
    pub(super) fn read_directly(
        &self,
        id: SessionId,
    ) -> Result<Option<(session::Model, user::Model)>, ReadError> {
        let found = self
            .reads
            .first_row(&self.with_user, id.as_uuid(), session_and_user)?;
        Ok(found.flatten())
    }
}

/// A `sessions` row as SeaORM reads it.
fn session_row(row: &Row<'_>, at: &Columns<session::Column>) -> rusqlite::Result<session::Model> {
    use session::Column;
    Ok(session::Model {
        id: at.get(row, Column::Id)?,
        user_id: at.get(row, Column::UserId)?,
        created_at: at.instant(row, Column::CreatedAt)?,
        last_used_at: at.instant(row, Column::LastUsedAt)?,
        expires_at: at.instant(row, Column::ExpiresAt)?,
        revoked_at: at.optional_instant(row, Column::RevokedAt)?,
        user_agent: at.get(row, Column::UserAgent)?,
        ip: at.get(row, Column::Ip)?,
        authenticated_at: at.optional_instant(row, Column::AuthenticatedAt)?,
        auth_methods: at.get(row, Column::AuthMethods)?,
        generation: at.get(row, Column::Generation)?,
        rotated_at: at.optional_instant(row, Column::RotatedAt)?,
        siblings: at.get(row, Column::Siblings)?,
    })
}

/// A session and its user; `None` when the join found no user, as the generic path reads it.
fn session_and_user(
    row: &Row<'_>,
    (session, user): &(Columns<session::Column>, Columns<user::Column>),
) -> rusqlite::Result<Option<(session::Model, user::Model)>> {
    if user.get::<Option<Uuid>>(row, user::Column::Id)?.is_none() {
        return Ok(None);
    }
    Ok(Some((session_row(row, session)?, user_row(row, user)?)))
}

#[async_trait]
impl SessionRepository for SqliteSessionRepository {
    async fn create(
        &self,
        session: &Session,
        refresh_token: &TokenHash,
    ) -> Result<(), RepositoryError> {
        self.generic.create(session, refresh_token).await
    }

    async fn find_with_user(
        &self,
        id: SessionId,
    ) -> Result<Option<(Session, User)>, RepositoryError> {
        match self.read_directly(id) {
            Ok(Some((session, user))) => Ok(Some((to_domain(session), users::to_domain(user)?))),
            Ok(None) => Ok(None),
            Err(ReadError::Busy) => self.generic.find_with_user(id).await,
            Err(ReadError::Failed(error)) => Err(RepositoryError::Internal(Box::new(error))),
        }
    }

    async fn find(&self, id: SessionId) -> Result<Option<Session>, RepositoryError> {
        self.generic.find(id).await
    }

    async fn find_by_refresh_token(
        &self,
        token: &TokenHash,
    ) -> Result<Option<PresentedRefreshToken>, RepositoryError> {
        self.generic.find_by_refresh_token(token).await
    }

    async fn rotate_refresh_token(
        &self,
        exchange: &RefreshTokenExchange<'_>,
    ) -> Result<bool, RepositoryError> {
        self.generic.rotate_refresh_token(exchange).await
    }

    async fn add_sibling(
        &self,
        exchange: &RefreshTokenExchange<'_>,
        max_siblings: u32,
    ) -> Result<SiblingAdded, RepositoryError> {
        self.generic.add_sibling(exchange, max_siblings).await
    }

    async fn reauthenticate(
        &self,
        id: SessionId,
        authentication: Authentication,
    ) -> Result<bool, RepositoryError> {
        self.generic.reauthenticate(id, authentication).await
    }

    async fn revoke(&self, id: SessionId, now: DateTime<Utc>) -> Result<bool, RepositoryError> {
        self.generic.revoke(id, now).await
    }

    async fn revoke_all(
        &self,
        user: UserId,
        except: Option<SessionId>,
        now: DateTime<Utc>,
    ) -> Result<u64, RepositoryError> {
        self.generic.revoke_all(user, except, now).await
    }

    async fn list_active(
        &self,
        user: UserId,
        now: DateTime<Utc>,
        page: &PageRequest<SessionId>,
    ) -> Result<Page<Session>, RepositoryError> {
        self.generic.list_active(user, now, page).await
    }

    async fn count_active(&self, user: UserId, now: DateTime<Utc>) -> Result<u64, RepositoryError> {
        self.generic.count_active(user, now).await
    }

    async fn delete_ended(&self, now: DateTime<Utc>) -> Result<u64, RepositoryError> {
        self.generic.delete_ended(now).await
    }
}
