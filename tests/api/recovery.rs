//! Account takeover with a phished password must not stick. Each test is an intruder who knows
//! the password and controls addresses of their own, against an owner who controls only the
//! address the account had: the owner's "this wasn't me" link (the cancel link of an email
//! change, or a security notice's) wins whatever the intruder did before or after it.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{
    PASSWORD, TestApp, assert_no_errors, data_str, error_code, spawn_app, unique_email,
};

const CHANGE_EMAIL: &str = "mutation($input: ChangeEmailInput!) {
  changeEmail(input: $input) { email pendingEmail }
}";
const CONFIRM_CHANGE: &str = "mutation($input: EmailChangeLinkInput!) {
  confirmEmailChange(input: $input) { email }
}";
const CANCEL_CHANGE: &str =
    "mutation($input: EmailChangeLinkInput!) { cancelEmailChange(input: $input) }";
const SECURE: &str = "mutation($input: SecureAccountInput!) { secureAccount(input: $input) }";
const CHANGE_PASSWORD: &str =
    "mutation($input: ChangePasswordInput!) { changePassword(input: $input) }";
const RESET: &str = "mutation($input: ResetPasswordInput!) {
  resetPassword(input: $input) { accessToken user { email emailVerified mfaEnabled } }
}";
const REQUEST_RESET: &str =
    "mutation($input: RequestPasswordResetInput!) { requestPasswordReset(input: $input) }";
const ENROLL: &str = "mutation { enrollTotp { secret } }";
const CONFIRM_TOTP: &str =
    "mutation($input: ConfirmTotpInput!) { confirmTotp(input: $input) { recoveryCodes } }";
const INTRUDERS_PASSWORD: &str = "the intruder's own passphrase 42";
const OWNERS_NEW_PASSWORD: &str = "the owner's fresh passphrase 17";

/// The owner's account, and the intruder's session in it (signed in with the phished
/// password).
struct Hijacked {
    owner: String,
    intruder: String,
}

async fn hijacked(app: &TestApp) -> Hijacked {
    let owner = unique_email();
    app.register(&owner, PASSWORD).await;
    let intruder = app.sign_in(&owner, PASSWORD).await.access();
    Hijacked { owner, intruder }
}

/// Asks, as `token`, to move the account to `to`, with `password`.
async fn ask_to_move(app: &TestApp, token: &str, to: &str, password: &str) {
    assert_no_errors(
        &app.graphql_as(
            token,
            CHANGE_EMAIL,
            json!({ "input": { "newEmail": to, "password": password } }),
        )
        .await,
    );
}

/// Asks to move and confirms from the new address (which the intruder controls).
async fn moves(app: &TestApp, token: &str, to: &str, password: &str) {
    ask_to_move(app, token, to, password).await;
    let link = app.link_token(to, "confirm-email-change").await;
    assert_no_errors(
        &app.graphql(CONFIRM_CHANGE, json!({ "input": { "token": link } }))
            .await,
    );
}

/// The cancel link the change from `from` sent there (the last one).
async fn cancel_link(app: &TestApp, from: &str) -> String {
    app.link_token(from, "cancel-email-change").await
}

async fn cancel(app: &TestApp, link: &str) -> Value {
    app.graphql(CANCEL_CHANGE, json!({ "input": { "token": link } }))
        .await
}

async fn secure(app: &TestApp, link: &str) -> Value {
    app.graphql(SECURE, json!({ "input": { "token": link } }))
        .await
}

/// The intruder signs in afresh at `address` with `password` (after a move or a reset).
async fn signs_in(app: &TestApp, address: &str, password: &str) -> String {
    app.sign_in(address, password).await.access()
}

