use async_trait::async_trait;
use chrono::{DateTime, Utc};
use entity::user;
use sea_orm::sea_query::{Expr, Func};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction,
    DbBackend, DbErr, EntityTrait, ExprTrait, PaginatorTrait, QueryFilter, QuerySelect, QueryTrait,
    Select,
};

use crate::domain::{
    AccountStore, DisplayName, Email, GuardedChange, PasswordHash, RepositoryError, Role,
    Suspension, SuspensionReason, User, UserId,
};

use super::repository_error;
use super::transactions::{Finish, Transactions};

/// Users in the `users` table.
pub struct SeaOrmUserRepository {
    db: DatabaseConnection,
    /// Every write goes through it (retries on contention).
    writes: Transactions,
}

impl SeaOrmUserRepository {
    pub fn new(writes: Transactions) -> Self {
        Self {
            db: writes.db().clone(),
            writes,
        }
    }
}

/// A change that must leave an active administrator.
#[derive(Clone)]
pub(super) enum AdminSensitive {
    Role(Role),
    Suspension(Option<Suspension>),
    Delete,
}

#[async_trait]
impl AccountStore for SeaOrmUserRepository {
    async fn insert(&self, user: &User) -> Result<(), RepositoryError> {
        let insert = insert_statement(user, self.db.get_database_backend());
        self.writes.execute(insert).await?;
        Ok(())
    }

    async fn find_by_id(&self, id: UserId) -> Result<Option<User>, RepositoryError> {
        user::Entity::find_by_id(id.as_uuid())
            .one(&self.db)
            .await
            .map_err(repository_error)?
            .map(to_domain)
            .transpose()
    }

    async fn set_password_hash(
        &self,
        id: UserId,
        hash: &PasswordHash,
        now: DateTime<Utc>,
    ) -> Result<(), RepositoryError> {
        self.update(id, now, |q| {
            // A password set (changed or reset) is one the account has from now on.
            next_credential_version(
                q.col_expr(user::Column::PasswordHash, Expr::value(hash.as_str()))
                    .col_expr(user::Column::HasPassword, Expr::value(true)),
            )
        })
        .await
    }

    async fn mark_email_verified(
        &self,
        id: UserId,
        email: &Email,
        now: DateTime<Utc>,
    ) -> Result<bool, RepositoryError> {
        // Only the address that was proven: if the account moved to another one meanwhile,
        // nothing is marked.
        let update = user::Entity::update_many()
            .col_expr(
                user::Column::EmailVerifiedAt,
                Func::coalesce([Expr::col(user::Column::EmailVerifiedAt), Expr::value(now)]).into(),
            )
            .col_expr(user::Column::UpdatedAt, Expr::value(now))
            .filter(user::Column::Id.eq(id.as_uuid()))
            .filter(user::Column::Email.eq(email.as_str()))
            .build(self.db.get_database_backend());
        Ok(self.writes.execute(update).await?.rows_affected() == 1)
    }

    async fn find_many(&self, ids: &[UserId]) -> Result<Vec<User>, RepositoryError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        user::Entity::find()
            .filter(user::Column::Id.is_in(ids.iter().map(UserId::as_uuid)))
            .all(&self.db)
            .await
            .map_err(repository_error)?
            .into_iter()
            .map(to_domain)
            .collect()
    }

    async fn set_display_name(
        &self,
        id: UserId,
        name: Option<&DisplayName>,
        now: DateTime<Utc>,
    ) -> Result<(), RepositoryError> {
        let name = name.map(|n| n.as_str().to_owned());
        self.update(id, now, |q| {
            q.col_expr(user::Column::DisplayName, Expr::value(name))
        })
        .await
    }

    async fn request_email_change(
        &self,
        id: UserId,
        email: &Email,
        now: DateTime<Utc>,
    ) -> Result<(), RepositoryError> {
        self.update(id, now, |q| {
            q.col_expr(user::Column::PendingEmail, Expr::value(email.as_str()))
        })
        .await
    }

    async fn change_email(
        &self,
        id: UserId,
        email: &Email,
        version: i64,
        now: DateTime<Utc>,
    ) -> Result<bool, RepositoryError> {
        let update = next_credential_version(
            user::Entity::update_many()
                .col_expr(user::Column::Email, Expr::value(email.as_str()))
                .col_expr(user::Column::EmailVerifiedAt, Expr::value(now))
                .col_expr(
                    user::Column::PendingEmail,
                    Expr::value(Option::<String>::None),
                ),
        )
        .col_expr(user::Column::UpdatedAt, Expr::value(now))
        .filter(user::Column::Id.eq(id.as_uuid()))
        .filter(user::Column::CredentialVersion.eq(version))
        .build(self.db.get_database_backend());
        Ok(self.writes.execute(update).await?.rows_affected() == 1)
    }

    async fn delete(
        &self,
        id: UserId,
        now: DateTime<Utc>,
    ) -> Result<GuardedChange, RepositoryError> {
        self.guarded(id, AdminSensitive::Delete, now).await
    }
}

