//! Second factors in `totp_factors` and `recovery_codes`, and the mark on `users` that says an
//! account has one.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use entity::{recovery_code, totp_factor, user};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait,
    ExprTrait, PaginatorTrait, QueryFilter, QueryTrait, Statement,
};

use crate::domain::{RepositoryError, SecondFactorStore, TokenHash, TotpFactor, UserId};

use super::repository_error;
use super::transactions::{Finish, Transactions};

pub struct SeaOrmSecondFactorRepository {
    db: DatabaseConnection,
    writes: Transactions,
}

impl SeaOrmSecondFactorRepository {
    pub fn new(writes: Transactions) -> Self {
        Self {
            db: writes.db().clone(),
            writes,
        }
    }

    fn backend(&self) -> DbBackend {
        self.db.get_database_backend()
    }

    /// Marks the account as having a second factor (`Some`) or none, moving its credential
    /// version on: links and sign-in tickets issued before are void.
    fn mark_account(&self, user: UserId, enabled_at: Option<DateTime<Utc>>) -> Statement {
        user::Entity::update_many()
            .col_expr(user::Column::MfaEnabledAt, Expr::value(enabled_at))
            .col_expr(
                user::Column::CredentialVersion,
                Expr::col(user::Column::CredentialVersion).add(1),
            )
            .filter(user::Column::Id.eq(user.as_uuid()))
            .build(self.backend())
    }

    /// Deletes the account's recovery codes and stores `codes` in their place.
    fn replace_codes(
        &self,
        user: UserId,
        codes: &[TokenHash],
        now: DateTime<Utc>,
    ) -> Vec<Statement> {
        let mut statements = vec![self.delete_codes(user)];
        // An insert without rows is not SQL: no codes, nothing to insert.
        if !codes.is_empty() {
            statements.push(
                recovery_code::Entity::insert_many(codes.iter().map(|code| {
                    recovery_code::ActiveModel {
                        code_hash: Set(code.as_str().to_owned()),
                        user_id: Set(user.as_uuid()),
                        created_at: Set(now),
                        used_at: Set(None),
                    }
                }))
                .build(self.backend()),
            );
        }
        statements
    }

    fn delete_codes(&self, user: UserId) -> Statement {
        recovery_code::Entity::delete_many()
            .filter(recovery_code::Column::UserId.eq(user.as_uuid()))
            .build(self.backend())
    }
}

#[async_trait]
impl SecondFactorStore for SeaOrmSecondFactorRepository {
    async fn find(&self, user: UserId) -> Result<Option<TotpFactor>, RepositoryError> {
        let row = totp_factor::Entity::find_by_id(user.as_uuid())
            .one(&self.db)
            .await
            .map_err(repository_error)?;
        Ok(row.map(|row| TotpFactor {
            user_id: UserId::from_uuid(row.user_id),
            sealed_secret: row.secret,
            created_at: row.created_at,
            confirmed_at: row.confirmed_at,
            last_step: row.last_step,
        }))
    }

    async fn begin_enrollment(&self, factor: &TotpFactor) -> Result<bool, RepositoryError> {
        let backend = self.backend();
        let unconfirmed = totp_factor::Entity::delete_many()
            .filter(totp_factor::Column::UserId.eq(factor.user_id.as_uuid()))
            .filter(totp_factor::Column::ConfirmedAt.is_null())
            .build(backend);
        let insert = totp_factor::Entity::insert(totp_factor::ActiveModel {
            user_id: Set(factor.user_id.as_uuid()),
            secret: Set(factor.sealed_secret.clone()),
            created_at: Set(factor.created_at),
            confirmed_at: Set(None),
            last_step: Set(0),
        })
        .build(backend);
        self.writes.execute(unconfirmed).await?;
        // One row per account: a confirmed factor still there refuses the insert.
        match self.writes.execute(insert).await {
            Ok(_) => Ok(true),
            Err(RepositoryError::Conflict) => Ok(false),
            Err(other) => Err(other),
        }
    }

