//! The "this wasn't me" path over `account_tokens`, `users`, `sessions`, `totp_factors`,
//! `recovery_codes`, `passkeys` and `passkey_ceremonies`: one transaction gives an account back to the address a recovery link
//! was sent to.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use entity::{account_token, passkey, passkey_ceremony, recovery_code, session, totp_factor, user};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, Condition, DatabaseConnection, DatabaseTransaction, DbErr, EntityTrait, ExprTrait,
    PaginatorTrait, QueryFilter,
};

use crate::domain::{
    AccountRecoveryStore, Email, PasswordHash, RepositoryError, Secured, TokenHash, TokenPurpose,
    UserId,
};

use super::repository_error;
use super::transactions::{Finish, Transactions};

pub struct SeaOrmAccountRecovery {
    db: DatabaseConnection,
    writes: Transactions,
}

impl SeaOrmAccountRecovery {
    pub fn new(writes: Transactions) -> Self {
        Self {
            db: writes.db().clone(),
            writes,
        }
    }
}

/// How an attempt to secure an account ended.
enum Outcome {
    Unusable,
    AddressTaken,
    Secured(Secured),
}

const RECOVERY: TokenPurpose = TokenPurpose::SecureAccount;

#[async_trait]
impl AccountRecoveryStore for SeaOrmAccountRecovery {
    async fn secure(
        &self,
        link: &TokenHash,
        locked_password: &PasswordHash,
        now: DateTime<Utc>,
    ) -> Result<Option<Secured>, RepositoryError> {
        let (link, locked_password) = (link.clone(), locked_password.clone());
        let outcome = self
            .writes
            .run(|txn| {
                let (link, locked_password) = (link.clone(), locked_password.clone());
                Box::pin(async move {
                    Ok(match secure_in(txn, &link, &locked_password, now).await? {
                        Outcome::Secured(secured) => Finish::Commit(Outcome::Secured(secured)),
                        refused => Finish::Rollback(refused),
                    })
                })
            })
            .await?;
        match outcome {
            Outcome::Secured(secured) => Ok(Some(secured)),
            Outcome::Unusable => Ok(None),
            Outcome::AddressTaken => Err(RepositoryError::Conflict),
        }
    }

    async fn is_reserved(
        &self,
        email: &Email,
        except: Option<UserId>,
        now: DateTime<Utc>,
    ) -> Result<bool, RepositoryError> {
        let mut holders = usable_links(now)
            .filter(account_token::Column::Email.eq(email.as_str()))
            .clone();
        if let Some(except) = except {
            holders = holders.filter(account_token::Column::UserId.ne(except.as_uuid()));
        }
        let count = holders.count(&self.db).await.map_err(repository_error)?;
        Ok(count > 0)
    }
}

/// The recovery links that still work at `now`.
fn usable_links(now: DateTime<Utc>) -> sea_orm::Select<account_token::Entity> {
    account_token::Entity::find()
        .filter(account_token::Column::Purpose.eq(RECOVERY.as_str()))
        .filter(account_token::Column::UsedAt.is_null())
        .filter(account_token::Column::ExpiresAt.gt(now))
}

