use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use lru::LruCache;

use crate::application::ports::{Clock, LimiterError, Quota, RateLimiter};

/// Allowances (GCRA), failure counts and blocks of one instance, in a map of at most
/// `capacity` keys: past it the least recently used key is forgotten. Every call is O(1) and
/// nothing is swept, so a flood of new keys (addresses, accounts) costs bounded memory and no
/// pauses; its only effect is to forget the quietest keys first.
pub struct MemoryRateLimiter {
    keys: Mutex<LruCache<String, KeyState>>,
    clock: Arc<dyn Clock>,
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

impl MemoryRateLimiter {
    pub fn new(capacity: usize, clock: Arc<dyn Clock>) -> Self {
        let capacity = NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN);
        Self {
            keys: Mutex::new(LruCache::new(capacity)),
            clock,
        }
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, LruCache<String, KeyState>>, LimiterError> {
        self.keys
            .lock()
            .map_err(|_| LimiterError("a lock was poisoned".into()))
    }

    /// Runs `f` on the key's state, adding the key (and forgetting the oldest) if it is new.
    fn with_key<T>(
        &self,
        key: &str,
        f: impl FnOnce(&mut KeyState) -> T,
    ) -> Result<T, LimiterError> {
        let mut keys = self.lock()?;
        if let Some(state) = keys.get_mut(key) {
            return Ok(f(state));
        }
        let mut state = KeyState::default();
        let result = f(&mut state);
        keys.push(key.to_owned(), state);
        Ok(result)
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
    async fn acquire(&self, key: &str, quota: Quota) -> Result<Option<Duration>, LimiterError> {
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

    async fn count_failure(&self, key: &str, window: Duration) -> Result<u64, LimiterError> {
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

    async fn block(&self, key: &str, duration: Duration) -> Result<(), LimiterError> {
        let until = self.clock.now() + chrono(duration);
        self.with_key(key, |state| state.blocked_until = Some(until))
    }

    async fn blocked_for(&self, key: &str) -> Result<Option<Duration>, LimiterError> {
        let now = self.clock.now();
        Ok(self.lock()?.get(key).and_then(|state| {
            state
                .blocked_until
                .filter(|until| *until > now)
                .map(|until| std(until - now))
        }))
    }

    async fn clear(&self, key: &str) -> Result<(), LimiterError> {
        if let Some(state) = self.lock()?.get_mut(key) {
            state.failures = None;
            state.blocked_until = None;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::application::fakes::ManualClock;

    const QUOTA: Quota = Quota {
        burst: 3,
        period: Duration::from_secs(60),
    };

    fn limiter(capacity: usize) -> (MemoryRateLimiter, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new());
        (MemoryRateLimiter::new(capacity, clock.clone()), clock)
    }

    #[tokio::test]
    async fn a_burst_is_allowed_then_the_wait_is_told_and_allowance_returns_with_time() {
        let (limiter, clock) = limiter(100);
        for _ in 0..3 {
            assert_eq!(limiter.acquire("k", QUOTA).await.unwrap(), None);
        }
        assert_eq!(
            limiter.acquire("k", QUOTA).await.unwrap(),
            Some(Duration::from_secs(20))
        );
        assert_eq!(
            limiter.acquire("other", QUOTA).await.unwrap(),
            None,
            "keys are separate"
        );
        clock.advance(chrono::Duration::seconds(20));
        assert_eq!(limiter.acquire("k", QUOTA).await.unwrap(), None);
        assert!(limiter.acquire("k", QUOTA).await.unwrap().is_some());
    }

    #[tokio::test]
    async fn failures_count_within_their_window_and_blocks_expire() {
        let (limiter, clock) = limiter(100);
        let minute = Duration::from_secs(60);
        assert_eq!(limiter.count_failure("a", minute).await.unwrap(), 1);
        assert_eq!(limiter.count_failure("a", minute).await.unwrap(), 2);
        clock.advance(chrono::Duration::seconds(61));
        assert_eq!(
            limiter.count_failure("a", minute).await.unwrap(),
            1,
            "forgotten"
        );

        limiter.block("a", Duration::from_secs(30)).await.unwrap();
        assert_eq!(
            limiter.blocked_for("a").await.unwrap(),
            Some(Duration::from_secs(30))
        );
        clock.advance(chrono::Duration::seconds(30));
        assert_eq!(limiter.blocked_for("a").await.unwrap(), None);
        limiter.block("a", Duration::from_secs(30)).await.unwrap();
        limiter.clear("a").await.unwrap();
        assert_eq!(limiter.blocked_for("a").await.unwrap(), None);
        assert_eq!(limiter.count_failure("a", minute).await.unwrap(), 1);
    }

    #[tokio::test]
    async fn a_flood_of_keys_keeps_the_most_recent_within_capacity() {
        let (limiter, _) = limiter(1000);
        limiter
            .block("victim", Duration::from_secs(600))
            .await
            .unwrap();
        for i in 0..999 {
            limiter.acquire(&format!("flood-{i}"), QUOTA).await.unwrap();
        }
        assert!(
            limiter.blocked_for("victim").await.unwrap().is_some(),
            "still within capacity"
        );
        for i in 999..100_000 {
            limiter.acquire(&format!("flood-{i}"), QUOTA).await.unwrap();
        }
        assert_eq!(limiter.keys.lock().unwrap().len(), 1000);
        assert_eq!(
            limiter.blocked_for("victim").await.unwrap(),
            None,
            "the oldest was forgotten"
        );
    }
}
