use chrono::Utc;
use sea_orm::{ActiveValue::Set, EntityTrait};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{
    Connection, PASSWORD, TestApp, assert_no_errors, data, data_str, error_code, spawn_app,
    spawn_app_with, unique_email,
};

const EVENTS: &str = "query($first: Int, $after: String, $filter: AuditEventFilter) {
  auditEvents(first: $first, after: $after, filter: $filter) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node { id kind occurredAt actorId subjectId ip userAgent detail
                          actor { id email } subject { id email } } }
  }
}";

/// The fields of an audit event the tests read (`EVENTS` selects more).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Event {
    kind: String,
    actor_id: Option<String>,
    subject_id: Option<String>,
    ip: Option<String>,
    detail: Option<String>,
    actor: Option<Account>,
    subject: Option<Account>,
}

/// An account an event names: `actor { email }`, `subject { email }`.
#[derive(Debug, Deserialize)]
struct Account {
    email: String,
}

/// A page of `auditEvents` as `EVENTS` selects it; the request must succeed.
async fn audit_page(app: &TestApp, token: &str, variables: Value) -> Connection<Event> {
    data(
        &app.graphql_as(token, EVENTS, variables).await,
        "auditEvents",
    )
}

/// The events of a page of `EVENTS`, in order.
async fn events(app: &TestApp, token: &str, variables: Value) -> Vec<Event> {
    let page = audit_page(app, token, variables).await;
    page.edges.into_iter().map(|edge| edge.node).collect()
}

fn kinds(events: &[Event]) -> Vec<&str> {
    events.iter().map(|e| e.kind.as_str()).collect()
}

