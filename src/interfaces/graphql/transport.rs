//! How a session travels: as tokens in the body and the `Authorization` header (native apps,
//! other services), or, for browsers when the deployment turns cookie sessions on, in HttpOnly
//! cookies that page scripts cannot read. The HTTP layer decides which and writes the cookies
//! it is told to; `browser_session.rs` tells it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::application::ports::IssuedAccessToken;
use crate::application::{ServiceError, SignedIn};

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

    /// The refresh token of the refresh cookie, if the browser sent one.
    pub(super) fn refresh_token(&self) -> Option<&str> {
        self.refresh_token.as_deref()
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

    pub(super) fn clear(&self) {
        self.change(|c| {
            c.access = Some(CookieChange::Clear);
            c.refresh = Some(CookieChange::Clear);
        });
    }

    pub(super) fn hold_access(&self, access_token: &IssuedAccessToken) {
        self.change(|c| {
            c.access = Some(CookieChange::Set {
                value: access_token.token.clone(),
                max_age: access_token.expires_in,
            });
        });
    }

    pub(super) fn hold(&self, signed_in: &SignedIn) {
        self.hold_access(&signed_in.access_token);
        self.change(|c| {
            c.refresh = Some(CookieChange::Set {
                value: signed_in.refresh_token.expose().to_owned(),
                max_age: signed_in.session_expires_in,
            });
        });
    }
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

/// The browser's social sign-in binding (the HttpOnly `authgraph-oidc` cookie): the value it
/// brought, and a new one for the response to set. Present on every request, whatever the
/// session transport: a bearer SPA's browser holds the binding too.
#[derive(Default)]
pub struct SocialBinding {
    presented: Option<String>,
    set: Mutex<Option<String>>,
}

impl SocialBinding {
    pub fn new(presented: Option<String>) -> Self {
        Self {
            presented,
            set: Mutex::default(),
        }
    }

    /// The binding the browser brought.
    pub fn presented(&self) -> Option<&str> {
        self.presented.as_deref()
    }

    /// Sets the cookie to `value` in the response.
    pub fn hold(&self, value: String) {
        *self
            .set
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(value);
    }

    /// What the response sets, if anything.
    pub fn to_set(&self) -> Option<String> {
        self.set
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}
