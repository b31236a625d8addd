//! What the resolvers say happened to the session, for a session in cookies (`transport.rs`):
//! a new one, a refreshed one, a reauthenticated one, or one that ended.

use async_graphql::Context;

use crate::application::{AuthFailure, Reauthenticated, ServiceError, SessionService, SignedIn};
use crate::domain::OpaqueToken;

use super::context::{client, request, service};
use super::error::graphql_error;
use super::transport::{Transport, refuses_session};
use super::types::AuthPayload;

/// The answer to a sign-in that opened a new session (`register`, `login`, `resetPassword`, …).
/// With cookies, the session the browser held before ends: nothing a client brings to a
/// sign-in survives it, so a session planted in the browser is never taken over (fixation).
pub async fn new_session(
    ctx: &Context<'_>,
    signed_in: SignedIn,
) -> async_graphql::Result<AuthPayload> {
    if let Transport::Cookies(cookies) = &request(ctx)?.transport
        && let Some(previous) = cookies.refresh_token()
    {
        let ended = service::<SessionService>(ctx)?
            .logout(OpaqueToken::from_client(previous.to_owned()), &client(ctx)?)
            .await;
        if let Err(error) = ended {
            // Already ended, or not a token at all: there is nothing left to end.
            tracing::debug!(%error, "the browser's previous session was not ended");
        }
    }
    refreshed(ctx, signed_in)
}

/// The answer to a sign-in that continues a session (`refreshToken`): with cookies, the
/// tokens go into them and the body carries neither.
pub fn refreshed(ctx: &Context<'_>, signed_in: SignedIn) -> async_graphql::Result<AuthPayload> {
    match &request(ctx)?.transport {
        Transport::Bearer => Ok(AuthPayload::with_tokens(signed_in)),
        Transport::Cookies(cookies) => {
            cookies.hold(&signed_in);
            Ok(AuthPayload::in_cookies(
                &signed_in.access_token,
                signed_in.user,
            ))
        }
    }
}

/// The answer to `reauthenticate`: a new access token (with cookies, in the access cookie
/// and not in the body); the refresh token stays as it is.
pub fn reauthenticated(
    ctx: &Context<'_>,
    reauthenticated: Reauthenticated,
) -> async_graphql::Result<AuthPayload> {
    match &request(ctx)?.transport {
        Transport::Bearer => Ok(AuthPayload::reauthenticated(reauthenticated)),
        Transport::Cookies(cookies) => {
            cookies.hold_access(&reauthenticated.access_token);
            Ok(AuthPayload::in_cookies(
                &reauthenticated.access_token,
                reauthenticated.user,
            ))
        }
    }
}

/// The refresh token to use: the one in the input, or else the refresh cookie's.
pub fn presented_refresh_token(
    ctx: &Context<'_>,
    input: Option<String>,
) -> async_graphql::Result<OpaqueToken> {
    let cookie = match &request(ctx)?.transport {
        Transport::Cookies(cookies) => cookies.refresh_token().map(str::to_owned),
        Transport::Bearer => None,
    };
    input
        .or(cookie)
        .map(OpaqueToken::from_client)
        .ok_or_else(|| graphql_error(AuthFailure::MissingRefreshToken.into()))
}

/// The session this browser holds has ended (or was refused): clear its cookies.
pub fn session_ended(ctx: &Context<'_>) -> async_graphql::Result<()> {
    if let Transport::Cookies(cookies) = &request(ctx)?.transport {
        cookies.clear();
    }
    Ok(())
}

/// A refresh failed: when the failure means the session is gone (not a momentary refusal),
/// the browser's cookies are cleared so it stops sending them.
pub fn refresh_failed(ctx: &Context<'_>, error: ServiceError) -> async_graphql::Error {
    if refuses_session(&error)
        && let Err(cleared) = session_ended(ctx)
    {
        return cleared;
    }
    graphql_error(error)
}