#[tokio::test]
async fn every_security_flow_leaves_an_event_without_secrets() {
    let app =
        spawn_app_with(|c| c.sessions.refresh_token_reuse_grace = std::time::Duration::ZERO).await;
    let admin = app.admin().await;
    let admin_token = admin.access();
    let email = unique_email();
    let mut secrets = vec![PASSWORD.to_owned(), "a wrong password".to_owned()];

    let user = app.register(&email, PASSWORD).await;
    let user_id = user.user.id.clone();
    app.login(&email, "a wrong password").await;
    app.login(&unique_email(), "a wrong password").await;
    let login = app.login(&email, PASSWORD).await;
    let token = data_str(&login, &["login", "accessToken"]).to_owned();
    let refresh = data_str(&login, &["login", "refreshToken"]).to_owned();
    let rotated = app.refresh(&refresh).await;
    app.refresh(&refresh).await; // reuse: the session ends
    secrets.extend([
        token.clone(),
        refresh.clone(),
        data_str(&rotated, &["refreshToken", "refreshToken"]).to_owned(),
    ]);
    let token = access_of(&app.login(&email, PASSWORD).await);
    let verification = app.link_token(&email, "verify-email").await;
    app.graphql(
        "mutation($i: VerifyEmailInput!) { verifyEmail(input: $i) { id } }",
        json!({ "i": { "token": verification } }),
    )
    .await;
    app.graphql_as(
        &token,
        "mutation($i: ChangePasswordInput!) { changePassword(input: $i) }",
        json!({ "i": { "currentPassword": PASSWORD, "newPassword": "second password" } }),
    )
    .await;
    app.graphql(
        "mutation($i: RequestPasswordResetInput!) { requestPasswordReset(input: $i) }",
        json!({ "i": { "email": email } }),
    )
    .await;
    let reset_token = app.link_token(&email, "reset-password").await;
    let reset = app.graphql("mutation($i: ResetPasswordInput!) { resetPassword(input: $i) { accessToken refreshToken } }",
        json!({ "i": { "token": reset_token, "newPassword": "third password" } })).await;
    let token = data_str(&reset, &["resetPassword", "accessToken"]).to_owned();
    secrets.extend([
        verification,
        reset_token,
        token.clone(),
        "second password".into(),
        "third password".into(),
    ]);
    app.graphql_as(
        &token,
        "mutation($i: UpdateProfileInput!) { updateProfile(input: $i) { id } }",
        json!({ "i": { "displayName": "Ada" } }),
    )
    .await;
    let new_email = unique_email();
    app.graphql_as(
        &token,
        "mutation($i: ChangeEmailInput!) { changeEmail(input: $i) { id } }",
        json!({ "i": { "newEmail": new_email, "password": "third password" } }),
    )
    .await;
    let confirm = app.link_token(&new_email, "confirm-email-change").await;
    app.graphql(
        "mutation($i: EmailChangeLinkInput!) { confirmEmailChange(input: $i) { id } }",
        json!({ "i": { "token": confirm } }),
    )
    .await;
    app.graphql_as(
        &admin_token,
        "mutation($i: SetUserRoleInput!) { setUserRole(input: $i) { id } }",
        json!({ "i": { "userId": user_id, "role": "ADMIN" } }),
    )
    .await;
    app.graphql_as(
        &admin_token,
        "mutation($i: SetUserRoleInput!) { setUserRole(input: $i) { id } }",
        json!({ "i": { "userId": user_id, "role": "USER" } }),
    )
    .await;
    app.graphql_as(
        &admin_token,
        "mutation($i: SuspendUserInput!) { suspendUser(input: $i) { id } }",
        json!({ "i": { "userId": user_id, "reason": "testing" } }),
    )
    .await;
    app.graphql_as(
        &admin_token,
        "mutation($i: UnsuspendUserInput!) { unsuspendUser(input: $i) { id } }",
        json!({ "i": { "userId": user_id } }),
    )
    .await;
    let token = access_of(&app.login(&new_email, "third password").await);
    app.graphql_as(&token, "mutation { logoutAll }", json!({}))
        .await;
    let last = app.login(&new_email, "third password").await;
    app.logout(data_str(&last, &["login", "refreshToken"]))
        .await;
    let token = access_of(&app.login(&new_email, "third password").await);
    app.graphql_as(
        &token,
        "mutation($i: DeleteAccountInput!) { deleteAccount(input: $i) }",
        json!({ "i": { "password": "third password" } }),
    )
    .await;
    app.flush_audit().await;

    let trail = events(
        &app,
        &admin_token,
        json!({ "first": 100, "filter": { "userId": user_id } }),
    )
    .await;
    let seen = kinds(&trail);
    for kind in [
        "REGISTERED",
        "LOGIN_FAILED",
        "LOGIN_SUCCEEDED",
        "REFRESH_TOKEN_REUSED",
        "EMAIL_VERIFIED",
        "PASSWORD_CHANGED",
        "PASSWORD_RESET_REQUESTED",
        "PASSWORD_RESET",
        "PROFILE_UPDATED",
        "EMAIL_CHANGE_REQUESTED",
        "EMAIL_CHANGED",
        "ROLE_CHANGED",
        "SUSPENDED",
        "UNSUSPENDED",
        "LOGGED_OUT",
        "ACCOUNT_DELETED",
        "SECURITY_NOTICE_SENT",
    ] {
        assert!(seen.contains(&kind), "no {kind} event in {seen:?}");
    }
    // Newest first, with the request's origin.
    assert_eq!(seen[0], "ACCOUNT_DELETED");
    assert!(trail.iter().all(|e| e.ip.as_deref() == Some("127.0.0.1")));
    let role_change = trail.iter().find(|e| e.kind == "ROLE_CHANGED").unwrap();
    assert_eq!(role_change.actor_id.as_ref(), Some(&admin.user.id));
    assert_eq!(
        role_change.actor.as_ref().map(|a| &a.email),
        Some(&admin.user.email)
    );
    assert!(
        role_change.subject.is_none(),
        "the subject's account is deleted"
    );
    assert_eq!(role_change.subject_id.as_ref(), Some(&user_id));
    let suspension = trail.iter().find(|e| e.kind == "SUSPENDED").unwrap();
    assert_eq!(suspension.detail.as_deref(), Some("testing"));

    let failed = events(
        &app,
        &admin_token,
        json!({ "first": 100, "filter": { "kind": "LOGIN_FAILED" } }),
    )
    .await;
    assert!(
        failed.iter().any(|e| e.subject_id.is_none()),
        "a failed sign-in of an unknown email"
    );

    let everything = app
        .graphql_as(&admin_token, EVENTS, json!({ "first": 100 }))
        .await
        .to_string();
    for secret in &secrets {
        assert!(
            !everything.contains(secret.as_str()),
            "the audit trail holds a secret: {secret}"
        );
    }
    assert!(!everything.contains("$argon2"));
    assert!(
        !everything.contains(&email),
        "events name accounts by id, not email"
    );
}

