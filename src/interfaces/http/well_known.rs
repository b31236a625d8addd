//! What other services need to verify access tokens themselves: the public keys as a JWK set
//! (`/.well-known/jwks.json`, RFC 7517) and a discovery document that points to it
//! (`/.well-known/openid-configuration`), for verifiers that start from the issuer.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::AppState;

/// Where verifiers find the keys.
#[derive(Debug, Clone)]
pub struct Discovery {
    /// The `iss` claim of every token.
    pub issuer: String,
    /// The absolute URL of `/.well-known/jwks.json`.
    pub jwks_uri: String,
}

/// Verifiers cache the set this long. A rotation publishes the new key as it starts signing,
/// and verifiers fetch the set again when they meet a `kid` they do not know (jose's
/// `createRemoteJWKSet` does), so a short time only bounds how long a retired key lingers.
const KEYS_MAX_AGE: &str = "public, max-age=300";

/// `GET /.well-known/jwks.json`: the public keys whose tokens verify, the current one first;
/// an empty set under HS256, whose secret is never published.
pub async fn jwks(State(state): State<AppState>) -> Response {
    let keys: Vec<Value> = state
        .keys
        .published_keys()
        .into_iter()
        .map(|key| {
            let mut jwk = json!({
                "kty": key.kty,
                "crv": key.crv,
                "x": key.x,
                "kid": key.kid,
                "alg": key.alg,
                "use": "sig",
            });
            if let Some(y) = key.y {
                jwk["y"] = y.into();
            }
            jwk
        })
        .collect();
    document(json!({ "keys": keys }), "application/jwk-set+json")
}

/// `GET /.well-known/openid-configuration`: the issuer and where its keys are.
pub async fn openid_configuration(State(state): State<AppState>) -> Response {
    document(
        json!({
            "issuer": state.discovery.issuer,
            "jwks_uri": state.discovery.jwks_uri,
        }),
        "application/json",
    )
}

fn document(body: Value, content_type: &'static str) -> Response {
    let mut response = body.to_string().into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(KEYS_MAX_AGE),
    );
    response
}
