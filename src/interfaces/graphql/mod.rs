//! The GraphQL API: thin resolvers that read the caller from the context, call one service
//! method, and map its error once (`error.rs`).

mod account;
mod audit;
mod auth;
mod context;
pub mod error;
mod pagination;
mod sessions;
mod types;
mod users;

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

fn builder() -> SchemaBuilder<Query, Mutation, EmptySubscription> {
    Schema::build(Query::default(), Mutation::default(), EmptySubscription)
        .register_output_type::<types::Node>()
        // GraphiQL's own introspection query is 13 levels deep.
        .limit_depth(16)
        // A page of 100 items with a rich selection costs ~2,000; nested pages multiply.
        .limit_complexity(20_000)
        .extension(RequestErrors)
}

/// The schema wired to the services.
pub fn schema(services: &Services) -> AppSchema {
    builder()
        .data(services.auth.clone())
        .data(services.sessions.clone())
        .data(services.account.clone())
        .data(services.users.clone())
        .data(services.audit.clone())
        .finish()
}

/// The SDL clients generate code from; `schema.graphql` at the repository root holds it.
pub fn sdl() -> String {
    builder().finish().sdl()
}
