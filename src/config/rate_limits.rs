//! The abuse limits: rate limits per address, account and session, where their counters live,
//! and the sign-in lockout.

use std::time::Duration;

use clap::{Args, ValueEnum};
use secrecy::SecretString;

use super::secret;
use crate::application::ports::Quota;
use crate::application::{Lockout, ThrottlePolicy};

/// Where rate-limit counters live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RateLimitStore {
    /// In this process: exact for one instance.
    Memory,
    /// In Redis: shared by every instance.
    Redis,
}

/// A rate limit as configured: `count/period` (`30/1m`, `3/1h`) or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaSetting(pub Option<Quota>);

impl std::str::FromStr for QuotaSetting {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.trim().eq_ignore_ascii_case("off") {
            return Ok(Self(None));
        }
        let (count, period) = s
            .split_once('/')
            .ok_or_else(|| format!("`{s}` is not `count/period` (e.g. 30/1m) or `off`"))?;
        let burst: u32 = count
            .trim()
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("`{count}` is not a positive count"))?;
        let period = humantime::parse_duration(period.trim())
            .map_err(|e| format!("`{period}` is not a duration: {e}"))?;
        if period.is_zero() {
            return Err("the period must be longer than zero".into());
        }
        Ok(Self(Some(Quota { burst, period })))
    }
}

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Rate limits and lockout")]
pub struct RateLimitConfig {
    /// Rate limits and the sign-in lockout: on, or `false` to turn them all off (benchmarks).
    #[arg(long, env = "RATE_LIMITS", default_value_t = true, value_parser = clap::builder::BoolishValueParser::new(), action = clap::ArgAction::Set, global = true)]
    pub rate_limits: bool,

    /// Where rate-limit counters live: `memory` (one instance) or `redis` (shared; needs
    /// REDIS_URL).
    #[arg(
        long,
        env = "RATE_LIMIT_STORE",
        value_enum,
        default_value = "memory",
        global = true
    )]
    pub rate_limit_store: RateLimitStore,

    /// Redis for shared rate limits, e.g. `redis://127.0.0.1:6379`.
    #[arg(
        long,
        env = "REDIS_URL",
        hide_env_values = true,
        value_parser = secret,
        global = true
    )]
    pub redis_url: Option<SecretString>,

    /// Prefix of this deployment's Redis keys.
    #[arg(
        long,
        env = "REDIS_KEY_PREFIX",
        default_value = "authgraph:",
        global = true
    )]
    pub redis_key_prefix: String,

    /// Keys of each class (client addresses; accounts and sessions) the in-memory rate-limit
    /// store has room for. No key is forgotten while it restricts anyone: when a class is full
    /// of such keys, requests needing a new key of that class are refused (RATE_LIMITED).
    #[arg(
        long,
        env = "RATE_LIMIT_MEMORY_KEYS",
        default_value_t = 50_000,
        global = true
    )]
    pub rate_limit_memory_keys: usize,

    /// IPv6 clients are limited by this prefix of their address (IPv4 ones by address).
    #[arg(long, env = "RATE_LIMIT_IPV6_PREFIX", default_value_t = 64, value_parser = clap::value_parser!(u8).range(1..=128), global = true)]
    pub rate_limit_ipv6_prefix: u8,

    /// Sign-ins per client address: `count/period` (e.g. `30/1m`) or `off`.
    #[arg(long, env = "RATE_LIMIT_LOGIN", default_value = "30/1m", global = true)]
    pub rate_limit_login: QuotaSetting,

    /// Sign-ins per account (right or wrong).
    #[arg(
        long,
        env = "RATE_LIMIT_LOGIN_ACCOUNT",
        default_value = "10/15m",
        global = true
    )]
    pub rate_limit_login_account: QuotaSetting,

    /// Registrations per client address.
    #[arg(
        long,
        env = "RATE_LIMIT_REGISTER",
        default_value = "10/1h",
        global = true
    )]
    pub rate_limit_register: QuotaSetting,

    /// Token refreshes per client address.
    #[arg(
        long,
        env = "RATE_LIMIT_REFRESH",
        default_value = "120/1m",
        global = true
    )]
    pub rate_limit_refresh: QuotaSetting,

    /// Password-reset requests and resets per client address.
    #[arg(
        long,
        env = "RATE_LIMIT_PASSWORD_RESET",
        default_value = "10/1h",
        global = true
    )]
    pub rate_limit_password_reset: QuotaSetting,

    /// Password-reset requests per account.
    #[arg(
        long,
        env = "RATE_LIMIT_PASSWORD_RESET_ACCOUNT",
        default_value = "3/1h",
        global = true
    )]
    pub rate_limit_password_reset_account: QuotaSetting,

    /// Password confirmations (changing the password or the email, deleting the account) per
    /// session.
    #[arg(
        long,
        env = "RATE_LIMIT_PASSWORD_CONFIRM",
        default_value = "5/15m",
        global = true
    )]
    pub rate_limit_password_confirm: QuotaSetting,

    /// Password confirmations per account, over all its sessions.
    #[arg(
        long,
        env = "RATE_LIMIT_PASSWORD_CONFIRM_ACCOUNT",
        default_value = "10/1h",
        global = true
    )]
    pub rate_limit_password_confirm_account: QuotaSetting,

    /// Emails sent on a client's request (verification links, email changes) per client
    /// address.
    #[arg(long, env = "RATE_LIMIT_EMAIL", default_value = "10/1h", global = true)]
    pub rate_limit_email: QuotaSetting,

    /// Emails sent on a client's request per recipient address.
    #[arg(
        long,
        env = "RATE_LIMIT_EMAIL_RECIPIENT",
        default_value = "3/1h",
        global = true
    )]
    pub rate_limit_email_recipient: QuotaSetting,

    /// Second-factor codes tried per client address.
    #[arg(long, env = "RATE_LIMIT_CODE", default_value = "30/15m", global = true)]
    pub rate_limit_code: QuotaSetting,

    /// Second-factor codes tried per account (wrong ones also count toward the account's
    /// code lockout, apart from its password lockout).
    #[arg(
        long,
        env = "RATE_LIMIT_CODE_ACCOUNT",
        default_value = "10/15m",
        global = true
    )]
    pub rate_limit_code_account: QuotaSetting,

    /// Social sign-in flows started (startSocialSignIn, linkSocialIdentity) per client
    /// address; each one is kept until the browser comes back or it expires.
    #[arg(
        long,
        env = "RATE_LIMIT_SOCIAL",
        default_value = "20/10m",
        global = true
    )]
    pub rate_limit_social: QuotaSetting,

    /// Password hashes one account may have queued or running at once (with RATE_LIMITS on).
    #[arg(
        long,
        env = "PASSWORD_HASHES_PER_ACCOUNT",
        default_value_t = 2,
        global = true
    )]
    pub password_hashes_per_account: usize,

    /// Failed sign-ins to one account (within LOGIN_LOCKOUT_WINDOW) before it is locked; 0
    /// turns the lockout off.
    #[arg(long, env = "LOGIN_LOCKOUT_AFTER", default_value_t = 5, global = true)]
    pub login_lockout_after: u32,

    /// How long failed sign-ins are remembered.
    #[arg(long, env = "LOGIN_LOCKOUT_WINDOW", default_value = "15m", value_parser = humantime::parse_duration, global = true)]
    pub login_lockout_window: Duration,

    /// The first lock; each further failure doubles it.
    #[arg(long, env = "LOGIN_LOCKOUT_BASE", default_value = "1m", value_parser = humantime::parse_duration, global = true)]
    pub login_lockout_base: Duration,

    /// The longest lock.
    #[arg(long, env = "LOGIN_LOCKOUT_MAX", default_value = "1h", value_parser = humantime::parse_duration, global = true)]
    pub login_lockout_max: Duration,
}

