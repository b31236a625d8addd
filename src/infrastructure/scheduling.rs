//! How the kernel schedules our threads, so that a login storm (CPU-bound password hashing)
//! uses the spare CPU without taking it from requests: the hashing threads run under
//! `SCHED_IDLE`, below every other thread.
//!
//! Under EEVDF (Linux 6.6+) an idle-policy thread is a small weight, not a lower class: a
//! request can still wait for a hashing thread until the next scheduler tick. The published
//! argon2 crate has no point between blocks where a hash could step aside, and short
//! scheduler slices for the request threads did not pay for themselves
//! (bench/FAST-PATHS.md), so this is all we ask of the kernel.

/// Lowers the calling thread below every other (Linux `SCHED_IDLE`). A failure is logged and
/// leaves it at normal priority: slower requests during a login storm, never a refused hash.
pub fn run_below_every_other_thread() {
    #[cfg(target_os = "linux")]
    {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: `pid = 0` is the calling thread; the kernel only reads `param`.
        if unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) } != 0 {
            let error = std::io::Error::last_os_error();
            tracing::warn!(%error, "cannot lower the priority of a hashing thread");
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn a_hashing_thread_runs_below_every_other_thread() {
        std::thread::spawn(|| {
            run_below_every_other_thread();
            // SAFETY: reads the calling thread's policy.
            assert_eq!(unsafe { libc::sched_getscheduler(0) }, libc::SCHED_IDLE);
        })
        .join()
        .unwrap();
    }
}
