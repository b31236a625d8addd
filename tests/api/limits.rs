use std::time::Duration;

use serde_json::{Value, json};

use authgraph::application::ports::HashingLoad;
use authgraph::config::{Config, QuotaSetting, RateLimitStore};

use crate::helpers::{
    PASSWORD, REGISTER, TestApp, answers, assert_no_errors, error_code, metric_value, only_error,
    production_hashing, skip_unless, spawn_app_with, unique_email,
};

/// Limits on, with only what a test sets; everything else off.
fn only(set: impl FnOnce(&mut Config)) -> impl FnOnce(&mut Config) {
    move |c: &mut Config| {
        c.rate_limits.rate_limits = true;
        let off = QuotaSetting(None);
        c.rate_limits.rate_limit_login = off;
        c.rate_limits.rate_limit_login_account = off;
        c.rate_limits.rate_limit_register = off;
        c.rate_limits.rate_limit_refresh = off;
        c.rate_limits.rate_limit_password_reset = off;
        c.rate_limits.rate_limit_password_reset_account = off;
        c.rate_limits.rate_limit_password_confirm = off;
        c.rate_limits.rate_limit_password_confirm_account = off;
        c.rate_limits.rate_limit_email = off;
        c.rate_limits.rate_limit_email_recipient = off;
        c.rate_limits.login_lockout_after = 0;
        set(c);
    }
}

fn quota(s: &str) -> QuotaSetting {
    s.parse().unwrap()
}

fn assert_limited(body: &Value) -> u64 {
    assert_eq!(error_code(body), "RATE_LIMITED", "{body}");
    let retry = body["errors"][0]["extensions"]["retryAfter"]
        .as_u64()
        .unwrap_or_else(|| panic!("no retryAfter: {body}"));
    assert!(retry > 0);
    retry
}

async fn register(app: &TestApp, email: &str) -> Value {
    app.graphql(
        REGISTER,
        json!({ "input": { "email": email, "password": PASSWORD } }),
    )
    .await
}

#[tokio::test]
async fn the_sign_in_past_an_accounts_allowance_is_refused_and_hashes_nothing() {
    let app = spawn_app_with(only(|c| {
        c.rate_limits.rate_limit_login_account = quota("3/1h")
    }))
    .await;
    let email = unique_email();
    app.register(&email, PASSWORD).await;
    for _ in 0..3 {
        assert_no_errors(&app.login(&email, PASSWORD).await);
    }
    let hashed = app.hasher.completed();
    let refused = app.login(&email, PASSWORD).await;
    let retry = assert_limited(&refused);
    assert!((1..=1200).contains(&retry), "{retry}");
    assert_eq!(app.hasher.completed(), hashed, "no password was hashed");
    // Another account is not affected.
    let other = app.login(&unique_email(), PASSWORD).await;
    assert_eq!(error_code(&other), "UNAUTHENTICATED");
}

#[tokio::test]
async fn the_sign_in_past_an_addresss_allowance_is_refused_whatever_the_account() {
    let app = spawn_app_with(only(|c| c.rate_limits.rate_limit_login = quota("3/1m"))).await;
    for _ in 0..3 {
        assert_eq!(
            error_code(&app.login(&unique_email(), PASSWORD).await),
            "UNAUTHENTICATED"
        );
    }
    let hashed = app.hasher.completed();
    assert_limited(&app.login(&unique_email(), PASSWORD).await);
    assert_eq!(app.hasher.completed(), hashed);
}

#[tokio::test]
async fn repeated_failed_sign_ins_lock_the_account_for_longer_each_time() {
    let app = spawn_app_with(only(|c| {
        c.rate_limits.login_lockout_after = 3;
        c.rate_limits.login_lockout_base = Duration::from_secs(1);
        c.rate_limits.login_lockout_max = Duration::from_secs(60);
    }))
    .await;
    let email = unique_email();
    app.register(&email, PASSWORD).await;
    for _ in 0..3 {
        assert_eq!(
            error_code(&app.login(&email, "wrong password").await),
            "UNAUTHENTICATED"
        );
    }
    // Locked: even the right password is refused, before any hashing.
    let hashed = app.hasher.completed();
    assert_eq!(assert_limited(&app.login(&email, PASSWORD).await), 1);
    assert_eq!(app.hasher.completed(), hashed);

    app.clock.advance(Duration::from_millis(1100));
    assert_eq!(
        error_code(&app.login(&email, "wrong password").await),
        "UNAUTHENTICATED"
    );
    assert_eq!(
        assert_limited(&app.login(&email, PASSWORD).await),
        2,
        "the lock doubled"
    );

    app.clock.advance(Duration::from_millis(2100));
    assert_no_errors(&app.login(&email, PASSWORD).await);
    // The success forgave the failures: one more mistake does not lock again.
    assert_eq!(
        error_code(&app.login(&email, "wrong password").await),
        "UNAUTHENTICATED"
    );
    assert_no_errors(&app.login(&email, PASSWORD).await);
}

