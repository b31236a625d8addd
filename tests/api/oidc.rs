//! The OpenID Connect adapter (`infrastructure::oidc`) against a real provider: npm
//! `oidc-provider` from `tests/oidc-provider`, which `scripts/test.sh` starts and names in
//! `OIDC_TEST_ISSUER`. A browser is played by a client that keeps cookies and follows the
//! provider's redirects by hand until the one back to our callback; the provider signs in
//! whoever `login_hint` names, so no human is needed.

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use openidconnect::url::Url;
use secrecy::SecretString;
use serde_json::Value;
use sha2::{Digest, Sha256};

use authgraph::application::social_ports::{
    AuthorizationResponse, FlowSecrets, ProviderError, SocialProviders,
};
use authgraph::domain::{IdentityKey, ProviderId, VerifiedIdentity};
use authgraph::infrastructure::oidc::{OidcProviders, OidcSettings, ProviderSettings};

use crate::helpers::skip_unless;

/// Where the provider sends the browser back; nothing listens there; the test reads the
/// redirect instead of following it. Any port matches the clients' loopback redirect URIs.
const CALLBACK: &str = "http://127.0.0.1:9/auth/oidc/callback";
const CLIENT: (&str, &str) = ("authgraph", "authgraph-test-secret");
const OTHER_CLIENT: (&str, &str) = ("other-app", "other-app-test-secret");

/// The test provider's issuer, or `None` (and the test is skipped) when there is none.
fn test_issuer() -> Option<String> {
    let issuer = std::env::var("OIDC_TEST_ISSUER")
        .ok()
        .filter(|i| !i.is_empty());
    if skip_unless(
        issuer.is_some(),
        "an OpenID provider (OIDC_TEST_ISSUER; scripts/test.sh starts tests/oidc-provider)",
    ) {
        return None;
    }
    issuer
}

fn corp() -> ProviderId {
    ProviderId::parse("corp").unwrap()
}

/// The adapter with one provider, `corp`, at `issuer`, as `client`.
fn providers_at(issuer: &str, client: (&str, &str)) -> OidcProviders {
    OidcProviders::new(
        vec![ProviderSettings {
            id: corp(),
            name: "Corp".into(),
            issuer: issuer.into(),
            client_id: client.0.into(),
            client_secret: SecretString::from(client.1),
            scopes: vec!["openid".into(), "email".into(), "profile".into()],
        }],
        &OidcSettings {
            allow_http: true,
            connect_timeout: Duration::from_secs(2),
            timeout: Duration::from_secs(5),
            ..OidcSettings::new(CALLBACK)
        },
    )
    .unwrap()
}

/// A browser: keeps the provider's cookies and follows its redirects by hand.
struct Browser {
    http: reqwest::Client,
    cookies: HashMap<String, String>,
}

impl Browser {
    fn new() -> Self {
        Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: HashMap::new(),
        }
    }

    /// Opens `url` with `login_hint` added and follows the provider until it sends the
    /// browser to the callback: that redirect's query.
    async fn sign_in(&mut self, url: &str, login_hint: &str) -> HashMap<String, String> {
        let mut url = Url::parse(url).unwrap();
        url.query_pairs_mut().append_pair("login_hint", login_hint);
        for _ in 0..10 {
            let cookie = self
                .cookies
                .iter()
                .map(|(name, value)| format!("{name}={value}"))
                .collect::<Vec<_>>()
                .join("; ");
            let response = self
                .http
                .get(url.clone())
                .header("cookie", cookie)
                .send()
                .await
                .unwrap();
            for set in response.headers().get_all("set-cookie") {
                let pair = set.to_str().unwrap().split(';').next().unwrap();
                if let Some((name, value)) = pair.split_once('=') {
                    self.cookies.insert(name.to_owned(), value.to_owned());
                }
            }
            let status = response.status();
            let Some(location) = response.headers().get("location") else {
                panic!(
                    "the provider answered {status} without a redirect: {}",
                    response.text().await.unwrap()
                );
            };
            let next = url.join(location.to_str().unwrap()).unwrap();
            if next.as_str().starts_with(CALLBACK) {
                return next.query_pairs().into_owned().collect();
            }
            url = next;
        }
        panic!("the provider never sent the browser back");
    }
}

/// A flow up to the provider's answer: its `state`, nonce and verifier, and the callback's
/// query.
struct Answered {
    nonce: String,
    pkce_verifier: String,
    query: HashMap<String, String>,
}

