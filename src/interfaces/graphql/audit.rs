//! The audit trail: `auditEvents` (administrators) and the type of its entries.

use async_graphql::{Context, Enum, ID, InputObject, Object, Result};

use crate::application::{AuditPage, AuditService};
use crate::domain::{self, AuditFilter, UserId};

use super::context::{caller, service, users};
use super::error::{graphql_error, shared_graphql_error};
use super::pagination::{self, Connection, IdCursor, page_request};
use super::types::{DateTime, User};

#[derive(Default)]
pub struct AuditQuery;

// `remote` derives the conversions to and from the domain's kind, so a kind missing here (or
// there) fails to compile. (A doc comment here would change the schema's description.)
/// A security event.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "domain::AuditKind")]
pub enum AuditEventKind {
    /// An account was created.
    Registered,
    /// A sign-in succeeded.
    LoginSucceeded,
    /// A sign-in failed (wrong password, unknown email, suspended or unconfirmed account).
    LoginFailed,
    /// One session, or all of them, signed out.
    LoggedOut,
    /// The user ended one of their sessions.
    SessionRevoked,
    /// A refresh token was used twice; its session was ended as possibly stolen.
    RefreshTokenReused,
    /// The user changed their password.
    PasswordChanged,
    /// A password-reset link was sent.
    PasswordResetRequested,
    /// The password was set through a reset link.
    PasswordReset,
    /// The account moved to another email (its link was used).
    EmailChanged,
    /// The email was confirmed.
    EmailVerified,
    /// The display name changed.
    ProfileUpdated,
    /// An administrator (or the operator) changed the role.
    RoleChanged,
    /// An administrator suspended the account.
    Suspended,
    /// An administrator lifted the suspension.
    Unsuspended,
    /// The user deleted their account.
    AccountDeleted,
    /// The user asked to move the account to another email, which must confirm it.
    EmailChangeRequested,
    /// Before this release: the old address's link cancelled an email change, or undid a
    /// completed one; every session ended. Now recorded as `ACCOUNT_SECURED`.
    EmailChangeCancelled,
    /// The user turned a second factor (an authenticator app) on; other sessions ended.
    MfaEnabled,
    /// The user turned the second factor off.
    MfaDisabled,
    /// An administrator removed the user's second factor; every session ended.
    MfaReset,
    /// A wrong second-factor code was entered.
    MfaFailed,
    /// A recovery code was used (the detail says how many are left).
    RecoveryCodeUsed,
    /// The user replaced their recovery codes.
    RecoveryCodesRegenerated,
    /// A "this wasn't me" link (an email change's cancel link, or a security notice's) gave
    /// the account back to its address: sessions ended, later changes undone, a password
    /// reset required.
    AccountSecured,
    /// A security notice was emailed to the account's address (the detail says about what).
    SecurityNoticeSent,
}

pub struct AuditEvent(domain::AuditEvent);

/// An entry of the audit trail. It names accounts by id; `actor` and `subject` resolve the
/// accounts that still exist and that the caller may see.
#[Object]
impl AuditEvent {
    /// Stable identifier (a UUIDv7: ids sort in the order events happened).
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// What happened.
    async fn kind(&self) -> AuditEventKind {
        self.0.kind.into()
    }

    /// When it happened.
    async fn occurred_at(&self) -> DateTime {
        DateTime(self.0.occurred_at)
    }

    /// Id of the account that did it; null for an anonymous caller or the command line, and,
    /// for a user who is not an administrator, for an administrator acting on their account
    /// (the kind tells that one did; who and from where is theirs to know).
    async fn actor_id(&self) -> Option<ID> {
        self.0.actor.map(|id| ID(id.to_string()))
    }

    /// Id of the account it concerns; null when no account matched (a failed sign-in).
    async fn subject_id(&self) -> Option<ID> {
        self.0.subject.map(|id| ID(id.to_string()))
    }

    /// The account that did it, if it still exists and the caller may see it.
    async fn actor(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        load(ctx, self.0.actor).await
    }

    /// The account it concerns, if it still exists and the caller may see it.
    async fn subject(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        load(ctx, self.0.subject).await
    }

    /// The IP address of the request.
    async fn ip(&self) -> Option<&str> {
        self.0.ip.as_deref()
    }

    /// The `User-Agent` of the request.
    async fn user_agent(&self) -> Option<&str> {
        self.0.user_agent.as_deref()
    }

    /// A short detail, e.g. `user -> admin`, a suspension reason, or why a sign-in failed.
    async fn detail(&self) -> Option<&str> {
        self.0.detail.as_deref()
    }
}

async fn load(ctx: &Context<'_>, id: Option<UserId>) -> Result<Option<User>> {
    let Some(id) = id else { return Ok(None) };
    let user = users(ctx)
        .await?
        .load_one(id)
        .await
        .map_err(|e| shared_graphql_error(&e))?;
    Ok(user.map(User))
}

pub type AuditEventConnection = Connection<AuditEvent>;

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
        connection(ctx, filter, after, before, first, last).await
    }
}

/// A page of the audit trail for the caller.
pub async fn connection(
    ctx: &Context<'_>,
    filter: AuditFilter,
    after: Option<String>,
    before: Option<String>,
    first: Option<i32>,
    last: Option<i32>,
) -> Result<AuditEventConnection> {
    let caller = caller(ctx).await?;
    let request =
        page_request::<IdCursor, _>(after, before, first, last, |c| c.0).map_err(graphql_error)?;
    let listed = service::<AuditService>(ctx)?
        .list(&caller, filter, &request)
        .await
        .map_err(graphql_error)?;
    into_connection(ctx, listed).await
}

/// The connection of a page of events, with the accounts they mention loaded in one batch.
pub async fn into_connection(ctx: &Context<'_>, listed: AuditPage) -> Result<AuditEventConnection> {
    // Load every account the page mentions in one batch, if the selection asks for them; the
    // items' `actor` and `subject` then come from the loader's cache.
    let node = ctx.look_ahead().field("edges").field("node");
    if node.field("actor").exists() || node.field("subject").exists() {
        let mut ids: Vec<UserId> = Vec::with_capacity(listed.page.items.len() * 2);
        for event in &listed.page.items {
            ids.extend(event.actor);
            ids.extend(event.subject);
        }
        users(ctx)
            .await?
            .load_many(ids)
            .await
            .map_err(|e| shared_graphql_error(&e))?;
    }
    Ok(pagination::connection(listed.page, listed.total, |event| {
        (IdCursor(event.id), AuditEvent(event))
    }))
}
