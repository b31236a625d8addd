//! Claims for GraphQL engines: the Hasura and PostGraphile presets, checked the way each engine
//! reads a token (Hasura from its documented `HASURA_GRAPHQL_JWT_SECRET`), and the claims hook.

use authgraph::config::{ClaimsPresetName, Config};
use authgraph::infrastructure::security::{JwtAlgorithm, generate_pem};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, spawn_app_with, token_claims, unique_email};

fn es256(c: &mut Config) {
    c.tokens.jwt_algorithm = Some(JwtAlgorithm::Es256);
    c.tokens.jwt_private_key = Some(generate_pem(JwtAlgorithm::Es256).unwrap().unwrap().into());
}

fn hasura(c: &mut Config) {
    es256(c);
    c.claims.token_claims_preset = ClaimsPresetName::Hasura;
}

fn postgraphile(c: &mut Config) {
    es256(c);
    c.claims.token_claims_preset = ClaimsPresetName::Postgraphile;
    c.claims.database_roles = vec!["user:app_user".into(), "admin:app_admin".into()];
}

/// What docs/graphql-engines.md tells an operator to give Hasura as
/// `HASURA_GRAPHQL_JWT_SECRET`, built from the service's own discovery document.
async fn hasura_jwt_secret(app: &TestApp) -> Value {
    let discovery: Value = app
        .client
        .get(app.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    json!({
        "jwk_url": discovery["jwks_uri"],
        "claims_namespace": "https://hasura.io/jwt/claims",
        "audience": "authgraph",
        "issuer": discovery["issuer"],
    })
}

/// Verifies `token` as Hasura does in JWT mode with `config`: the key from `jwk_url` by `kid`,
/// then `audience` and `issuer`; returns the session variables under `claims_namespace` after
/// Hasura's own checks (the default role is one of the allowed roles, every variable a
/// string but the allowed roles).
async fn hasura_reads(app: &TestApp, config: &Value, token: &str) -> Value {
    let keys: JwkSet = app
        .client
        .get(config["jwk_url"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kid = jsonwebtoken::decode_header(token).unwrap().kid.unwrap();
    let jwk = keys.find(&kid).expect("the token's key is published");
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_audience(&[config["audience"].as_str().unwrap()]);
    validation.set_issuer(&[config["issuer"].as_str().unwrap()]);
    let claims =
        jsonwebtoken::decode::<Value>(token, &DecodingKey::from_jwk(jwk).unwrap(), &validation)
            .unwrap()
            .claims;
    let variables = claims[config["claims_namespace"].as_str().unwrap()].clone();
    let allowed = variables["x-hasura-allowed-roles"].as_array().unwrap();
    assert!(
        allowed.contains(&variables["x-hasura-default-role"]),
        "{variables}"
    );
    for (name, value) in variables.as_object().unwrap() {
        assert!(name.starts_with("x-hasura-"), "{name}");
        if name != "x-hasura-allowed-roles" {
            assert!(value.is_string(), "{name}: {value}");
        }
    }
    variables
}

#[tokio::test]
async fn hasura_verifies_a_users_token_from_the_documented_config_and_reads_its_roles() {
    let app = spawn_app_with(hasura).await;
    let config = hasura_jwt_secret(&app).await;
    let user = app.register(&unique_email(), PASSWORD).await;
    let variables = hasura_reads(&app, &config, &user.access()).await;
    assert_eq!(
        variables,
        json!({
            "x-hasura-allowed-roles": ["user"],
            "x-hasura-default-role": "user",
            "x-hasura-user-id": user.user.id,
        })
    );

    let admin = app.admin().await;
    let variables = hasura_reads(&app, &config, &admin.access()).await;
    assert_eq!(
        variables["x-hasura-allowed-roles"],
        json!(["admin", "user"])
    );
    assert_eq!(variables["x-hasura-default-role"], "admin");
    assert_eq!(variables["x-hasura-user-id"], admin.user.id);

    // Refreshed tokens carry the same claims.
    let refreshed = app.refreshed(&user.refresh_token.clone().unwrap()).await;
    let variables = hasura_reads(&app, &config, &refreshed.access()).await;
    assert_eq!(variables["x-hasura-user-id"], user.user.id);
}

#[tokio::test]
async fn a_configured_namespace_holds_the_variables() {
    let app = spawn_app_with(|c| {
        hasura(c);
        c.claims.hasura_claims_namespace = "hasura".into();
    })
    .await;
    let user = app.register(&unique_email(), PASSWORD).await;
    let claims = token_claims(&user.access());
    assert_eq!(claims["hasura"]["x-hasura-user-id"], user.user.id);
    assert!(claims.get("https://hasura.io/jwt/claims").is_none());
}

#[tokio::test]
async fn the_postgraphile_preset_names_the_database_role_and_the_user() {
    let app = spawn_app_with(postgraphile).await;
    let user = app.register(&unique_email(), PASSWORD).await;
    let claims = token_claims(&user.access());
    assert_eq!(claims["role"], "app_user");
    assert_eq!(claims["user_id"], user.user.id);
    assert_eq!(claims["sub"], user.user.id);

    let admin = app.admin().await;
    let claims = token_claims(&admin.access());
    assert_eq!(claims["role"], "app_admin");
    assert_eq!(claims["user_id"], admin.user.id);
}

#[tokio::test]
async fn without_a_preset_tokens_carry_the_registered_claims_only() {
    let app = spawn_app_with(es256).await;
    let user = app.register(&unique_email(), PASSWORD).await;
    let claims = token_claims(&user.access());
    let mut names: Vec<&str> = claims
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        ["amr", "aud", "auth_time", "exp", "iat", "iss", "sid", "sub"]
    );
}

#[tokio::test]
async fn a_postgraphile_preset_without_database_roles_does_not_start() {
    let database = crate::helpers::TestDatabase::create().await;
    let config = crate::helpers::test_config(&database.url, |c| {
        c.claims.token_claims_preset = ClaimsPresetName::Postgraphile;
    });
    let error = authgraph::app::Application::build(&config)
        .await
        .err()
        .expect("refused");
    assert!(error.to_string().contains("DATABASE_ROLES"), "{error:#}");
}

// The claims hook, against a real HTTP server in the test.

mod hook {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use axum::Router;
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::{IntoResponse, Response};
    use axum::routing::post;
    use serde_json::{Value, json};

    use super::{Config, hasura};
    use crate::helpers::{
        LOGIN, PASSWORD, REFRESH, TestApp, error_code, metric_value, spawn_app_with, token_claims,
        unique_email,
    };

    /// A request the service answers SERVICE_UNAVAILABLE (HTTP 503, with Retry-After).
    async fn unavailable(app: &TestApp, query: &str, input: Value) {
        let response = app
            .graphql_response(None, query, json!({ "input": input }))
            .await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body: Value = response.json().await.unwrap();
        assert_eq!(error_code(&body), "SERVICE_UNAVAILABLE", "{body}");
        assert!(body["data"].is_null(), "{body}");
    }

    pub const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    /// What the hook answers.
    #[derive(Clone)]
    pub enum Answer {
        Claims(Value),
        Status(u16),
        Slow(Duration),
        Redirect(String),
        Raw(String),
    }

    /// A request the hook received.
    #[derive(Clone, Debug)]
    pub struct Received {
        pub headers: HeaderMap,
        pub body: String,
    }

    pub struct Hook {
        pub url: String,
        pub answer: Arc<Mutex<Answer>>,
        pub received: Arc<Mutex<Vec<Received>>>,
    }

    impl Hook {
        pub async fn start(answer: Answer) -> Self {
            let answer = Arc::new(Mutex::new(answer));
            let received = Arc::new(Mutex::new(Vec::new()));
            let (a, r) = (answer.clone(), received.clone());
            let app = Router::new().route(
                "/hook",
                post(move |headers: HeaderMap, body: String| {
                    let (a, r) = (a.clone(), r.clone());
                    async move {
                        r.lock().unwrap().push(Received { headers, body });
                        let answer = a.lock().unwrap().clone();
                        respond(answer).await
                    }
                }),
            );
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://{}/hook", listener.local_addr().unwrap());
            tokio::spawn(async move { axum::serve(listener, app).await });
            Self {
                url,
                answer,
                received,
            }
        }

        pub fn set(&self, answer: Answer) {
            *self.answer.lock().unwrap() = answer;
        }

        pub fn received(&self) -> Vec<Received> {
            self.received.lock().unwrap().clone()
        }
    }

    async fn respond(answer: Answer) -> Response {
        match answer {
            Answer::Claims(claims) => axum::Json(json!({ "claims": claims })).into_response(),
            Answer::Status(status) => StatusCode::from_u16(status).unwrap().into_response(),
            Answer::Slow(wait) => {
                tokio::time::sleep(wait).await;
                axum::Json(json!({ "claims": {"late": "yes"} })).into_response()
            }
            Answer::Redirect(to) => {
                (StatusCode::TEMPORARY_REDIRECT, [("location", to)]).into_response()
            }
            Answer::Raw(body) => ([("content-type", "application/json")], body).into_response(),
        }
    }

    pub fn with_hook(url: &str, open: bool) -> impl FnOnce(&mut Config) {
        let url = url.to_owned();
        move |c| {
            hasura(c);
            c.claims.claims_hook_url = Some(url);
            c.claims.claims_hook_secret = Some(SECRET.into());
            c.claims.claims_hook_timeout = Duration::from_millis(500);
            if open {
                c.claims.claims_hook_failure = authgraph::config::HookFailureName::Open;
            }
        }
    }

    const NS: &str = "https://hasura.io/jwt/claims";

    async fn audited_failures(app: &TestApp, token: &str) -> usize {
        app.flush_audit().await;
        let body = app
            .graphql_as(
                token,
                "{ me { auditEvents(first: 50, kind: CLAIMS_HOOK_FAILED) { totalCount } } }",
                json!({}),
            )
            .await;
        body["data"]["me"]["auditEvents"]["totalCount"]
            .as_u64()
            .unwrap_or_else(|| panic!("{body}")) as usize
    }

    #[tokio::test]
    async fn the_hook_adds_claims_at_sign_in_refresh_and_step_up_and_is_told_who_and_how() {
        let hook = Hook::start(Answer::Claims(json!({
            "x-hasura-org-id": "42",
            "plan": "pro",
        })))
        .await;
        let app = spawn_app_with(with_hook(&hook.url, false)).await;
        let email = unique_email();
        let signed_up = app.register(&email, PASSWORD).await;
        let claims = token_claims(&signed_up.access());
        assert_eq!(claims[NS]["x-hasura-org-id"], "42");
        assert_eq!(claims["plan"], "pro");

        let received = hook.received();
        assert_eq!(received.len(), 1);
        let request: Value = serde_json::from_str(&received[0].body).unwrap();
        assert_eq!(request["type"], "token.claims");
        assert_eq!(request["data"]["event"], "sign_in");
        assert_eq!(request["data"]["user"]["id"], signed_up.user.id);
        assert_eq!(request["data"]["user"]["email"], email);
        assert_eq!(request["data"]["user"]["role"], "user");
        assert_eq!(request["data"]["session"]["id"], claims["sid"]);
        assert_eq!(request["data"]["amr"], json!(["pwd"]));
        for header in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
            assert!(received[0].headers.contains_key(header), "{header}");
        }

        let refreshed = app
            .refreshed(&signed_up.refresh_token.clone().unwrap())
            .await;
        assert_eq!(token_claims(&refreshed.access())["plan"], "pro");
        let request: Value = serde_json::from_str(&hook.received()[1].body).unwrap();
        assert_eq!(request["data"]["event"], "refresh");

        let stepped_up = app
            .graphql_as(
                &refreshed.access(),
                "mutation($input: ReauthenticateInput!) { reauthenticate(input: $input) { accessToken } }",
                json!({"input": {"password": PASSWORD}}),
            )
            .await;
        let token = stepped_up["data"]["reauthenticate"]["accessToken"]
            .as_str()
            .unwrap_or_else(|| panic!("{stepped_up}"));
        assert_eq!(token_claims(token)["plan"], "pro");
        let request: Value = serde_json::from_str(&hook.received()[2].body).unwrap();
        assert_eq!(request["data"]["event"], "step_up");
    }

    /// Verifies a received request with the npm `standardwebhooks` reference library
    /// (tests/claims-hook); `None` when Node.js or the library is not installed.
    fn verified_by_reference(secret: &str, request: &Received) -> Option<Result<Value, String>> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/claims-hook");
        if !dir.join("node_modules/standardwebhooks").exists() {
            return None;
        }
        let headers: serde_json::Map<String, Value> = request
            .headers
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_str().unwrap().into()))
            .collect();
        let input = json!({"secret": secret, "headers": headers, "body": request.body});
        let mut child = std::process::Command::new("node")
            .arg(dir.join("verify.js"))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .ok()?;
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.to_string().as_bytes())
            .unwrap();
        let output = child.wait_with_output().unwrap();
        Some(if output.status.success() {
            Ok(serde_json::from_slice(&output.stdout).unwrap())
        } else {
            Err(String::from_utf8_lossy(&output.stderr).into_owned())
        })
    }

    #[tokio::test]
    async fn the_standard_webhooks_reference_verifies_the_hooks_requests() {
        let hook = Hook::start(Answer::Claims(json!({}))).await;
        let app = spawn_app_with(with_hook(&hook.url, false)).await;
        let user = app.register(&unique_email(), PASSWORD).await;
        let received = hook.received().remove(0);
        let Some(verified) = verified_by_reference(SECRET, &received) else {
            crate::helpers::skip_unless(
                false,
                "Node.js with tests/claims-hook installed (npm ci there)",
            );
            return;
        };
        let payload = verified.expect("the reference library verifies the signature");
        assert_eq!(payload["data"]["user"]["id"], user.user.id);

        // And refuses what it must: another secret, an altered body.
        let other = "whsec_QWxzbyBhIHNlY3JldCBvZiAyNCBieXRlcyEh";
        assert!(verified_by_reference(other, &received).unwrap().is_err());
        let mut altered = received.clone();
        altered.body = altered.body.replace("\"user\"", "\"admin\"");
        assert_ne!(altered.body, received.body);
        assert!(verified_by_reference(SECRET, &altered).unwrap().is_err());
    }

    #[tokio::test]
    async fn the_hook_is_never_called_for_refused_credentials() {
        let hook = Hook::start(Answer::Claims(json!({}))).await;
        let app = spawn_app_with(with_hook(&hook.url, false)).await;
        let email = unique_email();
        app.register(&email, PASSWORD).await;
        assert_eq!(hook.received().len(), 1);
        let refused = app.login(&email, "not the password at all").await;
        assert_eq!(error_code(&refused), "UNAUTHENTICATED");
        let refused = app.login(&unique_email(), PASSWORD).await;
        assert_eq!(error_code(&refused), "UNAUTHENTICATED");
        let refused = app.refresh("not-a-refresh-token").await;
        assert_eq!(error_code(&refused), "UNAUTHENTICATED");
        assert_eq!(
            hook.received().len(),
            1,
            "the hook heard of a refused sign-in"
        );
    }

    #[tokio::test]
    async fn a_hook_cannot_override_who_the_token_is_for_or_its_role() {
        let hook = Hook::start(Answer::Claims(json!({
            "sub": "00000000-0000-0000-0000-000000000000",
            "sid": "00000000-0000-0000-0000-000000000000",
            "exp": 4_102_444_800_i64,
            "iss": "someone-else",
            "aud": "someone-else",
            "amr": ["hwk"],
            "x-hasura-user-id": "00000000-0000-0000-0000-000000000000",
            "x-hasura-default-role": "admin",
            "x-hasura-allowed-roles": "admin",
            "x-hasura-org-id": "7",
        })))
        .await;
        let app = spawn_app_with(with_hook(&hook.url, false)).await;
        let user = app.register(&unique_email(), PASSWORD).await;
        let token = user.access();
        let claims = token_claims(&token);
        assert_eq!(claims["sub"], user.user.id);
        assert_eq!(claims["iss"], "authgraph");
        assert_eq!(claims["aud"], "authgraph");
        assert_eq!(claims["amr"], json!(["pwd"]));
        assert!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap() <= 900);
        assert_ne!(claims["sid"], "00000000-0000-0000-0000-000000000000");
        assert_eq!(
            claims[NS],
            json!({
                "x-hasura-allowed-roles": ["user"],
                "x-hasura-default-role": "user",
                "x-hasura-user-id": user.user.id,
                "x-hasura-org-id": "7",
            })
        );
        // The token still works for this service.
        assert_eq!(app.current_user(&token).await.id, user.user.id);
    }

    #[tokio::test]
    async fn a_failing_slow_or_oversized_hook_fails_closed_and_leaves_the_refresh_token_usable() {
        let hook = Hook::start(Answer::Claims(json!({"plan": "pro"}))).await;
        let app = spawn_app_with(with_hook(&hook.url, false)).await;
        let email = unique_email();
        let user = app.register(&email, PASSWORD).await;
        let refresh_token = user.refresh_token.clone().unwrap();
        for answer in [
            Answer::Status(500),
            Answer::Slow(Duration::from_secs(3)),
            Answer::Claims(json!({"blob": "x".repeat(10 * 1024)})),
            Answer::Raw("x".repeat(64 * 1024)),
            Answer::Raw("not json".into()),
            Answer::Claims(json!(["not", "an", "object"])),
        ] {
            hook.set(answer);
            let started = std::time::Instant::now();
            unavailable(&app, LOGIN, json!({"email": email, "password": PASSWORD})).await;
            assert!(
                started.elapsed() < Duration::from_secs(2),
                "waited past the timeout"
            );
            unavailable(&app, REFRESH, json!({"refreshToken": refresh_token})).await;
        }
        hook.set(Answer::Claims(json!({"plan": "pro"})));
        // The refresh token was not spent by the refused refreshes.
        let refreshed = app.refreshed(&refresh_token).await;
        assert_eq!(token_claims(&refreshed.access())["plan"], "pro");
        assert_eq!(audited_failures(&app, &refreshed.access()).await, 12);
        let metrics = app.metrics_text().await;
        assert_eq!(
            metric_value(&metrics, "authgraph_claims_hook_failures"),
            12.0
        );
        assert_eq!(metric_value(&metrics, "authgraph_claims_hook_calls"), 14.0);
    }

    #[tokio::test]
    async fn a_failing_hook_fails_open_when_told_to_and_the_token_stays_small() {
        let hook = Hook::start(Answer::Claims(json!({"blob": "x".repeat(10 * 1024)}))).await;
        let app = spawn_app_with(with_hook(&hook.url, true)).await;
        let user = app.register(&unique_email(), PASSWORD).await;
        let token = user.access();
        assert!(token.len() < 2048, "{} bytes", token.len());
        let claims = token_claims(&token);
        assert!(claims.get("blob").is_none());
        assert_eq!(claims[NS]["x-hasura-user-id"], user.user.id);
        hook.set(Answer::Status(503));
        let signed_in = app.sign_in(&user.user.email, PASSWORD).await;
        assert_eq!(audited_failures(&app, &signed_in.access()).await, 2);
        let metrics = app.metrics_text().await;
        assert_eq!(
            metric_value(&metrics, "authgraph_claims_hook_failures"),
            2.0
        );
    }

    #[tokio::test]
    async fn the_hook_client_follows_no_redirect() {
        let elsewhere = Hook::start(Answer::Claims(json!({"plan": "stolen"}))).await;
        let hook = Hook::start(Answer::Redirect(elsewhere.url.clone())).await;
        let app = spawn_app_with(with_hook(&hook.url, true)).await;
        let user = app.register(&unique_email(), PASSWORD).await;
        assert!(token_claims(&user.access()).get("plan").is_none());
        assert_eq!(hook.received().len(), 1);
        assert!(elsewhere.received().is_empty());
    }

    #[tokio::test]
    async fn a_hook_without_a_standard_webhooks_secret_does_not_start() {
        for secret in [None, Some("not-a-whsec"), Some("whsec_c2hvcnQ=")] {
            let database = crate::helpers::TestDatabase::create().await;
            let config = crate::helpers::test_config(&database.url, |c| {
                c.claims.claims_hook_url = Some("https://hook.example.com/".into());
                c.claims.claims_hook_secret = secret.map(Into::into);
            });
            let error = authgraph::app::Application::build(&config)
                .await
                .err()
                .expect("refused");
            assert!(
                error.to_string().contains("CLAIMS_HOOK_SECRET"),
                "{error:#}"
            );
        }
    }
}

