//! What the service tells its operator: log lines and metrics.

use clap::{Args, ValueEnum};

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable, for a terminal.
    Pretty,
    /// One JSON object per line, for a log pipeline.
    Json,
}

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Logs and metrics")]
pub struct TelemetryConfig {
    /// `pretty` or `json`.
    #[arg(
        long,
        env = "LOG_FORMAT",
        value_enum,
        default_value = "pretty",
        global = true
    )]
    pub log_format: LogFormat,

    /// Serve Prometheus metrics at GET /metrics on METRICS_ADDR.
    #[arg(long, env = "METRICS", default_value_t = true, value_parser = clap::builder::BoolishValueParser::new(), action = clap::ArgAction::Set, global = true)]
    pub metrics: bool,

    /// Where `/metrics` listens: its own address, off the API's port, so only the operator's
    /// network reaches it (in a container, `0.0.0.0:9464` and an unpublished port).
    #[arg(
        long,
        env = "METRICS_ADDR",
        default_value = "127.0.0.1:9464",
        global = true
    )]
    pub metrics_addr: std::net::SocketAddr,
}
