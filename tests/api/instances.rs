//! Several instances of the service on one database, as behind a load balancer.

use sea_orm::{ConnectionTrait, Database, Statement};
use secrecy::ExposeSecret;
use serde_json::json;

use crate::helpers::{
    Backend, ME, PASSWORD, TestDatabase, assert_no_errors, error_code, only_error,
    skip_unless_backend, spawn_app, spawn_app_with, test_config, token_claims, unique_email,
};

#[tokio::test]
async fn instances_starting_together_apply_the_migrations_once() {
    let database = TestDatabase::create().await;
    let config = test_config(&database.url, |_| {});
    let starts = (0..4).map(|_| authgraph::app::connect_and_migrate(&config));
    for started in futures_util::future::join_all(starts).await {
        started.expect("every instance starts");
    }
    let db = Database::connect(&database.url).await.unwrap();
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT COUNT(*) AS applied FROM seaql_migrations",
        ))
        .await
        .unwrap()
        .unwrap();
    let applied: i64 = row.try_get("", "applied").unwrap();
    use migration::MigratorTrait;
    assert_eq!(applied, migration::Migrator::migrations().len() as i64);
}

#[tokio::test]
async fn a_token_from_one_instance_works_on_another() {
    let a = spawn_app().await;
    let b = a.another_instance().await;
    let email = unique_email();
    let registered = a.register(&email, PASSWORD).await;
    let token = &registered.access();
    assert_eq!(b.me(token).await["data"]["me"]["email"], email.as_str());
    let refreshed = b.refresh(&registered.refresh()).await;
    assert_no_errors(&refreshed);
}

#[tokio::test]
async fn logout_on_one_instance_ends_the_session_on_the_other_at_once() {
    let a = spawn_app().await;
    let b = a.another_instance().await;
    let registered = a.register(&unique_email(), PASSWORD).await;
    let token = &registered.access();
    assert_no_errors(&b.me(token).await);
    a.logout(&registered.refresh()).await;
    assert_eq!(error_code(&b.me(token).await), "UNAUTHENTICATED");
}

#[tokio::test]
async fn refresh_token_reuse_seen_by_one_instance_ends_the_session_everywhere() {
    let a =
        spawn_app_with(|c| c.sessions.refresh_token_reuse_grace = std::time::Duration::ZERO).await;
    let b = a.another_instance().await;
    let registered = a.register(&unique_email(), PASSWORD).await;
    let first = &registered.refresh();
    let rotated = a.refresh(first).await;
    let token = rotated["data"]["refreshToken"]["accessToken"]
        .as_str()
        .unwrap();
    assert_no_errors(&b.me(token).await);

    assert_eq!(error_code(&b.refresh(first).await), "UNAUTHENTICATED");
    assert_eq!(error_code(&a.me(token).await), "UNAUTHENTICATED");
}

#[tokio::test]
async fn a_suspension_by_an_admin_on_one_instance_applies_on_the_other() {
    let a = spawn_app().await;
    let b = a.another_instance().await;
    let admin = a.admin().await;
    let user = a.register(&unique_email(), PASSWORD).await;
    let token = &user.access();
    let suspended = a
        .graphql_as(
            &admin.access(),
            "mutation($i: SuspendUserInput!) { suspendUser(input: $i) { id } }",
            json!({ "i": { "userId": user.user.id, "reason": "abuse" } }),
        )
        .await;
    assert_no_errors(&suspended);
    assert_eq!(error_code(&b.me(token).await), "UNAUTHENTICATED");
}

/// PostgreSQL only: SQLite cannot be taken away from a running process.
#[tokio::test]
async fn a_database_outage_is_reported_clearly_and_the_service_recovers_by_itself() {
    if skip_unless_backend(
        &[Backend::Postgres],
        "PostgreSQL (TEST_DATABASE_URL=postgres://…)",
    ) {
        return;
    }
    let admin_url = std::env::var("TEST_DATABASE_URL").unwrap();
    let app = spawn_app_with(|c| {
        c.database.database_connect_timeout = std::time::Duration::from_millis(500);
    })
    .await;
    let token = app.register(&unique_email(), PASSWORD).await.access();
    let name = app
        .config
        .database
        .database_url
        .expose_secret()
        .rsplit('/')
        .next()
        .and_then(|path| path.split('?').next())
        .unwrap()
        .to_owned();
    let admin = Database::connect(&admin_url).await.unwrap();
    let cut = |allow: bool| {
        let admin = &admin;
        let name = name.clone();
        async move {
            admin
                .execute_unprepared(&format!(
                    r#"ALTER DATABASE "{name}" ALLOW_CONNECTIONS {allow}"#
                ))
                .await
                .unwrap();
            if !allow {
                admin
                    .execute_unprepared(&format!(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
                    ))
                    .await
                    .unwrap();
            }
        }
    };

    cut(false).await;
    let ready = app.client.get(app.url("/ready")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    // Not a bug on the server's side but a moment without a database: "try again".
    let response = app
        .graphql_response(Some(&format!("Bearer {token}")), ME, json!({}))
        .await;
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "2");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(error_code(&body), "SERVICE_UNAVAILABLE");
    assert_eq!(only_error(&body).extensions.retry_after, Some(2));
    assert!(body["errors"][0]["extensions"]["requestId"].is_string());
    let health = app.client.get(app.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), 200, "the process itself is fine");

    cut(true).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let ready = app.client.get(app.url("/ready")).send().await.unwrap();
        if ready.status() == 200 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the service did not recover"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_no_errors(&app.me(&token).await);
}

