use async_trait::async_trait;
use entity::{refresh_token, session};
use sea_orm::{ActiveValue::Set, DatabaseConnection, EntityTrait, TransactionTrait};

use crate::domain::{
    RefreshTokenHash, RepositoryError, Session, SessionId, SessionRepository, UserId,
};

use super::repository_error;

/// Sessions in `sessions`, their refresh-token hashes in `refresh_tokens`.
pub struct SeaOrmSessionRepository {
    db: DatabaseConnection,
}

impl SeaOrmSessionRepository {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }
}

#[async_trait]
impl SessionRepository for SeaOrmSessionRepository {
    async fn create(
        &self,
        session: &Session,
        refresh_token: &RefreshTokenHash,
    ) -> Result<(), RepositoryError> {
        let txn = self.db.begin().await.map_err(repository_error)?;
        session::Entity::insert(session::ActiveModel {
            id: Set(session.id.as_uuid()),
            user_id: Set(session.user_id.as_uuid()),
            created_at: Set(session.created_at),
            last_used_at: Set(session.last_used_at),
            expires_at: Set(session.expires_at),
            revoked_at: Set(session.revoked_at),
            user_agent: Set(session.user_agent.clone()),
            ip: Set(session.ip.clone()),
        })
        .exec_without_returning(&txn)
        .await
        .map_err(repository_error)?;
        refresh_token::Entity::insert(refresh_token::ActiveModel {
            token_hash: Set(refresh_token.as_str().to_owned()),
            session_id: Set(session.id.as_uuid()),
            issued_at: Set(session.created_at),
            used_at: Set(None),
        })
        .exec_without_returning(&txn)
        .await
        .map_err(repository_error)?;
        txn.commit().await.map_err(repository_error)
    }

    async fn find(&self, id: SessionId) -> Result<Option<Session>, RepositoryError> {
        let row = session::Entity::find_by_id(id.as_uuid())
            .one(&self.db)
            .await
            .map_err(repository_error)?;
        Ok(row.map(|row| Session {
            id: SessionId::from_uuid(row.id),
            user_id: UserId::from_uuid(row.user_id),
            created_at: row.created_at,
            last_used_at: row.last_used_at,
            expires_at: row.expires_at,
            revoked_at: row.revoked_at,
            user_agent: row.user_agent,
            ip: row.ip,
        }))
    }
}
