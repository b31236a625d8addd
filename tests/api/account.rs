use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use authgraph::config::MailerKind;

use crate::helpers::{
    PASSWORD, TestApp, assert_no_errors, data_str, error_code, metric_value, only_error, spawn_app,
    spawn_app_with, unique_email,
};

const CHANGE_PASSWORD: &str =
    "mutation($input: ChangePasswordInput!) { changePassword(input: $input) }";
const REQUEST_RESET: &str =
    "mutation($input: RequestPasswordResetInput!) { requestPasswordReset(input: $input) }";
const RESET: &str = "mutation($input: ResetPasswordInput!) {
  resetPassword(input: $input) { accessToken refreshToken user { id email emailVerified } }
}";
const VERIFY: &str =
    "mutation($input: VerifyEmailInput!) { verifyEmail(input: $input) { id email emailVerified } }";
const RESEND: &str =
    "mutation($input: ResendVerificationEmailInput!) { resendVerificationEmail(input: $input) }";
const NEW_PASSWORD: &str = "a brand new passphrase";

#[tokio::test]
async fn change_password_needs_the_current_one_and_signs_out_other_sessions() {
    let app = spawn_app().await;
    let email = unique_email();
    let laptop = app.register(&email, PASSWORD).await.access();
    let phone = app.sign_in(&email, PASSWORD).await.access();

    let wrong = app
        .graphql_as(
            &laptop,
            CHANGE_PASSWORD,
            json!({ "input": { "currentPassword": "not it", "newPassword": NEW_PASSWORD } }),
        )
        .await;
    assert_eq!(error_code(&wrong), "BAD_USER_INPUT");
    assert_eq!(
        only_error(&wrong).extensions.field.as_deref(),
        Some("currentPassword")
    );
    let short = app
        .graphql_as(
            &laptop,
            CHANGE_PASSWORD,
            json!({ "input": { "currentPassword": PASSWORD, "newPassword": "short" } }),
        )
        .await;
    assert_eq!(
        only_error(&short).extensions.field.as_deref(),
        Some("newPassword")
    );
    let anonymous = app
        .graphql(
            CHANGE_PASSWORD,
            json!({ "input": { "currentPassword": PASSWORD, "newPassword": NEW_PASSWORD } }),
        )
        .await;
    assert_eq!(error_code(&anonymous), "UNAUTHENTICATED");

    let body = app
        .graphql_as(
            &laptop,
            CHANGE_PASSWORD,
            json!({ "input": { "currentPassword": PASSWORD, "newPassword": NEW_PASSWORD } }),
        )
        .await;
    assert_eq!(body["data"]["changePassword"], true);
    assert_no_errors(&app.me(&laptop).await);
    assert_eq!(error_code(&app.me(&phone).await), "UNAUTHENTICATED");
    assert_eq!(
        error_code(&app.login(&email, PASSWORD).await),
        "UNAUTHENTICATED"
    );
    assert_no_errors(&app.login(&email, NEW_PASSWORD).await);
}

#[tokio::test]
async fn a_reset_link_sets_a_new_password_signs_out_everywhere_and_signs_in() {
    let app = spawn_app().await;
    let email = unique_email();
    let before = app.register(&email, PASSWORD).await.access();

    let body = app
        .graphql(
            REQUEST_RESET,
            json!({ "input": { "email": email.to_uppercase() } }),
        )
        .await;
    assert_eq!(body["data"]["requestPasswordReset"], true);
    // Emails go out from a pool of workers, so the verification email of the sign-up may
    // arrive after this one: find it by its subject, not by its place.
    let emails = app.emails_to(&email).await;
    let reset_email = emails
        .iter()
        .find(|sent| sent.subject == "Reset your password")
        .expect("a reset email");
    assert!(reset_email.text.contains("within 30 minutes"));
    let token = app.link_token(&email, "reset-password").await;

    let body = app
        .graphql(
            RESET,
            json!({ "input": { "token": token, "newPassword": NEW_PASSWORD } }),
        )
        .await;
    assert_no_errors(&body);
    assert_eq!(
        body["data"]["resetPassword"]["user"]["email"],
        email.as_str()
    );
    assert_eq!(body["data"]["resetPassword"]["user"]["emailVerified"], true);
    let after = data_str(&body, &["resetPassword", "accessToken"]);
    assert_no_errors(&app.me(after).await);
    assert_eq!(error_code(&app.me(&before).await), "UNAUTHENTICATED");
    assert_eq!(
        error_code(&app.login(&email, PASSWORD).await),
        "UNAUTHENTICATED"
    );
    assert_no_errors(&app.login(&email, NEW_PASSWORD).await);
}