fn access_of(login: &Value) -> String {
    data_str(login, &["login", "accessToken"]).to_owned()
}

#[tokio::test]
async fn users_read_their_own_events_through_me() {
    let app = spawn_app().await;
    let email = unique_email();
    let user = app.register(&email, PASSWORD).await;
    let other = app.register(&unique_email(), PASSWORD).await;
    app.login(&email, "a wrong password").await;
    app.flush_audit().await;
    let token = &user.access();

    let body = app
        .graphql_as(token, "{ me { auditEvents(first: 10) { totalCount edges { node { kind subject { id } } } } } }", json!({}))
        .await;
    assert_no_errors(&body);
    let own = &body["data"]["me"]["auditEvents"];
    assert_eq!(own["totalCount"], 2);
    let kinds: Vec<&str> = own["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["LOGIN_FAILED", "REGISTERED"]);

    // The top-level list shows a regular user the same: their own events only.
    let body = app.graphql_as(token, EVENTS, json!({})).await;
    assert_eq!(body["data"]["auditEvents"]["totalCount"], 2);
    let _ = other;
}

#[tokio::test]
async fn a_page_of_events_loads_its_users_in_a_constant_number_of_queries() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let token = &admin.access();
    // 150 events between 30 users, written straight to the database.
    let mut users = Vec::new();
    for _ in 0..30 {
        users.push(
            app.register(&unique_email(), PASSWORD)
                .await
                .user
                .id
                .parse::<Uuid>()
                .unwrap(),
        );
    }
    app.flush_audit().await;
    let rows: Vec<_> = (0..150)
        .map(|i| entity::audit_event::ActiveModel {
            id: Set(Uuid::now_v7()),
            kind: Set("login_succeeded".into()),
            occurred_at: Set(Utc::now()),
            actor_id: Set(Some(users[i % 30])),
            subject_id: Set(Some(users[(i + 7) % 30])),
            ip: Set(None),
            user_agent: Set(None),
            detail: Set(None),
        })
        .collect();
    entity::audit_event::Entity::insert_many(rows)
        .exec_without_returning(&app.db().await)
        .await
        .unwrap();

    let query = "query($first: Int) { auditEvents(first: $first) {
        edges { node { actor { id email role } subject { id email } } } } }";
    let mut costs = Vec::new();
    for first in [10, 100] {
        let before = app.queries.get();
        let body = app
            .graphql_as(token, query, json!({ "first": first }))
            .await;
        assert_no_errors(&body);
        let loaded = body["data"]["auditEvents"]["edges"].as_array().unwrap();
        assert_eq!(loaded.len(), first as usize);
        assert!(loaded.iter().all(|e| {
            e["node"]["actor"]["email"].is_string() && e["node"]["subject"]["email"].is_string()
        }));
        costs.push(app.queries.get() - before);
    }
    // Session + account, the page, one batch of users (no count: `totalCount` is not
    // selected): the same for 10 or 100.
    assert_eq!(
        costs[0], costs[1],
        "queries for 10 and 100 events: {costs:?}"
    );
    assert!(costs[1] <= 4, "queries for 100 events: {}", costs[1]);
}

#[tokio::test]
async fn audit_pages_follow_on_and_bad_filters_are_handled() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let token = &admin.access();
    for _ in 0..5 {
        app.login(&unique_email(), "whatever-123").await;
    }
    app.flush_audit().await;
    let filter = json!({ "kind": "LOGIN_FAILED" });
    let first = audit_page(&app, token, json!({ "first": 3, "filter": filter })).await;
    assert!(first.page_info.has_next_page);
    let after = first.page_info.end_cursor;
    let rest = audit_page(
        &app,
        token,
        json!({ "first": 3, "after": after, "filter": filter }),
    )
    .await;
    assert_eq!(rest.edges.len(), 2);
    assert!(!rest.page_info.has_next_page);

    let nobody = audit_page(&app, token, json!({ "filter": { "userId": "not-a-uuid" } })).await;
    assert_eq!(nobody.total_count, 0);
    let bad = app
        .graphql_as(token, EVENTS, json!({ "filter": { "kind": "NOT_A_KIND" } }))
        .await;
    assert_eq!(error_code(&bad), "GRAPHQL_VALIDATION_FAILED");
}