impl SeaOrmUserRepository {
    pub(super) fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Updates columns of one user and its `updated_at`.
    async fn update(
        &self,
        id: UserId,
        now: DateTime<Utc>,
        columns: impl FnOnce(sea_orm::UpdateMany<user::Entity>) -> sea_orm::UpdateMany<user::Entity>,
    ) -> Result<(), RepositoryError> {
        let update = columns(user::Entity::update_many())
            .col_expr(user::Column::UpdatedAt, Expr::value(now))
            .filter(user::Column::Id.eq(id.as_uuid()))
            .build(self.db.get_database_backend());
        self.writes.execute(update).await?;
        Ok(())
    }

    /// Applies `change` and keeps it only if an active administrator remains, atomically.
    pub(super) async fn guarded(
        &self,
        id: UserId,
        change: AdminSensitive,
        now: DateTime<Utc>,
    ) -> Result<GuardedChange, RepositoryError> {
        self.writes
            .run(|txn| {
                let change = change.clone();
                Box::pin(async move {
                    Ok(match guarded_in(txn, id, change, now).await? {
                        GuardedChange::Applied => Finish::Commit(GuardedChange::Applied),
                        refused => Finish::Rollback(refused),
                    })
                })
            })
            .await
    }
}

async fn guarded_in(
    txn: &DatabaseTransaction,
    id: UserId,
    change: AdminSensitive,
    now: DateTime<Utc>,
) -> Result<GuardedChange, DbErr> {
    // Serialise changes of administrators, so two admins demoting each other at the same
    // moment cannot both see the other one still there. PostgreSQL and MySQL lock the admin
    // rows; SQLite has one writer, and a first statement that writes takes its lock.
    if txn.get_database_backend() == DbBackend::Sqlite {
        user::Entity::update_many()
            .col_expr(user::Column::UpdatedAt, Expr::value(now))
            .filter(user::Column::Id.eq(id.as_uuid()))
            .exec(txn)
            .await?;
    } else {
        active_admins().lock_exclusive().all(txn).await?;
    }
    let Some(target) = user::Entity::find_by_id(id.as_uuid()).one(txn).await? else {
        return Ok(GuardedChange::UnknownUser);
    };
    let was_active_admin = target.role == Role::Admin.as_str() && target.suspended_at.is_none();
    match change {
        AdminSensitive::Role(role) => {
            user::Entity::update_many()
                .col_expr(user::Column::Role, Expr::value(role.as_str()))
                .col_expr(user::Column::UpdatedAt, Expr::value(now))
                .filter(user::Column::Id.eq(id.as_uuid()))
                .exec(txn)
                .await?;
        }
        AdminSensitive::Suspension(suspension) => {
            let suspending = suspension.is_some();
            user::Entity::update_many()
                .apply_if(suspending.then_some(()), |q, ()| next_credential_version(q))
                .col_expr(
                    user::Column::SuspendedAt,
                    Expr::value(suspension.as_ref().map(|s| s.since)),
                )
                .col_expr(
                    user::Column::SuspensionReason,
                    Expr::value(suspension.map(|s| s.reason.as_str().to_owned())),
                )
                .col_expr(user::Column::UpdatedAt, Expr::value(now))
                .filter(user::Column::Id.eq(id.as_uuid()))
                .exec(txn)
                .await?;
        }
        AdminSensitive::Delete => {
            user::Entity::delete_many()
                .filter(user::Column::Id.eq(id.as_uuid()))
                .exec(txn)
                .await?;
        }
    }
    if was_active_admin && active_admins().count(txn).await? == 0 {
        return Ok(GuardedChange::LastAdmin);
    }
    Ok(GuardedChange::Applied)
}

