//! What production refuses to start with: settings that fail open, or that one plausible
//! mistake turns into a hole for every account. Each finding names the setting and the fix.

use ipnet::IpNet;
use secrecy::ExposeSecret;

use super::{Config, MailerKind};
use crate::infrastructure::security::EncryptionKey;

/// The shortest network prefixes `TRUSTED_PROXIES` may name without
/// `TRUSTED_PROXIES_ALLOW_WIDE=true`: 10.0.0.0/8 and the IPv6 unique-local range fc00::/7 are
/// the widest private networks a proxy lives in.
const NARROWEST_IPV4_PREFIX: u8 = 8;
const NARROWEST_IPV6_PREFIX: u8 = 7;

/// The least estimated entropy of a JWT signing secret or an encryption key.
const MIN_SECRET_BITS: f64 = 128.0;

pub(super) fn findings(config: &Config) -> Vec<String> {
    let mut found = Vec::new();
    if let Some(secret) = &config.jwt_secret {
        found.extend(weak_secret("JWT_SECRET", secret.expose_secret()));
    }
    for (i, secret) in config.jwt_previous_secrets.iter().enumerate() {
        let name = format!("JWT_PREVIOUS_SECRETS (entry {})", i + 1);
        found.extend(weak_secret(&name, secret.expose_secret()));
    }
    // Only the current key: a previous one must still open what it sealed, weak or not, and
    // a malformed key is refused in every mode where the keys are read.
    if let Some(key) = &config.mfa_encryption_key {
        found.extend(weak_key("MFA_ENCRYPTION_KEY", key.expose_secret()));
    }
    if !config.trusted_proxies_allow_wide {
        found.extend(config.trusted_proxies.iter().filter_map(too_wide));
    }
    found.extend(public_url(&config.public_url));
    if let Some(url) = &config.smtp_url
        && config.mailer != Some(MailerKind::Log)
        && !config.smtp_allow_plaintext
        && !smtp_uses_tls(url.expose_secret())
    {
        found.push(
            "SMTP_URL sends mail (and the SMTP password) without TLS: use `smtps://…:465` or \
             `smtp://…:587?tls=required`, or set SMTP_ALLOW_PLAINTEXT=true for a relay on a \
             trusted network"
                .into(),
        );
    }
    found
}

fn weak_secret(name: &str, secret: &str) -> Option<String> {
    let bytes = secret.len();
    let bits = estimated_bits(secret.as_bytes());
    (bytes < crate::infrastructure::security::JWT_SECRET_MIN_BYTES || bits < MIN_SECRET_BITS).then(
        || {
            format!(
                "{name} is {bytes} bytes with about {bits:.0} bits of entropy; a signing secret \
                 needs at least 32 bytes and {MIN_SECRET_BITS:.0} bits: generate one with \
                 `openssl rand -base64 48`"
            )
        },
    )
}

/// A well-formed encryption key whose bytes are far from random (zeros, a repeated word).
fn weak_key(name: &str, key: &str) -> Option<String> {
    let key = EncryptionKey::parse(key).ok()?;
    let bits = estimated_bits(key.bytes());
    (bits < MIN_SECRET_BITS).then(|| {
        format!(
            "{name} has about {bits:.0} bits of entropy; an encryption key must be 32 random \
             bytes: generate one with `openssl rand -base64 32` (and move the old one to \
             MFA_PREVIOUS_ENCRYPTION_KEYS)"
        )
    })
}

/// The secret's length times the Shannon entropy of its bytes: 32 × `a` has none, a random
/// base64 string about six bits a character. An estimate from above for anything not random,
/// which is what a floor needs.
fn estimated_bits(secret: &[u8]) -> f64 {
    let mut counts = [0usize; 256];
    for byte in secret {
        counts[usize::from(*byte)] += 1;
    }
    let n = secret.len() as f64;
    let per_byte: f64 = counts
        .iter()
        .filter(|c| **c > 0)
        .map(|c| {
            let p = *c as f64 / n;
            // Not `-p * p.log2()`: a single repeated byte would say "-0 bits".
            p * (1.0 / p).log2()
        })
        .sum();
    per_byte * n
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

fn public_url(url: &str) -> Option<String> {
    let Some(rest) = url.strip_prefix("https://") else {
        return Some(format!(
            "PUBLIC_URL is `{url}`: links in emails would travel in clear; use the frontend's \
             https:// address"
        ));
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    }
    .to_ascii_lowercase();
    let local = host.is_empty()
        || host == "localhost"
        || host.ends_with(".localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback() || ip.is_unspecified());
    local.then(|| {
        format!(
            "PUBLIC_URL is `{url}`, which no user can reach: links in emails would lead \
             nowhere; use the frontend's public https:// address"
        )
    })
}

/// Whether lettre will use TLS for this URL: implicit TLS (`smtps://`) or required STARTTLS.
fn smtp_uses_tls(url: &str) -> bool {
    url.starts_with("smtps://") || url.contains("tls=required")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_need_length_and_entropy() {
        let said = weak_secret("S", &"a".repeat(64)).unwrap();
        assert!(said.contains("about 0 bits"), "{said}");
        assert!(
            weak_secret("S", &"abcd".repeat(12)).is_some(),
            "2 bits a byte"
        );
        assert!(weak_secret("S", "short but random: 9f$Kq!").is_some());
        assert!(
            weak_secret(
                "S",
                "pYyU3mZ0c7mNnY5wZ3Nw2hQ0zvJc5F0b6wqQm1o4J9k5TqW8nVbR2xXl3sA7eD1g"
            )
            .is_none()
        );
        assert!(weak_secret("S", "test-secret-that-is-long-enough-for-hs256!").is_none());
    }

    #[test]
    fn encryption_keys_need_entropy() {
        use base64::Engine;
        let encode = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
        assert!(weak_key("K", &encode(&[0; 32])).is_some());
        assert!(weak_key("K", &encode(b"passwordpasswordpasswordpassword")).is_some());
        for _ in 0..1000 {
            let random = EncryptionKey::generate_text().unwrap();
            assert!(weak_key("K", &random).is_none(), "{random}");
        }
        assert!(weak_key("K", "malformed: refused elsewhere").is_none());
    }

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

    #[test]
    fn public_urls_must_be_https_and_public() {
        for bad in [
            "http://app.example.com",
            "https://localhost:3000",
            "https://127.0.0.1/",
            "https://[::1]:8443",
            "https://app.localhost",
            "https://",
        ] {
            assert!(public_url(bad).is_some(), "{bad}");
        }
        assert!(public_url("https://app.example.com/auth").is_none());
        assert!(public_url("https://app.example.com:8443").is_none());
    }

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