async fn request_reset(app: &TestApp, email: &str) -> String {
    app.graphql(REQUEST_RESET, json!({ "input": { "email": email } }))
        .await;
    app.link_token(email, "reset-password").await
}

async fn reset(app: &TestApp, token: &str) -> Value {
    app.graphql(
        RESET,
        json!({ "input": { "token": token, "newPassword": NEW_PASSWORD } }),
    )
    .await
}

fn assert_refused(body: Value) {
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    assert_eq!(only_error(&body).extensions.field.as_deref(), Some("token"));
    assert_eq!(
        only_error(&body).message,
        "This password-reset link is invalid, was already used, or has expired; ask for a new one."
    );
}

#[tokio::test]
async fn a_reset_link_fails_once_used_superseded_or_expired() {
    let app = spawn_app().await;
    let email = unique_email();
    app.register(&email, PASSWORD).await;

    let used = request_reset(&app, &email).await;
    assert_no_errors(&reset(&app, &used).await);
    assert_refused(reset(&app, &used).await);

    let superseded = request_reset(&app, &email).await;
    let latest = request_reset(&app, &email).await;
    assert_refused(reset(&app, &superseded).await);

    use sea_orm::EntityTrait;
    use sea_orm::sea_query::Expr;
    let past = chrono::Utc::now() - chrono::Duration::minutes(1);
    entity::account_token::Entity::update_many()
        .col_expr(entity::account_token::Column::ExpiresAt, Expr::value(past))
        .exec(&app.db().await)
        .await
        .unwrap();
    assert_refused(reset(&app, &latest).await);
    assert_refused(reset(&app, "made-up").await);
}

#[tokio::test]
async fn a_reset_request_for_an_unknown_email_is_indistinguishable_and_sends_nothing() {
    let app = spawn_app().await;
    let known = unique_email();
    app.register(&known, PASSWORD).await;
    let unknown = unique_email();

    let known_response = app
        .client
        .post(app.url("/graphql"))
        .json(&json!({ "query": REQUEST_RESET, "variables": { "input": { "email": known } } }))
        .send()
        .await
        .unwrap();
    let unknown_response = app
        .client
        .post(app.url("/graphql"))
        .json(&json!({ "query": REQUEST_RESET, "variables": { "input": { "email": unknown } } }))
        .send()
        .await
        .unwrap();
    assert_eq!(known_response.status(), unknown_response.status());
    assert_eq!(
        known_response.text().await.unwrap(),
        unknown_response.text().await.unwrap()
    );
    assert!(app.emails_to(&unknown).await.is_empty());
}

#[tokio::test]
async fn the_emailed_link_verifies_the_address_once() {
    let app = spawn_app().await;
    let email = unique_email();
    let token = app.register(&email, PASSWORD).await.access();
    assert!(!app.current_user(&token).await.email_verified);
    assert_eq!(
        app.emails_to(&email).await[0].subject,
        "Confirm your email address"
    );
    let link = app.link_token(&email, "verify-email").await;

    let body = app
        .graphql(VERIFY, json!({ "input": { "token": link } }))
        .await;
    assert_no_errors(&body);
    assert_eq!(body["data"]["verifyEmail"]["emailVerified"], true);
    assert!(app.current_user(&token).await.email_verified);

    let again = app
        .graphql(VERIFY, json!({ "input": { "token": link } }))
        .await;
    assert_eq!(error_code(&again), "BAD_USER_INPUT");
    assert_eq!(
        only_error(&again).extensions.field.as_deref(),
        Some("token")
    );
}