#[tokio::test]
async fn registrations_refreshes_and_password_resets_are_limited_per_address() {
    let app = spawn_app_with(only(|c| {
        c.rate_limits.rate_limit_register = quota("2/1h");
        c.rate_limits.rate_limit_refresh = quota("2/1m");
        c.rate_limits.rate_limit_password_reset = quota("2/1h");
    }))
    .await;
    let email = unique_email();
    let first = register(&app, &email).await;
    assert_no_errors(&register(&app, &unique_email()).await);
    assert_limited(&register(&app, &unique_email()).await);

    let refresh = first["data"]["register"]["refreshToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let second = app.refresh(&refresh).await;
    let third = app
        .refresh(
            second["data"]["refreshToken"]["refreshToken"]
                .as_str()
                .unwrap(),
        )
        .await;
    assert_no_errors(&third);
    assert_limited(
        &app.refresh(
            third["data"]["refreshToken"]["refreshToken"]
                .as_str()
                .unwrap(),
        )
        .await,
    );

    let request_reset =
        "mutation($i: RequestPasswordResetInput!) { requestPasswordReset(input: $i) }";
    assert_no_errors(
        &app.graphql(request_reset, json!({ "i": { "email": email } }))
            .await,
    );
    assert_no_errors(
        &app.graphql(request_reset, json!({ "i": { "email": unique_email() } }))
            .await,
    );
    assert_limited(
        &app.graphql(request_reset, json!({ "i": { "email": email } }))
            .await,
    );
    let reset = app
        .graphql(
            "mutation($i: ResetPasswordInput!) { resetPassword(input: $i) { accessToken } }",
            json!({ "i": { "token": "whatever", "newPassword": PASSWORD } }),
        )
        .await;
    assert_limited(&reset);
}

#[tokio::test]
async fn reset_requests_for_one_account_are_limited_the_same_whether_it_exists_or_not() {
    let app = spawn_app_with(only(|c| {
        c.rate_limits.rate_limit_password_reset_account = quota("2/1h")
    }))
    .await;
    let known = unique_email();
    app.register(&known, PASSWORD).await;
    let request_reset =
        "mutation($i: RequestPasswordResetInput!) { requestPasswordReset(input: $i) }";
    for email in [&known, &unique_email()] {
        for _ in 0..2 {
            assert_no_errors(
                &app.graphql(request_reset, json!({ "i": { "email": email } }))
                    .await,
            );
        }
        assert_limited(
            &app.graphql(request_reset, json!({ "i": { "email": email } }))
                .await,
        );
    }
    assert_eq!(
        app.emails_to(&known)
            .await
            .iter()
            .filter(|m| m.subject == "Reset your password")
            .count(),
        2
    );
}

#[tokio::test]
async fn a_full_hashing_queue_sheds_sign_ins_with_rate_limited_not_errors() {
    let app = spawn_app_with(|c| {
        // Hashes must take real time for eight sign-ins to find the queue full.
        production_hashing(c);
        c.hashing.password_hash_workers = Some(1);
        c.hashing.password_hash_queue = 1;
    })
    .await;
    let email = unique_email();
    app.register(&email, PASSWORD).await;
    let attempts = (0..8).map(|_| app.login(&email, PASSWORD));
    let bodies = futures_util::future::join_all(attempts).await;
    let shed = bodies
        .iter()
        .filter(|b| b.get("errors").is_some())
        .inspect(|b| {
            assert_eq!(error_code(b), "RATE_LIMITED", "{b}");
            assert_eq!(only_error(b).extensions.retry_after, Some(1));
        })
        .count();
    assert!(shed >= 1, "a queue of one cannot take eight at once");
    assert!(bodies.len() - shed >= 1, "the ones that got in succeeded");
}

const CHANGE_PASSWORD: &str = "mutation($i: ChangePasswordInput!) { changePassword(input: $i) }";

/// `count` wrong guesses at the caller's password in one request, as aliases.
fn guesses(count: usize) -> String {
    let fields: Vec<String> = (0..count)
        .map(|i| {
            format!(
                "g{i}: changePassword(input: {{ currentPassword: \"guess number {i}\", newPassword: \"{PASSWORD} 2\" }})"
            )
        })
        .collect();
    format!("mutation {{ {} }}", fields.join(" "))
}

#[tokio::test]
async fn password_confirmations_are_throttled_so_a_stolen_session_is_no_oracle() {
    let app = spawn_app_with(only(|c| {
        c.rate_limits.rate_limit_password_confirm = quota("5/15m");
        c.rate_limits.login_lockout_after = 8;
        c.rate_limits.login_lockout_base = Duration::from_secs(600);
    }))
    .await;
    let email = unique_email();
    let stolen = app.register(&email, PASSWORD).await.access();
    // Sixty guesses in six requests of ten aliases each.
    let hashed = app.hasher.completed();
    let mut codes = Vec::new();
    for _ in 0..6 {
        let body = app.graphql_as(&stolen, &guesses(10), json!({})).await;
        for error in body["errors"].as_array().unwrap() {
            codes.push(error["extensions"]["code"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(codes.len(), 60);
    assert_eq!(codes.iter().filter(|c| *c == "BAD_USER_INPUT").count(), 5);
    assert_eq!(codes.iter().filter(|c| *c == "RATE_LIMITED").count(), 55);
    assert_eq!(
        app.hasher.completed() - hashed,
        5,
        "refused guesses cost no hash"
    );
    // The right password is refused too: the attempts are spent.
    let right = app
        .graphql_as(
            &stolen,
            CHANGE_PASSWORD,
            json!({ "i": { "currentPassword": PASSWORD, "newPassword": "a whole new password" } }),
        )
        .await;
    assert_limited(&right);
    // Deleting the account or changing its email checks the same allowance.
    let delete = app
        .graphql_as(
            &stolen,
            "mutation($i: DeleteAccountInput!) { deleteAccount(input: $i) }",
            json!({ "i": { "password": PASSWORD } }),
        )
        .await;
    assert_limited(&delete);
}

#[tokio::test]
async fn wrong_confirmations_count_toward_the_accounts_lockout() {
    let app = spawn_app_with(only(|c| {
        c.rate_limits.login_lockout_after = 3;
        c.rate_limits.login_lockout_base = Duration::from_secs(600);
    }))
    .await;
    let email = unique_email();
    let stolen = app.register(&email, PASSWORD).await.access();
    let body = app.graphql_as(&stolen, &guesses(3), json!({})).await;
    assert!(
        body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["extensions"]["code"] == "BAD_USER_INPUT")
    );
    // Locked: neither a sign-in nor a confirmation gets a hash now.
    let hashed = app.hasher.completed();
    assert_limited(&app.login(&email, PASSWORD).await);
    let right = app
        .graphql_as(
            &stolen,
            CHANGE_PASSWORD,
            json!({ "i": { "currentPassword": PASSWORD, "newPassword": "a whole new password" } }),
        )
        .await;
    assert_limited(&right);
    assert_eq!(app.hasher.completed(), hashed);
}

#[tokio::test]
async fn one_account_cannot_take_the_hashing_queue_from_everyone_elses_sign_ins() {
    let app = spawn_app_with(only(|c| {
        // Hashes must take real time for twenty password checks to wait in the queue at once.
        production_hashing(c);
        c.hashing.password_hash_workers = Some(1);
        c.hashing.password_hash_queue = 4;
        c.rate_limits.password_hashes_per_account = 1;
    }))
    .await;
    let (hog, other) = (unique_email(), unique_email());
    let token = app.register(&hog, PASSWORD).await.access();
    app.register(&other, PASSWORD).await;
    // Twenty concurrent password checks by one signed-in user, and one sign-in by someone else.
    let delete = "mutation($i: DeleteAccountInput!) { deleteAccount(input: $i) }";
    let flood = (0..20).map(|_| {
        app.graphql_as(
            &token,
            delete,
            json!({ "i": { "password": "not the password" } }),
        )
    });
    let (flood, sign_in) = tokio::join!(
        futures_util::future::join_all(flood),
        app.login(&other, PASSWORD)
    );
    assert_no_errors(&sign_in);
    let limited = flood
        .iter()
        .filter(|b| error_code(b) == "RATE_LIMITED")
        .count();
    assert!(
        limited >= 15,
        "one account holds one place in the queue: {limited}"
    );
}

#[tokio::test]
async fn ipv6_clients_share_the_allowance_of_their_64() {
    let app = spawn_app_with(only(|c| {
        c.rate_limits.rate_limit_login = quota("2/1m");
        c.http.trusted_proxies =
            vec![authgraph::interfaces::http::parse_network("127.0.0.1").unwrap()];
    }))
    .await;
    let login_from = |address: &'static str| {
        let request = app
            .client
            .post(app.url("/graphql"))
            .header("x-forwarded-for", address)
            .json(&json!({
                "query": crate::helpers::LOGIN,
                "variables": { "input": { "email": unique_email(), "password": PASSWORD } },
            }))
            .send();
        async move { request.await.unwrap().json::<Value>().await.unwrap() }
    };
    assert_eq!(
        error_code(&login_from("2001:db8:7:1::1").await),
        "UNAUTHENTICATED"
    );
    assert_eq!(
        error_code(&login_from("2001:db8:7:1:ffff::2").await),
        "UNAUTHENTICATED"
    );
    assert_limited(&login_from("2001:db8:7:1:1234:5678:9abc:def0").await);
    assert_eq!(
        error_code(&login_from("2001:db8:7:2::1").await),
        "UNAUTHENTICATED",
        "the next /64 is someone else"
    );
}

#[tokio::test]
async fn verification_emails_are_limited_per_recipient_and_per_address_so_no_mailbox_is_flooded() {
    let app = spawn_app_with(only(|c| {
        c.rate_limits.rate_limit_email_recipient = quota("2/1h");
        c.rate_limits.rate_limit_email = quota("4/1h");
    }))
    .await;
    let resend =
        "mutation($i: ResendVerificationEmailInput!) { resendVerificationEmail(input: $i) }";
    let victim = unique_email();
    app.register(&victim, PASSWORD).await;
    for _ in 0..2 {
        assert_no_errors(
            &app.graphql(resend, json!({ "i": { "email": victim } }))
                .await,
        );
    }
    assert_limited(
        &app.graphql(resend, json!({ "i": { "email": victim } }))
            .await,
    );
    // One verification email at sign-up and two resent; the third request sent nothing.
    assert_eq!(app.emails_to(&victim).await.len(), 3);
    // Every request from the client counts toward its address's limit (three so far), unknown
    // recipients included.
    assert_no_errors(
        &app.graphql(resend, json!({ "i": { "email": unique_email() } }))
            .await,
    );
    assert_limited(
        &app.graphql(resend, json!({ "i": { "email": unique_email() } }))
            .await,
    );
}

const REQUEST_RESET: &str =
    "mutation($i: RequestPasswordResetInput!) { requestPasswordReset(input: $i) }";

/// Issue 28's attack on the rate-limit store: lock an account, then flood the store with new
/// keys (reset requests for unknown emails, each from an address of its own) so that the
/// lockout is forgotten to make room and the right password signs in. `store` picks the
/// store; the in-memory one has room for `ROOM` keys of each class. Returns how many flood
/// requests were refused.
async fn a_flood_of_new_keys_leaves_the_lockout_in_force(
    store: impl FnOnce(&mut Config),
) -> (TestApp, usize) {
    const FLOOD: usize = 150;
    let app = spawn_app_with(only(|c| {
        store(c);
        c.rate_limits.rate_limit_memory_keys = ROOM;
        c.rate_limits.login_lockout_after = 5;
        c.rate_limits.login_lockout_base = Duration::from_secs(600);
        c.rate_limits.rate_limit_password_reset = quota("10/1h");
        c.rate_limits.rate_limit_password_reset_account = quota("3/1h");
        c.http.trusted_proxies =
            vec![authgraph::interfaces::http::parse_network("127.0.0.1").unwrap()];
    }))
    .await;
    let victim = unique_email();
    app.register(&victim, PASSWORD).await;
    for _ in 0..5 {
        assert_eq!(
            error_code(&app.login(&victim, "wrong password").await),
            "UNAUTHENTICATED"
        );
    }
    assert!(assert_limited(&app.login(&victim, PASSWORD).await) > 500);

    let reset_from = |i: usize| {
        let request = app
            .client
            .post(app.url("/graphql"))
            .header(
                "x-forwarded-for",
                format!("10.0.{}.{}", i / 250, i % 250 + 1),
            )
            .json(&json!({
                "query": REQUEST_RESET,
                "variables": { "i": { "email": unique_email() } },
            }))
            .send();
        async move { request.await.unwrap().json::<Value>().await.unwrap() }
    };
    let mut refused = 0;
    for i in 0..FLOOD {
        let body = reset_from(i).await;
        if body.get("errors").is_some() {
            assert_limited(&body);
            refused += 1;
        }
    }

    let hashed = app.hasher.completed();
    let retry = assert_limited(&app.login(&victim, PASSWORD).await);
    assert!(retry > 500, "the lockout's own wait: {retry}");
    assert_eq!(app.hasher.completed(), hashed, "no password was checked");
    (app, refused)
}

/// Keys of each class the in-memory store has room for in the flood tests.
const ROOM: usize = 40;

#[tokio::test]
async fn a_flood_of_new_keys_cannot_lift_a_lockout_in_memory() {
    let (app, refused) = a_flood_of_new_keys_leaves_the_lockout_in_force(|c| {
        c.rate_limits.rate_limit_store = RateLimitStore::Memory
    })
    .await;
    // Forty addresses got in; the accounts had room for thirty-nine besides the victim's
    // lockout; every other request was refused rather than make room.
    assert_eq!(refused, 150 - (ROOM - 1));
    let metrics = app.metrics_text().await;
    let refused_for = |class: &str| {
        metric_value(
            &metrics,
            &format!("authgraph_rate_limit_refused_no_room{{class=\"{class}\"}}"),
        )
    };
    assert_eq!(refused_for("address"), (150 - ROOM) as f64);
    assert_eq!(refused_for("account"), 1.0);
}

#[tokio::test]
async fn a_flood_of_new_keys_cannot_lift_a_lockout_on_redis() {
    let Some(url) = redis_url() else {
        return;
    };
    let prefix = format!("authgraph-test-{}:", uuid::Uuid::new_v4().simple());
    let (_, refused) = a_flood_of_new_keys_leaves_the_lockout_in_force(|c| {
        c.rate_limits.rate_limit_store = RateLimitStore::Redis;
        c.rate_limits.redis_url = Some(url.into());
        c.rate_limits.redis_key_prefix = prefix;
    })
    .await;
    assert_eq!(refused, 0, "Redis has no room of its own to run out of");
}

/// Redis is only there when `TEST_REDIS_URL` says so (`scripts/test.sh` sets it when Redis
/// answers, and CI requires it); the in-memory store is the default and tested above. `None`
/// when the test must stop: skipped, or failed under `REQUIRE_ALL_DATABASES=1`.
fn redis_url() -> Option<String> {
    let url = std::env::var("TEST_REDIS_URL")
        .ok()
        .filter(|u| !u.is_empty());
    let what = match &url {
        None => "Redis (TEST_REDIS_URL is not set)".to_owned(),
        Some(url) => format!("Redis (nothing answers at TEST_REDIS_URL={url})"),
    };
    let available = url.as_deref().is_some_and(|url| answers(url, 6379));
    if skip_unless(available, &what) {
        None
    } else {
        url
    }
}

#[tokio::test]
async fn two_instances_on_one_redis_share_their_counts() {
    let Some(url) = redis_url() else {
        return;
    };
    let prefix = format!("authgraph-test-{}:", uuid::Uuid::new_v4().simple());
    let shared = |c: &mut Config| {
        c.rate_limits.rate_limit_store = RateLimitStore::Redis;
        c.rate_limits.redis_url = Some(url.clone().into());
        c.rate_limits.redis_key_prefix = prefix.clone();
        c.rate_limits.rate_limit_login_account = quota("3/1h");
    };
    let a = spawn_app_with(only(shared)).await;
    let b = spawn_app_with(only(shared)).await;
    let email = unique_email();
    a.login(&email, PASSWORD).await;
    b.login(&email, PASSWORD).await;
    a.login(&email, PASSWORD).await;
    let hashed = b.hasher.completed();
    assert_limited(&b.login(&email, PASSWORD).await);
    assert_eq!(b.hasher.completed(), hashed);
}

#[tokio::test]
async fn the_redis_lockout_works_like_the_in_memory_one() {
    let Some(url) = redis_url() else {
        return;
    };
    let prefix = format!("authgraph-test-{}:", uuid::Uuid::new_v4().simple());
    let app = spawn_app_with(only(|c| {
        c.rate_limits.rate_limit_store = RateLimitStore::Redis;
        c.rate_limits.redis_url = Some(url.into());
        c.rate_limits.redis_key_prefix = prefix;
        c.rate_limits.login_lockout_after = 2;
        c.rate_limits.login_lockout_base = Duration::from_secs(30);
    }))
    .await;
    let email = unique_email();
    app.register(&email, PASSWORD).await;
    for _ in 0..2 {
        app.login(&email, "wrong password").await;
    }
    assert_eq!(assert_limited(&app.login(&email, PASSWORD).await), 30);
}

// The Redis client retries a refused connection for several seconds of backoff before it
// gives up; on a paused clock those seconds pass at once. Redis is reached before the
// database, so nothing else waits on the clock.
#[tokio::test(start_paused = true)]
async fn an_unreachable_redis_stops_startup_with_a_clear_message() {
    let config = {
        let mut c = Config::from_env().unwrap();
        c.database.database_url = "sqlite::memory:".into();
        c.tokens.jwt_secret = Some(crate::helpers::JWT_SECRET.into());
        c.mail.mailer = Some(authgraph::config::MailerKind::Log);
        c.port = 0;
        c.rate_limits.rate_limit_store = RateLimitStore::Redis;
        c.rate_limits.redis_url = Some("redis://127.0.0.1:1".into());
        c
    };
    let error = authgraph::app::Application::build(&config)
        .await
        .err()
        .expect("refused");
    assert!(
        format!("{error:#}").contains("cannot connect to Redis"),
        "{error:#}"
    );
}

/// Redis keeps a restriction only as long as its key lives: every key must expire, and no
/// sooner than what it holds (an allowance whole again, failures forgotten, a block over).
#[tokio::test]
async fn every_redis_key_expires_no_sooner_than_the_restriction_it_holds() {
    use authgraph::application::ports::{KeyClass, LimitKey, Quota, RateLimiter};
    use authgraph::infrastructure::rate_limit::RedisRateLimiter;

    let Some(url) = redis_url() else {
        return;
    };
    let prefix = format!("authgraph-test-{}:", uuid::Uuid::new_v4().simple());
    let limiter = RedisRateLimiter::connect(&url, &prefix).await.unwrap();
    let address = LimitKey {
        class: KeyClass::Address,
        name: "login:ip:203.0.113.9".into(),
    };
    let account = LimitKey {
        class: KeyClass::Account,
        name: "lockout:account:0123456789abcdef01234567".into(),
    };
    let quota = Quota {
        burst: 4,
        period: Duration::from_secs(60),
    };
    for _ in 0..4 {
        assert_eq!(limiter.acquire(&address, quota).await.unwrap(), None);
    }
    assert!(limiter.acquire(&address, quota).await.unwrap().is_some());
    limiter
        .count_failure(&account, Duration::from_secs(900))
        .await
        .unwrap();
    limiter
        .block(&account, Duration::from_secs(600))
        .await
        .unwrap();

    let mut redis = redis::Client::open(url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let mut keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut redis)
        .await
        .unwrap();
    keys.sort();
    let expected = [
        ("block:lockout:account:", 600_000),
        ("failures:lockout:account:", 900_000),
        ("rate:login:ip:", 60_000),
    ];
    assert_eq!(keys.len(), expected.len(), "{keys:?}");
    for (key, (kind, restriction_ms)) in keys.iter().zip(expected) {
        assert!(key.starts_with(&format!("{prefix}{kind}")), "{key}");
        let ttl: i64 = redis::cmd("PTTL")
            .arg(key)
            .query_async(&mut redis)
            .await
            .unwrap();
        // A little less than the whole restriction has passed since it was set.
        assert!(
            (restriction_ms - 5_000..=restriction_ms).contains(&ttl),
            "{key} expires in {ttl} ms, not in about {restriction_ms}"
        );
    }
    let _: () = redis::cmd("DEL")
        .arg(&keys)
        .query_async(&mut redis)
        .await
        .unwrap();
}

/// A TCP proxy in front of Redis that a test can take away: once cut, its open connections
/// are closed and new ones refused, as when Redis goes down.
struct RedisProxy {
    address: std::net::SocketAddr,
    running: tokio::task::JoinHandle<()>,
}

impl RedisProxy {
    /// A proxy to the Redis of `redis_url` on `address` (port 0: any free port).
    async fn start(redis_url: &str, address: std::net::SocketAddr) -> Self {
        let upstream = redis_url
            .strip_prefix("redis://")
            .expect("a redis:// URL")
            .trim_end_matches('/')
            .to_owned();
        let listener = tokio::net::TcpListener::bind(address).await.unwrap();
        let address = listener.local_addr().unwrap();
        let running = tokio::spawn(async move {
            // The relays live inside this task: aborting it closes every connection.
            let mut relays = tokio::task::JoinSet::new();
            loop {
                let (mut client, _) = listener.accept().await.unwrap();
                let upstream = upstream.clone();
                relays.spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        });
        Self { address, running }
    }

    fn url(&self) -> String {
        format!("redis://{}", self.address)
    }

    /// Closes the proxy; returns its address, to start it again there.
    async fn cut(self) -> std::net::SocketAddr {
        self.running.abort();
        let _ = self.running.await;
        self.address
    }
}

#[tokio::test]
async fn when_redis_fails_at_run_time_limits_are_skipped_and_sign_in_stays_up() {
    async fn promptly(request: impl Future<Output = Value>) -> Value {
        tokio::time::timeout(Duration::from_secs(3), request)
            .await
            .expect("answered promptly while Redis is down")
    }
    let Some(url) = redis_url() else {
        eprintln!("skipped: TEST_REDIS_URL is not set");
        return;
    };
    let proxy = RedisProxy::start(&url, "127.0.0.1:0".parse().unwrap()).await;
    let app = spawn_app_with(only(|c| {
        c.rate_limits.rate_limit_store = RateLimitStore::Redis;
        c.rate_limits.redis_url = Some(proxy.url().into());
        c.rate_limits.redis_key_prefix =
            format!("authgraph-test-{}:", uuid::Uuid::new_v4().simple());
        c.rate_limits.rate_limit_login_account = quota("1/1h");
        c.rate_limits.login_lockout_after = 3;
    }))
    .await;
    let email = unique_email();
    app.register(&email, PASSWORD).await;
    assert_no_errors(&app.login(&email, PASSWORD).await);
    assert_limited(&app.login(&email, PASSWORD).await);

    let address = proxy.cut().await;
    // Past the allowance, and past the lockout's threshold: Redis cannot say, so neither
    // applies. Every answer comes promptly: a sign-in asks the store several times, and none
    // of them waits out the Redis client's reconnection (seconds of backoff each).
    for _ in 0..3 {
        let wrong = promptly(app.login(&email, "wrong password")).await;
        assert_eq!(error_code(&wrong), "UNAUTHENTICATED");
    }
    assert_no_errors(&promptly(app.login(&email, PASSWORD)).await);
    assert_no_errors(&promptly(register(&app, &unique_email())).await);

    // Redis back: the limits are back by themselves (the allowance was spent before).
    let _proxy = RedisProxy::start(&url, address).await;
    let back = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let body = promptly(app.login(&email, PASSWORD)).await;
        if body.get("errors").is_some() {
            assert_limited(&body);
            break;
        }
        assert!(
            tokio::time::Instant::now() < back,
            "the limits never came back"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The attack: a thief with several sessions of one account (signed in again and again)
/// spreads password guesses over them; the session allowance alone would give each session
/// its own guesses.
#[tokio::test]
async fn password_confirmations_are_limited_per_account_across_its_sessions() {
    let app = spawn_app_with(only(|c| {
        c.rate_limits.rate_limit_password_confirm = quota("100/15m");
        c.rate_limits.rate_limit_password_confirm_account = quota("3/1h");
    }))
    .await;
    let email = unique_email();
    let first = app.register(&email, PASSWORD).await.access();
    let mut sessions = vec![first];
    for _ in 0..3 {
        let login = app.login(&email, PASSWORD).await;
        sessions.push(crate::helpers::data_str(&login, &["login", "accessToken"]).to_owned());
    }
    for session in &sessions[..3] {
        let body = app.graphql_as(session, &guesses(1), json!({})).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    }
    let hashed = app.hasher.completed();
    assert_limited(&app.graphql_as(&sessions[3], &guesses(1), json!({})).await);
    assert_eq!(app.hasher.completed(), hashed, "refused before any hash");

    // Another account's allowance is its own.
    let other = app.register(&unique_email(), PASSWORD).await.access();
    let body = app.graphql_as(&other, &guesses(1), json!({})).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
}
