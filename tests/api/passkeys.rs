//! Passkeys over HTTP with a software authenticator: enrolment, signing in with no password
//! or email, and what a ceremony refuses (a replay, concurrently too; an expired one; a wrong
//! origin or relying party; another account's credential; a ceremony finished on another
//! instance than the one that started it).

use std::time::Duration;

use authgraph::application::ports::Clock;
use serde_json::{Value, json};

use crate::mfa::code_at;

use crate::helpers::passkey::{Device, user_handle};
use crate::helpers::{
    PASSWORD, TestApp, assert_no_errors, data_str, error_code, spawn_app, token_claims,
    unique_email,
};

const START_REGISTRATION: &str = "mutation { startPasskeyRegistration { challengeId options } }";
const FINISH_REGISTRATION: &str = "mutation($input: FinishPasskeyRegistrationInput!) {
  finishPasskeyRegistration(input: $input) { id name createdAt lastUsedAt backedUp }
}";
const START_SIGN_IN: &str = "mutation { startPasskeySignIn { challengeId options } }";
const FINISH_SIGN_IN: &str = "mutation($input: FinishPasskeySignInInput!) {
  finishPasskeySignIn(input: $input) { accessToken refreshToken user { id email } }
}";
const PASSKEYS: &str = "{ me { id passkeys { id name lastUsedAt backedUp } } }";

/// An account with a passkey on `device`.
struct Holder {
    id: String,
    email: String,
    /// The session that enrolled.
    token: String,
}

async fn registered(app: &TestApp) -> (String, String, String) {
    let email = unique_email();
    let signed_up = app.register(&email, PASSWORD).await;
    let token = signed_up.access();
    (email, signed_up.user.id, token)
}

/// Enrols a passkey of `device` for the account behind `token`; the whole response.
pub(crate) async fn enrol(app: &TestApp, token: &str, device: &mut Device, name: &str) -> Value {
    let started = app.graphql_as(token, START_REGISTRATION, json!({})).await;
    assert_no_errors(&started);
    let challenge = &started["data"]["startPasskeyRegistration"];
    let credential = device.create(&challenge["options"]);
    app.graphql_as(
        token,
        FINISH_REGISTRATION,
        json!({ "input": {
            "challengeId": challenge["challengeId"],
            "name": name,
            "credential": credential,
        } }),
    )
    .await
}

async fn holder(app: &TestApp, device: &mut Device) -> Holder {
    let (email, id, token) = registered(app).await;
    let enrolled = enrol(app, &token, device, "Phone").await;
    assert_no_errors(&enrolled);
    Holder { id, email, token }
}

/// A started sign-in: the ceremony id and the options.
pub(crate) async fn start_sign_in(app: &TestApp) -> (Value, Value) {
    let started = app.graphql(START_SIGN_IN, json!({})).await;
    assert_no_errors(&started);
    let challenge = &started["data"]["startPasskeySignIn"];
    (
        challenge["challengeId"].clone(),
        challenge["options"].clone(),
    )
}

pub(crate) async fn finish_sign_in(app: &TestApp, challenge: &Value, credential: &Value) -> Value {
    app.graphql(
        FINISH_SIGN_IN,
        json!({ "input": { "challengeId": challenge, "credential": credential } }),
    )
    .await
}

