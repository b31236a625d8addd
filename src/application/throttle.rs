//! Abuse limits: how often a client address, an account or a session may try the operations
//! attackers hammer, a lockout that grows with repeated wrong passwords for one account, and
//! a cap on the password hashes one account may have queued at once. All checked before any
//! password is hashed, so a flood costs almost nothing and no one account can take the
//! hashing queue from everyone else's sign-ins.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::domain::{Email, SessionId};

use super::caller::ClientInfo;
use super::error::ServiceError;
use super::ports::{KeyClass, LimitKey, LimiterError, Quota, RateLimiter};

/// After `after` failed sign-ins to one account within `window`, the account is locked for
/// `base`, doubling with each further failure, up to `max`. A correct password ends it.
#[derive(Debug, Clone, Copy)]
pub struct Lockout {
    pub after: u32,
    pub window: Duration,
    pub base: Duration,
    pub max: Duration,
}

impl Lockout {
    /// How long to lock after `failures` failures in a row.
    pub fn duration(&self, failures: u64) -> Option<Duration> {
        let beyond = failures.checked_sub(u64::from(self.after))?;
        let factor = 2u32.saturating_pow(u32::try_from(beyond).unwrap_or(u32::MAX));
        Some(self.base.saturating_mul(factor).min(self.max))
    }
}

/// The limits; `None` turns one off.
#[derive(Debug, Clone, Copy)]
pub struct ThrottlePolicy {
    pub login_per_ip: Option<Quota>,
    pub login_per_account: Option<Quota>,
    pub register_per_ip: Option<Quota>,
    pub refresh_per_ip: Option<Quota>,
    pub password_reset_per_ip: Option<Quota>,
    pub password_reset_per_account: Option<Quota>,
    /// A signed-in user typing their password again (to change it or the email, or to delete
    /// the account), per session and per account.
    pub confirm_per_session: Option<Quota>,
    pub confirm_per_account: Option<Quota>,
    /// Emails sent on a client's request (verification links, email changes), per address
    /// and per recipient.
    pub email_per_ip: Option<Quota>,
    pub email_per_recipient: Option<Quota>,
    /// Second-factor codes tried (to finish a sign-in, to change the factor), per address
    /// and per account.
    pub code_per_ip: Option<Quota>,
    pub code_per_account: Option<Quota>,
    /// Social sign-in flows started (`startSocialSignIn`, `linkSocialIdentity`), per address:
    /// each one stores a flow until it ends or expires.
    pub social_per_ip: Option<Quota>,
    /// Applies to wrong passwords and, with counts of their own, to wrong second-factor
    /// codes: someone who has the password still cannot guess codes without bound.
    pub lockout: Option<Lockout>,
    /// Password hashes one account may have queued or running at once.
    pub hashes_per_account: Option<usize>,
    /// IPv6 clients are limited by this prefix of their address (one subscriber usually holds
    /// a whole /64); IPv4 clients by their address.
    pub ipv6_prefix: u8,
}

impl Default for ThrottlePolicy {
    /// Every limit off.
    fn default() -> Self {
        Self {
            login_per_ip: None,
            login_per_account: None,
            register_per_ip: None,
            refresh_per_ip: None,
            password_reset_per_ip: None,
            password_reset_per_account: None,
            confirm_per_session: None,
            confirm_per_account: None,
            email_per_ip: None,
            email_per_recipient: None,
            code_per_ip: None,
            code_per_account: None,
            social_per_ip: None,
            lockout: None,
            hashes_per_account: None,
            ipv6_prefix: 64,
        }
    }
}

/// Applies [`ThrottlePolicy`] through a shared store.
pub struct Throttle {
    limiter: Arc<dyn RateLimiter>,
    policy: ThrottlePolicy,
    /// Hashes queued or running, by account key (this instance's own queue).
    hashing: Arc<HashesInFlight>,
    /// Requests refused because the store had no room for a new key, by class.
    refused_for_room: [AtomicU64; 2],
}

/// How many hashes each account has queued or running.
type HashesInFlight = Mutex<HashMap<String, usize>>;

/// An account's place in the hashing queue, given back when dropped.
#[must_use = "the turn ends when it is dropped"]
pub struct HashingTurn {
    held: Option<(Arc<HashesInFlight>, String)>,
}

