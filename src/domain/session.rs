//! A signed-in device: the server-side record behind a refresh token and the access tokens
//! issued from it. Revoking it ends them all at once.

use std::fmt;

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use super::UserId;

/// A session's identifier, carried inside access tokens as `sid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionId(Uuid);

impl SessionId {
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

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A session as stored: who, from where, and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id: SessionId,
    pub user_id: UserId,
    pub created_at: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
    /// The earlier of the idle deadline and the absolute one; moved forward on each refresh.
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    /// When and how the session last proved who its user is.
    pub authenticated: Authentication,
}

/// When and how a session last proved its user: at sign-in, or again later for a sensitive
/// change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Authentication {
    pub at: DateTime<Utc>,
    pub methods: AuthMethods,
}

/// The proofs of a sign-in, as access tokens name them (`amr`, RFC 8176).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethods {
    /// The password alone.
    Password,
    /// The password and a one-time code of a second factor (TOTP or a recovery code).
    PasswordAndOtp,
    /// An identity at an OpenID provider (social sign-in).
    Federated,
    /// An identity at an OpenID provider that asserted a second factor, trusted by the
    /// deployment (`SOCIAL_TRUST_PROVIDER_MFA`).
    FederatedWithMfa,
    /// A user-verified passkey alone: something the user has, unlocked by something they
    /// know or are, so two factors (`amr` `["webauthn"]`, as in RFC 8176's registry).
    Passkey,
    /// The password and a passkey as the second factor.
    PasswordAndPasskey,
}

impl AuthMethods {
    /// The `amr` claim.
    pub fn amr(self) -> &'static [&'static str] {
        match self {
            Self::Password => &["pwd"],
            Self::PasswordAndOtp => &["pwd", "otp"],
            Self::Federated => &["fed"],
            Self::FederatedWithMfa => &["fed", "mfa"],
            Self::Passkey => &["webauthn"],
            Self::PasswordAndPasskey => &["pwd", "webauthn"],
        }
    }

    /// The methods an `amr` claim names (what [`Self::amr`] writes); anything unknown counts
    /// as the weakest proof.
    pub fn from_amr<S: AsRef<str>>(amr: &[S]) -> Self {
        let has = |m: &str| amr.iter().any(|a| a.as_ref() == m);
        match (has("pwd"), has("otp"), has("webauthn")) {
            (_, true, _) => Self::PasswordAndOtp,
            (true, _, true) => Self::PasswordAndPasskey,
            (false, _, true) => Self::Passkey,
            _ if has("fed") && has("mfa") => Self::FederatedWithMfa,
            _ if has("fed") => Self::Federated,
            _ => Self::Password,
        }
    }

    /// The stable name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Password => "pwd",
            Self::PasswordAndOtp => "pwd otp",
            Self::Federated => "fed",
            Self::FederatedWithMfa => "fed mfa",
            Self::Passkey => "webauthn",
            Self::PasswordAndPasskey => "pwd webauthn",
        }
    }

    /// As stored; anything unknown counts as the weakest proof.
    pub fn from_stored(stored: Option<&str>) -> Self {
        match stored {
            Some("pwd otp") => Self::PasswordAndOtp,
            Some("fed") => Self::Federated,
            Some("fed mfa") => Self::FederatedWithMfa,
            Some("webauthn") => Self::Passkey,
            Some("pwd webauthn") => Self::PasswordAndPasskey,
            _ => Self::Password,
        }
    }

    pub fn includes_second_factor(self) -> bool {
        matches!(
            self,
            Self::PasswordAndOtp
                | Self::FederatedWithMfa
                | Self::Passkey
                | Self::PasswordAndPasskey
        )
    }
}

impl Authentication {
    /// Whether this proof is recent enough at `now` for a sensitive change, and strong enough
    /// for an account that has a second factor (which then must have been part of it).
    pub fn is_recent(&self, now: DateTime<Utc>, window: Duration, second_factor: bool) -> bool {
        now - self.at <= window && (!second_factor || self.methods.includes_second_factor())
    }
}

impl Session {
    /// Whether tokens of this session may still be used at `now`.
    pub fn is_active_at(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && now < self.expires_at
    }
}

/// Where a session's chain of refresh tokens stands. Every exchange of a current token moves
/// the chain to the next generation; the tokens of the generation before are superseded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefreshChain {
    /// The generation whose tokens are current.
    pub generation: i64,
    /// When the chain last moved on.
    pub rotated_at: DateTime<Utc>,
    /// Siblings of the current generation given out since then.
    pub siblings: u32,
}

