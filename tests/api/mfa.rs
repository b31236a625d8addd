//! The second factor over HTTP: enrolment, signing in with a code, recovery codes, recent
//! authentication for sensitive changes, and an administrator's reset; each attack the issue
//! names (replay, a reused or foreign ticket, guessing, a stolen session) as a test. Codes are
//! computed by an independent TOTP implementation (`totp-rs`) at the app's clock.

use std::time::Duration;

use authgraph::application::ports::Clock;
use sea_orm::{ConnectionTrait, Statement};
use serde::Deserialize;
use serde_json::{Value, json};
use totp_rs::{Algorithm, Secret, TOTP};

use crate::helpers::{
    PASSWORD, TestApp, assert_no_errors, data, data_str, error_code, only_error, spawn_app,
    spawn_app_with, token_claims, unique_email,
};

const ENROLL: &str = "mutation { enrollTotp { secret otpauthUri qrCodeSvg } }";
const CONFIRM: &str =
    "mutation($input: ConfirmTotpInput!) { confirmTotp(input: $input) { recoveryCodes } }";
const DISABLE: &str = "mutation($input: DisableTotpInput!) { disableTotp(input: $input) }";
const REGENERATE: &str = "mutation { regenerateRecoveryCodes }";
const VERIFY: &str = "mutation($input: VerifyMfaInput!) {
  verifyMfa(input: $input) { accessToken refreshToken user { id email mfaEnabled } }
}";
const REAUTHENTICATE: &str = "mutation($input: ReauthenticateInput!) {
  reauthenticate(input: $input) { accessToken refreshToken user { id } }
}";
const MFA_STATE: &str = "{ me { mfaEnabled recoveryCodesRemaining } }";
const CHANGE_PASSWORD: &str =
    "mutation($input: ChangePasswordInput!) { changePassword(input: $input) }";

/// What `MFA_STATE` reads of the signed-in user.
#[derive(Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct MfaState {
    mfa_enabled: bool,
    recovery_codes_remaining: Option<i32>,
}

/// The signed-in user's second-factor state; the request must succeed.
async fn mfa_state(app: &TestApp, token: &str) -> MfaState {
    data(&app.graphql_as(token, MFA_STATE, json!({})).await, "me")
}

/// The answer to `CONFIRM`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Confirmed {
    recovery_codes: Vec<String>,
}

/// The code an authenticator app shows for `secret` (base32) at `at`.
pub(crate) fn code_at(secret: &str, at: chrono::DateTime<chrono::Utc>) -> String {
    let bytes = Secret::Encoded(secret.to_owned()).to_bytes().unwrap();
    TOTP::new_unchecked(Algorithm::SHA1, 6, 0, 30, bytes, None, String::new())
        .generate(at.timestamp() as u64)
}

/// An account with a second factor on.
struct Enrolled {
    email: String,
    id: String,
    secret: String,
    recovery_codes: Vec<String>,
    /// The session that enrolled (it proved both factors just now).
    token: String,
}

impl Enrolled {
    /// A code of the app's current time step, or of a later step when `steps_ahead` > 0
    /// (each step's code is accepted once; the server allows one step of skew).
    fn code(&self, app: &TestApp, steps_ahead: i64) -> String {
        code_at(
            &self.secret,
            app.clock.now() + chrono::Duration::seconds(30 * steps_ahead),
        )
    }
}

/// Registers an account and turns its second factor on.
async fn enrolled(app: &TestApp) -> Enrolled {
    let email = unique_email();
    let signed_up = app.register(&email, PASSWORD).await;
    let token = signed_up.access();
    let enrollment = app.graphql_as(&token, ENROLL, json!({})).await;
    assert_no_errors(&enrollment);
    let secret = data_str(&enrollment, &["enrollTotp", "secret"]).to_owned();
    let confirmed = app
        .graphql_as(
            &token,
            CONFIRM,
            json!({ "input": { "code": code_at(&secret, app.clock.now()) } }),
        )
        .await;
    let recovery_codes = data::<Confirmed>(&confirmed, "confirmTotp").recovery_codes;
    Enrolled {
        email,
        id: signed_up.user.id.clone(),
        secret,
        recovery_codes,
        token,
    }
}

