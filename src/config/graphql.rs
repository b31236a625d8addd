//! What a GraphQL document may cost, and which tools the endpoint offers.

use clap::Args;

use crate::interfaces::graphql::{Limits, PersistedLimits, SizeLimits};

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "GraphQL")]
pub struct GraphqlConfig {
    /// Serve GraphiQL at GET /graphql. Default: on in development, off in production.
    #[arg(long, env = "GRAPHIQL", value_parser = clap::builder::BoolishValueParser::new(), global = true)]
    pub graphiql: Option<bool>,

    /// Answer introspection queries. Default: on in development, off in production.
    #[arg(long, env = "INTROSPECTION", value_parser = clap::builder::BoolishValueParser::new(), global = true)]
    pub introspection: Option<bool>,

    /// Deepest selection nesting accepted (GraphiQL's own introspection query needs 13).
    #[arg(long, env = "GRAPHQL_MAX_DEPTH", default_value_t = 16, global = true)]
    pub graphql_max_depth: usize,

    /// Highest query cost accepted (each field costs 1, lists multiply by their page size).
    #[arg(
        long,
        env = "GRAPHQL_MAX_COMPLEXITY",
        default_value_t = 20_000,
        global = true
    )]
    pub graphql_max_complexity: usize,

    /// Most lexical tokens (names, numbers, strings, punctuation) in a document; checked
    /// before parsing (GraphiQL's introspection query has about 400).
    #[arg(
        long,
        env = "GRAPHQL_MAX_TOKENS",
        default_value_t = 15_000,
        global = true
    )]
    pub graphql_max_tokens: usize,

    /// Deepest nesting of brackets (`{`, `[`, `(` together) in a document; checked before
    /// parsing.
    #[arg(
        long,
        env = "GRAPHQL_MAX_NESTING",
        default_value_t = 128,
        global = true
    )]
    pub graphql_max_nesting: usize,

    /// Most aliases one document may use.
    #[arg(long, env = "GRAPHQL_MAX_ALIASES", default_value_t = 30, global = true)]
    pub graphql_max_aliases: usize,

    /// Most top-level fields one operation may select.
    #[arg(
        long,
        env = "GRAPHQL_MAX_ROOT_FIELDS",
        default_value_t = 10,
        global = true
    )]
    pub graphql_max_root_fields: usize,

    /// Most directives on one field, fragment spread or inline fragment.
    #[arg(
        long,
        env = "GRAPHQL_MAX_DIRECTIVES",
        default_value_t = 10,
        global = true
    )]
    pub graphql_max_directives: usize,

    /// Most documents remembered for automatic persisted queries (by SHA-256 hash); 0 turns
    /// APQ off. Only documents that passed validation are remembered.
    #[arg(long, env = "APQ_CACHE_SIZE", default_value_t = 1024, global = true)]
    pub apq_cache_size: usize,

    /// Most bytes of document text remembered for automatic persisted queries.
    #[arg(long, env = "APQ_CACHE_BYTES", default_value_t = 2 * 1024 * 1024, global = true)]
    pub apq_cache_bytes: usize,
}

impl GraphqlConfig {
    /// GRAPHIQL, or the default of the mode: on in development, off in production.
    pub fn graphiql(&self, production: bool) -> bool {
        self.graphiql.unwrap_or(!production)
    }

    /// The admission limits; introspection by default on in development, off in production.
    pub fn limits(&self, production: bool) -> Limits {
        Limits {
            size: SizeLimits {
                max_tokens: self.graphql_max_tokens,
                max_nesting: self.graphql_max_nesting,
            },
            max_depth: self.graphql_max_depth,
            max_complexity: self.graphql_max_complexity,
            max_aliases: self.graphql_max_aliases,
            max_root_fields: self.graphql_max_root_fields,
            max_directives: self.graphql_max_directives,
            introspection: self.introspection.unwrap_or(!production),
            persisted: PersistedLimits {
                entries: self.apq_cache_size,
                bytes: self.apq_cache_bytes,
            },
        }
    }
}
