//! The HTTP server: sizes, timeouts, load limits, and the proxies in front of it.

use std::time::Duration;

use clap::Args;
use ipnet::IpNet;

use crate::interfaces::http::{
    ConnectionLimits, ForwardedHeader, LoadLimits, TrustedProxies, parse_network,
};

/// The shortest network prefixes `TRUSTED_PROXIES` may name without
/// `TRUSTED_PROXIES_ALLOW_WIDE=true`: 10.0.0.0/8 and the IPv6 unique-local range fc00::/7 are
/// the widest private networks a proxy lives in.
const NARROWEST_IPV4_PREFIX: u8 = 8;
const NARROWEST_IPV6_PREFIX: u8 = 7;

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "HTTP")]
pub struct HttpConfig {
    /// Largest request body accepted, in bytes; larger bodies are refused with 413 before any
    /// parsing. An auth API's requests are a few hundred bytes (a passkey's attestation a few
    /// KiB), and persisted queries make large documents unnecessary; the bound is what the
    /// largest document the server must parse and validate costs.
    #[arg(long, env = "HTTP_MAX_BODY_BYTES", default_value_t = 32 * 1024, global = true)]
    pub http_max_body_bytes: usize,

    /// Largest total size of a request's headers, in bytes.
    #[arg(long, env = "HTTP_MAX_HEADER_BYTES", default_value_t = 32 * 1024, global = true)]
    pub http_max_header_bytes: usize,

    /// Most connections served at once; past them a few more get 503 (the probes still
    /// answer) and the rest are closed.
    #[arg(
        long,
        env = "HTTP_MAX_CONNECTIONS",
        default_value_t = 1024,
        global = true
    )]
    pub http_max_connections: usize,

    /// A connection must send a request's headers within this (idle keep-alive connections
    /// included), or it is closed.
    #[arg(long, env = "HTTP_HEADER_READ_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration, global = true)]
    pub http_header_read_timeout: Duration,

    /// Most requests answered at once (health probes and metrics aside); more get 503 with
    /// Retry-After.
    #[arg(long, env = "HTTP_MAX_IN_FLIGHT", default_value_t = 512, global = true)]
    pub http_max_in_flight: usize,

    /// Most bytes of request bodies held in memory at once; a body that does not fit gets
    /// 503 with Retry-After.
    #[arg(long, env = "HTTP_BODY_BUDGET_BYTES", default_value_t = 16 * 1024 * 1024, global = true)]
    pub http_body_budget_bytes: usize,

    /// A request still running after this is answered 503 and abandoned.
    #[arg(long, env = "REQUEST_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration, global = true)]
    pub request_timeout: Duration,

    /// On SIGTERM or Ctrl-C, requests in flight get this long to finish.
    #[arg(long, env = "SHUTDOWN_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration, global = true)]
    pub shutdown_timeout: Duration,

    /// Reverse proxies (addresses or networks, comma-separated) whose X-Forwarded-For is
    /// believed. Default: none, so the client address is the TCP peer.
    #[arg(long, env = "TRUSTED_PROXIES", value_delimiter = ',', value_parser = parse_network, global = true)]
    pub trusted_proxies: Vec<IpNet>,

    /// Allow TRUSTED_PROXIES to name networks wider than /8 (IPv4) or /7 (IPv6), which
    /// production otherwise refuses.
    #[arg(long, env = "TRUSTED_PROXIES_ALLOW_WIDE", default_value_t = false, value_parser = clap::builder::BoolishValueParser::new(), action = clap::ArgAction::Set, global = true)]
    pub trusted_proxies_allow_wide: bool,

    /// The header in which the trusted proxies name the client: `x-forwarded-for` or the
    /// standard `forwarded` (RFC 7239). The other one is ignored, since a client can send it.
    #[arg(
        long,
        env = "TRUSTED_PROXY_HEADER",
        value_enum,
        default_value = "x-forwarded-for",
        global = true
    )]
    pub trusted_proxy_header: ForwardedHeader,

    /// Send Strict-Transport-Security (set it when clients reach the service over HTTPS).
    #[arg(long, env = "HSTS", default_value_t = false, value_parser = clap::builder::BoolishValueParser::new(), action = clap::ArgAction::Set, global = true)]
    pub hsts: bool,
}

impl HttpConfig {
    pub fn connection_limits(&self) -> ConnectionLimits {
        ConnectionLimits {
            max_connections: self.http_max_connections,
            header_read_timeout: self.http_header_read_timeout,
        }
    }

    pub fn load_limits(&self) -> LoadLimits {
        LoadLimits {
            max_in_flight: self.http_max_in_flight,
            body_budget_bytes: self.http_body_budget_bytes,
        }
    }

    pub fn trusted_proxies(&self) -> TrustedProxies {
        TrustedProxies {
            networks: self.trusted_proxies.clone(),
            header: self.trusted_proxy_header,
        }
    }

    /// What production refuses: trusting so wide a network that any client could choose its
    /// own address.
    pub(super) fn production_findings(&self) -> Vec<String> {
        if self.trusted_proxies_allow_wide {
            return Vec::new();
        }
        self.trusted_proxies.iter().filter_map(too_wide).collect()
    }
}

fn too_wide(network: &IpNet) -> Option<String> {
    let narrowest = match network {
        IpNet::V4(_) => NARROWEST_IPV4_PREFIX,
        IpNet::V6(_) => NARROWEST_IPV6_PREFIX,
    };
    (network.prefix_len() < narrowest).then(|| {
        format!(
            "TRUSTED_PROXIES holds {network}, which trusts (nearly) every address: any client \
             could then choose its own address with X-Forwarded-For, for the rate limits and \
             the audit trail. Name your proxies' addresses or networks (at most /{NARROWEST_IPV4_PREFIX} \
             for IPv4, /{NARROWEST_IPV6_PREFIX} for IPv6), or set TRUSTED_PROXIES_ALLOW_WIDE=true"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_that_trust_everyone_are_found() {
        let net = |s: &str| s.parse::<IpNet>().unwrap();
        assert!(too_wide(&net("0.0.0.0/0")).is_some());
        assert!(too_wide(&net("::/0")).is_some());
        assert!(too_wide(&net("0.0.0.0/1")).is_some());
        assert!(too_wide(&net("10.0.0.0/8")).is_none());
        assert!(too_wide(&net("fc00::/7")).is_none());
        assert!(too_wide(&net("192.0.2.10/32")).is_none());
    }
}
