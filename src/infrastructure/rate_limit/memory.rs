use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::application::ports::{Clock, KeyClass, LimitKey, LimiterError, Quota, RateLimiter};

/// Allowances (GCRA), failure counts and blocks of one instance, with room for at most
/// `capacity` keys of each class. A key is only forgotten once nothing it holds restricts
/// anyone any more (its state is then the same as no state), so a flood of new keys can
/// never lift a lockout or refill an allowance; when a class is full of keys still in force,
/// a new key of that class is refused ([`LimiterError::Full`]) until the first of them ends.
/// Every call is O(log capacity) and nothing is swept.
pub struct MemoryRateLimiter {
    address: Mutex<Class>,
    account: Mutex<Class>,
    clock: Arc<dyn Clock>,
}

/// The keys of one class.
struct Class {
    class: KeyClass,
    capacity: usize,
    keys: HashMap<Arc<str>, KeyState>,
    /// Every key, by when its last restriction ends: the first is the only one that may make
    /// room, and if it cannot, no key can.
    by_expiry: BTreeSet<(DateTime<Utc>, Arc<str>)>,
}

/// What is known about one key.
#[derive(Debug, Default, Clone, Copy)]
struct KeyState {
    /// GCRA's theoretical arrival time: allowance is left while it is within the burst.
    allowance_until: Option<DateTime<Utc>>,
    /// Failures, and when the count is forgotten.
    failures: Option<(u64, DateTime<Utc>)>,
    blocked_until: Option<DateTime<Utc>>,
}

impl KeyState {
    /// From this moment on, the state restricts nothing: the allowance is whole, the failures
    /// forgotten and the block over.
    fn expires(&self) -> DateTime<Utc> {
        [
            self.allowance_until,
            self.failures.map(|(_, at)| at),
            self.blocked_until,
        ]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
    }
}

impl Class {
    fn new(class: KeyClass, capacity: usize) -> Self {
        Self {
            class,
            capacity: capacity.max(1),
            keys: HashMap::new(),
            by_expiry: BTreeSet::new(),
        }
    }

    /// Whether a new key could be added now, and if not, when.
    fn room(&self, now: DateTime<Utc>) -> Result<(), LimiterError> {
        if self.keys.len() < self.capacity {
            return Ok(());
        }
        match self.by_expiry.first() {
            Some((expires, _)) if *expires > now => Err(LimiterError::Full {
                class: self.class,
                retry_after: std(*expires - now),
            }),
            _ => Ok(()),
        }
    }

    /// Runs `f` on the key's state, adding the key if it is new: in place of a key that
    /// restricts nothing any more, or not at all.
    fn update<T>(
        &mut self,
        name: &str,
        now: DateTime<Utc>,
        f: impl FnOnce(&mut KeyState) -> T,
    ) -> Result<T, LimiterError> {
        let (name, mut state) = match self.keys.remove_entry(name) {
            Some((name, state)) => {
                self.by_expiry.remove(&(state.expires(), name.clone()));
                (name, state)
            }
            None => {
                self.room(now)?;
                if self.keys.len() >= self.capacity
                    && let Some((_, spent)) = self.by_expiry.pop_first()
                {
                    self.keys.remove(&spent);
                }
                (Arc::from(name), KeyState::default())
            }
        };
        let result = f(&mut state);
        self.by_expiry.insert((state.expires(), name.clone()));
        self.keys.insert(name, state);
        Ok(result)
    }
}

impl MemoryRateLimiter {
    /// Room for `capacity` keys of each class.
    pub fn new(capacity: usize, clock: Arc<dyn Clock>) -> Self {
        Self {
            address: Mutex::new(Class::new(KeyClass::Address, capacity)),
            account: Mutex::new(Class::new(KeyClass::Account, capacity)),
            clock,
        }
    }

    fn lock(&self, class: KeyClass) -> Result<MutexGuard<'_, Class>, LimiterError> {
        match class {
            KeyClass::Address => &self.address,
            KeyClass::Account => &self.account,
        }
        .lock()
        .map_err(|_| LimiterError::Unavailable("a lock was poisoned".into()))
    }

    fn with_key<T>(
        &self,
        key: &LimitKey,
        f: impl FnOnce(&mut KeyState) -> T,
    ) -> Result<T, LimiterError> {
        let now = self.clock.now();
        self.lock(key.class)?.update(&key.name, now, f)
    }
}

fn chrono(duration: Duration) -> chrono::Duration {
    chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX)
}

fn std(duration: chrono::Duration) -> Duration {
    duration.to_std().unwrap_or_default()
}

