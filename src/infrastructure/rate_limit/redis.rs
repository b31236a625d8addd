use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use async_trait::async_trait;
use redis::aio::ConnectionManager;
use redis::{AsyncCommands, Script};

use crate::application::ports::{LimitKey, LimiterError, Quota, RateLimiter};

/// GCRA in one atomic script, on Redis's clock so every instance agrees. The key holds the
/// "theoretical arrival time" of the next event, in milliseconds.
const GCRA: &str = r"
local now = redis.call('TIME')
now = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local next_tat = tat + interval
local wait = next_tat - now - interval * burst
if wait > 0 then return wait end
redis.call('SET', KEYS[1], next_tat, 'PX', next_tat - now)
return 0
";

/// One more failure, forgotten `window` after the first one. A count without an expiry (left
/// by anything else) is given one, so no key outlives its restriction without bound.
const COUNT: &str = r"
local n = redis.call('INCR', KEYS[1])
if n == 1 or redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n
";

/// Counters in Redis, shared by every instance pointed at it. Keys are prefixed, so one Redis
/// can serve several deployments (and tests). Every key expires when the restriction it holds
/// ends (an allowance whole again, failures forgotten, a block over) and not before, so Redis
/// has no room to run out of short of its own `maxmemory`: it never answers
/// [`LimiterError::Full`], and only Redis's eviction could drop a restriction early (see
/// [`RedisRateLimiter::eviction_policy`]).
pub struct RedisRateLimiter {
    connection: ConnectionManager,
    prefix: String,
    gcra: Script,
    count: Script,
    /// Until when Redis is not asked, after a failure.
    resting_until: Mutex<Option<Instant>>,
}

/// The longest one call may take. Redis answers in well under a millisecond when it is up;
/// when it is gone, the connection manager's reconnection (several seconds of backoff) would
/// otherwise hold every call, and a sign-in makes several.
const DEADLINE: Duration = Duration::from_millis(500);
/// After a failure Redis is not asked for this long: the calls meanwhile fail at once (the
/// limits are skipped) instead of each waiting out the deadline, and the first call after it
/// tries Redis again, so the limits come back by themselves with Redis.
const REST_AFTER_FAILURE: Duration = Duration::from_secs(1);

fn failed(error: redis::RedisError) -> LimiterError {
    LimiterError::Unavailable(error.to_string())
}

/// Whether `error` means Redis could not be reached at all, rather than that it answered no.
fn unreachable(error: &redis::RedisError) -> bool {
    error.is_io_error()
        || error.is_connection_refusal()
        || error.is_connection_dropped()
        || error.is_timeout()
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}

impl RedisRateLimiter {
    /// Connects (and reconnects by itself after a failure).
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, LimiterError> {
        let client = redis::Client::open(url).map_err(failed)?;
        let connection = ConnectionManager::new(client).await.map_err(failed)?;
        Ok(Self {
            connection,
            prefix: prefix.to_owned(),
            gcra: Script::new(GCRA),
            count: Script::new(COUNT),
            resting_until: Mutex::new(None),
        })
    }

    /// Runs one call within [`DEADLINE`], unless Redis failed moments ago.
    async fn call<T>(
        &self,
        request: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, LimiterError> {
        let resting_until = *self
            .resting_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if resting_until.is_some_and(|until| Instant::now() < until) {
            return Err(LimiterError::Unavailable(
                "Redis failed moments ago; not asked again yet".into(),
            ));
        }
        let error = match tokio::time::timeout(DEADLINE, request).await {
            Ok(Ok(value)) => return Ok(value),
            // An answer that is an error (a write refused at `maxmemory`, say) says Redis is
            // there: other calls, such as reading a lock, may still work.
            Ok(Err(error)) if !unreachable(&error) => return Err(failed(error)),
            Ok(Err(error)) => failed(error),
            Err(_) => {
                LimiterError::Unavailable(format!("Redis did not answer within {DEADLINE:?}"))
            }
        };
        *self
            .resting_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Instant::now() + REST_AFTER_FAILURE);
        Err(error)
    }