#[tokio::test]
async fn a_passkey_enrols_and_signs_in_with_no_password_or_email() {
    let app = spawn_app().await;
    let mut device = Device::new();
    let holder = holder(&app, &mut device).await;

    let listed = app.graphql_as(&holder.token, PASSKEYS, json!({})).await;
    assert_no_errors(&listed);
    let passkeys = listed["data"]["me"]["passkeys"].as_array().unwrap();
    assert_eq!(passkeys.len(), 1);
    assert_eq!(passkeys[0]["name"], "Phone");
    assert_eq!(passkeys[0]["lastUsedAt"], Value::Null);

    let (challenge, options) = start_sign_in(&app).await;
    // Discoverable: the options name no account and no credential.
    assert!(
        options["allowCredentials"]
            .as_array()
            .is_none_or(Vec::is_empty),
        "{options}"
    );
    assert_eq!(options["userVerification"], "required");
    let signed_in = finish_sign_in(&app, &challenge, &device.get(&options)).await;
    assert_no_errors(&signed_in);
    let payload = &signed_in["data"]["finishPasskeySignIn"];
    assert_eq!(payload["user"]["email"], holder.email.as_str());
    let claims = token_claims(payload["accessToken"].as_str().unwrap());
    assert_eq!(claims["amr"], json!(["webauthn"]));
    assert!(payload["refreshToken"].is_string());

    // The session it opened is a session like any other, and the use is recorded.
    let token = payload["accessToken"].as_str().unwrap();
    let listed = app.graphql_as(token, PASSKEYS, json!({})).await;
    assert_no_errors(&listed);
    assert_eq!(listed["data"]["me"]["id"], holder.id.as_str());
    assert!(listed["data"]["me"]["passkeys"][0]["lastUsedAt"].is_string());
}

#[tokio::test]
async fn a_sign_in_with_a_passkey_is_never_asked_for_another_factor() {
    // A user-verified passkey is two factors: an account whose password sign-in needs a
    // TOTP code signs in with its passkey alone.
    let app = spawn_app().await;
    let mut device = Device::new();
    let holder = holder(&app, &mut device).await;
    // The account has a second factor now (the passkey): turning TOTP on takes a session
    // that proved one, as a passkey sign-in does.
    let (challenge, options) = start_sign_in(&app).await;
    let signed_in = finish_sign_in(&app, &challenge, &device.get(&options)).await;
    let token = data_str(&signed_in, &["finishPasskeySignIn", "accessToken"]).to_owned();
    let stale = app
        .graphql_as(
            &holder.token,
            "mutation { enrollTotp { secret } }",
            json!({}),
        )
        .await;
    assert_eq!(
        stale["errors"][0]["extensions"]["reason"],
        "REAUTHENTICATION_REQUIRED"
    );
    let enrolled = app
        .graphql_as(&token, "mutation { enrollTotp { secret } }", json!({}))
        .await;
    assert_no_errors(&enrolled);
    let secret = data_str(&enrolled, &["enrollTotp", "secret"]).to_owned();
    let confirmed = app
        .graphql_as(
            &token,
            "mutation($input: ConfirmTotpInput!) { confirmTotp(input: $input) { recoveryCodes } }",
            json!({ "input": { "code": code_at(&secret, app.clock.now()) } }),
        )
        .await;
    assert_no_errors(&confirmed);
    let login = app.login(&holder.email, PASSWORD).await;
    assert_eq!(error_code(&login), "FORBIDDEN");
    assert_eq!(login["errors"][0]["extensions"]["reason"], "MFA_REQUIRED");

    let (challenge, options) = start_sign_in(&app).await;
    let signed_in = finish_sign_in(&app, &challenge, &device.get(&options)).await;
    assert_no_errors(&signed_in);
}

#[tokio::test]
async fn a_ceremony_finishes_once_even_when_replayed_concurrently() {
    let app = spawn_app().await;
    let mut device = Device::new();
    holder(&app, &mut device).await;

    let (challenge, options) = start_sign_in(&app).await;
    let credential = device.get(&options);
    let (first, second) = app
        .race(async {
            tokio::join!(
                finish_sign_in(&app, &challenge, &credential),
                finish_sign_in(&app, &challenge, &credential),
            )
        })
        .await;
    let signed_in = [&first, &second]
        .iter()
        .filter(|r| r["errors"].is_null())
        .count();
    assert_eq!(signed_in, 1, "{first}\n{second}");
    let refused = if first["errors"].is_null() {
        &second
    } else {
        &first
    };
    assert_eq!(error_code(refused), "BAD_USER_INPUT");

    // And once more, later: the state is gone.
    let again = finish_sign_in(&app, &challenge, &credential).await;
    assert_eq!(error_code(&again), "BAD_USER_INPUT");
}