impl Answered {
    fn response(&self) -> AuthorizationResponse {
        AuthorizationResponse {
            code: self.query["code"].clone(),
            iss: self.query.get("iss").cloned(),
        }
    }

    fn secrets(&self) -> FlowSecrets<'_> {
        FlowSecrets {
            pkce_verifier: &self.pkce_verifier,
            nonce: &self.nonce,
        }
    }
}

async fn answered(providers: &OidcProviders, login_hint: &str) -> Answered {
    let redirect = providers
        .authorization_redirect(&corp(), "state-of-this-flow")
        .await
        .unwrap();
    let query = Browser::new().sign_in(&redirect.url, login_hint).await;
    assert_eq!(query["state"], "state-of-this-flow", "{query:?}");
    assert!(query.contains_key("code"), "{query:?}");
    Answered {
        nonce: redirect.nonce,
        pkce_verifier: redirect.pkce_verifier,
        query,
    }
}

async fn verified(providers: &OidcProviders, flow: &Answered) -> VerifiedIdentity {
    providers
        .verify(&corp(), &flow.response(), flow.secrets(), Utc::now())
        .await
        .unwrap()
}

/// An address no other test uses.
fn address(name: &str) -> String {
    format!("{name}-{}@example.com", uuid::Uuid::new_v4().simple())
}

