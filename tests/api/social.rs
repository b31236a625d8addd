//! Social sign-in over HTTP against a real provider (`tests/oidc-provider`, named by
//! `OIDC_TEST_ISSUER`): the start mutation, the provider's redirects followed by hand, the
//! callback, and the one-time code a bearer client exchanges. Skipped without a provider
//! unless REQUIRE_ALL_DATABASES=1.

use std::collections::HashMap;

use openidconnect::url::Url;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_no_errors, error_code, skip_unless, spawn_app_with};

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
