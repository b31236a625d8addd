//! The user account and the values it is made of, each valid by construction.

use std::fmt;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::ValidationError;

/// A user's identifier: a UUIDv7, so new rows land at the end of indexes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(Uuid);

impl UserId {
    /// A fresh, time-ordered identifier.
    pub fn generate() -> Self {
        Self(Uuid::now_v7())
    }

    /// Wraps an identifier read from storage or a token.
    pub fn from_uuid(id: Uuid) -> Self {
        Self(id)
    }

    /// The underlying UUID.
    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// An email address, trimmed and lower-cased so that comparisons and the unique index
/// behave the same on every database.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    /// RFC 5321 limits a forward path to 254 characters.
    pub const MAX_LEN: usize = 254;

    /// Normalises and validates an address with the WHATWG rules browsers apply to
    /// `<input type="email">`, so what a form accepts the server accepts too.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let email = raw.trim().to_lowercase();
        if email.is_empty() {
            return Err(ValidationError::new("Enter an email address."));
        }
        if email.len() > Self::MAX_LEN {
            return Err(ValidationError::new(format!(
                "An email address can be at most {} characters long.",
                Self::MAX_LEN
            )));
        }
        let valid = email
            .split_once('@')
            .is_some_and(|(local, domain)| is_valid_local_part(local) && is_valid_domain(domain));
        if !valid {
            return Err(ValidationError::new(
                "Enter a valid email address, such as name@example.com.",
            ));
        }
        Ok(Self(email))
    }

    /// The normalised address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn is_valid_local_part(local: &str) -> bool {
    const SPECIALS: &str = ".!#$%&'*+/=?^_`{|}~-";
    (1..=64).contains(&local.len())
        && local
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || SPECIALS.contains(c))
}

