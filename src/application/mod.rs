//! Use cases. A service method is the unit a resolver calls; services hold the policy and
//! depend only on the domain and on the ports below, never on a framework. `wiring` builds
//! them all, for the composition root and for the tests alike.

pub mod account;
pub mod audit;
pub mod auth;
pub mod caller;
pub mod claims;
pub mod error;
pub mod links;
pub mod notices;
pub mod passkey_ports;
pub mod passkeys;
pub mod passwords;
pub mod ports;
pub mod second_factor;
pub mod sessions;
pub mod social;
pub mod social_ports;
pub mod throttle;
pub mod users;
pub mod wiring;

#[cfg(test)]
pub mod testing;

pub use account::{AccountDeps, AccountService};
pub use audit::{AuditPage, AuditRetention, AuditService, AuditTrail};
pub use auth::{AuthDeps, AuthService};
pub use caller::{Caller, ClientInfo, Principal};
pub use claims::{ClaimsPolicy, ClaimsPreset, DatabaseRoles, HookFailure, HookStats, TokenClaims};
pub use error::{AuthFailure, ServiceError};
pub use links::AccountLinks;
pub use notices::{Notice, SecurityNotices};
pub use passkeys::{PasskeyChallenge, PasskeyDeps, PasskeyPolicy, PasskeyService};
pub use passwords::Confirmation;
pub use second_factor::{Enrollment, MfaDeps, MfaPolicy, MfaService};
pub use sessions::{
    LiveToken, Reauthenticated, SessionDeps, SessionPage, SessionPolicy, SessionService, SignedIn,
};
pub use social::{SocialDeps, SocialPolicy, SocialService};
pub use throttle::{Lockout, Throttle, ThrottlePolicy};
pub use users::{AdminMade, UserDeps, UserPage, UserService};
pub use wiring::{Policies, Ports, Services, Stores};
