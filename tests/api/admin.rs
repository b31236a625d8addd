use std::collections::HashSet;

use chrono::{Duration, Utc};
use sea_orm::{ActiveValue::Set, EntityTrait};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{
    AuthPayload, Connection, PASSWORD, Role, TestApp, assert_no_errors, data, error_code,
    only_error, spawn_app, unique_email,
};

const USERS: &str = "query Users($first: Int, $after: String, $last: Int, $before: String,
    $filter: UserFilterInput, $orderBy: UserOrderInput) {
  users(first: $first, after: $after, last: $last, before: $before, filter: $filter, orderBy: $orderBy) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node { id email createdAt role emailVerified suspended } }
  }
}";
const SET_ROLE: &str =
    "mutation($input: SetUserRoleInput!) { setUserRole(input: $input) { id role } }";
const SUSPEND: &str = "mutation($input: SuspendUserInput!) {
  suspendUser(input: $input) { id suspended suspendedAt suspensionReason }
}";
const UNSUSPEND: &str =
    "mutation($input: UnsuspendUserInput!) { unsuspendUser(input: $input) { id suspended } }";
const DELETE: &str = "mutation($input: DeleteAccountInput!) { deleteAccount(input: $input) }";

fn id(payload: &AuthPayload) -> String {
    payload.user.id.clone()
}

#[tokio::test]
async fn a_regular_user_is_refused_every_administrative_operation() {
    let app = spawn_app().await;
    let user = app.register(&unique_email(), PASSWORD).await;
    let other = app.register(&unique_email(), PASSWORD).await;
    let token = user.access();
    let other_id = id(&other);

    for (name, query, variables) in [
        ("users", USERS, json!({})),
        (
            "user",
            "query($id: ID!) { user(id: $id) { id } }",
            json!({ "id": other_id }),
        ),
        (
            "setUserRole",
            SET_ROLE,
            json!({ "input": { "userId": other_id, "role": "ADMIN" } }),
        ),
        (
            "setUserRole on oneself",
            SET_ROLE,
            json!({ "input": { "userId": id(&user), "role": "ADMIN" } }),
        ),
        (
            "suspendUser",
            SUSPEND,
            json!({ "input": { "userId": other_id, "reason": "spam" } }),
        ),
        (
            "unsuspendUser",
            UNSUSPEND,
            json!({ "input": { "userId": other_id } }),
        ),
        (
            "auditEvents of another user",
            "query($filter: AuditEventFilter) { auditEvents(filter: $filter) { totalCount } }",
            json!({ "filter": { "userId": other_id } }),
        ),
    ] {
        let body = app.graphql_as(&token, query, variables).await;
        assert_eq!(error_code(&body), "FORBIDDEN", "{name}: {body}");
    }
    assert_eq!(
        app.current_user(&other.access()).await.role,
        Role::User,
        "nothing changed"
    );
}

#[tokio::test]
async fn a_user_may_read_themselves_and_an_admin_anyone_also_through_node() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let user = app.register(&unique_email(), PASSWORD).await;
    let user_query = "query($id: ID!) { user(id: $id) { id email } }";
    let node_query = "query($id: ID!) { node(id: $id) { id ... on User { email } } }";

    let own = app
        .graphql_as(&user.access(), user_query, json!({ "id": id(&user) }))
        .await;
    assert_eq!(own["data"]["user"]["email"], user.user.email);
    let by_admin = app
        .graphql_as(&admin.access(), user_query, json!({ "id": id(&user) }))
        .await;
    assert_eq!(by_admin["data"]["user"]["email"], user.user.email);
    let node = app
        .graphql_as(&admin.access(), node_query, json!({ "id": id(&user) }))
        .await;
    assert_eq!(node["data"]["node"]["email"], user.user.email);

    let hidden = app
        .graphql_as(&user.access(), node_query, json!({ "id": id(&admin) }))
        .await;
    assert_no_errors(&hidden);
    assert!(hidden["data"]["node"].is_null());
    for missing in [Uuid::now_v7().to_string(), "not-an-id".to_owned()] {
        let body = app
            .graphql_as(&admin.access(), user_query, json!({ "id": missing }))
            .await;
        assert_eq!(error_code(&body), "NOT_FOUND");
        let node = app
            .graphql_as(&admin.access(), node_query, json!({ "id": missing }))
            .await;
        assert!(node["data"]["node"].is_null());
    }
}

