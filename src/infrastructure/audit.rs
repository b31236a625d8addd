//! The `AuditLog` adapter: events go into a bounded queue and a background task writes them in
//! batches, so recording never waits for the database and never fails the operation.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, timeout_at};

use crate::application::ports::{AuditLog, DropCount};
use crate::domain::{AuditEvent, AuditStore, RepositoryError};

/// Events waiting to be written beyond this are dropped (and counted) rather than piling up.
const QUEUE: usize = 4096;
/// Most events written in one statement.
const BATCH: usize = 256;
/// How long the first event of a batch waits for company. Without it, during a sign-in storm
/// every event was a transaction (and on SQLite an fsync) of its own beside each sign-in's
/// session write; a database on tmpfs showed those syncs in the `me` tail.
const LINGER: Duration = Duration::from_millis(50);

/// How long a batch is kept and tried again while the database is unavailable (a restart, a
/// failover) before it is given up: the events of requests already answered are not lost to a
/// short outage, and shutdown is not held up for long by a long one.
const KEEP_WHILE_UNAVAILABLE: Duration = Duration::from_secs(15);
/// The first pause before trying an unavailable database again; it doubles, up to 2 s.
const FIRST_PAUSE: Duration = Duration::from_millis(100);

enum Message {
    Event(AuditEvent),
    Flush(oneshot::Sender<()>),
}

/// Queues audit events for a background writer.
pub struct AuditWriter {
    queue: mpsc::Sender<Message>,
    dropped: AtomicU64,
}

impl AuditWriter {
    /// Starts the background writer on the current Tokio runtime.
    pub fn start(events: Arc<dyn AuditStore>) -> Arc<Self> {
        let (queue, receiver) = mpsc::channel(QUEUE);
        tokio::spawn(write_batches(events, receiver));
        Arc::new(Self {
            queue,
            dropped: AtomicU64::new(0),
        })
    }

    /// Waits until every event recorded so far is written (at shutdown, and in tests).
    pub async fn flush(&self) {
        let (done, written) = oneshot::channel();
        if self.queue.send(Message::Flush(done)).await.is_ok() {
            let _ = written.await;
        }
    }
}

