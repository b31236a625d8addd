//! SeaORM entities, one module per table. They never leave `infrastructure::persistence`,
//! which converts them to and from domain types.

pub mod account_token;
pub mod audit_event;
pub mod passkey;
pub mod passkey_ceremony;
pub mod recovery_code;
pub mod refresh_token;
pub mod session;
pub mod social_code;
pub mod social_flow;
pub mod social_identity;
pub mod totp_factor;
pub mod user;
