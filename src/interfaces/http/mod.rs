//! The HTTP surface: `/graphql` (API and GraphiQL), health checks, and the middleware every
//! request passes: an id, a span and a log line (`observe`), security headers, limits and
//! coded refusals (`guard`), panic containment, a timeout, and CORS.

mod browser;
mod client_ip;
mod cors;
mod engines;
mod graphiql;
mod graphql;
mod guard;
mod health;
mod load;
mod metrics;
mod observe;
mod problem;
mod request_json;
mod server;
mod social;
#[cfg(feature = "test-hooks")]
mod test_hooks;
mod well_known;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::routing::{get, post};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;

use super::graphql::{Admission, AppSchema};
use crate::application::ports::{PublishedKeys, StoreHealth};

pub use browser::{CookieSameSite, CookieSettings};
pub use client_ip::{ForwardedHeader, TrustedProxies, parse_network};
pub use cors::CorsPolicy;
pub use engines::IntrospectionClients;
pub use load::{Load, LoadLimits};
pub use metrics::{Metrics, Sources as MetricSources};
pub use server::{ConnectionLimits, serve};
#[cfg(feature = "test-hooks")]
pub use test_hooks::release_held;
pub use tower_http::request_id::RequestId;
pub use well_known::Discovery;

/// Limits and switches of the HTTP layer.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// Largest request body `/graphql` reads; refused with 413 before any parsing.
    pub max_body_bytes: usize,
    /// Largest total size of a request's headers; refused with 431.
    pub max_header_bytes: usize,
    /// A request taking longer is answered 503 and abandoned.
    pub request_timeout: Duration,
    pub cors: CorsPolicy,
    /// Whether `GET /graphql` from a browser serves GraphiQL.
    pub graphiql: bool,
    /// Proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: TrustedProxies,
    /// Whether to send `Strict-Transport-Security` (behind HTTPS only).
    pub hsts: bool,
    /// Browser sessions in cookies; `None` when only bearer tokens are used.
    pub session_cookies: Option<CookieSettings>,
    /// Whether cookies are `Secure` (`__Host-`): in production.
    pub secure_cookies: bool,
}

/// Shared handles for the handlers; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub schema: AppSchema,
    /// Every document passes it before the schema sees it.
    pub admission: Arc<Admission>,
    /// The readiness probe asks it whether the database answers.
    pub store: Arc<dyn StoreHealth>,
    pub settings: Arc<HttpSettings>,
    /// `None` when `/metrics` is turned off.
    pub metrics: Option<Arc<Metrics>>,
    /// Work in progress, to shed load past the limits.
    pub load: Arc<Load>,
    /// The public keys of access tokens, and where verifiers find them.
    pub keys: Arc<dyn PublishedKeys>,
    pub discovery: Arc<Discovery>,
    /// Social sign-in, for the providers' callback.
    pub social: Arc<crate::application::SocialService>,
    /// Answers what a token grants now, for introspection and Hasura's webhook.
    pub sessions: Arc<crate::application::SessionService>,
    /// The resource servers that may introspect tokens.
    pub introspection: Arc<IntrospectionClients>,
    /// Locks out an address that keeps guessing introspection credentials.
    pub throttle: Arc<crate::application::Throttle>,
}

/// `/metrics`, for a listener of its own (`METRICS_ADDR`): what it tells (request rates,
/// pool and queue sizes) is for the operator, not for the public API port.
pub fn metrics_router(metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/metrics", get(metrics::metrics))
        .with_state(metrics)
}

/// Every route of the API with its middleware.
pub fn router(state: AppState) -> Router {
    let work = Router::new()
        .route(
            "/graphql",
            get(graphql::get_graphql).post(graphql::post_graphql),
        )
        .route("/graphiql/{version}/{file}", get(graphiql::asset))
        .route(crate::config::CALLBACK_PATH, get(social::callback))
        .route("/oauth/introspect", post(engines::introspect))
        .route("/hasura/auth", get(engines::hasura_auth));
    #[cfg(feature = "test-hooks")]
    let work = work.merge(test_hooks::routes());
    // The probes answer however busy the server is.
    let routes = work
        .route_layer(axum::middleware::from_fn_with_state(
            state.load.clone(),
            load::shed,
        ))
        .route("/health", get(health::health))
        .route("/ready", get(health::ready))
        // Verifiers elsewhere depend on these: they answer however busy the server is, too.
        .route("/.well-known/jwks.json", get(well_known::jwks))
        .route(
            "/.well-known/openid-configuration",
            get(well_known::openid_configuration),
        );
    let settings = &state.settings;
    // Outermost first. One `layer` call: each wraps every route once more.
    let middleware = ServiceBuilder::new()
        // The id is always ours: a client's `x-request-id` is dropped before one is made.
        .map_request(observe::forget_client_id)
        .layer(SetRequestIdLayer::new(
            observe::REQUEST_ID,
            observe::NewRequestId,
        ))
        .layer(observe::trace())
        .layer(PropagateRequestIdLayer::new(observe::REQUEST_ID))
        // Innermost first on the way out: the headers are written bottom to top.
        .layer(guard::hsts(settings.hsts))
        .layer(guard::default_header(header::CACHE_CONTROL, "no-store"))
        .layer(guard::default_header(
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; frame-ancestors 'none'",
        ))
        .layer(guard::default_header(header::X_FRAME_OPTIONS, "DENY"))
        .layer(guard::default_header(
            header::REFERRER_POLICY,
            "no-referrer",
        ))
        .layer(guard::default_header(
            header::X_CONTENT_TYPE_OPTIONS,
            "nosniff",
        ))
        .layer(axum::middleware::from_fn_with_state(
            settings.clone(),
            guard::guard,
        ))
        .layer(CatchPanicLayer::custom(guard::Panicked))
        // A bare 503, which `guard` answers with the coded body and `Retry-After`.
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            settings.request_timeout,
        ))
        .layer(cors::layer(
            &settings.cors,
            settings.session_cookies.is_some(),
        ));
    routes
        // Unknown paths pass the middleware too, which gives them the coded body (`guard.rs`).
        .fallback(|| async { StatusCode::NOT_FOUND })
        .layer(middleware)
        .with_state(state)
}