/// Users inserted straight into the database: the test is about listing, not signing up.
/// Groups of ten share a creation time, so ties must be broken by id.
async fn seed_users(app: &TestApp, count: usize) -> Vec<(String, String)> {
    let db = app.db().await;
    let start = Utc::now() - Duration::days(10);
    let mut seeded = Vec::new();
    let rows: Vec<_> = (0..count)
        .map(|i| {
            let id = Uuid::now_v7();
            // Emails whose order differs from creation order.
            let email = format!("{:03}-{}@seed.example.com", (i * 7919) % 1000, i);
            seeded.push((id.to_string(), email.clone()));
            let at = start + Duration::seconds((i / 10) as i64);
            entity::user::ActiveModel {
                id: Set(id),
                email: Set(email),
                password_hash: Set("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA".into()),
                display_name: Set(None),
                role: Set(if i % 25 == 0 { "admin" } else { "user" }.into()),
                email_verified_at: Set((i % 3 == 0).then_some(at)),
                suspended_at: Set((i % 50 == 1).then_some(at)),
                suspension_reason: Set((i % 50 == 1).then(|| "seeded".to_owned())),
                created_at: Set(at),
                updated_at: Set(at),
                credential_version: Set(0),
                pending_email: Set(None),
                mfa_enabled_at: Set(None),
                has_password: Set(true),
            }
        })
        .collect();
    for chunk in rows.chunks(50) {
        entity::user::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(&db)
            .await
            .unwrap();
    }
    seeded
}

async fn insert_user(app: &TestApp, email: &str, created_at: chrono::DateTime<Utc>) {
    entity::user::Entity::insert(entity::user::ActiveModel {
        id: Set(Uuid::now_v7()),
        email: Set(email.to_owned()),
        password_hash: Set("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA".into()),
        display_name: Set(None),
        role: Set("user".into()),
        email_verified_at: Set(None),
        suspended_at: Set(None),
        suspension_reason: Set(None),
        created_at: Set(created_at),
        updated_at: Set(created_at),
        credential_version: Set(0),
        pending_email: Set(None),
        mfa_enabled_at: Set(None),
        has_password: Set(true),
    })
    .exec_without_returning(&app.db().await)
    .await
    .unwrap();
}

/// A user of the `users` list, as `USERS` selects it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Listed {
    id: String,
    email: String,
    created_at: String,
    role: Role,
    email_verified: bool,
    suspended: bool,
}

/// A page of `users`; the request must succeed.
async fn users(app: &TestApp, token: &str, variables: Value) -> Connection<Listed> {
    data(&app.graphql_as(token, USERS, variables).await, "users")
}

