//! How the kernel schedules the hashing threads, so that a login storm (CPU-bound password
//! hashing) uses the spare CPU without delaying requests.
//!
//! A hashing thread runs under `SCHED_IDLE`, below every other thread. That alone is not
//! enough under EEVDF (Linux 6.6+): an idle-policy thread is a small weight, not a lower class,
//! and a request thread that was preempted (by `ksoftirqd`, say) can lose the pick to the
//! hashing thread, which then runs until the next scheduler tick. A hash has no point where it
//! could step aside (the published argon2 crate offers no hook between blocks), so while one
//! runs, a timer interrupts its thread every [`STEP_ASIDE_EVERY`] and the signal handler calls
//! `sched_yield`, which returns at once when nothing else wants the core. What this costs and
//! buys, against the alternatives measured: bench/FAST-PATHS.md.

use std::time::Duration;

/// How long a request thread can wait behind a hashing thread at most. Each interrupt costs
/// the hashing thread some microseconds, so a shorter period costs sign-ins more.
pub const STEP_ASIDE_EVERY: Duration = Duration::from_millis(1);

/// A thread whose CPU-bound jobs give way to every other thread (Linux); elsewhere a no-op.
/// Created on the thread it governs.
pub struct BackgroundThread {
    #[cfg(target_os = "linux")]
    timer: Option<linux::StepAsideTimer>,
}

impl BackgroundThread {
    /// Lowers the calling thread to `SCHED_IDLE` and prepares its timer. Failures are logged
    /// and leave the thread at normal priority: slower requests during a login storm, never a
    /// refused hash.
    pub fn for_this_thread() -> Self {
        #[cfg(target_os = "linux")]
        {
            if let Err(error) = linux::idle_policy() {
                tracing::warn!(%error, "cannot lower the priority of a hashing thread");
                return Self { timer: None };
            }
            match linux::StepAsideTimer::new() {
                Ok(timer) => Self { timer: Some(timer) },
                Err(error) => {
                    tracing::warn!(%error, "cannot start the timer of a hashing thread");
                    Self { timer: None }
                }
            }
        }
        #[cfg(not(target_os = "linux"))]
        Self {}
    }

    /// Runs a CPU-bound job, stepping aside every [`STEP_ASIDE_EVERY`] for any thread that
    /// waits for a core.
    pub fn run<T>(&self, job: impl FnOnce() -> T) -> T {
        #[cfg(target_os = "linux")]
        let _armed = self.timer.as_ref().map(linux::StepAsideTimer::arm);
        job()
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use std::io;
    use std::sync::OnceLock;

    use super::STEP_ASIDE_EVERY;

    /// The process-wide handler and the signal it answers; installed once.
    fn step_aside_signal() -> io::Result<libc::c_int> {
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
        super::tests::STEPS.with(|steps| steps.set(steps.get() + 1));
    }

    pub fn idle_policy() -> io::Result<()> {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: `pid = 0` is the calling thread; the kernel only reads `param`.
        match unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) } {
            0 => Ok(()),
            _ => Err(io::Error::last_os_error()),
        }
    }

    /// A monotonic-clock timer that signals its own thread only. (A timer on the thread's CPU
    /// clock would be simpler but fires only at ticks, which is the wait this is meant to cut.)
    pub struct StepAsideTimer(libc::timer_t);

    impl StepAsideTimer {
        pub fn new() -> io::Result<Self> {
            let signal = step_aside_signal()?;
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

        /// Starts the interrupts; they stop when the guard drops.
        pub fn arm(&self) -> Armed<'_> {
            let every = libc::timespec {
                tv_sec: 0,
                tv_nsec: STEP_ASIDE_EVERY.as_nanos() as libc::c_long,
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
            // arguments; if it did, the job would simply run without stepping aside.
            unsafe { libc::timer_settime(self.0, 0, &spec, std::ptr::null_mut()) };
        }
    }

    impl Drop for StepAsideTimer {
        fn drop(&mut self) {
            // SAFETY: deleted once, here.
            unsafe { libc::timer_delete(self.0) };
        }
    }

    pub struct Armed<'a>(&'a StepAsideTimer);

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
        /// Step-aside signals this thread handled. (Const-initialised, so safe in a handler.)
        pub static STEPS: Cell<u64> = const { Cell::new(0) };
    }

    fn steps() -> u64 {
        STEPS.with(Cell::get)
    }

    fn spin(for_how_long: Duration) {
        let started = Instant::now();
        while started.elapsed() < for_how_long {
            std::hint::spin_loop();
        }
    }

    #[test]
    fn a_background_job_runs_below_every_other_thread_and_steps_aside_while_it_runs() {
        std::thread::spawn(|| {
            let background = BackgroundThread::for_this_thread();
            // SAFETY: reads the calling thread's policy.
            assert_eq!(unsafe { libc::sched_getscheduler(0) }, libc::SCHED_IDLE);

            // Until the job has stepped aside a few times, however loaded the machine, within
            // a bound: 200 periods of wall time.
            let started = Instant::now();
            while steps() < 5 && started.elapsed() < STEP_ASIDE_EVERY * 200 {
                background.run(|| spin(STEP_ASIDE_EVERY * 10));
            }
            let during = steps();
            assert!(during >= 5, "stepped aside {during} times in 200 periods");

            spin(STEP_ASIDE_EVERY * 10);
            assert_eq!(steps(), during, "the timer stops with the job");
        })
        .join()
        .unwrap();
    }
}