#[tokio::test]
async fn resending_the_verification_email_replaces_the_link() {
    let app = spawn_app().await;
    let email = unique_email();
    app.register(&email, PASSWORD).await;
    let first = app.link_token(&email, "verify-email").await;

    let body = app
        .graphql(RESEND, json!({ "input": { "email": email } }))
        .await;
    assert_eq!(body["data"]["resendVerificationEmail"], true);
    let second = app.link_token(&email, "verify-email").await;
    assert_ne!(first, second);
    assert_eq!(
        error_code(
            &app.graphql(VERIFY, json!({ "input": { "token": first } }))
                .await
        ),
        "BAD_USER_INPUT"
    );
    assert_no_errors(
        &app.graphql(VERIFY, json!({ "input": { "token": second } }))
            .await,
    );

    let unknown = app
        .graphql(RESEND, json!({ "input": { "email": unique_email() } }))
        .await;
    assert_eq!(unknown["data"]["resendVerificationEmail"], true);
}

#[tokio::test]
async fn when_required_an_unverified_account_cannot_sign_in_until_it_verifies() {
    let app = spawn_app_with(|c| c.sessions.require_verified_email = true).await;
    let email = unique_email();

    let register = app
        .graphql(
            crate::helpers::REGISTER,
            json!({ "input": { "email": email, "password": PASSWORD } }),
        )
        .await;
    assert_eq!(error_code(&register), "FORBIDDEN");
    assert_eq!(
        only_error(&register).extensions.reason.as_deref(),
        Some("EMAIL_NOT_VERIFIED")
    );
    let login = app.login(&email, PASSWORD).await;
    assert_eq!(error_code(&login), "FORBIDDEN");

    let link = app.link_token(&email, "verify-email").await;
    assert_no_errors(
        &app.graphql(VERIFY, json!({ "input": { "token": link } }))
            .await,
    );
    let login = app.sign_in(&email, PASSWORD).await;
    assert!(app.current_user(&login.access()).await.email_verified);
}

/// A mail server that accepts one message and hands back what it received.
async fn one_message_smtp_server() -> (u16, tokio::task::JoinHandle<String>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let (read, mut write) = stream.into_split();
        let mut lines = BufReader::new(read).lines();
        write.write_all(b"220 test ESMTP\r\n").await.unwrap();
        let mut data = String::new();
        let mut in_data = false;
        // A pooled client keeps the connection for the next message: stop after one.
        while let Some(line) = lines.next_line().await.unwrap() {
            if in_data {
                if line == "." {
                    write.write_all(b"250 queued\r\n").await.unwrap();
                    break;
                } else {
                    data.push_str(&line);
                    data.push('\n');
                }
                continue;
            }
            let command = line.to_ascii_uppercase();
            let reply: &[u8] = if command.starts_with("EHLO") || command.starts_with("HELO") {
                b"250 test\r\n"
            } else if command.starts_with("DATA") {
                in_data = true;
                b"354 go ahead\r\n"
            } else {
                b"250 ok\r\n"
            };
            write.write_all(reply).await.unwrap();
        }
        data
    });
    (port, server)
}

#[tokio::test]
async fn the_smtp_mailer_delivers_the_verification_link() {
    let (port, server) = one_message_smtp_server().await;
    let app = spawn_app_with(|c| {
        c.mail.mailer = Some(MailerKind::Smtp);
        c.mail.smtp_url = Some(format!("smtp://127.0.0.1:{port}").into());
        c.mail.mail_from = "Accounts <accounts@example.com>".into();
    })
    .await;
    let email = unique_email();
    app.register(&email, PASSWORD).await;

    let message = tokio::time::timeout(std::time::Duration::from_secs(10), server)
        .await
        .expect("the email arrives")
        .unwrap();
    // Quoted-printable may wrap long lines; undo soft breaks before looking for the link.
    let message = message.replace("=\n", "").replace("=3D", "=");
    assert!(
        message.contains("From: Accounts <accounts@example.com>"),
        "{message}"
    );
    assert!(message.contains(&format!("To: {email}")), "{message}");
    assert!(
        message.contains("Subject: Confirm your email address"),
        "{message}"
    );
    assert!(
        message.contains("https://app.example.com/verify-email?token="),
        "{message}"
    );
}

