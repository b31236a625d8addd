use chrono::Utc;
use serde_json::json;
use uuid::Uuid;

use authgraph::infrastructure::security::key_id;

use crate::helpers::{
    JWT_SECRET, ME, PASSWORD, error_code, forge_token, only_error, sign_token, spawn_app,
    spawn_app_with, token_claims, unique_email,
};

#[tokio::test]
async fn me_returns_the_signed_in_user() {
    let app = spawn_app().await;
    let registered = app.register("ada@example.com", PASSWORD).await;
    let me = app.current_user(&registered.access()).await;
    assert_eq!(me, registered.user);
}

#[tokio::test]
async fn me_without_a_token_is_unauthenticated() {
    let app = spawn_app().await;
    let body = app.graphql(ME, json!({})).await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED");
    assert_eq!(
        only_error(&body).message,
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
        assert_eq!(only_error(&body).message, "The access token is invalid.");
    }
}

#[tokio::test]
async fn me_with_an_expired_token_says_so() {
    let app = spawn_app().await;
    let registered = app.register(&unique_email(), PASSWORD).await;
    let mut claims = token_claims(&registered.access());
    let an_hour_ago = Utc::now().timestamp() - 3600;
    claims["iat"] = json!(an_hour_ago - 900);
    claims["exp"] = json!(an_hour_ago);

    let body = app.me(&forge_token(&claims, JWT_SECRET.as_bytes())).await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED");
    assert_eq!(
        only_error(&body).message,
        "The access token has expired; get a new one with refreshToken."
    );
}

#[tokio::test]
async fn an_access_token_works_for_its_lifetime_and_thirty_seconds_of_leeway_then_expires() {
    let app = spawn_app().await;
    let registered = app.register(&unique_email(), PASSWORD).await;
    let token = &registered.access();
    // Issued now for 900 s; expiry is judged by the app's clock, not the system's.
    app.clock.advance(std::time::Duration::from_secs(900 + 20));
    assert!(
        app.me(token).await.get("errors").is_none(),
        "within the leeway"
    );
    app.clock.advance(std::time::Duration::from_secs(20));
    let body = app.me(token).await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED");
    assert_eq!(
        only_error(&body).message,
        "The access token has expired; get a new one with refreshToken."
    );
}

#[tokio::test]
async fn me_with_a_forged_signature_is_unauthenticated() {
    let app = spawn_app().await;
    let registered = app.register(&unique_email(), PASSWORD).await;
    let claims = token_claims(&registered.access());

    let forged = forge_token(&claims, b"an attacker's secret, long enough too");
    let body = app.me(&forged).await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED");
    assert_eq!(only_error(&body).message, "The access token is invalid.");
}

#[tokio::test]
async fn me_with_a_genuine_token_for_an_unknown_session_is_unauthenticated() {
    let app = spawn_app().await;
    let registered = app.register(&unique_email(), PASSWORD).await;
    let mut claims = token_claims(&registered.access());
    claims["sid"] = json!(Uuid::now_v7());

    let body = app.me(&forge_token(&claims, JWT_SECRET.as_bytes())).await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED");
    assert_eq!(
        only_error(&body).message,
        "The session has ended; sign in again."
    );
}

#[tokio::test]
async fn a_token_signed_with_a_previous_key_still_works_and_an_unknown_key_does_not() {
    const OLD_SECRET: &str = "the signing secret we rotated away from";
    let app = spawn_app_with(|c| c.tokens.jwt_previous_secrets = vec![OLD_SECRET.into()]).await;
    let registered = app.register(&unique_email(), PASSWORD).await;
    let claims = token_claims(&registered.access());

    let old_key = sign_token(
        &claims,
        OLD_SECRET.as_bytes(),
        &key_id(OLD_SECRET.as_bytes()),
    );
    let body = app.me(&old_key).await;
    assert_eq!(body["data"]["me"]["id"], registered.user.id);

    let stranger = "a key this server has never heard of";
    let unknown = sign_token(&claims, stranger.as_bytes(), &key_id(stranger.as_bytes()));
    assert_eq!(error_code(&app.me(&unknown).await), "UNAUTHENTICATED");
    let no_kid = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .unwrap();
    assert_eq!(error_code(&app.me(&no_kid).await), "UNAUTHENTICATED");
}
