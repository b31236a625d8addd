//! The GraphQL API: thin resolvers that read the caller from the context, call one service
//! method, and map its error once (`error.rs`).

mod account;
mod admission;
mod audit;
mod auth;
mod browser_session;
mod context;
pub mod error;
mod pagination;
mod second_factor;
mod sessions;
mod types;
mod users;

use async_graphql::{EmptySubscription, MergedObject, Schema, SchemaBuilder};

use crate::application::Services;

pub use admission::{Admission, Admitted, PersistedLimits, SizeLimits};
pub use browser_session::{CookieChange, CookieChanges, CookieSession, Transport};
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
    second_factor::SecondFactorMutation,
);

pub type AppSchema = Schema<Query, Mutation, EmptySubscription>;

/// What one request may ask for.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Checked on the text, before parsing.
    pub size: SizeLimits,
    /// Deepest selection nesting (GraphiQL's own introspection query is 13 levels deep).
    pub max_depth: usize,
    /// Highest cost: each field costs 1, lists multiply by their page size. It also bounds
    /// the fields a document expands to once its fragments are inlined.
    pub max_complexity: usize,
    pub max_aliases: usize,
    pub max_root_fields: usize,
    /// Most directives on one field, fragment spread or inline fragment.
    pub max_directives: usize,
    pub introspection: bool,
    /// Automatic persisted queries: what the store of documents may hold.
    pub persisted: PersistedLimits,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            // GraphiQL's introspection query is ~400 tokens and 13 levels deep; Apollo Router
            // also refuses past 15,000 tokens by default.
            size: SizeLimits {
                max_tokens: 15_000,
                max_nesting: 128,
            },
            max_depth: 16,
            // A page of 100 items with a rich selection costs ~2,000; nested pages multiply.
            max_complexity: 20_000,
            max_aliases: 30,
            max_root_fields: 10,
            max_directives: 10,
            introspection: true,
            persisted: PersistedLimits {
                entries: 1024,
                bytes: 2 * 1024 * 1024,
            },
        }
    }
}

fn builder(limits: Limits) -> SchemaBuilder<Query, Mutation, EmptySubscription> {
    let builder = Schema::build(Query::default(), Mutation::default(), EmptySubscription);
    // "Did you mean …?" lists the schema's names to whoever misspells one: with introspection
    // off, the schema is not to be read from the server, by that road either.
    let builder = if limits.introspection {
        builder
    } else {
        builder.disable_suggestions()
    };
    builder
        .register_output_type::<types::Node>()
        .limit_depth(limits.max_depth)
        // async-graphql's recursion check on the parsed document (fragment spreads included):
        // far above `max_depth`, so a query merely too deep gets the clear validation error.
        .limit_recursive_depth(limits.max_depth.saturating_mul(4).max(64))
        .limit_complexity(limits.max_complexity)
        .extension(RequestErrors)
}

/// The schema wired to the services. Every document it executes must first pass
/// [`Admission`].
pub fn schema(services: &Services, limits: Limits) -> AppSchema {
    builder(limits)
        .data(services.auth.clone())
        .data(services.sessions.clone())
        .data(services.account.clone())
        .data(services.users.clone())
        .data(services.audit.clone())
        .data(services.mfa.clone())
        .finish()
}

/// The SDL clients generate code from; `schema.graphql` at the repository root holds it.
pub fn sdl() -> String {
    builder(Limits::default()).finish().sdl()
}
