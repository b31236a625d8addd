//! The links emails carry: where they lead, and how long they work.

use std::time::Duration;

use clap::Args;

use super::chrono_duration;
use crate::application::AccountLinks;

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Email links")]
pub struct LinkConfig {
    /// The frontend's base URL; emailed links are `{PUBLIC_URL}/reset-password?token=…` and
    /// `{PUBLIC_URL}/verify-email?token=…`.
    #[arg(
        long,
        env = "PUBLIC_URL",
        default_value = "http://localhost:3000",
        global = true
    )]
    pub public_url: String,

    /// How long a password-reset link works.
    #[arg(long, env = "PASSWORD_RESET_TTL", default_value = "30m", value_parser = humantime::parse_duration, global = true)]
    pub password_reset_ttl: Duration,

    /// How long an email-verification link (and an email change's confirmation link) works.
    #[arg(long, env = "EMAIL_VERIFICATION_TTL", default_value = "24h", value_parser = humantime::parse_duration, global = true)]
    pub email_verification_ttl: Duration,

    /// How long a recovery link (an email change's cancel link, a security notice's "this
    /// wasn't me") gives the account back to the address it was sent to.
    #[arg(long, env = "EMAIL_CHANGE_REVERT_WINDOW", default_value = "72h", value_parser = humantime::parse_duration, global = true)]
    pub email_change_revert_window: Duration,
}

impl LinkConfig {
    /// The links the account service sends; refuses a lifetime too large to add to a date.
    pub fn policy(&self) -> anyhow::Result<AccountLinks> {
        Ok(AccountLinks {
            public_url: self.public_url.clone(),
            password_reset_ttl: chrono_duration(self.password_reset_ttl, "PASSWORD_RESET_TTL")?,
            email_verification_ttl: chrono_duration(
                self.email_verification_ttl,
                "EMAIL_VERIFICATION_TTL",
            )?,
            email_change_revert_window: chrono_duration(
                self.email_change_revert_window,
                "EMAIL_CHANGE_REVERT_WINDOW",
            )?,
        })
    }

    /// What production refuses: links no user could follow safely.
    pub(super) fn production_findings(&self) -> Vec<String> {
        public_url(&self.public_url).into_iter().collect()
    }
}

fn public_url(url: &str) -> Option<String> {
    let Some(rest) = url.strip_prefix("https://") else {
        return Some(format!(
            "PUBLIC_URL is `{url}`: links in emails would travel in clear; use the frontend's \
             https:// address"
        ));
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    }
    .to_ascii_lowercase();
    let local = host.is_empty()
        || host == "localhost"
        || host.ends_with(".localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback() || ip.is_unspecified());
    local.then(|| {
        format!(
            "PUBLIC_URL is `{url}`, which no user can reach: links in emails would lead \
             nowhere; use the frontend's public https:// address"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_urls_must_be_https_and_public() {
        for bad in [
            "http://app.example.com",
            "https://localhost:3000",
            "https://127.0.0.1/",
            "https://[::1]:8443",
            "https://app.localhost",
            "https://",
        ] {
            assert!(public_url(bad).is_some(), "{bad}");
        }
        assert!(public_url("https://app.example.com/auth").is_none());
        assert!(public_url("https://app.example.com:8443").is_none());
    }
}
