use secrecy::ExposeSecret;
use std::io::Write;
use std::sync::{Arc, Mutex};

use sea_orm::{ConnectionTrait, Database};
use serde_json::json;

use crate::helpers::{PASSWORD, error_code, spawn_app, unique_email};

#[tokio::test]
async fn an_unexpected_failure_is_generic_for_the_client_and_quotes_the_request_id() {
    let app = spawn_app().await;
    let email = unique_email();
    app.register(&email, PASSWORD).await;
    // Break storage behind the service's back: sign-in can no longer record a session.
    let db = Database::connect(app.config.database_url.expose_secret())
        .await
        .unwrap();
    db.execute_unprepared("DROP TABLE refresh_tokens")
        .await
        .unwrap();

    let response = app
        .client
        .post(app.url("/graphql"))
        .json(&json!({
            "query": "mutation($input: LoginInput!) { login(input: $input) { accessToken } }",
            "variables": { "input": { "email": email, "password": PASSWORD } },
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let body: serde_json::Value = response.json().await.unwrap();

    assert_eq!(error_code(&body), "INTERNAL_SERVER_ERROR");
    let error = &body["errors"][0];
    assert_eq!(error["extensions"]["requestId"], request_id.as_str());
    assert_eq!(
        error["message"],
        "Something went wrong on our side. Quote the requestId when reporting it."
    );
    let text = body.to_string().to_lowercase();
    for leak in ["refresh_tokens", "sql", "table", "insert"] {
        assert!(!text.contains(leak), "the response leaks {leak:?}: {body}");
    }
}

/// Captures every log line of the app, at every level, while it serves one test.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

// A current-thread runtime keeps the server's tasks on this thread, inside the capture.
#[tokio::test(flavor = "current_thread")]
async fn logs_never_contain_passwords_hashes_or_tokens() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let app = spawn_app().await;
    let email = unique_email();
    let registered = app.register(&email, PASSWORD).await;
    let login = app.login(&email, PASSWORD).await;
    app.login(&email, "a wrong password").await;
    let access_token = login["data"]["login"]["accessToken"].as_str().unwrap();
    app.me(access_token).await;

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("request finished"), "logs were captured");
    for secret in [
        PASSWORD,
        "a wrong password",
        "$argon2id$",
        access_token,
        registered["accessToken"].as_str().unwrap(),
        registered["refreshToken"].as_str().unwrap(),
        login["data"]["login"]["refreshToken"].as_str().unwrap(),
    ] {
        assert!(!logs.contains(secret), "a log line contains {secret:?}");
    }
}
