//! The WebAuthn ceremonies, as the passkey use cases need them; implemented in
//! `infrastructure::security::webauthn`.
//!
//! Options and responses travel as the JSON a browser reads and writes
//! (`PublicKeyCredential.parseCreationOptionsFromJSON` / `parseRequestOptionsFromJSON`, and
//! `credential.toJSON()`). A ceremony's state is an opaque string that the use case keeps on
//! the server (`PasskeyStore::save_ceremony`) and hands back to finish it. The same state
//! verifies the same response as often as it is handed over: using it once is the store's
//! job (`PasskeyStore::take_ceremony`), never this port's.

use std::time::Duration;

use serde_json::Value;

use crate::domain::{CredentialId, Passkey, UserId};

/// The account a passkey is registered for, as authenticators show it in their account
/// pickers.
#[derive(Debug, Clone, Copy)]
pub struct PasskeyAccount<'a> {
    /// Becomes the WebAuthn user handle, which a discoverable passkey returns at sign-in.
    pub id: UserId,
    /// The account's email.
    pub name: &'a str,
    /// The display name, or the email when there is none.
    pub display_name: &'a str,
}

/// A started ceremony.
#[derive(Debug, Clone)]
pub struct StartedCeremony {
    /// For the browser: `PublicKeyCredentialCreationOptionsJSON` or
    /// `PublicKeyCredentialRequestOptionsJSON`.
    pub options: Value,
    /// For the server only, until the finish.
    pub state: String,
}

/// A credential a finished registration made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredCredential {
    pub credential_id: CredentialId,
    /// What `Passkey::credential` stores.
    pub credential: String,
    pub sign_count: u32,
    pub backup_eligible: bool,
    pub backed_up: bool,
}

/// What an authentication response says of itself before it is verified: which credential
/// made it, and the user handle a discoverable passkey returns. Only to find the stored
/// passkey to verify it against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedCredential {
    pub credential_id: CredentialId,
    pub user_handle: Option<UserId>,
}

/// A verified authentication: what to record of it (`PasskeyStore::record_use`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedAssertion {
    /// The stored credential updated with this use.
    pub credential: String,
    pub sign_count: u32,
    pub backup_eligible: bool,
    pub backed_up: bool,
}

/// Why a ceremony was refused or failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasskeyFailure {
    /// The response is not a WebAuthn credential this ceremony can read.
    #[error("the response is not a WebAuthn credential of this ceremony")]
    Malformed,
    /// Made on a page whose origin is not one of the configured ones (a phishing page, or a
    /// frontend missing from the configuration).
    #[error("the credential was made for another origin")]
    WrongOrigin,
    /// Made for another relying party id.
    #[error("the credential was made for another relying party")]
    WrongRelyingParty,
    /// The authenticator did not verify its user (PIN, biometrics): a passkey must.
    #[error("the authenticator did not verify its user")]
    UserNotVerified,
    /// The authenticator reports that it did not keep a discoverable credential, which
    /// signing in without an email needs.
    #[error("the authenticator made no discoverable credential")]
    NotDiscoverable,
    /// The signature counter did not move past the stored one: a cloned authenticator, or an
    /// assertion used again.
    #[error("the signature counter did not move forward")]
    CounterWentBackwards,
    /// The authenticator reports another backup eligibility than the one registered.
    #[error("the credential's backup eligibility changed")]
    BackupEligibilityChanged,
    /// It does not verify otherwise: another challenge, another credential or user, a bad
    /// signature.
    #[error("the credential does not verify")]
    Invalid,
    /// A bug or corrupt stored data; the details are for the log.
    #[error("the ceremony failed: {0}")]
    Internal(String),
}

/// WebAuthn relying-party ceremonies. Every registration asks for user verification and a
/// discoverable (resident) credential; every authentication requires user verification.
pub trait PasskeyCeremonies: Send + Sync {
    /// How long the browser is given to answer; a ceremony's state should live as long.
    fn timeout(&self) -> Duration;

    /// Starts registering a passkey for `account`; the authenticator is asked not to make a
    /// second credential when it holds one of `existing` (the account's).
    fn start_registration(
        &self,
        account: PasskeyAccount<'_>,
        existing: &[CredentialId],
    ) -> Result<StartedCeremony, PasskeyFailure>;

    /// Verifies the browser's `navigator.credentials.create()` response against the state.
    fn finish_registration(
        &self,
        state: &str,
        response: &Value,
    ) -> Result<RegisteredCredential, PasskeyFailure>;

    /// Starts a sign-in with no account named: any discoverable passkey of this relying party
    /// may answer (the browser may offer it in autofill: conditional mediation).
    fn start_sign_in(&self) -> Result<StartedCeremony, PasskeyFailure>;

    /// Starts an authentication by one of `allowed` (an account's passkeys: a second factor,
    /// a step-up).
    fn start_authentication(
        &self,
        allowed: &[CredentialId],
    ) -> Result<StartedCeremony, PasskeyFailure>;

    /// Which credential made an authentication response, and the user handle it carries.
    fn claimed(&self, response: &Value) -> Result<ClaimedCredential, PasskeyFailure>;

    /// Verifies the browser's `navigator.credentials.get()` response against the state of a
    /// sign-in or an authentication and against `stored`, the passkey it claims to be (its
    /// counter and backup eligibility as stored now). A user handle in the response must be
    /// the passkey's owner.
    fn finish_authentication(
        &self,
        state: &str,
        response: &Value,
        stored: &Passkey,
    ) -> Result<VerifiedAssertion, PasskeyFailure>;
}
