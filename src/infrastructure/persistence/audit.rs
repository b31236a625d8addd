use async_trait::async_trait;
use entity::audit_event;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, DatabaseConnection, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, QueryTrait, Select,
};
use uuid::Uuid;

use crate::domain::{
    AuditEvent, AuditFilter, AuditKind, AuditRepository, Page, PageRequest, RepositoryError, UserId,
};

use super::repository_error;

/// The audit trail in `audit_events`.
pub struct SeaOrmAuditRepository {
    db: DatabaseConnection,
}

impl SeaOrmAuditRepository {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }
}

#[async_trait]
impl AuditRepository for SeaOrmAuditRepository {
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
        audit_event::Entity::insert_many(rows)
            .exec_without_returning(&self.db)
            .await
            .map_err(repository_error)?;
        Ok(())
    }

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

    async fn count(&self, filter: &AuditFilter) -> Result<u64, RepositoryError> {
        filtered(filter)
            .count(&self.db)
            .await
            .map_err(repository_error)
    }
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
        RepositoryError::Unavailable(format!("audit event {} has an unknown kind", row.id).into())
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
