//! Social sign-in (OpenID Connect): identities at providers linked to accounts, the sign-in
//! flows on their way through a provider, and the one-time codes a flow ends with. What a
//! provider is and how its tokens are checked is the application's `SocialProviders` port;
//! here are only the values and the store.

use std::fmt;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{Email, RepositoryError, SessionId, TokenHash, User, UserId, ValidationError};

/// A configured provider's id (`google`, `corp`): what the API and the configuration name it
/// by (`SOCIAL_PROVIDERS=google,corp`, `SOCIAL_CORP_ISSUER`). Lower-case ASCII letters,
/// digits and `_`, so it is also a part of an environment variable's name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProviderId(String);

impl ProviderId {
    /// Longer ids are rejected.
    pub const MAX_LEN: usize = 32;

    /// Lower-cases and checks an id.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let id = raw.trim().to_ascii_lowercase();
        let valid = (1..=Self::MAX_LEN).contains(&id.len())
            && id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            && id.bytes().next().is_some_and(|b| b.is_ascii_lowercase());
        if !valid {
            return Err(ValidationError::new(format!(
                "A provider id is a letter followed by at most {} letters, digits or _.",
                Self::MAX_LEN - 1
            )));
        }
        Ok(Self(id))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ProviderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Who a provider says the user is: its issuer and its subject identifier, both exact,
/// case-sensitive strings (OIDC Core §2: the pair is the only stable identifier; an email is
/// not). Never keyed on email.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdentityKey {
    issuer: String,
    subject: String,
}

impl IdentityKey {
    /// Longest issuer stored.
    pub const MAX_ISSUER_LEN: usize = 512;
    /// OIDC Core §2: a subject is at most 255 ASCII characters.
    pub const MAX_SUBJECT_LEN: usize = 255;

    /// The pair, as the provider's verified ID token gave it (never trimmed or folded).
    pub fn new(issuer: &str, subject: &str) -> Result<Self, ValidationError> {
        if issuer.is_empty() || issuer.len() > Self::MAX_ISSUER_LEN {
            return Err(ValidationError::new(format!(
                "An issuer is 1 to {} bytes long.",
                Self::MAX_ISSUER_LEN
            )));
        }
        if subject.is_empty()
            || subject.len() > Self::MAX_SUBJECT_LEN
            || !subject.bytes().all(|b| b.is_ascii_graphic() || b == b' ')
        {
            return Err(ValidationError::new(format!(
                "A subject identifier is 1 to {} ASCII characters.",
                Self::MAX_SUBJECT_LEN
            )));
        }
        Ok(Self {
            issuer: issuer.to_owned(),
            subject: subject.to_owned(),
        })
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// What uniqueness is kept on: SHA-256 over the issuer's length, the issuer and the
    /// subject (so no two pairs meet), lower-case hex. The same on every database, whatever
    /// its collation does to the strings.
    pub fn hash(&self) -> String {
        let mut digest = Sha256::new();
        digest.update((self.issuer.len() as u64).to_be_bytes());
        digest.update(self.issuer.as_bytes());
        digest.update(self.subject.as_bytes());
        digest
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// What a provider vouched for in an ID token whose signature, issuer, audience, expiry and
/// nonce checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedIdentity {
    pub provider: ProviderId,
    pub key: IdentityKey,
    /// The address the provider gave, if it gave a valid one.
    pub email: Option<Email>,
    /// Whether the provider says it verified that address (`email_verified`); `false`
    /// without an address.
    pub email_verified: bool,
    /// Whether the provider says the user passed more than one factor (`amr`).
    pub provider_mfa: bool,
}

/// An identity at a provider, linked to an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocialIdentity {
    pub id: Uuid,
    pub user_id: UserId,
    /// The configured provider it was linked through.
    pub provider: ProviderId,
    pub key: IdentityKey,
    /// The provider's address for it when it was linked, and whether the provider vouched
    /// for it.
    pub email: Option<Email>,
    pub email_verified: bool,
    pub linked_at: DateTime<Utc>,
}

impl SocialIdentity {
    /// `identity`, linked to `user` at `now` under a fresh id.
    pub fn link(user: UserId, identity: &VerifiedIdentity, now: DateTime<Utc>) -> Self {
        Self {
            id: Uuid::now_v7(),
            user_id: user,
            provider: identity.provider.clone(),
            key: identity.key.clone(),
            email: identity.email.clone(),
            email_verified: identity.email_verified && identity.email.is_some(),
            linked_at: now,
        }
    }
}

/// What linking an identity did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkOutcome {
    Linked,
    /// The (issuer, subject) pair is linked already, to this account or another: an identity
    /// belongs to one account only.
    IdentityTaken,
    /// The account has an identity through this provider already (it is unlinked by provider).
    ProviderTaken,
    /// The account does not exist (any more).
    UnknownUser,
}

