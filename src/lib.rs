//! authgraph: a GraphQL account and authentication service.
//!
//! Layers, dependencies pointing inward: [`domain`] ← [`application`] ← [`infrastructure`] and
//! [`interfaces`]; [`app`] wires them together.

pub mod app;
pub mod application;
pub mod config;
pub mod domain;
pub mod infrastructure;
pub mod interfaces;
pub mod telemetry;