/// The owner is back: the account answers at `owner` only through a reset of the password;
/// the intruder is out, and no password (theirs or the phished one) signs in.
async fn assert_owner_is_back(app: &TestApp, owner: &str, intruder_sessions: &[&str]) {
    for session in intruder_sessions {
        assert_eq!(
            error_code(&app.me(session).await),
            "UNAUTHENTICATED",
            "every session ended"
        );
    }
    for password in [PASSWORD, INTRUDERS_PASSWORD] {
        assert_eq!(
            error_code(&app.login(owner, password).await),
            "UNAUTHENTICATED",
            "the password no longer works"
        );
    }
    let link = app.link_token(owner, "reset-password").await;
    let reset = app
        .graphql(
            RESET,
            json!({ "input": { "token": link, "newPassword": OWNERS_NEW_PASSWORD } }),
        )
        .await;
    assert_no_errors(&reset);
    assert_eq!(reset["data"]["resetPassword"]["user"]["email"], owner);
    assert_eq!(
        reset["data"]["resetPassword"]["user"]["emailVerified"],
        true
    );
    signs_in(app, owner, OWNERS_NEW_PASSWORD).await;
}

#[tokio::test]
async fn a_second_email_change_does_not_kill_the_owners_revert_link() {
    let app = spawn_app().await;
    let Hijacked { owner, intruder } = hijacked(&app).await;
    let (h1, h2) = (unique_email(), unique_email());
    moves(&app, &intruder, &h1, PASSWORD).await;
    let owners_link = cancel_link(&app, &owner).await;
    let at_h1 = signs_in(&app, &h1, PASSWORD).await;
    moves(&app, &at_h1, &h2, PASSWORD).await;

    assert_no_errors(&cancel(&app, &owners_link).await);

    assert_owner_is_back(&app, &owner, &[&intruder, &at_h1]).await;
    for address in [&h1, &h2] {
        assert_eq!(
            error_code(&app.login(address, PASSWORD).await),
            "UNAUTHENTICATED"
        );
    }
}

#[tokio::test]
async fn the_intruders_own_cancel_link_cannot_undo_the_owners_revert() {
    let app = spawn_app().await;
    let Hijacked { owner, intruder } = hijacked(&app).await;
    let theirs = unique_email();
    moves(&app, &intruder, &theirs, PASSWORD).await;
    let owners_link = cancel_link(&app, &owner).await;
    // Back towards the owner's address, never confirmed: its cancel link goes to the intruder.
    let at_theirs = signs_in(&app, &theirs, PASSWORD).await;
    ask_to_move(&app, &at_theirs, &owner, PASSWORD).await;
    let intruders_link = cancel_link(&app, &theirs).await;

    assert_no_errors(&cancel(&app, &owners_link).await);
    let late = cancel(&app, &intruders_link).await;
    assert_eq!(error_code(&late), "BAD_USER_INPUT", "{late}");

    // Nothing brings the account to the intruder's address: a reset there finds no account.
    let sent_before = app.emails_to(&theirs).await.len();
    app.graphql(REQUEST_RESET, json!({ "input": { "email": theirs } }))
        .await;
    assert_eq!(app.emails_to(&theirs).await.len(), sent_before);
    assert_owner_is_back(&app, &owner, &[&intruder, &at_theirs]).await;
}

#[tokio::test]
async fn the_owners_link_wins_even_after_the_intruder_used_theirs_and_reset_the_password() {
    let app = spawn_app().await;
    let Hijacked { owner, intruder } = hijacked(&app).await;
    let theirs = unique_email();
    moves(&app, &intruder, &theirs, PASSWORD).await;
    let owners_link = cancel_link(&app, &owner).await;
    let at_theirs = signs_in(&app, &theirs, PASSWORD).await;
    ask_to_move(&app, &at_theirs, &unique_email(), PASSWORD).await;
    // The intruder "secures" the account at their own address and resets its password there.
    assert_no_errors(&cancel(&app, &cancel_link(&app, &theirs).await).await);
    let link = app.link_token(&theirs, "reset-password").await;
    assert_no_errors(
        &app.graphql(
            RESET,
            json!({ "input": { "token": link, "newPassword": INTRUDERS_PASSWORD } }),
        )
        .await,
    );
    let again = signs_in(&app, &theirs, INTRUDERS_PASSWORD).await;

    assert_no_errors(&cancel(&app, &owners_link).await);

    assert_owner_is_back(&app, &owner, &[&intruder, &at_theirs, &again]).await;
}

