//! The WebAuthn relying party, over webauthn-rs (pure RustCrypto).
//!
//! What this adapter adds to the library:
//! - Registrations ask for a discoverable (resident) credential: webauthn-rs's passkey
//!   registration discourages one, and signing in without an email needs it. A browser that
//!   reports it made none (`credProps.rk: false`) is refused.
//! - Every authentication, a sign-in or an account's second factor or step-up, is verified
//!   against the one stored passkey the response claims to be, with its counter and backup
//!   eligibility as stored now (not as they were when the ceremony started), and a backup
//!   eligibility that changes either way is refused.
//! - States serialise to strings for the database (`danger-allow-state-serialisation`). The
//!   library verifies the same state and response as often as it is asked: single use is
//!   the store's (`PasskeyStore::take_ceremony`), and the tests below show why.

use std::time::Duration;

use serde_json::{Value, json};
use uuid::Uuid;
use webauthn_rs::prelude::{
    Credential, DiscoverableAuthentication, Passkey as WebauthnPasskey, PasskeyRegistration,
    PublicKeyCredential, RegisterPublicKeyCredential, Url, WebauthnError,
};
use webauthn_rs::{Webauthn, WebauthnBuilder};

use crate::application::passkey_ports::{
    ClaimedCredential, PasskeyAccount, PasskeyCeremonies, PasskeyFailure, RegisteredCredential,
    StartedCeremony, VerifiedAssertion,
};
use crate::domain::{CredentialId, Passkey, UserId};

/// Who the relying party is and where its pages are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebauthnSettings {
    /// The relying party id: the domain passkeys are bound to (`example.com`, or `localhost`
    /// in development). Changing it later orphans every passkey registered before.
    pub rp_id: String,
    /// The name authenticators show.
    pub rp_name: String,
    /// The origins of the pages that run the ceremonies (`https://app.example.com`), each on
    /// the relying party id or a subdomain of it. `http://` only for `localhost`.
    pub origins: Vec<String>,
}

/// Why the settings cannot make a relying party.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebauthnSettingsError {
    #[error("WebAuthn needs at least one origin")]
    NoOrigin,
    #[error(
        "the WebAuthn relying party id must be a domain name (browsers refuse IP addresses), not {0:?}"
    )]
    RpIdNotADomain(String),
    #[error("{0:?} is not an origin (scheme://host[:port])")]
    NotAnOrigin(String),
    #[error("the origin {origin:?} is not on the relying party id {rp_id:?} or a subdomain of it")]
    OriginOutsideRpId { origin: String, rp_id: String },
    #[error(
        "the origin {0:?} is not a secure context: browsers allow WebAuthn on https:// and on http://localhost only"
    )]
    InsecureOrigin(String),
    #[error("webauthn-rs refused the settings")]
    Refused,
}

/// The relying party: starts and finishes ceremonies.
pub struct WebauthnCeremonies {
    webauthn: Webauthn,
}

impl WebauthnCeremonies {
    /// How long the browser is given for a ceremony: WebAuthn's recommended default, which
    /// leaves time to find a security key or type a PIN.
    pub const TIMEOUT: Duration = webauthn_rs::DEFAULT_AUTHENTICATOR_TIMEOUT;

    pub fn new(settings: &WebauthnSettings) -> Result<Self, WebauthnSettingsError> {
        let rp_id = settings.rp_id.trim().to_ascii_lowercase();
        // A domain name alone: what a URL with it as its host keeps as its domain.
        let as_host = Url::parse(&format!("https://{rp_id}/")).ok();
        if as_host.as_ref().and_then(Url::domain) != Some(rp_id.as_str()) {
            return Err(WebauthnSettingsError::RpIdNotADomain(rp_id));
        }
        let origins = settings
            .origins
            .iter()
            .map(|origin| checked_origin(origin, &rp_id))
            .collect::<Result<Vec<_>, _>>()?;
        let (first, others) = origins
            .split_first()
            .ok_or(WebauthnSettingsError::NoOrigin)?;
        let builder = others.iter().fold(
            WebauthnBuilder::new(&rp_id, first)
                .map_err(|_| WebauthnSettingsError::Refused)?
                .rp_name(&settings.rp_name)
                .timeout(Self::TIMEOUT),
            |builder, origin| builder.append_allowed_origin(origin),
        );
        let webauthn = builder
            .build()
            .map_err(|_| WebauthnSettingsError::Refused)?;
        Ok(Self { webauthn })
    }
}

