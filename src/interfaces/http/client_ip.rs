//! The client's address: the TCP peer, or — only behind a configured trusted proxy — the
//! address that proxy reports in `X-Forwarded-For` (or, if configured, `Forwarded`).
//!
//! Addresses are normalised before anything compares them: an IPv4 client of a server
//! listening on `::` arrives as `::ffff:a.b.c.d` and is taken as `a.b.c.d`, and a hop written
//! with its port (`a.b.c.d:port`, `[v6]:port`) is taken as its address. Otherwise a proxy
//! entry would never match and every client would share the proxy's address.

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;
use clap::ValueEnum;
use ipnet::IpNet;

/// Which header the trusted proxies fill in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum ForwardedHeader {
    /// `X-Forwarded-For: client, proxy1, proxy2`
    #[default]
    #[value(name = "x-forwarded-for")]
    XForwardedFor,
    /// `Forwarded: for=client, for="[2001:db8::1]:4711"` (RFC 7239)
    Forwarded,
}

/// The reverse proxies in front of the service. None by default: then the forwarding
/// headers are ignored, since anyone can send them.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies {
    pub networks: Vec<IpNet>,
    pub header: ForwardedHeader,
}

impl TrustedProxies {
    fn trusts(&self, ip: IpAddr) -> bool {
        self.networks.iter().any(|net| net.contains(&ip))
    }

    /// Walks the forwarding header from the right (the entries our proxies appended) and
    /// stops at the first address no trusted proxy owns: everything left of it is the
    /// client's word. A hop that is not an address (`unknown`, an obfuscated name) ends the
    /// walk at the last address known.
    pub fn client_ip(&self, peer: SocketAddr, headers: &HeaderMap) -> IpAddr {
        let mut client = peer.ip().to_canonical();
        if !self.trusts(client) {
            return client;
        }
        let name = match self.header {
            ForwardedHeader::XForwardedFor => "x-forwarded-for",
            ForwardedHeader::Forwarded => "forwarded",
        };
        let hops: Vec<&str> = headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .collect();
        for hop in hops.iter().rev() {
            let address = match self.header {
                ForwardedHeader::XForwardedFor => hop_address(hop),
                ForwardedHeader::Forwarded => forwarded_for(hop).and_then(hop_address),
            };
            let Some(ip) = address else {
                break;
            };
            client = ip;
            if !self.trusts(ip) {
                break;
            }
        }
        client
    }
}

/// An address as proxies write it: `a.b.c.d`, `a.b.c.d:port`, `v6`, `[v6]` or `[v6]:port`;
/// IPv4-mapped IPv6 taken as IPv4.
fn hop_address(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim().trim_matches('"');
    let ip = if let Some(bracketed) = hop.strip_prefix('[') {
        bracketed.split(']').next()?.parse().ok()?
    } else if let Ok(ip) = hop.parse::<IpAddr>() {
        ip
    } else {
        hop.parse::<SocketAddr>().ok()?.ip()
    };
    Some(ip.to_canonical())
}

/// The `for=` parameter of one `Forwarded` element.
fn forwarded_for(element: &str) -> Option<&str> {
    element.split(';').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case("for")
            .then_some(value.trim())
    })
}

