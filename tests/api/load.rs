//! Floods of connections, slow clients and large bodies: refused fast with 503 and
//! `Retry-After` (or a closed connection), never queued without bound, with the probes still
//! answering.

use std::time::Duration;

use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{TestApp, only_error, spawn_app_with};

fn host(app: &TestApp) -> String {
    app.address.trim_start_matches("http://").to_owned()
}

/// Waits (at most a minute) for the server to close `stream`; returns what it sent first.
async fn closed_by_server(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(60), stream.read_to_end(&mut received));
    match read.await {
        Ok(_) => String::from_utf8_lossy(&received).into_owned(),
        Err(_) => panic!("the server kept a silent connection open"),
    }
}

async fn assert_unavailable(response: reqwest::Response) {
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["retry-after"], "1");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        body["errors"][0]["extensions"]["code"],
        "SERVICE_UNAVAILABLE"
    );
    assert_eq!(only_error(&body).extensions.retry_after, Some(1));
}

async fn health(app: &TestApp) -> StatusCode {
    // A client of its own: a new connection.
    let response = reqwest::Client::new()
        .get(app.url("/health"))
        .send()
        .await
        .unwrap();
    response.status()
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_disconnected() {
    let app =
        spawn_app_with(|c| c.http.http_header_read_timeout = Duration::from_millis(300)).await;
    let mut slow = TcpStream::connect(host(&app)).await.unwrap();
    slow.write_all(b"POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Ty")
        .await
        .unwrap();
    closed_by_server(&mut slow).await;

    // So is a keep-alive connection that goes quiet after a request.
    let mut idle = TcpStream::connect(host(&app)).await.unwrap();
    idle.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let answer = closed_by_server(&mut idle).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(health(&app).await, StatusCode::OK);
}

#[tokio::test]
async fn past_the_connection_limit_requests_get_503_and_the_probes_still_answer() {
    let app = spawn_app_with(|c| c.http.http_max_connections = 2).await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(host(&app)).await.unwrap();
        // A whole request, so the connection is surely accepted and being served.
        stream
            .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut first = [0; 12];
        stream.read_exact(&mut first).await.unwrap();
        held.push(stream);
    }
    let response = reqwest::Client::new()
        .post(app.url("/graphql"))
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .unwrap();
    assert_unavailable(response).await;
    assert_eq!(health(&app).await, StatusCode::OK);

    drop(held);
    // Once connections close, requests are served again.
    let mut served = false;
    for _ in 0..100 {
        let response = reqwest::Client::new()
            .post(app.url("/graphql"))
            .json(&json!({ "query": "{ __typename }" }))
            .send()
            .await
            .unwrap();
        if response.status() == StatusCode::OK {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(served);
}

#[tokio::test]
async fn past_the_requests_in_flight_new_ones_get_503_and_the_probes_still_answer() {
    let app = spawn_app_with(|c| c.http.http_max_in_flight = 2).await;
    let key = uuid::Uuid::new_v4().to_string();
    let slow: Vec<_> = (0..2)
        .map(|_| {
            let client = reqwest::Client::new();
            let url = app.url(&format!("/__test/held/{key}"));
            tokio::spawn(async move { client.get(url).send().await.unwrap().status() })
        })
        .collect();
    // Until both held requests hold their places, a third may still get in.
    let mut refused = None;
    for _ in 0..200 {
        let response = reqwest::Client::new()
            .post(app.url("/graphql"))
            .json(&json!({ "query": "{ __typename }" }))
            .send()
            .await
            .unwrap();
        if response.status() == StatusCode::SERVICE_UNAVAILABLE {
            refused = Some(response);
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_unavailable(refused.expect("a request past the limit is refused")).await;
    assert_eq!(health(&app).await, StatusCode::OK);
    let ready = reqwest::Client::new()
        .get(app.url("/ready"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    authgraph::interfaces::http::release_held(&key);
    for status in join_all(slow).await {
        assert_eq!(status.unwrap(), StatusCode::OK);
    }
}

#[tokio::test]
async fn a_hundred_concurrent_one_megabyte_bodies_stay_within_the_body_budget() {
    // One-megabyte bodies pass only a raised body limit (the default refuses them unread).
    let app = spawn_app_with(|c| {
        c.http.http_body_budget_bytes = 4 * 1024 * 1024;
        c.http.http_max_body_bytes = 1024 * 1024;
    })
    .await;
    let body =
        json!({ "query": format!("{{ user(id: \"{}\") {{ id }} }}", "x".repeat(1_000_000)) })
            .to_string();
    let answers = join_all((0..100).map(|_| {
        let request = reqwest::Client::new()
            .post(app.url("/graphql"))
            .header("content-type", "application/json")
            .body(body.clone())
            .send();
        async move {
            let response = request.await.unwrap();
            let status = response.status();
            let body: serde_json::Value = response.json().await.unwrap();
            (
                status,
                body["errors"][0]["extensions"]["code"]
                    .as_str()
                    .map(str::to_owned),
            )
        }
    }))
    .await;
    let refused = answers
        .iter()
        .filter(|(status, _)| *status == StatusCode::SERVICE_UNAVAILABLE)
        .count();
    for (status, code) in &answers {
        match *status {
            StatusCode::SERVICE_UNAVAILABLE => {
                assert_eq!(code.as_deref(), Some("SERVICE_UNAVAILABLE"))
            }
            StatusCode::OK => assert_ne!(code.as_deref(), Some("INTERNAL_SERVER_ERROR")),
            other => panic!("unexpected status {other}"),
        }
    }
    assert!(refused > 0, "100 MB of bodies do not fit a 4 MiB budget");
    assert!(refused < 100, "some bodies fit");
    assert_eq!(health(&app).await, StatusCode::OK);
}
