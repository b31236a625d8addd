use chrono::Utc;
use serde_json::json;
use uuid::Uuid;

use crate::helpers::{
    JWT_SECRET, ME, PASSWORD, error_code, forge_token, spawn_app, token_claims, unique_email,
};

#[tokio::test]
async fn me_returns_the_signed_in_user() {
    let app = spawn_app().await;
    let registered = app.register("ada@example.com", PASSWORD).await;
    let body = app.me(registered["accessToken"].as_str().unwrap()).await;
    assert_eq!(body["data"]["me"], registered["user"]);
}

#[tokio::test]
async fn me_without_a_token_is_unauthenticated() {
    let app = spawn_app().await;
    let body = app.graphql(ME, json!({})).await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED");
    assert_eq!(
        body["errors"][0]["message"],
        "Sign in first: send an access token as 'Authorization: Bearer <accessToken>'."
    );
}

#[tokio::test]
async fn me_with_a_malformed_authorization_header_is_unauthenticated() {
    let app = spawn_app().await;
    for header in [
        "Basic dXNlcjpwYXNz",
        "Bearer",
        "Bearer ",
        "token-without-scheme",
    ] {
        let body = app.graphql_with(Some(header), ME, json!({})).await;
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "{header:?}");
    }
}

#[tokio::test]
async fn me_with_a_garbage_token_is_unauthenticated() {
    let app = spawn_app().await;
    for token in [
        "garbage",
        "a.b.c",
        "eyJhbGciOiJIUzI1NiJ9.e30.",
        &"x".repeat(5000) as &str,
    ] {
        let body = app.me(token).await;
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "{token:?}");
        assert_eq!(body["errors"][0]["message"], "The access token is invalid.");
    }
}

#[tokio::test]
async fn me_with_an_expired_token_says_so() {
    let app = spawn_app().await;
    let registered = app.register(&unique_email(), PASSWORD).await;
    let mut claims = token_claims(registered["accessToken"].as_str().unwrap());
    let an_hour_ago = Utc::now().timestamp() - 3600;
    claims["iat"] = json!(an_hour_ago - 900);
    claims["exp"] = json!(an_hour_ago);

    let body = app.me(&forge_token(&claims, JWT_SECRET.as_bytes())).await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED");
    assert_eq!(
        body["errors"][0]["message"],
        "The access token has expired; get a new one with refreshToken."
    );
}

#[tokio::test]
async fn me_with_a_forged_signature_is_unauthenticated() {
    let app = spawn_app().await;
    let registered = app.register(&unique_email(), PASSWORD).await;
    let claims = token_claims(registered["accessToken"].as_str().unwrap());

    let forged = forge_token(&claims, b"an attacker's secret, long enough too");
    let body = app.me(&forged).await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED");
    assert_eq!(body["errors"][0]["message"], "The access token is invalid.");
}

#[tokio::test]
async fn me_with_a_genuine_token_for_an_unknown_session_is_unauthenticated() {
    let app = spawn_app().await;
    let registered = app.register(&unique_email(), PASSWORD).await;
    let mut claims = token_claims(registered["accessToken"].as_str().unwrap());
    claims["sid"] = json!(Uuid::now_v7());

    let body = app.me(&forge_token(&claims, JWT_SECRET.as_bytes())).await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED");
    assert_eq!(
        body["errors"][0]["message"],
        "The session has ended; sign in again."
    );
}
