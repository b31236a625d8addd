//! Running CPU-bound work on a thread that gives way to the request threads at once.
//!
//! A password hash is ~50 ms of CPU with no point where it could pause. The hashing threads run
//! under `SCHED_IDLE`, so the kernel should hand a core to any request thread that wants one —
//! and on the 2-core CI machine (Linux 6.18, HZ=250, a VM) it often did not. A `perf sched`
//! trace shows how: a request thread preempted by `ksoftirqd` stays runnable, and when
//! `ksoftirqd` is done the scheduler picks the `SCHED_IDLE` hashing thread over it (it is the
//! one the fair scheduler deems eligible), which then runs until the next tick, 4 ms later.
//! `me` p99 during a login storm was 7–10× its idle p99. Busy threads that called
//! `sched_yield` in a loop caused no such wait. So while a job runs, a timer interrupts its
//! thread every [`YIELD_EVERY`] and the signal handler calls `sched_yield`, which returns at
//! once when nothing else wants the core.

use std::time::Duration;

/// How long a request thread can wait behind a hashing thread at most. Each tick costs the
/// hashing thread ~50 µs in that VM, the same with an empty handler: the interrupt costs, not
/// the yield. Measured with `hash-rate` and paired storm runs: at 500 µs the ticks cost 10 %
/// of the hashing rate, at 1 ms 5 %, at 2 ms 4 %; `me` p99 during a storm was 0.7–0.9× its idle
/// p99 at 500 µs, 0.9–1.1× at 1 ms, 0.9–2.3× at 1.5 ms and 1.8–2.0× at 2 ms.
pub const YIELD_EVERY: Duration = Duration::from_millis(1);

/// Makes the calling thread's CPU-bound jobs yield to every other thread (Linux); elsewhere a
/// no-op. Created on the thread it governs.
pub struct BackgroundPriority {
    #[cfg(target_os = "linux")]
    timer: Option<linux::YieldTimer>,
}

impl BackgroundPriority {
    /// Lowers the calling thread to `SCHED_IDLE` and prepares its yield timer. Failures are
    /// logged and leave the thread at normal priority: slower requests during a login storm,
    /// never a refused hash.
    pub fn for_this_thread() -> Self {
        #[cfg(target_os = "linux")]
        {
            if let Err(e) = linux::idle_policy() {
                tracing::warn!(error = %e, "cannot lower the priority of a hashing thread");
                return Self { timer: None };
            }
            match linux::YieldTimer::new() {
                Ok(timer) => Self { timer: Some(timer) },
                Err(e) => {
                    tracing::warn!(error = %e, "cannot start the yield timer of a hashing thread");
                    Self { timer: None }
                }
            }
        }
        #[cfg(not(target_os = "linux"))]
        Self {}
    }

