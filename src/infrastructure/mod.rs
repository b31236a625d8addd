//! Adapters that implement the ports: storage, password hashing, tokens.

pub mod audit;
pub mod claims_hook;
#[cfg(any(test, feature = "test-hooks"))]
pub mod clock;
pub mod deferred;
pub mod mail;
pub mod oidc;
pub mod persistence;
pub mod rate_limit;
pub mod scheduling;
pub mod security;