/// What unlinking an identity did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnlinkOutcome {
    Unlinked,
    /// The account has no identity through this provider (or no longer exists).
    NotLinked,
    /// It is the account's last way to sign in (no other identity, no passkey, no password
    /// of its own): kept.
    LastMethod,
}

/// An unverified account that a new account replaces: refused by an account that, since it
/// was read, moved on (its credential version), proved its address, or became an
/// administrator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Replacing {
    pub user: UserId,
    pub credential_version: i64,
}

/// What creating an account with its identity did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateOutcome {
    Created,
    /// An account has the address (nothing was written).
    EmailTaken,
    /// The (issuer, subject) pair is linked already (nothing was written).
    IdentityTaken,
    /// The account to replace changed since it was read, or is gone (nothing was written).
    ReplacedChanged,
}

/// What a flow is for. A flow started by a signed-in session names it, to act on that
/// session's account only while the session is active (the service checks; the store drops
/// the flow when the session is deleted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowPurpose {
    /// Signing in (or up) with the identity.
    SignIn,
    /// Adding the identity to the account of this signed-in session.
    Link { user: UserId, session: SessionId },
    /// Proving again who the user of this session is, with an identity the account has
    /// (recent authentication, for an account that signs in only through providers).
    Reauthenticate { user: UserId, session: SessionId },
}

/// How a finished flow hands the sign-in to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Session cookies set on the redirect back (`SESSION_COOKIES=true`).
    Cookies,
    /// A one-time code in the redirect, which the client exchanges (`finishSocialSignIn`):
    /// never tokens in a URL.
    Code,
}

impl Delivery {
    /// The stable name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cookies => "cookies",
            Self::Code => "code",
        }
    }

    pub fn from_stored(name: &str) -> Option<Self> {
        match name {
            "cookies" => Some(Self::Cookies),
            "code" => Some(Self::Code),
            _ => None,
        }
    }
}

/// A redirect to a provider, kept on the server until the browser comes back: any instance
/// can finish it, once, before it expires, and only in the browser that started it.
#[derive(Clone, PartialEq, Eq)]
pub struct SocialFlow {
    /// The hash of the `state` sent to the provider.
    pub id: TokenHash,
    pub provider: ProviderId,
    pub purpose: FlowPurpose,
    /// The hash of the value in an HttpOnly cookie of the browser that started the flow.
    pub binding: TokenHash,
    /// The PKCE code verifier (RFC 7636, S256): the provider's code is worthless without it.
    pub pkce_verifier: String,
    /// The nonce the ID token must carry (OIDC Core §3.1.2.1).
    pub nonce: String,
    /// Where the browser is sent when the flow ends: checked against the allowed origins
    /// before the flow starts.
    pub redirect_to: String,
    pub delivery: Delivery,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

impl fmt::Debug for SocialFlow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SocialFlow")
            .field("id", &self.id)
            .field("provider", &self.provider)
            .field("purpose", &self.purpose)
            .field("pkce_verifier", &"<redacted>")
            .field("nonce", &"<redacted>")
            .field("redirect_to", &self.redirect_to)
            .field("delivery", &self.delivery)
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// What a one-time code of a finished flow stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocialCodeKind {
    /// A sign-in that a bearer client finishes (`finishSocialSignIn`).
    SignIn,
    /// An identity waiting to be linked to its account once the account proves itself (the
    /// confirmation link emailed to it).
    Link,
}

impl SocialCodeKind {
    /// The stable name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SignIn => "sign_in",
            Self::Link => "link",
        }
    }

    pub fn from_stored(name: &str) -> Option<Self> {
        match name {
            "sign_in" => Some(Self::SignIn),
            "link" => Some(Self::Link),
            _ => None,
        }
    }
}

/// A one-time code as stored: only its hash, the account, and the identity the flow verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocialCode {
    pub hash: TokenHash,
    pub kind: SocialCodeKind,
    pub user_id: UserId,
    pub identity: VerifiedIdentity,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// The identities linked to accounts.
