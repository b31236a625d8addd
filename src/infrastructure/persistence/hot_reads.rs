//! The generic implementation of the hot reads: SeaORM queries through the pool, on every
//! backend. On a SQLite file the SQLite adapter (`sqlite::DirectReads`) runs the same
//! statements on the calling thread instead, and falls back to these.

use async_trait::async_trait;
use entity::{session, user};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};

use crate::domain::{Email, HotReads, RepositoryError, Session, SessionId, User};

use super::{repository_error, sessions, users};

/// [`HotReads`] through SeaORM.
#[derive(Clone)]
pub struct SeaOrmHotReads {
    db: DatabaseConnection,
}

impl SeaOrmHotReads {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }
}

#[async_trait]
impl HotReads for SeaOrmHotReads {
    async fn user_by_email(&self, email: &Email) -> Result<Option<User>, RepositoryError> {
        user::Entity::find()
            .filter(user::Column::Email.eq(email.as_str()))
            .one(&self.db)
            .await
            .map_err(repository_error)?
            .map(users::to_domain)
            .transpose()
    }

    async fn session_with_user(
        &self,
        id: SessionId,
    ) -> Result<Option<(Session, User)>, RepositoryError> {
        let row = session::Entity::find_by_id(id.as_uuid())
            .find_also_related(user::Entity)
            .one(&self.db)
            .await
            .map_err(repository_error)?
            .and_then(|(session, user)| Some((session, user?)));
        match row {
            Some((session, user)) => Ok(Some((
                sessions::to_domain(session),
                users::to_domain(user)?,
            ))),
            None => Ok(None),
        }
    }
}
