use reqwest::StatusCode;
use reqwest::header::ACCEPT;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, only_error, spawn_app, spawn_app_with, unique_email};

fn only_code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"].as_str().unwrap()
}

#[tokio::test]
async fn a_malformed_json_body_is_a_parse_error_with_status_400() {
    let app = spawn_app().await;
    for body in [
        "{not json",
        "",
        "42",
        r#"{"variables": {}}"#,
        "{\"query\": \"{ me { id } }\"\u{ff}",
    ] {
        let (status, _, json) = app.post_raw(body.to_owned(), "application/json").await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body:?}");
        assert_eq!(only_code(&json), "GRAPHQL_PARSE_FAILED", "{body:?}");
        assert!(json.get("data").is_none());
    }
}

#[tokio::test]
async fn invalid_utf8_in_the_body_is_a_parse_error() {
    let app = spawn_app().await;
    let mut body = br#"{"query": "{ me { id } }", "operationName": ""#.to_vec();
    body.extend_from_slice(&[0xff, 0xfe, b'"', b'}']);
    let (status, _, json) = app.post_raw(body, "application/json").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(only_code(&json), "GRAPHQL_PARSE_FAILED");
}

#[tokio::test]
async fn an_invalid_document_is_a_request_error_with_the_status_the_media_type_asks_for() {
    let app = spawn_app().await;
    let unparsable = json!({ "query": "{ me { id " }).to_string();
    let unknown_field = json!({ "query": "{ nothing }" }).to_string();

    let (status, content_type, body) = app.post_raw(unparsable.clone(), "application/json").await;
    assert_eq!(
        (status, content_type.as_str()),
        (StatusCode::OK, "application/json; charset=utf-8")
    );
    assert_eq!(only_code(&body), "GRAPHQL_PARSE_FAILED");
    assert!(
        body.get("data").is_none(),
        "a request error has no data: {body}"
    );

    let (status, content_type, body) = app
        .post_raw(unparsable, "application/graphql-response+json")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        content_type,
        "application/graphql-response+json; charset=utf-8"
    );
    assert_eq!(only_code(&body), "GRAPHQL_PARSE_FAILED");

    let (status, _, body) = app
        .post_raw(unknown_field, "application/graphql-response+json")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(only_code(&body), "GRAPHQL_VALIDATION_FAILED");
    assert_eq!(
        only_error(&body).message,
        "Unknown field \"nothing\" on type \"Query\"."
    );
}

#[tokio::test]
async fn variables_of_the_wrong_type_or_null_for_non_null_are_rejected_before_execution() {
    let app = spawn_app().await;
    let query = "mutation($input: LoginInput!) { login(input: $input) { accessToken } }";
    for variables in [
        json!({ "input": null }),
        json!({}),
        json!({ "input": { "email": 42, "password": PASSWORD } }),
        json!({ "input": { "email": "a@example.com" } }),
        json!({ "input": "not an object" }),
    ] {
        let request = json!({ "query": query, "variables": variables }).to_string();
        let (status, _, body) = app
            .post_raw(request, "application/graphql-response+json")
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{variables}: {body}");
        assert_eq!(
            only_code(&body),
            "GRAPHQL_VALIDATION_FAILED",
            "{variables}: {body}"
        );
    }
}

#[tokio::test]
async fn an_unknown_operation_name_is_a_request_error() {
    let app = spawn_app().await;
    let request =
        json!({ "query": "query A { me { id } } query B { me { id } }", "operationName": "C" });
    let (status, _, body) = app
        .post_raw(request.to_string(), "application/graphql-response+json")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(only_code(&body), "GRAPHQL_VALIDATION_FAILED");
    assert_eq!(only_error(&body).message, "Unknown operation named \"C\"");
}