impl RateLimitConfig {
    /// The abuse limits; all off when `RATE_LIMITS=false`.
    pub fn throttle(&self) -> ThrottlePolicy {
        if !self.rate_limits {
            return ThrottlePolicy::default();
        }
        ThrottlePolicy {
            login_per_ip: self.rate_limit_login.0,
            login_per_account: self.rate_limit_login_account.0,
            register_per_ip: self.rate_limit_register.0,
            refresh_per_ip: self.rate_limit_refresh.0,
            password_reset_per_ip: self.rate_limit_password_reset.0,
            password_reset_per_account: self.rate_limit_password_reset_account.0,
            confirm_per_session: self.rate_limit_password_confirm.0,
            confirm_per_account: self.rate_limit_password_confirm_account.0,
            email_per_ip: self.rate_limit_email.0,
            email_per_recipient: self.rate_limit_email_recipient.0,
            code_per_ip: self.rate_limit_code.0,
            code_per_account: self.rate_limit_code_account.0,
            social_per_ip: self.rate_limit_social.0,
            hashes_per_account: Some(self.password_hashes_per_account.max(1)),
            ipv6_prefix: self.rate_limit_ipv6_prefix,
            lockout: (self.login_lockout_after > 0).then_some(Lockout {
                after: self.login_lockout_after,
                window: self.login_lockout_window,
                base: self.login_lockout_base,
                max: self.login_lockout_max,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotas_parse_from_count_and_period() {
        let quota = "30/1m".parse::<QuotaSetting>().unwrap().0.unwrap();
        assert_eq!((quota.burst, quota.period), (30, Duration::from_secs(60)));
        assert_eq!("off".parse::<QuotaSetting>().unwrap(), QuotaSetting(None));
        for bad in ["30", "0/1m", "x/1m", "5/0s", "5/forever"] {
            assert!(bad.parse::<QuotaSetting>().is_err(), "{bad}");
        }
    }
}
