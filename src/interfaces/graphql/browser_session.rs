//! How a session travels: as tokens in the body and the `Authorization` header (native apps,
//! other services), or, for browsers when the deployment turns cookie sessions on, in HttpOnly
//! cookies that page scripts cannot read. The HTTP layer decides which and writes the cookies;
//! resolvers say what happened to the session through the helpers here.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_graphql::Context;

use crate::application::ports::IssuedAccessToken;
use crate::application::{AuthFailure, Reauthenticated, ServiceError, SessionService, SignedIn};

use crate::domain::OpaqueToken;

use super::context::{client, request, service};
use super::error::graphql_error;
use super::types::AuthPayload;

/// How the request's session travels.
pub enum Transport {
    /// Tokens in the body and the `Authorization` header.
    Bearer,
    /// Session cookies: a browser on an allowed origin, or a server forwarding its cookies.
    /// The HTTP layer keeps a handle to write what the resolvers decided.
    Cookies(Arc<CookieSession>),
}

/// The session cookies a request brought, and what the response does with them.
#[derive(Default)]
pub struct CookieSession {
    access_token: Option<String>,
    refresh_token: Option<String>,
    changes: Mutex<CookieChanges>,
}

/// What the response does with each session cookie; `None` leaves it as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CookieChanges {
    pub access: Option<CookieChange>,
    pub refresh: Option<CookieChange>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CookieChange {
    Set { value: String, max_age: Duration },
    Clear,
}

impl CookieSession {
    pub fn new(access_token: Option<String>, refresh_token: Option<String>) -> Self {
        Self {
            access_token,
            refresh_token,
            changes: Mutex::default(),
        }
    }

    /// The tokens of the access and refresh cookies the request brought.
    #[cfg(test)]
    pub fn presented(&self) -> (Option<&str>, Option<&str>) {
        (self.access_token.as_deref(), self.refresh_token.as_deref())
    }

    /// The access token of the access cookie, if the browser sent one.
    pub(super) fn access_token(&self) -> Option<&str> {
        self.access_token.as_deref()
    }

    /// What the resolvers decided, for the HTTP layer to write as `Set-Cookie`.
    pub fn changes(&self) -> CookieChanges {
        self.changes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn change(&self, apply: impl FnOnce(&mut CookieChanges)) {
        apply(
            &mut self
                .changes
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
    }

    /// The access cookie was refused: the browser should stop sending it.
    pub(super) fn refuse_access(&self) {
        self.change(|c| c.access = Some(CookieChange::Clear));
    }

    fn clear(&self) {
        self.change(|c| {
            c.access = Some(CookieChange::Clear);
            c.refresh = Some(CookieChange::Clear);
        });
    }

    fn hold_access(&self, access_token: &IssuedAccessToken) {
        self.change(|c| {
            c.access = Some(CookieChange::Set {
                value: access_token.token.clone(),
                max_age: access_token.expires_in,
            });
        });
    }

    fn hold(&self, signed_in: &SignedIn) {
        self.hold_access(&signed_in.access_token);
        self.change(|c| {
            c.refresh = Some(CookieChange::Set {
                value: signed_in.refresh_token.expose().to_owned(),
                max_age: signed_in.session_expires_in,
            });
        });
    }
}

/// The answer to a sign-in that opened a new session (`register`, `login`, `resetPassword`, …).
/// With cookies, the session the browser held before ends: nothing a client brings to a
/// sign-in survives it, so a session planted in the browser is never taken over (fixation).
pub async fn new_session(
    ctx: &Context<'_>,
    signed_in: SignedIn,
) -> async_graphql::Result<AuthPayload> {
    if let Transport::Cookies(cookies) = &request(ctx)?.transport
        && let Some(previous) = &cookies.refresh_token
    {
        let ended = service::<SessionService>(ctx)?
            .logout(OpaqueToken::from_client(previous.clone()), &client(ctx)?)
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
        Transport::Cookies(cookies) => cookies.refresh_token.clone(),
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

/// Whether `error` refuses the credential itself, rather than the request for the moment
/// (rate limits, an unavailable database).
pub(super) fn refuses_session(error: &ServiceError) -> bool {
    matches!(
        error,
        ServiceError::Unauthenticated(_)
            | ServiceError::AccountSuspended
            | ServiceError::EmailNotVerified
    )
}