/// Registrations the client saw acknowledged survive the process being killed outright.
#[tokio::test]
async fn every_acknowledged_registration_survives_sigkill() {
    use std::sync::{Arc, Mutex};

    use crate::cli::ServerProcess;

    let database = TestDatabase::create().await;
    // Cheap hashing: this is about durability, not cost.
    let env = [("ARGON2_MEMORY_KIB", "8"), ("ARGON2_ITERATIONS", "1")];
    let mut server = ServerProcess::start(&database.url, &env);
    let client = reqwest::Client::new();
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let writers: Vec<_> = (0..6)
        .map(|_| {
            let (client, url, acknowledged) =
                (client.clone(), server.url("/graphql"), acknowledged.clone());
            tokio::spawn(async move {
                loop {
                    let email = unique_email();
                    let request = client.post(&url).json(&json!({
                        "query": "mutation($i: RegisterInput!) { register(input: $i) { accessToken } }",
                        "variables": { "i": { "email": email, "password": PASSWORD } },
                    }));
                    let Ok(response) = request.send().await else { break };
                    assert!(!response.status().is_server_error());
                    let Ok(body) = response.json::<serde_json::Value>().await else { break };
                    if body["data"]["register"]["accessToken"].is_string() {
                        acknowledged.lock().unwrap().push(email);
                    }
                }
            })
        })
        .collect();
    // Killed in the middle of the load, once enough registrations were acknowledged to check.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while acknowledged.lock().unwrap().len() < 50 {
        assert!(std::time::Instant::now() < deadline, "the load did not run");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    server.signal("-KILL");
    server.wait().await;
    for writer in writers {
        writer.await.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(acknowledged.len() >= 50, "load ran: {}", acknowledged.len());

    let restarted = ServerProcess::start(&database.url, &env);
    for email in &acknowledged {
        let body: serde_json::Value = client
            .post(restarted.url("/graphql"))
            .json(&json!({
                "query": "mutation($i: LoginInput!) { login(input: $i) { user { email } } }",
                "variables": { "i": { "email": email, "password": PASSWORD } },
            }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            body["data"]["login"]["user"]["email"],
            email.as_str(),
            "{body}"
        );
    }
}

/// Two real server processes on one database, as two containers behind a load balancer.
#[tokio::test]
async fn two_server_processes_share_sessions_and_their_ending() {
    use crate::cli::ServerProcess;

    let database = TestDatabase::create().await;
    let a = ServerProcess::start(&database.url, &[]);
    let b = ServerProcess::start(&database.url, &[]);
    let client = reqwest::Client::new();
    let post =
        |server: &ServerProcess, token: Option<&str>, query: &str, variables: serde_json::Value| {
            let mut request = client
                .post(server.url("/graphql"))
                .json(&json!({ "query": query, "variables": variables }));
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            async move {
                request
                    .send()
                    .await
                    .unwrap()
                    .json::<serde_json::Value>()
                    .await
                    .unwrap()
            }
        };
    let registered = post(
        &a,
        None,
        "mutation($i: RegisterInput!) { register(input: $i) { accessToken refreshToken } }",
        json!({ "i": { "email": unique_email(), "password": PASSWORD } }),
    )
    .await;
    let token = registered["data"]["register"]["accessToken"]
        .as_str()
        .unwrap();
    let refresh = registered["data"]["register"]["refreshToken"]
        .as_str()
        .unwrap();
    let me = "{ me { id } }";
    assert_no_errors(&post(&b, Some(token), me, json!({})).await);

    post(
        &a,
        None,
        "mutation($i: LogoutInput!) { logout(input: $i) }",
        json!({ "i": { "refreshToken": refresh } }),
    )
    .await;
    assert_eq!(
        error_code(&post(&b, Some(token), me, json!({})).await),
        "UNAUTHENTICATED"
    );
}

/// The default signing (ES256) remembers each token whose signature checked out, so a
/// session's later requests skip the check. The memory must not stand in for the session: a
/// revoked session's token, remembered by every instance, is refused by every instance at once.
#[tokio::test]
async fn a_revoked_sessions_es256_token_is_refused_by_every_instance_even_when_remembered() {
    use authgraph::infrastructure::security::{JwtAlgorithm, generate_pem};

    let pem = generate_pem(JwtAlgorithm::Es256).unwrap().unwrap();
    let a = spawn_app_with(move |c| {
        c.tokens.jwt_secret = None;
        c.tokens.jwt_algorithm = None;
        c.tokens.jwt_private_key = Some(pem.into());
        c.tokens.jwt_verified_tokens = 10_000;
    })
    .await;
    let b = a.another_instance().await;
    let email = unique_email();
    let registered = a.register(&email, PASSWORD).await;
    let token = &registered.access();
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::ES256, "the default");
    // Seen, checked and remembered by both.
    for instance in [&a, &b, &a, &b] {
        assert_no_errors(&instance.me(token).await);
    }

    // Revoked from another session, on one instance.
    let login = b.login(&email, PASSWORD).await;
    let other = login["data"]["login"]["accessToken"].as_str().unwrap();
    let revoked = b
        .graphql_as(
            other,
            "mutation($input: RevokeSessionInput!) { revokeSession(input: $input) }",
            json!({ "input": { "id": token_claims(token)["sid"] } }),
        )
        .await;
    assert_eq!(revoked["data"]["revokeSession"], true, "{revoked}");
    for instance in [&a, &b] {
        assert_eq!(error_code(&instance.me(token).await), "UNAUTHENTICATED");
    }
    // The other session goes on.
    assert_no_errors(&a.me(other).await);
}