/// Parses `10.0.0.0/8` or a single address such as `127.0.0.1`.
pub fn parse_network(s: &str) -> Result<IpNet, String> {
    s.parse::<IpNet>()
        .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("`{s}` is not an IP address or network (e.g. 10.0.0.0/8)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(name: &str, value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
        headers
    }

    fn xff(value: &str) -> HeaderMap {
        headers("x-forwarded-for", value)
    }

    fn proxies(nets: &[&str]) -> TrustedProxies {
        TrustedProxies {
            networks: nets.iter().map(|n| parse_network(n).unwrap()).collect(),
            header: ForwardedHeader::XForwardedFor,
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn without_trusted_proxies_the_header_is_ignored() {
        let peer: SocketAddr = "203.0.113.9:5000".parse().unwrap();
        let found = TrustedProxies::default().client_ip(peer, &xff("198.51.100.1"));
        assert_eq!(found, peer.ip());
    }

    #[test]
    fn behind_a_trusted_proxy_the_last_untrusted_hop_is_the_client() {
        let peer: SocketAddr = "10.0.0.5:5000".parse().unwrap();
        let trusted = proxies(&["10.0.0.0/8"]);
        // The client forged the first entry; our proxies appended the rest.
        let found = trusted.client_ip(peer, &xff("1.2.3.4, 198.51.100.7, 10.0.0.2"));
        assert_eq!(found, ip("198.51.100.7"));
    }

    #[test]
    fn a_request_from_an_untrusted_peer_cannot_claim_another_address() {
        let peer: SocketAddr = "198.51.100.7:5000".parse().unwrap();
        let found = proxies(&["10.0.0.0/8"]).client_ip(peer, &xff("10.0.0.1"));
        assert_eq!(found, peer.ip());
    }

    #[test]
    fn an_ipv4_proxy_seen_through_an_ipv6_socket_is_still_trusted() {
        let peer: SocketAddr = "[::ffff:10.0.0.5]:5000".parse().unwrap();
        let found = proxies(&["10.0.0.0/8"]).client_ip(peer, &xff("198.51.100.7"));
        assert_eq!(found, ip("198.51.100.7"));
        let untrusted: SocketAddr = "[::ffff:203.0.113.9]:5000".parse().unwrap();
        let found = proxies(&["10.0.0.0/8"]).client_ip(untrusted, &xff("1.2.3.4"));
        assert_eq!(found, ip("203.0.113.9"), "taken as the IPv4 address it is");
    }

    #[test]
    fn hops_with_ports_brackets_or_mapped_addresses_are_read_as_addresses() {
        let peer: SocketAddr = "10.0.0.5:5000".parse().unwrap();
        let trusted = proxies(&["10.0.0.0/8"]);
        for (hops, client) in [
            ("198.51.100.7:4711, 10.0.0.2:80", "198.51.100.7"),
            ("[2001:db8::7]:4711, 10.0.0.2", "2001:db8::7"),
            ("::ffff:198.51.100.7, [::ffff:10.0.0.2]", "198.51.100.7"),
            ("2001:db8::8", "2001:db8::8"),
        ] {
            assert_eq!(trusted.client_ip(peer, &xff(hops)), ip(client), "{hops}");
        }
    }

    #[test]
    fn the_standard_forwarded_header_when_configured_and_only_then() {
        let peer: SocketAddr = "10.0.0.5:5000".parse().unwrap();
        let forwarded = TrustedProxies {
            header: ForwardedHeader::Forwarded,
            ..proxies(&["10.0.0.0/8"])
        };
        let value =
            r#"for=1.2.3.4, for="[2001:db8::7]:4711";proto=https, for=10.0.0.2;by=10.0.0.5"#;
        assert_eq!(
            forwarded.client_ip(peer, &headers("forwarded", value)),
            ip("2001:db8::7")
        );
        // With Forwarded configured, a client's X-Forwarded-For means nothing, and the other
        // way round.
        assert_eq!(forwarded.client_ip(peer, &xff("1.2.3.4")), peer.ip());
        assert_eq!(
            proxies(&["10.0.0.0/8"]).client_ip(peer, &headers("forwarded", "for=1.2.3.4")),
            peer.ip()
        );
        // An obfuscated or unknown hop ends the walk.
        assert_eq!(
            forwarded.client_ip(peer, &headers("forwarded", "for=1.2.3.4, for=unknown")),
            peer.ip()
        );
    }

    #[test]
    fn single_addresses_and_networks_parse() {
        assert!(parse_network("127.0.0.1").is_ok());
        assert!(parse_network("::1").is_ok());
        assert!(parse_network("10.0.0.0/8").is_ok());
        assert!(parse_network("nonsense").is_err());
    }
}