fn rejected<T: std::fmt::Debug>(outcome: Result<T, ProviderError>) -> String {
    match outcome {
        Err(ProviderError::Rejected(why)) => why,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

/// Exchanges a flow's code at the token endpoint as `client`, by hand: the raw ID token.
async fn raw_id_token(issuer: &str, client: (&str, &str), flow: &Answered) -> String {
    let response: Value = reqwest::Client::new()
        .post(format!("{issuer}/token"))
        .basic_auth(client.0, Some(client.1))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", flow.query["code"].as_str()),
            ("redirect_uri", CALLBACK),
            ("code_verifier", flow.pkce_verifier.as_str()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    response["id_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no ID token: {response}"))
        .to_owned()
}

#[tokio::test]
async fn the_authorization_url_carries_state_nonce_and_a_pkce_s256_challenge() {
    let Some(issuer) = test_issuer() else { return };
    let providers = providers_at(&issuer, CLIENT);

    let redirect = providers
        .authorization_redirect(&corp(), "the-state")
        .await
        .unwrap();

    let url = Url::parse(&redirect.url).unwrap();
    assert_eq!(
        url.as_str().split('?').next().unwrap(),
        format!("{issuer}/auth"),
        "the endpoint from discovery"
    );
    let query: HashMap<String, String> = url.query_pairs().into_owned().collect();
    assert_eq!(query["response_type"], "code");
    assert_eq!(query["client_id"], "authgraph");
    assert_eq!(query["redirect_uri"], CALLBACK);
    assert_eq!(query["state"], "the-state");
    assert_eq!(query["nonce"], redirect.nonce);
    assert!(redirect.nonce.len() >= 22, "a random nonce");
    assert_eq!(query["code_challenge_method"], "S256");
    assert_eq!(
        query["code_challenge"],
        URL_SAFE_NO_PAD.encode(Sha256::digest(redirect.pkce_verifier.as_bytes()))
    );
    let scopes: Vec<&str> = query["scope"].split(' ').collect();
    assert_eq!(scopes, ["openid", "email", "profile"], "openid once");

    let again = providers
        .authorization_redirect(&corp(), "the-state")
        .await
        .unwrap();
    assert_ne!(again.nonce, redirect.nonce);
    assert_ne!(again.pkce_verifier, redirect.pkce_verifier);
}

#[tokio::test]
async fn a_sign_in_at_the_provider_gives_its_verified_identity() {
    let Some(issuer) = test_issuer() else { return };
    let providers = providers_at(&issuer, CLIENT);
    let email = address("ada");
    let hint = format!("verified:{email}");

    let flow = answered(&providers, &hint).await;
    assert_eq!(
        flow.query["iss"], issuer,
        "RFC 9207: the provider names itself"
    );
    let identity = verified(&providers, &flow).await;

    assert_eq!(
        identity,
        VerifiedIdentity {
            provider: corp(),
            key: IdentityKey::new(&issuer, &hint).unwrap(),
            email: Some(authgraph::domain::Email::parse(&email).unwrap()),
            email_verified: true,
            provider_mfa: false,
        }
    );
}

#[tokio::test]
async fn an_unverified_provider_email_is_reported_unverified() {
    let Some(issuer) = test_issuer() else { return };
    let providers = providers_at(&issuer, CLIENT);
    let email = address("ada");

    let verified_one = verified(
        &providers,
        &answered(&providers, &format!("verified:{email}")).await,
    )
    .await;
    let unverified = verified(
        &providers,
        &answered(&providers, &format!("unverified:{email}")).await,
    )
    .await;

    assert_eq!(unverified.email, verified_one.email, "the same address");
    assert!(!unverified.email_verified);
    assert_ne!(unverified.key, verified_one.key, "another identity");
}

#[tokio::test]
async fn email_verified_sent_as_a_string_counts() {
    let Some(issuer) = test_issuer() else { return };
    let providers = providers_at(&issuer, CLIENT);

    let identity = verified(
        &providers,
        &answered(&providers, &format!("stringly:{}", address("sam"))).await,
    )
    .await;

    assert!(identity.email_verified);
}

#[tokio::test]
async fn a_provider_that_reports_two_factors_asserts_mfa() {
    let Some(issuer) = test_issuer() else { return };
    let providers = providers_at(&issuer, CLIENT);

    let identity = verified(
        &providers,
        &answered(&providers, &format!("mfa:{}", address("mia"))).await,
    )
    .await;

    assert!(identity.provider_mfa);
}

#[tokio::test]
async fn without_an_email_the_identity_has_none() {
    let Some(issuer) = test_issuer() else { return };
    let providers = providers_at(&issuer, CLIENT);

    let identity = verified(&providers, &answered(&providers, "noemail").await).await;

    assert_eq!(identity.email, None);
    assert!(!identity.email_verified);
}

#[tokio::test]
async fn a_provider_that_keeps_email_out_of_id_tokens_gives_it_from_userinfo() {
    let Some(issuer) = test_issuer() else { return };
    let conform = format!("{issuer}/conform");
    let providers = providers_at(&conform, CLIENT);
    let email = address("ada");

    let flow = answered(&providers, &format!("verified:{email}")).await;
    let raw = raw_id_token(&conform, CLIENT, &flow).await;
    assert!(
        !raw.is_empty() && crate::helpers::token_claims(&raw).get("email").is_none(),
        "the ID token itself has no email"
    );
    let flow = answered(&providers, &format!("verified:{email}")).await;
    let identity = verified(&providers, &flow).await;

    assert_eq!(identity.email.unwrap().as_str(), email);
    assert!(identity.email_verified);
    assert_eq!(identity.key.issuer(), conform);
}

#[tokio::test]
async fn an_id_token_with_another_nonce_is_refused() {
    let Some(issuer) = test_issuer() else { return };
    let providers = providers_at(&issuer, CLIENT);
    let flow = answered(&providers, &format!("verified:{}", address("ada"))).await;

    let why = rejected(
        providers
            .verify(
                &corp(),
                &flow.response(),
                FlowSecrets {
                    pkce_verifier: &flow.pkce_verifier,
                    nonce: "the-nonce-of-another-flow",
                },
                Utc::now(),
            )
            .await,
    );

    assert!(why.contains("nonce"), "{why}");
}

#[tokio::test]
async fn a_code_works_once_and_only_with_its_pkce_verifier() {
    let Some(issuer) = test_issuer() else { return };
    let providers = providers_at(&issuer, CLIENT);
    let flow = answered(&providers, &format!("verified:{}", address("ada"))).await;

    let wrong = rejected(
        providers
            .verify(
                &corp(),
                &flow.response(),
                FlowSecrets {
                    pkce_verifier: "an-altered-verifier-an-altered-verifier-0123",
                    nonce: &flow.nonce,
                },
                Utc::now(),
            )
            .await,
    );
    assert!(wrong.contains("refused the code"), "{wrong}");

    // The provider spends a code on any use, so a fresh one for the replay.
    let flow = answered(&providers, &format!("verified:{}", address("ada"))).await;
    verified(&providers, &flow).await;
    let replayed = rejected(
        providers
            .verify(&corp(), &flow.response(), flow.secrets(), Utc::now())
            .await,
    );
    assert!(replayed.contains("refused the code"), "{replayed}");
}

#[tokio::test]
async fn a_response_naming_another_issuer_or_none_is_refused() {
    let Some(issuer) = test_issuer() else { return };
    let providers = providers_at(&issuer, CLIENT);
    let flow = answered(&providers, &format!("verified:{}", address("ada"))).await;

    for iss in [
        Some(format!("{issuer}/")),
        Some("https://idp.attacker.example".to_owned()),
        None,
    ] {
        let response = AuthorizationResponse {
            iss: iss.clone(),
            ..flow.response()
        };
        let why = rejected(
            providers
                .verify(&corp(), &response, flow.secrets(), Utc::now())
                .await,
        );
        assert!(why.contains("iss"), "{iss:?}: {why}");
    }
    // Refused before the code was spent: it still works with the true `iss`.
    verified(&providers, &flow).await;
}

#[tokio::test]
async fn an_id_token_for_another_client_is_refused() {
    let Some(issuer) = test_issuer() else { return };
    let ours = providers_at(&issuer, CLIENT);
    let theirs = providers_at(&issuer, OTHER_CLIENT);
    let flow = answered(&theirs, &format!("verified:{}", address("ada"))).await;
    let token = raw_id_token(&issuer, OTHER_CLIENT, &flow).await;

    let why = rejected(
        ours.verify_id_token(&corp(), &token, &flow.nonce, Utc::now())
            .await,
    );

    assert!(why.contains("audience"), "{why}");
    assert!(
        theirs
            .verify_id_token(&corp(), &token, &flow.nonce, Utc::now())
            .await
            .is_ok(),
        "it is a good token for its own client"
    );
}

#[tokio::test]
async fn a_tampered_or_expired_id_token_is_refused() {
    let Some(issuer) = test_issuer() else { return };
    let providers = providers_at(&issuer, CLIENT);
    let flow = answered(&providers, &format!("verified:{}", address("ada"))).await;
    let token = raw_id_token(&issuer, CLIENT, &flow).await;
    let verify = |token: String, at| {
        let providers = &providers;
        let nonce = flow.nonce.clone();
        async move { providers.verify_id_token(&corp(), &token, &nonce, at).await }
    };
    assert!(verify(token.clone(), Utc::now()).await.is_ok());

    // Another issuer in the payload, the signature left as it was.
    let parts: Vec<&str> = token.split('.').collect();
    let mut claims = crate::helpers::token_claims(&token);
    claims["iss"] = Value::from("https://idp.attacker.example");
    let forged_iss = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap()),
        parts[2]
    );
    let why = rejected(verify(forged_iss, Utc::now()).await);
    assert!(why.to_lowercase().contains("issuer"), "{why}");

    // The true issuer, another subject: only the signature catches it.
    let mut claims = crate::helpers::token_claims(&token);
    claims["sub"] = Value::from("someone-else");
    let forged_sub = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap()),
        parts[2]
    );
    let why = rejected(verify(forged_sub, Utc::now()).await);
    assert!(why.contains("ignature"), "{why}");

    let expiry = crate::helpers::token_claims(&token)["exp"]
        .as_i64()
        .unwrap();
    let later = chrono::DateTime::from_timestamp(expiry + 1, 0).unwrap();
    let why = rejected(verify(token, later).await);
    assert!(why.contains("xpired"), "{why}");
}

