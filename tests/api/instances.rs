//! Several instances of the service on one database, as behind a load balancer.

use sea_orm::{ConnectionTrait, Database, Statement};
use serde_json::json;

use crate::helpers::{
    PASSWORD, TestDatabase, assert_no_errors, error_code, spawn_app, spawn_app_with, test_config,
    unique_email,
};

#[tokio::test]
async fn instances_starting_together_apply_the_migrations_once() {
    let database = TestDatabase::create().await;
    let config = test_config(&database.url, |_| {});
    let starts = (0..4).map(|_| authgraph::app::connect_and_migrate(&config));
    for started in futures_util::future::join_all(starts).await {
        started.expect("every instance starts");
    }
    let db = Database::connect(&database.url).await.unwrap();
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT COUNT(*) AS applied FROM seaql_migrations",
        ))
        .await
        .unwrap()
        .unwrap();
    let applied: i64 = row.try_get("", "applied").unwrap();
    use migration::MigratorTrait;
    assert_eq!(applied, migration::Migrator::migrations().len() as i64);
}

#[tokio::test]
async fn a_token_from_one_instance_works_on_another() {
    let a = spawn_app().await;
    let b = a.another_instance().await;
    let email = unique_email();
    let registered = a.register(&email, PASSWORD).await;
    let token = registered["accessToken"].as_str().unwrap();
    assert_eq!(b.me(token).await["data"]["me"]["email"], email.as_str());
    let refreshed = b
        .refresh(registered["refreshToken"].as_str().unwrap())
        .await;
    assert_no_errors(&refreshed);
}

#[tokio::test]
async fn logout_on_one_instance_ends_the_session_on_the_other_at_once() {
    let a = spawn_app().await;
    let b = a.another_instance().await;
    let registered = a.register(&unique_email(), PASSWORD).await;
    let token = registered["accessToken"].as_str().unwrap();
    assert_no_errors(&b.me(token).await);
    a.logout(registered["refreshToken"].as_str().unwrap()).await;
    assert_eq!(error_code(&b.me(token).await), "UNAUTHENTICATED");
}

#[tokio::test]
async fn refresh_token_reuse_seen_by_one_instance_ends_the_session_everywhere() {
    let a = spawn_app_with(|c| c.refresh_token_reuse_grace = std::time::Duration::ZERO).await;
    let b = a.another_instance().await;
    let registered = a.register(&unique_email(), PASSWORD).await;
    let first = registered["refreshToken"].as_str().unwrap();
    let rotated = a.refresh(first).await;
    let token = rotated["data"]["refreshToken"]["accessToken"]
        .as_str()
        .unwrap();
    assert_no_errors(&b.me(token).await);

    assert_eq!(error_code(&b.refresh(first).await), "UNAUTHENTICATED");
    assert_eq!(error_code(&a.me(token).await), "UNAUTHENTICATED");
}

#[tokio::test]
async fn a_suspension_by_an_admin_on_one_instance_applies_on_the_other() {
    let a = spawn_app().await;
    let b = a.another_instance().await;
    let admin = a.admin().await;
    let user = a.register(&unique_email(), PASSWORD).await;
    let token = user["accessToken"].as_str().unwrap();
    let suspended = a
        .graphql_as(
            admin["accessToken"].as_str().unwrap(),
            "mutation($i: SuspendUserInput!) { suspendUser(input: $i) { id } }",
            json!({ "i": { "userId": user["user"]["id"], "reason": "abuse" } }),
        )
        .await;
    assert_no_errors(&suspended);
    assert_eq!(error_code(&b.me(token).await), "UNAUTHENTICATED");
}
