use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use entity::audit_event;
use sea_orm::sea_query::{Asterisk, Expr, Order, Query, SelectStatement, UnionType};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, EntityTrait,
    ExprTrait, FromQueryResult, QueryFilter, QueryOrder, QuerySelect, QueryTrait, Select,
};
use uuid::Uuid;

use crate::domain::{
    AuditEvent, AuditFilter, AuditKind, AuditQueries, AuditStore, Page, PageRequest,
    RepositoryError, UserId,
};

use super::transactions::Transactions;
use super::{counting, repository_error};

/// The audit trail in `audit_events`.
pub struct SeaOrmAuditRepository {
    db: DatabaseConnection,
    /// Every write goes through it (retries on contention).
    writes: Transactions,
}

impl SeaOrmAuditRepository {
    pub fn new(writes: Transactions) -> Self {
        Self {
            db: writes.db().clone(),
            writes,
        }
    }
}

#[async_trait]
impl AuditStore for SeaOrmAuditRepository {
    async fn insert(&self, events: &[AuditEvent]) -> Result<(), RepositoryError> {
        if events.is_empty() {
            return Ok(());
        }
        let rows = events.iter().map(|event| audit_event::ActiveModel {
            id: Set(event.id),
            kind: Set(event.kind.as_str().to_owned()),
            occurred_at: Set(event.occurred_at),
            actor_id: Set(event.actor.map(|id| id.as_uuid())),
            subject_id: Set(event.subject.map(|id| id.as_uuid())),
            ip: Set(event.ip.clone()),
            user_agent: Set(event.user_agent.clone()),
            detail: Set(event.detail.clone()),
        });
        let insert = audit_event::Entity::insert_many(rows).build(self.db.get_database_backend());
        self.writes.execute(insert).await?;
        Ok(())
    }

    async fn apply_retention(
        &self,
        delete_before: DateTime<Utc>,
        forget_client_before: DateTime<Utc>,
    ) -> Result<(u64, u64), RepositoryError> {
        let backend = self.db.get_database_backend();
        let delete = audit_event::Entity::delete_many()
            .filter(audit_event::Column::OccurredAt.lt(delete_before))
            .build(backend);
        let forget = audit_event::Entity::update_many()
            .col_expr(audit_event::Column::Ip, Expr::value(Option::<String>::None))
            .col_expr(
                audit_event::Column::UserAgent,
                Expr::value(Option::<String>::None),
            )
            .filter(audit_event::Column::OccurredAt.lt(forget_client_before))
            .filter(
                Condition::any()
                    .add(audit_event::Column::Ip.is_not_null())
                    .add(audit_event::Column::UserAgent.is_not_null()),
            )
            .build(backend);
        let deleted = self.writes.execute(delete).await?.rows_affected();
        let forgotten = self.writes.execute(forget).await?.rows_affected();
        Ok((deleted, forgotten))
    }
}

#[async_trait]
impl AuditQueries for SeaOrmAuditRepository {
    async fn list(
        &self,
        filter: &AuditFilter,
        page: &PageRequest<Uuid>,
    ) -> Result<Page<AuditEvent>, RepositoryError> {
        // Newest first; UUIDv7 ids sort by time and are unique, a stable keyset.
        let query = match page {
            PageRequest::Forward { after, first } => filtered(filter)
                .apply_if(*after, |q, after| {
                    q.filter(audit_event::Column::Id.lt(after))
                })
                .order_by_desc(audit_event::Column::Id)
                .limit(*first as u64 + 1),
            PageRequest::Backward { before, last } => filtered(filter)
                .apply_if(*before, |q, before| {
                    q.filter(audit_event::Column::Id.gt(before))
                })
                .order_by_asc(audit_event::Column::Id)
                .limit(*last as u64 + 1),
        };
        let rows = query.all(&self.db).await.map_err(repository_error)?;
        let events = rows.into_iter().map(to_domain).collect::<Result<_, _>>()?;
        Ok(Page::from_probe(page, events))
    }

    async fn count(&self, filter: &AuditFilter, exact_up_to: u64) -> Result<u64, RepositoryError> {
        counting::bounded(&self.db, filtered(filter), exact_up_to).await
    }