/// An origin as the browser sends it: scheme, host and port, on the RP id or under it, in a
/// secure context.
fn checked_origin(origin: &str, rp_id: &str) -> Result<Url, WebauthnSettingsError> {
    let not_an_origin = || WebauthnSettingsError::NotAnOrigin(origin.to_owned());
    let url = Url::parse(origin.trim()).map_err(|_| not_an_origin())?;
    let Some(host) = url.domain() else {
        return Err(not_an_origin());
    };
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(not_an_origin());
    }
    let secure = url.scheme() == "https"
        || (url.scheme() == "http" && host.eq_ignore_ascii_case("localhost"));
    if !secure {
        return Err(WebauthnSettingsError::InsecureOrigin(origin.to_owned()));
    }
    if host != rp_id && !host.ends_with(&format!(".{rp_id}")) {
        return Err(WebauthnSettingsError::OriginOutsideRpId {
            origin: origin.to_owned(),
            rp_id: rp_id.to_owned(),
        });
    }
    Ok(url)
}

impl PasskeyCeremonies for WebauthnCeremonies {
    fn timeout(&self) -> Duration {
        Self::TIMEOUT
    }

    fn start_registration(
        &self,
        account: PasskeyAccount<'_>,
        existing: &[CredentialId],
    ) -> Result<StartedCeremony, PasskeyFailure> {
        let exclude = existing.iter().map(|id| id.as_bytes().to_vec()).collect();
        let (challenge, state) = self
            .webauthn
            .start_passkey_registration(
                account.id.as_uuid(),
                account.name,
                account.display_name,
                Some(exclude),
            )
            .map_err(internal)?;
        // Discoverable, so the passkey can sign in with no email typed (and be offered in
        // autofill). WebAuthn gives the server no proof of what the authenticator did; the
        // browser's `credProps` report is checked at the finish.
        let mut options = to_json(&challenge.public_key)?;
        let selection = options
            .get_mut("authenticatorSelection")
            .and_then(Value::as_object_mut)
            .ok_or_else(|| PasskeyFailure::Internal("no authenticator selection".into()))?;
        selection.insert("residentKey".into(), json!("required"));
        selection.insert("requireResidentKey".into(), json!(true));
        Ok(StartedCeremony {
            options,
            state: serde_json::to_string(&state).map_err(internal)?,
        })
    }

    fn finish_registration(
        &self,
        state: &str,
        response: &Value,
    ) -> Result<RegisteredCredential, PasskeyFailure> {
        let state: PasskeyRegistration = from_state(state)?;
        let response: RegisterPublicKeyCredential =
            serde_json::from_value(response.clone()).map_err(|_| PasskeyFailure::Malformed)?;
        let passkey = self
            .webauthn
            .finish_passkey_registration(&response, &state)
            .map_err(refusal)?;
        if response.extensions.cred_props.and_then(|p| p.rk) == Some(false) {
            return Err(PasskeyFailure::NotDiscoverable);
        }
        let credential = serde_json::to_string(&passkey).map_err(internal)?;
        let credential_id = CredentialId::from_bytes(passkey.cred_id().to_vec())
            .map_err(|_| PasskeyFailure::Malformed)?;
        let internals = Credential::from(passkey);
        Ok(RegisteredCredential {
            credential_id,
            credential,
            sign_count: internals.counter,
            backup_eligible: internals.backup_eligible,
            backed_up: internals.backup_state,
        })
    }

    fn start_sign_in(&self) -> Result<StartedCeremony, PasskeyFailure> {
        let (challenge, state) = self
            .webauthn
            .start_discoverable_authentication()
            .map_err(internal)?;
        // The library marks the request for conditional mediation; that is the page's choice
        // (`navigator.credentials.get({mediation})`), outside the options JSON.
        Ok(StartedCeremony {
            options: to_json(&challenge.public_key)?,
            state: serde_json::to_string(&state).map_err(internal)?,
        })
    }