#[tokio::test]
async fn three_changes_deep_with_interleaved_cancels_the_owners_link_still_wins() {
    let app = spawn_app().await;
    let Hijacked { owner, intruder } = hijacked(&app).await;
    let (h1, h2, h3) = (unique_email(), unique_email(), unique_email());
    moves(&app, &intruder, &h1, PASSWORD).await;
    let owners_link = cancel_link(&app, &owner).await;
    let mut session = signs_in(&app, &h1, PASSWORD).await;
    assert_no_errors(
        &app.graphql_as(
            &session,
            CHANGE_PASSWORD,
            json!({ "input": { "currentPassword": PASSWORD, "newPassword": INTRUDERS_PASSWORD } }),
        )
        .await,
    );
    let mut sessions = vec![intruder.clone()];
    for (from, to) in [(&h1, &h2), (&h2, &h3)] {
        // One change asked and cancelled by the intruder, then one made.
        ask_to_move(&app, &session, &unique_email(), INTRUDERS_PASSWORD).await;
        assert_no_errors(&cancel(&app, &cancel_link(&app, from).await).await);
        let link = app.link_token(from, "reset-password").await;
        assert_no_errors(
            &app.graphql(
                RESET,
                json!({ "input": { "token": link, "newPassword": INTRUDERS_PASSWORD } }),
            )
            .await,
        );
        sessions.push(session);
        session = signs_in(&app, from, INTRUDERS_PASSWORD).await;
        moves(&app, &session, to, INTRUDERS_PASSWORD).await;
        sessions.push(session);
        session = signs_in(&app, to, INTRUDERS_PASSWORD).await;
    }
    sessions.push(session);

    assert_no_errors(&cancel(&app, &owners_link).await);

    let sessions: Vec<&str> = sessions.iter().map(String::as_str).collect();
    assert_owner_is_back(&app, &owner, &sessions).await;
}

#[tokio::test]
async fn the_owners_link_works_for_its_window_and_not_after() {
    let app = spawn_app().await;
    let Hijacked { owner, intruder } = hijacked(&app).await;
    let theirs = unique_email();
    moves(&app, &intruder, &theirs, PASSWORD).await;
    let owners_link = cancel_link(&app, &owner).await;

    // The default window is 72 hours.
    app.clock.advance(Duration::from_secs(72 * 3600 + 1));
    let late = cancel(&app, &owners_link).await;
    assert_eq!(error_code(&late), "BAD_USER_INPUT", "{late}");
    assert_eq!(
        data_str(
            &app.me(&signs_in(&app, &theirs, PASSWORD).await).await,
            &["me", "email"]
        ),
        theirs
    );
}

#[tokio::test]
async fn the_address_an_account_left_cannot_be_registered_while_its_link_may_bring_it_back() {
    let app = spawn_app().await;
    let Hijacked { owner, intruder } = hijacked(&app).await;
    moves(&app, &intruder, &unique_email(), PASSWORD).await;

    // A squatter on the address would make the owner's revert fail.
    let squat = app
        .graphql(
            "mutation($input: RegisterInput!) { register(input: $input) { accessToken } }",
            json!({ "input": { "email": owner, "password": PASSWORD } }),
        )
        .await;
    assert_eq!(error_code(&squat), "CONFLICT", "{squat}");

    assert_no_errors(&cancel(&app, &cancel_link(&app, &owner).await).await);
}

/// A notice about `subject` went to `to`; returns its "this wasn't me" link.
async fn notice_link(app: &TestApp, to: &str, subject: &str) -> String {
    let emails = app.emails_to(to).await;
    let notice = emails
        .iter()
        .rev()
        .find(|email| email.subject == subject)
        .unwrap_or_else(|| panic!("no notice \"{subject}\" to {to}"));
    assert!(
        notice.text.contains("UTC, from the network 127.0.0.0/24"),
        "it says when and from where: {}",
        notice.text
    );
    let (_, rest) = notice.text.split_once("?token=").expect("a link");
    rest.split_whitespace().next().unwrap().to_owned()
}

