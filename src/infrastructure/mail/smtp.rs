use async_trait::async_trait;
use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::application::ports::{Mailer, OutgoingEmail};

/// Sends email through an SMTP server; delivery failures are logged. Services send from the
/// deferred-work queue, whose few workers bound how many messages are in flight.
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl SmtpMailer {
    /// `url` is `smtp://user:pass@host:587?tls=required`, `smtps://…:465`, or `smtp://host:25`
    /// for a local relay without TLS; `from` is `Name <address>` or an address.
    pub fn new(url: &str, from: &str) -> Result<Self, String> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| format!("SMTP_URL is not a valid SMTP URL: {e}"))?
            .build();
        let from = from
            .parse()
            .map_err(|e| format!("MAIL_FROM is not a valid sender ({from}): {e}"))?;
        Ok(Self { transport, from })
    }
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, email: OutgoingEmail) {
        let to = match email.to.parse::<Mailbox>() {
            Ok(to) => to,
            Err(error) => {
                tracing::error!(%error, "cannot email an address the mail library refuses");
                return;
            }
        };
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(email.subject)
            .header(ContentType::TEXT_PLAIN)
            .body(email.text);
        let message = match message {
            Ok(message) => message,
            Err(error) => {
                tracing::error!(%error, "cannot build an email");
                return;
            }
        };
        if let Err(error) = self.transport.send(message).await {
            tracing::error!(%error, "email delivery failed");
        }
    }
}