/// Signs in with the password; returns the MFA ticket the answer carries.
async fn sign_in_ticket(app: &TestApp, email: &str) -> String {
    let body = app.login(email, PASSWORD).await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
    let extensions = only_error(&body).extensions;
    assert_eq!(extensions.reason.as_deref(), Some("MFA_REQUIRED"));
    assert_eq!(body["data"], Value::Null, "no token before the code");
    extensions.mfa_ticket.expect("a ticket")
}

async fn verify(app: &TestApp, ticket: &str, code: &str) -> Value {
    app.graphql(
        VERIFY,
        json!({ "input": { "ticket": ticket, "code": code } }),
    )
    .await
}

/// Rate limits on, with `per_address` codes per client address; the other allowances out of
/// the way of a test about codes.
pub(crate) fn code_limits(c: &mut authgraph::config::Config, per_address: &str) {
    c.rate_limits.rate_limits = true;
    c.rate_limits.rate_limit_login = "1000/1m".parse().unwrap();
    c.rate_limits.rate_limit_login_account = "1000/1m".parse().unwrap();
    c.rate_limits.rate_limit_code = per_address.parse().unwrap();
    c.rate_limits.rate_limit_code_account = "1000/1m".parse().unwrap();
}

fn reason(body: &Value) -> &str {
    body["errors"][0]["extensions"]["reason"]
        .as_str()
        .unwrap_or_default()
}