const CHANGE_EMAIL: &str = "mutation($input: ChangeEmailInput!) {
  changeEmail(input: $input) { email emailVerified pendingEmail }
}";
const CONFIRM_CHANGE: &str = "mutation($input: EmailChangeLinkInput!) {
  confirmEmailChange(input: $input) { email emailVerified pendingEmail }
}";
const CANCEL_CHANGE: &str =
    "mutation($input: EmailChangeLinkInput!) { cancelEmailChange(input: $input) }";

/// Asks to move the account of `token` to `new`; returns the answer.
async fn change_email(app: &TestApp, token: &str, new: &str) -> Value {
    app.graphql_as(
        token,
        CHANGE_EMAIL,
        json!({ "input": { "newEmail": new, "password": PASSWORD } }),
    )
    .await
}

/// Asks to move the account and confirms from the new address.
async fn move_account(app: &TestApp, token: &str, new: &str) {
    assert_no_errors(&change_email(app, token, new).await);
    let link = app.link_token(new, "confirm-email-change").await;
    assert_no_errors(
        &app.graphql(CONFIRM_CHANGE, json!({ "input": { "token": link } }))
            .await,
    );
}

#[tokio::test]
async fn a_reset_link_cannot_verify_an_address_its_holder_never_controlled() {
    let app = spawn_app().await;
    let attacker = unique_email();
    let token = app.register(&attacker, PASSWORD).await.access();
    let link = request_reset(&app, &attacker).await;
    let victim = unique_email();
    let asked = change_email(&app, &token, &victim).await;
    assert_no_errors(&asked);
    // The account does not move to an address that did not confirm: the reset link proves
    // the attacker's own address, nothing more.
    assert_no_errors(&reset(&app, &link).await);
    let login = app.login(&attacker, NEW_PASSWORD).await;
    let me = app
        .graphql_as(
            data_str(&login, &["login", "accessToken"]),
            "{ me { email emailVerified pendingEmail } }",
            json!({}),
        )
        .await;
    assert_eq!(me["data"]["me"]["email"], attacker.as_str());
    assert_eq!(me["data"]["me"]["pendingEmail"], victim.as_str());
    assert_eq!(
        error_code(&app.login(&victim, NEW_PASSWORD).await),
        "UNAUTHENTICATED"
    );

    // And once an account does move, a link sent to its old address is void.
    let owner = unique_email();
    let token = app.register(&owner, PASSWORD).await.access();
    let link = request_reset(&app, &owner).await;
    move_account(&app, &token, &unique_email()).await;
    assert_refused(reset(&app, &link).await);
}

/// A reset link and a verification link, both outstanding and usable.
async fn outstanding_links(app: &TestApp, email: &str) -> (String, String) {
    let reset = request_reset(app, email).await;
    app.graphql(RESEND, json!({ "input": { "email": email } }))
        .await;
    let links = (reset, app.link_token(email, "verify-email").await);
    assert_eq!(
        usable(app, &links).await,
        (true, true),
        "both links work before the change"
    );
    links
}

/// Whether each link would be accepted now, asked of the store without using it: `peek`
/// answers as the use would (the repository contract proves it on every backend).
async fn usable(app: &TestApp, (reset_link, verify_link): &(String, String)) -> (bool, bool) {
    use authgraph::application::ports::Clock;
    use authgraph::domain::{AccountTokenRepository, OpaqueToken, TokenPurpose};
    use authgraph::infrastructure::persistence::{
        RetryCounter, SeaOrmAccountTokenRepository, Transactions,
    };
    let store = SeaOrmAccountTokenRepository::new(Transactions::new(
        app.db().await,
        RetryCounter::default(),
    ));
    let now = app.clock.now();
    let peek = |link: &str, purpose| {
        let hash = OpaqueToken::from_client(link.to_owned()).hash();
        let store = &store;
        async move { store.peek(&hash, purpose, now).await.unwrap().is_some() }
    };
    (
        peek(reset_link, TokenPurpose::PasswordReset).await,
        peek(verify_link, TokenPurpose::EmailVerification).await,
    )
}

