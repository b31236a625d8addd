use async_trait::async_trait;
use chrono::{DateTime, Utc};
use entity::account_token;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, EntityTrait,
    QueryFilter, QuerySelect, QueryTrait,
};

use crate::domain::{
    AccountToken, AccountTokenRepository, RepositoryError, TokenHash, TokenPurpose, UserId,
};

use super::repository_error;
use super::transactions::{Finish, Transactions};

/// One-time email tokens in `account_tokens`.
pub struct SeaOrmAccountTokenRepository {
    db: DatabaseConnection,
    /// Every write goes through it (retries on contention).
    writes: Transactions,
}

impl SeaOrmAccountTokenRepository {
    pub fn new(writes: Transactions) -> Self {
        Self {
            db: writes.db().clone(),
            writes,
        }
    }
}

#[async_trait]
impl AccountTokenRepository for SeaOrmAccountTokenRepository {
    async fn replace(&self, token: &AccountToken) -> Result<(), RepositoryError> {
        let backend = self.db.get_database_backend();
        // On MariaDB this delete, finding nothing for a new account, used to lock the gap at
        // the end of the index (REPEATABLE READ) and deadlock concurrent sign-ups; connections
        // now run at READ COMMITTED (see `connect`).
        let statements = [
            account_token::Entity::delete_many()
                .filter(account_token::Column::UserId.eq(token.user_id.as_uuid()))
                .filter(account_token::Column::Purpose.eq(token.purpose.as_str()))
                .build(backend),
            account_token::Entity::insert(account_token::ActiveModel {
                token_hash: Set(token.hash.as_str().to_owned()),
                user_id: Set(token.user_id.as_uuid()),
                purpose: Set(token.purpose.as_str().to_owned()),
                created_at: Set(token.created_at),
                expires_at: Set(token.expires_at),
                used_at: Set(None),
            })
            .build(backend),
        ];
        self.writes
            .run(|txn| {
                let statements = statements.clone();
                Box::pin(async move {
                    for statement in statements {
                        txn.execute_raw(statement).await?;
                    }
                    Ok(Finish::Commit(()))
                })
            })
            .await
    }

    async fn consume(
        &self,
        token: &TokenHash,
        purpose: TokenPurpose,
        now: DateTime<Utc>,
    ) -> Result<Option<UserId>, RepositoryError> {
        // The conditional update is the claim: of concurrent uses, one changes the row.
        let claim = account_token::Entity::update_many()
            .col_expr(account_token::Column::UsedAt, Expr::value(now))
            .filter(account_token::Column::TokenHash.eq(token.as_str()))
            .filter(account_token::Column::Purpose.eq(purpose.as_str()))
            .filter(account_token::Column::UsedAt.is_null())
            .filter(account_token::Column::ExpiresAt.gt(now))
            .build(self.db.get_database_backend());
        if self.writes.execute(claim).await?.rows_affected() != 1 {
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
        let delete = account_token::Entity::delete_many()
            .filter(
                Condition::any()
                    .add(account_token::Column::ExpiresAt.lte(now))
                    .add(account_token::Column::UsedAt.is_not_null()),
            )
            .build(self.db.get_database_backend());
        Ok(self.writes.execute(delete).await?.rows_affected())
    }
}
