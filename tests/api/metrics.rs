use serde_json::json;

use crate::helpers::{
    PASSWORD, TestApp, metric_value as value, spawn_app, spawn_app_with, unique_email,
};

async fn scrape(app: &TestApp) -> String {
    let response = app.client.get(app.metrics_url()).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    response.text().await.unwrap()
}

#[tokio::test]
async fn metrics_count_requests_sign_ins_and_report_the_pools() {
    let app = spawn_app().await;
    let email = unique_email();
    let registered = app.register(&email, PASSWORD).await;
    app.login(&email, PASSWORD).await;
    app.login(&email, "a wrong password").await;
    app.graphql_as(
        &registered.access(),
        "query MyOwnFancyName { me { id } }",
        json!({}),
    )
    .await;

    let text = scrape(&app).await;
    assert_eq!(
        value(&text, r#"authgraph_logins_total{result="success"}"#),
        1.0
    );
    assert_eq!(
        value(&text, r#"authgraph_logins_total{result="failure"}"#),
        1.0
    );
    assert_eq!(
        value(
            &text,
            r#"authgraph_graphql_requests_total{operation="register",outcome="ok"}"#
        ),
        1.0
    );
    assert_eq!(
        value(
            &text,
            r#"authgraph_graphql_requests_total{operation="me",outcome="ok"}"#
        ),
        1.0
    );
    assert!(
        !text.contains("MyOwnFancyName"),
        "labels come from the schema, not the client"
    );
    assert_eq!(
        value(
            &text,
            r#"authgraph_graphql_request_duration_seconds_count{operation="login"}"#
        ),
        2.0
    );
    assert_eq!(value(&text, "authgraph_password_hash_queue_depth"), 0.0);
    assert!(value(&text, "authgraph_password_hashes_completed") >= 3.0);
    assert!(value(&text, "authgraph_db_pool_connections") >= 1.0);
    assert!(value(&text, "authgraph_db_statements_executed") > 0.0);
    assert_eq!(value(&text, "authgraph_audit_events_dropped"), 0.0);
    // One request at a time: nothing raced, nothing was run again.
    for reason in ["deadlock", "serialization_failure", "lock_timeout", "busy"] {
        let series = format!(r#"authgraph_db_transaction_retries{{reason="{reason}"}}"#);
        assert_eq!(value(&text, &series), 0.0, "{series}");
    }
    assert_eq!(
        value(&text, "authgraph_db_transaction_retries_exhausted"),
        0.0
    );
}

#[tokio::test]
async fn metrics_are_served_only_on_their_own_listener_and_can_be_turned_off() {
    let app = spawn_app().await;
    let public = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(public.status(), 404, "not on the API's port");
    let app = spawn_app_with(|c| c.telemetry.metrics = false).await;
    assert!(app.metrics_address.is_none(), "no listener at all");
}