    async fn latest_for_users(
        &self,
        users: &[UserId],
        kind: Option<AuditKind>,
        limit: usize,
    ) -> Result<HashMap<UserId, (Vec<AuditEvent>, u64)>, RepositoryError> {
        let mut found: HashMap<UserId, (Vec<AuditEvent>, u64)> = HashMap::new();
        if users.is_empty() {
            return Ok(found);
        }
        // A window function keeps the newest `limit` per owner: one query for any number of
        // users (SQLite 3.25+, PostgreSQL, MySQL 8, MariaDB 10.2+ all have them).
        let mut ranked = Query::select();
        ranked
            .column(Asterisk)
            .expr_as(
                Expr::cust("ROW_NUMBER() OVER (PARTITION BY owner ORDER BY id DESC)"),
                "position",
            )
            .from_subquery(owned_events(users, kind), "owned");
        let mut newest = Query::select();
        newest
            .column(Asterisk)
            .from_subquery(ranked, "ranked")
            .and_where(Expr::col("position").lte(limit as i64))
            .order_by("id", Order::Desc);
        let mut totals = Query::select();
        totals
            .column("owner")
            .expr_as(Expr::cust("COUNT(*)"), "total")
            .from_subquery(owned_events(users, kind), "owned")
            .group_by_col("owner");

        let (rows, counts) =
            tokio::try_join!(self.db.query_all(&newest), self.db.query_all(&totals))
                .map_err(repository_error)?;
        for row in counts {
            let owner: Uuid = row.try_get("", "owner").map_err(repository_error)?;
            let total: i64 = row.try_get("", "total").map_err(repository_error)?;
            found.entry(UserId::from_uuid(owner)).or_default().1 =
                u64::try_from(total).unwrap_or(0);
        }
        for row in rows {
            let owner: Uuid = row.try_get("", "owner").map_err(repository_error)?;
            let event =
                audit_event::Model::from_query_result(&row, "").map_err(repository_error)?;
            found
                .entry(UserId::from_uuid(owner))
                .or_default()
                .0
                .push(to_domain(event)?);
        }
        Ok(found)
    }
}

/// Events by or about any of `users`, each tagged with its `owner`: an event by one user
/// about another appears once for each, and once for a user who did it to themselves.
fn owned_events(users: &[UserId], kind: Option<AuditKind>) -> SelectStatement {
    let by = |column: audit_event::Column| {
        let mut query = Query::select();
        query
            .expr_as(Expr::col(column), "owner")
            .columns([
                audit_event::Column::Id,
                audit_event::Column::Kind,
                audit_event::Column::OccurredAt,
                audit_event::Column::ActorId,
                audit_event::Column::SubjectId,
                audit_event::Column::Ip,
                audit_event::Column::UserAgent,
                audit_event::Column::Detail,
            ])
            .from(audit_event::Entity)
            .and_where(Expr::col(column).is_in(users.iter().map(UserId::as_uuid)));
        if let Some(kind) = kind {
            query.and_where(Expr::col(audit_event::Column::Kind).eq(kind.as_str()));
        }
        query
    };
    let mut owned = by(audit_event::Column::ActorId);
    owned.union(UnionType::Distinct, by(audit_event::Column::SubjectId));
    owned
}

fn filtered(filter: &AuditFilter) -> Select<audit_event::Entity> {
    audit_event::Entity::find()
        .apply_if(filter.user, |q, user| {
            q.filter(
                Condition::any()
                    .add(audit_event::Column::ActorId.eq(user.as_uuid()))
                    .add(audit_event::Column::SubjectId.eq(user.as_uuid())),
            )
        })
        .apply_if(filter.kind, |q, kind| {
            q.filter(audit_event::Column::Kind.eq(kind.as_str()))
        })
}

fn to_domain(row: audit_event::Model) -> Result<AuditEvent, RepositoryError> {
    let kind = AuditKind::from_stored(&row.kind).ok_or_else(|| {
        RepositoryError::Internal(format!("audit event {} has an unknown kind", row.id).into())
    })?;
    Ok(AuditEvent {
        id: row.id,
        kind,
        occurred_at: row.occurred_at,
        actor: row.actor_id.map(UserId::from_uuid),
        subject: row.subject_id.map(UserId::from_uuid),
        ip: row.ip,
        user_agent: row.user_agent,
        detail: row.detail,
    })
}