#[async_trait]
pub trait SocialIdentityStore: Send + Sync {
    /// Links an identity to its account, unless its (issuer, subject) is linked anywhere
    /// already, or the account has an identity through the same provider.
    async fn link(&self, identity: &SocialIdentity) -> Result<LinkOutcome, RepositoryError>;
    /// The account's identities, oldest link first.
    async fn list_for_user(&self, user: UserId) -> Result<Vec<SocialIdentity>, RepositoryError>;
    /// The identity with this (issuer, subject), whichever account has it.
    async fn find(&self, key: &IdentityKey) -> Result<Option<SocialIdentity>, RepositoryError>;
    /// Removes the account's identity through `provider`; `false` if it has none.
    async fn unlink(&self, user: UserId, provider: &ProviderId) -> Result<bool, RepositoryError>;
    /// Removes the account's identity through `provider` unless it is the account's last way
    /// to sign in, counting its other identities, its passkeys and whether it has a password,
    /// in one transaction with the account locked: two unlinks at once cannot leave it with
    /// none.
    async fn unlink_unless_last(
        &self,
        user: UserId,
        provider: &ProviderId,
    ) -> Result<UnlinkOutcome, RepositoryError>;
    /// Creates `user` with `identity` linked to it, all or nothing. With `replacing`, first
    /// deletes that account (with its sessions and everything else of it) if it is still an
    /// unverified, non-administrator account at that credential version: a local account
    /// registered with someone else's address gives way to its provider-verified owner
    /// (pre-hijacking).
    async fn create_with_identity(
        &self,
        user: &User,
        identity: &SocialIdentity,
        replacing: Option<Replacing>,
    ) -> Result<CreateOutcome, RepositoryError>;
}

/// The state of social sign-ins in progress: flows and one-time codes, each used once.
#[async_trait]
pub trait SocialFlowStore: Send + Sync {
    /// Stores a new flow.
    async fn save_flow(&self, flow: &SocialFlow) -> Result<(), RepositoryError>;
    /// Uses a flow once: removes and returns it if it exists, is bound to `binding` and has
    /// not expired at `now`. Concurrent takes of one flow: exactly one gets it. A wrong
    /// binding leaves the flow to its own browser.
    async fn take_flow(
        &self,
        id: &TokenHash,
        binding: &TokenHash,
        now: DateTime<Utc>,
    ) -> Result<Option<SocialFlow>, RepositoryError>;
    /// How many flows have not expired at `now`: all of them, or those bound to `binding`.
    async fn live_flows(
        &self,
        binding: Option<&TokenHash>,
        now: DateTime<Utc>,
    ) -> Result<u64, RepositoryError>;
    /// Stores a new one-time code.
    async fn save_code(&self, code: &SocialCode) -> Result<(), RepositoryError>;
    /// Uses a code of `kind` once, as `take_flow` does.
    async fn take_code(
        &self,
        hash: &TokenHash,
        kind: SocialCodeKind,
        now: DateTime<Utc>,
    ) -> Result<Option<SocialCode>, RepositoryError>;
    /// Deletes expired flows and codes; returns how many.
    async fn delete_expired(&self, now: DateTime<Utc>) -> Result<u64, RepositoryError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_ids_are_lower_case_names_fit_for_a_variable() {
        assert_eq!(ProviderId::parse(" Corp_2 ").unwrap().as_str(), "corp_2");
        for bad in ["", "2corp", "my-corp", "corp.example", "é", &"a".repeat(33)] {
            assert!(ProviderId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn identity_keys_are_exact_and_their_hashes_keep_pairs_apart() {
        let a = IdentityKey::new("https://idp.example", "Abc").unwrap();
        let b = IdentityKey::new("https://idp.example", "abc").unwrap();
        assert_ne!(a.hash(), b.hash(), "subjects are case-sensitive");
        // Moving a character from the issuer to the subject makes another pair.
        let c = IdentityKey::new("https://idp.exampl", "eAbc").unwrap();
        assert_ne!(a.hash(), c.hash());
        assert_eq!(a.hash(), a.clone().hash());
        assert_eq!(a.hash().len(), 64);
        assert!(IdentityKey::new("", "x").is_err());
        assert!(IdentityKey::new("https://idp.example", "").is_err());
        assert!(IdentityKey::new("https://idp.example", &"x".repeat(256)).is_err());
        assert!(IdentityKey::new("https://idp.example", "tab\there").is_err());
    }

    #[test]
    fn a_flow_never_prints_its_secrets() {
        let flow = SocialFlow {
            id: TokenHash::from_stored("id".into()),
            provider: ProviderId::parse("corp").unwrap(),
            purpose: FlowPurpose::SignIn,
            binding: TokenHash::from_stored("binding".into()),
            pkce_verifier: "verifier-secret".into(),
            nonce: "nonce-secret".into(),
            redirect_to: "https://app.example/done".into(),
            delivery: Delivery::Code,
            created_at: Utc::now(),
            expires_at: Utc::now(),
        };
        let printed = format!("{flow:?}");
        assert!(!printed.contains("verifier-secret") && !printed.contains("nonce-secret"));
    }
}