async fn assert_both_void(app: &TestApp, links: (String, String), change: &str) {
    assert_eq!(usable(app, &links).await, (false, false), "after {change}");
    let (reset_link, verify_link) = links;
    let body = reset(app, &reset_link).await;
    assert_eq!(
        error_code(&body),
        "BAD_USER_INPUT",
        "after {change}: {body}"
    );
    let body = app
        .graphql(VERIFY, json!({ "input": { "token": verify_link } }))
        .await;
    assert_eq!(
        error_code(&body),
        "BAD_USER_INPUT",
        "after {change}: {body}"
    );
}

#[tokio::test]
async fn every_change_of_password_email_or_suspension_voids_outstanding_links() {
    let app = spawn_app().await;

    // A password change.
    let email = unique_email();
    let token = app.register(&email, PASSWORD).await.access();
    let links = outstanding_links(&app, &email).await;
    let changed = app
        .graphql_as(
            &token,
            CHANGE_PASSWORD,
            json!({ "input": { "currentPassword": PASSWORD, "newPassword": NEW_PASSWORD } }),
        )
        .await;
    assert_no_errors(&changed);
    assert_both_void(&app, links, "a password change").await;

    // An email change (the old address's links).
    let email = unique_email();
    let token = app.register(&email, PASSWORD).await.access();
    let links = outstanding_links(&app, &email).await;
    move_account(&app, &token, &unique_email()).await;
    assert_both_void(&app, links, "an email change").await;

    // A suspension, lifted again: the links issued before it stay void.
    let admin = app.admin().await.access();
    let email = unique_email();
    let user = app.register(&email, PASSWORD).await;
    let links = outstanding_links(&app, &email).await;
    for (mutation, input) in [
        (
            "mutation($i: SuspendUserInput!) { suspendUser(input: $i) { id } }",
            json!({ "userId": user.user.id, "reason": "investigating" }),
        ),
        (
            "mutation($i: UnsuspendUserInput!) { unsuspendUser(input: $i) { id } }",
            json!({ "userId": user.user.id }),
        ),
    ] {
        assert_no_errors(
            &app.graphql_as(&admin, mutation, json!({ "i": input }))
                .await,
        );
    }
    assert_both_void(&app, links, "a suspension").await;

    // A reset with one link voids the verification link.
    let email = unique_email();
    app.register(&email, PASSWORD).await;
    let (reset_link, verify_link) = outstanding_links(&app, &email).await;
    assert_no_errors(&reset(&app, &reset_link).await);
    let body = app
        .graphql(VERIFY, json!({ "input": { "token": verify_link } }))
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "after a reset: {body}");

    // Deleting the account voids them too.
    let email = unique_email();
    let token = app.register(&email, PASSWORD).await.access();
    let links = outstanding_links(&app, &email).await;
    let deleted = app
        .graphql_as(
            &token,
            "mutation($i: DeleteAccountInput!) { deleteAccount(input: $i) }",
            json!({ "i": { "password": PASSWORD } }),
        )
        .await;
    assert_no_errors(&deleted);
    assert_both_void(&app, links, "deletion").await;
}

