//! The HTTP surface: `/graphql` (API and GraphiQL), health checks, and the middleware that
//! gives every request an id, a span and a log line.

mod graphiql;
mod graphql;
mod health;
mod observe;

use axum::Router;
use axum::routing::get;
use sea_orm::DatabaseConnection;

use super::graphql::AppSchema;

pub use observe::RequestId;

/// Largest request body `/graphql` reads; a GraphQL document with variables is far smaller.
/// The handler enforces it so that the refusal is a GraphQL error like any other.
const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Shared handles for the handlers; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub schema: AppSchema,
    pub db: DatabaseConnection,
}

/// Every route with its middleware.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route(
            "/graphql",
            get(graphql::get_graphql).post(graphql::post_graphql),
        )
        .route("/graphiql/{version}/{file}", get(graphiql::asset))
        .route("/health", get(health::health))
        .route("/ready", get(health::ready))
        .layer(axum::middleware::from_fn(observe::observe))
        .with_state(state)
}
