//! Browser sessions in HttpOnly cookies (`SESSION_COOKIES=true`): what a browser on an allowed
//! origin gets, how each way a session ends reaches its cookies, and the attacks cookies
//! invite (a page of another site riding on them, a planted session, a replayed cookie).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use cookie::Cookie;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{
    LOGIN, ME, PASSWORD, REGISTER, TestApp, assert_no_errors, data_str, error_code, only_error,
    spawn_app_with, token_claims, unique_email,
};
use crate::mfa::code_at;
use authgraph::application::ports::Clock;

const APP_ORIGIN: &str = "https://app.example.com";
const REFRESH: &str =
    "mutation { refreshToken { accessToken refreshToken expiresIn user { email } } }";
const LOGOUT: &str = "mutation { logout }";
const LOGOUT_ALL: &str = "mutation { logoutAll }";

async fn cookie_app() -> TestApp {
    spawn_app_with(|c| {
        c.browsers.session_cookies = true;
        c.browsers.cors_allowed_origins = vec![APP_ORIGIN.into()];
    })
    .await
}

/// A browser with a cookie jar, on a page of `origin`, as Fetch Metadata describes it.
struct Browser<'a> {
    app: &'a TestApp,
    origin: Option<&'static str>,
    site: Option<&'static str>,
    jar: Mutex<BTreeMap<String, String>>,
}

/// An answer: its status, the cookies it set (attributes and all), and its body.
struct Answer {
    status: StatusCode,
    set_cookies: Vec<Cookie<'static>>,
    body: Value,
}

impl Answer {
    fn set_cookie(&self, name: &str) -> &Cookie<'static> {
        self.set_cookies
            .iter()
            .find(|c| c.name() == name)
            .unwrap_or_else(|| panic!("no Set-Cookie {name} in {:?}", self.set_cookies))
    }

    fn clears(&self, name: &str) -> bool {
        self.set_cookies
            .iter()
            .any(|c| c.name() == name && c.max_age() == Some(cookie::time::Duration::ZERO))
    }
}

impl<'a> Browser<'a> {
    /// A page of the allowed frontend, on the same site as the API.
    fn on_app(app: &'a TestApp) -> Self {
        Self::at(app, Some(APP_ORIGIN), Some("same-site"))
    }

    fn at(app: &'a TestApp, origin: Option<&'static str>, site: Option<&'static str>) -> Self {
        Self {
            app,
            origin,
            site,
            jar: Mutex::default(),
        }
    }

    /// Another page in the same browser: the same cookies, another origin.
    fn page(&self, origin: Option<&'static str>, site: Option<&'static str>) -> Self {
        Self {
            app: self.app,
            origin,
            site,
            jar: Mutex::new(self.jar.lock().unwrap().clone()),
        }
    }

    fn cookie(&self, name: &str) -> Option<String> {
        self.jar.lock().unwrap().get(name).cloned()
    }

    fn set(&self, name: &str, value: &str) {
        self.jar
            .lock()
            .unwrap()
            .insert(name.to_owned(), value.to_owned());
    }

    fn cookie_header(&self) -> String {
        self.jar
            .lock()
            .unwrap()
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn post(&self, query: &str, variables: Value) -> Answer {
        let mut request = self
            .app
            .client
            .post(self.app.url("/graphql"))
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(origin) = self.origin {
            request = request.header("origin", origin);
        }
        if let Some(site) = self.site {
            request = request.header("sec-fetch-site", site);
        }
        let cookies = self.cookie_header();
        if !cookies.is_empty() {
            request = request.header("cookie", cookies);
        }
        let response = request.send().await.expect("the server answers");
        let status = response.status();
        let set_cookies: Vec<Cookie<'static>> = response
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| Cookie::parse(v.to_str().unwrap().to_owned()).unwrap())
            .collect();
        {
            let mut jar = self.jar.lock().unwrap();
            for cookie in &set_cookies {
                if cookie.max_age() == Some(cookie::time::Duration::ZERO) {
                    jar.remove(cookie.name());
                } else {
                    jar.insert(cookie.name().to_owned(), cookie.value().to_owned());
                }
            }
        }
        let body = response.json().await.expect("a JSON body");
        Answer {
            status,
            set_cookies,
            body,
        }
    }