#[tokio::test]
async fn a_factor_turns_on_only_with_a_code_from_it_and_its_secret_is_sealed_at_rest() {
    let app = spawn_app().await;
    let email = unique_email();
    let token = app.register(&email, PASSWORD).await.access();

    let enrollment = app.graphql_as(&token, ENROLL, json!({})).await;
    let enrollment = &enrollment["data"]["enrollTotp"];
    let secret = enrollment["secret"].as_str().unwrap().to_owned();
    assert_eq!(secret.len(), 32, "160 bits in base32");
    let uri = enrollment["otpauthUri"].as_str().unwrap();
    assert!(uri.starts_with("otpauth://totp/authgraph:"), "{uri}");
    assert!(uri.contains(&format!("secret={secret}")), "{uri}");
    assert!(
        enrollment["qrCodeSvg"]
            .as_str()
            .unwrap()
            .contains("<svg xmlns=\"http://www.w3.org/2000/svg\"")
    );
    // Nothing is on until a code from the app proves it was added.
    assert_eq!(
        mfa_state(&app, &token).await,
        MfaState {
            mfa_enabled: false,
            recovery_codes_remaining: None
        }
    );
    assert_no_errors(&app.login(&email, PASSWORD).await);
    let wrong = app
        .graphql_as(&token, CONFIRM, json!({ "input": { "code": "000000" } }))
        .await;
    assert_eq!(error_code(&wrong), "BAD_USER_INPUT");
    assert_eq!(only_error(&wrong).extensions.field.as_deref(), Some("code"));

    let confirmed = app
        .graphql_as(
            &token,
            CONFIRM,
            json!({ "input": { "code": code_at(&secret, app.clock.now()) } }),
        )
        .await;
    let codes = data::<Confirmed>(&confirmed, "confirmTotp").recovery_codes;
    assert_eq!(codes.len(), 10);
    for code in &codes {
        // 16 characters of a 32-letter alphabet: 80 bits.
        assert_eq!(code.replace('-', "").len(), 16, "{code}");
    }
    assert_eq!(
        mfa_state(&app, &token).await,
        MfaState {
            mfa_enabled: true,
            recovery_codes_remaining: Some(10)
        }
    );
    // A second factor cannot be swapped underneath: disable it first.
    assert_eq!(
        error_code(&app.graphql_as(&token, ENROLL, json!({})).await),
        "CONFLICT"
    );

    // At rest: the secret sealed, the recovery codes hashed.
    let db = app.db().await;
    let backend = db.get_database_backend();
    let stored = db
        .query_one_raw(Statement::from_string(
            backend,
            "SELECT secret FROM totp_factors",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get::<String>("", "secret")
        .unwrap();
    assert!(stored.starts_with("v1."), "{stored}");
    assert!(!stored.contains(&secret));
    let codes_at_rest = db
        .query_all_raw(Statement::from_string(
            backend,
            "SELECT code_hash FROM recovery_codes",
        ))
        .await
        .unwrap();
    assert_eq!(codes_at_rest.len(), 10);
    for row in codes_at_rest {
        let hash = row.try_get::<String>("", "code_hash").unwrap();
        assert!(
            codes
                .iter()
                .all(|code| !hash.contains(&code.replace('-', "")))
        );
    }
}

#[tokio::test]
async fn signing_in_needs_the_code_and_the_tokens_say_how_the_user_proved_it() {
    let app = spawn_app().await;
    let user = enrolled(&app).await;

    let ticket = sign_in_ticket(&app, &user.email).await;
    let signed_in = verify(&app, &ticket, &user.code(&app, 1)).await;
    assert_no_errors(&signed_in);
    let access = data_str(&signed_in, &["verifyMfa", "accessToken"]);
    let claims = token_claims(access);
    assert_eq!(claims["amr"], json!(["pwd", "otp"]));
    assert!(claims["auth_time"].is_i64());
    assert_no_errors(&app.me(access).await);

    // Without a factor, the password alone.
    let plain = app.register(&unique_email(), PASSWORD).await;
    assert_eq!(token_claims(&plain.access())["amr"], json!(["pwd"]));
}

#[tokio::test]
async fn a_code_is_accepted_once_even_on_another_instance() {
    let app = spawn_app().await;
    let other = app.another_instance().await;
    let user = enrolled(&app).await;
    let code = user.code(&app, 1);

    assert_no_errors(&verify(&app, &sign_in_ticket(&app, &user.email).await, &code).await);
    let replay = verify(&other, &sign_in_ticket(&other, &user.email).await, &code).await;
    assert_eq!(error_code(&replay), "BAD_USER_INPUT");
    // So is a code of an earlier step than one already used.
    let earlier = verify(
        &other,
        &sign_in_ticket(&other, &user.email).await,
        &user.code(&app, 0),
    )
    .await;
    assert_eq!(error_code(&earlier), "BAD_USER_INPUT");
}

#[tokio::test]
async fn a_ticket_completes_one_sign_in_of_its_own_account_within_minutes() {
    let app = spawn_app().await;
    let user = enrolled(&app).await;
    let other = enrolled(&app).await;

    // Used once.
    let used = sign_in_ticket(&app, &user.email).await;
    assert_no_errors(&verify(&app, &used, &user.code(&app, 1)).await);
    let again = verify(&app, &used, &user.code(&app, -1)).await;
    assert_eq!(error_code(&again), "UNAUTHENTICATED");

    // For its own account only: another account's valid code is a wrong code for it.
    let mine = sign_in_ticket(&app, &user.email).await;
    let foreign = verify(&app, &mine, &other.code(&app, 1)).await;
    assert_eq!(error_code(&foreign), "BAD_USER_INPUT");

    // A half-finished sign-in expires.
    let stale = sign_in_ticket(&app, &other.email).await;
    app.clock.advance(Duration::from_secs(6 * 60));
    let expired = verify(&app, &stale, &other.code(&app, 0)).await;
    assert_eq!(error_code(&expired), "UNAUTHENTICATED");

    // A change of the account (here its password, by a reset link) voids it.
    let pending = sign_in_ticket(&app, &user.email).await;
    app.graphql(
        "mutation($input: RequestPasswordResetInput!) { requestPasswordReset(input: $input) }",
        json!({ "input": { "email": user.email } }),
    )
    .await;
    let link = app.link_token(&user.email, "reset-password").await;
    let reset = app
        .graphql(
            "mutation($input: ResetPasswordInput!) { resetPassword(input: $input) { accessToken } }",
            json!({ "input": { "token": link, "newPassword": "a brand new password" } }),
        )
        .await;
    // The link proves the mailbox, not the second factor.
    assert_eq!(reason(&reset), "MFA_REQUIRED");
    let after_reset = reset["errors"][0]["extensions"]["mfaTicket"]
        .as_str()
        .unwrap()
        .to_owned();
    let voided = verify(&app, &pending, &user.code(&app, 0)).await;
    assert_eq!(error_code(&voided), "UNAUTHENTICATED");
    assert_no_errors(&verify(&app, &after_reset, &user.code(&app, 0)).await);
}

#[tokio::test]
async fn two_completions_of_one_ticket_at_once_sign_in_once() {
    let app = spawn_app().await;
    let user = enrolled(&app).await;
    let ticket = sign_in_ticket(&app, &user.email).await;
    let (totp, recovery) = (user.code(&app, 1), user.recovery_codes[0].clone());
    let (a, b) = app
        .race(async {
            tokio::join!(
                verify(&app, &ticket, &totp),
                verify(&app, &ticket, &recovery)
            )
        })
        .await;
    let signed_in = [&a, &b]
        .iter()
        .filter(|body| body.get("errors").is_none())
        .count();
    assert_eq!(signed_in, 1, "{a}\n{b}");
}

#[tokio::test]
async fn wrong_codes_kill_the_ticket_and_lock_codes_apart_from_passwords() {
    let app = spawn_app_with(|c| {
        code_limits(c, "1000/1m");
        c.rate_limits.login_lockout_after = 8;
    })
    .await;
    let user = enrolled(&app).await;

    // Five tries per ticket, then even the right code cannot use it.
    let ticket = sign_in_ticket(&app, &user.email).await;
    let mut wrong_codes = 0;
    for _ in 0..5 {
        let wrong = verify(&app, &ticket, "000000").await;
        assert_eq!(error_code(&wrong), "BAD_USER_INPUT");
        wrong_codes += 1;
    }
    let dead = verify(&app, &ticket, &user.code(&app, 1)).await;
    assert_eq!(error_code(&dead), "UNAUTHENTICATED");

    // New tickets do not give new guesses without bound: past the lockout threshold the
    // account's codes are locked, even the right one...
    let mut locked = None;
    for _ in 0..5 {
        let ticket = sign_in_ticket(&app, &user.email).await;
        let wrong = verify(&app, &ticket, "000000").await;
        if error_code(&wrong) == "RATE_LIMITED" {
            locked = Some(ticket);
            break;
        }
        assert_eq!(error_code(&wrong), "BAD_USER_INPUT");
        wrong_codes += 1;
    }
    let ticket = locked.expect("the code lockout bites");
    assert_eq!(
        error_code(&verify(&app, &ticket, &user.code(&app, 1)).await),
        "RATE_LIMITED"
    );
    // ...while the password is not locked: that lockout counts wrong passwords only.
    assert_eq!(
        reason(&app.login(&user.email, PASSWORD).await),
        "MFA_REQUIRED"
    );

    // Every code compared and found wrong is in the audit trail, once; codes refused
    // unread (a dead ticket, a locked account) are not failures of a guess.
    assert!(wrong_codes >= 8, "the lockout came after {wrong_codes}");
    app.flush_audit().await;
    let events = app
        .graphql_as(
            &user.token,
            "{ auditEvents(filter: { kind: MFA_FAILED }) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(
        events["data"]["auditEvents"]["totalCount"], wrong_codes,
        "{events}"
    );
}

#[tokio::test]
async fn a_recovery_code_signs_in_once_however_it_is_typed() {
    let app = spawn_app().await;
    let user = enrolled(&app).await;
    let code = &user.recovery_codes[3];
    let typed = format!(" {} ", code.to_lowercase().replace('-', " "));

    let signed_in = verify(&app, &sign_in_ticket(&app, &user.email).await, &typed).await;
    assert_no_errors(&signed_in);
    let token = data_str(&signed_in, &["verifyMfa", "accessToken"]);
    assert_eq!(
        mfa_state(&app, token).await.recovery_codes_remaining,
        Some(9)
    );
    let again = verify(&app, &sign_in_ticket(&app, &user.email).await, code).await;
    assert_eq!(error_code(&again), "BAD_USER_INPUT");

    app.flush_audit().await;
    let events = app
        .graphql_as(
            token,
            "{ auditEvents(filter: { kind: RECOVERY_CODE_USED }) { edges { node { detail } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        events["data"]["auditEvents"]["edges"][0]["node"]["detail"],
        "recovery codes left: 9"
    );

    // New codes replace the old ones.
    let fresh = app.graphql_as(token, REGENERATE, json!({})).await;
    assert_no_errors(&fresh);
    assert_eq!(
        fresh["data"]["regenerateRecoveryCodes"]
            .as_array()
            .unwrap()
            .len(),
        10
    );
    let old = verify(
        &app,
        &sign_in_ticket(&app, &user.email).await,
        &user.recovery_codes[4],
    )
    .await;
    assert_eq!(error_code(&old), "BAD_USER_INPUT");
}

#[tokio::test]
async fn sensitive_changes_need_a_recent_authentication_and_reauthenticate_gives_one() {
    let app = spawn_app().await;
    let email = unique_email();
    let token = app.register(&email, PASSWORD).await.access();
    app.clock.advance(Duration::from_secs(11 * 60));
    let stale = app.graphql_as(&token, ENROLL, json!({})).await;
    assert_eq!(error_code(&stale), "FORBIDDEN");
    assert_eq!(reason(&stale), "REAUTHENTICATION_REQUIRED");

    let wrong = app
        .graphql_as(
            &token,
            REAUTHENTICATE,
            json!({ "input": { "password": "not the password" } }),
        )
        .await;
    assert_eq!(error_code(&wrong), "BAD_USER_INPUT");
    let fresh = app
        .graphql_as(
            &token,
            REAUTHENTICATE,
            json!({ "input": { "password": PASSWORD } }),
        )
        .await;
    assert_no_errors(&fresh);
    assert_eq!(fresh["data"]["reauthenticate"]["refreshToken"], Value::Null);
    let renewed = data_str(&fresh, &["reauthenticate", "accessToken"]);
    let auth_time = token_claims(renewed)["auth_time"].as_i64().unwrap();
    assert!(auth_time >= app.clock.now().timestamp() - 5);
    // The session itself was marked: the old access token works for it too.
    assert_no_errors(&app.graphql_as(&token, ENROLL, json!({})).await);

    // Without a second factor the current password still proves a change on its own.
    let changed = app
        .graphql_as(
            &token,
            CHANGE_PASSWORD,
            json!({ "input": { "currentPassword": PASSWORD, "newPassword": PASSWORD } }),
        )
        .await;
    assert_no_errors(&changed);
}

#[tokio::test]
async fn a_stolen_session_cannot_add_replace_or_remove_a_factor_or_change_the_account() {
    let app = spawn_app().await;
    let user = enrolled(&app).await;
    // The thief holds a session that proved both factors, but not recently.
    let stolen = verify(
        &app,
        &sign_in_ticket(&app, &user.email).await,
        &user.code(&app, 1),
    )
    .await;
    let stolen = data_str(&stolen, &["verifyMfa", "accessToken"]).to_owned();
    app.clock.advance(Duration::from_secs(11 * 60));

    let refused = [
        app.graphql_as(
            &stolen,
            DISABLE,
            json!({ "input": { "code": user.code(&app, 0) } }),
        )
        .await,
        app.graphql_as(&stolen, REGENERATE, json!({})).await,
        // Even with the password (phished): the second factor must be proven again too.
        app.graphql_as(
            &stolen,
            CHANGE_PASSWORD,
            json!({ "input": { "currentPassword": PASSWORD, "newPassword": "the thief's own" } }),
        )
        .await,
        app.graphql_as(
            &stolen,
            "mutation($input: ChangeEmailInput!) { changeEmail(input: $input) { id } }",
            json!({ "input": { "newEmail": unique_email(), "password": PASSWORD } }),
        )
        .await,
        app.graphql_as(
            &stolen,
            "mutation($input: DeleteAccountInput!) { deleteAccount(input: $input) }",
            json!({ "input": { "password": PASSWORD } }),
        )
        .await,
    ];
    for body in &refused {
        assert_eq!(reason(body), "REAUTHENTICATION_REQUIRED", "{body}");
    }
    // With the password alone, reauthentication is refused for such an account.
    let no_code = app
        .graphql_as(
            &stolen,
            REAUTHENTICATE,
            json!({ "input": { "password": PASSWORD } }),
        )
        .await;
    assert_eq!(error_code(&no_code), "BAD_USER_INPUT");
    assert_eq!(
        only_error(&no_code).extensions.field.as_deref(),
        Some("code")
    );
    assert_eq!(
        mfa_state(&app, &stolen).await,
        MfaState {
            mfa_enabled: true,
            recovery_codes_remaining: Some(10)
        }
    );

    // The owner, proving both again, turns it off.
    let owner = app
        .graphql_as(
            &stolen,
            REAUTHENTICATE,
            json!({ "input": { "password": PASSWORD, "code": user.code(&app, 1) } }),
        )
        .await;
    assert_no_errors(&owner);
    let token = data_str(&owner, &["reauthenticate", "accessToken"]);
    assert_eq!(token_claims(token)["amr"], json!(["pwd", "otp"]));
    let disabled = app
        .graphql_as(
            token,
            DISABLE,
            json!({ "input": { "code": user.recovery_codes[0] } }),
        )
        .await;
    assert_no_errors(&disabled);
    assert_no_errors(&app.login(&user.email, PASSWORD).await);
}

#[tokio::test]
async fn turning_a_factor_on_ends_the_sessions_signed_in_with_the_password_alone() {
    let app = spawn_app().await;
    let email = unique_email();
    app.register(&email, PASSWORD).await;
    let elsewhere = app.sign_in(&email, PASSWORD).await.access();
    let here = app.sign_in(&email, PASSWORD).await.access();

    let secret = app.graphql_as(&here, ENROLL, json!({})).await["data"]["enrollTotp"]["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let confirmed = app
        .graphql_as(
            &here,
            CONFIRM,
            json!({ "input": { "code": code_at(&secret, app.clock.now()) } }),
        )
        .await;
    assert_no_errors(&confirmed);
    assert_eq!(error_code(&app.me(&elsewhere).await), "UNAUTHENTICATED");
    assert_no_errors(&app.me(&here).await);
    // The enrolling session proved both factors: it may change the account at once.
    assert_no_errors(&app.graphql_as(&here, REGENERATE, json!({})).await);
}

#[tokio::test]
async fn an_administrator_resets_a_lost_factor_ends_the_sessions_and_it_is_audited() {
    let app = spawn_app().await;
    let user = enrolled(&app).await;
    let admin = app.admin().await;
    let admin_token = &admin.access();
    const RESET: &str = "mutation($input: ResetUserMfaInput!) {
      resetUserMfa(input: $input) { id mfaEnabled }
    }";

    let listed = app
        .graphql_as(
            admin_token,
            "query($id: ID!) { user(id: $id) { mfaEnabled recoveryCodesRemaining } }",
            json!({ "id": user.id }),
        )
        .await;
    assert_eq!(listed["data"]["user"]["mfaEnabled"], true);
    assert_eq!(
        listed["data"]["user"]["recoveryCodesRemaining"],
        Value::Null,
        "another account's codes are its own business"
    );
    let by_user = app
        .graphql_as(
            &user.token,
            RESET,
            json!({ "input": { "userId": user.id } }),
        )
        .await;
    assert_eq!(error_code(&by_user), "FORBIDDEN");

    let reset = app
        .graphql_as(
            admin_token,
            RESET,
            json!({ "input": { "userId": user.id } }),
        )
        .await;
    assert_no_errors(&reset);
    assert_eq!(reset["data"]["resetUserMfa"]["mfaEnabled"], false);
    assert_eq!(error_code(&app.me(&user.token).await), "UNAUTHENTICATED");
    assert_no_errors(&app.login(&user.email, PASSWORD).await);

    app.flush_audit().await;
    let events = app
        .graphql_as(
            admin_token,
            "query($id: ID!) { auditEvents(filter: { userId: $id }) { edges { node { kind actor { id } } } } }",
            json!({ "id": user.id }),
        )
        .await;
    let kinds: Vec<&str> = events["data"]["auditEvents"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"MFA_RESET"), "{kinds:?}");
    assert!(kinds.contains(&"MFA_ENABLED"), "{kinds:?}");
    let reset_event = events["data"]["auditEvents"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["node"]["kind"] == "MFA_RESET")
        .unwrap();
    assert_eq!(reset_event["node"]["actor"]["id"], admin.user.id);
}

#[tokio::test]
async fn a_rotated_encryption_key_keeps_factors_working_and_each_moves_to_the_new_key_on_use() {
    let app = spawn_app().await;
    let user = enrolled(&app).await;
    let sealed = || async {
        let db = app.db().await;
        db.query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT secret FROM totp_factors",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get::<String>("", "secret")
        .unwrap()
    };
    let before = sealed().await;
    // A new key, with the old one kept to open what it sealed.
    const NEW_KEY: &str = "c2l4dHktZm91ci1yYW5kb20tYnl0ZXMtb2Yta2V5LTI=";
    let rotated = app
        .another_instance_with(|c| {
            c.mfa.mfa_previous_encryption_keys = vec![c.mfa.mfa_encryption_key.take().unwrap()];
            c.mfa.mfa_encryption_key = Some(NEW_KEY.into());
        })
        .await;
    let signed_in = verify(
        &rotated,
        &sign_in_ticket(&rotated, &user.email).await,
        &user.code(&app, 1),
    )
    .await;
    assert_no_errors(&signed_in);
    let after = sealed().await;
    assert_ne!(after, before);
    assert_ne!(
        after.split('.').nth(1),
        before.split('.').nth(1),
        "sealed with another key"
    );
    // Once used, the old key is no longer needed.
    let retired = app
        .another_instance_with(|c| c.mfa.mfa_encryption_key = Some(NEW_KEY.into()))
        .await;
    // (A later time step: each code is accepted once.)
    app.clock.advance(Duration::from_secs(60));
    let later = verify(
        &retired,
        &sign_in_ticket(&retired, &user.email).await,
        &user.code(&app, 0),
    )
    .await;
    assert_no_errors(&later);
}

#[tokio::test]
async fn codes_are_limited_per_address_each_try_counted_once() {
    let app = spawn_app_with(|c| {
        code_limits(c, "3/15m");
        c.rate_limits.login_lockout_after = 0;
    })
    .await;
    let user = enrolled(&app).await;
    let ticket = sign_in_ticket(&app, &user.email).await;
    // The enrolment's confirmation took one try of the address's three.
    for _ in 0..2 {
        assert_eq!(
            error_code(&verify(&app, &ticket, "000000").await),
            "BAD_USER_INPUT"
        );
    }
    let limited = verify(&app, &ticket, &user.code(&app, 1)).await;
    assert_eq!(error_code(&limited), "RATE_LIMITED");
    assert!(limited["errors"][0]["extensions"]["retryAfter"].is_number());
}

const RESET_MFA: &str = "mutation($input: ResetUserMfaInput!) {
  resetUserMfa(input: $input) { id mfaEnabled }
}";

