//! The second factor: a TOTP authenticator (RFC 6238, what every authenticator app speaks)
//! and one-time recovery codes for when the device is lost.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use totp_rs::{Algorithm, TOTP};

use super::{TokenHash, UserId};

/// Seconds per TOTP time step: what authenticator apps use.
pub const TOTP_STEP_SECS: u64 = 30;
/// Steps either side of the current one whose codes are accepted, for clocks a little off.
pub const TOTP_SKEW_STEPS: i64 = 1;
/// Random bytes of a TOTP secret: 160 bits, as RFC 4226 recommends for HMAC-SHA1.
pub const TOTP_SECRET_BYTES: usize = 20;
/// Recovery codes given at once.
pub const RECOVERY_CODES: usize = 10;

/// An account's TOTP factor as stored: the secret sealed for the account, and the last time
/// step a code was accepted for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotpFactor {
    pub user_id: UserId,
    pub sealed_secret: String,
    pub created_at: DateTime<Utc>,
    /// `None` while the enrolment waits for its first code.
    pub confirmed_at: Option<DateTime<Utc>>,
    /// Codes of this step or earlier ones are refused: each code works once.
    pub last_step: i64,
}

/// A TOTP generator over a secret (six digits, SHA-1, 30-second steps: the defaults every
/// authenticator app assumes).
pub struct Totp(TOTP);

impl Totp {
    pub fn new(secret: Vec<u8>, issuer: &str, account: &str) -> Self {
        Self(TOTP::new_unchecked(
            Algorithm::SHA1,
            6,
            0,
            TOTP_STEP_SECS,
            secret,
            Some(issuer.to_owned()),
            account.to_owned(),
        ))
    }

    /// A fresh secret from the operating system's CSPRNG.
    pub fn generate_secret() -> Result<Vec<u8>, getrandom::Error> {
        let mut secret = vec![0u8; TOTP_SECRET_BYTES];
        getrandom::fill(&mut secret)?;
        Ok(secret)
    }

    /// The time step of `now`.
    pub fn step_at(now: DateTime<Utc>) -> i64 {
        now.timestamp().div_euclid(TOTP_STEP_SECS as i64)
    }

    /// The step within the allowed skew of `now` whose code `code` is, comparing in constant
    /// time and trying every step (so timing tells nothing of which matched); the latest one
    /// if several do.
    pub fn matching_step(&self, code: &str, now: DateTime<Utc>) -> Option<i64> {
        let code = code.trim();
        if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let current = Self::step_at(now);
        let mut matched = None;
        for step in current - TOTP_SKEW_STEPS..=current + TOTP_SKEW_STEPS {
            let Ok(seconds) = u64::try_from(step * TOTP_STEP_SECS as i64) else {
                continue;
            };
            let expected = self.0.generate(seconds);
            if bool::from(expected.as_bytes().ct_eq(code.as_bytes())) {
                matched = Some(step);
            }
        }
        matched
    }

    /// The secret as authenticator apps take it when typed in: base32.
    pub fn secret_base32(&self) -> String {
        self.0.get_secret_base32()
    }

    /// The `otpauth://totp/…` URI a QR code carries.
    pub fn otpauth_uri(&self) -> String {
        self.0.get_url()
    }
}

/// A recovery code: 80 random bits as four groups of four base32 characters
/// (`ABCD-EFGH-JKMN-PQRS`), easy to copy by hand; stored only as a hash.
pub struct RecoveryCode(String);

/// Crockford's base32 alphabet: no I, L, O or U to misread.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

impl RecoveryCode {
    /// A set of fresh codes.
    pub fn generate_set() -> Result<Vec<Self>, getrandom::Error> {
        (0..RECOVERY_CODES).map(|_| Self::generate()).collect()
    }

    fn generate() -> Result<Self, getrandom::Error> {
        let mut bytes = [0u8; 10];
        getrandom::fill(&mut bytes)?;
        // 80 bits, 5 at a time.
        let bits = bytes
            .iter()
            .fold(0u128, |acc, b| (acc << 8) | u128::from(*b));
        let chars: Vec<u8> = (0..16)
            .rev()
            .map(|i| ALPHABET[((bits >> (i * 5)) & 31) as usize])
            .collect();
        let groups: Vec<&str> = chars
            .chunks(4)
            .map(|g| std::str::from_utf8(g).unwrap_or_default())
            .collect();
        Ok(Self(groups.join("-")))
    }

    /// What the user was given, to show once.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// A code as typed: case, spaces and dashes do not matter, nor do the letters Crockford
    /// reads as digits (O for 0, I and L for 1).
    pub fn from_input(input: &str) -> Option<Self> {
        let normalised: String = input
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .map(|c| match c.to_ascii_uppercase() {
                'O' => '0',
                'I' | 'L' => '1',
                c => c,
            })
            .collect();
        let valid = normalised.len() == 16 && normalised.bytes().all(|b| ALPHABET.contains(&b));
        valid.then(|| {
            let groups: Vec<&str> = (0..4).map(|i| &normalised[i * 4..i * 4 + 4]).collect();
            Self(groups.join("-"))
        })
    }

    /// What is stored for `owner`: the code alone has 80 bits, so a fast hash suffices; the
    /// owner's id in it keeps equal codes of two accounts apart.
    pub fn hash(&self, owner: UserId) -> TokenHash {
        let mut digest = Sha256::new();
        digest.update(owner.as_uuid().as_bytes());
        digest.update(self.0.as_bytes());
        TokenHash::from_stored(
            digest
                .finalize()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
        )
    }
}

impl std::fmt::Debug for RecoveryCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RecoveryCode(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn the_rfc_6238_test_vector_matches_its_step_and_only_within_the_skew() {
        // RFC 6238 appendix B, SHA-1, T = 59 s: 94287082 (eight digits); six digits: 287082.
        let totp = Totp::new(
            b"12345678901234567890".to_vec(),
            "authgraph",
            "ada@example.com",
        );
        let at = Utc.timestamp_opt(59, 0).unwrap();
        assert_eq!(totp.matching_step("287082", at), Some(1));
        assert_eq!(
            totp.matching_step("287082", at + chrono::Duration::seconds(30)),
            Some(1),
            "one step late still counts"
        );
        assert_eq!(
            totp.matching_step("287082", at + chrono::Duration::seconds(90)),
            None
        );
        for garbage in ["", "28708", "2870822", "28708x", "٢٨٧٠٨٢"] {
            assert_eq!(totp.matching_step(garbage, at), None, "{garbage}");
        }
    }

    #[test]
    fn recovery_codes_carry_80_bits_and_read_back_however_typed() {
        let codes = RecoveryCode::generate_set().unwrap();
        assert_eq!(codes.len(), RECOVERY_CODES);
        let code = &codes[0];
        assert_eq!(code.expose().len(), 19);
        let owner = UserId::generate();
        let typed = code.expose().to_lowercase().replace('-', " ");
        let read = RecoveryCode::from_input(&typed).unwrap();
        assert_eq!(read.hash(owner), code.hash(owner));
        assert_ne!(read.hash(UserId::generate()), code.hash(owner));
        assert!(RecoveryCode::from_input("ABCD-EFGH").is_none());
        assert!(RecoveryCode::from_input("ABCD-EFGH-JKMN-PQRU").is_none());
        let distinct: std::collections::HashSet<_> = codes.iter().map(|c| c.expose()).collect();
        assert_eq!(distinct.len(), RECOVERY_CODES);
    }
}