    async fn register(&self, email: &str) -> Answer {
        let answer = self
            .post(
                REGISTER,
                json!({ "input": { "email": email, "password": PASSWORD } }),
            )
            .await;
        assert_no_errors(&answer.body);
        answer
    }

    async fn login(&self, email: &str) -> Answer {
        self.post(
            LOGIN,
            json!({ "input": { "email": email, "password": PASSWORD } }),
        )
        .await
    }

    async fn me(&self) -> Answer {
        self.post(ME, json!({})).await
    }
}

#[tokio::test]
async fn a_browser_on_an_allowed_origin_keeps_its_session_in_cookies_scripts_cannot_read() {
    let app = cookie_app().await;
    let browser = Browser::on_app(&app);
    let email = unique_email();

    let signed_up = browser.register(&email).await;
    let payload = &signed_up.body["data"]["register"];
    assert_eq!(payload["refreshToken"], Value::Null, "never in the body");
    assert_eq!(payload["accessToken"], Value::Null, "never in the body");

    let access = signed_up.set_cookie("authgraph-access");
    let refresh = signed_up.set_cookie("authgraph-refresh");
    for cookie in [access, refresh] {
        assert_eq!(cookie.http_only(), Some(true), "{cookie}");
        assert_eq!(cookie.same_site(), Some(cookie::SameSite::Lax), "{cookie}");
        assert_eq!(cookie.path(), Some("/"), "{cookie}");
        assert_eq!(cookie.domain(), None, "host-only: {cookie}");
        // Development over http://localhost: production adds Secure and __Host- names.
        assert_eq!(cookie.secure(), None, "{cookie}");
    }
    assert_eq!(token_claims(access.value())["sub"], payload["user"]["id"]);
    assert_eq!(access.max_age(), Some(cookie::time::Duration::seconds(900)));
    // The session's idle timeout (30 days by default): the cookie lives as long.
    assert_eq!(
        refresh.max_age(),
        Some(cookie::time::Duration::days(30)),
        "{refresh}"
    );
    assert_eq!(
        cache_control_of_a_cookie_request(&app, &browser).await,
        "no-store",
        "an answer with a session in it is never cached"
    );

    // The cookie alone signs the browser in.
    let me = browser.me().await;
    assert_no_errors(&me.body);
    assert_eq!(me.body["data"]["me"]["email"], email.as_str());
}

