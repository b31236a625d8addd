//! Adapters that implement the ports: storage, password hashing, tokens.

pub mod audit;
pub mod deferred;
pub mod mail;
pub mod persistence;
pub mod rate_limit;
pub mod scheduling;
pub mod security;
