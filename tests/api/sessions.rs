use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{
    AuthPayload, Connection, PASSWORD, Session, TestApp, assert_no_errors, data, data_str,
    error_code, only_error, spawn_app, spawn_app_with, token_claims, unique_email,
};

const SESSIONS: &str = "query Sessions($first: Int, $after: String, $last: Int, $before: String) {
  sessions(first: $first, after: $after, last: $last, before: $before) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node { id current createdAt lastUsedAt expiresAt userAgent ip } }
  }
}";

/// A page of the caller's sessions; the request must succeed.
async fn sessions(app: &TestApp, token: &str, variables: Value) -> Connection<Session> {
    data(
        &app.graphql_as(token, SESSIONS, variables).await,
        "sessions",
    )
}

#[tokio::test]
async fn refresh_rotates_both_tokens_within_the_same_session() {
    let app = spawn_app().await;
    let (access, refresh) = app.register(&unique_email(), PASSWORD).await.tokens();

    let renewed = app.refreshed(&refresh).await;
    assert_eq!(renewed.token_type, "Bearer");
    assert_eq!(renewed.expires_in, 900);
    let (new_access, new_refresh) = renewed.tokens();
    assert_ne!(new_refresh, refresh);
    assert_eq!(
        token_claims(&new_access)["sid"],
        token_claims(&access)["sid"],
        "the same session"
    );
    assert_no_errors(&app.me(&new_access).await);
    assert_no_errors(&app.refresh(&new_refresh).await);
}

#[tokio::test]
async fn a_rotated_refresh_token_used_again_ends_the_whole_session() {
    let app = spawn_app_with(|c| c.sessions.refresh_token_reuse_grace = Duration::ZERO).await;
    let (_, first) = app.register(&unique_email(), PASSWORD).await.tokens();
    let (access, second) = app.refreshed(&first).await.tokens();

    let replay = app.refresh(&first).await;
    assert_eq!(error_code(&replay), "UNAUTHENTICATED");
    assert_eq!(
        only_error(&replay).message,
        "The refresh token was already used, so the session has been ended to protect the account; sign in again."
    );
    // The access token of that session stops working right away, and so does its latest
    // refresh token, which the thief may hold.
    let me = app.me(&access).await;
    assert_eq!(error_code(&me), "UNAUTHENTICATED");
    assert_eq!(
        only_error(&me).message,
        "The session has ended; sign in again."
    );
    assert_eq!(error_code(&app.refresh(&second).await), "UNAUTHENTICATED");
}

#[tokio::test]
async fn a_concurrent_double_submit_within_the_grace_window_is_not_taken_for_theft() {
    let app = spawn_app().await;
    // The requests land within the window by the app's clock, however slow the machine.
    app.clock.hold();
    let (_, refresh) = app.register(&unique_email(), PASSWORD).await.tokens();

    let (a, b) = app
        .race(async { tokio::join!(app.refresh(&refresh), app.refresh(&refresh)) })
        .await;
    assert_no_errors(&a);
    assert_no_errors(&b);
    let (access_a, refresh_a) = data::<AuthPayload>(&a, "refreshToken").tokens();
    let (_, refresh_b) = data::<AuthPayload>(&b, "refreshToken").tokens();
    assert_ne!(refresh_a, refresh_b);
    assert_no_errors(&app.me(&access_a).await);
    assert_no_errors(&app.refresh(&refresh_a).await);
    assert_no_errors(&app.refresh(&refresh_b).await);
}

#[tokio::test]
async fn an_unknown_refresh_token_is_refused() {
    let app = spawn_app().await;
    for token in ["", "garbage", &"x".repeat(10_000) as &str] {
        let body = app.refresh(token).await;
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "{token:?}");
        assert_eq!(
            only_error(&body).message,
            "The refresh token is invalid; sign in again."
        );
    }
}

#[tokio::test]
async fn logout_ends_the_session_at_once() {
    let app = spawn_app().await;
    let email = unique_email();
    let (access, refresh) = app.register(&email, PASSWORD).await.tokens();
    let (other_access, _) = app.sign_in(&email, PASSWORD).await.tokens();

    let body = app.logout(&refresh).await;
    assert_eq!(body["data"]["logout"], true);
    assert_eq!(error_code(&app.me(&access).await), "UNAUTHENTICATED");
    assert_eq!(error_code(&app.refresh(&refresh).await), "UNAUTHENTICATED");
    assert_no_errors(&app.me(&other_access).await);

    assert_eq!(
        error_code(&app.logout("not a token").await),
        "UNAUTHENTICATED"
    );
}