/// The `Cache-Control` of an answer to a cookie request.
async fn cache_control_of_a_cookie_request(app: &TestApp, browser: &Browser<'_>) -> String {
    let response = app
        .client
        .post(app.url("/graphql"))
        .header("origin", APP_ORIGIN)
        .header("cookie", browser.cookie_header())
        .json(&json!({ "query": ME }))
        .send()
        .await
        .unwrap();
    response.headers()["cache-control"]
        .to_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn production_cookies_are_secure_and_bound_to_this_host() {
    let app = spawn_app_with(|c| {
        c.app_env = Some(authgraph::config::AppEnv::Production);
        c.tokens.jwt_secret =
            Some("pYyU3mZ0c7mNnY5wZ3Nw2hQ0zvJc5F0b6wqQm1o4J9k5TqW8nVbR2xXl3sA7eD1g".into());
        c.browsers.session_cookies = true;
        c.browsers.cors_allowed_origins = vec![APP_ORIGIN.into()];
    })
    .await;
    let browser = Browser::on_app(&app);
    let signed_up = browser.register(&unique_email()).await;
    for name in ["__Host-authgraph-access", "__Host-authgraph-refresh"] {
        let cookie = signed_up.set_cookie(name);
        assert_eq!(cookie.secure(), Some(true), "{cookie}");
        assert_eq!(cookie.http_only(), Some(true), "{cookie}");
        assert_eq!(cookie.path(), Some("/"), "{cookie}");
        assert_eq!(cookie.domain(), None, "{cookie}");
    }
    assert_no_errors(&browser.me().await.body);
}

#[tokio::test]
async fn refresh_and_logout_take_the_session_from_the_cookie() {
    let app = cookie_app().await;
    let browser = Browser::on_app(&app);
    browser.register(&unique_email()).await;
    let first_refresh = browser.cookie("authgraph-refresh").unwrap();
    let first_access = browser.cookie("authgraph-access").unwrap();

    let refreshed = browser.post(REFRESH, json!({})).await;
    assert_no_errors(&refreshed.body);
    assert_eq!(
        refreshed.body["data"]["refreshToken"]["refreshToken"],
        Value::Null
    );
    let second_refresh = browser.cookie("authgraph-refresh").unwrap();
    assert_ne!(second_refresh, first_refresh, "rotated");
    assert_no_errors(&browser.me().await.body);

    let logout = browser.post(LOGOUT, json!({})).await;
    assert_no_errors(&logout.body);
    assert!(logout.clears("authgraph-access") && logout.clears("authgraph-refresh"));
    assert_eq!(browser.cookie("authgraph-refresh"), None);

    // The cookies were voided on the server too, not only cleared in this browser.
    let copy = browser.page(Some(APP_ORIGIN), Some("same-site"));
    copy.set("authgraph-access", &first_access);
    assert_eq!(error_code(&copy.me().await.body), "UNAUTHENTICATED");
    copy.set("authgraph-refresh", &second_refresh);
    assert_eq!(
        error_code(&copy.post(REFRESH, json!({})).await.body),
        "UNAUTHENTICATED"
    );
    // With no cookie at all, the call says what is missing.
    let signed_out = browser.post(REFRESH, json!({})).await;
    assert_eq!(error_code(&signed_out.body), "UNAUTHENTICATED");
    assert!(
        only_error(&signed_out.body)
            .message
            .contains("No refresh token")
    );
}

#[tokio::test]
async fn every_way_a_session_ends_voids_its_cookies_and_the_next_answer_clears_them() {
    let app = cookie_app().await;

    // Ended from this browser: the answer itself clears the cookies.
    let browser = Browser::on_app(&app);
    browser.register(&unique_email()).await;
    let ended = browser.post(LOGOUT_ALL, json!({})).await;
    assert_eq!(ended.body["data"]["logoutAll"], 1);
    assert!(ended.clears("authgraph-access") && ended.clears("authgraph-refresh"));

    let browser = Browser::on_app(&app);
    let email = unique_email();
    browser.register(&email).await;
    let sessions = browser
        .post("{ sessions { edges { node { id current } } } }", json!({}))
        .await;
    let current = sessions.body["data"]["sessions"]["edges"][0]["node"]["id"].clone();
    let revoked = browser
        .post(
            "mutation($input: RevokeSessionInput!) { revokeSession(input: $input) }",
            json!({ "input": { "id": current } }),
        )
        .await;
    assert_no_errors(&revoked.body);
    assert!(revoked.clears("authgraph-refresh"));

    let browser = Browser::on_app(&app);
    browser.register(&unique_email()).await;
    let deleted = browser
        .post(
            "mutation($input: DeleteAccountInput!) { deleteAccount(input: $input) }",
            json!({ "input": { "password": PASSWORD } }),
        )
        .await;
    assert_no_errors(&deleted.body);
    assert!(deleted.clears("authgraph-access") && deleted.clears("authgraph-refresh"));

    // Ended elsewhere (a password changed on another device, an administrator's suspension,
    // a password reset): the cookies are dead at once, and the first answer that refuses
    // each one clears it.
    for how in ["password change", "suspension", "password reset"] {
        let browser = Browser::on_app(&app);
        let email = unique_email();
        browser.register(&email).await;
        match how {
            "password change" => change_password_elsewhere(&app, email).await,
            "suspension" => suspend(&app, email).await,
            _ => reset_password(&app, email).await,
        }

        let me = browser.me().await;
        assert_ne!(me.body["errors"], Value::Null, "{how}: {}", me.body);
        assert!(me.clears("authgraph-access"), "{how}");
        let refresh = browser.post(REFRESH, json!({})).await;
        assert_ne!(refresh.body["errors"], Value::Null, "{how}");
        assert!(refresh.clears("authgraph-refresh"), "{how}");
        assert_eq!(browser.cookie_header(), "", "{how}");
    }
}

async fn change_password_elsewhere(app: &TestApp, email: String) {
    let other = app.login(&email, PASSWORD).await;
    let body = app
        .graphql_as(
            data_str(&other, &["login", "accessToken"]),
            "mutation($input: ChangePasswordInput!) { changePassword(input: $input) }",
            json!({ "input": { "currentPassword": PASSWORD, "newPassword": "a brand new password" } }),
        )
        .await;
    assert_no_errors(&body);
}

async fn suspend(app: &TestApp, email: String) {
    let admin = app.admin().await;
    let user = app.login(&email, PASSWORD).await;
    let body = app
        .graphql_as(
            &admin.access(),
            "mutation($input: SuspendUserInput!) { suspendUser(input: $input) { id } }",
            json!({ "input": {
                "userId": user["data"]["login"]["user"]["id"],
                "reason": "testing",
            } }),
        )
        .await;
    assert_no_errors(&body);
}

async fn reset_password(app: &TestApp, email: String) {
    app.graphql(
        "mutation($input: RequestPasswordResetInput!) { requestPasswordReset(input: $input) }",
        json!({ "input": { "email": email } }),
    )
    .await;
    let token = app.link_token(&email, "reset-password").await;
    let body = app
        .graphql(
            "mutation($input: ResetPasswordInput!) { resetPassword(input: $input) { accessToken } }",
            json!({ "input": { "token": token, "newPassword": "a brand new password" } }),
        )
        .await;
    assert_no_errors(&body);
}

#[tokio::test]
async fn a_replayed_refresh_cookie_ends_the_session_for_thief_and_owner() {
    let app = spawn_app_with(|c| {
        c.browsers.session_cookies = true;
        c.browsers.cors_allowed_origins = vec![APP_ORIGIN.into()];
        c.sessions.refresh_token_reuse_grace = Duration::ZERO;
    })
    .await;
    let owner = Browser::on_app(&app);
    owner.register(&unique_email()).await;
    // The thief copied the cookie (malware, a shared machine) and uses it after the owner's
    // browser has refreshed.
    let thief = owner.page(Some(APP_ORIGIN), Some("same-site"));
    assert_no_errors(&owner.post(REFRESH, json!({})).await.body);

    let replay = thief.post(REFRESH, json!({})).await;
    assert_eq!(error_code(&replay.body), "UNAUTHENTICATED");
    assert!(replay.clears("authgraph-refresh"));
    let owner_after = owner.post(REFRESH, json!({})).await;
    assert_eq!(error_code(&owner_after.body), "UNAUTHENTICATED");
    assert!(owner_after.clears("authgraph-refresh"));
    assert_eq!(error_code(&owner.me().await.body), "UNAUTHENTICATED");
}

#[tokio::test]
async fn two_tabs_refreshing_at_once_stay_signed_in_without_weakening_reuse_detection() {
    let app = cookie_app().await;
    // The tabs land within the window by the app's clock, however slow the machine.
    app.clock.hold();
    let tab = Browser::on_app(&app);
    tab.register(&unique_email()).await;
    let shared = tab.cookie("authgraph-refresh").unwrap();

    // Four tabs of one browser send the same cookie at once.
    let tabs: Vec<Browser> = (0..4)
        .map(|_| tab.page(Some(APP_ORIGIN), Some("same-site")))
        .collect();
    let answers =
        futures_util::future::join_all(tabs.iter().map(|t| t.post(REFRESH, json!({})))).await;
    for answer in &answers {
        assert_no_errors(&answer.body);
    }
    // Whichever answer the browser stored last, its session goes on.
    let last = &tabs[3];
    assert_no_errors(&last.me().await.body);
    assert_no_errors(&last.post(REFRESH, json!({})).await.body);

    // The raced token, replayed after the grace window, is theft: the session ends.
    app.clock.advance(Duration::from_secs(60));
    let replay = tab.page(Some(APP_ORIGIN), Some("same-site"));
    replay.set("authgraph-refresh", &shared);
    assert_eq!(
        error_code(&replay.post(REFRESH, json!({})).await.body),
        "UNAUTHENTICATED"
    );
    assert_eq!(
        error_code(&last.post(REFRESH, json!({})).await.body),
        "UNAUTHENTICATED"
    );
}

#[tokio::test]
async fn every_sign_in_starts_a_new_session_and_ends_the_one_the_browser_brought() {
    let app = cookie_app().await;
    // An attacker signs in on their own account and plants their session's cookies in the
    // victim's browser, hoping the victim's sign-in upgrades it (session fixation).
    let attacker = Browser::on_app(&app);
    attacker.register(&unique_email()).await;
    let victim = attacker.page(Some(APP_ORIGIN), Some("same-site"));
    let planted_refresh = attacker.cookie("authgraph-refresh").unwrap();
    let planted_access = attacker.cookie("authgraph-access").unwrap();

    let victim_email = unique_email();
    victim.register(&victim_email).await;
    assert_ne!(victim.cookie("authgraph-refresh").unwrap(), planted_refresh);
    assert_ne!(victim.cookie("authgraph-access").unwrap(), planted_access);
    assert_eq!(
        victim.me().await.body["data"]["me"]["email"],
        victim_email.as_str()
    );
    // The planted session did not survive the sign-in: it is ended, not upgraded.
    assert_eq!(error_code(&attacker.me().await.body), "UNAUTHENTICATED");
    assert_eq!(
        error_code(&attacker.post(REFRESH, json!({})).await.body),
        "UNAUTHENTICATED"
    );

    // The same for a sign-in on top of the browser's own earlier session.
    let before = victim.cookie("authgraph-refresh").unwrap();
    assert_no_errors(&victim.login(&victim_email).await.body);
    let stale = victim.page(Some(APP_ORIGIN), Some("same-site"));
    stale.set("authgraph-refresh", &before);
    assert_eq!(
        error_code(&stale.post(REFRESH, json!({})).await.body),
        "UNAUTHENTICATED"
    );
    assert_no_errors(&victim.me().await.body);
}

#[tokio::test]
async fn pages_of_other_origins_are_refused_before_anything_runs() {
    let app = cookie_app().await;
    let user = Browser::on_app(&app);
    user.register(&unique_email()).await;

    let attacks = [
        // Another site altogether.
        (
            Some("https://evil.example.net"),
            Some("cross-site"),
            "CROSS_SITE_REQUEST",
        ),
        // A sibling subdomain: the same site, so SameSite lets the cookies through.
        (
            Some("https://user-content.example.com"),
            Some("same-site"),
            "ORIGIN_NOT_ALLOWED",
        ),
        // A browser without Fetch Metadata still names the origin.
        (Some("https://evil.example.net"), None, "ORIGIN_NOT_ALLOWED"),
        // Sandboxed frames and file:// pages.
        (Some("null"), Some("cross-site"), "CROSS_SITE_REQUEST"),
        (Some("null"), None, "ORIGIN_NOT_ALLOWED"),
        // A request that hides where it comes from.
        (None, Some("same-site"), "ORIGIN_NOT_ALLOWED"),
    ];
    for (origin, site, reason) in attacks {
        let page = user.page(origin, site);
        let answer = page.post(LOGOUT_ALL, json!({})).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{origin:?} {site:?}");
        assert_eq!(error_code(&answer.body), "FORBIDDEN");
        assert_eq!(
            only_error(&answer.body).extensions.reason.as_deref(),
            Some(reason)
        );
        assert_eq!(answer.body["data"], Value::Null);
        assert!(answer.set_cookies.is_empty());
        // Reading is refused as much as changing.
        assert_eq!(page.me().await.status, StatusCode::FORBIDDEN);
        // Nor can such a page sign the browser in to an account of the attacker's choosing.
        let login = page.login("attacker@example.com").await;
        assert_eq!(login.status, StatusCode::FORBIDDEN);
    }
    // A form or text/plain post from another site is refused as such, before its body is
    // even read.
    let form = app
        .client
        .post(app.url("/graphql"))
        .header("origin", "https://evil.example.net")
        .header("sec-fetch-site", "cross-site")
        .header("cookie", user.cookie_header())
        .header("content-type", "application/x-www-form-urlencoded")
        .body("query=mutation+%7B+logoutAll+%7D")
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), StatusCode::FORBIDDEN);
    let form: Value = form.json().await.unwrap();
    assert_eq!(
        only_error(&form).extensions.reason.as_deref(),
        Some("CROSS_SITE_REQUEST")
    );
    // Nothing ran: the user is still signed in.
    assert_no_errors(&user.me().await.body);

    // The other layers hold on their own: no form or text/plain body, no mutation over GET.
    let form = app
        .client
        .post(app.url("/graphql"))
        .header("origin", APP_ORIGIN)
        .header("cookie", user.cookie_header())
        .header("content-type", "text/plain")
        .body(json!({ "query": LOGOUT_ALL }).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let over_get = app
        .client
        .get(app.url("/graphql"))
        .query(&[("query", LOGOUT_ALL)])
        .header("origin", APP_ORIGIN)
        .header("cookie", user.cookie_header())
        .send()
        .await
        .unwrap();
    assert_eq!(over_get.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_no_errors(&user.me().await.body);
}

#[tokio::test]
async fn credentials_are_allowed_for_the_listed_origins_only() {
    let app = cookie_app().await;
    let preflight = |origin: &'static str| {
        app.client
            .request(reqwest::Method::OPTIONS, app.url("/graphql"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
    };
    let allowed = preflight(APP_ORIGIN).await.unwrap();
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        APP_ORIGIN,
        "the origin itself, never *"
    );
    assert_eq!(
        allowed.headers()["access-control-allow-credentials"],
        "true"
    );
    let foreign = preflight("https://evil.example.net").await.unwrap();
    assert!(
        foreign
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
}

#[tokio::test]
async fn a_wildcard_origin_with_cookie_sessions_is_refused_at_startup() {
    let database = crate::helpers::TestDatabase::create().await;
    let config = crate::helpers::test_config(&database.url, |c| {
        c.browsers.session_cookies = true;
        c.browsers.cors_allowed_origins = vec!["https://app.example.com".into(), "*".into()];
    });
    let refused = authgraph::app::Application::build(&config)
        .await
        .err()
        .expect("the server refuses to start");
    assert!(
        refused.to_string().contains("CORS_ALLOWED_ORIGINS=*"),
        "{refused}"
    );
}

#[tokio::test]
async fn a_server_rendering_pages_forwards_the_browsers_cookies_and_passes_back_new_ones() {
    let app = cookie_app().await;
    let browser = Browser::on_app(&app);
    let email = unique_email();
    browser.register(&email).await;

    // The framework server forwards the browser's Cookie header, and nothing else of it.
    let server = browser.page(None, None);
    let me = server.me().await;
    assert_eq!(me.body["data"]["me"]["email"], email.as_str());
    // When the access cookie has expired, it refreshes for the browser, and passes the new
    // cookies back to it with the page.
    server.jar.lock().unwrap().remove("authgraph-access");
    let refreshed = server.post(REFRESH, json!({})).await;
    assert_no_errors(&refreshed.body);
    assert_eq!(
        refreshed.body["data"]["refreshToken"]["refreshToken"],
        Value::Null
    );
    refreshed.set_cookie("authgraph-access");
    refreshed.set_cookie("authgraph-refresh");
    assert_no_errors(&server.me().await.body);

    // Signing in through the framework server: it names the app's origin.
    let signing_in = Browser::at(&app, Some(APP_ORIGIN), None);
    let answer = signing_in.login(&email).await;
    assert_eq!(answer.body["data"]["login"]["refreshToken"], Value::Null);
    answer.set_cookie("authgraph-refresh");
}

#[tokio::test]
async fn bearer_clients_are_unchanged_when_cookie_sessions_are_on() {
    let app = cookie_app().await;
    let email = unique_email();
    // A native app or another service: no Origin, no cookies.
    let response = app
        .graphql_response(
            None,
            REGISTER,
            json!({ "input": { "email": email, "password": PASSWORD } }),
        )
        .await;
    assert!(response.headers().get("set-cookie").is_none());
    let body: Value = response.json().await.unwrap();
    let refresh = data_str(&body, &["register", "refreshToken"]).to_owned();
    let access = data_str(&body, &["register", "accessToken"]).to_owned();
    assert_no_errors(&app.me(&access).await);
    assert_no_errors(&app.refresh(&refresh).await);

    // An explicit Authorization header wins over a cookie the browser also holds.
    let browser = Browser::on_app(&app);
    browser.register(&unique_email()).await;
    let answer = app
        .client
        .post(app.url("/graphql"))
        .header("origin", APP_ORIGIN)
        .header("cookie", browser.cookie_header())
        .bearer_auth(&access)
        .json(&json!({ "query": ME }))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(answer["data"]["me"]["email"], email.as_str());
}

#[tokio::test]
async fn with_cookie_sessions_off_cookies_are_ignored_and_never_set() {
    let app = spawn_app_with(|c| c.browsers.cors_allowed_origins = vec![APP_ORIGIN.into()]).await;
    let browser = Browser::on_app(&app);
    let signed_up = browser.register(&unique_email()).await;
    assert!(signed_up.set_cookies.is_empty());
    assert!(signed_up.body["data"]["register"]["refreshToken"].is_string());
    // A cookie a browser sends anyway authenticates nothing.
    browser.set(
        "authgraph-access",
        signed_up.body["data"]["register"]["accessToken"]
            .as_str()
            .unwrap(),
    );
    assert_eq!(error_code(&browser.me().await.body), "UNAUTHENTICATED");
}

/// Script injected into the page reads every answer body it asks for: no answer to a browser
/// session may carry a token (a 15-minute bearer token taken away is a session taken away).
/// The cookies alone carry the session, for every way of signing in or proving it again.
#[tokio::test]
async fn no_answer_to_a_browser_carries_a_token_in_its_body() {
    let app = cookie_app().await;
    let browser = Browser::on_app(&app);
    let email = unique_email();
    const TOKENS: &str = "accessToken refreshToken tokenType expiresIn user { email }";

    let mut answers = vec![("register", browser.register(&email).await)];
    answers.push(("login", browser.login(&email).await));
    answers.push(("refreshToken", browser.post(REFRESH, json!({})).await));
    app.graphql(
        "mutation($input: RequestPasswordResetInput!) { requestPasswordReset(input: $input) }",
        json!({ "input": { "email": email } }),
    )
    .await;
    let reset = app.link_token(&email, "reset-password").await;
    answers.push((
        "resetPassword",
        browser
            .post(
                &format!("mutation($input: ResetPasswordInput!) {{ resetPassword(input: $input) {{ {TOKENS} }} }}"),
                json!({ "input": { "token": reset, "newPassword": PASSWORD } }),
            )
            .await,
    ));
    answers.push((
        "reauthenticate",
        browser
            .post(
                &format!("mutation($input: ReauthenticateInput!) {{ reauthenticate(input: $input) {{ {TOKENS} }} }}"),
                json!({ "input": { "password": PASSWORD } }),
            )
            .await,
    ));
    let enrollment = browser
        .post("mutation { enrollTotp { secret } }", json!({}))
        .await;
    let secret = data_str(&enrollment.body, &["enrollTotp", "secret"]).to_owned();
    let confirmed = browser
        .post(
            "mutation($input: ConfirmTotpInput!) { confirmTotp(input: $input) { recoveryCodes } }",
            json!({ "input": { "code": code_at(&secret, app.clock.now()) } }),
        )
        .await;
    assert_no_errors(&confirmed.body);
    let challenged = browser.login(&email).await;
    let ticket = challenged.body["errors"][0]["extensions"]["mfaTicket"]
        .as_str()
        .unwrap_or_else(|| panic!("MFA_REQUIRED: {}", challenged.body))
        .to_owned();
    let next_step = app.clock.now() + chrono::Duration::seconds(30);
    answers.push((
        "verifyMfa",
        browser
            .post(
                &format!("mutation($input: VerifyMfaInput!) {{ verifyMfa(input: $input) {{ {TOKENS} }} }}"),
                json!({ "input": { "ticket": ticket, "code": code_at(&secret, next_step) } }),
            )
            .await,
    ));

    for (name, answer) in &answers {
        assert_no_errors(&answer.body);
        let payload = &answer.body["data"][name];
        assert_eq!(
            payload["accessToken"],
            Value::Null,
            "{name}: {}",
            answer.body
        );
        assert_eq!(
            payload["refreshToken"],
            Value::Null,
            "{name}: {}",
            answer.body
        );
        assert_eq!(payload["user"]["email"], email.as_str(), "{name}");
        assert_eq!(payload["expiresIn"], 900, "{name}: when to refresh, still");
        let access = answer.set_cookie("authgraph-access");
        let body = answer.body.to_string();
        for cookie in &answer.set_cookies {
            assert!(!body.contains(cookie.value()), "{name}: {cookie} in {body}");
        }
        assert!(token_claims(access.value())["sub"].is_string(), "{name}");
    }
    // The cookies carry the session on their own.
    assert_no_errors(&browser.me().await.body);
}
