//! Integration tests over real HTTP against the real application, each with its own fresh
//! database: SQLite by default, PostgreSQL or MySQL/MariaDB when `TEST_DATABASE_URL` points at
//! one. One binary with modules, so it links once.

mod helpers;

mod account;
mod admin;
mod audit;
mod claims;
mod cli;
mod contention;
mod contract;
mod cookies;
mod docs;
mod errors;
mod hardening;
mod hostile;
mod http;
mod imports;
mod instances;
mod jwks;
mod limits;
mod load;
mod login;
mod me;
mod metrics;
mod mfa;
mod oidc;
mod outage;
mod passkeys;
mod recovery;
mod register;
mod schema;
mod sessions;
mod social;
mod startup;
mod upgrade;
