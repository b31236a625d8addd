//! The links emails carry: where they point and how long they work.

use chrono::Duration;

use crate::domain::OpaqueToken;

/// Where the links in emails point and how long they work.
#[derive(Debug, Clone)]
pub struct AccountLinks {
    /// The frontend's base URL; links are `{public_url}/reset-password?token=…` and
    /// `{public_url}/verify-email?token=…`.
    pub public_url: String,
    pub password_reset_ttl: Duration,
    pub email_verification_ttl: Duration,
    /// How long a "this wasn't me" link works: the one an email change sends to the address
    /// it leaves, and the one in every security notice.
    pub email_change_revert_window: Duration,
}

impl AccountLinks {
    /// The frontend's page at `path`, with `token` in its query.
    pub(super) fn link(&self, path: &str, token: &OpaqueToken) -> String {
        format!(
            "{}/{path}?token={}",
            self.public_url.trim_end_matches('/'),
            token.expose()
        )
    }
}
