//! Running CPU-bound work on a thread that gives way to the request threads at once.
//!
//! A password hash is tens of milliseconds of CPU. The hashing threads run under `SCHED_IDLE`,
//! so the kernel should hand a core to any request thread that wants one — and on the 2-core
//! CI machines (Linux 6.18, HZ=250, VMs) it often did not. A `perf sched` trace shows how: a
//! request thread preempted by another thread stays runnable, and when that one is done the
//! scheduler picks the `SCHED_IDLE` hashing thread over it (EEVDF gives an idle-policy thread
//! a small weight, not a lower class, and it can be the one deemed eligible), which then runs
//! until the next tick, 4 ms later. `me` p99 during a login storm was 7–10× its idle p99.
//!
//! Busy threads that call `sched_yield` often cause no such wait, so the job yields every
//! [`YIELD_EVERY`] at the yield points it passes (argon2 offers one every few dozen blocks; see
//! `vendor/README.md`). A yield returns at once when nothing else wants the core. The first
//! version interrupted the job with a timer signal instead: each interrupt cost ~40 µs of
//! hashing in these VMs, 2.4–8 % of the hashing rate at one per millisecond (by machine); a
//! yield point costs a clock read.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long a request thread can wait behind a hashing thread at most (plus the few dozen
/// microseconds between two yield points).
pub const YIELD_EVERY: Duration = Duration::from_micros(250);

/// A thread lowered below every other and the state of its yield points. Created on the
/// thread it governs.
pub struct BackgroundPriority {
    since: Instant,
    /// When the job last yielded, in nanoseconds after `since`. (Atomic only so a yield point
    /// can be a shared `Fn`; one thread uses it.)
    last_yield: AtomicU64,
}

impl BackgroundPriority {
    /// Lowers the calling thread to `SCHED_IDLE` (Linux; elsewhere the yields alone). A failure
    /// is logged and leaves the thread at normal priority: slower requests during a login
    /// storm, never a refused hash.
    pub fn for_this_thread() -> Self {
        #[cfg(target_os = "linux")]
        if let Err(e) = idle_policy() {
            tracing::warn!(error = %e, "cannot lower the priority of a hashing thread");
        }
        Self {
            since: Instant::now(),
            last_yield: AtomicU64::new(0),
        }
    }

    /// A point where the job can give way: yields the thread if [`YIELD_EVERY`] has passed
    /// since it last did. Cheap enough to call every few microseconds.
    pub fn yield_point(&self) {
        let now = self.since.elapsed().as_nanos() as u64;
        if now - self.last_yield.load(Ordering::Relaxed) >= YIELD_EVERY.as_nanos() as u64 {
            std::thread::yield_now();
            self.last_yield
                .store(self.since.elapsed().as_nanos() as u64, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
impl BackgroundPriority {
    pub fn has_yielded(&self) -> bool {
        self.last_yield.load(Ordering::Relaxed) != 0
    }
}

#[cfg(target_os = "linux")]
fn idle_policy() -> std::io::Result<()> {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: `pid = 0` is the calling thread; the kernel only reads `param`.
    match unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) } {
        0 => Ok(()),
        _ => Err(std::io::Error::last_os_error()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    #[test]
    fn a_background_thread_runs_below_every_other_thread() {
        std::thread::spawn(|| {
            let _background = BackgroundPriority::for_this_thread();
            // SAFETY: reads the calling thread's policy.
            assert_eq!(unsafe { libc::sched_getscheduler(0) }, libc::SCHED_IDLE);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_job_passing_yield_points_yields_once_per_period_however_often_it_passes_them() {
        std::thread::spawn(|| {
            let background = BackgroundPriority::for_this_thread();
            let mut yields = vec![];
            let started = Instant::now();
            // Twenty periods, and at least a few yields however little of them a loaded
            // machine gives this thread (bounded, in case it never yields).
            while (started.elapsed() < YIELD_EVERY * 20 || yields.len() < 3)
                && started.elapsed() < Duration::from_secs(10)
            {
                background.yield_point();
                let last = background.last_yield.load(Ordering::Relaxed);
                if last != 0 && yields.last() != Some(&last) {
                    yields.push(last);
                }
            }
            let periods = started.elapsed().as_nanos() / YIELD_EVERY.as_nanos();
            assert!(yields.len() >= 3, "{} yields", yields.len());
            assert!(
                yields.len() as u128 <= periods,
                "{} yields in {periods} periods",
                yields.len()
            );
            for pair in yields.windows(2) {
                assert!(
                    pair[1] - pair[0] >= YIELD_EVERY.as_nanos() as u64,
                    "{pair:?}"
                );
            }
        })
        .join()
        .unwrap();
    }
}
