//! Rate-limit stores: in process memory (one instance), or Redis (shared by every instance).

mod memory;
mod redis;

pub use memory::MemoryRateLimiter;
pub use redis::RedisRateLimiter;
