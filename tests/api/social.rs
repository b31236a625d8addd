//! Social sign-in over HTTP against a real provider (`tests/oidc-provider`, named by
//! `OIDC_TEST_ISSUER`): the start mutation, the provider's redirects followed by hand, the
//! callback, and the one-time code a bearer client exchanges. Skipped without a provider
//! unless REQUIRE_ALL_DATABASES=1.

use std::collections::{BTreeMap, HashMap};

use openidconnect::url::Url;
use serde_json::{Value, json};

use crate::helpers::{
    ME, PASSWORD, REGISTER, TestApp, assert_no_errors, error_code, skip_unless, spawn_app_with,
};

const DONE: &str = "http://localhost:3000/done";

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

/// The app with provider `corp` at `issuer`.
async fn app_with_provider(issuer: &str) -> TestApp {
    app_with_provider_and(issuer, |_| {}).await
}

/// The app with provider `corp` at `issuer`, and `more` of its configuration.
async fn app_with_provider_and(
    issuer: &str,
    more: impl FnOnce(&mut authgraph::config::Config),
) -> TestApp {
    let issuer = issuer.to_owned();
    spawn_app_with(move |config| {
        more(config);
        config.social.social_providers = vec!["corp".into()];
        for (name, value) in [
            ("SOCIAL_CORP_ISSUER", issuer.as_str()),
            ("SOCIAL_CORP_CLIENT_ID", "authgraph"),
            ("SOCIAL_CORP_CLIENT_SECRET", "authgraph-test-secret"),
            ("SOCIAL_CORP_NAME", "Corp"),
        ] {
            config
                .social
                .provider_variables
                .insert(name.to_owned(), value.into());
        }
    })
    .await
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Starts a sign-in as a bearer client: the authorization URL and the binding cookie
/// (`name=value`).
async fn start(app: &TestApp) -> (String, String) {
    let response = http()
        .post(app.url("/graphql"))
        .json(&json!({
            "query": "mutation($i: StartSocialSignInInput!) { startSocialSignIn(input: $i) { authorizationUrl } }",
            "variables": { "i": { "provider": "corp", "redirectTo": DONE } },
        }))
        .send()
        .await
        .unwrap();
    let cookie = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("authgraph-oidc="))
        .expect("a binding cookie");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    let body: Value = response.json().await.unwrap();
    assert_no_errors(&body);
    let url = body["data"]["startSocialSignIn"]["authorizationUrl"]
        .as_str()
        .unwrap()
        .to_owned();
    (url, cookie.split(';').next().unwrap().to_owned())
}

/// Follows the provider with `login_hint` until it sends the browser to our callback: that
/// callback's query string.
async fn at_provider(url: &str, login_hint: &str) -> String {
    let mut url = Url::parse(url).unwrap();
    url.query_pairs_mut().append_pair("login_hint", login_hint);
    let mut cookies: HashMap<String, String> = HashMap::new();
    for _ in 0..10 {
        let cookie = cookies
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let response = http()
            .get(url.clone())
            .header("cookie", cookie)
            .send()
            .await
            .unwrap();
        for set in response.headers().get_all("set-cookie") {
            let pair = set.to_str().unwrap().split(';').next().unwrap();
            if let Some((n, v)) = pair.split_once('=') {
                cookies.insert(n.to_owned(), v.to_owned());
            }
        }
        let location = response
            .headers()
            .get("location")
            .expect("the provider redirects")
            .to_str()
            .unwrap()
            .to_owned();
        let next = url.join(&location).unwrap();
        if next.path() == "/auth/oidc/callback" {
            return next.query().unwrap_or_default().to_owned();
        }
        url = next;
    }
    panic!("the provider never sent the browser back");
}

/// The browser back at our callback with `cookie`: the status and the `Location`.
async fn callback(app: &TestApp, query: &str, cookie: Option<&str>) -> (u16, Option<String>) {
    let mut request = http().get(app.url(&format!("/auth/oidc/callback?{query}")));
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    let response = request.send().await.unwrap();
    let location = response
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_owned());
    (response.status().as_u16(), location)
}

fn param(location: &str, name: &str) -> Option<String> {
    Url::parse(location)
        .unwrap()
        .query_pairs()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.into_owned())
}

async fn finish(app: &TestApp, code: &str) -> Value {
    app.graphql(
        "mutation($i: FinishSocialSignInInput!) { finishSocialSignIn(input: $i) { accessToken user { email } } }",
        json!({ "i": { "code": code } }),
    )
    .await
}

