//! What GraphQL engines and other resource servers ask about a token on each request, so that
//! a revoked session, a suspension or a role change takes effect at once:
//!
//! - `POST /oauth/introspect` (RFC 7662), for the resource servers of INTROSPECTION_CLIENTS,
//!   authenticated with HTTP Basic;
//! - `GET /hasura/auth`, Hasura's webhook mode: Hasura forwards the client's headers and runs
//!   the request with the session variables of a 200 answer, and refuses it on a 401.

use std::net::SocketAddr;

use axum::Form;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::AppState;
use crate::application::{ClientInfo, LiveToken, ServiceError};
use crate::domain::Role;

/// The resource servers that may introspect tokens: an id and a secret each.
#[derive(Default)]
pub struct IntrospectionClients {
    clients: Vec<(String, [u8; 32])>,
}

impl IntrospectionClients {
    /// From `id:secret` entries; the secrets are kept only as SHA-256 digests, compared in
    /// constant time.
    pub fn parse(entries: &[SecretString]) -> Result<Self, String> {
        let mut clients = Vec::new();
        for entry in entries {
            let (id, secret) = entry.expose_secret().split_once(':').ok_or(
                "INTROSPECTION_CLIENTS entries must be `id:secret` (comma-separated)".to_owned(),
            )?;
            if id.is_empty() || secret.is_empty() {
                return Err("INTROSPECTION_CLIENTS: an entry has an empty id or secret".into());
            }
            if clients.iter().any(|(known, _)| known == id) {
                return Err(format!("INTROSPECTION_CLIENTS names `{id}` twice"));
            }
            clients.push((id.to_owned(), Sha256::digest(secret.as_bytes()).into()));
        }
        Ok(Self { clients })
    }

    /// Whether `Authorization: Basic …` names a configured client with its secret. Every
    /// client's digest is compared, so the time taken tells nothing of which ids exist.
    fn authenticate(&self, headers: &HeaderMap) -> bool {
        let Some((id, secret)) = basic_credentials(headers) else {
            return false;
        };
        let presented: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
        let mut found = subtle::Choice::from(0);
        for (known_id, digest) in &self.clients {
            let same_id = known_id.as_bytes().ct_eq(id.as_bytes());
            found |= same_id & digest.ct_eq(&presented);
        }
        found.into()
    }
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((id.to_owned(), secret.to_owned()))
}

#[derive(Deserialize)]
pub struct IntrospectionRequest {
    token: String,
}

/// `POST /oauth/introspect`: `{"active": false}` for any token that grants nothing now,
/// else `active: true` with the account's current claims.
pub async fn introspect(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    form: Result<Form<IntrospectionRequest>, axum::extract::rejection::FormRejection>,
) -> Response {
    let client = ClientInfo {
        user_agent: None,
        ip: Some(state.settings.trusted_proxies.client_ip(peer, &headers)),
    };
    if let Err(ServiceError::RateLimited { retry_after_secs }) =
        state.throttle.introspection_allowed(&client).await
    {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, HeaderValue::from(retry_after_secs))],
            axum::Json(json!({"error": "invalid_client"})),
        )
            .into_response();
    }
    if !state.introspection.authenticate(&headers) {
        state.throttle.introspection_failed(&client).await;
        return (
            StatusCode::UNAUTHORIZED,
            [(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"introspection\""),
            )],
            axum::Json(json!({"error": "invalid_client"})),
        )
            .into_response();
    }
    let Ok(Form(request)) = form else {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": "invalid_request"})),
        )
            .into_response();
    };
    let live = match state.sessions.live(&request.token).await {
        Ok(live) => live,
        Err(error) => return unavailable(&error),
    };
    let body = match live {
        None => json!({"active": false}),
        Some(live) => {
            let mut body = json!({
                "active": true,
                "token_type": "Bearer",
                "sub": live.user.id.to_string(),
                "sid": live.session_id.to_string(),
                "username": live.user.email.as_str(),
                "role": live.user.role.as_str(),
                "auth_time": live.authenticated.at.timestamp(),
                "amr": live.authenticated.methods.amr(),
            });
            if let Value::Object(fields) = &mut body {
                for (name, value) in live.claims {
                    fields.entry(name).or_insert(value);
                }
            }
            body
        }
    };
    no_store(axum::Json(body).into_response())
}

/// `GET /hasura/auth`: 200 with the session variables of a live token (the role Hasura asks
/// for in `X-Hasura-Role` if the account has it, else its own), 401 for anything else,
/// no header included.
pub async fn hasura_auth(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let unauthorized = || StatusCode::UNAUTHORIZED.into_response();
    let Some(token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return unauthorized();
    };
    let live = match state.sessions.live(token.trim()).await {
        Ok(Some(live)) => live,
        Ok(None) => return unauthorized(),
        Err(error) => return unavailable(&error),
    };
    let requested = headers
        .get("x-hasura-role")
        .and_then(|v| v.to_str().ok())
        .map(str::to_ascii_lowercase);
    let role = match requested.as_deref() {
        None => live.user.role.as_str(),
        Some(name) => match allowed_roles(&live).iter().find(|r| **r == name) {
            Some(role) => role,
            None => return unauthorized(),
        },
    };
    no_store(
        axum::Json(json!({
            "X-Hasura-User-Id": live.user.id.to_string(),
            "X-Hasura-Role": role,
        }))
        .into_response(),
    )
}

fn allowed_roles(live: &LiveToken) -> &'static [&'static str] {
    match live.user.role {
        Role::User => &["user"],
        Role::Admin => &["admin", "user"],
    }
}

fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The database did not answer: the resource server should refuse the request and retry,
/// never take the token for live (nor for dead: a 401 would sign Hasura's user out).
fn unavailable(error: &crate::application::ServiceError) -> Response {
    tracing::warn!(%error, "token check failed");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::RETRY_AFTER, HeaderValue::from_static("2"))],
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(id: &str, secret: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let value = format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")));
        headers.insert(header::AUTHORIZATION, value.parse().unwrap());
        headers
    }

    #[test]
    fn only_a_configured_client_with_its_secret_is_let_in() {
        let clients = IntrospectionClients::parse(&[
            "hasura:a-long-secret".into(),
            "postgraphile:another-secret".into(),
        ])
        .unwrap();
        assert!(clients.authenticate(&basic("hasura", "a-long-secret")));
        assert!(clients.authenticate(&basic("postgraphile", "another-secret")));
        assert!(!clients.authenticate(&basic("hasura", "another-secret")));
        assert!(!clients.authenticate(&basic("hasura", "a-long-secre")));
        assert!(!clients.authenticate(&basic("nobody", "a-long-secret")));
        assert!(!clients.authenticate(&HeaderMap::new()));
        assert!(!IntrospectionClients::default().authenticate(&basic("", "")));
        for bad in ["no-colon", ":secret", "id:"] {
            assert!(IntrospectionClients::parse(&[bad.into()]).is_err(), "{bad}");
        }
    }
}