#[tokio::test]
async fn an_email_change_waits_for_the_new_address_and_each_link_works_once() {
    let app = spawn_app().await;
    let old = unique_email();
    let token = app.register(&old, PASSWORD).await.access();
    let verify_old = app.link_token(&old, "verify-email").await;
    let new = unique_email();
    let asked = change_email(&app, &token, &new).await;
    assert_eq!(asked["data"]["changeEmail"]["email"], old.as_str());
    assert_eq!(asked["data"]["changeEmail"]["pendingEmail"], new.as_str());
    assert_no_errors(&app.login(&old, PASSWORD).await);

    let link = app.link_token(&new, "confirm-email-change").await;
    let confirmed = app
        .graphql(CONFIRM_CHANGE, json!({ "input": { "token": link } }))
        .await;
    assert_no_errors(&confirmed);
    let user = &confirmed["data"]["confirmEmailChange"];
    assert_eq!(user["email"], new.as_str());
    assert_eq!(
        user["emailVerified"], true,
        "the link proved the new address"
    );
    assert!(user["pendingEmail"].is_null());
    let again = app
        .graphql(CONFIRM_CHANGE, json!({ "input": { "token": link } }))
        .await;
    assert_eq!(error_code(&again), "BAD_USER_INPUT");
    // The old address's verification link proves nothing any more.
    let verify = app
        .graphql(VERIFY, json!({ "input": { "token": verify_old } }))
        .await;
    assert_eq!(error_code(&verify), "BAD_USER_INPUT");
    assert_no_errors(&app.login(&new, PASSWORD).await);
}

#[tokio::test]
async fn the_old_address_cancels_a_pending_change_ends_every_session_and_asks_for_a_new_password() {
    let app = spawn_app().await;
    let old = unique_email();
    let token = app.register(&old, PASSWORD).await.access();
    let new = unique_email();
    assert_no_errors(&change_email(&app, &token, &new).await);
    let cancel = app.link_token(&old, "cancel-email-change").await;
    let confirm = app.link_token(&new, "confirm-email-change").await;

    assert_no_errors(
        &app.graphql(CANCEL_CHANGE, json!({ "input": { "token": cancel } }))
            .await,
    );
    assert_eq!(
        error_code(&app.me(&token).await),
        "UNAUTHENTICATED",
        "signed out"
    );
    let late = app
        .graphql(CONFIRM_CHANGE, json!({ "input": { "token": confirm } }))
        .await;
    assert_eq!(
        error_code(&late),
        "BAD_USER_INPUT",
        "the confirmation died with the change"
    );
    let again = app
        .graphql(CANCEL_CHANGE, json!({ "input": { "token": cancel } }))
        .await;
    assert_eq!(error_code(&again), "BAD_USER_INPUT");
    // Whoever asked knew the password: it no longer works, and a reset link came.
    assert_eq!(
        error_code(&app.login(&old, PASSWORD).await),
        "UNAUTHENTICATED"
    );
    let link = app.link_token(&old, "reset-password").await;
    assert_no_errors(&reset(&app, &link).await);
    let login = app.login(&old, NEW_PASSWORD).await;
    let me = app
        .graphql_as(
            data_str(&login, &["login", "accessToken"]),
            "{ me { email pendingEmail } }",
            json!({}),
        )
        .await;
    assert_eq!(me["data"]["me"]["email"], old.as_str());
    assert!(me["data"]["me"]["pendingEmail"].is_null());
}

#[tokio::test]
async fn the_old_address_undoes_a_completed_change_even_after_the_hijacker_changed_the_password() {
    let app = spawn_app().await;
    let old = unique_email();
    let token = app.register(&old, PASSWORD).await.access();
    // A hijacker with the password moves the account to their address...
    let hijacker = unique_email();
    move_account(&app, &token, &hijacker).await;
    let cancel = app.link_token(&old, "cancel-email-change").await;
    // ...changes the password, and asks for yet another change to bury the first.
    let login = app.login(&hijacker, PASSWORD).await;
    let theirs = data_str(&login, &["login", "accessToken"]).to_owned();
    assert_no_errors(
        &app.graphql_as(
            &theirs,
            CHANGE_PASSWORD,
            json!({ "input": { "currentPassword": PASSWORD, "newPassword": NEW_PASSWORD } }),
        )
        .await,
    );
    assert_no_errors(
        &app.graphql_as(
            &theirs,
            CHANGE_EMAIL,
            json!({ "input": { "newEmail": unique_email(), "password": NEW_PASSWORD } }),
        )
        .await,
    );

    assert_no_errors(
        &app.graphql(CANCEL_CHANGE, json!({ "input": { "token": cancel } }))
            .await,
    );
    assert_eq!(
        error_code(&app.me(&theirs).await),
        "UNAUTHENTICATED",
        "the hijacker is out"
    );
    // The account is back at the old address, which can take it back by a reset.
    let link = request_reset(&app, &old).await;
    assert_no_errors(&reset(&app, &link).await);
    assert_no_errors(&app.login(&old, NEW_PASSWORD).await);
}