#[tokio::test]
async fn each_users_latest_events_in_a_user_list_load_in_one_batch() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let token = &admin.access();
    let mut emails = Vec::new();
    for i in 0..24 {
        let email = unique_email();
        app.register(&email, PASSWORD).await;
        for _ in 0..(i % 4) {
            app.login(&email, "a wrong password").await;
        }
        emails.push(email);
    }
    app.flush_audit().await;

    let query =
        "query($first: Int) { users(first: $first, orderBy: {field: CREATED_AT, direction: ASC}) {
        edges { node { id auditEvents(first: 2) { totalCount pageInfo { hasNextPage }
            edges { node { kind subject { id } } } } } } } }";
    let mut costs = Vec::new();
    for first in [5, 25] {
        let before = app.queries.get();
        let body = app
            .graphql_as(token, query, json!({ "first": first }))
            .await;
        assert_no_errors(&body);
        costs.push(app.queries.get() - before);
        for edge in body["data"]["users"]["edges"].as_array().unwrap() {
            let user = &edge["node"];
            let events = &user["auditEvents"];
            // Compare with the same user's events read on their own.
            let alone = app
                .graphql_as(
                    token,
                    EVENTS,
                    json!({ "first": 2, "filter": { "userId": user["id"] } }),
                )
                .await;
            assert_eq!(
                events["totalCount"],
                alone["data"]["auditEvents"]["totalCount"]
            );
            let kinds_batched: Vec<&Value> = events["edges"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| &e["node"]["kind"])
                .collect();
            let kinds_alone: Vec<&Value> = alone["data"]["auditEvents"]["edges"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| &e["node"]["kind"])
                .collect();
            assert_eq!(kinds_batched, kinds_alone);
            assert_eq!(
                events["pageInfo"]["hasNextPage"],
                alone["data"]["auditEvents"]["pageInfo"]["hasNextPage"]
            );
        }
    }
    assert_eq!(costs[0], costs[1], "queries for 5 and 25 users: {costs:?}");
}

#[tokio::test]
async fn a_user_sees_that_an_administrator_acted_on_them_but_not_who_or_from_where() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let admin_token = admin.access();
    let email = unique_email();
    let user = app.register(&email, PASSWORD).await;
    let user_id = user.user.id.clone();
    app.graphql_as(
        &admin_token,
        "mutation($i: SetUserRoleInput!) { setUserRole(input: $i) { id } }",
        json!({ "i": { "userId": user_id, "role": "ADMIN" } }),
    )
    .await;
    app.graphql_as(
        &admin_token,
        "mutation($i: SetUserRoleInput!) { setUserRole(input: $i) { id } }",
        json!({ "i": { "userId": user_id, "role": "USER" } }),
    )
    .await;
    app.flush_audit().await;

    let token = access_of(&app.login(&email, PASSWORD).await);
    for query in [
        EVENTS,
        "query($first: Int) { me { auditEvents(first: $first, kind: ROLE_CHANGED) { edges { node { kind actorId ip userAgent actor { id } } } } } }",
    ] {
        let body = app
            .graphql_as(
                &token,
                query,
                json!({ "first": 10, "filter": { "kind": "ROLE_CHANGED" } }),
            )
            .await;
        assert_no_errors(&body);
        let connection = body["data"]
            .get("auditEvents")
            .unwrap_or_else(|| &body["data"]["me"]["auditEvents"]);
        let seen: Vec<&Value> = connection["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| &e["node"])
            .collect();
        assert_eq!(seen.len(), 2, "{body}");
        for event in seen {
            assert_eq!(event["kind"], "ROLE_CHANGED");
            assert!(event["actorId"].is_null(), "{event}");
            assert!(event["actor"].is_null(), "{event}");
            assert!(
                event["ip"].is_null() && event["userAgent"].is_null(),
                "{event}"
            );
        }
    }
    // The administrators see it all.
    let seen = events(
        &app,
        &admin_token,
        json!({ "first": 10, "filter": { "userId": user_id, "kind": "ROLE_CHANGED" } }),
    )
    .await;
    assert!(seen.iter().all(|e| {
        e.actor_id.as_ref() == Some(&admin.user.id) && e.ip.as_deref() == Some("127.0.0.1")
    }));
}