#[tokio::test]
async fn a_batch_is_refused_with_a_clear_message() {
    let app = spawn_app().await;
    let batch = json!([{ "query": "{ __typename }" }, { "query": "{ __typename }" }]);
    let (status, _, body) = app.post_raw(batch.to_string(), "application/json").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(only_code(&body), "GRAPHQL_PARSE_FAILED");
    assert_eq!(
        only_error(&body).message,
        "Batched requests are not supported: send one operation per request."
    );
}

/// The default body limit is sized for an auth API (32 KiB): a body one byte over it is
/// refused with 413 before any parsing, one that fits is served, and the limit follows
/// `HTTP_MAX_BODY_BYTES`.
#[tokio::test]
async fn a_body_over_the_default_limit_of_32_kib_is_refused_with_413() {
    let limit = 32 * 1024;
    let sized = |size: usize| {
        let mut body = json!({ "query": "{ __typename }", "variables": { "x": "" } }).to_string();
        let padding = size - body.len();
        body = json!({ "query": "{ __typename }", "variables": { "x": "x".repeat(padding) } })
            .to_string();
        assert_eq!(body.len(), size);
        body
    };
    let app = spawn_app().await;
    let (status, _, body) = app.post_raw(sized(limit + 1), "application/json").await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(only_code(&body), "GRAPHQL_PARSE_FAILED");
    let (status, _, body) = app.post_raw(sized(limit), "application/json").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["__typename"], "Query");

    let raised = spawn_app_with(|c| c.http.http_max_body_bytes = 2 * limit).await;
    let (status, _, _) = raised.post_raw(sized(limit + 1), "application/json").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn get_runs_queries_from_the_url() {
    let app = spawn_app().await;
    let registered = app.register(&unique_email(), PASSWORD).await;
    let response = app
        .client
        .get(app.url("/graphql"))
        .query(&[
            ("query", "query Me { me { email } }"),
            ("operationName", "Me"),
        ])
        .bearer_auth(registered.access())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["data"]["me"]["email"], registered.user.email);
}

#[tokio::test]
async fn get_refuses_mutations() {
    let app = spawn_app().await;
    let mutation = format!(
        r#"mutation {{ register(input: {{email: "{}", password: "{PASSWORD}"}}) {{ accessToken }} }}"#,
        unique_email()
    );
    let response = app
        .client
        .get(app.url("/graphql"))
        .query(&[("query", mutation.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.headers()["allow"], "GET, POST");
    let body: Value = response.json().await.unwrap();
    assert_eq!(only_code(&body), "GRAPHQL_VALIDATION_FAILED");
    assert_eq!(
        only_error(&body).message,
        "Mutations must be sent with POST."
    );
}

#[tokio::test]
async fn a_browser_gets_graphiql_with_every_asset_served_locally() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.url("/graphql"))
        .header(ACCEPT, "text/html,application/xhtml+xml,*/*;q=0.8")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("script-src 'self'")
    );
    let page = response.text().await.unwrap();
    assert!(!page.contains("https://"), "nothing comes from a CDN");

    let assets: Vec<&str> = page
        .split(['"', '\''])
        .filter(|s| s.starts_with("/graphiql/"))
        .collect();
    assert_eq!(assets.len(), 5, "{assets:?}");
    for asset in assets {
        // reqwest without its gzip feature sends no Accept-Encoding: any coding is acceptable.
        let response = app.client.get(app.url(asset)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{asset}");
        assert!(
            response.headers()["cache-control"]
                .to_str()
                .unwrap()
                .contains("immutable")
        );
        assert!(!response.bytes().await.unwrap().is_empty());
    }
}

