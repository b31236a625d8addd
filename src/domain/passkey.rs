//! Passkeys: WebAuthn credentials an account signs in with, uses as its second factor or
//! proves itself again with, and the server-side state of the ceremonies that register and
//! use them.
//!
//! The credential and the ceremony state are what the WebAuthn library makes of them; here
//! they are opaque strings, stored and handed back as they are.

use std::fmt;

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{RepositoryError, SessionId, TokenHash, UserId, ValidationError};

/// A passkey's identifier in this service (not the authenticator's credential id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PasskeyId(Uuid);

impl PasskeyId {
    /// A fresh, time-ordered identifier.
    pub fn generate() -> Self {
        Self(Uuid::now_v7())
    }

    /// Wraps an identifier read from storage or a client.
    pub fn from_uuid(id: Uuid) -> Self {
        Self(id)
    }

    /// The underlying UUID.
    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl fmt::Display for PasskeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The id an authenticator gave a credential: 16 to 1023 bytes (WebAuthn §5.1 "credential
/// ID"; fewer than 16 bytes cannot carry the 100 bits of entropy it asks for).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct CredentialId(Vec<u8>);

impl CredentialId {
    /// The longest credential id WebAuthn allows.
    pub const MAX_BYTES: usize = 1023;
    /// The shortest one accepted.
    pub const MIN_BYTES: usize = 16;

    /// A credential id as an authenticator returned it.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, ValidationError> {
        if !(Self::MIN_BYTES..=Self::MAX_BYTES).contains(&bytes.len()) {
            return Err(ValidationError::new(format!(
                "A credential id has {} to {} bytes.",
                Self::MIN_BYTES,
                Self::MAX_BYTES
            )));
        }
        Ok(Self(bytes))
    }

    /// A credential id in base64url without padding, as WebAuthn's JSON carries it.
    pub fn parse(encoded: &str) -> Result<Self, ValidationError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(encoded)
            .map_err(|_| ValidationError::new("A credential id is base64url without padding."))?;
        Self::from_bytes(bytes)
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Base64url without padding: what is stored and shown.
    pub fn encoded(&self) -> String {
        URL_SAFE_NO_PAD.encode(&self.0)
    }

    /// What the unique index holds: SHA-256 of the raw id, lower-case hex. An index on the
    /// id itself would outgrow MariaDB's key length.
    pub fn lookup_key(&self) -> String {
        Sha256::digest(&self.0)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

impl fmt::Debug for CredentialId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CredentialId({})", self.encoded())
    }
}

/// The name a user gave a passkey ("Work laptop"), trimmed and NFC-normalised. It appears in
/// emails about the passkey, so characters that change how the text around them reads are
/// refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyName(String);

impl PasskeyName {
    /// More characters than this is rejected.
    pub const MAX_CHARS: usize = 64;

    /// A name as typed; blank is refused.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        use unicode_general_category::{GeneralCategory as Category, get_general_category};
        use unicode_normalization::UnicodeNormalization;

        let name: String = raw.trim().nfc().collect();
        if name.is_empty() {
            return Err(ValidationError::new("A passkey needs a name."));
        }
        if name.chars().count() > Self::MAX_CHARS {
            return Err(ValidationError::new(format!(
                "A passkey name can be at most {} characters long.",
                Self::MAX_CHARS
            )));
        }
        if name.chars().any(|c| {
            matches!(
                get_general_category(c),
                Category::Control
                    | Category::Format
                    | Category::LineSeparator
                    | Category::ParagraphSeparator
            )
        }) {
            return Err(ValidationError::new(
                "A passkey name cannot contain control, format (such as direction overrides or \
                 zero-width characters) or line-separator characters.",
            ));
        }
        Ok(Self(name))
    }

