//! The audit trail: `auditEvents` (administrators). Its entries are `types::AuditEvent`, which
//! lives beside `User`: each names the other.

use async_graphql::{Context, ID, InputObject, Object, Result};

use crate::domain::{AuditFilter, UserId};

use super::types::{AuditEventConnection, AuditEventKind, audit_connection};

#[derive(Default)]
pub struct AuditQuery;

/// Which audit events to list.
#[derive(InputObject, Default)]
pub struct AuditEventFilter {
    /// Events by or about this user.
    user_id: Option<ID>,
    /// Events of this kind.
    kind: Option<AuditEventKind>,
}

#[Object]
impl AuditQuery {
    /// The audit trail, newest first. Administrators read every event; anyone else only their
    /// own (`me { auditEvents }` is the same for them).
    #[graphql(complexity = "super::pagination::page_cost(first, last, child_complexity)")]
    async fn audit_events(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Items after this cursor (page forwards, with `first`).")] after: Option<
            String,
        >,
        #[graphql(desc = "Items before this cursor (page backwards, with `last`).")] before: Option<
            String,
        >,
        #[graphql(
            desc = "How many items from the start, or after `after` (0 to 100; 20 by default)."
        )]
        first: Option<i32>,
        #[graphql(desc = "How many items from the end, or before `before` (0 to 100).")]
        last: Option<i32>,
        #[graphql(desc = "Only the events that pass this filter.")] filter: Option<
            AuditEventFilter,
        >,
    ) -> Result<AuditEventConnection> {
        let filter = filter.unwrap_or_default();
        // An id that is no UUID names no user: nothing matches it.
        let user = filter.user_id.map(|id| {
            UserId::from_uuid(
                id.parse::<uuid::Uuid>()
                    .unwrap_or_else(|_| uuid::Uuid::nil()),
            )
        });
        let filter = AuditFilter {
            user,
            kind: filter.kind.map(Into::into),
        };
        audit_connection(ctx, filter, after, before, first, last).await
    }
}
