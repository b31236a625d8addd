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

// Slice (b): a passkey as the second factor of a password sign-in, as a step-up, and
// renaming and removing one.

const START_MFA: &str = "mutation($input: StartPasskeyMfaInput!) {
  startPasskeyMfa(input: $input) { challengeId options }
}";
const VERIFY_MFA: &str = "mutation($input: VerifyMfaInput!) {
  verifyMfa(input: $input) { accessToken user { id } }
}";
const START_REAUTH: &str = "mutation { startPasskeyReauthentication { challengeId options } }";
const REAUTHENTICATE: &str = "mutation($input: ReauthenticateInput!) {
  reauthenticate(input: $input) { accessToken }
}";
const RENAME: &str = "mutation($input: RenamePasskeyInput!) {
  renamePasskey(input: $input) { id name }
}";
const REMOVE: &str = "mutation($input: RemovePasskeyInput!) { removePasskey(input: $input) }";

/// The ticket of a password sign-in that answered `MFA_REQUIRED`.
async fn mfa_ticket(app: &TestApp, email: &str) -> String {
    let login = app.login(email, PASSWORD).await;
    assert_eq!(
        login["errors"][0]["extensions"]["reason"], "MFA_REQUIRED",
        "{login}"
    );
    login["errors"][0]["extensions"]["mfaTicket"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn start_mfa(app: &TestApp, ticket: &str) -> Value {
    app.graphql(START_MFA, json!({ "input": { "ticket": ticket } }))
        .await
}

async fn verify_mfa(app: &TestApp, ticket: &str, challenge: &Value, credential: &Value) -> Value {
    app.graphql(
        VERIFY_MFA,
        json!({ "input": { "ticket": ticket, "passkey": {
            "challengeId": challenge, "credential": credential,
        } } }),
    )
    .await
}

/// A session that proved the user with their passkey (a passkey sign-in).
async fn passkey_session(app: &TestApp, device: &mut Device) -> String {
    let (challenge, options) = start_sign_in(app).await;
    let signed_in = finish_sign_in(app, &challenge, &device.get(&options)).await;
    data_str(&signed_in, &["finishPasskeySignIn", "accessToken"]).to_owned()
}

#[tokio::test]
async fn a_passkey_completes_a_password_sign_in_as_its_only_second_factor_once() {
    let app = spawn_app().await;
    let mut device = Device::new();
    let holder = holder(&app, &mut device).await;
    let ticket = mfa_ticket(&app, &holder.email).await;

    let started = start_mfa(&app, &ticket).await;
    assert_no_errors(&started);
    let challenge = started["data"]["startPasskeyMfa"]["challengeId"].clone();
    let options = started["data"]["startPasskeyMfa"]["options"].clone();
    let allowed = options["allowCredentials"].as_array().unwrap();
    assert_eq!(
        allowed.len(),
        1,
        "the account's passkey is listed: {options}"
    );
    assert_eq!(options["userVerification"], "required");

    let credential = device.get(&options);
    let (first, second) = app
        .race(async {
            tokio::join!(
                verify_mfa(&app, &ticket, &challenge, &credential),
                verify_mfa(&app, &ticket, &challenge, &credential),
            )
        })
        .await;
    let ok: Vec<&Value> = [&first, &second]
        .into_iter()
        .filter(|r| r["errors"].is_null())
        .collect();
    assert_eq!(ok.len(), 1, "{first}\n{second}");
    let payload = &ok[0]["data"]["verifyMfa"];
    assert_eq!(payload["user"]["id"], holder.id.as_str());
    let claims = token_claims(payload["accessToken"].as_str().unwrap());
    assert_eq!(claims["amr"], json!(["pwd", "webauthn"]));

    // Later, the same again: the ceremony and the ticket are spent.
    let again = verify_mfa(&app, &ticket, &challenge, &credential).await;
    assert!(
        ["BAD_USER_INPUT", "UNAUTHENTICATED"].contains(&error_code(&again)),
        "{again}"
    );
    let restart = start_mfa(&app, &ticket).await;
    assert_eq!(error_code(&restart), "UNAUTHENTICATED");
}

#[tokio::test]
async fn verify_mfa_takes_exactly_one_of_a_code_and_a_passkey() {
    let app = spawn_app().await;
    let mut device = Device::new();
    let holder = holder(&app, &mut device).await;
    let ticket = mfa_ticket(&app, &holder.email).await;
    let started = start_mfa(&app, &ticket).await;
    let challenge = started["data"]["startPasskeyMfa"]["challengeId"].clone();
    let credential = device.get(&started["data"]["startPasskeyMfa"]["options"]);

    let both = app
        .graphql(
            VERIFY_MFA,
            json!({ "input": { "ticket": ticket, "code": "123456", "passkey": {
                "challengeId": challenge, "credential": credential,
            } } }),
        )
        .await;
    assert_eq!(error_code(&both), "BAD_USER_INPUT");
    let neither = app
        .graphql(VERIFY_MFA, json!({ "input": { "ticket": ticket } }))
        .await;
    assert_eq!(error_code(&neither), "BAD_USER_INPUT");
    // Neither spent the ceremony.
    assert_no_errors(&verify_mfa(&app, &ticket, &challenge, &credential).await);
}

#[tokio::test]
async fn a_second_factor_ceremony_is_bound_to_its_ticket_and_account() {
    let app = spawn_app().await;
    let mut ada_device = Device::new();
    let ada = holder(&app, &mut ada_device).await;
    let mut bob_device = Device::new();
    let bob = holder(&app, &mut bob_device).await;

    // Started with one sign-in's ticket, finished with another's.
    let first = mfa_ticket(&app, &ada.email).await;
    let second = mfa_ticket(&app, &ada.email).await;
    let started = start_mfa(&app, &second).await;
    let challenge = started["data"]["startPasskeyMfa"]["challengeId"].clone();
    let credential = ada_device.get(&started["data"]["startPasskeyMfa"]["options"]);
    let crossed = verify_mfa(&app, &first, &challenge, &credential).await;
    assert!(
        ["BAD_USER_INPUT", "UNAUTHENTICATED"].contains(&error_code(&crossed)),
        "{crossed}"
    );

    // Bob's passkey answering Ada's sign-in (Bob knows Ada's password).
    let ticket = mfa_ticket(&app, &ada.email).await;
    let started = start_mfa(&app, &ticket).await;
    let challenge = started["data"]["startPasskeyMfa"]["challengeId"].clone();
    let bobs = bob_device.get(&started["data"]["startPasskeyMfa"]["options"]);
    let refused = verify_mfa(&app, &ticket, &challenge, &bobs).await;
    assert_eq!(error_code(&refused), "UNAUTHENTICATED");
    let _ = bob;

    // A dead ticket starts nothing; nor does an account without a passkey.
    let dead = start_mfa(&app, "not-a-ticket").await;
    assert_eq!(error_code(&dead), "UNAUTHENTICATED");
}

#[tokio::test]
async fn each_start_and_each_try_counts_on_the_ticket() {
    let app = spawn_app().await;
    let mut device = Device::new();
    let holder = holder(&app, &mut device).await;
    let ticket = mfa_ticket(&app, &holder.email).await;
    // MFA_TICKET_ATTEMPTS is 5: five starts spend the ticket.
    for _ in 0..5 {
        assert_no_errors(&start_mfa(&app, &ticket).await);
    }
    assert_eq!(
        error_code(&start_mfa(&app, &ticket).await),
        "UNAUTHENTICATED"
    );
}

#[tokio::test]
async fn a_passkey_ceremony_started_for_a_ticket_outlives_neither_it_nor_five_minutes() {
    let app = spawn_app().await;
    let mut device = Device::new();
    let holder = holder(&app, &mut device).await;
    let ticket = mfa_ticket(&app, &holder.email).await;
    let started = start_mfa(&app, &ticket).await;
    let challenge = started["data"]["startPasskeyMfa"]["challengeId"].clone();
    let credential = device.get(&started["data"]["startPasskeyMfa"]["options"]);
    app.clock.advance(Duration::from_secs(5 * 60 + 1));
    let late = verify_mfa(&app, &ticket, &challenge, &credential).await;
    assert!(
        ["BAD_USER_INPUT", "UNAUTHENTICATED"].contains(&error_code(&late)),
        "{late}"
    );
}

#[tokio::test]
async fn a_passkey_steps_up_the_session_that_started_it() {
    let app = spawn_app().await;
    let mut device = Device::new();
    let holder = holder(&app, &mut device).await;

    // The enrolling session proved the password only: the password again is not enough.
    let with_password = app
        .graphql_as(
            &holder.token,
            REAUTHENTICATE,
            json!({ "input": { "password": PASSWORD } }),
        )
        .await;
    assert_eq!(error_code(&with_password), "BAD_USER_INPUT");
    assert_eq!(with_password["errors"][0]["extensions"]["field"], "passkey");

    let started = app.graphql_as(&holder.token, START_REAUTH, json!({})).await;
    assert_no_errors(&started);
    let challenge = started["data"]["startPasskeyReauthentication"]["challengeId"].clone();
    let credential = device.get(&started["data"]["startPasskeyReauthentication"]["options"]);
    let input = json!({ "input": { "passkey": {
        "challengeId": challenge, "credential": credential,
    } } });

    // Another session of the same user cannot finish it.
    let other = passkey_session(&app, &mut device).await;
    let elsewhere = app.graphql_as(&other, REAUTHENTICATE, input.clone()).await;
    assert_eq!(error_code(&elsewhere), "BAD_USER_INPUT");

    // Password and passkey together are refused.
    let mixed = app
        .graphql_as(
            &holder.token,
            REAUTHENTICATE,
            json!({ "input": { "password": PASSWORD, "passkey": input["input"]["passkey"] } }),
        )
        .await;
    assert_eq!(error_code(&mixed), "BAD_USER_INPUT");

    // The session that started it. (A fresh ceremony: the other session's sign-in used the
    // passkey since, so the assertion above carries a counter already passed.)
    let started = app.graphql_as(&holder.token, START_REAUTH, json!({})).await;
    let challenge = started["data"]["startPasskeyReauthentication"]["challengeId"].clone();
    let credential = device.get(&started["data"]["startPasskeyReauthentication"]["options"]);
    let input = json!({ "input": { "passkey": {
        "challengeId": challenge, "credential": credential,
    } } });
    let stepped = app
        .graphql_as(&holder.token, REAUTHENTICATE, input.clone())
        .await;
    assert_no_errors(&stepped);
    let token = data_str(&stepped, &["reauthenticate", "accessToken"]).to_owned();
    assert_eq!(token_claims(&token)["amr"], json!(["webauthn"]));
    assert_no_errors(
        &app.graphql_as(
            &token,
            "mutation($input: ChangePasswordInput!) { changePassword(input: $input) }",
            json!({ "input": { "currentPassword": PASSWORD, "newPassword": "stepped up passphrase 1" } }),
        )
        .await,
    );
    // Once.
    let replayed = app.graphql_as(&token, REAUTHENTICATE, input).await;
    assert_eq!(error_code(&replayed), "BAD_USER_INPUT");
}

#[tokio::test]
async fn a_passkey_is_renamed_and_removed_by_its_owner_only_after_a_recent_authentication() {
    let app = spawn_app().await;
    let mut device = Device::new();
    let holder = holder(&app, &mut device).await;
    let mut other_device = Device::new();
    let other = holder_token(&app, &mut other_device).await;
    let listed = app.graphql_as(&holder.token, PASSKEYS, json!({})).await;
    let id = listed["data"]["me"]["passkeys"][0]["id"].clone();

    // The password-only session is not recent enough for an account with a passkey.
    let stale = app
        .graphql_as(&holder.token, REMOVE, json!({ "input": { "id": id } }))
        .await;
    assert_eq!(
        stale["errors"][0]["extensions"]["reason"],
        "REAUTHENTICATION_REQUIRED"
    );
    let token = passkey_session(&app, &mut device).await;

    // Another account's session cannot touch it.
    for (query, input) in [
        (RENAME, json!({ "input": { "id": id, "name": "Mine now" } })),
        (REMOVE, json!({ "input": { "id": id } })),
    ] {
        let refused = app.graphql_as(&other, query, input).await;
        assert_eq!(error_code(&refused), "NOT_FOUND", "{refused}");
    }
    let bad_name = app
        .graphql_as(
            &token,
            RENAME,
            json!({ "input": { "id": id, "name": "a\u{202E}b" } }),
        )
        .await;
    assert_eq!(error_code(&bad_name), "BAD_USER_INPUT");

    let renamed = app
        .graphql_as(
            &token,
            RENAME,
            json!({ "input": { "id": id, "name": " Work phone " } }),
        )
        .await;
    assert_no_errors(&renamed);
    assert_eq!(renamed["data"]["renamePasskey"]["name"], "Work phone");

    let removed = app
        .graphql_as(&token, REMOVE, json!({ "input": { "id": id } }))
        .await;
    assert_no_errors(&removed);
    let emails = app.emails_to(&holder.email).await;
    let notice = emails
        .iter()
        .find(|e| e.subject == "A passkey was removed from your account")
        .unwrap_or_else(|| panic!("no notice in {emails:#?}"));
    assert!(notice.text.contains("\"Work phone\""), "{}", notice.text);
    let again = app
        .graphql_as(&token, REMOVE, json!({ "input": { "id": id } }))
        .await;
    assert_eq!(error_code(&again), "NOT_FOUND");

    // It signs in no more, and the password alone does again.
    let (challenge, options) = start_sign_in(&app).await;
    let refused = finish_sign_in(&app, &challenge, &device.get(&options)).await;
    assert_eq!(error_code(&refused), "UNAUTHENTICATED");
    assert_no_errors(&app.login(&holder.email, PASSWORD).await);

    app.flush_audit().await;
    let events = app
        .graphql_as(
            &app.admin().await.access(),
            "query($f: AuditEventFilter) { auditEvents(first: 50, filter: $f) { edges { node { kind detail } } } }",
            json!({ "f": { "userId": holder.id } }),
        )
        .await;
    let kinds: Vec<&str> = events["data"]["auditEvents"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["kind"].as_str().unwrap())
        .collect();
    for kind in ["PASSKEY_ADDED", "PASSKEY_RENAMED", "PASSKEY_REMOVED"] {
        assert!(kinds.contains(&kind), "{kind} in {kinds:?}");
    }
}

/// Another account with a passkey; its passkey session's token.
async fn holder_token(app: &TestApp, device: &mut Device) -> String {
    holder(app, device).await;
    passkey_session(app, device).await
}

#[tokio::test]
async fn an_assertion_whose_counter_went_backwards_is_refused_and_audited() {
    let app = spawn_app().await;
    let mut device = Device::new();
    let holder = holder(&app, &mut device).await;

    // Two sign-ins started; the device answers both, the later answer is used first.
    let (early, early_options) = start_sign_in(&app).await;
    let stale = device.get(&early_options);
    let (late, late_options) = start_sign_in(&app).await;
    assert_no_errors(&finish_sign_in(&app, &late, &device.get(&late_options)).await);
    // A clone of the authenticator would send just that: an older counter.
    let refused = finish_sign_in(&app, &early, &stale).await;
    assert_eq!(error_code(&refused), "UNAUTHENTICATED");

    app.flush_audit().await;
    let events = app
        .graphql_as(
            &app.admin().await.access(),
            "query($f: AuditEventFilter) { auditEvents(first: 50, filter: $f) { edges { node { kind detail } } } }",
            json!({ "f": { "userId": holder.id, "kind": "PASSKEY_REFUSED" } }),
        )
        .await;
    let details: Vec<&str> = events["data"]["auditEvents"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["detail"].as_str().unwrap())
        .collect();
    assert!(details.iter().any(|d| d.contains("counter")), "{details:?}");
}

#[tokio::test]
async fn expired_ceremonies_are_cleaned_up_in_the_background() {
    let app = crate::helpers::spawn_app_with(|c| {
        c.sessions.session_cleanup_interval = Duration::from_secs(1);
    })
    .await;
    let (kept, _) = start_sign_in(&app).await;
    app.clock.advance(Duration::from_secs(4 * 60));
    start_sign_in(&app).await;
    app.clock.advance(Duration::from_secs(60 + 1));

    // The first expired; the second has a minute left.
    use sea_orm::{EntityTrait, PaginatorTrait};
    let db = app.db().await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while entity::passkey_ceremony::Entity::find()
        .count(&db)
        .await
        .unwrap()
        > 1
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the expired ceremony was not deleted"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let left = entity::passkey_ceremony::Entity::find()
        .all(&db)
        .await
        .unwrap();
    assert_eq!(left.len(), 1);
    assert_ne!(left[0].id.to_string(), kept.as_str().unwrap());
}

#[tokio::test]
async fn an_administrators_reset_removes_the_passkeys_too() {
    let app = spawn_app().await;
    let mut device = Device::new();
    let holder = holder(&app, &mut device).await;
    let session = passkey_session(&app, &mut device).await;
    let admin = app.admin().await.access();
    let reset = |user: String| {
        let (app, admin) = (&app, &admin);
        async move {
            app.graphql_as(
                admin,
                "mutation($input: ResetUserMfaInput!) { resetUserMfa(input: $input) { id } }",
                json!({ "input": { "userId": user } }),
            )
            .await
        }
    };
    assert_no_errors(&reset(holder.id.clone()).await);

    // The passkey signs in no more, its sessions ended, and the password alone signs in.
    assert_eq!(error_code(&app.me(&session).await), "UNAUTHENTICATED");
    let (challenge, options) = start_sign_in(&app).await;
    let refused = finish_sign_in(&app, &challenge, &device.get(&options)).await;
    assert_eq!(error_code(&refused), "UNAUTHENTICATED");
    assert_no_errors(&app.login(&holder.email, PASSWORD).await);
    // Nothing left to reset.
    assert_eq!(error_code(&reset(holder.id.clone()).await), "CONFLICT");

    app.flush_audit().await;
    let events = app
        .graphql_as(
            &admin,
            "query($f: AuditEventFilter) { auditEvents(first: 50, filter: $f) { edges { node { kind actorId detail } } } }",
            json!({ "f": { "userId": holder.id, "kind": "PASSKEY_REMOVED" } }),
        )
        .await;
    let removed = &events["data"]["auditEvents"]["edges"][0]["node"];
    assert!(removed["actorId"].is_string(), "{events}");
    assert!(
        removed["detail"]
            .as_str()
            .unwrap()
            .contains("administrator"),
        "{events}"
    );
}

#[tokio::test]
async fn an_assertion_reporting_another_backup_eligibility_is_refused_and_audited() {
    let app = spawn_app().await;
    let mut device = Device::new();
    let holder = holder(&app, &mut device).await;

    // The authenticator registered with one backup eligibility; the stored passkey is made
    // to say the other, as if a different (cloned or swapped) authenticator now answered.
    use sea_orm::{ActiveModelTrait, EntityTrait, IntoActiveModel, Set};
    let db = app.db().await;
    let stored = entity::passkey::Entity::find()
        .one(&db)
        .await
        .unwrap()
        .unwrap();
    let registered = stored.backup_eligible;
    let mut flipped = stored.into_active_model();
    flipped.backup_eligible = Set(!registered);
    flipped.update(&db).await.unwrap();

    let (challenge, options) = start_sign_in(&app).await;
    let refused = finish_sign_in(&app, &challenge, &device.get(&options)).await;
    assert_eq!(error_code(&refused), "UNAUTHENTICATED");

    app.flush_audit().await;
    let events = app
        .graphql_as(
            &app.admin().await.access(),
            "query($f: AuditEventFilter) { auditEvents(first: 50, filter: $f) { edges { node { kind detail } } } }",
            json!({ "f": { "userId": holder.id, "kind": "PASSKEY_REFUSED" } }),
        )
        .await;
    let details: Vec<&str> = events["data"]["auditEvents"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["detail"].as_str().unwrap())
        .collect();
    assert!(
        details.iter().any(|d| d.contains("backup eligibility")),
        "{details:?}"
    );
}

#[tokio::test]
async fn a_second_factor_ceremony_started_on_one_instance_finishes_on_another() {
    let app = spawn_app().await;
    let other = app.another_instance().await;
    let mut device = Device::new();
    let holder = holder(&app, &mut device).await;
    let ticket = mfa_ticket(&app, &holder.email).await;
    let started = start_mfa(&app, &ticket).await;
    let challenge = started["data"]["startPasskeyMfa"]["challengeId"].clone();
    let credential = device.get(&started["data"]["startPasskeyMfa"]["options"]);
    assert_no_errors(&verify_mfa(&other, &ticket, &challenge, &credential).await);
}

#[tokio::test]
async fn a_deleted_accounts_passkey_signs_in_no_more() {
    let app = spawn_app().await;
    let mut device = Device::new();
    holder(&app, &mut device).await;
    let session = passkey_session(&app, &mut device).await;
    assert_no_errors(
        &app.graphql_as(
            &session,
            "mutation($i: DeleteAccountInput!) { deleteAccount(input: $i) }",
            json!({ "i": { "password": PASSWORD } }),
        )
        .await,
    );
    let (challenge, options) = start_sign_in(&app).await;
    let refused = finish_sign_in(&app, &challenge, &device.get(&options)).await;
    assert_eq!(error_code(&refused), "UNAUTHENTICATED");
    use sea_orm::{EntityTrait, PaginatorTrait};
    let db = app.db().await;
    assert_eq!(entity::passkey::Entity::find().count(&db).await.unwrap(), 0);
}

#[tokio::test]
async fn the_first_passkey_ends_the_sessions_signed_in_with_the_password_alone() {
    let app = spawn_app().await;
    let (email, _, token) = registered(&app).await;
    let elsewhere = app.sign_in(&email, PASSWORD).await.access();
    let mut device = Device::new();
    assert_no_errors(&enrol(&app, &token, &mut device, "Phone").await);
    assert_eq!(error_code(&app.me(&elsewhere).await), "UNAUTHENTICATED");
    assert_no_errors(&app.me(&token).await);

    // A second passkey (from a session that proved the first) ends nothing more.
    let proved = passkey_session(&app, &mut device).await;
    let mut laptop = Device::new();
    assert_no_errors(&enrol(&app, &proved, &mut laptop, "Laptop").await);
    assert_no_errors(&app.me(&token).await);
}

#[tokio::test]
async fn a_passkey_that_does_not_verify_counts_toward_the_code_lockout() {
    // Every refused second-factor passkey is a wrong code: past the lockout threshold the
    // account's codes lock, and even a good passkey waits.
    let app = crate::helpers::spawn_app_with(|c| {
        crate::mfa::code_limits(c, "1000/1m");
        c.rate_limits.login_lockout_after = 3;
    })
    .await;
    let mut device = Device::new();
    let holder = holder(&app, &mut device).await;
    let mut refused = 0;
    while refused < 10 {
        let ticket = mfa_ticket(&app, &holder.email).await;
        let started = start_mfa(&app, &ticket).await;
        let challenge = started["data"]["startPasskeyMfa"]["challengeId"].clone();
        let mut credential = device.get(&started["data"]["startPasskeyMfa"]["options"]);
        credential["response"]["signature"] = json!("AAAA");
        let answer = verify_mfa(&app, &ticket, &challenge, &credential).await;
        if error_code(&answer) == "RATE_LIMITED" {
            break;
        }
        assert_eq!(error_code(&answer), "UNAUTHENTICATED", "{answer}");
        refused += 1;
    }
    assert!(refused < 10, "the wrong passkeys were never limited");
    let ticket = mfa_ticket(&app, &holder.email).await;
    let started = start_mfa(&app, &ticket).await;
    let challenge = started["data"]["startPasskeyMfa"]["challengeId"].clone();
    let good = device.get(&started["data"]["startPasskeyMfa"]["options"]);
    let locked = verify_mfa(&app, &ticket, &challenge, &good).await;
    assert_eq!(error_code(&locked), "RATE_LIMITED", "{locked}");
}