    /// A name as it was stored.
    pub fn from_stored(name: String) -> Self {
        Self(name)
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A passkey as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Passkey {
    pub id: PasskeyId,
    pub user_id: UserId,
    pub credential_id: CredentialId,
    /// The credential as the WebAuthn adapter serialised it (public key and flags): opaque
    /// here, handed back to the adapter to verify an assertion.
    pub credential: String,
    pub name: PasskeyName,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    /// The authenticator's signature counter at the last use: an assertion must carry a
    /// higher one, unless the authenticator keeps none (then it stays 0).
    pub sign_count: u32,
    /// Whether the credential may be synced to other devices. An authenticator reports it
    /// with every use and it never changes: a credential whose report flips is refused.
    pub backup_eligible: bool,
    /// Whether it is synced (backed up), as of the last use.
    pub backed_up: bool,
}

/// A verified use of a passkey, to record.
#[derive(Debug, Clone)]
pub struct PasskeyUse<'a> {
    pub passkey: PasskeyId,
    pub user: UserId,
    /// The credential updated by the use (the adapter's serialisation).
    pub credential: &'a str,
    /// The counter the assertion carried.
    pub sign_count: u32,
    /// The backup eligibility the assertion reported: it must be the stored one.
    pub backup_eligible: bool,
    pub backed_up: bool,
    pub at: DateTime<Utc>,
}

/// Identifies a ceremony; the client finishes it with this (`challengeId`). Random, so
/// knowing one ceremony tells nothing of another's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CeremonyId(Uuid);

impl CeremonyId {
    /// A fresh identifier: 122 random bits from the operating system's CSPRNG.
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes)?;
        Ok(Self(uuid::Builder::from_random_bytes(bytes).into_uuid()))
    }

    /// Wraps an identifier read from storage or a client.
    pub fn from_uuid(id: Uuid) -> Self {
        Self(id)
    }

    /// The underlying UUID.
    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl fmt::Display for CeremonyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// What a ceremony is for: its state is finished only by the same use case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CeremonyPurpose {
    /// Enrolling a new passkey (signed in).
    Registration,
    /// Signing in with a passkey, without an email.
    SignIn,
    /// A passkey as the second factor of a sign-in that proved a password.
    Mfa,
    /// A signed-in session proving its user again (step-up).
    Reauthentication,
}

impl CeremonyPurpose {
    /// Every purpose.
    pub const ALL: [Self; 4] = [
        Self::Registration,
        Self::SignIn,
        Self::Mfa,
        Self::Reauthentication,
    ];

    /// The stable name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Registration => "registration",
            Self::SignIn => "sign_in",
            Self::Mfa => "mfa",
            Self::Reauthentication => "reauthentication",
        }
    }

    /// The purpose of a stored name.
    pub fn from_stored(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == name)
    }
}

/// What a ceremony is bound to: only the same session (or the same MFA ticket) finishes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CeremonyBinding {
    /// A sign-in: nothing to bind to before the passkey says who it is.
    Unbound,
    /// The signed-in session that started it (registration, step-up).
    Session(SessionId),
    /// The MFA ticket (its hash) of the sign-in that started it.
    Ticket(TokenHash),
}

impl CeremonyBinding {
    /// The stored form: `session:<id>`, `ticket:<hash>`, or none.
    pub fn to_stored(&self) -> Option<String> {
        match self {
            Self::Unbound => None,
            Self::Session(id) => Some(format!("session:{id}")),
            Self::Ticket(hash) => Some(format!("ticket:{}", hash.as_str())),
        }
    }

    /// The binding of a stored form, if it is one.
    pub fn from_stored(stored: Option<&str>) -> Option<Self> {
        let Some(stored) = stored else {
            return Some(Self::Unbound);
        };
        if let Some(id) = stored.strip_prefix("session:") {
            return Uuid::parse_str(id)
                .ok()
                .map(|id| Self::Session(SessionId::from_uuid(id)));
        }
        stored
            .strip_prefix("ticket:")
            .map(|hash| Self::Ticket(TokenHash::from_stored(hash.to_owned())))
    }
}

/// A ceremony between its start and its finish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ceremony {
    pub id: CeremonyId,
    pub purpose: CeremonyPurpose,
    /// The account, when known at the start (every purpose but a sign-in).
    pub user_id: Option<UserId>,
    pub binding: CeremonyBinding,
    /// The WebAuthn adapter's state (the challenge and what it checks against): opaque here.
    /// It verifies the same response as often as it is handed over, so it must be used once.
    pub state: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// What removing a passkey did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasskeyRemoval {
    Removed,
    /// The account has no passkey with that id.
    NotFound,
    /// Refused: it is the account's last passkey, and the caller asked to keep one.
    LastPasskey,
}

