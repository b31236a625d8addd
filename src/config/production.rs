//! What production refuses to start with: settings that fail open, or that one plausible
//! mistake turns into a hole for every account. Each area names its own findings (the setting
//! and the fix); this asks them all, and holds the entropy estimate they share.

use super::Config;

/// The least estimated entropy of a JWT signing secret or an encryption key.
pub(super) const MIN_SECRET_BITS: f64 = 128.0;

pub(super) fn findings(config: &Config) -> Vec<String> {
    let mut found = config.tokens.production_findings();
    found.extend(config.mfa.production_findings());
    found.extend(config.http.production_findings());
    found.extend(config.links.production_findings());
    found.extend(config.mail.production_findings());
    found.extend(
        config
            .social
            .production_findings(config.tokens.api_url.as_deref()),
    );
    found.extend(
        config
            .webauthn
            .production_findings(&config.links.public_url),
    );
    found.extend(config.claims.production_findings());
    found
}

/// The secret's length times the Shannon entropy of its bytes: 32 × `a` has none, a random
/// base64 string about six bits a character. An estimate from above for anything not random,
/// which is what a floor needs.
pub(super) fn estimated_bits(secret: &[u8]) -> f64 {
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
