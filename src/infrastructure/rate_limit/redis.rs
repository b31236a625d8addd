use std::time::Duration;

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

/// One more failure, forgotten `window` after the first one.
const COUNT: &str = r"
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n
";

/// Counters in Redis, shared by every instance pointed at it. Keys are prefixed, so one Redis
/// can serve several deployments (and tests).
pub struct RedisRateLimiter {
    connection: ConnectionManager,
    prefix: String,
    gcra: Script,
    count: Script,
}

fn failed(error: redis::RedisError) -> LimiterError {
    LimiterError::Unavailable(error.to_string())
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
        })
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
        let wait: u64 = self
            .gcra
            .key(self.key("rate", key))
            .arg(interval)
            .arg(quota.burst.max(1))
            .invoke_async(&mut self.connection.clone())
            .await
            .map_err(failed)?;
        Ok((wait > 0).then(|| Duration::from_millis(wait)))
    }

    async fn count_failure(&self, key: &LimitKey, window: Duration) -> Result<u64, LimiterError> {
        self.count
            .key(self.key("failures", key))
            .arg(millis(window))
            .invoke_async(&mut self.connection.clone())
            .await
            .map_err(failed)
    }

    async fn block(&self, key: &LimitKey, duration: Duration) -> Result<(), LimiterError> {
        self.connection
            .clone()
            .pset_ex::<_, _, ()>(self.key("block", key), 1, millis(duration))
            .await
            .map_err(failed)
    }

    async fn blocked_for(&self, key: &LimitKey) -> Result<Option<Duration>, LimiterError> {
        let left: i64 = self
            .connection
            .clone()
            .pttl(self.key("block", key))
            .await
            .map_err(failed)?;
        Ok(u64::try_from(left)
            .ok()
            .filter(|ms| *ms > 0)
            .map(Duration::from_millis))
    }

    async fn clear(&self, key: &LimitKey) -> Result<(), LimiterError> {
        self.connection
            .clone()
            .del::<_, ()>(&[self.key("failures", key), self.key("block", key)])
            .await
            .map_err(failed)
    }
}
