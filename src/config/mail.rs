//! How email leaves the service.

use clap::{Args, ValueEnum};
use secrecy::{ExposeSecret, SecretString};

use super::secret;

/// How email leaves the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MailerKind {
    /// Through the SMTP server of SMTP_URL.
    Smtp,
    /// Into the log (links included): for development only.
    Log,
}

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Mail")]
pub struct MailConfig {
    /// How email is sent: `smtp` (needs SMTP_URL) or `log` (written to the log, for
    /// development). Default: `smtp` when SMTP_URL is set, else `log` in development;
    /// production without SMTP_URL refuses to start unless MAILER=log is set explicitly.
    #[arg(long, env = "MAILER", value_enum, global = true)]
    pub mailer: Option<MailerKind>,

    /// SMTP server, e.g. `smtp://user:password@smtp.example.com:587?tls=required` or
    /// `smtps://user:password@smtp.example.com:465`.
    #[arg(
        long,
        env = "SMTP_URL",
        hide_env_values = true,
        value_parser = secret,
        global = true
    )]
    pub smtp_url: Option<SecretString>,

    /// Allow an SMTP_URL without TLS (a relay on a trusted network), which production
    /// otherwise refuses.
    #[arg(long, env = "SMTP_ALLOW_PLAINTEXT", default_value_t = false, value_parser = clap::builder::BoolishValueParser::new(), action = clap::ArgAction::Set, global = true)]
    pub smtp_allow_plaintext: bool,

    /// Sender of emails.
    #[arg(
        long,
        env = "MAIL_FROM",
        default_value = "authgraph <no-reply@localhost>",
        global = true
    )]
    pub mail_from: String,

    /// Emails (with their links) waiting to be sent; past it new ones are dropped, logged and
    /// counted, and never hold up a request.
    #[arg(long, env = "MAIL_QUEUE_SIZE", default_value_t = 1000, global = true)]
    pub mail_queue_size: usize,

    /// Emails sent at once.
    #[arg(long, env = "MAIL_SENDERS", default_value_t = 4, global = true)]
    pub mail_senders: usize,
}

impl MailConfig {
    /// MAILER, or what SMTP_URL implies; `None` when neither says (the log in development).
    pub(super) fn chosen(&self) -> Option<MailerKind> {
        self.mailer
            .or_else(|| self.smtp_url.as_ref().map(|_| MailerKind::Smtp))
    }

    /// How email is sent. Production does not fall back to the log on its own: users would
    /// never get their links.
    pub fn kind(&self, production: bool) -> anyhow::Result<MailerKind> {
        match self.chosen() {
            Some(kind) => Ok(kind),
            None if production => anyhow::bail!(
                "set SMTP_URL so password-reset and verification emails can be sent \
                 (or MAILER=log to write them to the log instead)"
            ),
            None => Ok(MailerKind::Log),
        }
    }

    /// SMTP_URL, password included; MAILER=smtp without it is refused.
    pub fn smtp_url(&self) -> anyhow::Result<&str> {
        self.smtp_url
            .as_ref()
            .map(ExposeSecret::expose_secret)
            .ok_or_else(|| anyhow::anyhow!("MAILER=smtp needs SMTP_URL"))
    }

    /// What production refuses: the SMTP password and the links sent in clear.
    pub(super) fn production_findings(&self) -> Vec<String> {
        let plaintext = self.smtp_url.as_ref().is_some_and(|url| {
            self.mailer != Some(MailerKind::Log)
                && !self.smtp_allow_plaintext
                && !smtp_uses_tls(url.expose_secret())
        });
        if !plaintext {
            return Vec::new();
        }
        vec![
            "SMTP_URL sends mail (and the SMTP password) without TLS: use `smtps://…:465` or \
             `smtp://…:587?tls=required`, or set SMTP_ALLOW_PLAINTEXT=true for a relay on a \
             trusted network"
                .into(),
        ]
    }
}

/// Whether lettre will use TLS for this URL: implicit TLS (`smtps://`) or required STARTTLS.
fn smtp_uses_tls(url: &str) -> bool {
    url.starts_with("smtps://") || url.contains("tls=required")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_needs_tls() {
        assert!(smtp_uses_tls("smtps://u:p@mail.example.com:465"));
        assert!(smtp_uses_tls(
            "smtp://u:p@mail.example.com:587?tls=required"
        ));
        assert!(!smtp_uses_tls("smtp://u:p@mail.example.com:587"));
        assert!(!smtp_uses_tls(
            "smtp://u:p@mail.example.com:587?tls=opportunistic"
        ));
    }
}
