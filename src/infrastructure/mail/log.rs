use std::collections::VecDeque;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::application::ports::{Mailer, OutgoingEmail};

/// Writes each email to the log instead of sending it, and keeps the latest ones in memory
/// so tests can follow links without reading logs. In development the log holds the links,
/// and whoever reads the log can use them; with `hide_links` (production) every link's token
/// is replaced before the email reaches the log.
#[derive(Default)]
pub struct LogMailer {
    outbox: Mutex<VecDeque<OutgoingEmail>>,
    hide_links: bool,
}

impl LogMailer {
    pub fn new(hide_links: bool) -> Self {
        Self {
            outbox: Mutex::default(),
            hide_links,
        }
    }

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
        let text = if self.hide_links {
            hide_tokens(&email.text)
        } else {
            email.text.clone()
        };
        tracing::info!(
            to = %email.to,
            subject = %email.subject,
            "email not sent (MAILER=log); it reads:\n{text}"
        );
        if let Ok(mut outbox) = self.outbox.lock() {
            if outbox.len() == Self::KEEP {
                outbox.pop_front();
            }
            outbox.push_back(email);
        }
    }
}

/// The text with the value of every `token=` parameter replaced.
fn hide_tokens(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("token=") {
        let (before, after) = rest.split_at(at + "token=".len());
        out.push_str(before);
        out.push_str("[hidden]");
        rest = after.trim_start_matches(|c: char| !c.is_whitespace() && c != '&');
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::hide_tokens;

    #[test]
    fn link_tokens_are_hidden() {
        let text = "Open https://app.example.com/reset-password?token=abcDEF_123-x within 30 minutes.\n\
                    Or https://a.example/x?token=zzz&then=1";
        let hidden = hide_tokens(text);
        assert!(
            !hidden.contains("abcDEF") && !hidden.contains("zzz"),
            "{hidden}"
        );
        assert!(
            hidden.contains("reset-password?token=[hidden] within") && hidden.contains("&then=1")
        );
    }
}
