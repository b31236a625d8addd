//! How the kernel schedules our threads, so that a login storm (CPU-bound password hashing)
//! never slows other requests: the hashing threads run under `SCHED_IDLE`, below every other
//! thread, and the threads that answer requests ask for a short scheduling slice.
//!
//! `SCHED_IDLE` alone is not enough under EEVDF (Linux 6.6+): an idle-policy thread is a
//! small weight, not a lower class, and a request thread that was preempted can wait for it
//! until the next tick (4 ms at HZ=250). Since Linux 6.12 a thread may ask for its own slice
//! (`sched_setattr`, `sched_runtime`); a thread with a short slice gets an early deadline and
//! preempts a long-slice thread when it wakes. That is what a request thread is: it wakes for
//! a request, runs for microseconds, and sleeps again. Older kernels refuse the request
//! (or ignore the value), which costs nothing but that benefit.

use std::time::Duration;

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

/// Asks the kernel to give the calling thread slices of `slice` (Linux ≥ 6.12 EEVDF; clamped
/// by the kernel to 0.1–100 ms). `false` when the kernel does not take it.
pub fn ask_for_short_slices(slice: Duration) -> bool {
    #[cfg(target_os = "linux")]
    {
        /// `struct sched_attr` of `sched_setattr(2)`, first version (48 bytes).
        #[repr(C)]
        struct SchedAttr {
            size: u32,
            sched_policy: u32,
            sched_flags: u64,
            sched_nice: i32,
            sched_priority: u32,
            sched_runtime: u64,
            sched_deadline: u64,
            sched_period: u64,
        }
        let attr = SchedAttr {
            size: std::mem::size_of::<SchedAttr>() as u32,
            sched_policy: libc::SCHED_OTHER as u32,
            sched_flags: 0,
            sched_nice: 0,
            sched_priority: 0,
            sched_runtime: u64::try_from(slice.as_nanos()).unwrap_or(u64::MAX),
            sched_deadline: 0,
            sched_period: 0,
        };
        // SAFETY: `pid = 0` is the calling thread; the kernel reads `attr.size` bytes of it.
        unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0) == 0 }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = slice;
        false
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

    #[test]
    fn a_request_thread_keeps_its_normal_policy_with_a_short_slice() {
        std::thread::spawn(|| {
            // Whether the kernel takes the slice depends on its version; the policy stays.
            let _ = ask_for_short_slices(Duration::from_micros(100));
            // SAFETY: reads the calling thread's policy.
            assert_eq!(unsafe { libc::sched_getscheduler(0) }, libc::SCHED_OTHER);
        })
        .join()
        .unwrap();
    }
}