#[tokio::test]
async fn users_pages_through_every_ordering_both_ways_each_user_once_despite_inserts() {
    let app = spawn_app().await;
    let admin = app.admin().await.access();
    let seeded = seed_users(&app, 250).await;
    let seeded_ids: HashSet<String> = seeded.iter().map(|(id, _)| id.clone()).collect();
    let mut inserted = 0;

    for field in ["CREATED_AT", "EMAIL"] {
        for direction in ["ASC", "DESC"] {
            for forward in [true, false] {
                let order = json!({ "field": field, "direction": direction });
                let mut seen: Vec<Listed> = Vec::new();
                let mut cursor: Option<String> = None;
                loop {
                    let variables = if forward {
                        json!({ "first": 37, "after": cursor, "orderBy": order })
                    } else {
                        json!({ "last": 37, "before": cursor, "orderBy": order })
                    };
                    let page = users(&app, &admin, variables).await;
                    let info = page.page_info;
                    let nodes = page.edges.into_iter().map(|edge| edge.node);
                    if forward {
                        seen.extend(nodes);
                    } else {
                        seen.splice(0..0, nodes);
                    }
                    // Users arrive between pages, sorting at both ends of every ordering.
                    inserted += 1;
                    insert_user(
                        &app,
                        &format!("000-new-{inserted}@x.example.com"),
                        Utc::now(),
                    )
                    .await;
                    insert_user(
                        &app,
                        &format!("zzz-new-{inserted}@x.example.com"),
                        Utc::now() - Duration::days(30),
                    )
                    .await;
                    let more = if forward {
                        info.has_next_page
                    } else {
                        info.has_previous_page
                    };
                    if !more {
                        break;
                    }
                    cursor = if forward {
                        info.end_cursor
                    } else {
                        info.start_cursor
                    };
                }

                let case = format!(
                    "{field} {direction} {}",
                    if forward { "forward" } else { "backward" }
                );
                let ids: Vec<String> = seen.iter().map(|n| n.id.clone()).collect();
                let unique: HashSet<&String> = ids.iter().collect();
                assert_eq!(unique.len(), ids.len(), "{case}: a user appeared twice");
                let seeded_seen = ids.iter().filter(|id| seeded_ids.contains(*id)).count();
                assert_eq!(seeded_seen, 250, "{case}: every seeded user exactly once");
                // Within what was seen, the order is the requested one.
                let key = |n: &Listed| -> String {
                    let k = if field == "EMAIL" {
                        &n.email
                    } else {
                        &n.created_at
                    };
                    format!("{k}|{}", n.id)
                };
                let keys: Vec<String> = seen.iter().map(key).collect();
                let mut sorted = keys.clone();
                sorted.sort();
                if direction == "DESC" {
                    sorted.reverse();
                }
                let seeded_keys: Vec<&String> = keys
                    .iter()
                    .zip(&ids)
                    .filter(|(_, id)| seeded_ids.contains(*id))
                    .map(|(k, _)| k)
                    .collect();
                let sorted_seeded: Vec<&String> =
                    sorted.iter().filter(|k| seeded_keys.contains(k)).collect();
                assert_eq!(seeded_keys, sorted_seeded, "{case}: out of order");
            }
        }
    }
}

#[tokio::test]
async fn users_can_be_filtered_and_counted() {
    let app = spawn_app().await;
    let admin = app.admin().await.access();
    seed_users(&app, 100).await;
    insert_user(&app, "per%cent_under@x.example.com", Utc::now()).await;
    insert_user(&app, "percentxunder@x.example.com", Utc::now()).await;

    let count = |filter: Value| {
        let app = &app;
        let admin = admin.clone();
        async move {
            let page = users(app, &admin, json!({ "first": 100, "filter": filter })).await;
            let found: Vec<Listed> = page.nodes().into_iter().cloned().collect();
            (page.total_count, found)
        }
    };

    let (total, _) = count(json!({})).await;
    assert_eq!(total, 103, "100 seeded, 2 inserted, 1 admin");
    let (n, found) = count(json!({ "emailContains": "%CENT_" })).await;
    assert_eq!(n, 1, "wildcards match literally, case-insensitively");
    assert_eq!(found[0].email, "per%cent_under@x.example.com");
    let (n, found) = count(json!({ "emailContains": "SEED.example" })).await;
    assert_eq!(n, 100);
    assert!(found.iter().all(|u| u.email.contains("seed.example")));
    let (n, found) = count(json!({ "role": "ADMIN" })).await;
    assert_eq!(n, 5, "4 seeded admins and the test's");
    assert!(found.iter().all(|u| u.role == Role::Admin));
    let (n, found) = count(json!({ "verified": true, "emailContains": "seed" })).await;
    assert_eq!(n, 34);
    assert!(found.iter().all(|u| u.email_verified));
    let (n, found) = count(json!({ "suspended": true })).await;
    assert_eq!(n, 2);
    assert!(found.iter().all(|u| u.suspended));
    let (n, _) =
        count(json!({ "role": "ADMIN", "suspended": false, "emailContains": "seed" })).await;
    assert_eq!(n, 4);
}

#[tokio::test]
async fn a_cursor_of_another_ordering_is_refused() {
    let app = spawn_app().await;
    let admin = app.admin().await.access();
    seed_users(&app, 5).await;
    let page = users(
        &app,
        &admin,
        json!({ "first": 2, "orderBy": { "field": "EMAIL", "direction": "ASC" } }),
    )
    .await;
    let cursor = page.page_info.end_cursor.expect("a cursor");
    let other = app
        .graphql_as(&admin, USERS, json!({ "first": 2, "after": cursor }))
        .await;
    assert_eq!(error_code(&other), "BAD_USER_INPUT");
}