#[tokio::test]
async fn logout_all_ends_every_session_of_the_user_only() {
    let app = spawn_app().await;
    let email = unique_email();
    let (first, _) = app.register(&email, PASSWORD).await.tokens();
    let (second, _) = app.sign_in(&email, PASSWORD).await.tokens();
    let (third, third_refresh) = app.sign_in(&email, PASSWORD).await.tokens();
    let (stranger, _) = app.register(&unique_email(), PASSWORD).await.tokens();

    let body = app
        .graphql_as(&second, "mutation { logoutAll }", json!({}))
        .await;
    assert_eq!(body["data"]["logoutAll"], 3);
    for access in [&first, &second, &third] {
        assert_eq!(error_code(&app.me(access).await), "UNAUTHENTICATED");
    }
    assert_eq!(
        error_code(&app.refresh(&third_refresh).await),
        "UNAUTHENTICATED"
    );
    assert_no_errors(&app.me(&stranger).await);
}

#[tokio::test]
async fn sessions_lists_the_devices_and_flags_the_current_one() {
    let app = spawn_app().await;
    let email = unique_email();
    app.register(&email, PASSWORD).await;
    let phone = app
        .client
        .post(app.url("/graphql"))
        .header("user-agent", "Phone/1.0")
        .json(&json!({
            "query": "mutation($input: LoginInput!) { login(input: $input) { accessToken } }",
            "variables": { "input": { "email": email, "password": PASSWORD } },
        }))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let phone_access = data_str(&phone, &["login", "accessToken"]);

    let sessions = sessions(&app, phone_access, json!({})).await;
    assert_eq!(sessions.total_count, 2);
    let nodes = sessions.nodes();
    assert_eq!(nodes.len(), 2);
    assert!(nodes[0].current, "the newest first: {nodes:#?}");
    assert_eq!(nodes[0].user_agent.as_deref(), Some("Phone/1.0"));
    assert_eq!(nodes[0].ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(
        Some(nodes[0].id.as_str()),
        token_claims(phone_access)["sid"].as_str()
    );
    assert!(!nodes[1].current);
}

#[tokio::test]
async fn sessions_pages_forwards_and_backwards_without_gaps() {
    let app = spawn_app().await;
    let email = unique_email();
    let (access, _) = app.register(&email, PASSWORD).await.tokens();
    for _ in 0..4 {
        app.login(&email, PASSWORD).await;
    }

    let mut forward = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = sessions(&app, &access, json!({ "first": 2, "after": after })).await;
        assert_eq!(page.total_count, 5);
        // The page's cursors are those of its first and last items.
        let cursors: Vec<&str> = page.edges.iter().map(|e| e.cursor.as_str()).collect();
        assert_eq!(
            page.page_info.start_cursor.as_deref(),
            cursors.first().copied()
        );
        assert_eq!(
            page.page_info.end_cursor.as_deref(),
            cursors.last().copied()
        );
        forward.extend(page.nodes().into_iter().map(|node| node.id.clone()));
        if !page.page_info.has_next_page {
            break;
        }
        after = page.page_info.end_cursor;
    }
    assert_eq!(forward.len(), 5);

    let mut backward = Vec::new();
    let mut before: Option<String> = None;
    loop {
        let page = sessions(&app, &access, json!({ "last": 2, "before": before })).await;
        let mut ids: Vec<String> = page.nodes().into_iter().map(|n| n.id.clone()).collect();
        ids.extend(backward);
        backward = ids;
        if !page.page_info.has_previous_page {
            break;
        }
        before = page.page_info.start_cursor;
    }
    assert_eq!(backward, forward);
}

#[tokio::test]
async fn bad_page_arguments_are_input_errors() {
    let app = spawn_app().await;
    let (access, _) = app.register(&unique_email(), PASSWORD).await.tokens();
    for variables in [
        json!({ "first": -1 }),
        json!({ "first": 101 }),
        json!({ "first": 1, "last": 1 }),
        json!({ "after": "not-a-cursor" }),
    ] {
        let body = app.graphql_as(&access, SESSIONS, variables.clone()).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{variables}");
    }
}

#[tokio::test]
async fn revoke_session_ends_another_device_of_the_caller_only() {
    let app = spawn_app().await;
    let email = unique_email();
    let (laptop, _) = app.register(&email, PASSWORD).await.tokens();
    let (phone, _) = app.sign_in(&email, PASSWORD).await.tokens();
    let (stranger, _) = app.register(&unique_email(), PASSWORD).await.tokens();
    let phone_session = token_claims(&phone)["sid"].as_str().unwrap().to_owned();
    let revoke = "mutation($input: RevokeSessionInput!) { revokeSession(input: $input) }";

    let foreign = app
        .graphql_as(
            &stranger,
            revoke,
            json!({ "input": { "id": phone_session } }),
        )
        .await;
    assert_eq!(error_code(&foreign), "NOT_FOUND");
    assert_no_errors(&app.me(&phone).await);

    let body = app
        .graphql_as(&laptop, revoke, json!({ "input": { "id": phone_session } }))
        .await;
    assert_eq!(body["data"]["revokeSession"], true);
    assert_eq!(error_code(&app.me(&phone).await), "UNAUTHENTICATED");
    assert_no_errors(&app.me(&laptop).await);

    for id in [phone_session.as_str(), "not-a-uuid"] {
        let again = app
            .graphql_as(&laptop, revoke, json!({ "input": { "id": id } }))
            .await;
        assert_eq!(error_code(&again), "NOT_FOUND", "{id}");
    }
}