#[tokio::test]
async fn every_change_an_intruder_makes_is_told_to_the_address_with_a_link_that_undoes_it() {
    let app = spawn_app().await;
    let Hijacked { owner, intruder } = hijacked(&app).await;

    // The password.
    assert_no_errors(
        &app.graphql_as(
            &intruder,
            CHANGE_PASSWORD,
            json!({ "input": { "currentPassword": PASSWORD, "newPassword": INTRUDERS_PASSWORD } }),
        )
        .await,
    );
    notice_link(&app, &owner, "Your password was changed").await;

    // A second factor of the intruder's.
    second_factor_on(&app, &intruder).await;
    let link = notice_link(&app, &owner, "Two-step sign-in was turned on").await;

    // An email change asked: the old address is told at once.
    ask_to_move(&app, &intruder, &unique_email(), INTRUDERS_PASSWORD).await;
    notice_link(&app, &owner, "Your email address is being changed").await;

    // The owner follows the link of the second-factor notice.
    assert_no_errors(&secure(&app, &link).await);
    assert_owner_is_back(&app, &owner, &[&intruder]).await;
    let session = signs_in(&app, &owner, OWNERS_NEW_PASSWORD).await;
    let me = app
        .graphql_as(&session, "{ me { mfaEnabled } }", json!({}))
        .await;
    assert_eq!(
        me["data"]["me"]["mfaEnabled"], false,
        "the intruder's factor is gone"
    );
}

