//! The `AuditLog` adapter: events go into a bounded queue and a background task writes them in
//! batches, so recording never waits for the database and never fails the operation.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{mpsc, oneshot};

use crate::application::ports::AuditLog;
use crate::domain::{AuditEvent, AuditRepository};

/// Events waiting to be written beyond this are dropped (and counted) rather than piling up.
const QUEUE: usize = 4096;
/// Most events written in one statement.
const BATCH: usize = 256;

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
    pub fn start(events: Arc<dyn AuditRepository>) -> Arc<Self> {
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

    /// Events dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

impl AuditLog for AuditWriter {
    fn record(&self, event: AuditEvent) {
        if self.queue.try_send(Message::Event(event)).is_err() {
            let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            tracing::warn!(dropped, "audit queue full: an audit event was dropped");
        }
    }
}

async fn write_batches(events: Arc<dyn AuditRepository>, mut queue: mpsc::Receiver<Message>) {
    let mut batch = Vec::with_capacity(BATCH);
    let mut waiting = Vec::new();
    while let Some(first) = queue.recv().await {
        let mut next = Some(first);
        // Take whatever else is already queued, up to a batch.
        while let Some(message) = next {
            match message {
                Message::Event(event) => batch.push(event),
                Message::Flush(done) => waiting.push(done),
            }
            next = if batch.len() < BATCH {
                queue.try_recv().ok()
            } else {
                None
            };
        }
        if !batch.is_empty() {
            if let Err(error) = events.insert(&batch).await {
                tracing::error!(%error, lost = batch.len(), "cannot write audit events");
            }
            batch.clear();
        }
        for done in waiting.drain(..) {
            let _ = done.send(());
        }
    }
}