impl Drop for HashingTurn {
    fn drop(&mut self) {
        let Some((hashing, key)) = self.held.take() else {
            return;
        };
        let mut hashing = hashing.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = hashing.get_mut(&key) {
            *count -= 1;
            if *count == 0 {
                hashing.remove(&key);
            }
        }
    }
}

/// The store keys of the two lockouts.
const PASSWORD_LOCKOUT: &str = "lockout";
const CODE_LOCKOUT: &str = "code-lockout";

/// What is being limited; part of every store key.
#[derive(Clone, Copy)]
enum Action {
    Login,
    Register,
    Refresh,
    PasswordReset,
    Confirm,
    Email,
    Code,
    Social,
    /// Resource servers authenticating to the introspection endpoint.
    Introspection,
}

impl Action {
    fn name(self) -> &'static str {
        match self {
            Action::Login => "login",
            Action::Register => "register",
            Action::Refresh => "refresh",
            Action::PasswordReset => "password-reset",
            Action::Confirm => "confirm",
            Action::Email => "email",
            Action::Code => "code",
            Action::Social => "social",
            Action::Introspection => "introspection",
        }
    }
}

impl Throttle {
    pub fn new(limiter: Arc<dyn RateLimiter>, policy: ThrottlePolicy) -> Self {
        Self {
            limiter,
            policy,
            hashing: Arc::default(),
            refused_for_room: Default::default(),
        }
    }

    /// Requests refused since start because the store had no room for a new key of `class`.
    pub fn refused_for_room(&self, class: KeyClass) -> u64 {
        self.refused_for_room[class_index(class)].load(Ordering::Relaxed)
    }

    /// Before a sign-in: the account's lock, the address's and the account's allowance, and
    /// a turn at hashing.
    pub async fn login(
        &self,
        client: &ClientInfo,
        email: &Email,
    ) -> Result<HashingTurn, ServiceError> {
        self.not_locked(email).await?;
        self.per_ip(Action::Login, client, self.policy.login_per_ip)
            .await?;
        self.per_account(Action::Login, email, self.policy.login_per_account)
            .await?;
        self.hashing_turn(email)
    }

    /// Before starting or finishing a passkey sign-in: the address's sign-in allowance (no
    /// account is named, and starting one stores a ceremony).
    pub async fn passkey_sign_in(&self, client: &ClientInfo) -> Result<(), ServiceError> {
        self.per_ip(Action::Login, client, self.policy.login_per_ip)
            .await
    }

    /// Before checking the password of a signed-in user (who means to change the password or
    /// the email, or delete the account): the account's lock, the session's and the account's
    /// allowance, and a turn at hashing. A wrong password then counts toward the lockout like
    /// a failed sign-in (`password_failed`), a right one clears it (`password_succeeded`).
    pub async fn password_confirmation(
        &self,
        session: SessionId,
        email: &Email,
    ) -> Result<HashingTurn, ServiceError> {
        self.not_locked(email).await?;
        if let Some(quota) = self.policy.confirm_per_session {
            // A session belongs to an account: its keys share the accounts' room.
            let key = LimitKey {
                class: KeyClass::Account,
                name: format!("{}:session:{session}", Action::Confirm.name()),
            };
            self.take(&key, quota).await?;
        }
        self.per_account(Action::Confirm, email, self.policy.confirm_per_account)
            .await?;
        self.hashing_turn(email)
    }

    /// Before emailing `recipient` on a client's request: the address's and the recipient's
    /// allowance, so no one can flood a mailbox or send mail to any address without bound.
    pub async fn email(&self, client: &ClientInfo, recipient: &Email) -> Result<(), ServiceError> {
        self.per_ip(Action::Email, client, self.policy.email_per_ip)
            .await?;
        self.per_account(Action::Email, recipient, self.policy.email_per_recipient)
            .await
    }

    /// Before a second-factor code is looked at, or a sign-in's ticket looked up: the
    /// address's allowance of codes.
    pub async fn second_factor_from(&self, client: &ClientInfo) -> Result<(), ServiceError> {
        self.per_ip(Action::Code, client, self.policy.code_per_ip)
            .await
    }

    /// Before checking a code of the account of `email`: its code lock and its allowance.
    pub async fn second_factor_of(&self, email: &Email) -> Result<(), ServiceError> {
        self.not_locked_by(CODE_LOCKOUT, email).await?;
        self.per_account(Action::Code, email, self.policy.code_per_account)
            .await
    }