#[tokio::test]
async fn an_expired_ceremony_is_refused() {
    let app = spawn_app().await;
    let mut device = Device::new();
    holder(&app, &mut device).await;

    let (challenge, options) = start_sign_in(&app).await;
    let credential = device.get(&options);
    app.clock.advance(Duration::from_secs(5 * 60 + 1));
    let late = finish_sign_in(&app, &challenge, &credential).await;
    assert_eq!(error_code(&late), "BAD_USER_INPUT");
}

#[tokio::test]
async fn a_credential_made_for_another_origin_or_relying_party_is_refused() {
    let app = spawn_app().await;
    let mut device = Device::new();
    holder(&app, &mut device).await;

    // The same passkey, asked by a page of another site (a phishing page relaying the
    // server's challenge).
    let (challenge, options) = start_sign_in(&app).await;
    device.move_to("https://app.example.org");
    let mut relayed = options.clone();
    relayed["rpId"] = json!("app.example.org");
    // The authenticator signs for the relying party the page names.
    let phished = finish_sign_in(&app, &challenge, &device.get(&relayed)).await;
    assert_eq!(error_code(&phished), "UNAUTHENTICATED");

    // A page on the right relying party but not among the origins.
    let (challenge, options) = start_sign_in(&app).await;
    device.move_to("https://evil.app.example.com");
    let sideways = finish_sign_in(&app, &challenge, &device.get(&options)).await;
    assert_eq!(error_code(&sideways), "UNAUTHENTICATED");

    // Back home it works.
    device.move_to(crate::helpers::passkey::ORIGIN);
    let (challenge, options) = start_sign_in(&app).await;
    assert_no_errors(&finish_sign_in(&app, &challenge, &device.get(&options)).await);
}

#[tokio::test]
async fn a_passkey_cannot_claim_another_account_and_an_enrolment_finishes_once() {
    let app = spawn_app().await;
    let mut device = Device::new();
    let ada = holder(&app, &mut device).await;
    let (_, bob_id, bob_token) = registered(&app).await;

    // Ada's passkey claiming Bob's user handle.
    let (challenge, options) = start_sign_in(&app).await;
    let mut claimed = device.get(&options);
    claimed["response"]["userHandle"] = json!(user_handle(&bob_id));
    let refused = finish_sign_in(&app, &challenge, &claimed).await;
    assert_eq!(error_code(&refused), "UNAUTHENTICATED");

    // Ada's credential registered again, for Bob: the authenticator excludes nothing of
    // Bob's, so only the server can refuse it. A software passkey makes a new key pair per
    // registration, so replay Ada's registration response to Bob's ceremony instead: it
    // does not verify for Bob's challenge either way.
    let started = app
        .graphql_as(&bob_token, START_REGISTRATION, json!({}))
        .await;
    assert_no_errors(&started);
    let _ = ada;
    let mut bobs = Device::new();
    let made = bobs.create(&started["data"]["startPasskeyRegistration"]["options"]);
    let finished = app
        .graphql_as(
            &bob_token,
            FINISH_REGISTRATION,
            json!({ "input": {
                "challengeId": started["data"]["startPasskeyRegistration"]["challengeId"],
                "name": "Laptop",
                "credential": made,
            } }),
        )
        .await;
    assert_no_errors(&finished);
    // Bob's ceremony finished once: replaying it is refused.
    let replayed = app
        .graphql_as(
            &bob_token,
            FINISH_REGISTRATION,
            json!({ "input": {
                "challengeId": started["data"]["startPasskeyRegistration"]["challengeId"],
                "name": "Laptop",
                "credential": made,
            } }),
        )
        .await;
    assert_eq!(error_code(&replayed), "BAD_USER_INPUT");
}

#[tokio::test]
async fn enrolment_needs_a_session_and_its_own_ceremony() {
    let app = spawn_app().await;
    let anonymous = app.graphql(START_REGISTRATION, json!({})).await;
    assert_eq!(error_code(&anonymous), "UNAUTHENTICATED");

    // A ceremony started by one session cannot be finished by another of the same user.
    let (email, _, token) = registered(&app).await;
    let started = app.graphql_as(&token, START_REGISTRATION, json!({})).await;
    assert_no_errors(&started);
    let mut device = Device::new();
    let made = device.create(&started["data"]["startPasskeyRegistration"]["options"]);
    let other = app.login(&email, PASSWORD).await;
    let other_token = data_str(&other, &["login", "accessToken"]).to_owned();
    let finished = app
        .graphql_as(
            &other_token,
            FINISH_REGISTRATION,
            json!({ "input": {
                "challengeId": started["data"]["startPasskeyRegistration"]["challengeId"],
                "name": "Phone",
                "credential": made,
            } }),
        )
        .await;
    assert_eq!(error_code(&finished), "BAD_USER_INPUT");
}

