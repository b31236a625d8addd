use async_trait::async_trait;
use chrono::{DateTime, Utc};
use entity::account_token;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, DatabaseConnection, EntityTrait, QueryFilter,
    QuerySelect, TransactionTrait,
};

use crate::domain::{
    AccountToken, AccountTokenRepository, RepositoryError, TokenHash, TokenPurpose, UserId,
};

use super::repository_error;

/// One-time email tokens in `account_tokens`.
pub struct SeaOrmAccountTokenRepository {
    db: DatabaseConnection,
}

impl SeaOrmAccountTokenRepository {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }
}

#[async_trait]
impl AccountTokenRepository for SeaOrmAccountTokenRepository {
    async fn replace(&self, token: &AccountToken) -> Result<(), RepositoryError> {
        let txn = self.db.begin().await.map_err(repository_error)?;
        account_token::Entity::delete_many()
            .filter(account_token::Column::UserId.eq(token.user_id.as_uuid()))
            .filter(account_token::Column::Purpose.eq(token.purpose.as_str()))
            .exec(&txn)
            .await
            .map_err(repository_error)?;
        account_token::Entity::insert(account_token::ActiveModel {
            token_hash: Set(token.hash.as_str().to_owned()),
            user_id: Set(token.user_id.as_uuid()),
            purpose: Set(token.purpose.as_str().to_owned()),
            created_at: Set(token.created_at),
            expires_at: Set(token.expires_at),
            used_at: Set(None),
        })
        .exec_without_returning(&txn)
        .await
        .map_err(repository_error)?;
        txn.commit().await.map_err(repository_error)
    }

    async fn consume(
        &self,
        token: &TokenHash,
        purpose: TokenPurpose,
        now: DateTime<Utc>,
    ) -> Result<Option<UserId>, RepositoryError> {
        // The conditional update is the claim: of concurrent uses, one changes the row.
        let claimed = account_token::Entity::update_many()
            .col_expr(account_token::Column::UsedAt, Expr::value(now))
            .filter(account_token::Column::TokenHash.eq(token.as_str()))
            .filter(account_token::Column::Purpose.eq(purpose.as_str()))
            .filter(account_token::Column::UsedAt.is_null())
            .filter(account_token::Column::ExpiresAt.gt(now))
            .exec(&self.db)
            .await
            .map_err(repository_error)?;
        if claimed.rows_affected != 1 {
            return Ok(None);
        }
        let user_id: Option<uuid::Uuid> = account_token::Entity::find_by_id(token.as_str())
            .select_only()
            .column(account_token::Column::UserId)
            .into_tuple()
            .one(&self.db)
            .await
            .map_err(repository_error)?;
        Ok(user_id.map(UserId::from_uuid))
    }

    async fn delete_spent(&self, now: DateTime<Utc>) -> Result<u64, RepositoryError> {
        let result = account_token::Entity::delete_many()
            .filter(
                Condition::any()
                    .add(account_token::Column::ExpiresAt.lte(now))
                    .add(account_token::Column::UsedAt.is_not_null()),
            )
            .exec(&self.db)
            .await
            .map_err(repository_error)?;
        Ok(result.rows_affected)
    }
}
