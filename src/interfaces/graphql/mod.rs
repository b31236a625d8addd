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
mod passkeys;
mod second_factor;
mod sessions;
mod social;
mod transport;
mod types;
mod users;

use async_graphql::{EmptySubscription, MergedObject, Schema, SchemaBuilder};

use crate::application::Services;

pub use admission::{Admission, Admitted, Limits, PersistedLimits, SizeLimits};
pub use context::RequestContext;
pub use error::{ExecutionMarker, RequestErrors};
pub use transport::{CookieChange, CookieChanges, CookieSession, SocialBinding, Transport};

// Each feature module contributes its fields to the two roots.

/// Read operations.
#[derive(MergedObject, Default)]
pub struct Query(
    users::UserQuery,
    sessions::SessionQuery,
    audit::AuditQuery,
    social::SocialQuery,
);

/// Operations that change state.
#[derive(MergedObject, Default)]
pub struct Mutation(
    auth::AuthMutation,
    sessions::SessionMutation,
    account::AccountMutation,
    users::UserMutation,
    second_factor::SecondFactorMutation,
    social::SocialMutation,
    passkeys::PasskeyMutation,
);

pub type AppSchema = Schema<Query, Mutation, EmptySubscription>;

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
        .data(services.social.clone())
        .data(services.passkeys.clone())
        .finish()
}

/// The SDL clients generate code from; `schema.graphql` at the repository root holds it.
pub fn sdl() -> String {
    builder(Limits::default()).finish().sdl()
}