#[tokio::test]
async fn a_client_refusing_gzip_is_told_so_and_unknown_assets_are_404() {
    let app = spawn_app().await;
    let page = app
        .client
        .get(app.url("/graphql"))
        .header(ACCEPT, "text/html")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let script = page
        .split('"')
        .find(|s| s.ends_with("graphiql.min.js"))
        .unwrap()
        .to_owned();
    let response = app
        .client
        .get(app.url(&script))
        .header("accept-encoding", "identity, gzip;q=0")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_ACCEPTABLE);

    let response = app
        .client
        .get(app.url("/graphiql/0.0.0/graphiql.min.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn health_and_readiness_answer() {
    let app = spawn_app().await;
    let health = app.client.get(app.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    assert_eq!(
        health.json::<Value>().await.unwrap(),
        json!({ "status": "ok" })
    );
    let ready = app.client.get(app.url("/ready")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    assert_eq!(
        ready.json::<Value>().await.unwrap(),
        json!({ "status": "ready" })
    );
}

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let app = spawn_app().await;
    let first = app.client.get(app.url("/health")).send().await.unwrap();
    let second = app
        .client
        .get(app.url("/health"))
        .header("x-request-id", "spoofed")
        .send()
        .await
        .unwrap();
    let first = first.headers()["x-request-id"].to_str().unwrap().to_owned();
    let second = second.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_ne!(first, second);
    assert_ne!(second, "spoofed", "the id is ours, not the client's");
    assert!(uuid::Uuid::parse_str(&first).is_ok());
}

#[tokio::test]
async fn a_body_that_is_not_a_request_is_told_so_without_naming_our_types() {
    let app = spawn_app().await;
    for body in [
        "42",
        "null",
        "\"{ __typename }\"",
        "{not json",
        r#"{"query": 1}"#,
        r#"{"query": "{ __typename }", "variables": 5}"#,
        r#"{"query": "{ __typename }", "variables": []}"#,
        r#"{"query": "{ __typename }", "operationName": {}}"#,
        r#"{"query": "{ __typename }", "extensions": "x"}"#,
        r#"{"query": "{ __typename }"} trailing"#,
    ] {
        let (status, _, json) = app.post_raw(body.to_owned(), "application/json").await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(only_code(&json), "GRAPHQL_PARSE_FAILED", "{body}");
        let message = only_error(&json).message;
        for internal in [
            "BatchRequest",
            "untagged",
            "variant",
            "struct",
            "enum ",
            "Variables",
            "Name",
        ] {
            assert!(!message.contains(internal), "{body}: {message}");
        }
    }
}

#[tokio::test]
async fn every_refusal_at_the_edge_has_a_coded_json_body() {
    let app = spawn_app().await;
    for method in [
        reqwest::Method::PUT,
        reqwest::Method::DELETE,
        reqwest::Method::PATCH,
    ] {
        let response = app
            .client
            .request(method.clone(), app.url("/graphql"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{method}"
        );
        assert!(response.headers().contains_key("allow"), "{method}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(only_code(&body), "GRAPHQL_PARSE_FAILED", "{method}");
    }
    let response = app.client.post(app.url("/health")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        only_code(&response.json().await.unwrap()),
        "GRAPHQL_PARSE_FAILED"
    );

    for path in ["/nothing", "/graphiql/0.0.0/graphiql.min.js"] {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(only_code(&body), "NOT_FOUND", "{path}");
        assert!(body["errors"][0]["message"].is_string());
    }
}

#[tokio::test]
async fn get_selects_the_operation_named_by_operation_name() {
    let app = spawn_app().await;
    let document = "query A { a: __typename } query B { b: __typename }";
    for (name, field) in [("A", "a"), ("B", "b")] {
        let response = app
            .client
            .get(app.url("/graphql"))
            .query(&[("query", document), ("operationName", name)])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{name}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["data"], json!({ field: "Query" }), "{name}: {body}");
    }

    // Naming the mutation of a mixed document over GET is still refused; the query runs.
    let mixed = "query A { __typename } mutation B { logoutAll }";
    let response = app
        .client
        .get(app.url("/graphql"))
        .query(&[("query", mixed), ("operationName", "B")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    let response = app
        .client
        .get(app.url("/graphql"))
        .query(&[("query", mixed), ("operationName", "A")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["data"]["__typename"], "Query");
}