    /// After a wrong second-factor code: counts toward the account's code lockout (apart from
    /// its password lockout).
    pub async fn second_factor_failed(&self, email: &Email) {
        self.failed(CODE_LOCKOUT, email).await;
    }

    /// After a right code: the wrong codes so far are forgiven.
    pub async fn second_factor_succeeded(&self, email: &Email) {
        self.succeeded(CODE_LOCKOUT, email).await;
    }

    async fn not_locked(&self, email: &Email) -> Result<(), ServiceError> {
        self.not_locked_by(PASSWORD_LOCKOUT, email).await
    }

    async fn not_locked_by(&self, lockout: &str, email: &Email) -> Result<(), ServiceError> {
        if self.policy.lockout.is_some() {
            let key = account_key(lockout, email);
            if let Some(wait) = self
                .guarded(self.limiter.blocked_for(&key).await)?
                .flatten()
            {
                return Err(limited(wait));
            }
        }
        Ok(())
    }

    /// A place in the hashing queue for this account, unless it holds its share already.
    fn hashing_turn(&self, email: &Email) -> Result<HashingTurn, ServiceError> {
        let Some(share) = self.policy.hashes_per_account else {
            return Ok(HashingTurn { held: None });
        };
        let key = account_key("hashing", email).name;
        let mut hashing = self.hashing.lock().unwrap_or_else(|p| p.into_inner());
        let count = hashing.entry(key.clone()).or_insert(0);
        if *count >= share {
            return Err(ServiceError::RateLimited {
                retry_after_secs: 1,
            });
        }
        *count += 1;
        Ok(HashingTurn {
            held: Some((self.hashing.clone(), key)),
        })
    }

    /// After a wrong password (at sign-in or confirming one): counts toward the account's
    /// lockout.
    pub async fn password_failed(&self, email: &Email) {
        self.failed(PASSWORD_LOCKOUT, email).await;
    }

    async fn failed(&self, kind: &str, email: &Email) {
        let Some(lockout) = self.policy.lockout else {
            return;
        };
        let key = account_key(kind, email);
        // No room to count it means the next check of this account is refused for room too
        // (`blocked_for` answers so), unless room freed up between the two.
        let failures = self
            .guarded(self.limiter.count_failure(&key, lockout.window).await)
            .ok()
            .flatten();
        if let Some(duration) = failures.and_then(|n| lockout.duration(n)) {
            tracing::warn!(
                failures,
                lock_secs = duration.as_secs(),
                kind,
                "repeated failures: account locked for a while"
            );
            self.guarded(self.limiter.block(&key, duration).await).ok();
        }
    }

    /// Refuses a client address locked out of the introspection endpoint after wrong client
    /// credentials (the sign-in lockout's settings). Checked before the credentials, so a
    /// locked-out address learns nothing more of a guess.
    pub async fn introspection_allowed(&self, client: &ClientInfo) -> Result<(), ServiceError> {
        if let (Some(_), Some(ip)) = (self.policy.lockout, client.ip) {
            let key = ip_key(Action::Introspection, ip, self.policy.ipv6_prefix);
            if let Some(wait) = self
                .guarded(self.limiter.blocked_for(&key).await)?
                .flatten()
            {
                return Err(limited(wait));
            }
        }
        Ok(())
    }

    /// Wrong introspection client credentials from `client`: counts toward its lockout.
    pub async fn introspection_failed(&self, client: &ClientInfo) {
        let (Some(lockout), Some(ip)) = (self.policy.lockout, client.ip) else {
            return;
        };
        let key = ip_key(Action::Introspection, ip, self.policy.ipv6_prefix);
        let failures = self
            .guarded(self.limiter.count_failure(&key, lockout.window).await)
            .ok()
            .flatten();
        if let Some(duration) = failures.and_then(|n| lockout.duration(n)) {
            tracing::warn!(%ip, lock_secs = duration.as_secs(), "repeated wrong introspection credentials: address locked for a while");
            self.guarded(self.limiter.block(&key, duration).await).ok();
        }
    }

    /// After a correct password (at sign-in or confirming one): the failures so far are
    /// forgiven.
    pub async fn password_succeeded(&self, email: &Email) {
        self.succeeded(PASSWORD_LOCKOUT, email).await;
    }

    async fn succeeded(&self, kind: &str, email: &Email) {
        if self.policy.lockout.is_some() {
            self.guarded(self.limiter.clear(&account_key(kind, email)).await)
                .ok();
        }
    }