#[tokio::test]
async fn the_background_cleanup_deletes_old_events_and_forgets_older_client_details() {
    let app = spawn_app_with(|c| {
        c.audit.audit_retention = std::time::Duration::from_secs(365 * 86_400);
        c.audit.audit_client_retention = std::time::Duration::from_secs(30 * 86_400);
        c.sessions.session_cleanup_interval = std::time::Duration::from_secs(1);
    })
    .await;
    let db = app.db().await;
    let event = |days_ago: i64| entity::audit_event::ActiveModel {
        id: Set(Uuid::now_v7()),
        kind: Set("login_succeeded".into()),
        occurred_at: Set(Utc::now() - chrono::Duration::days(days_ago)),
        actor_id: Set(None),
        subject_id: Set(None),
        ip: Set(Some("198.51.100.7".into())),
        user_agent: Set(Some("Mozilla/5.0".into())),
        detail: Set(Some(format!("{days_ago} days ago"))),
    };
    entity::audit_event::Entity::insert_many([event(400), event(100), event(1)])
        .exec_without_returning(&db)
        .await
        .unwrap();

    let by_age = |left: &[entity::audit_event::Model], days: &str| {
        left.iter()
            .find(|e| e.detail.as_deref() == Some(&format!("{days} days ago")))
            .cloned()
    };
    // The cleanup runs every second; wait (at most a minute) until it has.
    let mut left = Vec::new();
    for _ in 0..600 {
        left = entity::audit_event::Entity::find().all(&db).await.unwrap();
        if by_age(&left, "400").is_none() && by_age(&left, "100").is_some_and(|e| e.ip.is_none()) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(by_age(&left, "400").is_none(), "past the retention");
    let middle = by_age(&left, "100").unwrap();
    assert!(
        middle.ip.is_none() && middle.user_agent.is_none(),
        "kept, anonymous"
    );
    let recent = by_age(&left, "1").unwrap();
    assert_eq!(recent.ip.as_deref(), Some("198.51.100.7"));
    assert_eq!(recent.user_agent.as_deref(), Some("Mozilla/5.0"));
}

fn a_sign_in_event() -> authgraph::domain::AuditEvent {
    authgraph::domain::AuditEvent {
        id: Uuid::now_v7(),
        kind: authgraph::domain::AuditKind::LoginSucceeded,
        occurred_at: Utc::now(),
        actor: None,
        subject: None,
        ip: Some("192.0.2.1".into()),
        user_agent: None,
        detail: None,
    }
}

async fn events_stored(database_url: &str) -> u64 {
    use sea_orm::PaginatorTrait;
    let db = sea_orm::Database::connect(database_url).await.unwrap();
    let stored = entity::audit_event::Entity::find()
        .count(&db)
        .await
        .unwrap();
    db.close().await.unwrap();
    stored
}

/// The events of the last requests before a shutdown (a deploy, a scale-in) are still in the
/// queue when the server stops taking requests; the process must not exit before they are
/// stored.
#[tokio::test]
async fn the_audit_queue_is_written_out_at_shutdown() {
    use authgraph::application::ports::AuditLog;

    let database = crate::helpers::TestDatabase::create().await;
    let config = crate::helpers::test_config(&database.url, |_| {});
    let app = authgraph::app::Application::build(&config).await.unwrap();
    let audit = app.core().audit.clone();
    // More than a few batches: written one after the other, they take a while.
    for _ in 0..3000 {
        audit.record(a_sign_in_event());
    }
    app.run_until(async {}).await.unwrap();
    // Nothing is waited for after the server returns, as `main` exits then.
    assert_eq!(events_stored(&database.url).await, 3000);
}

/// A flood of events that outruns the database fills the queue: what does not fit is dropped
/// (recording never waits, so no request does) and counted where the operator sees it.
#[tokio::test]
async fn audit_events_beyond_a_full_queue_are_dropped_and_counted() {
    use authgraph::application::ports::AuditLog;

    let app = spawn_app().await;
    app.flush_audit().await;
    let before = events_stored(app.config.database.database_url.expose_secret()).await;
    // Recorded back to back on this thread: the writer gets no turn until they are all in.
    for _ in 0..5000 {
        app.audit.record(a_sign_in_event());
    }
    app.flush_audit().await;
    let stored = events_stored(app.config.database.database_url.expose_secret()).await - before;
    assert_eq!(stored, 4096, "the queue holds 4096 events");
    let metrics = app.metrics_text().await;
    assert_eq!(
        crate::helpers::metric_value(&metrics, "authgraph_audit_events_dropped"),
        (5000 - 4096) as f64
    );
}
