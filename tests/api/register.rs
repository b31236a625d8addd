use serde_json::json;

use crate::helpers::{
    PASSWORD, REGISTER, error_code, only_error, spawn_app, token_claims, unique_email,
};

#[tokio::test]
async fn register_returns_tokens_and_the_new_user() {
    let app = spawn_app().await;
    let body = app
        .graphql(
            REGISTER,
            json!({ "input": { "email": "  Ada.Lovelace@Example.COM ", "password": PASSWORD, "displayName": " Ada " } }),
        )
        .await;

    let payload = &body["data"]["register"];
    assert_eq!(payload["tokenType"], "Bearer");
    assert_eq!(payload["expiresIn"], 900);
    assert!(payload["refreshToken"].as_str().unwrap().len() >= 43);
    let user = &payload["user"];
    assert_eq!(user["email"], "ada.lovelace@example.com");
    assert_eq!(user["displayName"], "Ada");
    assert_eq!(user["role"], "USER");
    assert_eq!(user["createdAt"], user["updatedAt"]);

    let claims = token_claims(payload["accessToken"].as_str().unwrap());
    assert_eq!(claims["sub"], user["id"]);
    assert_eq!(claims["iss"], "authgraph");
    assert_eq!(claims["aud"], "authgraph");
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        900
    );
    assert!(claims["sid"].is_string());
}

#[tokio::test]
async fn register_with_a_taken_email_is_a_conflict_whatever_its_case() {
    let app = spawn_app().await;
    app.register("ada@example.com", PASSWORD).await;

    for email in ["ada@example.com", "ADA@example.com", "  ada@EXAMPLE.com\t"] {
        let body = app
            .graphql(
                REGISTER,
                json!({ "input": { "email": email, "password": PASSWORD } }),
            )
            .await;
        assert_eq!(error_code(&body), "CONFLICT", "{email:?}");
        assert_eq!(
            only_error(&body).message,
            "An account with this email already exists."
        );
    }
}

#[tokio::test]
async fn concurrent_registrations_of_one_email_give_exactly_one_account() {
    let app = spawn_app().await;
    let email = unique_email();
    let attempts = (0..8).map(|_| {
        app.graphql(
            REGISTER,
            json!({ "input": { "email": email, "password": PASSWORD } }),
        )
    });
    let bodies = futures_util::future::join_all(attempts).await;

    let successes = bodies.iter().filter(|b| b.get("errors").is_none()).count();
    let conflicts = bodies
        .iter()
        .filter(|b| b.get("errors").is_some() && error_code(b) == "CONFLICT")
        .count();
    assert_eq!(successes, 1, "{bodies:#?}");
    assert_eq!(conflicts, 7, "{bodies:#?}");
}

#[tokio::test]
async fn register_rejects_an_invalid_email_naming_the_field() {
    let app = spawn_app().await;
    for email in [
        "",
        "plainaddress",
        "ada@",
        "ada@localhost",
        "a b@example.com",
    ] {
        let body = app
            .graphql(
                REGISTER,
                json!({ "input": { "email": email, "password": PASSWORD } }),
            )
            .await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{email:?}");
        assert_eq!(only_error(&body).extensions.field.as_deref(), Some("email"));
        assert!(body["data"].is_null());
    }
}

#[tokio::test]
async fn register_enforces_the_password_length_policy() {
    let app = spawn_app().await;
    for (password, message) in [
        ("short", "Use at least 8 characters."),
        ("1234567", "Use at least 8 characters."),
        (&"x".repeat(129) as &str, "Use at most 128 characters."),
    ] {
        let body = app
            .graphql(
                REGISTER,
                json!({ "input": { "email": unique_email(), "password": password } }),
            )
            .await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT");
        assert_eq!(
            only_error(&body).extensions.field.as_deref(),
            Some("password")
        );
        assert_eq!(only_error(&body).message, message);
    }
}

#[tokio::test]
async fn register_accepts_long_unicode_passwords_without_composition_rules() {
    let app = spawn_app().await;
    // Strong without any composition rule: lower-case letters only, Cyrillic words, and 128
    // emoji (the policy refuses guessable passwords, not alphabets).
    let emoji: String = (0..128)
        .map(|i| char::from_u32(0x1F300 + 7 * i).unwrap())
        .collect();
    for password in ["velvetmosaicharbor", "пароль-из-слов", &emoji as &str] {
        let email = unique_email();
        app.register(&email, password).await;
        let body = app.login(&email, password).await;
        assert!(body.get("errors").is_none(), "{password:?}: {body:#}");
    }
}

#[tokio::test]
async fn register_rejects_an_overlong_display_name() {
    let app = spawn_app().await;
    let body = app
        .graphql(
            REGISTER,
            json!({ "input": { "email": unique_email(), "password": PASSWORD, "displayName": "n".repeat(101) } }),
        )
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
    assert_eq!(
        only_error(&body).extensions.field.as_deref(),
        Some("displayName")
    );
}

#[tokio::test]
async fn register_refuses_common_and_personal_passwords_saying_why() {
    let app = spawn_app().await;
    for (email, password, why) in [
        (
            unique_email(),
            "password123".to_owned(),
            "This is a very common password.",
        ),
        (unique_email(), "aaaaaaaaaaaa".to_owned(), "Repeats like"),
        (
            "ada.lovelace@example.com".to_owned(),
            "ada.lovelace@example.com".to_owned(),
            "",
        ),
    ] {
        let body = app
            .graphql(
                REGISTER,
                json!({ "input": { "email": email, "password": password, "displayName": "Ada Lovelace" } }),
            )
            .await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{password}: {body}");
        assert_eq!(
            only_error(&body).extensions.field.as_deref(),
            Some("password")
        );
        let message = only_error(&body).message;
        assert!(
            message.starts_with("Choose a harder password to guess."),
            "{message}"
        );
        assert!(message.contains(why), "{message}");
    }
    // Nothing was created: the same address registers with a strong password.
    let body = app
        .graphql(
            REGISTER,
            json!({ "input": { "email": "ada.lovelace@example.com", "password": PASSWORD } }),
        )
        .await;
    assert!(body.get("errors").is_none(), "{body}");
}

#[tokio::test]
async fn register_refuses_display_names_that_render_blank_or_imitate_others() {
    let app = spawn_app().await;
    for name in [
        "\u{3164}",
        "\u{FFA0}",
        "\u{115F}",
        "\u{2800}",
        "\u{1D5D4}dmin",
        "\u{0410}dmin",
    ] {
        let body = app
            .graphql(
                REGISTER,
                json!({ "input": { "email": unique_email(), "password": PASSWORD, "displayName": name } }),
            )
            .await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{name:?}: {body}");
        assert_eq!(
            only_error(&body).extensions.field.as_deref(),
            Some("displayName")
        );
    }
    let body = app
        .graphql(
            REGISTER,
            json!({ "input": { "email": unique_email(), "password": PASSWORD, "displayName": "山田たろう" } }),
        )
        .await;
    assert!(body.get("errors").is_none(), "{body}");
}
