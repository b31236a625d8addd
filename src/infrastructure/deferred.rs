//! The `Deferred` adapter: a bounded queue of jobs run by a few workers. Emails with links go
//! through it (their durable write and their sending), so a request never waits for a mail
//! server, and a request that had nothing to send looks and takes the same as one that had.
//! A full queue drops the job, logs and counts it, and never blocks the request.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use futures_util::future::BoxFuture;
use tokio::sync::{Mutex, Notify, mpsc};

use crate::application::ports::{Deferred, DropCount};

/// Jobs run later on a bounded queue.
pub struct DeferredQueue {
    queue: mpsc::Sender<BoxFuture<'static, ()>>,
    /// Jobs queued or running.
    outstanding: AtomicUsize,
    idle: Notify,
    dropped: AtomicU64,
}

impl DeferredQueue {
    /// Starts `workers` workers on the current Tokio runtime, with room for `capacity` waiting
    /// jobs.
    pub fn start(workers: usize, capacity: usize) -> Arc<Self> {
        let (queue, receiver) = mpsc::channel(capacity.max(1));
        let this = Arc::new(Self {
            queue,
            outstanding: AtomicUsize::new(0),
            idle: Notify::new(),
            dropped: AtomicU64::new(0),
        });
        let receiver = Arc::new(Mutex::new(receiver));
        for _ in 0..workers.max(1) {
            let (this, receiver) = (Arc::downgrade(&this), receiver.clone());
            tokio::spawn(async move {
                loop {
                    let Some(job) = receiver.lock().await.recv().await else {
                        return;
                    };
                    job.await;
                    let Some(this) = this.upgrade() else { return };
                    if this.outstanding.fetch_sub(1, Ordering::AcqRel) == 1 {
                        this.idle.notify_waiters();
                    }
                }
            });
        }
        this
    }

    /// Waits until every job deferred so far has run (at shutdown, and in tests).
    pub async fn idle(&self) {
        loop {
            let notified = self.idle.notified();
            if self.outstanding.load(Ordering::Acquire) == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// Jobs dropped because the queue was full.
impl DropCount for DeferredQueue {
    fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

impl Deferred for DeferredQueue {
    fn defer(&self, what: &'static str, job: BoxFuture<'static, ()>) {
        self.outstanding.fetch_add(1, Ordering::AcqRel);
        if self.queue.try_send(job).is_err() {
            if self.outstanding.fetch_sub(1, Ordering::AcqRel) == 1 {
                self.idle.notify_waiters();
            }
            self.dropped.fetch_add(1, Ordering::Relaxed);
            tracing::error!(
                job = what,
                "the deferred-work queue is full: a job was dropped"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn jobs_run_later_and_idle_waits_for_them() {
        let queue = DeferredQueue::start(2, 16);
        let done = Arc::new(AtomicUsize::new(0));
        for _ in 0..10 {
            let done = done.clone();
            queue.defer(
                "test",
                Box::pin(async move {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    done.fetch_add(1, Ordering::SeqCst);
                }),
            );
        }
        queue.idle().await;
        assert_eq!(done.load(Ordering::SeqCst), 10);
        assert_eq!(queue.dropped(), 0);
    }

    #[tokio::test]
    async fn a_full_queue_drops_and_counts_instead_of_blocking() {
        let queue = DeferredQueue::start(1, 2);
        let (release, wait) = tokio::sync::oneshot::channel::<()>();
        queue.defer(
            "blocker",
            Box::pin(async move {
                let _ = wait.await;
            }),
        );
        tokio::task::yield_now().await;
        for _ in 0..5 {
            queue.defer("filler", Box::pin(async {}));
        }
        assert!(queue.dropped() >= 2, "{}", queue.dropped());
        let _ = release.send(());
        queue.idle().await;
    }
}
