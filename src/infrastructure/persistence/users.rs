use async_trait::async_trait;
use chrono::{DateTime, Utc};
use entity::user;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};

use crate::domain::{
    DisplayName, Email, PasswordHash, RepositoryError, Role, User, UserId, UserRepository,
};

use super::repository_error;

/// Users in the `users` table.
pub struct SeaOrmUserRepository {
    db: DatabaseConnection,
}

impl SeaOrmUserRepository {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }
}

#[async_trait]
impl UserRepository for SeaOrmUserRepository {
    async fn insert(&self, user: &User) -> Result<(), RepositoryError> {
        let row = user::ActiveModel {
            id: Set(user.id.as_uuid()),
            email: Set(user.email.as_str().to_owned()),
            password_hash: Set(user.password_hash.as_str().to_owned()),
            display_name: Set(user.display_name.as_ref().map(|n| n.as_str().to_owned())),
            role: Set(user.role.as_str().to_owned()),
            email_verified_at: Set(user.email_verified_at),
            created_at: Set(user.created_at),
            updated_at: Set(user.updated_at),
        };
        user::Entity::insert(row)
            .exec_without_returning(&self.db)
            .await
            .map_err(repository_error)?;
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

    async fn find_by_email(&self, email: &Email) -> Result<Option<User>, RepositoryError> {
        user::Entity::find()
            .filter(user::Column::Email.eq(email.as_str()))
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
        user::Entity::update_many()
            .col_expr(user::Column::PasswordHash, Expr::value(hash.as_str()))
            .col_expr(user::Column::UpdatedAt, Expr::value(now))
            .filter(user::Column::Id.eq(id.as_uuid()))
            .exec(&self.db)
            .await
            .map_err(repository_error)?;
        Ok(())
    }

    async fn mark_email_verified(
        &self,
        id: UserId,
        now: DateTime<Utc>,
    ) -> Result<(), RepositoryError> {
        user::Entity::update_many()
            .col_expr(user::Column::EmailVerifiedAt, Expr::value(now))
            .col_expr(user::Column::UpdatedAt, Expr::value(now))
            .filter(user::Column::Id.eq(id.as_uuid()))
            .filter(user::Column::EmailVerifiedAt.is_null())
            .exec(&self.db)
            .await
            .map_err(repository_error)?;
        Ok(())
    }
}

/// Rows were written through the domain types, so a row that fails to convert back means the
/// data was changed behind the service's back: report it rather than guess.
fn to_domain(row: user::Model) -> Result<User, RepositoryError> {
    let corrupt = |what: &str| {
        RepositoryError::Unavailable(format!("user {} has an invalid {what}", row.id).into())
    };
    let email = Email::parse(&row.email).map_err(|_| corrupt("email"))?;
    let display_name = match &row.display_name {
        Some(name) => DisplayName::parse(name).map_err(|_| corrupt("display name"))?,
        None => None,
    };
    let role = Role::from_stored(&row.role).ok_or_else(|| corrupt("role"))?;
    Ok(User {
        id: UserId::from_uuid(row.id),
        email,
        display_name,
        role,
        password_hash: PasswordHash::new(row.password_hash),
        email_verified_at: row.email_verified_at,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}
