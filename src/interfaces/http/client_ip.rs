//! The client's address: the TCP peer, or — only behind a configured trusted proxy — the
//! address that proxy reports in `X-Forwarded-For`.

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;
use ipnet::IpNet;

/// Networks of the reverse proxies in front of the service. Empty by default: then
/// `X-Forwarded-For` is ignored, since anyone can send it.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(pub Vec<IpNet>);

impl TrustedProxies {
    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// Walks `X-Forwarded-For` from the right (the entries our proxies appended) and stops at
    /// the first address no trusted proxy owns: everything left of it is the client's word.
    pub fn client_ip(&self, peer: SocketAddr, headers: &HeaderMap) -> IpAddr {
        let mut client = peer.ip();
        if !self.trusts(client) {
            return client;
        }
        let forwarded = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect::<Vec<_>>();
        for hop in forwarded.iter().rev() {
            let Ok(ip) = hop.parse::<IpAddr>() else {
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

/// Parses `10.0.0.0/8` or a single address such as `127.0.0.1`.
pub fn parse_network(s: &str) -> Result<IpNet, String> {
    s.parse::<IpNet>()
        .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("`{s}` is not an IP address or network (e.g. 10.0.0.0/8)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", xff.parse().unwrap());
        headers
    }

    fn proxies(nets: &[&str]) -> TrustedProxies {
        TrustedProxies(nets.iter().map(|n| parse_network(n).unwrap()).collect())
    }

    #[test]
    fn without_trusted_proxies_the_header_is_ignored() {
        let peer: SocketAddr = "203.0.113.9:5000".parse().unwrap();
        let ip = TrustedProxies::default().client_ip(peer, &headers("198.51.100.1"));
        assert_eq!(ip, peer.ip());
    }

    #[test]
    fn behind_a_trusted_proxy_the_last_untrusted_hop_is_the_client() {
        let peer: SocketAddr = "10.0.0.5:5000".parse().unwrap();
        let trusted = proxies(&["10.0.0.0/8"]);
        // The client forged the first entry; our proxies appended the rest.
        let ip = trusted.client_ip(peer, &headers("1.2.3.4, 198.51.100.7, 10.0.0.2"));
        assert_eq!(ip, "198.51.100.7".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn a_request_from_an_untrusted_peer_cannot_claim_another_address() {
        let peer: SocketAddr = "198.51.100.7:5000".parse().unwrap();
        let ip = proxies(&["10.0.0.0/8"]).client_ip(peer, &headers("10.0.0.1"));
        assert_eq!(ip, peer.ip());
    }

    #[test]
    fn single_addresses_and_networks_parse() {
        assert!(parse_network("127.0.0.1").is_ok());
        assert!(parse_network("::1").is_ok());
        assert!(parse_network("10.0.0.0/8").is_ok());
        assert!(parse_network("nonsense").is_err());
    }
}