fn is_valid_domain(domain: &str) -> bool {
    let labels: Vec<&str> = domain.split('.').collect();
    // A dotless domain is valid for WHATWG but never deliverable on the public internet.
    labels.len() >= 2
        && labels.iter().all(|label| {
            (1..=63).contains(&label.len())
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// A password that meets the policy of NIST SP 800-63B: long enough, bounded so hashing
/// cost stays predictable, and no composition rules. Never printed.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    /// Fewer characters than this is rejected.
    pub const MIN_CHARS: usize = 8;
    /// More characters than this is rejected.
    pub const MAX_CHARS: usize = 128;

    /// Applies the policy to a new password (registration, change, reset).
    pub fn new(raw: String) -> Result<Self, ValidationError> {
        let chars = raw.chars().count();
        if chars < Self::MIN_CHARS {
            return Err(ValidationError::new(format!(
                "Use at least {} characters.",
                Self::MIN_CHARS
            )));
        }
        if chars > Self::MAX_CHARS {
            return Err(ValidationError::new(format!(
                "Use at most {} characters.",
                Self::MAX_CHARS
            )));
        }
        Ok(Self(raw))
    }

    /// A password typed at sign-in, which is only checked against a stored hash. It skips the
    /// policy (older accounts may predate it) but keeps the upper bound, so no request can make
    /// the server hash megabytes; `None` means it cannot match any account.
    pub fn candidate(raw: String) -> Option<Self> {
        (raw.chars().count() <= Self::MAX_CHARS).then_some(Self(raw))
    }

    /// The secret itself, for the hasher only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// A stored password hash (a PHC string). Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash(String);

impl PasswordHash {
    /// Wraps a PHC string produced by a hasher or read from storage.
    pub fn new(phc: String) -> Self {
        Self(phc)
    }

    /// The PHC string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash(<redacted>)")
    }
}

/// The name a user chose to be shown by, trimmed; never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayName(String);

impl DisplayName {
    /// More characters than this is rejected.
    pub const MAX_CHARS: usize = 100;

    /// Normalises the name (NFC, trimmed); a blank name means "no display name". Names are
    /// shown to other people, so characters that change how the text around them reads are
    /// refused: control and format characters (bidirectional overrides such as U+202E,
    /// zero-width characters, U+FEFF) and line or paragraph separators. A name must show at
    /// least one letter, digit, punctuation mark or symbol.
    pub fn parse(raw: &str) -> Result<Option<Self>, ValidationError> {
        use unicode_general_category::{GeneralCategory as Category, get_general_category};
        use unicode_normalization::UnicodeNormalization;

        let name: String = raw.trim().nfc().collect();
        if name.is_empty() {
            return Ok(None);
        }
        if name.chars().count() > Self::MAX_CHARS {
            return Err(ValidationError::new(format!(
                "A display name can be at most {} characters long.",
                Self::MAX_CHARS
            )));
        }
        let category = |c: char| get_general_category(c);
        if name.chars().any(|c| {
            matches!(
                category(c),
                Category::Control
                    | Category::Format
                    | Category::LineSeparator
                    | Category::ParagraphSeparator
            )
        }) {
            return Err(ValidationError::new(
                "A display name cannot contain control, format (such as direction overrides or \
                 zero-width characters) or line-separator characters.",
            ));
        }
        let visible = |c: char| {
            !matches!(
                category(c),
                Category::SpaceSeparator
                    | Category::NonspacingMark
                    | Category::EnclosingMark
                    | Category::SpacingMark
                    | Category::Unassigned
                    | Category::PrivateUse
                    | Category::Surrogate
            )
        };
        if !name.chars().any(visible) {
            return Err(ValidationError::new(
                "A display name must contain a visible character.",
            ));
        }
        Ok(Some(Self(name)))
    }

    /// A name as it was stored, accepted as it is: names saved under earlier, looser rules
    /// must still read back (they are replaced when the user next changes theirs).
    pub fn from_stored(name: String) -> Self {
        Self(name)
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a user may do. New accounts are `User`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Role {
    #[default]
    User,
    Admin,
}

impl Role {
    /// The stable name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Admin => "admin",
        }
    }

    /// Reads a stored name; `None` for a name this version does not know.
    pub fn from_stored(name: &str) -> Option<Self> {
        match name {
            "user" => Some(Role::User),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// A registered account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub email: Email,
    pub display_name: Option<DisplayName>,
    pub role: Role,
    pub password_hash: PasswordHash,
    /// When the user proved they own the email; `None` until then.
    pub email_verified_at: Option<DateTime<Utc>>,
    /// Set while an administrator has suspended the account.
    pub suspension: Option<Suspension>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Moves on whenever the password, the email or a suspension changes (the stores do it
    /// in the same write); credentials issued for an earlier version are void.
    pub credential_version: i64,
    /// An address the user asked to move to, until the link sent there is used.
    pub pending_email: Option<Email>,
    /// Set while the account has a confirmed second factor: signing in then needs a code.
    pub mfa_enabled_at: Option<DateTime<Utc>>,
}

impl User {
    /// A new account, created at `now`.
    pub fn new(
        email: Email,
        display_name: Option<DisplayName>,
        role: Role,
        password_hash: PasswordHash,
        email_verified_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            id: UserId::generate(),
            email,
            display_name,
            role,
            password_hash,
            email_verified_at,
            suspension: None,
            created_at: now,
            updated_at: now,
            credential_version: 0,
            pending_email: None,
            mfa_enabled_at: None,
        }
    }

    /// An administrator who is not suspended: one who can administer right now.
    pub fn is_active_admin(&self) -> bool {
        self.role == Role::Admin && self.suspension.is_none()
    }
}

/// Why and since when an account is suspended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suspension {
    pub since: DateTime<Utc>,
    pub reason: SuspensionReason,
}

/// An administrator's note on a suspension, shown to administrators and to the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuspensionReason(String);

impl SuspensionReason {
    /// More characters than this is rejected.
    pub const MAX_CHARS: usize = 500;

    /// Trims the reason; it must say something.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let reason = raw.trim();
        if reason.is_empty() {
            return Err(ValidationError::new("Give a reason for the suspension."));
        }
        if reason.chars().count() > Self::MAX_CHARS {
            return Err(ValidationError::new(format!(
                "A reason can be at most {} characters long.",
                Self::MAX_CHARS
            )));
        }
        Ok(Self(reason.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a sign-up supplies; the password is hashed before it becomes a [`User`].
#[derive(Debug, Clone)]
pub struct NewUser {
    pub email: Email,
    pub password: Password,
    pub display_name: Option<DisplayName>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_is_trimmed_and_lower_cased() {
        let email = Email::parse("  Ada.Lovelace+Notes@Example.COM \n").unwrap();
        assert_eq!(email.as_str(), "ada.lovelace+notes@example.com");
    }

    #[test]
    fn email_rejects_what_a_browser_form_rejects() {
        for bad in [
            "",
            "   ",
            "plain",
            "@example.com",
            "name@",
            "name@localhost",
            "name@@example.com",
            "na me@example.com",
            "name@exa_mple.com",
            "name@-example.com",
            "name@example-.com",
            "name@example..com",
            "\"quoted\"@example.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn email_longer_than_254_characters_is_rejected() {
        let long = format!("{}@{}.com", "a".repeat(64), "b".repeat(190));
        assert!(long.len() > Email::MAX_LEN);
        assert!(Email::parse(&long).is_err());
    }

    #[test]
    fn password_length_counts_characters_not_bytes() {
        assert!(Password::new("short".into()).is_err());
        assert!(
            Password::new("ééééééé".into()).is_err(),
            "7 chars, 14 bytes"
        );
        assert!(Password::new("éééééééé".into()).is_ok(), "8 chars");
        assert!(Password::new("correct horse battery staple".into()).is_ok());
        assert!(Password::new("x".repeat(128)).is_ok());
        assert!(Password::new("x".repeat(129)).is_err());
    }

    #[test]
    fn password_allows_any_unicode_and_no_composition_rules() {
        assert!(Password::new("🔑🔑🔑🔑🔑🔑🔑🔑".into()).is_ok());
        assert!(Password::new("aaaaaaaa".into()).is_ok());
    }

    #[test]
    fn sign_in_candidate_skips_policy_but_keeps_the_bound() {
        assert!(Password::candidate("short".into()).is_some());
        assert!(Password::candidate("x".repeat(129)).is_none());
    }

    #[test]
    fn secrets_are_redacted_in_debug_output() {
        let password = Password::new("hunter2hunter2".into()).unwrap();
        assert!(!format!("{password:?}").contains("hunter2"));
        let hash = PasswordHash::new("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into());
        assert!(!format!("{hash:?}").contains("argon2"));
    }

    #[test]
    fn display_name_is_trimmed_and_blank_means_none() {
        assert_eq!(
            DisplayName::parse("  Ada  ").unwrap().unwrap().as_str(),
            "Ada"
        );
        assert_eq!(DisplayName::parse("   ").unwrap(), None);
        assert!(DisplayName::parse("a\u{0007}b").is_err());
        assert!(DisplayName::parse(&"n".repeat(101)).is_err());
    }

    #[test]
    fn display_names_cannot_reorder_or_hide_text_and_must_show_something() {
        for spoof in [
            "admin\u{202E}txt.exe", // right-to-left override
            "Ad\u{200B}a",          // zero-width space
            "Ada\u{2066}x\u{2069}", // isolates
            "\u{FEFF}Ada",          // byte-order mark
            "Ada\u{2028}Admin",     // line separator
            "Ada\u{2029}Admin",     // paragraph separator
            "Ada\u{200D}",          // zero-width joiner
        ] {
            assert!(DisplayName::parse(spoof).is_err(), "{spoof:?}");
        }
        for invisible in ["\u{0301}\u{0301}", "\u{3000}\u{0301}", "\u{E000}"] {
            assert!(DisplayName::parse(invisible).is_err(), "{invisible:?}");
        }
        assert_eq!(
            DisplayName::parse("Zoe\u{0301}").unwrap().unwrap().as_str(),
            "Zo\u{00E9}",
            "NFC: e and a combining acute become é"
        );
        assert_eq!(
            DisplayName::parse(&"é".repeat(100))
                .unwrap()
                .unwrap()
                .as_str()
                .chars()
                .count(),
            100,
            "length is counted in characters, not bytes"
        );
        for fine in ["Ada Lovelace", "李小龍", "Ada 🚀", "محمد"] {
            assert!(DisplayName::parse(fine).unwrap().is_some(), "{fine}");
        }
    }

    #[test]
    fn role_round_trips_through_its_stored_name() {
        for role in [Role::User, Role::Admin] {
            assert_eq!(Role::from_stored(role.as_str()), Some(role));
        }
        assert_eq!(Role::from_stored("superuser"), None);
    }
}
