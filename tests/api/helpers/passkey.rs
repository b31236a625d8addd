//! A browser with a passkey, for the tests: webauthn-authenticator-rs's software passkey
//! plays the authenticator and `navigator.credentials`, and answers with what
//! `credential.toJSON()` writes. It keeps no resident keys, so for a discoverable sign-in the
//! device does what a resident key would: it names its credential and returns the user
//! handle stored with it.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::prelude::{
    CreationChallengeResponse, RequestChallengeResponse, Url,
};
use webauthn_authenticator_rs::softpasskey::SoftPasskey;

/// The page the test server's passkeys belong to (its PUBLIC_URL).
pub const ORIGIN: &str = "https://app.example.com";

/// A browser on a page of `origin` with one authenticator, and the credential it made last
/// with the user handle it was made for.
pub struct Device {
    authenticator: SoftPasskey,
    origin: Url,
    /// The credential id (base64url) and user handle (base64url) of the passkey made last.
    pub resident: Option<(String, String)>,
}

impl Device {
    /// An authenticator that verifies its user, on the test server's page.
    pub fn new() -> Self {
        Self::on(ORIGIN)
    }

    pub fn on(origin: &str) -> Self {
        Self {
            authenticator: SoftPasskey::new(true),
            origin: Url::parse(origin).unwrap(),
            resident: None,
        }
    }

    /// The same authenticator on another page.
    pub fn move_to(&mut self, origin: &str) {
        self.origin = Url::parse(origin).unwrap();
    }

    /// `navigator.credentials.create({publicKey: options})`, then `credential.toJSON()`.
    pub fn create(&mut self, options: &Value) -> Value {
        let mut options = options.clone();
        options["authenticatorSelection"]["requireResidentKey"] = json!(false);
        let user = options["user"]["id"].as_str().unwrap().to_owned();
        let request: CreationChallengeResponse =
            serde_json::from_value(json!({ "publicKey": options })).unwrap();
        let made = self
            .authenticator
            .do_registration(self.origin.clone(), request)
            .unwrap();
        let made = as_browser_json(serde_json::to_value(made).unwrap());
        self.resident = Some((made["id"].as_str().unwrap().to_owned(), user));
        made
    }

    /// `navigator.credentials.get({publicKey: options})` with the passkey made last, then
    /// `credential.toJSON()`.
    pub fn get(&mut self, options: &Value) -> Value {
        let (credential, user) = self.resident.clone().expect("a passkey was made");
        let mut options = options.clone();
        options["allowCredentials"] = json!([{ "type": "public-key", "id": credential }]);
        let request: RequestChallengeResponse =
            serde_json::from_value(json!({ "publicKey": options })).unwrap();
        let mut signed = serde_json::to_value(
            self.authenticator
                .do_authentication(self.origin.clone(), request)
                .unwrap(),
        )
        .unwrap();
        signed["response"]["userHandle"] = json!(user);
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

/// A user handle as the browser carries it (base64url of the user id's bytes).
pub fn user_handle(id: &str) -> String {
    URL_SAFE_NO_PAD.encode(uuid::Uuid::parse_str(id).unwrap().as_bytes())
}