/// What presenting a refresh token of some generation should do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshVerdict {
    /// A current token: exchange it, moving the chain on (and superseding its siblings).
    Rotate,
    /// The immediate predecessor, within the grace window after the chain moved on: two tabs
    /// or a retried request raced. It gets a sibling of the current token, up to a bound.
    Sibling,
    /// Anything older, or a predecessor after the window: the token was stolen and replayed,
    /// or its owner kept a copy the thief had rotated. The session ends.
    Reuse,
}

impl RefreshChain {
    /// Most siblings a generation gives out before a further double submit counts as reuse.
    pub const MAX_SIBLINGS: u32 = 3;

    /// The rule, for a token of `generation` presented at `now`. A thief's replay either
    /// comes after the window (the session ends) or within it, when the owner's next
    /// exchange supersedes the sibling the thief got: so the chain never forks.
    pub fn judge(&self, generation: i64, now: DateTime<Utc>, grace: Duration) -> RefreshVerdict {
        if generation == self.generation {
            RefreshVerdict::Rotate
        } else if generation == self.generation - 1 && now - self.rotated_at <= grace {
            RefreshVerdict::Sibling
        } else {
            RefreshVerdict::Reuse
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(expires_in: Duration, revoked: bool) -> Session {
        let now = Utc::now();
        Session {
            id: SessionId::generate(),
            user_id: UserId::generate(),
            created_at: now,
            last_used_at: now,
            expires_at: now + expires_in,
            revoked_at: revoked.then_some(now),
            user_agent: None,
            ip: None,
            authenticated: Authentication {
                at: now,
                methods: AuthMethods::Password,
            },
        }
    }

    #[test]
    fn a_recent_proof_must_be_recent_and_include_the_second_factor_an_account_has() {
        let now = Utc::now();
        let window = Duration::minutes(10);
        let password = Authentication {
            at: now - Duration::minutes(5),
            methods: AuthMethods::Password,
        };
        assert!(password.is_recent(now, window, false));
        assert!(!password.is_recent(now, window, true));
        let both = Authentication {
            methods: AuthMethods::PasswordAndOtp,
            ..password
        };
        assert!(both.is_recent(now, window, true));
        assert!(!both.is_recent(now + Duration::minutes(6), window, true));
    }

    #[test]
    fn methods_read_back_from_their_amr_and_their_stored_name() {
        for methods in [
            AuthMethods::Password,
            AuthMethods::PasswordAndOtp,
            AuthMethods::Passkey,
            AuthMethods::PasswordAndPasskey,
        ] {
            assert_eq!(AuthMethods::from_amr(methods.amr()), methods);
            assert_eq!(AuthMethods::from_stored(Some(methods.as_str())), methods);
            assert_eq!(
                methods.includes_second_factor(),
                methods != AuthMethods::Password
            );
        }
        assert_eq!(AuthMethods::from_amr::<&str>(&[]), AuthMethods::Password);
        assert_eq!(AuthMethods::from_stored(Some("?")), AuthMethods::Password);
    }

    #[test]
    fn a_session_is_active_until_it_expires_or_is_revoked() {
        let now = Utc::now();
        assert!(session(Duration::minutes(5), false).is_active_at(now));
        assert!(!session(Duration::minutes(-1), false).is_active_at(now));
        assert!(!session(Duration::minutes(5), true).is_active_at(now));
    }

    #[test]
    fn only_the_current_generation_rotates_and_only_its_predecessor_gets_a_brief_grace() {
        let now = Utc::now();
        let chain = RefreshChain {
            generation: 7,
            rotated_at: now,
            siblings: 0,
        };
        let grace = Duration::seconds(10);
        assert_eq!(chain.judge(7, now, grace), RefreshVerdict::Rotate);
        assert_eq!(chain.judge(6, now + grace, grace), RefreshVerdict::Sibling);
        assert_eq!(
            chain.judge(6, now + grace + Duration::milliseconds(1), grace),
            RefreshVerdict::Reuse,
            "a superseded token after the window"
        );
        assert_eq!(
            chain.judge(5, now, grace),
            RefreshVerdict::Reuse,
            "two generations old"
        );
        assert_eq!(
            chain.judge(8, now, grace),
            RefreshVerdict::Reuse,
            "from the future"
        );
    }
}