#[tokio::test]
async fn the_last_active_admin_cannot_be_demoted_suspended_or_deleted() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let token = admin.access();
    let admin_email = admin.user.email.clone();
    let admin_id = id(&admin);

    let demote = app
        .graphql_as(
            &token,
            SET_ROLE,
            json!({ "input": { "userId": admin_id, "role": "USER" } }),
        )
        .await;
    assert_eq!(error_code(&demote), "CONFLICT");
    assert_eq!(
        only_error(&demote).message,
        "This is the last active administrator: make another user an administrator first."
    );
    let suspend = app
        .graphql_as(
            &token,
            SUSPEND,
            json!({ "input": { "userId": admin_id, "reason": "oops" } }),
        )
        .await;
    assert_eq!(error_code(&suspend), "CONFLICT");
    let delete = app
        .graphql_as(&token, DELETE, json!({ "input": { "password": PASSWORD } }))
        .await;
    assert_eq!(error_code(&delete), "CONFLICT");
    assert_eq!(app.current_user(&token).await.role, Role::Admin);

    // With a second administrator, the first may step down.
    let second = app.register(&unique_email(), PASSWORD).await;
    let promote = app
        .graphql_as(
            &token,
            SET_ROLE,
            json!({ "input": { "userId": id(&second), "role": "ADMIN" } }),
        )
        .await;
    assert_eq!(promote["data"]["setUserRole"]["role"], "ADMIN");
    let step_down = app
        .graphql_as(
            &token,
            SET_ROLE,
            json!({ "input": { "userId": admin_id, "role": "USER" } }),
        )
        .await;
    assert_eq!(step_down["data"]["setUserRole"]["role"], "USER");
    // A role change ends the account's sessions: the old token no longer administers, nor
    // anything else.
    assert_eq!(
        error_code(&app.graphql_as(&token, USERS, json!({})).await),
        "UNAUTHENTICATED"
    );
    let again = app.sign_in(&admin_email, PASSWORD).await.access();
    assert_eq!(
        error_code(&app.graphql_as(&again, USERS, json!({})).await),
        "FORBIDDEN"
    );
}

#[tokio::test]
async fn two_admins_demoting_each_other_at_once_leave_one_admin() {
    let app = spawn_app().await;
    let a = app.admin().await;
    let b = app.admin().await;
    let (token_a, token_b) = (a.access(), b.access());
    let (demote_b, demote_a) = app
        .race(async {
            tokio::join!(
                app.graphql_as(
                    &token_a,
                    SET_ROLE,
                    json!({ "input": { "userId": id(&b), "role": "USER" } })
                ),
                app.graphql_as(
                    &token_b,
                    SET_ROLE,
                    json!({ "input": { "userId": id(&a), "role": "USER" } })
                ),
            )
        })
        .await;
    let succeeded = [&demote_a, &demote_b]
        .iter()
        .filter(|body| body.get("errors").is_none())
        .count();
    let refused = [&demote_a, &demote_b]
        .iter()
        .filter(|body| {
            // UNAUTHENTICATED: the winner's demotion ended the loser's sessions before the
            // loser's request was authenticated.
            body.get("errors").is_some()
                && ["CONFLICT", "FORBIDDEN", "UNAUTHENTICATED"].contains(&error_code(body))
        })
        .count();
    assert_eq!((succeeded, refused), (1, 1), "{demote_a} {demote_b}");
    let roles = [
        app.current_user(&app.sign_in(&a.user.email, PASSWORD).await.access())
            .await
            .role,
        app.current_user(&app.sign_in(&b.user.email, PASSWORD).await.access())
            .await
            .role,
    ];
    assert!(roles.contains(&Role::Admin), "{roles:?}");
}