/// The attack: a stolen administrator's session and a phished password. The reset that an
/// administrator gives others must not take the administrator's own factor away (they use
/// disableTotp, which needs a code), and a stale session resets no one else's either.
#[tokio::test]
async fn an_administrator_cannot_reset_their_own_factor_and_a_stale_one_resets_nobody() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let admin_id = admin.user.id.clone();
    let admin_email = admin.user.email.clone();
    let token = admin.access();
    let secret = data_str(
        &app.graphql_as(&token, ENROLL, json!({})).await,
        &["enrollTotp", "secret"],
    )
    .to_owned();
    let confirmed = app
        .graphql_as(
            &token,
            CONFIRM,
            json!({ "input": { "code": code_at(&secret, app.clock.now()) } }),
        )
        .await;
    assert_no_errors(&confirmed);
    let user = enrolled(&app).await;

    // Fresh, with both factors just proven: still refused, whatever the session.
    let own = app
        .graphql_as(
            &token,
            RESET_MFA,
            json!({ "input": { "userId": admin_id } }),
        )
        .await;
    assert_eq!(error_code(&own), "FORBIDDEN", "{own}");
    assert_eq!(reason(&own), "", "not a matter of reauthenticating: {own}");
    assert!(only_error(&own).message.contains("disableTotp"), "{own}");

    app.clock.advance(Duration::from_secs(11 * 60));
    let stale_own = app
        .graphql_as(
            &token,
            RESET_MFA,
            json!({ "input": { "userId": admin_id } }),
        )
        .await;
    assert_eq!(error_code(&stale_own), "FORBIDDEN", "{stale_own}");
    let stale_other = app
        .graphql_as(&token, RESET_MFA, json!({ "input": { "userId": user.id } }))
        .await;
    assert_eq!(
        reason(&stale_other),
        "REAUTHENTICATION_REQUIRED",
        "{stale_other}"
    );
    // The phished password alone does not make the session fresh.
    let password_only = app
        .graphql_as(
            &token,
            REAUTHENTICATE,
            json!({ "input": { "password": PASSWORD } }),
        )
        .await;
    assert_eq!(
        only_error(&password_only).extensions.field.as_deref(),
        Some("code")
    );
    assert!(mfa_state(&app, &token).await.mfa_enabled);
    assert!(mfa_state(&app, &user.token).await.mfa_enabled);
    // Signing in still needs the administrator's code.
    sign_in_ticket(&app, &admin_email).await;

    // The administrator, proving both factors again, resets the user, never themselves.
    let fresh = app
        .graphql_as(
            &token,
            REAUTHENTICATE,
            json!({ "input": { "password": PASSWORD, "code": code_at(&secret, app.clock.now()) } }),
        )
        .await;
    assert_no_errors(&fresh);
    let token = data_str(&fresh, &["reauthenticate", "accessToken"]).to_owned();
    let reset = app
        .graphql_as(&token, RESET_MFA, json!({ "input": { "userId": user.id } }))
        .await;
    assert_eq!(
        reset["data"]["resetUserMfa"]["mfaEnabled"], false,
        "{reset}"
    );
    let own = app
        .graphql_as(
            &token,
            RESET_MFA,
            json!({ "input": { "userId": admin_id } }),
        )
        .await;
    assert_eq!(error_code(&own), "FORBIDDEN", "{own}");
    assert!(mfa_state(&app, &token).await.mfa_enabled);
}

