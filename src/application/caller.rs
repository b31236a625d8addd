//! Who is calling and from where: what every service is handed with a request, so services
//! share these types without importing each other for them.

use std::net::IpAddr;

use crate::domain::{Authentication, Role, SessionId, User, UserId};

use super::error::ServiceError;

/// Where a request came from, recorded on the session it opens.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    pub user_agent: Option<String>,
    pub ip: Option<IpAddr>,
}

impl ClientInfo {
    /// User agents are attacker-controlled; keep what is useful to recognise a device.
    const MAX_USER_AGENT_CHARS: usize = 512;

    /// The user agent, cut to a length worth storing.
    pub fn user_agent(&self) -> Option<String> {
        self.user_agent
            .as_deref()
            .map(|ua| ua.chars().take(Self::MAX_USER_AGENT_CHARS).collect())
    }
}

/// The authenticated caller of a request, with the role their account has right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Principal {
    pub user_id: UserId,
    pub session_id: SessionId,
    pub role: Role,
    /// When and how the caller's session last proved who they are.
    pub authenticated: Authentication,
}

impl Principal {
    /// Whether the caller may administer other accounts.
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// Refuses a caller who is not an administrator.
    pub fn require_admin(&self) -> Result<(), ServiceError> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(ServiceError::Forbidden("Only administrators may do this."))
        }
    }
}

/// The caller and their account as it is now (read with the session, in one query).
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Principal,
    pub user: User,
}