#[tokio::test]
async fn a_discovery_document_for_another_issuer_is_refused() {
    let Some(issuer) = test_issuer() else { return };
    // The same provider, named with a trailing slash: its document names it without.
    let providers = providers_at(&format!("{issuer}/"), CLIENT);

    let outcome = providers.authorization_redirect(&corp(), "state").await;

    match outcome {
        Err(ProviderError::Unavailable(why)) => assert!(why.contains("issuer"), "{why}"),
        other => panic!("expected the provider to be unusable, got {other:?}"),
    }
}

#[tokio::test]
async fn a_provider_that_is_down_fails_fast_and_an_unknown_one_is_named() {
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let issuer = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let providers = providers_at(&issuer, CLIENT);

    let first = providers.authorization_redirect(&corp(), "state").await;
    assert!(
        matches!(first, Err(ProviderError::Unavailable(_))),
        "{first:?}"
    );
    let started = std::time::Instant::now();
    let again = providers.authorization_redirect(&corp(), "state").await;
    assert!(
        matches!(again, Err(ProviderError::Unavailable(_))),
        "{again:?}"
    );
    assert!(
        started.elapsed() < Duration::from_millis(100),
        "not tried again at once"
    );

    assert_eq!(
        providers
            .authorization_redirect(&ProviderId::parse("nobody").unwrap(), "state")
            .await
            .unwrap_err(),
        ProviderError::UnknownProvider
    );
}