    fn start_authentication(
        &self,
        allowed: &[CredentialId],
    ) -> Result<StartedCeremony, PasskeyFailure> {
        // The discoverable ceremony, narrowed to the account's credentials in what the browser
        // is asked: its finish verifies against the one stored passkey the response names,
        // as it stands now, and refuses any change of backup eligibility. The state keeps no
        // list; that the passkey is the account's is the caller's check.
        let (challenge, state) = self
            .webauthn
            .start_discoverable_authentication()
            .map_err(internal)?;
        let mut options = to_json(&challenge.public_key)?;
        let allowed: Vec<Value> = allowed
            .iter()
            .map(|id| json!({"type": "public-key", "id": id.encoded()}))
            .collect();
        options["allowCredentials"] = Value::Array(allowed);
        Ok(StartedCeremony {
            options,
            state: serde_json::to_string(&state).map_err(internal)?,
        })
    }

    fn claimed(&self, response: &Value) -> Result<ClaimedCredential, PasskeyFailure> {
        let response: PublicKeyCredential =
            serde_json::from_value(response.clone()).map_err(|_| PasskeyFailure::Malformed)?;
        claimed_by(&response)
    }

    fn finish_authentication(
        &self,
        state: &str,
        response: &Value,
        stored: &Passkey,
    ) -> Result<VerifiedAssertion, PasskeyFailure> {
        let state: DiscoverableAuthentication = from_state(state)?;
        let response: PublicKeyCredential =
            serde_json::from_value(response.clone()).map_err(|_| PasskeyFailure::Malformed)?;
        let claimed = claimed_by(&response)?;
        if claimed.credential_id != stored.credential_id
            || claimed
                .user_handle
                .is_some_and(|user| user != stored.user_id)
        {
            return Err(PasskeyFailure::Invalid);
        }
        // The columns are the truth about the counter and the flags: they move by one
        // conditional write per use, which the serialised credential follows.
        let mut credential = Credential::from(
            serde_json::from_str::<WebauthnPasskey>(&stored.credential).map_err(internal)?,
        );
        credential.counter = stored.sign_count;
        credential.backup_eligible = stored.backup_eligible;
        credential.backup_state = stored.backed_up;
        let mut passkey = WebauthnPasskey::from(credential);
        let result = self
            .webauthn
            .finish_discoverable_authentication_v2(&response, state, &passkey)
            .map_err(refusal)?;
        // Belt and braces: the discoverable ceremony allows no change of backup eligibility,
        // which is what the stored column promises.
        if result.backup_eligible() != stored.backup_eligible {
            return Err(PasskeyFailure::BackupEligibilityChanged);
        }
        passkey.update_credential(&result);
        Ok(VerifiedAssertion {
            credential: serde_json::to_string(&passkey).map_err(internal)?,
            sign_count: result.counter(),
            backup_eligible: result.backup_eligible(),
            backed_up: result.backup_state(),
        })
    }
}

fn claimed_by(response: &PublicKeyCredential) -> Result<ClaimedCredential, PasskeyFailure> {
    let credential_id = CredentialId::from_bytes(response.get_credential_id().to_vec())
        .map_err(|_| PasskeyFailure::Malformed)?;
    let user_handle = response
        .get_user_unique_id()
        .map(|handle| {
            Uuid::from_slice(handle)
                .map(UserId::from_uuid)
                .map_err(|_| PasskeyFailure::Invalid)
        })
        .transpose()?;
    Ok(ClaimedCredential {
        credential_id,
        user_handle,
    })
}

