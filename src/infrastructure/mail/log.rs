use std::collections::VecDeque;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::application::ports::{Mailer, OutgoingEmail};

/// Writes each email to the log instead of sending it, and keeps the latest ones in memory
/// so tests can follow links without reading logs. For development only: the log then holds
/// the links, and whoever reads the log can use them.
#[derive(Default)]
pub struct LogMailer {
    outbox: Mutex<VecDeque<OutgoingEmail>>,
}

impl LogMailer {
    /// How many emails are kept.
    const KEEP: usize = 100;

    /// The emails kept, oldest first.
    pub fn messages(&self) -> Vec<OutgoingEmail> {
        self.outbox
            .lock()
            .map(|outbox| outbox.iter().cloned().collect())
            .unwrap_or_default()
    }
}

#[async_trait]
impl Mailer for LogMailer {
    async fn send(&self, email: OutgoingEmail) {
        tracing::info!(
            to = %email.to,
            subject = %email.subject,
            "email not sent (MAILER=log); it reads:\n{}",
            email.text
        );
        if let Ok(mut outbox) = self.outbox.lock() {
            if outbox.len() == Self::KEEP {
                outbox.pop_front();
            }
            outbox.push_back(email);
        }
    }
}