    /// Runs a CPU-bound job, yielding every [`YIELD_EVERY`] to any thread that waits for a core.
    pub fn run<T>(&self, job: impl FnOnce() -> T) -> T {
        #[cfg(target_os = "linux")]
        let _armed = self.timer.as_ref().map(linux::YieldTimer::arm);
        job()
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use std::io;
    use std::sync::OnceLock;

    use super::YIELD_EVERY;

    /// The process-wide handler and the signal it answers; installed once.
    fn yield_signal() -> io::Result<libc::c_int> {
        static INSTALLED: OnceLock<Result<libc::c_int, i32>> = OnceLock::new();
        let installed = INSTALLED.get_or_init(|| {
            // glibc keeps the first real-time signals for itself; SIGRTMIN() is past them, and
            // nothing else in this process uses real-time signals.
            let signal = libc::SIGRTMIN() + 4;
            // SAFETY: a zeroed sigaction is valid; the handler only makes an async-signal-safe
            // system call.
            unsafe {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = step_aside as extern "C" fn(libc::c_int) as usize;
                action.sa_flags = libc::SA_RESTART;
                libc::sigemptyset(&mut action.sa_mask);
                if libc::sigaction(signal, &action, std::ptr::null_mut()) != 0 {
                    return Err(io::Error::last_os_error().raw_os_error().unwrap_or(0));
                }
            }
            Ok(signal)
        });
        installed.map_err(io::Error::from_raw_os_error)
    }

    extern "C" fn step_aside(_signal: libc::c_int) {
        // SAFETY: sched_yield has no arguments and is async-signal-safe.
        unsafe { libc::sched_yield() };
        #[cfg(test)]
        super::tests::YIELDS.with(|yields| yields.set(yields.get() + 1));
    }

    pub fn idle_policy() -> io::Result<()> {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: `pid = 0` is the calling thread; the kernel only reads `param`.
        match unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) } {
            0 => Ok(()),
            _ => Err(io::Error::last_os_error()),
        }
    }

    /// A monotonic-clock timer that signals its own thread only. (Timers on the thread's CPU
    /// clock would be simpler but fire only at ticks, which is the wait this is meant to cut.)
    pub struct YieldTimer(libc::timer_t);

    impl YieldTimer {
        pub fn new() -> io::Result<Self> {
            let signal = yield_signal()?;
            // SAFETY: a zeroed sigevent is valid; the fields set make it signal this thread.
            unsafe {
                let mut event: libc::sigevent = std::mem::zeroed();
                event.sigev_notify = libc::SIGEV_THREAD_ID;
                event.sigev_signo = signal;
                event.sigev_notify_thread_id = libc::gettid();
                let mut timer: libc::timer_t = std::ptr::null_mut();
                if libc::timer_create(libc::CLOCK_MONOTONIC, &mut event, &mut timer) != 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(Self(timer))
            }
        }

        /// Starts the ticks; they stop when the guard drops.
        pub fn arm(&self) -> Armed<'_> {
            let every = libc::timespec {
                tv_sec: 0,
                tv_nsec: YIELD_EVERY.as_nanos() as libc::c_long,
            };
            self.set(every);
            Armed(self)
        }

        fn set(&self, every: libc::timespec) {
            let spec = libc::itimerspec {
                it_interval: every,
                it_value: every,
            };
            // SAFETY: `self.0` is a live timer of this process. It cannot fail with valid
            // arguments; if it did, the job would simply run without yielding.
            unsafe { libc::timer_settime(self.0, 0, &spec, std::ptr::null_mut()) };
        }
    }

    impl Drop for YieldTimer {
        fn drop(&mut self) {
            // SAFETY: deleted once, here.
            unsafe { libc::timer_delete(self.0) };
        }
    }

    pub struct Armed<'a>(&'a YieldTimer);

    impl Drop for Armed<'_> {
        fn drop(&mut self) {
            self.0.set(libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            });
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use std::cell::Cell;
    use std::time::{Duration, Instant};

    use super::*;

    thread_local! {
        /// Yield signals this thread handled. (Const-initialised, so safe in a handler.)
        pub static YIELDS: Cell<u64> = const { Cell::new(0) };
    }

    fn yields() -> u64 {
        YIELDS.with(Cell::get)
    }

    fn spin(for_how_long: Duration) {
        let started = Instant::now();
        while started.elapsed() < for_how_long {
            std::hint::spin_loop();
        }
    }

    #[test]
    fn a_background_job_runs_below_every_other_thread_and_yields_while_it_runs() {
        std::thread::spawn(|| {
            let background = BackgroundPriority::for_this_thread();
            // SAFETY: reads the calling thread's policy.
            assert_eq!(unsafe { libc::sched_getscheduler(0) }, libc::SCHED_IDLE);

            background.run(|| spin(YIELD_EVERY * 40));
            let during = yields();
            // 40 periods of wall time; a loaded machine may run the spin for fewer of them.
            assert!(during >= 5, "yielded {during} times in 40 periods");

            spin(YIELD_EVERY * 10);
            assert_eq!(yields(), during, "the timer stops with the job");
        })
        .join()
        .unwrap();
    }
}
