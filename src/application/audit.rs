//! Recording security events, and reading them back.

use std::collections::HashMap;
use std::sync::Arc;

use uuid::Uuid;

use crate::domain::{
    AuditEvent, AuditFilter, AuditKind, AuditQueries, AuditStore, EXACT_TOTAL_UP_TO, Page,
    PageRequest, UserId,
};

use super::caller::{ClientInfo, Principal};
use super::error::ServiceError;
use super::ports::{AuditLog, Clock};

/// What every service uses to add to the audit trail.
#[derive(Clone)]
pub struct AuditTrail {
    log: Arc<dyn AuditLog>,
    clock: Arc<dyn Clock>,
}

/// One event to record, before it gets its id and time.
pub struct Record<'a> {
    pub kind: AuditKind,
    pub actor: Option<UserId>,
    pub subject: Option<UserId>,
    pub client: Option<&'a ClientInfo>,
    pub detail: Option<String>,
}

impl<'a> Record<'a> {
    /// Something a user did to their own account.
    pub fn own(kind: AuditKind, user: UserId, client: &'a ClientInfo) -> Self {
        Self {
            kind,
            actor: Some(user),
            subject: Some(user),
            client: Some(client),
            detail: None,
        }
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }
}

impl AuditTrail {
    pub fn new(log: Arc<dyn AuditLog>, clock: Arc<dyn Clock>) -> Self {
        Self { log, clock }
    }

    pub fn record(&self, record: Record<'_>) {
        self.log.record(AuditEvent {
            id: Uuid::now_v7(),
            kind: record.kind,
            occurred_at: self.clock.now(),
            actor: record.actor,
            subject: record.subject,
            ip: record.client.and_then(|c| c.ip).map(|ip| ip.to_string()),
            user_agent: record.client.and_then(ClientInfo::user_agent),
            detail: record.detail,
        });
    }
}

/// A page of audit events.
#[derive(Debug, Clone)]
pub struct AuditPage {
    pub page: Page<AuditEvent>,
    /// How many events pass the filter (at most [`EXACT_TOTAL_UP_TO`] + 1), when asked for.
    pub total: Option<u64>,
}

/// How long the audit trail keeps what.
#[derive(Debug, Clone, Copy)]
pub struct AuditRetention {
    /// Events older than this are deleted.
    pub events: chrono::Duration,
    /// The IP address and user agent of events older than this are forgotten (personal
    /// data kept no longer than a security review needs it).
    pub clients: chrono::Duration,
}

/// Reading the audit trail (administrators read all of it, users their own), and keeping it
/// within its retention.
pub struct AuditService {
    store: Arc<dyn AuditStore>,
    queries: Arc<dyn AuditQueries>,
    clock: Arc<dyn Clock>,
    retention: AuditRetention,
}

impl AuditService {
    pub fn new(
        store: Arc<dyn AuditStore>,
        queries: Arc<dyn AuditQueries>,
        clock: Arc<dyn Clock>,
        retention: AuditRetention,
    ) -> Self {
        Self {
            store,
            queries,
            clock,
            retention,
        }
    }

    /// Deletes events past their retention and forgets old events' client details; returns
    /// how many of each.
    pub async fn apply_retention(&self) -> Result<(u64, u64), ServiceError> {
        let now = self.clock.now();
        Ok(self
            .store
            .apply_retention(now - self.retention.events, now - self.retention.clients)
            .await?)
    }

    /// Events that pass `filter`, newest first, and how many they are when `count` asks. A
    /// user who is not an administrator sees only events about or by themselves.
    pub async fn list(
        &self,
        caller: &Principal,
        mut filter: AuditFilter,
        page: &PageRequest<Uuid>,
        count: bool,
    ) -> Result<AuditPage, ServiceError> {
        if !caller.is_admin() {
            match filter.user {
                Some(user) if user != caller.user_id => {
                    return Err(ServiceError::Forbidden(
                        "Only administrators may read other users' audit events.",
                    ));
                }
                _ => filter.user = Some(caller.user_id),
            }
        }
        let total = async {
            match count {
                true => Some(self.queries.count(&filter, EXACT_TOTAL_UP_TO).await).transpose(),
                false => Ok(None),
            }
        };
        let (page, total) = tokio::try_join!(self.queries.list(&filter, page), total)?;
        Ok(AuditPage {
            page: page.map(|event| as_seen_by(caller, event)),
            total,
        })
    }

    /// The first page of events of each of `users`, in one batch (for lists of users that
    /// show each one's latest events).
    pub async fn first_pages(
        &self,
        caller: &Principal,
        users: &[UserId],
        kind: Option<AuditKind>,
        first: usize,
    ) -> Result<HashMap<UserId, AuditPage>, ServiceError> {
        if !caller.is_admin() && users.iter().any(|user| *user != caller.user_id) {
            return Err(ServiceError::Forbidden(
                "Only administrators may read other users' audit events.",
            ));
        }
        let request = PageRequest::<Uuid>::Forward { after: None, first };
        let mut found = self
            .queries
            .latest_for_users(users, kind, first + 1)
            .await?;
        Ok(users
            .iter()
            .map(|user| {
                let (events, total) = found.remove(user).unwrap_or_default();
                let events = events.into_iter().map(|e| as_seen_by(caller, e)).collect();
                let page = AuditPage {
                    page: Page::from_probe(&request, events),
                    total: Some(total),
                };
                (*user, page)
            })
            .collect())
    }
}

/// An event as `caller` may see it. A user who is not an administrator sees that someone else
/// acted on their account (the kind says it was an administrator), not who or from where.
fn as_seen_by(caller: &Principal, event: AuditEvent) -> AuditEvent {
    if caller.is_admin() || event.actor.is_none_or(|actor| actor == caller.user_id) {
        return event;
    }
    AuditEvent {
        actor: None,
        ip: None,
        user_agent: None,
        ..event
    }
}