/// Events dropped because the queue was full.
impl DropCount for AuditWriter {
    fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

impl AuditLog for AuditWriter {
    fn record(&self, event: AuditEvent) {
        if self.queue.try_send(Message::Event(event)).is_err() {
            let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            // At the 1st, 2nd, 4th… drop only: a flood must not flood the log as well.
            if dropped.is_power_of_two() {
                tracing::warn!(dropped, "audit queue full: audit events are being dropped");
            }
        }
    }
}

async fn write_batches(events: Arc<dyn AuditStore>, mut queue: mpsc::Receiver<Message>) {
    let mut batch = Vec::with_capacity(BATCH);
    let mut waiting = Vec::new();
    while let Some(first) = queue.recv().await {
        let deadline = Instant::now() + LINGER;
        let mut next = Some(first);
        // Gather until the batch is full, someone waits for a flush, or the linger is over.
        while let Some(message) = next {
            match message {
                Message::Event(event) => batch.push(event),
                Message::Flush(done) => waiting.push(done),
            }
            next = if batch.len() < BATCH && waiting.is_empty() {
                timeout_at(deadline, queue.recv()).await.ok().flatten()
            } else {
                None
            };
        }
        if !batch.is_empty() {
            store(events.as_ref(), &batch).await;
            batch.clear();
        }
        for done in waiting.drain(..) {
            let _ = done.send(());
        }
    }
}

/// Writes one batch, waiting out an unavailable database for a while.
async fn store(events: &dyn AuditStore, batch: &[AuditEvent]) {
    let give_up = Instant::now() + KEEP_WHILE_UNAVAILABLE;
    let mut pause = FIRST_PAUSE;
    let mut tried_before = false;
    loop {
        match events.insert(batch).await {
            Ok(()) => return,
            // The attempt before may have committed without an answer (the connection broke):
            // its events are in, and they are the same events.
            Err(RepositoryError::Conflict) if tried_before => return,
            Err(RepositoryError::Unavailable(error)) if Instant::now() + pause < give_up => {
                tracing::warn!(%error, waiting = batch.len(), "audit events kept until the database is back");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
                tried_before = true;
            }
            Err(error) => {
                tracing::error!(%error, lost = batch.len(), "cannot write audit events");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::AuditKind;

    /// Keeps what the writer stores, to count it: the writer's batching and waiting are the
    /// subject here, not the store (the repository suite tests that on every database).
    #[derive(Default)]
    struct Kept(std::sync::Mutex<Vec<AuditEvent>>);

    #[async_trait::async_trait]
    impl AuditStore for Kept {
        async fn insert(&self, events: &[AuditEvent]) -> Result<(), RepositoryError> {
            self.0.lock().unwrap().extend_from_slice(events);
            Ok(())
        }

        async fn apply_retention(
            &self,
            _delete_before: chrono::DateTime<chrono::Utc>,
            _forget_client_before: chrono::DateTime<chrono::Utc>,
        ) -> Result<(u64, u64), RepositoryError> {
            unreachable!("the writer never applies retention")
        }
    }

    fn event() -> AuditEvent {
        AuditEvent {
            id: uuid::Uuid::now_v7(),
            kind: AuditKind::LoginSucceeded,
            occurred_at: chrono::Utc::now(),
            actor: None,
            subject: None,
            ip: None,
            user_agent: None,
            detail: None,
        }
    }

    fn written(events: &Kept) -> usize {
        events.0.lock().unwrap().len()
    }

    #[tokio::test(start_paused = true)]
    async fn events_recorded_within_the_linger_share_one_write() {
        let events = Arc::new(Kept::default());
        let writer = AuditWriter::start(events.clone());
        writer.record(event());
        tokio::time::sleep(LINGER / 5).await;
        writer.record(event());
        writer.record(event());
        assert_eq!(written(&events), 0, "written before the linger ended");

        tokio::time::sleep(LINGER).await;
        assert_eq!(written(&events), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_lone_event_is_written_when_the_linger_ends() {
        let events = Arc::new(Kept::default());
        let writer = AuditWriter::start(events.clone());
        writer.record(event());
        tokio::time::sleep(LINGER * 2).await;
        assert_eq!(written(&events), 1);
    }

    /// Fails its first `failures` inserts with `failure`, then keeps what it is given.
    struct Flaky {
        events: Kept,
        failures: std::sync::atomic::AtomicU32,
        failure: fn() -> RepositoryError,
        attempts: std::sync::atomic::AtomicU32,
    }

    impl Flaky {
        fn new(failures: u32, failure: fn() -> RepositoryError) -> Arc<Self> {
            Arc::new(Self {
                events: Kept::default(),
                failures: failures.into(),
                failure,
                attempts: 0.into(),
            })
        }
    }

    #[async_trait::async_trait]
    impl AuditStore for Flaky {
        async fn insert(&self, events: &[AuditEvent]) -> Result<(), RepositoryError> {
            self.attempts.fetch_add(1, Ordering::Relaxed);
            let left = self.failures.load(Ordering::Relaxed);
            if left > 0 {
                self.failures.store(left - 1, Ordering::Relaxed);
                return Err((self.failure)());
            }
            self.events.insert(events).await
        }
        async fn apply_retention(
            &self,
            _delete_before: chrono::DateTime<chrono::Utc>,
            _forget_client_before: chrono::DateTime<chrono::Utc>,
        ) -> Result<(u64, u64), RepositoryError> {
            unreachable!("the writer never applies retention")
        }
    }

    fn unavailable() -> RepositoryError {
        RepositoryError::Unavailable("connection refused".into())
    }

    #[tokio::test(start_paused = true)]
    async fn events_wait_out_a_short_outage_and_are_written_once() {
        let events = Flaky::new(4, unavailable);
        let writer = AuditWriter::start(events.clone());
        writer.record(event());
        writer.record(event());
        writer.flush().await;
        assert_eq!(events.attempts.load(Ordering::Relaxed), 5);
        assert_eq!(written(&events.events), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_long_outage_gives_the_batch_up_in_bounded_time() {
        let events = Flaky::new(u32::MAX, unavailable);
        let writer = AuditWriter::start(events.clone());
        writer.record(event());
        let started = Instant::now();
        writer.flush().await;
        assert!(started.elapsed() <= KEEP_WHILE_UNAVAILABLE + LINGER);
        assert_eq!(written(&events.events), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn other_failures_are_not_retried() {
        let events = Flaky::new(1, || RepositoryError::Internal("a bug".into()));
        let writer = AuditWriter::start(events.clone());
        writer.record(event());
        writer.flush().await;
        assert_eq!(events.attempts.load(Ordering::Relaxed), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_flush_writes_at_once() {
        let events = Arc::new(Kept::default());
        let writer = AuditWriter::start(events.clone());
        writer.record(event());
        let started = Instant::now();
        writer.flush().await;
        assert_eq!(written(&events), 1);
        assert!(
            started.elapsed() < LINGER,
            "the flush waited for the linger"
        );
    }
}
