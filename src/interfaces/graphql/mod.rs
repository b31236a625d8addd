//! The GraphQL API: thin resolvers that read the caller from the context, call one service
//! method, and map its error once (`error.rs`).

mod account;
mod audit;
mod auth;
mod context;
pub mod error;
mod limits;
mod pagination;
mod sessions;
mod types;
mod users;

use std::num::NonZeroUsize;

use async_graphql::extensions::apollo_persisted_queries::{
    ApolloPersistedQueries, LruCacheStorage,
};
use async_graphql::{EmptySubscription, MergedObject, Schema, SchemaBuilder};

use crate::application::Services;

pub use context::RequestContext;
pub use error::{ExecutionMarker, RequestErrors};

// Each feature module contributes its fields to the two roots.

/// Read operations.
#[derive(MergedObject, Default)]
pub struct Query(users::UserQuery, sessions::SessionQuery, audit::AuditQuery);

/// Operations that change state.
#[derive(MergedObject, Default)]
pub struct Mutation(
    auth::AuthMutation,
    sessions::SessionMutation,
    account::AccountMutation,
    users::UserMutation,
);

pub type AppSchema = Schema<Query, Mutation, EmptySubscription>;

/// What one request may ask for.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Deepest selection nesting (GraphiQL's own introspection query is 13 levels deep).
    pub max_depth: usize,
    /// Highest cost: each field costs 1, lists multiply by their page size.
    pub max_complexity: usize,
    pub max_aliases: usize,
    pub max_root_fields: usize,
    pub introspection: bool,
    /// Queries remembered for automatic persisted queries; 0 turns them off.
    pub apq_cache_size: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_depth: 16,
            // A page of 100 items with a rich selection costs ~2,000; nested pages multiply.
            max_complexity: 20_000,
            max_aliases: 30,
            max_root_fields: 10,
            introspection: true,
            apq_cache_size: 1024,
        }
    }
}

fn builder(limits: Limits) -> SchemaBuilder<Query, Mutation, EmptySubscription> {
    let builder = Schema::build(Query::default(), Mutation::default(), EmptySubscription)
        .register_output_type::<types::Node>()
        .limit_depth(limits.max_depth)
        // The parser's own guard against stack exhaustion: far above `max_depth`, so a query
        // merely too deep gets the clear validation error, and only absurd nesting stops here.
        .limit_recursive_depth(limits.max_depth.saturating_mul(4).max(64))
        .limit_complexity(limits.max_complexity)
        .extension(RequestErrors::new(limits));
    match NonZeroUsize::new(limits.apq_cache_size) {
        Some(size) => builder.extension(ApolloPersistedQueries::new(LruCacheStorage::new(
            size.get(),
        ))),
        None => builder,
    }
}

/// The schema wired to the services.
pub fn schema(services: &Services, limits: Limits) -> AppSchema {
    builder(limits)
        .data(services.auth.clone())
        .data(services.sessions.clone())
        .data(services.account.clone())
        .data(services.users.clone())
        .data(services.audit.clone())
        .finish()
}

/// A name for the operation a request runs, fit for a metric label: its root field (`login`,
/// `me`, …) when it selects one, `multiple` for several, `invalid` when the document does not
/// parse or name an operation. Unlike the client's `operationName`, it cannot grow without
/// bound.
pub fn operation_label(request: &mut async_graphql::Request) -> String {
    let name = request.operation_name.clone();
    let Ok(document) = request.parsed_query() else {
        return "invalid".into();
    };
    limits::root_field_names(document, name.as_deref()).map_or_else(
        || "invalid".into(),
        |roots| match roots.as_slice() {
            [single] => single.clone(),
            [] => "invalid".into(),
            _ => "multiple".into(),
        },
    )
}

/// The SDL clients generate code from; `schema.graphql` at the repository root holds it.
pub fn sdl() -> String {
    builder(Limits::default()).finish().sdl()
}