#[tokio::test]
async fn suspension_ends_sessions_at_once_and_blocks_sign_in_until_lifted() {
    let app = spawn_app().await;
    let admin = app.admin().await.access();
    let email = unique_email();
    let user = app.register(&email, PASSWORD).await;
    let refresh = &user.refresh();
    assert_no_errors(&app.me(&user.access()).await);

    let body = app
        .graphql_as(
            &admin,
            SUSPEND,
            json!({ "input": { "userId": id(&user), "reason": "  Spamming  " } }),
        )
        .await;
    assert_no_errors(&body);
    assert_eq!(body["data"]["suspendUser"]["suspended"], true);
    assert_eq!(body["data"]["suspendUser"]["suspensionReason"], "Spamming");

    assert_eq!(error_code(&app.me(&user.access()).await), "UNAUTHENTICATED");
    assert_eq!(error_code(&app.refresh(refresh).await), "UNAUTHENTICATED");
    let login = app.login(&email, PASSWORD).await;
    assert_eq!(error_code(&login), "FORBIDDEN");
    assert_eq!(
        only_error(&login).extensions.reason.as_deref(),
        Some("ACCOUNT_SUSPENDED")
    );
    // The wrong password still gets the ordinary answer: a suspension is no oracle.
    assert_eq!(
        error_code(&app.login(&email, "wrong password!").await),
        "UNAUTHENTICATED"
    );

    let blank = app
        .graphql_as(
            &admin,
            SUSPEND,
            json!({ "input": { "userId": id(&user), "reason": " " } }),
        )
        .await;
    assert_eq!(
        only_error(&blank).extensions.field.as_deref(),
        Some("reason")
    );

    let body = app
        .graphql_as(
            &admin,
            UNSUSPEND,
            json!({ "input": { "userId": id(&user) } }),
        )
        .await;
    assert_eq!(body["data"]["unsuspendUser"]["suspended"], false);
    assert_no_errors(&app.login(&email, PASSWORD).await);
}

#[tokio::test]
async fn admin_operations_on_an_unknown_user_are_not_found() {
    let app = spawn_app().await;
    let admin = app.admin().await.access();
    let nobody = Uuid::now_v7().to_string();
    for (query, variables) in [
        (
            SET_ROLE,
            json!({ "input": { "userId": nobody, "role": "ADMIN" } }),
        ),
        (
            SUSPEND,
            json!({ "input": { "userId": nobody, "reason": "x" } }),
        ),
        (UNSUSPEND, json!({ "input": { "userId": "not-a-uuid" } })),
    ] {
        let body = app.graphql_as(&admin, query, variables).await;
        assert_eq!(error_code(&body), "NOT_FOUND", "{body}");
    }
}

#[tokio::test]
async fn profile_email_and_deletion_are_self_service() {
    let app = spawn_app().await;
    let email = unique_email();
    let user = app.register(&email, PASSWORD).await;
    let token = user.access();

    let profile = app
        .graphql_as(
            &token,
            "mutation($input: UpdateProfileInput!) { updateProfile(input: $input) { displayName } }",
            json!({ "input": { "displayName": "  Grace Hopper " } }),
        )
        .await;
    assert_eq!(
        profile["data"]["updateProfile"]["displayName"],
        "Grace Hopper"
    );

    let change_email = "mutation($input: ChangeEmailInput!) { changeEmail(input: $input) { email emailVerified pendingEmail } }";
    let wrong = app
        .graphql_as(
            &token,
            change_email,
            json!({ "input": { "newEmail": unique_email(), "password": "nope nope" } }),
        )
        .await;
    assert_eq!(
        only_error(&wrong).extensions.field.as_deref(),
        Some("password")
    );

    let new_email = unique_email();
    let changed = app
        .graphql_as(
            &token,
            change_email,
            json!({ "input": { "newEmail": new_email.to_uppercase(), "password": PASSWORD } }),
        )
        .await;
    // Nothing changes until the new address confirms.
    assert_eq!(changed["data"]["changeEmail"]["email"], email.as_str());
    assert_eq!(
        changed["data"]["changeEmail"]["pendingEmail"],
        new_email.as_str()
    );
    assert!(
        app.emails_to(&email)
            .await
            .iter()
            .any(|m| m.subject == "Your email address is being changed")
    );
    let link = app.link_token(&new_email, "confirm-email-change").await;
    let confirmed = app
        .graphql(
            "mutation($input: EmailChangeLinkInput!) { confirmEmailChange(input: $input) { email emailVerified pendingEmail } }",
            json!({ "input": { "token": link } }),
        )
        .await;
    assert_no_errors(&confirmed);
    assert_eq!(
        confirmed["data"]["confirmEmailChange"]["email"],
        new_email.as_str()
    );
    assert_eq!(
        confirmed["data"]["confirmEmailChange"]["emailVerified"],
        true
    );
    assert!(confirmed["data"]["confirmEmailChange"]["pendingEmail"].is_null());
    assert_no_errors(&app.login(&new_email, PASSWORD).await);
    assert_eq!(
        error_code(&app.login(&email, PASSWORD).await),
        "UNAUTHENTICATED"
    );

    let refused = app
        .graphql_as(
            &token,
            DELETE,
            json!({ "input": { "password": "not the password" } }),
        )
        .await;
    assert_eq!(
        only_error(&refused).extensions.field.as_deref(),
        Some("password")
    );
    let deleted = app
        .graphql_as(&token, DELETE, json!({ "input": { "password": PASSWORD } }))
        .await;
    assert_eq!(deleted["data"]["deleteAccount"], true);
    assert_eq!(error_code(&app.me(&token).await), "UNAUTHENTICATED");
    assert_eq!(
        error_code(&app.login(&new_email, PASSWORD).await),
        "UNAUTHENTICATED"
    );
    assert_no_errors(
        &app.graphql(
            crate::helpers::REGISTER,
            json!({ "input": { "email": new_email, "password": PASSWORD } }),
        )
        .await,
    );
}