/// The statement that inserts `user`.
pub(super) fn insert_statement(user: &User, backend: DbBackend) -> sea_orm::Statement {
    let row = user::ActiveModel {
        id: Set(user.id.as_uuid()),
        email: Set(user.email.as_str().to_owned()),
        password_hash: Set(user.password_hash.as_str().to_owned()),
        display_name: Set(user.display_name.as_ref().map(|n| n.as_str().to_owned())),
        role: Set(user.role.as_str().to_owned()),
        email_verified_at: Set(user.email_verified_at),
        suspended_at: Set(user.suspension.as_ref().map(|s| s.since)),
        suspension_reason: Set(user
            .suspension
            .as_ref()
            .map(|s| s.reason.as_str().to_owned())),
        created_at: Set(user.created_at),
        updated_at: Set(user.updated_at),
        credential_version: Set(user.credential_version),
        pending_email: Set(user.pending_email.as_ref().map(|e| e.as_str().to_owned())),
        mfa_enabled_at: Set(user.mfa_enabled_at),
        has_password: Set(user.has_password),
    };
    user::Entity::insert(row).build(backend)
}

/// Moves the account's credential version on, voiding every link issued before.
fn next_credential_version(
    update: sea_orm::UpdateMany<user::Entity>,
) -> sea_orm::UpdateMany<user::Entity> {
    update.col_expr(
        user::Column::CredentialVersion,
        Expr::col(user::Column::CredentialVersion).add(1),
    )
}

fn active_admins() -> Select<user::Entity> {
    user::Entity::find()
        .filter(user::Column::Role.eq(Role::Admin.as_str()))
        .filter(user::Column::SuspendedAt.is_null())
}

/// Rows were written through the domain types, so a row that fails to convert back means the
/// data was changed behind the service's back: report it rather than guess.
pub(super) fn to_domain(row: user::Model) -> Result<User, RepositoryError> {
    let corrupt = |what: &str| {
        RepositoryError::Internal(format!("user {} has an invalid {what}", row.id).into())
    };
    let email = Email::parse(&row.email).map_err(|_| corrupt("email"))?;
    // As stored: a name saved before today's rules were stricter still reads back.
    let display_name = row.display_name.clone().map(DisplayName::from_stored);
    let role = Role::from_stored(&row.role).ok_or_else(|| corrupt("role"))?;
    let suspension = match (row.suspended_at, &row.suspension_reason) {
        (Some(since), Some(reason)) => Some(Suspension {
            since,
            reason: SuspensionReason::parse(reason).map_err(|_| corrupt("suspension reason"))?,
        }),
        (None, _) => None,
        (Some(_), None) => return Err(corrupt("suspension")),
    };
    Ok(User {
        id: UserId::from_uuid(row.id),
        email,
        display_name,
        role,
        password_hash: PasswordHash::new(row.password_hash),
        email_verified_at: row.email_verified_at,
        suspension,
        created_at: row.created_at,
        updated_at: row.updated_at,
        credential_version: row.credential_version,
        mfa_enabled_at: row.mfa_enabled_at,
        has_password: row.has_password,
        pending_email: match &row.pending_email {
            Some(email) => Some(Email::parse(email).map_err(|_| corrupt("pending email"))?),
            None => None,
        },
    })
}