#[tokio::test]
async fn a_ceremony_started_on_one_instance_finishes_on_another() {
    let app = spawn_app().await;
    let other = app.another_instance().await;
    let mut device = Device::new();
    let holder = holder(&app, &mut device).await;

    let (challenge, options) = start_sign_in(&app).await;
    let signed_in = finish_sign_in(&other, &challenge, &device.get(&options)).await;
    assert_no_errors(&signed_in);
    assert_eq!(
        signed_in["data"]["finishPasskeySignIn"]["user"]["id"],
        holder.id.as_str()
    );
}

#[tokio::test]
async fn a_passkey_is_a_second_factor_for_a_password_sign_in_a_reset_and_sensitive_changes() {
    let app = spawn_app().await;
    let mut device = Device::new();
    let holder = holder(&app, &mut device).await;

    // A session that proved the password only (the one that enrolled, however recent) is not
    // enough for a sensitive change any more; a passkey sign-in is.
    let change = |token: String| {
        let app = &app;
        async move {
            app.graphql_as(
                &token,
                "mutation($input: ChangePasswordInput!) { changePassword(input: $input) }",
                json!({ "input": {
                    "currentPassword": PASSWORD,
                    "newPassword": "another new passphrase 10",
                } }),
            )
            .await
        }
    };
    let stale = change(holder.token.clone()).await;
    assert_eq!(
        stale["errors"][0]["extensions"]["reason"], "REAUTHENTICATION_REQUIRED",
        "{stale}"
    );

    // The password alone no longer signs in: a second factor is due.
    let login = app.login(&holder.email, PASSWORD).await;
    assert_eq!(error_code(&login), "FORBIDDEN");
    assert_eq!(login["errors"][0]["extensions"]["reason"], "MFA_REQUIRED");
    assert!(login["errors"][0]["extensions"]["mfaTicket"].is_string());

    let (challenge, options) = start_sign_in(&app).await;
    let signed_in = finish_sign_in(&app, &challenge, &device.get(&options)).await;
    let fresh = data_str(&signed_in, &["finishPasskeySignIn", "accessToken"]).to_owned();
    assert_no_errors(&change(fresh).await);

    // Nor does a reset link sign in (it proves the mailbox, not the passkey).
    assert_no_errors(
        &app.graphql(
            "mutation($input: RequestPasswordResetInput!) { requestPasswordReset(input: $input) }",
            json!({ "input": { "email": holder.email } }),
        )
        .await,
    );
    let link = app.link_token(&holder.email, "reset-password").await;
    let reset = app
        .graphql(
            "mutation($input: ResetPasswordInput!) { resetPassword(input: $input) { accessToken } }",
            json!({ "input": { "token": link, "newPassword": "a brand new passphrase 9" } }),
        )
        .await;
    assert_eq!(error_code(&reset), "FORBIDDEN");
    assert_eq!(reset["errors"][0]["extensions"]["reason"], "MFA_REQUIRED");
}

#[tokio::test]
async fn adding_a_passkey_is_told_to_the_address_with_a_link_that_removes_it() {
    let app = spawn_app().await;
    let mut device = Device::new();
    let holder = holder(&app, &mut device).await;
    let emails = app.emails_to(&holder.email).await;
    let notice = emails
        .iter()
        .find(|e| e.subject == "A passkey was added to your account")
        .unwrap_or_else(|| panic!("no notice in {emails:#?}"));
    assert!(notice.text.contains("\"Phone\""), "{}", notice.text);
    assert!(
        notice.text.contains("secure-account?token="),
        "{}",
        notice.text
    );
}
