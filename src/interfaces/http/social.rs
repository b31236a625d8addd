//! `GET /auth/oidc/callback`, where providers send the browser back, and the browser's
//! binding cookie (`authgraph-oidc`, `__Host-authgraph-oidc` when secure): HttpOnly,
//! SameSite=Lax (it must come along on the provider's top-level redirect back), ten minutes.

use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cookie::{Cookie, SameSite};
use serde::Deserialize;

use crate::application::social::CallbackOutcome;
use crate::application::social_ports::AuthorizationResponse;
use crate::application::{ClientInfo, ServiceError};
use crate::domain::OpaqueToken;
use crate::interfaces::graphql::{CookieChange, CookieChanges, SocialBinding};

use super::AppState;

/// How long the binding cookie lives: as long as a flow.
const BINDING_MAX_AGE: i64 = 600;

fn binding_name(secure: bool) -> &'static str {
    if secure {
        "__Host-authgraph-oidc"
    } else {
        "authgraph-oidc"
    }
}

/// The binding the request brought.
pub(super) fn presented_binding(headers: &HeaderMap, secure: bool) -> SocialBinding {
    let name = binding_name(secure);
    let value = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name && !c.value().is_empty())
        .map(|c| c.value().to_owned());
    SocialBinding::new(value)
}

/// The `Set-Cookie` of a binding the response sets.
pub(super) fn binding_cookie(binding: &SocialBinding, secure: bool) -> Option<HeaderValue> {
    let value = binding.to_set()?;
    let cookie = Cookie::build((binding_name(secure), value))
        .http_only(true)
        .secure(secure)
        .same_site(SameSite::Lax)
        .path("/")
        .max_age(cookie::time::Duration::seconds(BINDING_MAX_AGE))
        .build();
    HeaderValue::from_str(&cookie.to_string()).ok()
}

/// What the provider put in the redirect back.
#[derive(Deserialize)]
pub struct CallbackParams {
    state: Option<String>,
    code: Option<String>,
    iss: Option<String>,
    error: Option<String>,
}

/// `GET /auth/oidc/callback`.
pub async fn callback(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
    Query(params): Query<CallbackParams>,
) -> Response {
    let secure = state.settings.secure_cookies;
    let binding = presented_binding(&headers, secure);
    let Some(flow_state) = params.state.filter(|s| !s.is_empty() && s.len() <= 256) else {
        return no_flow();
    };
    let response = match (params.error, params.code) {
        (Some(error), _) => Err(error),
        (None, Some(code)) => Ok(AuthorizationResponse {
            code,
            iss: params.iss,
        }),
        (None, None) => Err("invalid_request".to_owned()),
    };
    let client = ClientInfo {
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        ip: Some(state.settings.trusted_proxies.client_ip(peer, &headers)),
    };
    let previous = state
        .settings
        .session_cookies
        .as_ref()
        .and_then(|cookies| cookies.refresh_token(&headers))
        .map(OpaqueToken::from_client);
    let outcome = state
        .social
        .callback(
            &flow_state,
            binding.presented(),
            response,
            previous,
            &client,
        )
        .await;
    match outcome {
        Ok(CallbackOutcome::NoFlow) => no_flow(),
        Ok(CallbackOutcome::Redirect { to, signed_in }) => {
            let Ok(location) = HeaderValue::from_str(&to) else {
                return no_flow();
            };
            let mut response =
                (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response();
            if let (Some(signed_in), Some(cookies)) = (signed_in, &state.settings.session_cookies) {
                let changes = CookieChanges {
                    access: Some(CookieChange::Set {
                        value: signed_in.access_token.token.clone(),
                        max_age: signed_in.access_token.expires_in,
                    }),
                    refresh: Some(CookieChange::Set {
                        value: signed_in.refresh_token.expose().to_owned(),
                        max_age: signed_in.session_expires_in,
                    }),
                };
                for value in cookies.set_cookie_headers(&changes) {
                    response.headers_mut().append(header::SET_COOKIE, value);
                }
            }
            response
        }
        Err(ServiceError::Unavailable { .. }) => page(
            StatusCode::SERVICE_UNAVAILABLE,
            "The service is briefly unavailable; go back and try signing in again.",
        ),
        Err(error) => {
            tracing::error!(%error, "social sign-in callback failed");
            page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong on our side; go back and try signing in again.",
            )
        }
    }
}

/// A plain 400 page: the flow is unknown, used, expired or another browser's. Never a
/// redirect: where to would come from the request.
fn no_flow() -> Response {
    page(
        StatusCode::BAD_REQUEST,
        "This sign-in link is invalid, was already used, has expired, or was started in \
         another browser. Go back to the application and sign in again.",
    )
}

fn page(status: StatusCode, text: &'static str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        text,
    )
        .into_response()
}