#[async_trait]
impl RateLimiter for MemoryRateLimiter {
    async fn acquire(
        &self,
        key: &LimitKey,
        quota: Quota,
    ) -> Result<Option<Duration>, LimiterError> {
        let now = self.clock.now();
        // GCRA: each event moves the arrival time on by one interval; a burst may run ahead
        // of now by the whole period less one interval.
        let interval = chrono(quota.period) / i32::try_from(quota.burst.max(1)).unwrap_or(i32::MAX);
        let tolerance = chrono(quota.period) - interval;
        self.with_key(key, |state| {
            let arrival = state.allowance_until.map_or(now, |at| at.max(now));
            let ahead = arrival - now;
            if ahead > tolerance {
                return Some(std(ahead - tolerance));
            }
            state.allowance_until = Some(arrival + interval);
            None
        })
    }

    async fn count_failure(&self, key: &LimitKey, window: Duration) -> Result<u64, LimiterError> {
        let now = self.clock.now();
        self.with_key(key, |state| {
            let count = match state.failures {
                Some((count, forgotten_at)) if forgotten_at > now => count + 1,
                _ => 1,
            };
            let forgotten_at = state
                .failures
                .filter(|(_, at)| *at > now)
                .map_or(now + chrono(window), |(_, at)| at);
            state.failures = Some((count, forgotten_at));
            count
        })
    }

    async fn block(&self, key: &LimitKey, duration: Duration) -> Result<(), LimiterError> {
        let until = self.clock.now() + chrono(duration);
        self.with_key(key, |state| state.blocked_until = Some(until))
    }

    async fn blocked_for(&self, key: &LimitKey) -> Result<Option<Duration>, LimiterError> {
        let now = self.clock.now();
        let class = self.lock(key.class)?;
        match class.keys.get(key.name.as_str()) {
            Some(state) => Ok(state
                .blocked_until
                .filter(|until| *until > now)
                .map(|until| std(until - now))),
            // Not blocked, but a failure that follows could not be counted: refused alike.
            None => class.room(now).map(|()| None),
        }
    }