#[tokio::test]
async fn asking_for_a_taken_address_looks_the_same_and_changes_nothing() {
    let app = spawn_app().await;
    let owner = unique_email();
    app.register(&owner, PASSWORD).await;
    let prober = unique_email();
    let token = app.register(&prober, PASSWORD).await.access();
    let free = change_email(&app, &token, &unique_email()).await;
    let taken = change_email(&app, &token, &owner).await;
    assert_no_errors(&taken);
    assert_eq!(
        taken["data"]["changeEmail"]["email"],
        free["data"]["changeEmail"]["email"]
    );
    assert_eq!(taken["data"]["changeEmail"]["pendingEmail"], owner.as_str());
    // The owner hears of it, with no link to use.
    let told = app.emails_to(&owner).await;
    let notice = told
        .iter()
        .find(|sent| sent.subject == "Someone tried to use your address")
        .expect("a notice to the owner");
    assert!(!notice.text.contains("token="));
    assert_no_errors(&app.login(&owner, PASSWORD).await);
}

#[tokio::test]
async fn a_mail_server_that_hangs_fills_a_bounded_queue_and_never_holds_up_a_request() {
    // A server that accepts connections and never says a word.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            open.push(stream);
        }
    });
    let app = spawn_app_with(|c| {
        c.mail.mailer = Some(MailerKind::Smtp);
        c.mail.smtp_url = Some(format!("smtp://127.0.0.1:{port}").into());
        c.mail.mail_senders = 1;
        c.mail.mail_queue_size = 2;
    })
    .await;
    // Sign-ups email a verification link each: the first is stuck with the server, two wait,
    // and the rest are dropped, counted, while every request is answered at once.
    for _ in 0..8 {
        // The mail client gives up on a silent server after a minute: a request that
        // waited for it would not be answered within 30 s.
        tokio::time::timeout(
            std::time::Duration::from_secs(30),
            app.register(&unique_email(), PASSWORD),
        )
        .await
        .expect("answered without waiting for the mail server");
    }
    let dropped = metric_value(&app.metrics_text().await, "authgraph_mail_dropped");
    assert!(dropped >= 5.0, "{dropped}");
    held.abort();
}

/// The attack: someone who knew the old password asked to move the account to their address;
/// the owner changes the password, and the confirmation link of that earlier request must not
/// move the account afterwards.
#[tokio::test]
async fn a_password_change_voids_a_pending_email_changes_confirmation_link() {
    let app = spawn_app().await;
    let owner = unique_email();
    let token = app.register(&owner, PASSWORD).await.access();
    let intruder = unique_email();
    assert_no_errors(&change_email(&app, &token, &intruder).await);
    let link = app.link_token(&intruder, "confirm-email-change").await;

    assert_no_errors(
        &app.graphql_as(
            &token,
            CHANGE_PASSWORD,
            json!({ "input": { "currentPassword": PASSWORD, "newPassword": NEW_PASSWORD } }),
        )
        .await,
    );
    let late = app
        .graphql(CONFIRM_CHANGE, json!({ "input": { "token": link } }))
        .await;
    assert_eq!(error_code(&late), "BAD_USER_INPUT", "{late}");
    let login = app.login(&owner, NEW_PASSWORD).await;
    let me = app
        .graphql_as(
            data_str(&login, &["login", "accessToken"]),
            "{ me { email } }",
            json!({}),
        )
        .await;
    assert_eq!(me["data"]["me"]["email"], owner.as_str());
    assert_eq!(
        error_code(&app.login(&intruder, NEW_PASSWORD).await),
        "UNAUTHENTICATED"
    );
}
