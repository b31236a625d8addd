//! Sessions: `refreshToken`, `logout`, `logoutAll`, `revokeSession`, and the `sessions` list.

use async_graphql::{Context, ID, InputObject, Object, Result};

use crate::application::{ServiceError, SessionService};
use crate::domain::SessionId;

use super::browser_session::{self, presented_refresh_token};
use super::context::{caller, client, service};
use super::error::graphql_error;
use super::pagination::{Connection, IdCursor, connection, page_request, total_wanted};
use super::types::{AuthPayload, Session};

#[derive(Default)]
pub struct SessionQuery;

#[derive(Default)]
pub struct SessionMutation;

pub type SessionConnection = Connection<Session>;

/// A refresh token to exchange.
#[derive(InputObject)]
pub struct RefreshTokenInput {
    /// The latest refresh token this session received. Leave it out when the session is in
    /// a cookie.
    refresh_token: Option<String>,
}

/// The session to sign out.
#[derive(InputObject)]
pub struct LogoutInput {
    /// The session's latest refresh token. Leave it out when the session is in a cookie.
    refresh_token: Option<String>,
}

/// A session of the signed-in user to end.
#[derive(InputObject)]
pub struct RevokeSessionInput {
    /// The session's `id`, from `sessions`.
    id: ID,
}

#[Object]
impl SessionQuery {
    /// The signed-in user's active sessions (devices and browsers), newest first. Page with
    /// `first`/`after` or `last`/`before` (at most 100 at a time; 20 by default).
    #[graphql(complexity = "super::pagination::page_cost(first, last, child_complexity)")]
    async fn sessions(
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
    ) -> Result<SessionConnection> {
        let caller = caller(ctx).await?;
        let request =
            page_request::<IdCursor, _>(after, before, first, last, |c| SessionId::from_uuid(c.0))
                .map_err(graphql_error)?;
        let listed = service::<SessionService>(ctx)?
            .list(&caller, &request, total_wanted(ctx))
            .await
            .map_err(graphql_error)?;
        Ok(connection(listed.page, listed.total, |session| {
            let current = session.id == caller.session_id;
            (IdCursor(session.id.as_uuid()), Session { session, current })
        }))
    }
}

#[Object]
impl SessionMutation {
    /// Exchanges a refresh token for a new access token and a new refresh token. Each refresh
    /// token works once: a token used again (after a few seconds' grace for a double submit)
    /// is taken as stolen, ends its session, and fails with `UNAUTHENTICATED`. Call it when
    /// the access token expires (or shortly before `expiresIn` runs out). A browser whose
    /// session is in a cookie calls it with no input.
    async fn refresh_token(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What the operation needs; none when the session is in a cookie.")]
        input: Option<RefreshTokenInput>,
    ) -> Result<AuthPayload> {
        let presented = presented_refresh_token(ctx, input.and_then(|i| i.refresh_token))?;
        let signed_in = service::<SessionService>(ctx)?
            .refresh(presented, &client(ctx)?)
            .await
            .map_err(|error| browser_session::refresh_failed(ctx, error))?;
        browser_session::refreshed(ctx, signed_in)
    }

    /// Signs out the session of a refresh token: its refresh and access tokens stop working
    /// at once. Needs no access token. A browser whose session is in a cookie calls it with no
    /// input, and its cookies are cleared whatever the outcome.
    async fn logout(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What the operation needs; none when the session is in a cookie.")]
        input: Option<LogoutInput>,
    ) -> Result<bool> {
        let presented = presented_refresh_token(ctx, input.and_then(|i| i.refresh_token));
        browser_session::session_ended(ctx)?;
        service::<SessionService>(ctx)?
            .logout(presented?, &client(ctx)?)
            .await
            .map_err(graphql_error)?;
        Ok(true)
    }

    /// Signs out every session of the signed-in user, this one included. Returns how many
    /// sessions ended.
    async fn logout_all(&self, ctx: &Context<'_>) -> Result<i32> {
        let caller = caller(ctx).await?;
        let ended = service::<SessionService>(ctx)?
            .logout_all(&caller, &client(ctx)?)
            .await
            .map_err(graphql_error)?;
        browser_session::session_ended(ctx)?;
        Ok(i32::try_from(ended).unwrap_or(i32::MAX))
    }

    /// Ends one of the signed-in user's sessions, e.g. a lost phone. `NOT_FOUND` when the
    /// user has no active session with that id.
    async fn revoke_session(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What the operation needs.")] input: RevokeSessionInput,
    ) -> Result<bool> {
        let caller = caller(ctx).await?;
        let id = input
            .id
            .parse::<uuid::Uuid>()
            .map(SessionId::from_uuid)
            .map_err(|_| {
                graphql_error(ServiceError::NotFound(
                    "You have no active session with this id.",
                ))
            })?;
        service::<SessionService>(ctx)?
            .revoke(&caller, id, &client(ctx)?)
            .await
            .map_err(graphql_error)?;
        if id == caller.session_id {
            browser_session::session_ended(ctx)?;
        }
        Ok(true)
    }
}