#[tokio::test]
async fn display_names_that_spoof_or_hide_text_are_refused_and_names_are_normalised() {
    let app = spawn_app().await;
    let token = app.register(&unique_email(), PASSWORD).await.access();
    let update =
        "mutation($input: UpdateProfileInput!) { updateProfile(input: $input) { displayName } }";
    for spoof in [
        "admin\u{202E}gpj.exe",
        "Ad\u{200B}min",
        "A\u{2028}B",
        "\u{200B}\u{200B}",
        "\u{3164}",      // Hangul filler: renders blank
        "\u{2800}",      // Braille blank
        "\u{1D5D4}dmin", // mathematical bold A
        "\u{0410}dmin",  // Cyrillic A
    ] {
        let body = app
            .graphql_as(&token, update, json!({ "input": { "displayName": spoof } }))
            .await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{spoof:?}: {body}");
        assert_eq!(
            only_error(&body).extensions.field.as_deref(),
            Some("displayName")
        );
    }
    let body = app
        .graphql_as(
            &token,
            update,
            json!({ "input": { "displayName": "Zoe\u{0301}" } }),
        )
        .await;
    assert_eq!(body["data"]["updateProfile"]["displayName"], "Zo\u{00E9}");
}

const RESET_MFA: &str =
    "mutation($input: ResetUserMfaInput!) { resetUserMfa(input: $input) { id mfaEnabled } }";
const REAUTHENTICATE: &str = "mutation($input: ReauthenticateInput!) {
  reauthenticate(input: $input) { accessToken }
}";