/// Completes a sign-in as a client at `address` (behind the trusted proxy).
async fn verify_from(app: &TestApp, address: &str, ticket: &str, code: &str) -> Value {
    app.client
        .post(app.url("/graphql"))
        .header("x-forwarded-for", address)
        .json(&json!({
            "query": VERIFY,
            "variables": { "input": { "ticket": ticket, "code": code } },
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The attack: guesses at one account's codes spread over many addresses, each within its
/// own allowance.
#[tokio::test]
async fn codes_are_limited_per_account_whatever_the_address() {
    let app = spawn_app_with(|c| {
        code_limits(c, "1000/1m");
        c.rate_limits.rate_limit_code_account = "3/15m".parse().unwrap();
        c.rate_limits.login_lockout_after = 0;
        c.http.trusted_proxies =
            vec![authgraph::interfaces::http::parse_network("127.0.0.1").unwrap()];
    })
    .await;
    let user = enrolled(&app).await;
    let ticket = sign_in_ticket(&app, &user.email).await;
    // The enrolment's confirmation took one try of the account's three.
    for address in ["198.51.100.1", "198.51.100.2"] {
        assert_eq!(
            error_code(&verify_from(&app, address, &ticket, "000000").await),
            "BAD_USER_INPUT"
        );
    }
    let limited = verify_from(&app, "198.51.100.3", &ticket, &user.code(&app, 1)).await;
    assert_eq!(error_code(&limited), "RATE_LIMITED");
    assert!(
        limited["errors"][0]["extensions"]["retryAfter"]
            .as_u64()
            .unwrap()
            > 0
    );

    // Another account's allowance is its own, from the same address.
    let other = enrolled(&app).await;
    let ticket = sign_in_ticket(&app, &other.email).await;
    assert_no_errors(&verify_from(&app, "198.51.100.3", &ticket, &other.code(&app, 1)).await);
}

/// A sign-in's ticket is replaced by the next sign-in's: tickets left behind by earlier
/// password sign-ins (a phished password tried again and again) are not each a way in.
#[tokio::test]
async fn a_newer_sign_in_replaces_the_ticket_of_an_earlier_one() {
    let app = spawn_app().await;
    let other = app.another_instance().await;
    let user = enrolled(&app).await;
    let earlier = sign_in_ticket(&app, &user.email).await;
    // The newer sign-in on another instance: the ticket lives in the database.
    let newer = sign_in_ticket(&other, &user.email).await;

    let replaced = verify(&app, &earlier, &user.code(&app, 1)).await;
    assert_eq!(error_code(&replaced), "UNAUTHENTICATED", "{replaced}");
    assert_no_errors(&verify(&app, &newer, &user.code(&app, 1)).await);
}
