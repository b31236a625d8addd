use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::helpers::{
    JWT_SECRET, PASSWORD, REGISTER, assert_no_errors, error_code, only_error, spawn_app,
    spawn_app_with, unique_email,
};

#[tokio::test]
async fn a_query_nested_fifty_deep_is_refused_before_it_runs() {
    let app = spawn_app().await;
    let mut selection = "name".to_owned();
    for _ in 0..47 {
        selection = format!("ofType {{ {selection} }}");
    }
    let query = format!("{{ __schema {{ types {{ fields {{ type {{ {selection} }} }} }} }} }}");
    let (status, body) = app.post_json(&json!({ "query": query })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&body), "GRAPHQL_VALIDATION_FAILED");
    assert_eq!(only_error(&body).message, "Query is nested too deep.");
}

#[tokio::test]
async fn a_thousand_aliases_are_refused_naming_the_limit() {
    let app = spawn_app().await;
    let fields: Vec<String> = (0..1000).map(|i| format!("a{i}: __typename")).collect();
    let (status, body) = app
        .post_json(&json!({ "query": format!("{{ {} }}", fields.join(" ")) }))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&body), "GRAPHQL_VALIDATION_FAILED");
    assert_eq!(
        only_error(&body).message,
        "The document uses 1000 aliases; at most 30 are allowed."
    );
}

#[tokio::test]
async fn too_many_root_fields_are_refused_even_without_aliases() {
    let app = spawn_app().await;
    let token = app.register(&unique_email(), PASSWORD).await.access();
    let query = format!("{{ {} }}", "me { id } ".repeat(11));
    let body = app.graphql_as(&token, &query, json!({})).await;
    assert_eq!(error_code(&body), "GRAPHQL_VALIDATION_FAILED");
    assert_eq!(
        only_error(&body).message,
        "The operation selects 11 top-level fields; at most 10 are allowed."
    );
    let fine = app
        .graphql_as(
            &token,
            &format!("{{ {} }}", "me { id } ".repeat(10)),
            json!({}),
        )
        .await;
    assert_no_errors(&fine);
}

#[tokio::test]
async fn an_expensive_query_is_refused_by_its_cost() {
    let app = spawn_app().await;
    let query = "{ users(first: 100) { edges { node { auditEvents(first: 100) { edges { node {
        actor { id email } subject { id email } } } } } } } }";
    let (status, body) = app.post_json(&json!({ "query": query })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&body), "GRAPHQL_VALIDATION_FAILED");
    assert_eq!(only_error(&body).message, "Query is too complex.");
}

#[tokio::test]
async fn a_ten_megabyte_body_is_refused_with_413() {
    let app = spawn_app().await;
    let huge =
        json!({ "query": "{ __typename }", "variables": { "x": "x".repeat(10 * 1024 * 1024) } });
    let (status, body) = app.post_json(&huge).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error_code(&body), "GRAPHQL_PARSE_FAILED");
    assert_eq!(
        only_error(&body).message,
        "The request body is larger than 32 KiB."
    );
}

#[tokio::test]
async fn a_one_megabyte_variable_gets_a_clear_error_and_no_hashing() {
    // Past the default body limit (32 KiB) this would be a 413 unread; with the limit raised,
    // the input itself must be handled.
    let app = spawn_app_with(|c| c.http.http_max_body_bytes = 2 * 1024 * 1024).await;
    let megabyte = "x".repeat(1_000_000);
    let login = app.login(&unique_email(), &megabyte).await;
    assert_eq!(error_code(&login), "UNAUTHENTICATED");
    let register = app
        .graphql(REGISTER, json!({ "input": { "email": format!("{megabyte}@example.com"), "password": PASSWORD } }))
        .await;
    assert_eq!(error_code(&register), "BAD_USER_INPUT");
    assert_eq!(
        only_error(&register).extensions.field.as_deref(),
        Some("email")
    );
}

