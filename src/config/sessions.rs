//! How long sessions last, and what they must have proved.

use std::time::Duration;

use clap::Args;

use super::chrono_duration;
use crate::application::SessionPolicy;

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Sessions")]
pub struct SessionConfig {
    /// A session unused for this long ends (its refresh token stops working).
    #[arg(long, env = "REFRESH_TOKEN_TTL", default_value = "30days", value_parser = humantime::parse_duration, global = true)]
    pub refresh_token_ttl: Duration,

    /// No session outlives this, however often it is refreshed.
    #[arg(long, env = "SESSION_MAX_AGE", default_value = "90days", value_parser = humantime::parse_duration, global = true)]
    pub session_max_age: Duration,

    /// How long after a refresh token is exchanged it may be exchanged again (two tabs
    /// refreshing at once) before a reuse counts as theft and ends the session.
    #[arg(long, env = "REFRESH_TOKEN_REUSE_GRACE", default_value = "10s", value_parser = humantime::parse_duration, global = true)]
    pub refresh_token_reuse_grace: Duration,

    /// How recently a session must have proved its user (signed in, or `reauthenticate`)
    /// for a sensitive change: a second factor, the password, the email, deleting the account.
    #[arg(long, env = "REAUTHENTICATION_WINDOW", default_value = "10m", value_parser = humantime::parse_duration, global = true)]
    pub reauthentication_window: Duration,

    /// Whether an account must confirm its email address before it can sign in.
    #[arg(long, env = "REQUIRE_VERIFIED_EMAIL", default_value_t = false, value_parser = clap::builder::BoolishValueParser::new(), action = clap::ArgAction::Set, global = true)]
    pub require_verified_email: bool,

    /// How often ended sessions, spent email links and audit events past their retention are
    /// deleted.
    #[arg(long, env = "SESSION_CLEANUP_INTERVAL", default_value = "1h", value_parser = humantime::parse_duration, global = true)]
    pub session_cleanup_interval: Duration,
}

impl SessionConfig {
    /// The session service's policy; refuses a duration too large to add to a date.
    pub fn policy(&self) -> anyhow::Result<SessionPolicy> {
        Ok(SessionPolicy {
            idle_timeout: chrono_duration(self.refresh_token_ttl, "REFRESH_TOKEN_TTL")?,
            max_age: chrono_duration(self.session_max_age, "SESSION_MAX_AGE")?,
            reuse_grace: chrono_duration(
                self.refresh_token_reuse_grace,
                "REFRESH_TOKEN_REUSE_GRACE",
            )?,
            require_verified_email: self.require_verified_email,
            reauthentication_window: chrono_duration(
                self.reauthentication_window,
                "REAUTHENTICATION_WINDOW",
            )?,
        })
    }
}
