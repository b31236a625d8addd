//! Use cases. A service method is the unit a resolver calls; services hold the policy and
//! depend only on the domain and on the ports below, never on a framework.

pub mod account;
pub mod audit;
pub mod auth;
pub mod caller;
pub mod error;
pub mod notices;
pub mod ports;
pub mod second_factor;
pub mod sessions;
pub mod social_ports;
pub mod throttle;
pub mod users;

#[cfg(any(test, feature = "fakes"))]
pub mod fakes;

pub use account::{AccountLinks, AccountService};
pub use audit::{AuditPage, AuditRetention, AuditService, AuditTrail};
pub use auth::AuthService;
pub use caller::{Caller, ClientInfo, Principal};
pub use error::{AuthFailure, ServiceError};
pub use notices::{Notice, SecurityNotices};
pub use second_factor::{Enrollment, MfaPolicy, MfaPorts, MfaService};
pub use sessions::{Reauthenticated, SessionPage, SessionPolicy, SessionService, SignedIn};
pub use throttle::{Lockout, Throttle, ThrottlePolicy};
pub use users::{AdminMade, UserPage, UserService};

/// Every service, as the composition root wires them and the interfaces use them.
#[derive(Clone)]
pub struct Services {
    pub auth: std::sync::Arc<AuthService>,
    pub sessions: std::sync::Arc<SessionService>,
    pub account: std::sync::Arc<AccountService>,
    pub users: std::sync::Arc<UserService>,
    pub mfa: std::sync::Arc<MfaService>,
    pub audit: std::sync::Arc<AuditService>,
}