#[tokio::test]
async fn only_json_bodies_are_accepted_so_a_cross_site_form_cannot_post() {
    let app = spawn_app().await;
    let body = r#"{"query":"mutation { logoutAll }"}"#;
    for content_type in [
        Some("text/plain"),
        Some("text/plain;charset=UTF-8"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        Some("application/graphql"),
        None,
    ] {
        let mut request = app.client.post(app.url("/graphql")).body(body);
        if let Some(content_type) = content_type {
            request = request.header(CONTENT_TYPE, content_type);
        }
        let response = request.send().await.unwrap();
        assert_eq!(
            response.status(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{content_type:?}"
        );
        let json: Value = response.json().await.unwrap();
        assert_eq!(error_code(&json), "GRAPHQL_PARSE_FAILED");
    }
    let accepted = app
        .client
        .post(app.url("/graphql"))
        .header(CONTENT_TYPE, "application/json; charset=utf-8")
        .body(r#"{"query":"{ __typename }"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status(), StatusCode::OK);
}

#[tokio::test]
async fn oversized_headers_are_refused_with_431() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.url("/health"))
        .header("x-padding", "p".repeat(40 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
    );
    let body: Value = response.json().await.unwrap();
    assert!(only_error(&body).message.contains("at most 32768"));
}

#[tokio::test]
async fn more_than_a_hundred_headers_are_refused_with_431_and_a_coded_body() {
    let app = spawn_app().await;
    let mut request = app.client.get(app.url("/health"));
    for i in 0..120 {
        request = request.header(format!("x-h{i}"), "1");
    }
    let response = request.send().await.unwrap();
    assert_eq!(
        response.status(),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(error_code(&body), "GRAPHQL_PARSE_FAILED");
    assert!(
        only_error(&body).message.contains("at most 100 headers"),
        "{body}"
    );

    // A hundred, with the client's own, still pass.
    let mut request = app.client.get(app.url("/health"));
    for i in 0..95 {
        request = request.header(format!("x-h{i}"), "1");
    }
    assert_eq!(request.send().await.unwrap().status(), StatusCode::OK);
}

#[tokio::test]
async fn a_thousand_headers_over_a_raw_socket_get_the_coded_body_too() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app().await;
    let host = app.address.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&host).await.unwrap();
    let mut head = format!("GET /health HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for i in 0..1000 {
        head += &format!("x-{i}: 1\r\n");
    }
    head += "\r\n";
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
        .await
        .unwrap()
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
    let body: Value = serde_json::from_str(body).unwrap_or_else(|_| panic!("{answer}"));
    assert_eq!(error_code(&body), "GRAPHQL_PARSE_FAILED");
}

#[tokio::test]
async fn a_panic_fails_that_request_alone() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.url("/__test/panic"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let body: Value = response.json().await.unwrap();
    assert_eq!(error_code(&body), "INTERNAL_SERVER_ERROR");
    assert_eq!(
        body["errors"][0]["extensions"]["requestId"],
        request_id.as_str()
    );
    assert!(
        !body.to_string().contains("injected"),
        "the panic message stays in the log"
    );
    // The server goes on serving.
    let health = app.client.get(app.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_request_past_the_timeout_is_answered_503_with_a_time_to_retry() {
    let app = spawn_app_with(|c| c.http.request_timeout = Duration::from_millis(200)).await;
    let response = app
        .client
        .get(app.url("/__test/slow/2000"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["retry-after"], "1");
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let body: Value = response.json().await.unwrap();
    assert_eq!(error_code(&body), "SERVICE_UNAVAILABLE");
    assert_eq!(only_error(&body).extensions.retry_after, Some(1));
    assert_eq!(
        body["errors"][0]["extensions"]["requestId"],
        request_id.as_str()
    );
    assert_eq!(
        only_error(&body).message,
        "The server did not finish this request within 0.2 seconds; try again."
    );
}

#[tokio::test]
async fn every_response_carries_security_headers_and_is_not_cached() {
    let app = spawn_app().await;
    for path in ["/graphql?query=%7B__typename%7D", "/health", "/nowhere"] {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        let headers = response.headers();
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(headers["x-frame-options"], "DENY", "{path}");
        assert_eq!(headers["referrer-policy"], "no-referrer", "{path}");
        assert_eq!(headers["cache-control"], "no-store", "{path}");
        assert!(headers.contains_key("content-security-policy"), "{path}");
        assert!(!headers.contains_key("strict-transport-security"), "{path}");
    }
    let hsts = spawn_app_with(|c| c.http.hsts = true).await;
    let response = hsts.client.get(hsts.url("/health")).send().await.unwrap();
    assert!(
        response.headers()["strict-transport-security"]
            .to_str()
            .unwrap()
            .starts_with("max-age=")
    );
}

async fn preflight(app: &crate::helpers::TestApp, origin: &str) -> reqwest::Response {
    app.client
        .request(reqwest::Method::OPTIONS, app.url("/graphql"))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "content-type,authorization",
        )
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn cors_allows_localhost_in_development_and_only_the_configured_origins_otherwise() {
    let dev = spawn_app().await;
    let ok = preflight(&dev, "http://localhost:5173").await;
    assert_eq!(
        ok.headers()["access-control-allow-origin"],
        "http://localhost:5173"
    );
    assert!(
        ok.headers()["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .contains("authorization")
    );
    let foreign = preflight(&dev, "https://evil.example").await;
    assert!(
        !foreign
            .headers()
            .contains_key("access-control-allow-origin")
    );

    let configured = spawn_app_with(|c| {
        c.browsers.cors_allowed_origins = vec!["https://app.example.com".into()]
    })
    .await;
    let ok = preflight(&configured, "https://app.example.com").await;
    assert_eq!(
        ok.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    let local = preflight(&configured, "http://localhost:3000").await;
    assert!(!local.headers().contains_key("access-control-allow-origin"));

    let production =
        spawn_app_with(|c| c.app_env = Some(authgraph::config::AppEnv::Production)).await;
    let none = preflight(&production, "http://localhost:3000").await;
    assert!(!none.headers().contains_key("access-control-allow-origin"));
    let _ = JWT_SECRET;
}

#[tokio::test]
async fn introspection_and_graphiql_can_be_turned_off() {
    let app = spawn_app_with(|c| {
        c.graphql.introspection = Some(false);
        c.graphql.graphiql = Some(false);
    })
    .await;
    let (status, body) = app
        .post_json(&json!({ "query": "{ __schema { queryType { name } } }" }))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        only_error(&body).message,
        "Introspection is turned off on this server; use the published schema.graphql."
    );
    let (status, body) = app.post_json(&json!({ "query": "{ __typename }" })).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"]["__typename"], "Query");
    let page = app
        .client
        .get(app.url("/graphql"))
        .header(ACCEPT, "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::NOT_FOUND);

    let production =
        spawn_app_with(|c| c.app_env = Some(authgraph::config::AppEnv::Production)).await;
    let (_, body) = production
        .post_json(&json!({ "query": "{ __type(name: \"User\") { name } }" }))
        .await;
    assert_eq!(
        error_code(&body),
        "GRAPHQL_VALIDATION_FAILED",
        "off by default in production"
    );
}

#[tokio::test]
async fn automatic_persisted_queries_round_trip_by_hash() {
    let app = spawn_app().await;
    let query = "{ __typename }";
    let hash = format!("{:x}", Sha256::digest(query.as_bytes()));
    let extensions = json!({ "persistedQuery": { "version": 1, "sha256Hash": hash } });

    let (_, unknown) = app.post_json(&json!({ "extensions": extensions })).await;
    assert_eq!(error_code(&unknown), "PERSISTED_QUERY_NOT_FOUND");
    assert_eq!(only_error(&unknown).message, "PersistedQueryNotFound");

    let (status, registered) = app
        .post_json(&json!({ "query": query, "extensions": extensions }))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(registered["data"]["__typename"], "Query");

    let (status, by_hash) = app.post_json(&json!({ "extensions": extensions })).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(by_hash["data"]["__typename"], "Query");
}

/// Signs in through the app with one extra header; returns the address its session recorded.
async fn session_ip(app: &crate::helpers::TestApp, header: (&str, &str)) -> Value {
    let email = unique_email();
    app.register(&email, PASSWORD).await;
    let login: Value = app
        .client
        .post(app.url("/graphql"))
        .header(header.0, header.1)
        .json(&json!({
            "query": "mutation($i: LoginInput!) { login(input: $i) { accessToken } }",
            "variables": { "i": { "email": email, "password": PASSWORD } },
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["data"]["login"]["accessToken"].as_str().unwrap();
    let sessions = app
        .graphql_as(
            token,
            "{ sessions(first: 1) { edges { node { ip } } } }",
            json!({}),
        )
        .await;
    sessions["data"]["sessions"]["edges"][0]["node"]["ip"].clone()
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_client_address_is_recorded() {
    let direct = spawn_app().await;
    assert_eq!(
        session_ip(&direct, ("x-forwarded-for", "198.51.100.23")).await,
        "127.0.0.1",
        "untrusted peers cannot claim an address"
    );
    let proxied = spawn_app_with(|c| {
        c.http.trusted_proxies =
            vec![authgraph::interfaces::http::parse_network("127.0.0.1").unwrap()]
    })
    .await;
    assert_eq!(
        session_ip(&proxied, ("x-forwarded-for", "198.51.100.23")).await,
        "198.51.100.23"
    );
}

#[tokio::test]
async fn forwarded_addresses_are_normalised_before_they_are_recorded() {
    let proxy = || vec![authgraph::interfaces::http::parse_network("127.0.0.1").unwrap()];
    let app = spawn_app_with(|c| c.http.trusted_proxies = proxy()).await;
    for (hops, client) in [
        ("198.51.100.23:4711", "198.51.100.23"),
        ("[2001:db8::23]:4711", "2001:db8::23"),
        ("::ffff:198.51.100.24", "198.51.100.24"),
    ] {
        assert_eq!(
            session_ip(&app, ("x-forwarded-for", hops)).await,
            client,
            "{hops}"
        );
    }
    // The standard header, when the proxies are said to use it; then X-Forwarded-For is the
    // client's word and means nothing.
    let app = spawn_app_with(|c| {
        c.http.trusted_proxies = proxy();
        c.http.trusted_proxy_header = authgraph::interfaces::http::ForwardedHeader::Forwarded;
    })
    .await;
    assert_eq!(
        session_ip(
            &app,
            ("forwarded", r#"for="[2001:db8::25]:4711";proto=https"#)
        )
        .await,
        "2001:db8::25"
    );
    assert_eq!(
        session_ip(&app, ("x-forwarded-for", "198.51.100.26")).await,
        "127.0.0.1"
    );
}
