//! What a password hash costs, and how many run at once.

use clap::Args;

use crate::infrastructure::security::{HashPriority, HashingSettings};

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Password hashing")]
pub struct HashingConfig {
    /// argon2id memory cost in KiB.
    #[arg(
        long,
        env = "ARGON2_MEMORY_KIB",
        default_value_t = 19_456,
        global = true
    )]
    pub argon2_memory_kib: u32,

    /// argon2id iterations.
    #[arg(long, env = "ARGON2_ITERATIONS", default_value_t = 2, global = true)]
    pub argon2_iterations: u32,

    /// argon2id parallelism.
    #[arg(long, env = "ARGON2_PARALLELISM", default_value_t = 1, global = true)]
    pub argon2_parallelism: u32,

    /// Password hashes computed at once, each holding ARGON2_MEMORY_KIB of memory while it runs
    /// (default: the number of CPU cores).
    #[arg(long, env = "PASSWORD_HASH_WORKERS", global = true)]
    pub password_hash_workers: Option<usize>,

    /// Password hashes allowed to wait; beyond this, sign-ins are refused as RATE_LIMITED.
    #[arg(long, env = "PASSWORD_HASH_QUEUE", default_value_t = 64, global = true)]
    pub password_hash_queue: usize,

    /// Scheduling priority of the password-hashing threads: `background` (Linux: below every
    /// other thread, so requests stay fast while many people sign in at once) or `normal`.
    #[arg(
        long,
        env = "PASSWORD_HASH_PRIORITY",
        value_enum,
        default_value = "background",
        global = true
    )]
    pub password_hash_priority: HashPriority,
}

impl HashingConfig {
    pub fn settings(&self) -> HashingSettings {
        HashingSettings {
            memory_kib: self.argon2_memory_kib,
            iterations: self.argon2_iterations,
            parallelism: self.argon2_parallelism,
            workers: self.password_hash_workers.unwrap_or_else(|| {
                std::thread::available_parallelism().map_or(2, std::num::NonZero::get)
            }),
            queue: self.password_hash_queue,
            priority: self.password_hash_priority,
        }
    }
}