/// An account's passkeys and the ceremonies that register and use them. Adding or removing a
/// passkey moves the account's credential version on, as any change of its factors does, so
/// links and MFA tickets issued before die.
#[async_trait]
pub trait PasskeyStore: Send + Sync {
    /// Adds a passkey; `Conflict`, storing nothing, when its credential id is registered
    /// already, to this account or to any other.
    async fn add(&self, passkey: &Passkey) -> Result<(), RepositoryError>;
    /// The account's passkeys, oldest first.
    async fn list(&self, user: UserId) -> Result<Vec<Passkey>, RepositoryError>;
    /// The passkey with this credential id, whoever it belongs to.
    async fn find_by_credential(
        &self,
        credential: &CredentialId,
    ) -> Result<Option<Passkey>, RepositoryError>;
    /// Renames the account's passkey; `false` if the account has no passkey with that id.
    async fn rename(
        &self,
        user: UserId,
        id: PasskeyId,
        name: &PasskeyName,
    ) -> Result<bool, RepositoryError>;
    /// Removes the account's passkey, unless `keep_last` and it is the account's last one.
    /// Concurrent removals of an account's last two passkeys with `keep_last`: one succeeds.
    async fn remove(
        &self,
        user: UserId,
        id: PasskeyId,
        keep_last: bool,
    ) -> Result<PasskeyRemoval, RepositoryError>;
    /// Removes every passkey of the account; returns how many.
    async fn remove_all(&self, user: UserId) -> Result<u64, RepositoryError>;
    /// Records a verified use, if the passkey is still the account's, its stored backup
    /// eligibility is the reported one, and the counter moves forward (or stays 0 for an
    /// authenticator that keeps none). `false`, changing nothing, otherwise: a counter that
    /// does not move forward is a second use of the same assertion or a cloned authenticator.
    async fn record_use(&self, used: &PasskeyUse<'_>) -> Result<bool, RepositoryError>;
    /// Stores a ceremony's state.
    async fn save_ceremony(&self, ceremony: &Ceremony) -> Result<(), RepositoryError>;
    /// Uses a ceremony once: if it exists for this purpose and binding and has not expired,
    /// deletes it and returns it. One conditional delete decides, so of concurrent takes of
    /// one ceremony (on any number of instances) exactly one gets it.
    async fn take_ceremony(
        &self,
        id: CeremonyId,
        purpose: CeremonyPurpose,
        binding: &CeremonyBinding,
        now: DateTime<Utc>,
    ) -> Result<Option<Ceremony>, RepositoryError>;
    /// Deletes the ceremonies that expired; returns how many.
    async fn delete_expired_ceremonies(&self, now: DateTime<Utc>) -> Result<u64, RepositoryError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_ids_read_back_from_base64url_within_webauthns_bounds() {
        let id = CredentialId::from_bytes((0u8..32).collect()).unwrap();
        let encoded = id.encoded();
        assert!(!encoded.contains('=') && !encoded.contains('+') && !encoded.contains('/'));
        assert_eq!(CredentialId::parse(&encoded).unwrap(), id);
        assert_eq!(id.lookup_key().len(), 64);
        assert_ne!(
            id.lookup_key(),
            CredentialId::from_bytes((1u8..33).collect())
                .unwrap()
                .lookup_key()
        );

        assert!(CredentialId::from_bytes(vec![7; 15]).is_err());
        assert!(CredentialId::from_bytes(vec![7; 1023]).is_ok());
        assert!(CredentialId::from_bytes(vec![7; 1024]).is_err());
        assert!(CredentialId::parse("not base64url!").is_err());
        assert!(
            CredentialId::parse(&format!("{encoded}==")).is_err(),
            "no padding"
        );
        assert_eq!(
            CredentialId::from_bytes(vec![0xff; 1023])
                .unwrap()
                .encoded()
                .len(),
            1364,
            "what the column must hold"
        );
    }

    #[test]
    fn passkey_names_are_trimmed_bounded_and_cannot_reorder_text() {
        assert_eq!(
            PasskeyName::parse("  Work laptop ").unwrap().as_str(),
            "Work laptop"
        );
        assert_eq!(
            PasskeyName::parse("Zoe\u{0301}'s phone").unwrap().as_str(),
            "Zo\u{00E9}'s phone"
        );
        assert!(PasskeyName::parse("   ").is_err());
        assert!(PasskeyName::parse(&"é".repeat(64)).is_ok());
        assert!(PasskeyName::parse(&"é".repeat(65)).is_err());
        for spoof in ["key\u{202E}txt", "a\u{200B}b", "a\u{2028}b", "a\u{0007}b"] {
            assert!(PasskeyName::parse(spoof).is_err(), "{spoof:?}");
        }
    }

    #[test]
    fn ceremony_purposes_and_bindings_read_back_from_storage() {
        for purpose in CeremonyPurpose::ALL {
            assert_eq!(
                CeremonyPurpose::from_stored(purpose.as_str()),
                Some(purpose)
            );
        }
        assert_eq!(CeremonyPurpose::from_stored("other"), None);

        let hash = TokenHash::from_stored("ab".repeat(32));
        for binding in [
            CeremonyBinding::Unbound,
            CeremonyBinding::Session(SessionId::generate()),
            CeremonyBinding::Ticket(hash),
        ] {
            let stored = binding.to_stored();
            assert!(stored.as_ref().is_none_or(|s| s.len() <= 100));
            assert_eq!(
                CeremonyBinding::from_stored(stored.as_deref()),
                Some(binding)
            );
        }
        assert_eq!(CeremonyBinding::from_stored(Some("session:nope")), None);
        assert_eq!(CeremonyBinding::from_stored(Some("cookie:x")), None);
    }

    #[test]
    fn ceremony_ids_are_random() {
        let a = CeremonyId::generate().unwrap();
        let b = CeremonyId::generate().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.as_uuid().get_version_num(), 4);
    }
}
