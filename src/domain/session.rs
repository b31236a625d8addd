//! A signed-in device: the server-side record behind a refresh token and the access tokens
//! issued from it. Revoking it ends them all at once.

use std::fmt;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::UserId;

/// A session's identifier, carried inside access tokens as `sid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionId(Uuid);

impl SessionId {
    /// A fresh, time-ordered identifier.
    pub fn generate() -> Self {
        Self(Uuid::now_v7())
    }

    /// Wraps an identifier read from storage or a token.
    pub fn from_uuid(id: Uuid) -> Self {
        Self(id)
    }

    /// The underlying UUID.
    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A session as stored: who, from where, and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id: SessionId,
    pub user_id: UserId,
    pub created_at: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
    /// The earlier of the idle deadline and the absolute one; moved forward on each refresh.
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
}

impl Session {
    /// Whether tokens of this session may still be used at `now`.
    pub fn is_active_at(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && now < self.expires_at
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;

    fn session(expires_in: Duration, revoked: bool) -> Session {
        let now = Utc::now();
        Session {
            id: SessionId::generate(),
            user_id: UserId::generate(),
            created_at: now,
            last_used_at: now,
            expires_at: now + expires_in,
            revoked_at: revoked.then_some(now),
            user_agent: None,
            ip: None,
        }
    }

    #[test]
    fn a_session_is_active_until_it_expires_or_is_revoked() {
        let now = Utc::now();
        assert!(session(Duration::minutes(5), false).is_active_at(now));
        assert!(!session(Duration::minutes(-1), false).is_active_at(now));
        assert!(!session(Duration::minutes(5), true).is_active_at(now));
    }
}
