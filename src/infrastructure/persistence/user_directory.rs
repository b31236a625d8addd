//! The administrator's view of the `users` table: every account by filter and order, a
//! keyset page at a time, and the changes of role and suspension that must leave an active
//! administrator.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use entity::user;
use sea_orm::sea_query::{Expr, LikeExpr};
use sea_orm::{
    ColumnTrait, Condition, EntityTrait, ExprTrait, QueryFilter, QueryOrder, QuerySelect, Select,
};

use crate::domain::{
    Direction, GuardedChange, Page, PageRequest, RepositoryError, Role, Suspension, User,
    UserCursor, UserDirectory, UserFilter, UserId, UserOrder, UserOrderField,
};

use super::users::{AdminSensitive, SeaOrmUserRepository, to_domain};
use super::{counting, repository_error};

#[async_trait]
impl UserDirectory for SeaOrmUserRepository {
    async fn list(
        &self,
        filter: &UserFilter,
        order: UserOrder,
        page: &PageRequest<UserCursor>,
    ) -> Result<Page<User>, RepositoryError> {
        // Keyset pagination on (sort key, id): rows inserted meanwhile never shift a page.
        // Paging backwards reads the other way from the cursor, then `Page` restores the order.
        let (cursor, size, reading) = match page {
            PageRequest::Forward { after, first } => (after, *first, order.direction),
            PageRequest::Backward { before, last } => (before, *last, reverse(order.direction)),
        };
        let key = match order.field {
            UserOrderField::CreatedAt => user::Column::CreatedAt,
            UserOrderField::Email => user::Column::Email,
        };
        let mut query = filtered(filter);
        if let Some(cursor) = cursor {
            query = query.filter(beyond(cursor, reading));
        }
        let sea_order = match reading {
            Direction::Ascending => sea_orm::Order::Asc,
            Direction::Descending => sea_orm::Order::Desc,
        };
        let rows = query
            .order_by(key, sea_order.clone())
            .order_by(user::Column::Id, sea_order)
            .limit(size as u64 + 1)
            .all(self.db())
            .await
            .map_err(repository_error)?;
        let users = rows.into_iter().map(to_domain).collect::<Result<_, _>>()?;
        Ok(Page::from_probe(page, users))
    }

    async fn count(&self, filter: &UserFilter, exact_up_to: u64) -> Result<u64, RepositoryError> {
        if *filter == UserFilter::default() {
            counting::estimated(self.db(), filtered(filter), "users", exact_up_to).await
        } else {
            counting::bounded(self.db(), filtered(filter), exact_up_to).await
        }
    }

    async fn set_role(
        &self,
        id: UserId,
        role: Role,
        now: DateTime<Utc>,
    ) -> Result<GuardedChange, RepositoryError> {
        self.guarded(id, AdminSensitive::Role(role), now).await
    }

    async fn set_suspension(
        &self,
        id: UserId,
        suspension: Option<&Suspension>,
        now: DateTime<Utc>,
    ) -> Result<GuardedChange, RepositoryError> {
        self.guarded(id, AdminSensitive::Suspension(suspension.cloned()), now)
            .await
    }
}

fn filtered(filter: &UserFilter) -> Select<user::Entity> {
    let mut query = user::Entity::find();
    if let Some(part) = &filter.email_contains {
        // Emails are stored lower-cased; escape LIKE's wildcards so they match literally.
        let escaped = part
            .to_lowercase()
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        query = query.filter(
            Expr::col(user::Column::Email).like(LikeExpr::new(format!("%{escaped}%")).escape('\\')),
        );
    }
    if let Some(role) = filter.role {
        query = query.filter(user::Column::Role.eq(role.as_str()));
    }
    if let Some(verified) = filter.verified {
        query = query.filter(if verified {
            user::Column::EmailVerifiedAt.is_not_null()
        } else {
            user::Column::EmailVerifiedAt.is_null()
        });
    }
    if let Some(suspended) = filter.suspended {
        query = query.filter(if suspended {
            user::Column::SuspendedAt.is_not_null()
        } else {
            user::Column::SuspendedAt.is_null()
        });
    }
    query
}

/// Rows strictly past `cursor` when reading in `direction`.
fn beyond(cursor: &UserCursor, direction: Direction) -> Condition {
    let id = |c: &UserId| c.as_uuid();
    // `key >= k AND (key > k OR id > i)` rather than `key > k OR (key = k AND id > i)`: the
    // same rows, but the first conjunct is a range every database starts an index scan at
    // (on `(key, id)`), where the disjunction alone makes PostgreSQL and MySQL read the index
    // from its start and filter, a cost growing with the page's depth.
    let (key_from, key_past, id_past) = match (cursor, direction) {
        (UserCursor::CreatedAt(at, uid), Direction::Ascending) => (
            user::Column::CreatedAt.gte(*at),
            user::Column::CreatedAt.gt(*at),
            user::Column::Id.gt(id(uid)),
        ),
        (UserCursor::CreatedAt(at, uid), Direction::Descending) => (
            user::Column::CreatedAt.lte(*at),
            user::Column::CreatedAt.lt(*at),
            user::Column::Id.lt(id(uid)),
        ),
        (UserCursor::Email(email, uid), Direction::Ascending) => (
            user::Column::Email.gte(email.as_str()),
            user::Column::Email.gt(email.as_str()),
            user::Column::Id.gt(id(uid)),
        ),
        (UserCursor::Email(email, uid), Direction::Descending) => (
            user::Column::Email.lte(email.as_str()),
            user::Column::Email.lt(email.as_str()),
            user::Column::Id.lt(id(uid)),
        ),
    };
    Condition::all()
        .add(key_from)
        .add(Condition::any().add(key_past).add(id_past))
}

fn reverse(direction: Direction) -> Direction {
    match direction {
        Direction::Ascending => Direction::Descending,
        Direction::Descending => Direction::Ascending,
    }
}