    async fn clear(&self, key: &LimitKey) -> Result<(), LimiterError> {
        let now = self.clock.now();
        let mut class = self.lock(key.class)?;
        if class.keys.contains_key(key.name.as_str()) {
            class.update(&key.name, now, |state| {
                state.failures = None;
                state.blocked_until = None;
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::application::testing::ManualClock;

    const QUOTA: Quota = Quota {
        burst: 3,
        period: Duration::from_secs(60),
    };

    fn limiter(capacity: usize) -> (MemoryRateLimiter, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new());
        (MemoryRateLimiter::new(capacity, clock.clone()), clock)
    }

    fn address(name: &str) -> LimitKey {
        LimitKey {
            class: KeyClass::Address,
            name: name.into(),
        }
    }

    fn account(name: &str) -> LimitKey {
        LimitKey {
            class: KeyClass::Account,
            name: name.into(),
        }
    }

    fn full_for(result: Result<impl std::fmt::Debug, LimiterError>) -> Duration {
        match result {
            Err(LimiterError::Full { retry_after, .. }) => retry_after,
            other => panic!("not refused for room: {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_burst_is_allowed_then_the_wait_is_told_and_allowance_returns_with_time() {
        let (limiter, clock) = limiter(100);
        let k = account("k");
        for _ in 0..3 {
            assert_eq!(limiter.acquire(&k, QUOTA).await.unwrap(), None);
        }
        assert_eq!(
            limiter.acquire(&k, QUOTA).await.unwrap(),
            Some(Duration::from_secs(20))
        );
        assert_eq!(
            limiter.acquire(&account("other"), QUOTA).await.unwrap(),
            None,
            "keys are separate"
        );
        clock.advance(chrono::Duration::seconds(20));
        assert_eq!(limiter.acquire(&k, QUOTA).await.unwrap(), None);
        assert!(limiter.acquire(&k, QUOTA).await.unwrap().is_some());
    }

    #[tokio::test]
    async fn failures_count_within_their_window_and_blocks_expire() {
        let (limiter, clock) = limiter(100);
        let a = account("a");
        let minute = Duration::from_secs(60);
        assert_eq!(limiter.count_failure(&a, minute).await.unwrap(), 1);
        assert_eq!(limiter.count_failure(&a, minute).await.unwrap(), 2);
        clock.advance(chrono::Duration::seconds(61));
        assert_eq!(
            limiter.count_failure(&a, minute).await.unwrap(),
            1,
            "forgotten"
        );

        limiter.block(&a, Duration::from_secs(30)).await.unwrap();
        assert_eq!(
            limiter.blocked_for(&a).await.unwrap(),
            Some(Duration::from_secs(30))
        );
        clock.advance(chrono::Duration::seconds(30));
        assert_eq!(limiter.blocked_for(&a).await.unwrap(), None);
        limiter.block(&a, Duration::from_secs(30)).await.unwrap();
        limiter.clear(&a).await.unwrap();
        assert_eq!(limiter.blocked_for(&a).await.unwrap(), None);
        assert_eq!(limiter.count_failure(&a, minute).await.unwrap(), 1);
    }

    /// The attack of issue 28: lock an account, then flood the store with new keys so the
    /// least recently used (the lockout) is forgotten.
    #[tokio::test]
    async fn a_flood_of_address_keys_leaves_lockouts_code_lockouts_and_quotas_in_force() {
        let (limiter, _) = limiter(100);
        let window = Duration::from_secs(900);
        let lockout = account("lockout:account:victim");
        for _ in 0..5 {
            limiter.count_failure(&lockout, window).await.unwrap();
        }
        limiter
            .block(&lockout, Duration::from_secs(600))
            .await
            .unwrap();
        let code_failures = account("code-lockout:account:victim");
        limiter.count_failure(&code_failures, window).await.unwrap();
        let quota = account("password-reset:account:victim");
        for _ in 0..3 {
            limiter.acquire(&quota, QUOTA).await.unwrap();
        }
        assert!(limiter.acquire(&quota, QUOTA).await.unwrap().is_some());

        let mut refused = 0;
        for i in 0..26_000 {
            match limiter
                .acquire(&address(&format!("flood-{i}")), QUOTA)
                .await
            {
                Ok(_) => {}
                Err(LimiterError::Full { .. }) => refused += 1,
                Err(other) => panic!("{other}"),
            }
        }
        assert_eq!(
            refused,
            26_000 - 100,
            "the address class filled up, then refused"
        );
        assert_eq!(limiter.address.lock().unwrap().keys.len(), 100);

        assert_eq!(
            limiter.blocked_for(&lockout).await.unwrap(),
            Some(Duration::from_secs(600)),
            "the lockout is in force"
        );
        assert_eq!(
            limiter.count_failure(&lockout, window).await.unwrap(),
            6,
            "the failures are remembered"
        );
        assert_eq!(
            limiter.count_failure(&code_failures, window).await.unwrap(),
            2,
            "the code failures are remembered"
        );
        assert!(
            limiter.acquire(&quota, QUOTA).await.unwrap().is_some(),
            "the quota is still spent"
        );
    }

    #[tokio::test]
    async fn a_class_full_of_restrictions_refuses_new_keys_and_forgets_none() {
        let (limiter, clock) = limiter(10);
        let minute = Duration::from_secs(60);
        for i in 0..10 {
            limiter
                .block(&account(&format!("locked-{i}")), minute * (i + 1))
                .await
                .unwrap();
        }
        let newcomer = account("newcomer");
        assert_eq!(full_for(limiter.acquire(&newcomer, QUOTA).await), minute);
        assert_eq!(
            full_for(limiter.blocked_for(&newcomer).await),
            minute,
            "a failure could not be counted, so the check refuses too"
        );
        assert_eq!(
            full_for(limiter.count_failure(&newcomer, minute).await),
            minute
        );
        assert_eq!(full_for(limiter.block(&newcomer, minute).await), minute);
        // The keys it holds are served, and the other class has room of its own.
        assert_eq!(
            limiter.blocked_for(&account("locked-0")).await.unwrap(),
            Some(minute)
        );
        assert_eq!(limiter.acquire(&address("a"), QUOTA).await.unwrap(), None);

        // When the first block ends, its key makes room for one, and only one.
        clock.advance(chrono::Duration::seconds(60));
        assert_eq!(limiter.acquire(&newcomer, QUOTA).await.unwrap(), None);
        assert_eq!(
            full_for(limiter.acquire(&account("another"), QUOTA).await),
            Duration::from_secs(20),
            "the newcomer's allowance, whole again in one interval, ends first"
        );
        for i in 1..10 {
            assert!(
                limiter
                    .blocked_for(&account(&format!("locked-{i}")))
                    .await
                    .unwrap()
                    .is_some(),
                "locked-{i} is still locked"
            );
        }
    }

    #[tokio::test]
    async fn keys_that_restrict_nothing_any_more_make_room_so_normal_traffic_goes_on() {
        let (limiter, clock) = limiter(10);
        // One event from each of many addresses, a little apart: each allowance is whole
        // again twenty seconds after its event.
        for i in 0..1000 {
            assert_eq!(
                limiter
                    .acquire(&address(&format!("client-{i}")), QUOTA)
                    .await
                    .unwrap(),
                None,
                "client-{i}"
            );
            clock.advance(chrono::Duration::seconds(3));
        }
        assert_eq!(limiter.address.lock().unwrap().keys.len(), 10);

        // A lockout cleared by a right password restricts nothing: it makes room at once.
        let minute = Duration::from_secs(60);
        for i in 0..10 {
            let key = account(&format!("user-{i}"));
            limiter.count_failure(&key, minute).await.unwrap();
            limiter.clear(&key).await.unwrap();
        }
        assert_eq!(
            limiter
                .count_failure(&account("user-10"), minute)
                .await
                .unwrap(),
            1
        );
    }
}