    /// Redis's `maxmemory-policy`, if Redis may evict keys to make room: every key here
    /// carries an expiry, so the `volatile-*` policies may drop them as readily as the
    /// `allkeys-*` ones, and an evicted block is a lockout lifted. Only `noeviction` (writes
    /// then fail, and the limits are skipped with an error in the log) or no `maxmemory` at
    /// all keeps them. An error if Redis refuses `CONFIG GET` (some managed services do).
    pub async fn eviction_policy(&self) -> Result<Option<String>, LimiterError> {
        let mut connection = self.connection.clone();
        let policy: Vec<String> = redis::cmd("CONFIG")
            .arg("GET")
            .arg("maxmemory-policy")
            .query_async(&mut connection)
            .await
            .map_err(failed)?;
        let maxmemory: Vec<String> = redis::cmd("CONFIG")
            .arg("GET")
            .arg("maxmemory")
            .query_async(&mut connection)
            .await
            .map_err(failed)?;
        let policy = policy.get(1).cloned().unwrap_or_default();
        let maxmemory = maxmemory
            .get(1)
            .and_then(|m| m.parse::<u64>().ok())
            .unwrap_or(0);
        Ok(may_evict(&policy, maxmemory).then_some(policy))
    }

    fn key(&self, kind: &str, key: &LimitKey) -> String {
        format!("{}{kind}:{}", self.prefix, key.name)
    }
}

#[async_trait]
impl RateLimiter for RedisRateLimiter {
    async fn acquire(
        &self,
        key: &LimitKey,
        quota: Quota,
    ) -> Result<Option<Duration>, LimiterError> {
        let interval = millis(quota.period / quota.burst.max(1));
        let mut connection = self.connection.clone();
        let wait: u64 = self
            .call(
                self.gcra
                    .key(self.key("rate", key))
                    .arg(interval)
                    .arg(quota.burst.max(1))
                    .invoke_async(&mut connection),
            )
            .await?;
        Ok((wait > 0).then(|| Duration::from_millis(wait)))
    }

    async fn count_failure(&self, key: &LimitKey, window: Duration) -> Result<u64, LimiterError> {
        let mut connection = self.connection.clone();
        self.call(
            self.count
                .key(self.key("failures", key))
                .arg(millis(window))
                .invoke_async(&mut connection),
        )
        .await
    }

    async fn block(&self, key: &LimitKey, duration: Duration) -> Result<(), LimiterError> {
        let mut connection = self.connection.clone();
        self.call(connection.pset_ex::<_, _, ()>(self.key("block", key), 1, millis(duration)))
            .await
    }

    async fn blocked_for(&self, key: &LimitKey) -> Result<Option<Duration>, LimiterError> {
        let mut connection = self.connection.clone();
        let left: i64 = self.call(connection.pttl(self.key("block", key))).await?;
        Ok(u64::try_from(left)
            .ok()
            .filter(|ms| *ms > 0)
            .map(Duration::from_millis))
    }

    async fn clear(&self, key: &LimitKey) -> Result<(), LimiterError> {
        let mut connection = self.connection.clone();
        self.call(connection.del::<_, ()>(&[self.key("failures", key), self.key("block", key)]))
            .await
    }
}

/// Whether Redis may drop keys when it reaches `maxmemory` (0: no limit, nothing evicted).
fn may_evict(policy: &str, maxmemory: u64) -> bool {
    maxmemory > 0 && !policy.eq_ignore_ascii_case("noeviction")
}

#[cfg(test)]
mod tests {
    use super::may_evict;

    #[test]
    fn only_noeviction_or_no_memory_limit_keeps_every_key() {
        assert!(!may_evict("noeviction", 1 << 30));
        assert!(!may_evict("allkeys-lru", 0), "no maxmemory, no eviction");
        for policy in [
            "volatile-lru",
            "volatile-lfu",
            "volatile-ttl",
            "volatile-random",
            "allkeys-lru",
            "allkeys-lfu",
            "allkeys-random",
        ] {
            assert!(may_evict(policy, 1 << 30), "{policy}");
        }
    }
}