fn from_state<T: serde::de::DeserializeOwned>(state: &str) -> Result<T, PasskeyFailure> {
    serde_json::from_str(state)
        .map_err(|e| PasskeyFailure::Internal(format!("unreadable ceremony state: {e}")))
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<Value, PasskeyFailure> {
    serde_json::to_value(value).map_err(internal)
}

fn internal(error: impl std::fmt::Display) -> PasskeyFailure {
    PasskeyFailure::Internal(error.to_string())
}

/// What a refusal of the library means for the use case.
fn refusal(error: WebauthnError) -> PasskeyFailure {
    use WebauthnError as E;
    match error {
        E::InvalidRPOrigin | E::CredentialCrossOrigin => PasskeyFailure::WrongOrigin,
        E::InvalidRPIDHash => PasskeyFailure::WrongRelyingParty,
        E::UserNotVerified | E::UserNotPresent => PasskeyFailure::UserNotVerified,
        E::CredentialPossibleCompromise => PasskeyFailure::CounterWentBackwards,
        E::CredentialBackupEligibilityInconsistent | E::CredentialMayNotBeHardwareBound => {
            PasskeyFailure::BackupEligibilityChanged
        }
        E::ParseBase64Failure(_)
        | E::ParseCBORFailure(_)
        | E::ParseJSONFailure(_)
        | E::ParseNOMFailure
        | E::ParseInsufficientBytesAvailable
        | E::InvalidClientDataType => PasskeyFailure::Malformed,
        _ => PasskeyFailure::Invalid,
    }
}

#[cfg(test)]
mod tests {
    //! With webauthn-authenticator-rs's software passkey playing the browser and the
    //! authenticator. It keeps no resident keys, so for a discoverable sign-in the test does
    //! what a resident key would: it names its credential and returns the user handle.

    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use chrono::Utc;
    use webauthn_authenticator_rs::WebauthnAuthenticator;
    use webauthn_authenticator_rs::prelude::{CreationChallengeResponse, RequestChallengeResponse};
    use webauthn_authenticator_rs::softpasskey::SoftPasskey;

    use super::*;
    use crate::domain::{PasskeyId, PasskeyName};

    const ORIGIN: &str = "https://app.example.com";

    fn settings(rp_id: &str, origins: &[&str]) -> WebauthnSettings {
        WebauthnSettings {
            rp_id: rp_id.into(),
            rp_name: "Example".into(),
            origins: origins.iter().map(|o| (*o).to_owned()).collect(),
        }
    }

    fn relying_party() -> WebauthnCeremonies {
        WebauthnCeremonies::new(&settings("example.com", &[ORIGIN])).unwrap()
    }

    /// A browser on a page of `origin` with one authenticator.
    struct Device {
        authenticator: SoftPasskey,
        origin: Url,
    }

    impl Device {
        /// An authenticator that verifies its user when asked to.
        fn on(origin: &str) -> Self {
            Self {
                authenticator: SoftPasskey::new(true),
                origin: Url::parse(origin).unwrap(),
            }
        }

        /// `navigator.credentials.create({publicKey})` then `credential.toJSON()`.
        fn create(&mut self, options: &Value) -> Value {
            let mut options = options.clone();
            // The software passkey refuses to make a resident key (see the module's doc).
            options["authenticatorSelection"]["requireResidentKey"] = json!(false);
            let request: CreationChallengeResponse =
                serde_json::from_value(json!({ "publicKey": options })).unwrap();
            let made = self
                .authenticator
                .do_registration(self.origin.clone(), request)
                .unwrap();
            as_browser_json(serde_json::to_value(made).unwrap())
        }

        /// `navigator.credentials.get({publicKey})` then `credential.toJSON()`. For a
        /// discoverable request (no credentials listed), `resident` is the credential the
        /// authenticator picks and the user handle it stored with it.
        fn get(&mut self, options: &Value, resident: Option<(&CredentialId, UserId)>) -> Value {
            let mut options = options.clone();
            if let Some((credential, _)) = resident {
                options["allowCredentials"] =
                    json!([{ "type": "public-key", "id": credential.encoded() }]);
            }
            let request: RequestChallengeResponse =
                serde_json::from_value(json!({ "publicKey": options })).unwrap();
            let mut signed = serde_json::to_value(
                self.authenticator
                    .do_authentication(self.origin.clone(), request)
                    .unwrap(),
            )
            .unwrap();
            if let Some((_, user)) = resident {
                signed["response"]["userHandle"] =
                    json!(URL_SAFE_NO_PAD.encode(user.as_uuid().as_bytes()));
            }
            as_browser_json(signed)
        }
    }

    /// The library names the client extension results `extensions`; `toJSON()` names them
    /// `clientExtensionResults`.
    fn as_browser_json(mut credential: Value) -> Value {
        let object = credential.as_object_mut().unwrap();
        let results = object.remove("extensions").unwrap_or(json!({}));
        object.insert("clientExtensionResults".into(), results);
        credential
    }

    fn account(id: UserId) -> PasskeyAccount<'static> {
        PasskeyAccount {
            id,
            name: "ada@example.com",
            display_name: "Ada",
        }
    }

    /// Registers a passkey of `user` on `device`, and stores it as the service would.
    fn registered(rp: &WebauthnCeremonies, device: &mut Device, user: UserId) -> Passkey {
        let started = rp.start_registration(account(user), &[]).unwrap();
        let response = device.create(&started.options);
        let made = rp.finish_registration(&started.state, &response).unwrap();
        Passkey {
            id: PasskeyId::generate(),
            user_id: user,
            credential_id: made.credential_id,
            credential: made.credential,
            name: PasskeyName::parse("Phone").unwrap(),
            created_at: Utc::now(),
            last_used_at: None,
            sign_count: made.sign_count,
            backup_eligible: made.backup_eligible,
            backed_up: made.backed_up,
        }
    }

    /// What recording a use stores.
    fn recorded(stored: &Passkey, used: VerifiedAssertion) -> Passkey {
        Passkey {
            credential: used.credential,
            sign_count: used.sign_count,
            backed_up: used.backed_up,
            ..stored.clone()
        }
    }

    #[test]
    fn registration_asks_for_a_user_verified_discoverable_passkey_the_account_lacks() {
        let rp = relying_party();
        let user = UserId::generate();
        let existing = CredentialId::from_bytes(vec![9; 32]).unwrap();

        let started = rp
            .start_registration(account(user), std::slice::from_ref(&existing))
            .unwrap();

        let options = &started.options;
        assert!(
            options.get("publicKey").is_none(),
            "what parseCreationOptionsFromJSON reads"
        );
        assert_eq!(
            options["rp"],
            json!({"id": "example.com", "name": "Example"})
        );
        assert_eq!(
            options["user"],
            json!({
                "id": URL_SAFE_NO_PAD.encode(user.as_uuid().as_bytes()),
                "name": "ada@example.com",
                "displayName": "Ada",
            })
        );
        assert!(
            options["challenge"].as_str().unwrap().len() >= 43,
            "256 bits"
        );
        assert_eq!(
            options["authenticatorSelection"],
            json!({
                "residentKey": "required",
                "requireResidentKey": true,
                "userVerification": "required",
            })
        );
        assert_eq!(
            options["excludeCredentials"],
            json!([{ "type": "public-key", "id": existing.encoded() }])
        );
        assert_eq!(options["timeout"], json!(300_000));
    }

    #[test]
    fn a_registered_passkey_signs_in_without_an_email_and_then_as_a_second_factor() {
        let rp = relying_party();
        let mut device = Device::on(ORIGIN);
        let user = UserId::generate();
        let stored = registered(&rp, &mut device, user);
        assert_eq!(stored.sign_count, 0);
        assert!(
            !stored.backup_eligible && !stored.backed_up,
            "a device-bound key"
        );

        // Signing in: nothing named, conditional mediation is the page's choice.
        let sign_in = rp.start_sign_in().unwrap();
        assert_eq!(sign_in.options["allowCredentials"], json!([]));
        assert_eq!(sign_in.options["userVerification"], json!("required"));
        assert_eq!(sign_in.options["rpId"], json!("example.com"));
        assert!(sign_in.options.get("mediation").is_none());
        let response = device.get(&sign_in.options, Some((&stored.credential_id, user)));
        assert_eq!(
            rp.claimed(&response).unwrap(),
            ClaimedCredential {
                credential_id: stored.credential_id.clone(),
                user_handle: Some(user),
            }
        );
        let used = rp
            .finish_authentication(&sign_in.state, &response, &stored)
            .unwrap();
        assert_eq!(used.sign_count, 1);
        let stored = recorded(&stored, used);

        // A second factor: the account's passkeys named.
        let mfa = rp
            .start_authentication(std::slice::from_ref(&stored.credential_id))
            .unwrap();
        assert_eq!(
            mfa.options["allowCredentials"],
            json!([{ "type": "public-key", "id": stored.credential_id.encoded() }])
        );
        let response = device.get(&mfa.options, None);
        assert_eq!(rp.claimed(&response).unwrap().user_handle, None);
        let used = rp
            .finish_authentication(&mfa.state, &response, &stored)
            .unwrap();
        assert_eq!(used.sign_count, 2);
        assert_eq!(
            serde_json::from_str::<Value>(&used.credential).unwrap()["cred"]["counter"],
            json!(2),
            "the stored credential follows"
        );
    }

    #[test]
    fn a_response_made_on_a_page_of_another_origin_is_refused() {
        let rp = relying_party();
        let user = UserId::generate();
        // A page the browser lets use the RP id (a subdomain), but not one configured.
        let mut phishing = Device::on("https://evil.example.com");

        let started = rp.start_registration(account(user), &[]).unwrap();
        let response = phishing.create(&started.options);
        assert_eq!(
            rp.finish_registration(&started.state, &response),
            Err(PasskeyFailure::WrongOrigin)
        );

        // A passkey registered on the real page, used on the other one.
        let mut device = Device::on(ORIGIN);
        let stored = registered(&rp, &mut device, user);
        device.origin = phishing.origin;
        let mut phishing = device;
        let sign_in = rp.start_sign_in().unwrap();
        let response = phishing.get(&sign_in.options, Some((&stored.credential_id, user)));
        assert_eq!(
            rp.finish_authentication(&sign_in.state, &response, &stored),
            Err(PasskeyFailure::WrongOrigin)
        );
    }

    #[test]
    fn a_passkey_made_for_another_relying_party_id_is_refused() {
        let rp = relying_party();
        // The same page, configured elsewhere with a narrower RP id.
        let narrower = WebauthnCeremonies::new(&settings("app.example.com", &[ORIGIN])).unwrap();
        let mut device = Device::on(ORIGIN);
        let user = UserId::generate();

        let started = narrower.start_registration(account(user), &[]).unwrap();
        let response = device.create(&started.options);
        let ours = rp.start_registration(account(user), &[]).unwrap();
        assert_eq!(
            rp.finish_registration(&ours.state, &response),
            Err(PasskeyFailure::Invalid),
            "another challenge too"
        );

        let elsewhere = registered(&narrower, &mut device, user);
        let sign_in = rp.start_sign_in().unwrap();
        let mut options = sign_in.options.clone();
        options["rpId"] = json!("app.example.com");
        let response = device.get(&options, Some((&elsewhere.credential_id, user)));
        assert_eq!(
            rp.finish_authentication(&sign_in.state, &response, &elsewhere),
            Err(PasskeyFailure::WrongRelyingParty)
        );

        let started = rp.start_registration(account(user), &[]).unwrap();
        let mut options = started.options.clone();
        options["rp"]["id"] = json!("app.example.com");
        let response = device.create(&options);
        assert_eq!(
            rp.finish_registration(&started.state, &response),
            Err(PasskeyFailure::WrongRelyingParty)
        );
    }

    #[test]
    fn an_authenticator_that_did_not_verify_its_user_is_refused() {
        let rp = relying_party();
        let mut device = Device::on(ORIGIN);
        let user = UserId::generate();
        // A page that asks the authenticator not to verify the user.
        let unverified = |options: &Value| {
            let mut options = options.clone();
            let place = match options.get_mut("authenticatorSelection") {
                Some(selection) => selection,
                None => &mut options,
            };
            place["userVerification"] = json!("discouraged");
            options
        };

        let started = rp.start_registration(account(user), &[]).unwrap();
        let response = device.create(&unverified(&started.options));
        assert_eq!(
            rp.finish_registration(&started.state, &response),
            Err(PasskeyFailure::UserNotVerified)
        );

        let stored = registered(&rp, &mut device, user);
        let sign_in = rp.start_sign_in().unwrap();
        let response = device.get(
            &unverified(&sign_in.options),
            Some((&stored.credential_id, user)),
        );
        assert_eq!(
            rp.finish_authentication(&sign_in.state, &response, &stored),
            Err(PasskeyFailure::UserNotVerified)
        );
    }

    #[test]
    fn a_finished_state_verifies_the_same_response_again_so_single_use_is_the_stores() {
        let rp = relying_party();
        let mut device = Device::on(ORIGIN);
        let user = UserId::generate();
        let stored = registered(&rp, &mut device, user);
        let sign_in = rp.start_sign_in().unwrap();
        let response = device.get(&sign_in.options, Some((&stored.credential_id, user)));

        // Two instances finishing the same ceremony at once both read the passkey as stored
        // before either recorded the use: the library accepts both. What stops the second
        // is `PasskeyStore::take_ceremony` (and, for an authenticator that keeps a counter,
        // `record_use`).
        let first = rp.finish_authentication(&sign_in.state, &response, &stored);
        let again = rp.finish_authentication(&sign_in.state, &response, &stored);
        assert!(first.is_ok());
        assert_eq!(again, first);

        let started = rp.start_registration(account(user), &[]).unwrap();
        let response = device.create(&started.options);
        let made = rp.finish_registration(&started.state, &response).unwrap();
        assert_eq!(
            rp.finish_registration(&started.state, &response),
            Ok(made),
            "a registration too"
        );
    }

    #[test]
    fn an_older_assertion_after_a_newer_one_is_refused_as_a_counter_going_backwards() {
        let rp = relying_party();
        let mut device = Device::on(ORIGIN);
        let user = UserId::generate();
        let stored = registered(&rp, &mut device, user);
        let allowed = std::slice::from_ref(&stored.credential_id);
        let (older, newer) = (
            rp.start_authentication(allowed).unwrap(),
            rp.start_authentication(allowed).unwrap(),
        );
        let older_response = device.get(&older.options, None);
        let newer_response = device.get(&newer.options, None);

        let used = rp
            .finish_authentication(&newer.state, &newer_response, &stored)
            .unwrap();
        let stored = recorded(&stored, used);

        assert_eq!(
            rp.finish_authentication(&older.state, &older_response, &stored),
            Err(PasskeyFailure::CounterWentBackwards)
        );
    }

    #[test]
    fn a_change_of_backup_eligibility_is_refused() {
        let rp = relying_party();
        let mut device = Device::on(ORIGIN);
        let user = UserId::generate();
        let stored = registered(&rp, &mut device, user);
        // Registered as a synced passkey; the authenticator now says it cannot be synced.
        let synced = Passkey {
            backup_eligible: true,
            ..stored
        };

        let sign_in = rp.start_sign_in().unwrap();
        let response = device.get(&sign_in.options, Some((&synced.credential_id, user)));
        assert_eq!(
            rp.finish_authentication(&sign_in.state, &response, &synced),
            Err(PasskeyFailure::BackupEligibilityChanged)
        );
    }

    #[test]
    fn a_response_of_another_credential_account_or_ceremony_is_refused() {
        let rp = relying_party();
        let mut device = Device::on(ORIGIN);
        let (ada, bob) = (UserId::generate(), UserId::generate());
        let adas = registered(&rp, &mut device, ada);
        let bobs = registered(&rp, &mut device, bob);

        let sign_in = rp.start_sign_in().unwrap();
        let response = device.get(&sign_in.options, Some((&adas.credential_id, ada)));
        assert_eq!(
            rp.finish_authentication(&sign_in.state, &response, &bobs),
            Err(PasskeyFailure::Invalid),
            "verified against another passkey"
        );

        let response = device.get(&sign_in.options, Some((&adas.credential_id, bob)));
        assert_eq!(
            rp.finish_authentication(&sign_in.state, &response, &adas),
            Err(PasskeyFailure::Invalid),
            "a user handle that is not the owner's"
        );

        let other = rp.start_sign_in().unwrap();
        let response = device.get(&other.options, Some((&adas.credential_id, ada)));
        assert_eq!(
            rp.finish_authentication(&sign_in.state, &response, &adas),
            Err(PasskeyFailure::Invalid),
            "the challenge of another ceremony"
        );
    }

    #[test]
    fn a_browser_reporting_no_discoverable_credential_is_refused() {
        let rp = relying_party();
        let mut device = Device::on(ORIGIN);
        let started = rp
            .start_registration(account(UserId::generate()), &[])
            .unwrap();
        let mut response = device.create(&started.options);
        response["clientExtensionResults"] = json!({ "credProps": { "rk": false } });

        assert_eq!(
            rp.finish_registration(&started.state, &response),
            Err(PasskeyFailure::NotDiscoverable)
        );
    }

    #[test]
    fn what_is_not_a_credential_of_the_ceremony_is_malformed() {
        let rp = relying_party();
        let sign_in = rp.start_sign_in().unwrap();
        let registration = rp
            .start_registration(account(UserId::generate()), &[])
            .unwrap();
        let garbage = json!({ "id": "x", "type": "public-key" });

        assert_eq!(
            rp.finish_registration(&registration.state, &garbage),
            Err(PasskeyFailure::Malformed)
        );
        assert_eq!(rp.claimed(&garbage), Err(PasskeyFailure::Malformed));
        assert!(matches!(
            rp.finish_registration(&sign_in.state, &garbage),
            Err(PasskeyFailure::Internal(_))
        ));
    }

    /// A passkey made by Chromium's virtual authenticator (a platform authenticator with
    /// resident keys and user verification) on http://localhost, and its discoverable
    /// sign-in, as `credential.toJSON()` wrote them: captured by the web client's harness
    /// (`CAPTURE=… npm run webauthn-harness` in examples/web-client) from options shaped as ours.
    /// The harness made its own challenges, which the states here are given.
    #[test]
    fn a_passkey_chromium_made_registers_and_signs_in() {
        let capture: Value = serde_json::from_str(include_str!("webauthn/chromium.json")).unwrap();
        let origin = capture["origin"].as_str().unwrap();
        let rp = WebauthnCeremonies::new(&settings("localhost", &[origin])).unwrap();
        let handle = URL_SAFE_NO_PAD
            .decode(capture["userId"].as_str().unwrap())
            .unwrap();
        let user = UserId::from_uuid(Uuid::from_slice(&handle).unwrap());
        let with_challenge = |state: String, key: &str, options: &Value| {
            let mut state: Value = serde_json::from_str(&state).unwrap();
            state[key]["challenge"] = options["challenge"].clone();
            state.to_string()
        };

        let started = rp.start_registration(account(user), &[]).unwrap();
        let registration = &capture["registration"];
        let state = with_challenge(started.state, "rs", &registration["options"]);
        let made = rp
            .finish_registration(&state, &registration["credential"])
            .unwrap();
        assert_eq!(
            made.credential_id.encoded(),
            registration["credential"]["id"].as_str().unwrap()
        );
        assert!(
            !made.backup_eligible && !made.backed_up,
            "a device-bound key"
        );
        let stored = Passkey {
            id: PasskeyId::generate(),
            user_id: user,
            credential_id: made.credential_id.clone(),
            credential: made.credential.clone(),
            name: PasskeyName::parse("Chromium").unwrap(),
            created_at: Utc::now(),
            last_used_at: None,
            sign_count: made.sign_count,
            backup_eligible: made.backup_eligible,
            backed_up: made.backed_up,
        };

        let sign_in = &capture["signIn"];
        assert_eq!(
            rp.claimed(&sign_in["credential"]).unwrap(),
            ClaimedCredential {
                credential_id: made.credential_id.clone(),
                user_handle: Some(user),
            }
        );
        let started = rp.start_sign_in().unwrap();
        let state = with_challenge(started.state, "ast", &sign_in["options"]);
        let used = rp
            .finish_authentication(&state, &sign_in["credential"], &stored)
            .unwrap();
        assert!(used.sign_count > made.sign_count, "{used:?} after {made:?}");

        let elsewhere =
            WebauthnCeremonies::new(&settings("localhost", &["http://localhost:1"])).unwrap();
        assert_eq!(
            elsewhere.finish_authentication(&state, &sign_in["credential"], &stored),
            Err(PasskeyFailure::WrongOrigin),
            "the port is part of the origin"
        );
    }

    #[test]
    fn the_settings_name_a_domain_and_secure_origins_on_it() {
        let ok = |rp_id: &str, origins: &[&str]| WebauthnCeremonies::new(&settings(rp_id, origins));
        assert!(ok("example.com", &[ORIGIN, "https://example.com"]).is_ok());
        assert!(ok("localhost", &["http://localhost:5173"]).is_ok());
        assert!(ok("Example.COM", &[ORIGIN]).is_ok());

        assert!(matches!(
            ok("127.0.0.1", &["http://127.0.0.1:5173"]),
            Err(WebauthnSettingsError::RpIdNotADomain(_))
        ));
        assert!(matches!(
            ok("example.com:443", &[ORIGIN]),
            Err(WebauthnSettingsError::RpIdNotADomain(_))
        ));
        assert_eq!(
            ok("example.com", &[]).err(),
            Some(WebauthnSettingsError::NoOrigin)
        );
        assert!(matches!(
            ok("example.com", &["http://app.example.com"]),
            Err(WebauthnSettingsError::InsecureOrigin(_))
        ));
        assert!(matches!(
            ok("example.com", &["https://example.org"]),
            Err(WebauthnSettingsError::OriginOutsideRpId { .. })
        ));
        assert!(matches!(
            ok("example.com", &["https://notexample.com"]),
            Err(WebauthnSettingsError::OriginOutsideRpId { .. })
        ));
        assert!(matches!(
            ok("example.com", &["https://app.example.com/login"]),
            Err(WebauthnSettingsError::NotAnOrigin(_))
        ));
    }
}
