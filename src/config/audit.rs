//! How long the audit trail keeps what it recorded.

use std::time::Duration;

use clap::Args;

use super::chrono_duration;
use crate::application::AuditRetention;

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Audit trail")]
pub struct AuditConfig {
    /// Audit events older than this are deleted (by the periodic cleanup).
    #[arg(long, env = "AUDIT_RETENTION", default_value = "365days", value_parser = humantime::parse_duration, global = true)]
    pub audit_retention: Duration,

    /// The IP address and user agent of audit events older than this are forgotten.
    #[arg(long, env = "AUDIT_CLIENT_RETENTION", default_value = "90days", value_parser = humantime::parse_duration, global = true)]
    pub audit_client_retention: Duration,
}

impl AuditConfig {
    /// What the periodic cleanup deletes or forgets; refuses a duration too large to subtract
    /// from a date.
    pub fn retention(&self) -> anyhow::Result<AuditRetention> {
        Ok(AuditRetention {
            events: chrono_duration(self.audit_retention, "AUDIT_RETENTION")?,
            clients: chrono_duration(self.audit_client_retention, "AUDIT_CLIENT_RETENTION")?,
        })
    }
}