// Freshness: introspection, Hasura's webhook, and role changes that end sessions.

mod freshness {
    use reqwest::StatusCode;
    use serde_json::{Value, json};

    use super::{Config, hasura};
    use crate::helpers::{
        PASSWORD, TestApp, assert_no_errors, error_code, spawn_app_with, unique_email,
    };

    const SET_ROLE: &str =
        "mutation($input: SetUserRoleInput!) { setUserRole(input: $input) { id role } }";
    const SUSPEND: &str =
        "mutation($input: SuspendUserInput!) { suspendUser(input: $input) { id } }";
    const NS: &str = "https://hasura.io/jwt/claims";

    fn with_clients(c: &mut Config) {
        hasura(c);
        c.claims.introspection_clients = vec![
            "engine:a-secret-only-the-engine-knows".into(),
            "other:another-secret".into(),
        ];
    }

    async fn introspect_as(
        app: &TestApp,
        credentials: Option<(&str, &str)>,
        token: &str,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let mut request = app
            .client
            .post(app.url("/oauth/introspect"))
            .form(&[("token", token), ("token_type_hint", "access_token")]);
        if let Some((id, secret)) = credentials {
            request = request.basic_auth(id, Some(secret));
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.json().await.unwrap_or(Value::Null);
        (status, headers, body)
    }

    async fn introspect(app: &TestApp, token: &str) -> Value {
        let (status, headers, body) = introspect_as(
            app,
            Some(("engine", "a-secret-only-the-engine-knows")),
            token,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(headers["cache-control"], "no-store");
        body
    }

    async fn hasura_auth(
        app: &TestApp,
        token: Option<&str>,
        role: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut request = app.client.get(app.url("/hasura/auth"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(role) = role {
            request = request.header("x-hasura-role", role);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    #[tokio::test]
    async fn introspection_needs_a_configured_client_and_its_secret() {
        let app = spawn_app_with(with_clients).await;
        let token = app.register(&unique_email(), PASSWORD).await.access();
        for credentials in [
            None,
            Some(("engine", "wrong")),
            Some(("engine", "another-secret")),
            Some(("nobody", "a-secret-only-the-engine-knows")),
            Some(("", "")),
        ] {
            let (status, headers, body) = introspect_as(&app, credentials, &token).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{credentials:?}");
            assert_eq!(headers["www-authenticate"], "Basic realm=\"introspection\"");
            assert_eq!(body, json!({"error": "invalid_client"}));
        }
        // Without INTROSPECTION_CLIENTS nobody may introspect.
        let closed = spawn_app_with(hasura).await;
        let (status, _, _) = introspect_as(
            &closed,
            Some(("engine", "a-secret-only-the-engine-knows")),
            &token,
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }

    #[tokio::test]
    async fn an_address_guessing_introspection_secrets_is_locked_out() {
        let app = spawn_app_with(|c| {
            with_clients(c);
            c.rate_limits.rate_limits = true;
            c.rate_limits.login_lockout_after = 3;
            c.rate_limits.login_lockout_base = std::time::Duration::from_secs(60);
        })
        .await;
        let token = app.register(&unique_email(), PASSWORD).await.access();
        let right = Some(("engine", "a-secret-only-the-engine-knows"));
        assert_eq!(introspect_as(&app, right, &token).await.0, StatusCode::OK);
        let mut statuses = Vec::new();
        for guess in 0..5 {
            let secret = format!("guess-{guess}");
            statuses.push(
                introspect_as(&app, Some(("engine", &secret)), &token)
                    .await
                    .0,
            );
        }
        assert_eq!(statuses[..3], [StatusCode::UNAUTHORIZED; 3]);
        assert!(statuses[4] == StatusCode::TOO_MANY_REQUESTS, "{statuses:?}");
        // Locked out: even the right secret is not checked now.
        let (status, headers, _) = introspect_as(&app, right, &token).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert!(headers.contains_key("retry-after"));
    }

    #[tokio::test]
    async fn introspection_answers_the_current_claims_of_a_live_token_and_inactive_otherwise() {
        let app = spawn_app_with(with_clients).await;
        let email = unique_email();
        let user = app.register(&email, PASSWORD).await;
        let token = user.access();
        let body = introspect(&app, &token).await;
        assert_eq!(body["active"], true, "{body}");
        assert_eq!(body["sub"], user.user.id);
        assert_eq!(body["username"], email);
        assert_eq!(body["role"], "user");
        assert_eq!(body["amr"], json!(["pwd"]));
        assert_eq!(body[NS]["x-hasura-default-role"], "user");
        assert_eq!(body[NS]["x-hasura-user-id"], user.user.id);

        for garbage in ["", "not-a-token", "a.b.c", &format!("{token}x")] {
            assert_eq!(
                introspect(&app, garbage).await,
                json!({"active": false}),
                "{garbage}"
            );
        }
        // Signed out: inactive at once, well before the token expires.
        app.logout(&user.refresh_token.clone().unwrap()).await;
        assert_eq!(introspect(&app, &token).await, json!({"active": false}));
    }

    #[tokio::test]
    async fn a_suspension_or_a_role_change_is_seen_on_the_very_next_check() {
        let app = spawn_app_with(with_clients).await;
        let admin = app.admin().await.access();
        let email = unique_email();
        let user = app.register(&email, PASSWORD).await;
        let token = user.access();
        assert_eq!(
            hasura_auth(&app, Some(&token), None).await.0,
            StatusCode::OK
        );

        // Promotion: the token that says "user" stops working everywhere at once.
        let promoted = app
            .graphql_as(
                &admin,
                SET_ROLE,
                json!({"input": {"userId": user.user.id, "role": "ADMIN"}}),
            )
            .await;
        assert_no_errors(&promoted);
        assert_eq!(introspect(&app, &token).await, json!({"active": false}));
        assert_eq!(
            hasura_auth(&app, Some(&token), None).await.0,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            error_code(&app.graphql_as(&token, "{ me { id } }", json!({})).await),
            "UNAUTHENTICATED"
        );

        // Signed in again, the token and both checks say "admin".
        let again = app.sign_in(&email, PASSWORD).await.access();
        assert_eq!(
            introspect(&app, &again).await[NS]["x-hasura-default-role"],
            "admin"
        );
        assert_eq!(
            hasura_auth(&app, Some(&again), None).await,
            (
                StatusCode::OK,
                json!({"X-Hasura-User-Id": user.user.id, "X-Hasura-Role": "admin"})
            )
        );

        // Demotion, the same.
        let demoted = app
            .graphql_as(
                &admin,
                SET_ROLE,
                json!({"input": {"userId": user.user.id, "role": "USER"}}),
            )
            .await;
        assert_no_errors(&demoted);
        assert_eq!(introspect(&app, &again).await, json!({"active": false}));
        assert_eq!(
            hasura_auth(&app, Some(&again), None).await.0,
            StatusCode::UNAUTHORIZED
        );

        // Suspension.
        let third = app.sign_in(&email, PASSWORD).await.access();
        assert_eq!(introspect(&app, &third).await["active"], true);
        let suspended = app
            .graphql_as(
                &admin,
                SUSPEND,
                json!({"input": {"userId": user.user.id, "reason": "abuse"}}),
            )
            .await;
        assert_no_errors(&suspended);
        assert_eq!(introspect(&app, &third).await, json!({"active": false}));
        assert_eq!(
            hasura_auth(&app, Some(&third), None).await.0,
            StatusCode::UNAUTHORIZED
        );
    }

    #[tokio::test]
    async fn the_hasura_webhook_answers_session_variables_of_a_live_token_only() {
        let app = spawn_app_with(with_clients).await;
        let user = app.register(&unique_email(), PASSWORD).await;
        let token = user.access();
        assert_eq!(
            hasura_auth(&app, Some(&token), None).await,
            (
                StatusCode::OK,
                json!({"X-Hasura-User-Id": user.user.id, "X-Hasura-Role": "user"})
            )
        );
        // A role the account does not have is refused; one it has is granted.
        assert_eq!(
            hasura_auth(&app, Some(&token), Some("admin")).await.0,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            hasura_auth(&app, Some(&token), Some("user")).await.1["X-Hasura-Role"],
            "user"
        );
        let admin = app.admin().await.access();
        assert_eq!(
            hasura_auth(&app, Some(&admin), Some("user")).await.1["X-Hasura-Role"],
            "user"
        );
        assert_eq!(
            hasura_auth(&app, Some(&admin), None).await.1["X-Hasura-Role"],
            "admin"
        );

        for bad in [
            None,
            Some(""),
            Some("not-a-token"),
            Some(&format!("{token}x") as &str),
        ] {
            assert_eq!(
                hasura_auth(&app, bad, None).await.0,
                StatusCode::UNAUTHORIZED,
                "{bad:?}"
            );
        }
        app.logout(&user.refresh_token.clone().unwrap()).await;
        assert_eq!(
            hasura_auth(&app, Some(&token), None).await.0,
            StatusCode::UNAUTHORIZED
        );
    }
}
