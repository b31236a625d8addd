use std::io::Write;
use std::process::{Command, Stdio};

use crate::helpers::{
    JWT_SECRET, PASSWORD, TestApp, assert_no_errors, data_str, error_code, spawn_app, unique_email,
};

/// Runs `authgraph create-admin` against the test app's database, the password on stdin.
fn create_admin(app: &TestApp, email: &str, stdin: &str) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_authgraph"))
        .args(["create-admin", "--email", email])
        .env("DATABASE_URL", &app.config.database_url)
        .env("JWT_SECRET", JWT_SECRET)
        .env("MAILER", "log")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[tokio::test]
async fn create_admin_makes_a_new_administrator_with_a_password_from_stdin() {
    let app = spawn_app().await;
    let email = unique_email();
    let output = create_admin(&app, &email, &format!("{PASSWORD}\n"));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let login = app.login(&email, PASSWORD).await;
    assert_no_errors(&login);
    let me = app.me(data_str(&login, &["login", "accessToken"])).await;
    assert_eq!(me["data"]["me"]["role"], "ADMIN");
    assert_eq!(me["data"]["me"]["emailVerified"], true);
}

#[tokio::test]
async fn create_admin_promotes_an_existing_account_without_asking_a_password() {
    let app = spawn_app().await;
    let email = unique_email();
    let token = app.register(&email, PASSWORD).await["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        error_code(
            &app.graphql_as(&token, "{ users { totalCount } }", serde_json::json!({}))
                .await
        ),
        "FORBIDDEN"
    );

    let output = create_admin(&app, &email.to_uppercase(), "");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // The role applies to the token already issued.
    let body = app
        .graphql_as(&token, "{ users { totalCount } }", serde_json::json!({}))
        .await;
    assert_no_errors(&body);
}

#[tokio::test]
async fn create_admin_refuses_a_weak_password_or_a_bad_email() {
    let app = spawn_app().await;
    let weak = create_admin(&app, &unique_email(), "short\n");
    assert!(!weak.status.success());
    assert!(String::from_utf8_lossy(&weak.stderr).contains("Use at least 8 characters"));
    let bad = create_admin(&app, "not-an-email", &format!("{PASSWORD}\n"));
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--email"));
}