    async fn confirm(
        &self,
        user: UserId,
        sealed_secret: &str,
        step: i64,
        recovery_codes: &[TokenHash],
        now: DateTime<Utc>,
    ) -> Result<bool, RepositoryError> {
        let confirm = totp_factor::Entity::update_many()
            .col_expr(totp_factor::Column::ConfirmedAt, Expr::value(now))
            .col_expr(totp_factor::Column::LastStep, Expr::value(step))
            .filter(totp_factor::Column::UserId.eq(user.as_uuid()))
            .filter(totp_factor::Column::ConfirmedAt.is_null())
            .filter(totp_factor::Column::Secret.eq(sealed_secret))
            .build(self.backend());
        let mut statements = self.replace_codes(user, recovery_codes, now);
        statements.push(self.mark_account(user, Some(now)));
        self.writes
            .run(|txn| {
                let (confirm, statements) = (confirm.clone(), statements.clone());
                Box::pin(async move {
                    if txn.execute_raw(confirm).await?.rows_affected() != 1 {
                        return Ok(Finish::Rollback(false));
                    }
                    for statement in statements {
                        txn.execute_raw(statement).await?;
                    }
                    Ok(Finish::Commit(true))
                })
            })
            .await
    }

    async fn reseal(&self, user: UserId, from: &str, to: &str) -> Result<bool, RepositoryError> {
        let update = totp_factor::Entity::update_many()
            .col_expr(totp_factor::Column::Secret, Expr::value(to))
            .filter(totp_factor::Column::UserId.eq(user.as_uuid()))
            .filter(totp_factor::Column::Secret.eq(from))
            .build(self.backend());
        Ok(self.writes.execute(update).await?.rows_affected() == 1)
    }

    async fn accept_step(&self, user: UserId, step: i64) -> Result<bool, RepositoryError> {
        // The conditional write is the guard against replay, across instances too.
        let advance = totp_factor::Entity::update_many()
            .col_expr(totp_factor::Column::LastStep, Expr::value(step))
            .filter(totp_factor::Column::UserId.eq(user.as_uuid()))
            .filter(totp_factor::Column::ConfirmedAt.is_not_null())
            .filter(totp_factor::Column::LastStep.lt(step))
            .build(self.backend());
        Ok(self.writes.execute(advance).await?.rows_affected() == 1)
    }

    async fn use_recovery_code(
        &self,
        user: UserId,
        code: &TokenHash,
        now: DateTime<Utc>,
    ) -> Result<bool, RepositoryError> {
        let claim = recovery_code::Entity::update_many()
            .col_expr(recovery_code::Column::UsedAt, Expr::value(now))
            .filter(recovery_code::Column::CodeHash.eq(code.as_str()))
            .filter(recovery_code::Column::UserId.eq(user.as_uuid()))
            .filter(recovery_code::Column::UsedAt.is_null())
            .build(self.backend());
        Ok(self.writes.execute(claim).await?.rows_affected() == 1)
    }

    async fn replace_recovery_codes(
        &self,
        user: UserId,
        codes: &[TokenHash],
        now: DateTime<Utc>,
    ) -> Result<(), RepositoryError> {
        let statements = self.replace_codes(user, codes, now);
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

    async fn recovery_codes_left(&self, user: UserId) -> Result<u64, RepositoryError> {
        recovery_code::Entity::find()
            .filter(recovery_code::Column::UserId.eq(user.as_uuid()))
            .filter(recovery_code::Column::UsedAt.is_null())
            .count(&self.db)
            .await
            .map_err(repository_error)
    }

    async fn remove(&self, user: UserId) -> Result<bool, RepositoryError> {
        let factor = totp_factor::Entity::delete_many()
            .filter(totp_factor::Column::UserId.eq(user.as_uuid()))
            .filter(totp_factor::Column::ConfirmedAt.is_not_null())
            .build(self.backend());
        let statements = [self.delete_codes(user), self.mark_account(user, None)];
        self.writes
            .run(|txn| {
                let (factor, statements) = (factor.clone(), statements.clone());
                Box::pin(async move {
                    if txn.execute_raw(factor).await?.rows_affected() != 1 {
                        return Ok(Finish::Rollback(false));
                    }
                    for statement in statements {
                        txn.execute_raw(statement).await?;
                    }
                    Ok(Finish::Commit(true))
                })
            })
            .await
    }
}