    pub async fn register(&self, client: &ClientInfo) -> Result<(), ServiceError> {
        self.per_ip(Action::Register, client, self.policy.register_per_ip)
            .await
    }

    /// Before a social sign-in flow is stored: the address's allowance of flows.
    pub async fn social_flow(&self, client: &ClientInfo) -> Result<(), ServiceError> {
        self.per_ip(Action::Social, client, self.policy.social_per_ip)
            .await
    }

    pub async fn refresh(&self, client: &ClientInfo) -> Result<(), ServiceError> {
        self.per_ip(Action::Refresh, client, self.policy.refresh_per_ip)
            .await
    }

    /// Asking for a reset link, and using one.
    pub async fn password_reset(
        &self,
        client: &ClientInfo,
        email: Option<&Email>,
    ) -> Result<(), ServiceError> {
        self.per_ip(
            Action::PasswordReset,
            client,
            self.policy.password_reset_per_ip,
        )
        .await?;
        match email {
            Some(email) => {
                self.per_account(
                    Action::PasswordReset,
                    email,
                    self.policy.password_reset_per_account,
                )
                .await
            }
            None => Ok(()),
        }
    }

    async fn per_ip(
        &self,
        action: Action,
        client: &ClientInfo,
        quota: Option<Quota>,
    ) -> Result<(), ServiceError> {
        match (quota, client.ip) {
            (Some(quota), Some(ip)) => {
                let key = ip_key(action, ip, self.policy.ipv6_prefix);
                self.take(&key, quota).await
            }
            _ => Ok(()),
        }
    }

    async fn per_account(
        &self,
        action: Action,
        email: &Email,
        quota: Option<Quota>,
    ) -> Result<(), ServiceError> {
        match quota {
            Some(quota) => self.take(&account_key(action.name(), email), quota).await,
            None => Ok(()),
        }
    }

    async fn take(&self, key: &LimitKey, quota: Quota) -> Result<(), ServiceError> {
        match self
            .guarded(self.limiter.acquire(key, quota).await)?
            .flatten()
        {
            Some(wait) => Err(limited(wait)),
            None => Ok(()),
        }
    }

    /// A store that cannot be reached must not take the service down with it: the limits are
    /// skipped (with an error in the log) and password hashing stays bounded regardless. A
    /// store with no room for a new key fails closed instead: forgetting a key to make room
    /// could lift someone's lockout, so the request is refused until room frees up.
    fn guarded<T>(&self, result: Result<T, LimiterError>) -> Result<Option<T>, ServiceError> {
        match result {
            Ok(value) => Ok(Some(value)),
            Err(LimiterError::Full { class, retry_after }) => {
                self.refused_for_room[class_index(class)].fetch_add(1, Ordering::Relaxed);
                // Counted, not logged one by one: this is what a flood looks like.
                tracing::debug!(
                    class = class.name(),
                    "refused: no room in the rate-limit store"
                );
                Err(limited(retry_after))
            }
            Err(error @ LimiterError::Unavailable(_)) => {
                tracing::error!(%error, "rate limits skipped: the store failed");
                Ok(None)
            }
        }
    }
}

fn class_index(class: KeyClass) -> usize {
    match class {
        KeyClass::Address => 0,
        KeyClass::Account => 1,
    }
}

fn limited(wait: Duration) -> ServiceError {
    ServiceError::RateLimited {
        retry_after_secs: wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
    }
}

/// The key of a client's network: an IPv4 address (also when it arrives IPv4-mapped), or
/// the IPv6 prefix of `ipv6_prefix` bits, since one subscriber holds a whole /64 and could
/// otherwise take a fresh key per request.
fn ip_key(action: Action, ip: IpAddr, ipv6_prefix: u8) -> LimitKey {
    let network = match ip.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match ipnet::Ipv6Net::new(v6, ipv6_prefix.min(128)) {
            Ok(net) => net.trunc().to_string(),
            Err(_) => v6.to_string(),
        },
    };
    LimitKey {
        class: KeyClass::Address,
        name: format!("{}:ip:{network}", action.name()),
    }
}

