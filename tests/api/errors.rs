use secrecy::ExposeSecret;

use sea_orm::{ConnectionTrait, Database};
use serde_json::{Value, json};

use crate::cli::ServerProcess;
use crate::helpers::{
    LOGIN, ME, PASSWORD, REGISTER, assert_no_errors, data_str, error_code, spawn_app, unique_email,
};

#[tokio::test]
async fn an_unexpected_failure_is_generic_for_the_client_and_quotes_the_request_id() {
    let app = spawn_app().await;
    let email = unique_email();
    app.register(&email, PASSWORD).await;
    // Break storage behind the service's back: sign-in can no longer record a session.
    let db = Database::connect(app.config.database.database_url.expose_secret())
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

/// The real binary in a child process, its whole stderr read: every line of every thread
/// (request tasks, the database driver, the password-hashing threads) is in the capture, and
/// no other test's subscriber or thread can take lines from it.
#[tokio::test]
async fn logs_never_contain_passwords_hashes_or_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/db.sqlite?mode=rwc", dir.path().display());
    let mut server = ServerProcess::start(&url, &[("RUST_LOG", "trace")]);
    let client = reqwest::Client::new();
    let graphql = |query: &'static str, variables: Value, token: Option<String>| {
        let mut request = client.post(server.url("/graphql")).json(&json!({
            "query": query,
            "variables": variables,
        }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move { request.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let email = unique_email();
    let credentials = |password: &str| json!({ "input": { "email": email, "password": password } });
    let registered = graphql(REGISTER, credentials(PASSWORD), None).await;
    assert_no_errors(&registered);
    let login = graphql(LOGIN, credentials(PASSWORD), None).await;
    assert_no_errors(&login);
    let wrong = graphql(LOGIN, credentials("a wrong password"), None).await;
    assert_eq!(error_code(&wrong), "UNAUTHENTICATED");
    let access_token = data_str(&login, &["login", "accessToken"]).to_owned();
    assert_no_errors(&graphql(ME, json!({}), Some(access_token.clone())).await);
    server.signal("-TERM");
    assert!(server.wait().await.success());

    let logs = server.log().join("\n");
    assert!(logs.contains("request finished"), "logs were captured");
    assert!(
        logs.contains("password hashing job finished"),
        "the hashing threads' lines were captured"
    );
    for secret in [
        PASSWORD,
        "a wrong password",
        "$argon2id$",
        &access_token,
        data_str(&registered, &["register", "accessToken"]),
        data_str(&registered, &["register", "refreshToken"]),
        data_str(&login, &["login", "refreshToken"]),
    ] {
        assert!(!logs.contains(secret), "a log line contains {secret:?}");
    }
}