async fn secure_in(
    txn: &DatabaseTransaction,
    link: &TokenHash,
    locked_password: &PasswordHash,
    now: DateTime<Utc>,
) -> Result<Outcome, DbErr> {
    // The claim: of concurrent uses of one link, one changes the row.
    let claimed = account_token::Entity::update_many()
        .col_expr(account_token::Column::UsedAt, Expr::value(now))
        .filter(account_token::Column::TokenHash.eq(link.as_str()))
        .filter(account_token::Column::Purpose.eq(RECOVERY.as_str()))
        .filter(account_token::Column::UsedAt.is_null())
        .filter(account_token::Column::ExpiresAt.gt(now))
        .exec(txn)
        .await?;
    if claimed.rows_affected != 1 {
        return Ok(Outcome::Unusable);
    }
    let Some(used) = account_token::Entity::find_by_id(link.as_str())
        .one(txn)
        .await?
    else {
        return Ok(Outcome::Unusable);
    };
    let Some(email) = used.email.as_deref().and_then(|e| Email::parse(e).ok()) else {
        return Ok(Outcome::Unusable);
    };
    let address = email.as_str().to_owned();
    let owner = used.user_id;

    // Every recovery link to this address went to one mailbox: whoever holds this one could
    // use the earliest, so the window starts there. Credential versions order the links of
    // an account (each version belongs to one address), timestamps order what else changed.
    let mailbox = usable_links(now)
        .filter(account_token::Column::UserId.eq(owner))
        .filter(account_token::Column::Email.eq(address.as_str()))
        .all(txn)
        .await?;
    let since = mailbox
        .iter()
        .map(|link| link.created_at)
        .fold(used.created_at, std::cmp::Ord::min);
    let first_version = mailbox
        .iter()
        .map(|link| link.credential_version)
        .fold(used.credential_version, std::cmp::Ord::min);

    let taken = user::Entity::find()
        .filter(user::Column::Email.eq(address.as_str()))
        .filter(user::Column::Id.ne(owner))
        .count(txn)
        .await?;
    if taken > 0 {
        return Ok(Outcome::AddressTaken);
    }

    // A factor confirmed within the window is the hijacker's; one still enrolling is nobody's
    // to keep. An older, confirmed factor is the owner's and stays.
    let factor = totp_factor::Entity::find_by_id(owner).one(txn).await?;
    let factor_removed = factor
        .as_ref()
        .is_some_and(|f| f.confirmed_at.is_some_and(|at| at >= since));
    if factor.is_some_and(|f| f.confirmed_at.is_none() || factor_removed) {
        totp_factor::Entity::delete_by_id(owner).exec(txn).await?;
    }
    let mut codes =
        recovery_code::Entity::delete_many().filter(recovery_code::Column::UserId.eq(owner));
    if !factor_removed {
        codes = codes.filter(recovery_code::Column::CreatedAt.gte(since));
    }
    let recovery_codes_removed = codes.exec(txn).await?.rows_affected;

    // Likewise a passkey added within the window is the hijacker's; so is any ceremony under
    // way for the account (an enrolment started in the hijacker's session, a step-up).
    let passkeys_removed = passkey::Entity::delete_many()
        .filter(passkey::Column::UserId.eq(owner))
        .filter(passkey::Column::CreatedAt.gte(since))
        .exec(txn)
        .await?
        .rows_affected;
    passkey_ceremony::Entity::delete_many()
        .filter(passkey_ceremony::Column::UserId.eq(owner))
        .exec(txn)
        .await?;

    let mut account = user::Entity::update_many()
        .col_expr(user::Column::Email, Expr::value(address.as_str()))
        .col_expr(user::Column::EmailVerifiedAt, Expr::value(now))
        .col_expr(
            user::Column::PendingEmail,
            Expr::value(Option::<String>::None),
        )
        .col_expr(
            user::Column::PasswordHash,
            Expr::value(locked_password.as_str()),
        )
        .col_expr(
            user::Column::CredentialVersion,
            Expr::col(user::Column::CredentialVersion).add(1),
        )
        .col_expr(user::Column::UpdatedAt, Expr::value(now))
        .filter(user::Column::Id.eq(owner));
    if factor_removed {
        account = account.col_expr(
            user::Column::MfaEnabledAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        );
    }
    account.exec(txn).await?;

    let sessions_ended = session::Entity::update_many()
        .col_expr(session::Column::RevokedAt, Expr::value(now))
        .filter(session::Column::UserId.eq(owner))
        .filter(session::Column::RevokedAt.is_null())
        .filter(session::Column::ExpiresAt.gt(now))
        .exec(txn)
        .await?
        .rows_affected;

    // Links of other purposes died with the credential version; voiding them here as well
    // keeps the rule in one statement. Earlier recovery links stay: they undo more.
    let links_voided = account_token::Entity::update_many()
        .col_expr(account_token::Column::UsedAt, Expr::value(now))
        .filter(account_token::Column::UserId.eq(owner))
        .filter(account_token::Column::UsedAt.is_null())
        .filter(
            Condition::any()
                .add(account_token::Column::Purpose.ne(RECOVERY.as_str()))
                .add(account_token::Column::CredentialVersion.gte(first_version)),
        )
        .exec(txn)
        .await?
        .rows_affected;

    Ok(Outcome::Secured(Secured {
        user_id: UserId::from_uuid(owner),
        email,
        sessions_ended,
        factor_removed,
        recovery_codes_removed,
        passkeys_removed,
        links_voided,
    }))
}
