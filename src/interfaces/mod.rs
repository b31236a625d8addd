//! Delivery: the GraphQL schema and the HTTP server that carries it.

pub mod graphql;
pub mod http;