fn address(name: &str) -> String {
    format!("{name}-{}@example.com", uuid::Uuid::new_v4().simple())
}

#[tokio::test]
async fn a_bearer_client_signs_up_through_the_provider_with_a_one_time_code() {
    let Some(issuer) = test_issuer() else { return };
    let app = app_with_provider(&issuer).await;
    let providers = app
        .graphql("{ socialProviders { id name } }", json!({}))
        .await;
    assert_eq!(
        providers["data"]["socialProviders"],
        json!([{ "id": "corp", "name": "Corp" }])
    );
    let email = address("ada");
    let (url, cookie) = start(&app).await;
    let query = at_provider(&url, &format!("verified:{email}")).await;

    // Another browser (no binding, or another one) gets a plain 400, and the flow stays.
    assert_eq!(callback(&app, &query, None).await, (400, None));
    assert_eq!(
        callback(&app, &query, Some("authgraph-oidc=someone-else")).await,
        (400, None)
    );
    let (status, location) = callback(&app, &query, Some(&cookie)).await;
    assert_eq!(status, 303);
    let location = location.unwrap();
    assert!(location.starts_with(DONE), "{location}");
    let code = param(&location, "code").expect("a code, never tokens");
    assert_eq!(param(&location, "access_token"), None);

    // Replayed callback: the flow was used.
    assert_eq!(callback(&app, &query, Some(&cookie)).await, (400, None));

    let signed_in = finish(&app, &code).await;
    assert_no_errors(&signed_in);
    assert_eq!(
        signed_in["data"]["finishSocialSignIn"]["user"]["email"],
        email.as_str()
    );
    let token = signed_in["data"]["finishSocialSignIn"]["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    // The code works once.
    assert_eq!(error_code(&finish(&app, &code).await), "BAD_USER_INPUT");

    let me = app
        .graphql_as(
            &token,
            "{ me { identities { provider subject email } } }",
            json!({}),
        )
        .await;
    assert_no_errors(&me);
    assert_eq!(me["data"]["me"]["identities"][0]["provider"], "corp");
    assert_eq!(me["data"]["me"]["identities"][0]["email"], email.as_str());
    // Its only way in: unlinking is refused.
    let unlink = app
        .graphql_as(
            &token,
            "mutation { unlinkSocialIdentity(input: { provider: \"corp\" }) }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&unlink), "CONFLICT");
    // And no password opens it.
    assert_eq!(
        error_code(&app.login(&email, "correct horse battery staple").await),
        "UNAUTHENTICATED"
    );
}

#[tokio::test]
async fn a_provider_email_of_an_existing_account_is_refused_with_its_reason() {
    let Some(issuer) = test_issuer() else { return };
    let app = app_with_provider(&issuer).await;
    let email = address("bob");
    app.register(&email, "correct horse battery staple").await;

    let (url, cookie) = start(&app).await;
    let query = at_provider(&url, &format!("unverified:{email}")).await;
    let (_, location) = callback(&app, &query, Some(&cookie)).await;
    assert_eq!(
        param(&location.unwrap(), "error").as_deref(),
        Some("UNVERIFIED_PROVIDER_EMAIL")
    );
}

#[tokio::test]
async fn a_redirect_off_the_allowed_origins_is_refused() {
    let Some(issuer) = test_issuer() else { return };
    let app = app_with_provider(&issuer).await;
    let refused = app
        .graphql(
            "mutation { startSocialSignIn(input: { provider: \"corp\", redirectTo: \"https://evil.example/\" }) { authorizationUrl } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&refused), "BAD_USER_INPUT");
}

#[tokio::test]
async fn starting_sign_ins_is_rate_limited_per_client_address() {
    let Some(issuer) = test_issuer() else { return };
    let app = app_with_provider_and(&issuer, |config| {
        config.rate_limits.rate_limits = true;
        config.rate_limits.rate_limit_social = "2/10m".parse().unwrap();
    })
    .await;
    start(&app).await;
    start(&app).await;
    let limited = app
        .graphql(
            "mutation($i: StartSocialSignInInput!) { startSocialSignIn(input: $i) { authorizationUrl } }",
            json!({ "i": { "provider": "corp", "redirectTo": DONE } }),
        )
        .await;
    assert_eq!(error_code(&limited), "RATE_LIMITED");
    assert!(
        limited["errors"][0]["extensions"]["retryAfter"].as_u64() > Some(0),
        "{limited}"
    );
}

/// The frontend's origin on the deployments with cookie sessions.
const FRONTEND: &str = "http://localhost:3000";

/// The app with provider `corp` and cookie sessions for pages of `FRONTEND`.
async fn cookie_app(issuer: &str) -> TestApp {
    app_with_provider_and(issuer, |config| {
        config.browsers.session_cookies = true;
        config.browsers.cors_allowed_origins = vec![FRONTEND.into()];
    })
    .await
}

/// A browser's cookie jar.
#[derive(Default)]
struct Jar(BTreeMap<String, String>);

impl Jar {
    fn header(&self) -> String {
        self.0
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Keeps what a response set (and drops what it cleared); the names it set.
    fn keep(&mut self, response: &reqwest::Response) -> Vec<String> {
        let mut set = Vec::new();
        for value in response.headers().get_all("set-cookie") {
            let cookie = cookie::Cookie::parse(value.to_str().unwrap().to_owned()).unwrap();
            if cookie.max_age() == Some(cookie::time::Duration::ZERO) {
                self.0.remove(cookie.name());
            } else {
                self.0
                    .insert(cookie.name().to_owned(), cookie.value().to_owned());
                set.push(cookie.name().to_owned());
            }
        }
        set
    }

    fn get(&self, name: &str) -> Option<String> {
        self.0.get(name).cloned()
    }

    /// A request from a page of `FRONTEND` (a fetch with `credentials: 'include'`).
    async fn post(&mut self, app: &TestApp, query: &str, variables: Value) -> Value {
        let response = http()
            .post(app.url("/graphql"))
            .header("origin", FRONTEND)
            .header("sec-fetch-site", "same-site")
            .header("cookie", self.header())
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await
            .unwrap();
        self.keep(&response);
        response.json().await.unwrap()
    }

    /// The provider's redirect back: a top-level navigation from another site, with this
    /// jar's cookies (all SameSite=Lax, so they come along). The status and `Location`.
    async fn callback(&mut self, app: &TestApp, query: &str) -> (u16, Option<String>) {
        let response = http()
            .get(app.url(&format!("/auth/oidc/callback?{query}")))
            .header("sec-fetch-site", "cross-site")
            .header("cookie", self.header())
            .send()
            .await
            .unwrap();
        self.keep(&response);
        let location = response
            .headers()
            .get("location")
            .map(|l| l.to_str().unwrap().to_owned());
        (response.status().as_u16(), location)
    }

    async fn start(&mut self, app: &TestApp) -> String {
        let started = self
            .post(
                app,
                "mutation($i: StartSocialSignInInput!) { startSocialSignIn(input: $i) { authorizationUrl } }",
                json!({ "i": { "provider": "corp", "redirectTo": format!("{FRONTEND}/done") } }),
            )
            .await;
        assert_no_errors(&started);
        assert!(self.get("authgraph-oidc").is_some(), "a binding cookie");
        started["data"]["startSocialSignIn"]["authorizationUrl"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}

#[tokio::test]
async fn a_browser_with_cookie_sessions_is_signed_in_by_the_callback_and_its_old_session_ends() {
    let Some(issuer) = test_issuer() else { return };
    let app = cookie_app(&issuer).await;
    let mut browser = Jar::default();
    // The browser holds a session already (one an attacker could have planted in it).
    let planted = address("planted");
    let registered = browser
        .post(
            &app,
            REGISTER,
            json!({ "input": { "email": planted, "password": PASSWORD } }),
        )
        .await;
    assert_no_errors(&registered);
    let old_refresh = browser.get("authgraph-refresh").expect("a refresh cookie");

    let email = address("cara");
    let url = browser.start(&app).await;
    let query = at_provider(&url, &format!("verified:{email}")).await;
    let before = browser.0.clone();
    let (status, location) = browser.callback(&app, &query).await;
    assert_eq!(status, 303);
    // Signed in by cookies: redirectTo as it was, no code and never a token in the URL.
    assert_eq!(
        location.as_deref(),
        Some(format!("{FRONTEND}/done").as_str())
    );
    let new_refresh = browser.get("authgraph-refresh").unwrap();
    assert_ne!(new_refresh, old_refresh, "a new session in the cookies");
    assert_ne!(
        browser.get("authgraph-access"),
        before.get("authgraph-access").cloned()
    );

    let me = browser.post(&app, ME, json!({})).await;
    assert_no_errors(&me);
    assert_eq!(me["data"]["me"]["email"], email.as_str());

    // The session the browser held before is over, for whoever kept its cookie.
    let mut keeper = Jar::default();
    keeper.0.insert("authgraph-refresh".into(), old_refresh);
    let refreshed = keeper
        .post(
            &app,
            "mutation { refreshToken { user { email } } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&refreshed), "UNAUTHENTICATED", "{refreshed}");

    // The callback replayed in the same browser: the flow was used.
    assert_eq!(browser.callback(&app, &query).await, (400, None));
}

#[tokio::test]
async fn a_bearer_client_on_a_cookie_deployment_gets_a_one_time_code_not_cookies() {
    let Some(issuer) = test_issuer() else { return };
    let app = cookie_app(&issuer).await;
    // No Origin, no session cookies: a bearer client (its browser keeps the binding).
    let (url, binding) = start(&app).await;
    let email = address("dan");
    let query = at_provider(&url, &format!("verified:{email}")).await;
    let response = http()
        .get(app.url(&format!("/auth/oidc/callback?{query}")))
        .header("cookie", binding)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 303);
    let session_cookies: Vec<_> = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .filter(|c| c.starts_with("authgraph-access") || c.starts_with("authgraph-refresh"))
        .collect();
    assert!(session_cookies.is_empty(), "{session_cookies:?}");
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let code = param(&location, "code").expect("a one-time code");
    let finished = finish(&app, &code).await;
    assert_no_errors(&finished);
    assert!(finished["data"]["finishSocialSignIn"]["accessToken"].is_string());

    // And a browser page on the same deployment gets cookies, not a code.
    let mut browser = Jar::default();
    let url = browser.start(&app).await;
    let query = at_provider(&url, &format!("verified:{}", address("eve"))).await;
    let (status, location) = browser.callback(&app, &query).await;
    assert_eq!(status, 303);
    assert_eq!(param(&location.unwrap(), "code"), None);
    assert!(browser.get("authgraph-refresh").is_some());
}

const CONFIRM_LINK: &str = "mutation($i: ConfirmSocialLinkInput!) { confirmSocialLink(input: $i) }";

/// An account whose address is proved, signed in: its access token.
async fn verified_account(app: &TestApp, email: &str) -> String {
    let signed_up = app.register(email, PASSWORD).await;
    let token = app.link_token(email, "verify-email").await;
    let verified = app
        .graphql(
            "mutation($i: VerifyEmailInput!) { verifyEmail(input: $i) { id } }",
            json!({ "i": { "token": token } }),
        )
        .await;
    assert_no_errors(&verified);
    // A link emailed in the second the account last changed is void (whole-second
    // timestamps on MariaDB): let that second pass.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    signed_up.access_token.expect("a bearer access token")
}

/// A sign-in with the provider vouching for `email`, which an account proved: refused with
/// ACCOUNT_EXISTS, and the account is emailed a link; that link's token.
async fn account_exists(app: &TestApp, email: &str) -> String {
    let (url, cookie) = start(app).await;
    let query = at_provider(&url, &format!("verified:{email}")).await;
    let (_, location) = callback(app, &query, Some(&cookie)).await;
    assert_eq!(
        param(&location.unwrap(), "error").as_deref(),
        Some("ACCOUNT_EXISTS")
    );
    app.link_token(email, "link-identity").await
}

async fn identities(app: &TestApp, token: &str) -> Vec<Value> {
    let me = app
        .graphql_as(token, "{ me { identities { provider email } } }", json!({}))
        .await;
    assert_no_errors(&me);
    me["data"]["me"]["identities"].as_array().unwrap().clone()
}

#[tokio::test]
async fn the_emailed_link_of_an_existing_account_links_the_identity_once() {
    let Some(issuer) = test_issuer() else { return };
    let app = app_with_provider(&issuer).await;
    let email = address("fay");
    let access = verified_account(&app, &email).await;
    let token = account_exists(&app, &email).await;
    assert!(identities(&app, &access).await.is_empty(), "never silently");

    let confirmed = app
        .graphql(CONFIRM_LINK, json!({ "i": { "token": token } }))
        .await;
    assert_no_errors(&confirmed);
    assert_eq!(confirmed["data"]["confirmSocialLink"], true);
    assert_eq!(identities(&app, &access).await.len(), 1);

    // Replayed: refused.
    let replayed = app
        .graphql(CONFIRM_LINK, json!({ "i": { "token": token } }))
        .await;
    assert_eq!(error_code(&replayed), "BAD_USER_INPUT");
    // A made-up token too.
    let forged = app
        .graphql(CONFIRM_LINK, json!({ "i": { "token": "not-a-link" } }))
        .await;
    assert_eq!(error_code(&forged), "BAD_USER_INPUT");

    // The provider's sign-in now opens that account.
    let (url, cookie) = start(&app).await;
    let query = at_provider(&url, &format!("verified:{email}")).await;
    let (_, location) = callback(&app, &query, Some(&cookie)).await;
    let code = param(&location.unwrap(), "code").expect("a code");
    let signed_in = finish(&app, &code).await;
    assert_no_errors(&signed_in);
    assert_eq!(
        signed_in["data"]["finishSocialSignIn"]["user"]["email"],
        email.as_str()
    );
}

#[tokio::test]
async fn the_emailed_link_is_void_once_the_account_changed() {
    let Some(issuer) = test_issuer() else { return };
    let app = app_with_provider(&issuer).await;
    let email = address("gus");
    let access = verified_account(&app, &email).await;
    let token = account_exists(&app, &email).await;
    // The owner changes the password (say, fearing the email was someone's attack) before
    // anyone follows the link.
    let changed = app
        .graphql_as(
            &access,
            "mutation($i: ChangePasswordInput!) { changePassword(input: $i) }",
            json!({ "i": { "currentPassword": PASSWORD, "newPassword": "another horse battery staple" } }),
        )
        .await;
    assert_no_errors(&changed);

    let stale = app
        .graphql(CONFIRM_LINK, json!({ "i": { "token": token } }))
        .await;
    assert_eq!(error_code(&stale), "BAD_USER_INPUT");
    let signed_in = app.sign_in(&email, "another horse battery staple").await;
    let access = signed_in.access_token.unwrap();
    assert!(identities(&app, &access).await.is_empty());
}

/// `query` with its parameter `name` set to `value`.
fn with_param(query: &str, name: &str, value: &str) -> String {
    let mut url = Url::parse(&format!("http://x/?{query}")).unwrap();
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(n, v)| {
            let v = if n == name {
                value.to_owned()
            } else {
                v.into_owned()
            };
            (n.into_owned(), v)
        })
        .collect();
    url.query_pairs_mut().clear().extend_pairs(pairs);
    url.query().unwrap().to_owned()
}

#[tokio::test]
async fn an_answer_naming_another_issuer_is_refused_and_the_flow_is_spent() {
    let Some(issuer) = test_issuer() else { return };
    let app = app_with_provider(&issuer).await;
    let (url, cookie) = start(&app).await;
    let query = at_provider(&url, &format!("verified:{}", address("ivy"))).await;
    assert!(
        query.contains("iss="),
        "the provider sends RFC 9207 iss: {query}"
    );
    let forged = with_param(&query, "iss", "https://evil.example");
    let (status, location) = callback(&app, &forged, Some(&cookie)).await;
    assert_eq!(status, 303);
    let location = location.unwrap();
    assert_eq!(
        param(&location, "error").as_deref(),
        Some("invalid_response")
    );
    assert_eq!(param(&location, "code"), None);
    // The genuine answer afterwards finds no flow: one try per flow.
    assert_eq!(callback(&app, &query, Some(&cookie)).await, (400, None));
}

#[tokio::test]
async fn a_code_from_another_flow_fails_its_pkce_verifier() {
    let Some(issuer) = test_issuer() else { return };
    let app = app_with_provider(&issuer).await;
    // The victim's flow, and an attacker's own flow whose code they inject into it (code
    // injection): the victim's verifier does not match the attacker's challenge.
    let (victim_url, victim_cookie) = start(&app).await;
    let victim = at_provider(&victim_url, &format!("verified:{}", address("jo"))).await;
    let (attacker_url, _) = start(&app).await;
    let attacker = at_provider(&attacker_url, &format!("verified:{}", address("mal"))).await;
    let injected_code = param(&format!("http://x/?{attacker}"), "code").unwrap();
    let injected = with_param(&victim, "code", &injected_code);
    let (status, location) = callback(&app, &injected, Some(&victim_cookie)).await;
    assert_eq!(status, 303);
    let location = location.unwrap();
    assert_eq!(
        param(&location, "error").as_deref(),
        Some("invalid_response")
    );
    assert_eq!(param(&location, "code"), None);
}

#[tokio::test]
async fn a_flow_older_than_ten_minutes_finds_nothing() {
    let Some(issuer) = test_issuer() else { return };
    let app = app_with_provider(&issuer).await;
    let (url, cookie) = start(&app).await;
    let query = at_provider(&url, &format!("verified:{}", address("kim"))).await;
    app.clock
        .advance(std::time::Duration::from_secs(10 * 60 + 1));
    assert_eq!(callback(&app, &query, Some(&cookie)).await, (400, None));
}