#[tokio::test]
async fn ended_sessions_are_cleaned_up_in_the_background() {
    let app =
        spawn_app_with(|c| c.sessions.session_cleanup_interval = Duration::from_secs(1)).await;
    let (_, refresh) = app.register(&unique_email(), PASSWORD).await.tokens();
    app.logout(&refresh).await;

    use sea_orm::{EntityTrait, PaginatorTrait};
    let db = app.db().await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while entity::session::Entity::find().count(&db).await.unwrap() > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the ended session was not deleted"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_token_two_generations_old_ends_the_session_even_within_the_grace_window() {
    let app = spawn_app().await;
    // The requests land within the window by the app's clock, however slow the machine.
    app.clock.hold();
    let (_, first) = app.register(&unique_email(), PASSWORD).await.tokens();
    let (_, second) = app.refreshed(&first).await.tokens();
    let (access, third) = app.refreshed(&second).await.tokens();
    let replay = app.refresh(&first).await;
    assert_eq!(error_code(&replay), "UNAUTHENTICATED");
    assert_eq!(error_code(&app.me(&access).await), "UNAUTHENTICATED");
    assert_eq!(error_code(&app.refresh(&third).await), "UNAUTHENTICATED");
}

#[tokio::test]
async fn a_thiefs_replay_within_the_window_never_forks_the_session() {
    // The thief replays the owner's previous token at once and gets a sibling; whoever then
    // presents a superseded token after the window ends the session for both.
    let app =
        spawn_app_with(|c| c.sessions.refresh_token_reuse_grace = Duration::from_secs(10)).await;
    // The requests land within the window by the app's clock, however slow the machine.
    app.clock.hold();
    let (_, stolen) = app.register(&unique_email(), PASSWORD).await.tokens();
    let (_, owners) = app.refreshed(&stolen).await.tokens();
    let thief = app.refresh(&stolen).await;
    assert_no_errors(&thief);
    let (_, thiefs) = data::<AuthPayload>(&thief, "refreshToken").tokens();
    // The thief moves on to make the chain theirs...
    let (thief_access, thief_next) = app.refreshed(&thiefs).await.tokens();
    app.clock.advance(Duration::from_secs(11));
    // ...and the owner's next refresh, with a superseded token after the window, ends it.
    assert_eq!(error_code(&app.refresh(&owners).await), "UNAUTHENTICATED");
    assert_eq!(error_code(&app.me(&thief_access).await), "UNAUTHENTICATED");
    assert_eq!(
        error_code(&app.refresh(&thief_next).await),
        "UNAUTHENTICATED"
    );
}

#[tokio::test]
async fn replaying_one_token_gets_only_a_bounded_number_of_siblings() {
    let app = spawn_app().await;
    // The requests land within the window by the app's clock, however slow the machine.
    app.clock.hold();
    let (_, token) = app.register(&unique_email(), PASSWORD).await.tokens();
    let (access, _) = app.refreshed(&token).await.tokens();
    // Three siblings, then the fourth replay is theft.
    for _ in 0..3 {
        assert_no_errors(&app.refresh(&token).await);
    }
    assert_eq!(error_code(&app.refresh(&token).await), "UNAUTHENTICATED");
    assert_eq!(
        error_code(&app.me(&access).await),
        "UNAUTHENTICATED",
        "the session ended"
    );
}

#[tokio::test]
async fn racing_tabs_stay_signed_in_and_reuse_detection_still_bites_afterwards() {
    let app = spawn_app().await;
    // The requests land within the window by the app's clock, however slow the machine.
    app.clock.hold();
    let (_, shared) = app.register(&unique_email(), PASSWORD).await.tokens();
    // Four tabs refresh with the cookie they share, at once.
    let raced = futures_util::future::join_all((0..4).map(|_| app.refresh(&shared))).await;
    let mut latest = Vec::new();
    for body in &raced {
        assert_no_errors(body);
        latest.push(data::<AuthPayload>(body, "refreshToken").tokens().1);
    }
    // Each tab's own token works; the first to move on supersedes the others', which still
    // get a sibling within the window.
    for token in &latest {
        assert_no_errors(&app.refresh(token).await);
    }
    // The original token is now two generations old: theft.
    assert_eq!(error_code(&app.refresh(&shared).await), "UNAUTHENTICATED");
}