/// Turns a second factor on for the account of `token` (a fresh session); returns its
/// recovery codes.
async fn second_factor_on(app: &TestApp, token: &str) -> Vec<String> {
    use authgraph::application::ports::Clock;
    let enrollment = app.graphql_as(token, ENROLL, json!({})).await;
    let secret = data_str(&enrollment, &["enrollTotp", "secret"]);
    let code = crate::mfa::code_at(secret, app.clock.now());
    let confirmed = app
        .graphql_as(token, CONFIRM_TOTP, json!({ "input": { "code": code } }))
        .await;
    assert_no_errors(&confirmed);
    confirmed["data"]["confirmTotp"]["recoveryCodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn second_factor_recovery_code_and_administrator_changes_are_each_told_to_the_address() {
    let app = spawn_app().await;
    let owner = unique_email();
    let session = app.register(&owner, PASSWORD).await.access();

    second_factor_on(&app, &session).await;
    notice_link(&app, &owner, "Two-step sign-in was turned on").await;

    let regenerated = app
        .graphql_as(&session, "mutation { regenerateRecoveryCodes }", json!({}))
        .await;
    assert_no_errors(&regenerated);
    notice_link(&app, &owner, "New recovery codes were made").await;
    let codes = regenerated["data"]["regenerateRecoveryCodes"]
        .as_array()
        .unwrap()
        .clone();

    let login = app.login(&owner, PASSWORD).await;
    let ticket = login["errors"][0]["extensions"]["mfaTicket"]
        .as_str()
        .unwrap();
    assert_no_errors(
        &app.graphql(
            "mutation($input: VerifyMfaInput!) { verifyMfa(input: $input) { expiresIn } }",
            json!({ "input": { "ticket": ticket, "code": codes[0] } }),
        )
        .await,
    );
    let used = notice_link(&app, &owner, "A recovery code was used to sign in").await;
    assert!(!used.is_empty());

    assert_no_errors(
        &app.graphql_as(
            &session,
            "mutation($input: DisableTotpInput!) { disableTotp(input: $input) }",
            json!({ "input": { "code": codes[1] } }),
        )
        .await,
    );
    notice_link(&app, &owner, "Two-step sign-in was turned off").await;

    // An administrator's changes (from a fresh administrator's session).
    let admin = app.admin().await;
    let admin_token = &admin.access();
    let user_id = app.current_user(&session).await.id;
    second_factor_on(&app, &session).await;
    assert_no_errors(
        &app.graphql_as(
            admin_token,
            "mutation($input: ResetUserMfaInput!) { resetUserMfa(input: $input) { id } }",
            json!({ "input": { "userId": user_id } }),
        )
        .await,
    );
    notice_link(&app, &owner, "An administrator turned two-step sign-in off").await;
    assert_no_errors(
        &app.graphql_as(
            admin_token,
            "mutation($input: SetUserRoleInput!) { setUserRole(input: $input) { id } }",
            json!({ "input": { "userId": user_id, "role": "ADMIN" } }),
        )
        .await,
    );
    notice_link(&app, &owner, "Your account's role was changed").await;

    // Each notice is audited.
    app.flush_audit().await;
    let events = app
        .graphql_as(
            admin_token,
            "query($f: AuditEventFilter) { auditEvents(first: 50, filter: $f) { edges { node { kind detail } } } }",
            json!({ "f": { "userId": user_id, "kind": "SECURITY_NOTICE_SENT" } }),
        )
        .await;
    assert_no_errors(&events);
    let details: Vec<&str> = events["data"]["auditEvents"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["detail"].as_str().unwrap())
        .collect();
    for what in [
        "second factor enabled",
        "recovery codes regenerated",
        "recovery code used",
        "second factor disabled",
        "second factor reset",
        "role changed",
    ] {
        assert!(
            details.contains(&what),
            "no notice of {what} in {details:?}"
        );
    }
}

#[tokio::test]
async fn a_completed_change_is_told_to_the_old_address_whose_link_brings_the_account_back() {
    let app = spawn_app().await;
    let Hijacked { owner, intruder } = hijacked(&app).await;
    let theirs = unique_email();
    moves(&app, &intruder, &theirs, PASSWORD).await;

    let link = notice_link(&app, &owner, "Your email address was changed").await;
    assert_no_errors(&secure(&app, &link).await);

    assert_owner_is_back(&app, &owner, &[&intruder]).await;
    // The audit trail has it.
    app.flush_audit().await;
}

#[tokio::test]
async fn a_recovery_link_works_once() {
    let app = spawn_app().await;
    let Hijacked { owner, intruder } = hijacked(&app).await;
    moves(&app, &intruder, &unique_email(), PASSWORD).await;
    let link = cancel_link(&app, &owner).await;

    let (one, other) = app
        .race(async { tokio::join!(secure(&app, &link), secure(&app, &link)) })
        .await;
    let succeeded = [&one, &other]
        .iter()
        .filter(|body| body["errors"].is_null())
        .count();
    assert_eq!(succeeded, 1, "{one} {other}");
    let again = secure(&app, &link).await;
    assert_eq!(error_code(&again), "BAD_USER_INPUT");
}

#[tokio::test]
async fn an_intruders_passkey_is_gone_after_secure_account() {
    use crate::helpers::passkey::Device;
    use crate::passkeys::{enrol, finish_sign_in, start_sign_in};

    let app = spawn_app().await;
    let Hijacked { owner, intruder } = hijacked(&app).await;
    // The intruder enrols a passkey of theirs: with it they would sign in whatever the
    // password becomes.
    // A second enrolment is under way when the owner acts.
    let started = app
        .graphql_as(
            &intruder,
            "mutation { startPasskeyRegistration { challengeId options } }",
            json!({}),
        )
        .await;
    assert_no_errors(&started);
    let mut theirs = Device::new();
    assert_no_errors(&enrol(&app, &intruder, &mut theirs, "Backup").await);
    let link = notice_link(&app, &owner, "A passkey was added to your account").await;

    assert_no_errors(&secure(&app, &link).await);
    assert_owner_is_back(&app, &owner, &[&intruder]).await;
    let (challenge, options) = start_sign_in(&app).await;
    let refused = finish_sign_in(&app, &challenge, &theirs.get(&options)).await;
    assert_eq!(
        error_code(&refused),
        "UNAUTHENTICATED",
        "the intruder's passkey is gone"
    );
    let session = signs_in(&app, &owner, OWNERS_NEW_PASSWORD).await;
    let me = app
        .graphql_as(&session, "{ me { passkeys { id } } }", json!({}))
        .await;
    assert_eq!(me["data"]["me"]["passkeys"], json!([]), "{me}");
}
