use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, RateLimiter as Governor};

use crate::application::ports::{LimiterError, Quota, RateLimiter};

/// Allowances in governor's keyed GCRA limiters (one per quota), failures and blocks in a map
/// with expiry. Stale entries are swept every few thousand calls, so memory follows the
/// number of recently active keys.
#[derive(Default)]
pub struct MemoryRateLimiter {
    limiters: Mutex<HashMap<Quota, Arc<DefaultKeyedRateLimiter<String>>>>,
    failures: Mutex<HashMap<String, (u64, Instant)>>,
    blocks: Mutex<HashMap<String, Instant>>,
    calls: AtomicU64,
}

const SWEEP_EVERY: u64 = 4096;

fn poisoned<T>(_: T) -> LimiterError {
    LimiterError("a lock was poisoned".into())
}

impl MemoryRateLimiter {
    fn limiter(&self, quota: Quota) -> Result<Arc<DefaultKeyedRateLimiter<String>>, LimiterError> {
        let mut limiters = self.limiters.lock().map_err(poisoned)?;
        if let Some(limiter) = limiters.get(&quota) {
            return Ok(limiter.clone());
        }
        let burst = NonZeroU32::new(quota.burst.max(1)).unwrap_or(NonZeroU32::MIN);
        let interval = (quota.period / burst.get()).max(Duration::from_nanos(1));
        let gcra = governor::Quota::with_period(interval)
            .ok_or_else(|| LimiterError("a quota with no period".into()))?
            .allow_burst(burst);
        let limiter = Arc::new(Governor::keyed(gcra));
        limiters.insert(quota, limiter.clone());
        Ok(limiter)
    }

    fn sweep_now_and_then(&self) {
        if !self
            .calls
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(SWEEP_EVERY)
        {
            return;
        }
        let now = Instant::now();
        if let Ok(limiters) = self.limiters.lock() {
            for limiter in limiters.values() {
                limiter.retain_recent();
                limiter.shrink_to_fit();
            }
        }
        if let Ok(mut failures) = self.failures.lock() {
            failures.retain(|_, (_, expires)| *expires > now);
        }
        if let Ok(mut blocks) = self.blocks.lock() {
            blocks.retain(|_, until| *until > now);
        }
    }
}

#[async_trait]
impl RateLimiter for MemoryRateLimiter {
    async fn acquire(&self, key: &str, quota: Quota) -> Result<Option<Duration>, LimiterError> {
        self.sweep_now_and_then();
        let limiter = self.limiter(quota)?;
        Ok(match limiter.check_key(&key.to_owned()) {
            Ok(()) => None,
            Err(not_until) => Some(not_until.wait_time_from(DefaultClock::default().now())),
        })
    }

    async fn count_failure(&self, key: &str, window: Duration) -> Result<u64, LimiterError> {
        self.sweep_now_and_then();
        let now = Instant::now();
        let mut failures = self.failures.lock().map_err(poisoned)?;
        let entry = failures.entry(key.to_owned()).or_insert((0, now + window));
        if entry.1 <= now {
            *entry = (0, now + window);
        }
        entry.0 += 1;
        Ok(entry.0)
    }

    async fn block(&self, key: &str, duration: Duration) -> Result<(), LimiterError> {
        let mut blocks = self.blocks.lock().map_err(poisoned)?;
        blocks.insert(key.to_owned(), Instant::now() + duration);
        Ok(())
    }

    async fn blocked_for(&self, key: &str) -> Result<Option<Duration>, LimiterError> {
        let blocks = self.blocks.lock().map_err(poisoned)?;
        let now = Instant::now();
        Ok(blocks
            .get(key)
            .filter(|until| **until > now)
            .map(|until| *until - now))
    }

    async fn clear(&self, key: &str) -> Result<(), LimiterError> {
        self.failures.lock().map_err(poisoned)?.remove(key);
        self.blocks.lock().map_err(poisoned)?.remove(key);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUOTA: Quota = Quota {
        burst: 3,
        period: Duration::from_secs(60),
    };

    #[tokio::test]
    async fn a_burst_is_allowed_then_the_wait_is_told() {
        let limiter = MemoryRateLimiter::default();
        for _ in 0..3 {
            assert_eq!(limiter.acquire("k", QUOTA).await.unwrap(), None);
        }
        let wait = limiter.acquire("k", QUOTA).await.unwrap().unwrap();
        assert!(
            wait > Duration::from_secs(15) && wait <= Duration::from_secs(20),
            "{wait:?}"
        );
        assert_eq!(
            limiter.acquire("other", QUOTA).await.unwrap(),
            None,
            "keys are separate"
        );
    }

    #[tokio::test]
    async fn failures_count_within_their_window_and_blocks_expire() {
        let limiter = MemoryRateLimiter::default();
        assert_eq!(
            limiter
                .count_failure("a", Duration::from_secs(60))
                .await
                .unwrap(),
            1
        );
        assert_eq!(
            limiter
                .count_failure("a", Duration::from_secs(60))
                .await
                .unwrap(),
            2
        );
        assert_eq!(
            limiter
                .count_failure("b", Duration::from_millis(1))
                .await
                .unwrap(),
            1
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert_eq!(
            limiter
                .count_failure("b", Duration::from_millis(1))
                .await
                .unwrap(),
            1
        );

        limiter.block("a", Duration::from_secs(30)).await.unwrap();
        let left = limiter.blocked_for("a").await.unwrap().unwrap();
        assert!(left > Duration::from_secs(29));
        limiter.clear("a").await.unwrap();
        assert_eq!(limiter.blocked_for("a").await.unwrap(), None);
        assert_eq!(
            limiter
                .count_failure("a", Duration::from_secs(60))
                .await
                .unwrap(),
            1
        );
    }
}
