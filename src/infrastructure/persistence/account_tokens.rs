use async_trait::async_trait;
use chrono::{DateTime, Utc};
use entity::{account_token, user};
use sea_orm::ExprTrait;
use sea_orm::sea_query::{Expr, Query, SelectStatement};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QuerySelect, QueryTrait,
};

use crate::domain::{
    AccountToken, AccountTokenRepository, Email, RepositoryError, TokenHash, TokenPurpose,
    UsedToken, UserId,
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
    async fn issue(&self, token: &AccountToken) -> Result<bool, RepositoryError> {
        let backend = self.db.get_database_backend();
        // The new row is selected from the account's row, so it is stored only if the account
        // still has the address the link goes to and the credential version it was read at:
        // a link cannot be bound to a state that changed while it was being issued.
        let bound = Query::select()
            .exprs([
                Expr::val(token.hash.as_str()),
                Expr::val(token.user_id.as_uuid()),
                Expr::val(token.purpose.as_str()),
                Expr::val(token.created_at),
                Expr::val(token.expires_at),
                Expr::val(token.email.as_str()),
                Expr::val(token.credential_version),
                Expr::val(token.target_email.as_ref().map(|e| e.as_str().to_owned())),
            ])
            .from(user::Entity)
            .and_where(user::Column::Id.eq(token.user_id.as_uuid()))
            .and_where(user::Column::Email.eq(token.email.as_str()))
            .and_where(user::Column::CredentialVersion.eq(token.credential_version))
            .to_owned();
        let insert = Query::insert()
            .into_table(account_token::Entity)
            .columns([
                account_token::Column::TokenHash,
                account_token::Column::UserId,
                account_token::Column::Purpose,
                account_token::Column::CreatedAt,
                account_token::Column::ExpiresAt,
                account_token::Column::Email,
                account_token::Column::CredentialVersion,
                account_token::Column::TargetEmail,
            ])
            .select_from(bound)
            .map_err(|e| RepositoryError::Internal(Box::new(e)))?
            .to_owned();
        let earlier = token.purpose.replaces_earlier().then(|| {
            account_token::Entity::delete_many()
                .filter(account_token::Column::UserId.eq(token.user_id.as_uuid()))
                .filter(account_token::Column::Purpose.eq(token.purpose.as_str()))
                .build(backend)
        });
        let insert = backend.build(&insert);
        self.writes
            .run(|txn| {
                let (earlier, insert) = (earlier.clone(), insert.clone());
                Box::pin(async move {
                    if let Some(earlier) = earlier {
                        txn.execute_raw(earlier).await?;
                    }
                    Ok(match txn.execute_raw(insert).await?.rows_affected() {
                        1 => Finish::Commit(true),
                        _ => Finish::Rollback(false),
                    })
                })
            })
            .await
    }

    async fn consume(
        &self,
        token: &TokenHash,
        purpose: TokenPurpose,
        now: DateTime<Utc>,
    ) -> Result<Option<UsedToken>, RepositoryError> {
        let bound = state_it_was_issued_for(purpose);
        // The conditional update is the claim: of concurrent uses, one changes the row.
        let claim = account_token::Entity::update_many()
            .col_expr(account_token::Column::UsedAt, Expr::value(now))
            .filter(account_token::Column::TokenHash.eq(token.as_str()))
            .filter(account_token::Column::Purpose.eq(purpose.as_str()))
            .filter(account_token::Column::UsedAt.is_null())
            .filter(account_token::Column::ExpiresAt.gt(now))
            .filter(Expr::exists(bound))
            .build(self.db.get_database_backend());
        if self.writes.execute(claim).await?.rows_affected() != 1 {
            return Ok(None);
        }
        self.holder(token).await
    }

    async fn peek(
        &self,
        token: &TokenHash,
        purpose: TokenPurpose,
        now: DateTime<Utc>,
    ) -> Result<Option<UsedToken>, RepositoryError> {
        let usable = account_token::Entity::find()
            .select_only()
            .column(account_token::Column::TokenHash)
            .filter(account_token::Column::TokenHash.eq(token.as_str()))
            .filter(account_token::Column::Purpose.eq(purpose.as_str()))
            .filter(account_token::Column::UsedAt.is_null())
            .filter(account_token::Column::ExpiresAt.gt(now))
            .filter(Expr::exists(state_it_was_issued_for(purpose)))
            .into_tuple::<String>()
            .one(&self.db)
            .await
            .map_err(repository_error)?;
        match usable {
            Some(_) => self.holder(token).await,
            None => Ok(None),
        }
    }

    async fn attempt(
        &self,
        token: &TokenHash,
        purpose: TokenPurpose,
        max_attempts: u32,
        now: DateTime<Utc>,
    ) -> Result<Option<UsedToken>, RepositoryError> {
        // Counting is the admission: of concurrent tries past the limit, none gets through.
        let count = account_token::Entity::update_many()
            .col_expr(
                account_token::Column::Attempts,
                Expr::col(account_token::Column::Attempts).add(1),
            )
            .filter(account_token::Column::TokenHash.eq(token.as_str()))
            .filter(account_token::Column::Purpose.eq(purpose.as_str()))
            .filter(account_token::Column::UsedAt.is_null())
            .filter(account_token::Column::ExpiresAt.gt(now))
            .filter(account_token::Column::Attempts.lt(i64::from(max_attempts)))
            .filter(Expr::exists(state_it_was_issued_for(purpose)))
            .build(self.db.get_database_backend());
        if self.writes.execute(count).await?.rows_affected() != 1 {
            return Ok(None);
        }
        self.holder(token).await
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

impl SeaOrmAccountTokenRepository {
    /// The account and addresses a token was issued with.
    async fn holder(&self, token: &TokenHash) -> Result<Option<UsedToken>, RepositoryError> {
        let row: Option<(uuid::Uuid, Option<String>, Option<String>, i64)> =
            account_token::Entity::find_by_id(token.as_str())
                .select_only()
                .column(account_token::Column::UserId)
                .column(account_token::Column::Email)
                .column(account_token::Column::TargetEmail)
                .column(account_token::Column::CredentialVersion)
                .into_tuple()
                .one(&self.db)
                .await
                .map_err(repository_error)?;
        Ok(
            row.and_then(|(user_id, email, target, credential_version)| {
                Some(UsedToken {
                    user_id: UserId::from_uuid(user_id),
                    email: Email::parse(&email?).ok()?,
                    target_email: target.and_then(|t| Email::parse(&t).ok()),
                    credential_version,
                })
            }),
        )
    }
}

/// The condition, on the token's row, that its account is still in the state it was issued
/// for (see `AccountTokenRepository::consume`).
fn state_it_was_issued_for(purpose: TokenPurpose) -> SelectStatement {
    let user = |column| Expr::col((user::Entity, column));
    let token = |column| (account_token::Entity, column);
    let mut state = Query::select()
        .expr(Expr::val(1))
        .from(user::Entity)
        .and_where(user(user::Column::Id).equals(token(account_token::Column::UserId)))
        .to_owned();
    if purpose == TokenPurpose::SecureAccount {
        // Bound to nothing but its account (see `AccountRecoveryStore::secure`).
        return state;
    }
    state
        .and_where(user(user::Column::Email).equals(token(account_token::Column::Email)))
        .and_where(
            user(user::Column::CredentialVersion)
                .equals(token(account_token::Column::CredentialVersion)),
        );
    if purpose == TokenPurpose::EmailChange {
        state.and_where(
            user(user::Column::PendingEmail).equals(token(account_token::Column::TargetEmail)),
        );
    }
    state
}
