//! Use cases. A service method is the unit a resolver calls; services hold the policy and
//! depend only on the domain and on the ports below, never on a framework.

pub mod auth;
pub mod error;
pub mod ports;
pub mod users;

#[cfg(test)]
mod fakes;

pub use auth::{AuthService, ClientInfo, Principal, SessionPolicy, SignedIn};
pub use error::{AuthFailure, ServiceError};
pub use users::UserService;