/// Emails are personal data: store keys carry a hash of them instead.
fn account_key(scope: &str, email: &Email) -> LimitKey {
    let digest = Sha256::digest(email.as_str().as_bytes());
    let short: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
    LimitKey {
        class: KeyClass::Account,
        name: format!("{scope}:account:{short}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lockout_doubles_from_the_threshold_up_to_the_cap() {
        let lockout = Lockout {
            after: 5,
            window: Duration::from_secs(900),
            base: Duration::from_secs(60),
            max: Duration::from_secs(3600),
        };
        assert_eq!(lockout.duration(4), None);
        assert_eq!(lockout.duration(5), Some(Duration::from_secs(60)));
        assert_eq!(lockout.duration(6), Some(Duration::from_secs(120)));
        assert_eq!(lockout.duration(8), Some(Duration::from_secs(480)));
        assert_eq!(lockout.duration(40), Some(Duration::from_secs(3600)));
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert!(matches!(
            limited(Duration::from_millis(1200)),
            ServiceError::RateLimited {
                retry_after_secs: 2
            }
        ));
        assert!(matches!(
            limited(Duration::from_secs(3)),
            ServiceError::RateLimited {
                retry_after_secs: 3
            }
        ));
    }

    use crate::application::ClientInfo;
    use crate::application::Policies;
    use crate::application::error::AuthFailure;
    use crate::application::testing::{Harness, ManualClock, policies};
    use crate::domain::{NewUser, Password};
    use crate::infrastructure::rate_limit::MemoryRateLimiter;

    fn client() -> ClientInfo {
        ClientInfo {
            user_agent: None,
            ip: Some("203.0.113.1".parse().unwrap()),
        }
    }

    const EMAIL: &str = "ada@example.com";

    async fn signed_up(policy: ThrottlePolicy) -> Harness {
        let h = Harness::with(Policies {
            throttle: policy,
            ..policies()
        })
        .await;
        h.services
            .auth
            .register(
                NewUser {
                    email: Email::parse(EMAIL).unwrap(),
                    password: Password::new("correct horse".into()).unwrap(),
                    display_name: None,
                },
                &client(),
            )
            .await
            .unwrap();
        h
    }

    async fn login(h: &Harness, email: &str, password: &str) -> Result<(), ServiceError> {
        h.services
            .auth
            .login(Email::parse(email).unwrap(), password.into(), &client())
            .await
            .map(|_| ())
    }

    fn is_limited(result: &Result<(), ServiceError>) -> bool {
        matches!(result, Err(ServiceError::RateLimited { .. }))
    }

    #[tokio::test]
    async fn sign_ins_past_the_account_allowance_are_refused_without_hashing() {
        let h = signed_up(ThrottlePolicy {
            login_per_account: Some(Quota {
                burst: 3,
                period: Duration::from_secs(60),
            }),
            ..ThrottlePolicy::default()
        })
        .await;
        for _ in 0..3 {
            assert!(login(&h, EMAIL, "correct horse").await.is_ok());
        }
        let hashes_before = h.hasher.verifications();
        assert!(is_limited(&login(&h, EMAIL, "correct horse").await));
        assert_eq!(h.hasher.verifications(), hashes_before, "no hash was spent");
        // Another account is unaffected: refused for its unknown address, not for the quota.
        let other = login(&h, "bob@example.com", "whatever1").await;
        assert!(
            matches!(
                other,
                Err(ServiceError::Unauthenticated(
                    AuthFailure::InvalidCredentials
                ))
            ),
            "{other:?}"
        );
    }

    #[tokio::test]
    async fn repeated_failures_lock_the_account_even_for_the_right_password() {
        let lockout = Lockout {
            after: 3,
            window: Duration::from_secs(900),
            base: Duration::from_secs(60),
            max: Duration::from_secs(3600),
        };
        let h = signed_up(ThrottlePolicy {
            lockout: Some(lockout),
            ..ThrottlePolicy::default()
        })
        .await;
        for _ in 0..2 {
            assert!(!is_limited(&login(&h, EMAIL, "wrong horse").await));
        }
        // A success before the threshold forgives the failures.
        assert!(login(&h, EMAIL, "correct horse").await.is_ok());
        for _ in 0..3 {
            assert!(!is_limited(&login(&h, EMAIL, "wrong horse").await));
        }
        let hashes_before = h.hasher.verifications();
        let locked = login(&h, EMAIL, "correct horse").await;
        assert!(
            matches!(
                locked,
                Err(ServiceError::RateLimited {
                    retry_after_secs: 60
                })
            ),
            "{locked:?}"
        );
        assert_eq!(h.hasher.verifications(), hashes_before);
    }

    #[tokio::test]
    async fn unknown_emails_are_locked_the_same_way_so_locks_reveal_nothing() {
        let h = signed_up(ThrottlePolicy {
            lockout: Some(Lockout {
                after: 2,
                window: Duration::from_secs(900),
                base: Duration::from_secs(60),
                max: Duration::from_secs(3600),
            }),
            ..ThrottlePolicy::default()
        })
        .await;
        // Exactly as for a real account: the failures below the threshold are answered as
        // wrong credentials, and the one at the threshold locks.
        for _ in 0..2 {
            let failed = login(&h, "nobody@example.com", "whatever1").await;
            assert!(
                matches!(
                    failed,
                    Err(ServiceError::Unauthenticated(
                        AuthFailure::InvalidCredentials
                    ))
                ),
                "{failed:?}"
            );
        }
        let locked = login(&h, "nobody@example.com", "whatever1").await;
        assert!(
            matches!(
                locked,
                Err(ServiceError::RateLimited {
                    retry_after_secs: 60
                })
            ),
            "{locked:?}"
        );
        // The same schedule as a real account's.
        for _ in 0..2 {
            assert!(!is_limited(&login(&h, EMAIL, "wrong horse").await));
        }
        assert!(matches!(
            login(&h, EMAIL, "correct horse").await,
            Err(ServiceError::RateLimited {
                retry_after_secs: 60
            })
        ));
    }

    #[tokio::test]
    async fn registrations_are_limited_per_address() {
        let h = Harness::with(Policies {
            throttle: ThrottlePolicy {
                register_per_ip: Some(Quota {
                    burst: 1,
                    period: Duration::from_secs(3600),
                }),
                ..ThrottlePolicy::default()
            },
            ..policies()
        })
        .await;
        let register = |email: &str| {
            let auth = h.services.auth.clone();
            let email = Email::parse(email).unwrap();
            async move {
                auth.register(
                    NewUser {
                        email,
                        password: Password::new("correct horse".into()).unwrap(),
                        display_name: None,
                    },
                    &client(),
                )
                .await
                .map(|_| ())
            }
        };
        assert!(register("a@example.com").await.is_ok());
        assert!(is_limited(&register("b@example.com").await));
        assert!(
            h.user_by_email("b@example.com").await.is_none(),
            "nothing stored"
        );
    }

    #[test]
    fn addresses_are_keyed_by_network() {
        let key = |ip: &str| ip_key(Action::Login, ip.parse().unwrap(), 64).name;
        assert_eq!(key("2001:db8:1:2:aaaa::1"), key("2001:db8:1:2:ffff:1:2:3"));
        assert_eq!(key("2001:db8:1:2::1"), "login:ip:2001:db8:1:2::/64");
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("::ffff:203.0.113.7"), key("203.0.113.7"));
        assert_ne!(key("203.0.113.7"), key("203.0.113.8"));
        assert_eq!(
            ip_key(Action::Login, "2001:db8:1:2::1".parse().unwrap(), 48).name,
            "login:ip:2001:db8:1::/48"
        );
    }

    #[test]
    fn one_account_holds_at_most_its_share_of_the_hashing_queue() {
        let throttle = Throttle::new(
            Arc::new(MemoryRateLimiter::new(100, Arc::new(ManualClock::new()))),
            ThrottlePolicy {
                hashes_per_account: Some(2),
                ..ThrottlePolicy::default()
            },
        );
        let ada = Email::parse("ada@example.com").unwrap();
        let first = throttle.hashing_turn(&ada).unwrap();
        let second = throttle.hashing_turn(&ada).unwrap();
        assert!(matches!(
            throttle.hashing_turn(&ada),
            Err(ServiceError::RateLimited { .. })
        ));
        let bob = throttle.hashing_turn(&Email::parse("bob@example.com").unwrap());
        assert!(bob.is_ok(), "other accounts are not held up");
        drop(first);
        assert!(throttle.hashing_turn(&ada).is_ok());
        drop((second, bob));
        assert!(
            throttle.hashing.lock().unwrap().is_empty(),
            "no key outlives its turns"
        );
    }

    #[test]
    fn account_keys_do_not_contain_the_email() {
        let email = Email::parse("ada@example.com").unwrap();
        let key = account_key("login", &email);
        assert_eq!(key.class, KeyClass::Account);
        assert!(!key.name.contains("ada"));
        assert_eq!(
            key,
            account_key("login", &Email::parse("ADA@example.com").unwrap())
        );
    }
}