/// A stolen administrator's session, idle past the reauthentication window, is refused every
/// change to other accounts (with or without a phished password in hand: no mutation takes
/// one); the administrator, proving it is them again, goes on with the same session.
#[tokio::test]
async fn a_stale_admin_session_must_reauthenticate_before_changing_accounts() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let token = admin.access();
    let user = app.register(&unique_email(), PASSWORD).await;
    let user_id = id(&user);
    app.clock.advance(std::time::Duration::from_secs(11 * 60));

    let changes = [
        (
            "setUserRole",
            SET_ROLE,
            json!({ "input": { "userId": user_id, "role": "ADMIN" } }),
        ),
        (
            "suspendUser",
            SUSPEND,
            json!({ "input": { "userId": user_id, "reason": "spam" } }),
        ),
        (
            "unsuspendUser",
            UNSUSPEND,
            json!({ "input": { "userId": user_id } }),
        ),
        (
            "resetUserMfa",
            RESET_MFA,
            json!({ "input": { "userId": user_id } }),
        ),
    ];
    for (name, query, variables) in &changes {
        let body = app.graphql_as(&token, query, variables.clone()).await;
        assert_eq!(error_code(&body), "FORBIDDEN", "{name}: {body}");
        assert_eq!(
            only_error(&body).extensions.reason.as_deref(),
            Some("REAUTHENTICATION_REQUIRED"),
            "{name}: {body}"
        );
    }
    // Reading stays open to the session, and shows nothing changed.
    let seen = app
        .graphql_as(
            &token,
            "query($id: ID!) { user(id: $id) { role suspended } }",
            json!({ "id": user_id }),
        )
        .await;
    assert_eq!(
        seen["data"]["user"],
        json!({ "role": "USER", "suspended": false })
    );

    let fresh = app
        .graphql_as(
            &token,
            REAUTHENTICATE,
            json!({ "input": { "password": PASSWORD } }),
        )
        .await;
    assert_no_errors(&fresh);
    // The new access token outlives the first one, for the rest of the story.
    let token = fresh["data"]["reauthenticate"]["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let promoted = app.graphql_as(&token, SET_ROLE, changes[0].2.clone()).await;
    assert_eq!(
        promoted["data"]["setUserRole"]["role"], "ADMIN",
        "{promoted}"
    );
    let demoted = app
        .graphql_as(
            &token,
            SET_ROLE,
            json!({ "input": { "userId": user_id, "role": "USER" } }),
        )
        .await;
    assert_eq!(demoted["data"]["setUserRole"]["role"], "USER", "{demoted}");
    let suspended = app.graphql_as(&token, SUSPEND, changes[1].2.clone()).await;
    assert_eq!(
        suspended["data"]["suspendUser"]["suspended"], true,
        "{suspended}"
    );
    let lifted = app
        .graphql_as(&token, UNSUSPEND, changes[2].2.clone())
        .await;
    assert_eq!(
        lifted["data"]["unsuspendUser"]["suspended"], false,
        "{lifted}"
    );
    // The window counts from the reauthentication, so it closes again.
    app.clock.advance(std::time::Duration::from_secs(11 * 60));
    let stale_again = app.graphql_as(&token, SUSPEND, changes[1].2.clone()).await;
    assert_eq!(
        only_error(&stale_again).extensions.reason.as_deref(),
        Some("REAUTHENTICATION_REQUIRED"),
        "{stale_again}"
    );
}

/// A total is a query of its own, read only when the selection asks for `totalCount`: each
/// list costs one query more with it than without it, and the same total either way it is
/// asked.
#[tokio::test]
async fn lists_count_their_items_only_when_total_count_is_selected() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let token = &admin.access();
    for _ in 0..3 {
        app.register(&unique_email(), PASSWORD).await;
    }
    app.flush_audit().await;
    for (list, without, with) in [
        (
            "users",
            "{ users(first: 2) { edges { node { id } } } }",
            "{ users(first: 2) { totalCount edges { node { id } } } }",
        ),
        (
            "auditEvents",
            "{ auditEvents(first: 2) { edges { node { id } } } }",
            "{ auditEvents(first: 2) { totalCount edges { node { id } } } }",
        ),
        (
            "sessions",
            "{ sessions(first: 2) { edges { node { id } } } }",
            "{ sessions(first: 2) { totalCount edges { node { id } } } }",
        ),
    ] {
        let before = app.queries.get();
        let body = app.graphql_as(token, without, json!({})).await;
        assert_no_errors(&body);
        let plain = app.queries.get() - before;
        let before = app.queries.get();
        let body = app.graphql_as(token, with, json!({})).await;
        assert_no_errors(&body);
        let counted = app.queries.get() - before;
        assert_eq!(
            counted,
            plain + 1,
            "{list}: {plain} queries without, {counted} with"
        );
        assert!(
            body["data"][list]["totalCount"].as_i64().unwrap() >= 1,
            "{list}"
        );
    }
    let body = app
        .graphql_as(token, "{ users(first: 1) { totalCount } }", json!({}))
        .await;
    assert_eq!(
        body["data"]["users"]["totalCount"], 4,
        "the admin and three"
    );
    // Selected through a fragment and under an alias, it is still seen and counted.
    let body = app
        .graphql_as(
            token,
            "{ users(first: 1) { ...Counted } } fragment Counted on UserConnection { n: totalCount }",
            json!({}),
        )
        .await;
    assert_no_errors(&body);
    assert_eq!(body["data"]["users"]["n"], 4);
}
