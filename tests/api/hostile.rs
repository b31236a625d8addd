//! Hostile documents and requests, one at a time, against the real server: each is answered
//! with a 4xx or a GraphQL error with a code, the server stays healthy, and nothing of what
//! was sent is kept (persisted queries, metric series).

use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::helpers::{
    PASSWORD, TestApp, metric_value, only_error, spawn_app, spawn_app_with, unique_email,
};

const PARSE: &[&str] = &["GRAPHQL_PARSE_FAILED"];
const VALIDATION: &[&str] = &["GRAPHQL_VALIDATION_FAILED"];
/// Anything a client may be told, short of an internal error.
const ANY_CLIENT_ERROR: &[&str] = &[
    "GRAPHQL_PARSE_FAILED",
    "GRAPHQL_VALIDATION_FAILED",
    "BAD_USER_INPUT",
    "UNAUTHENTICATED",
];

fn query(document: &str) -> String {
    json!({ "query": document }).to_string()
}

/// The codes of the answer's errors; there is at least one, and every error has a code.
fn codes(body: &Value) -> Vec<String> {
    let errors = body["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("expected errors: {body:.300}"));
    assert!(!errors.is_empty(), "an empty list of errors: {body:.300}");
    errors
        .iter()
        .map(|e| {
            e["extensions"]["code"]
                .as_str()
                .unwrap_or_else(|| panic!("an error without a code: {e}"))
                .to_owned()
        })
        .collect()
}

async fn assert_healthy(app: &TestApp) {
    let health = app.client.get(app.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let (status, body) = app.post_body(query("{ __typename }")).await;
    assert_eq!(
        (status, &body["data"]["__typename"]),
        (StatusCode::OK, &json!("Query"))
    );
}

/// `count` fragments, each spreading the next one twice: 2^count fields once expanded.
fn fan_out(count: usize) -> String {
    let mut document = String::from("query { ...F0 }");
    for i in 0..count {
        document += &format!(
            " fragment F{i} on Query {{ __typename ...F{n} ...F{n} }}",
            n = i + 1
        );
    }
    document + &format!(" fragment F{count} on Query {{ __typename }}")
}

fn nested(open: &str, middle: &str, close: &str, depth: usize) -> String {
    format!("{}{middle}{}", open.repeat(depth), close.repeat(depth))
}

/// Each attack, what it sends, and the codes it may be answered with.
fn corpus() -> Vec<(&'static str, String, &'static [&'static str])> {
    let distinct_fields: Vec<String> = (0..90_000).map(|i| format!("f{i}")).collect();
    vec![
        (
            "a fragment spreading itself",
            query("query { ...A } fragment A on Query { __typename ...A }"),
            VALIDATION,
        ),
        (
            "two fragments spreading each other",
            query(
                "query { ...A } fragment A on Query { __typename ...B } fragment B on Query { ...A }",
            ),
            VALIDATION,
        ),
        (
            "a cycle inside introspection",
            query("{ __schema { types { ...T } } } fragment T on __Type { name ofType { ...T } }"),
            VALIDATION,
        ),
        (
            "a cycle in a fragment no operation uses",
            query("{ __typename } fragment A on Query { ...B } fragment B on Query { ...A }"),
            VALIDATION,
        ),
        (
            "exponential fragment fan-out",
            query(&fan_out(40)),
            VALIDATION,
        ),
        (
            "fan-out just past the field limit",
            query(&fan_out(15)),
            VALIDATION,
        ),
        (
            "a megabyte of distinct root fields",
            query(&format!("{{ {} }}", distinct_fields[..90_000].join(" "))),
            PARSE,
        ),
        (
            "ninety thousand repeated fields",
            query(&format!("{{ {} }}", "__typename ".repeat(90_000))),
            PARSE,
        ),
        (
            "thousands of repeated fields under the token limit",
            query(&format!("{{ me {{ {} }} }}", "id ".repeat(14_000))),
            ANY_CLIENT_ERROR,
        ),
        (
            "deep selection nesting",
            query(&nested("{ me ", "", " }", 10_000)),
            PARSE,
        ),
        (
            "a deep list literal",
            query(&format!(
                "{{ user(id: {}) {{ id }} }}",
                nested("[", "1", "]", 100_000)
            )),
            PARSE,
        ),
        (
            "a deep object literal",
            query(&format!(
                "{{ user(id: {}) {{ id }} }}",
                nested("{a: ", "1", "}", 50_000)
            )),
            PARSE,
        ),
        (
            "a deep list type in a variable definition",
            query(&format!(
                "query($v: {}) {{ __typename }}",
                nested("[", "Int", "]", 50_000)
            )),
            PARSE,
        ),
        (
            "deeply nested JSON variables",
            format!(
                r#"{{"query":"query($v: ID!) {{ user(id: $v) {{ id }} }}","variables":{{"v":{}}}}}"#,
                nested("[", "1", "]", 10_000)
            ),
            PARSE,
        ),
        (
            "thousands of directives on one field",
            query(&format!(
                "{{ __typename {} }}",
                "@skip(if: false) ".repeat(2_000)
            )),
            VALIDATION,
        ),
        (
            "thousands of operations in one document",
            query(
                &(0..5_000)
                    .map(|i| format!("query Q{i} {{ __typename }} "))
                    .collect::<String>(),
            ),
            PARSE,
        ),
        (
            "a huge string",
            query(&format!(
                "{{ user(id: \"{}\") {{ id }} }}",
                "x".repeat(900_000)
            )),
            ANY_CLIENT_ERROR,
        ),
        (
            "a huge number",
            query(&format!(
                "{{ users(first: 1{}) {{ totalCount }} }}",
                "0".repeat(900_000)
            )),
            ANY_CLIENT_ERROR,
        ),
        (
            "control characters and broken escapes",
            query("{ user(id: \"\\uD800\u{0}\") { id } } \u{0} \"\\q"),
            PARSE,
        ),
    ]
}

#[tokio::test]
async fn every_hostile_document_is_refused_with_a_code_and_the_server_stays_healthy() {
    // Past the default body limit most of these are refused with 413 unread; a deployment
    // that raises the limit to 1 MiB must still refuse each of them for what it is.
    let app = spawn_app_with(|config| config.http.http_max_body_bytes = 1024 * 1024).await;
    for (attack, body, expected) in corpus() {
        let (status, answer) = app.post_body(body).await;
        assert!(
            status.is_client_error() || status == StatusCode::OK,
            "{attack}: status {status}"
        );
        assert!(answer["errors"].is_array(), "{attack}: {answer:.300}");
        for code in codes(&answer) {
            assert!(
                expected.contains(&code.as_str()),
                "{attack}: {code} in {answer:.500}"
            );
        }
        assert_healthy(&app).await;
    }
}

#[tokio::test]
async fn each_limit_names_itself() {
    // Past the default body limit (32 KiB) this would be a 413 unread; with the limit raised,
    // the input itself must be handled.
    let app = spawn_app_with(|c| c.http.http_max_body_bytes = 2 * 1024 * 1024).await;
    let (_, tokens) = app
        .post_body(query(&format!("{{ {} }}", "__typename ".repeat(20_000))))
        .await;
    assert_eq!(
        only_error(&tokens).message,
        "The document has more than 15000 tokens; at most 15000 are allowed."
    );
    let (_, nesting) = app
        .post_body(query(&format!(
            "{{ user(id: {}) }}",
            nested("[", "1", "]", 200)
        )))
        .await;
    assert_eq!(
        only_error(&nesting).message,
        "The document nests brackets more than 128 deep; at most 128 levels are allowed."
    );
    let (_, directives) = app
        .post_body(query(&format!(
            "{{ __typename {} }}",
            "@skip(if: false) ".repeat(11)
        )))
        .await;
    assert_eq!(
        only_error(&directives).message,
        "A selection carries 11 directives; at most 10 are allowed."
    );
    let (_, cycle) = app
        .post_body(query("query { ...A } fragment A on Query { ...A }"))
        .await;
    assert_eq!(
        only_error(&cycle).message,
        "Cannot spread fragment \"A\" within itself."
    );
    let (_, fan) = app.post_body(query(&fan_out(40))).await;
    assert_eq!(
        only_error(&fan).message,
        "The document selects more than 20000 fields once its fragments are expanded; at most \
         20000 are allowed."
    );
}

#[tokio::test]
async fn the_parser_limits_are_configurable_and_graphiqls_introspection_fits_the_defaults() {
    let app = spawn_app_with(|config| {
        config.graphql.graphql_max_tokens = 5;
        config.graphql.graphql_max_nesting = 2;
    })
    .await;
    let (status, body) = app.post_body(query("{ me { id email } }")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(codes(&body), ["GRAPHQL_PARSE_FAILED"]);

    let app = spawn_app().await;
    let (status, body) = app.post_body(query(GRAPHIQL_INTROSPECTION)).await;
    assert_eq!(status, StatusCode::OK, "{body:.500}");
    assert!(body["data"]["__schema"]["types"].as_array().unwrap().len() > 10);
}

async fn metric_series(app: &TestApp) -> Vec<String> {
    let text = app.metrics_text().await;
    text.lines()
        .filter(|line| line.starts_with("authgraph_graphql_requests_total{"))
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn metric_labels_come_from_the_schema_never_from_the_client() {
    let app = spawn_app().await;
    app.post_body(query("{ __typename }")).await;
    for i in 0..300 {
        let body = json!({ "query": format!("query Name{i} {{ field{i} }}"), "operationName": format!("Name{i}") });
        let (_, answer) = app.post_body(body.to_string()).await;
        assert_eq!(codes(&answer), ["GRAPHQL_VALIDATION_FAILED"]);
    }
    let series = metric_series(&app).await;
    assert!(
        series
            .iter()
            .all(|s| !s.contains("field") && !s.contains("Name")),
        "{series:#?}"
    );
    assert!(
        series.iter().any(|s| s.contains(r#"operation="invalid""#)),
        "{series:#?}"
    );
    assert!(series.len() <= 3, "{series:#?}");
}

fn persisted(document: &str) -> String {
    let hash = format!("{:x}", Sha256::digest(document.as_bytes()));
    json!({
        "query": document,
        "extensions": { "persistedQuery": { "version": 1, "sha256Hash": hash } },
    })
    .to_string()
}

fn by_hash(document: &str) -> String {
    let hash = format!("{:x}", Sha256::digest(document.as_bytes()));
    json!({ "extensions": { "persistedQuery": { "version": 1, "sha256Hash": hash } } }).to_string()
}

async fn gauge(app: &TestApp, name: &str) -> f64 {
    metric_value(&app.metrics_text().await, name)
}

#[tokio::test]
async fn persisted_queries_keep_only_documents_that_validated() {
    // Documents this large pass only a raised body limit (the default refuses them unread).
    let app = spawn_app_with(|config| config.http.http_max_body_bytes = 1024 * 1024).await;
    // 900 KB documents that parse but never validate, each sent with its hash. Each is looked
    // up at once and the store's size is exact, so three catch any caching as surely as the
    // thirty of the incident did (this test counts bytes kept, not the server's memory).
    for i in 0..3 {
        let document = format!("{{ nothing{i}(s: \"{}\") }}", "x".repeat(900_000));
        let (_, answer) = app.post_body(persisted(&document)).await;
        assert_eq!(codes(&answer), ["GRAPHQL_VALIDATION_FAILED"]);
        let (_, again) = app.post_body(by_hash(&document)).await;
        assert_eq!(codes(&again), ["PERSISTED_QUERY_NOT_FOUND"]);
    }
    assert_eq!(gauge(&app, "authgraph_persisted_query_bytes").await, 0.0);

    // A hash that does not match its document is refused, and nothing is kept.
    let body = json!({
        "query": "{ __typename }",
        "extensions": { "persistedQuery": { "version": 1, "sha256Hash": "0".repeat(64) } },
    });
    let (_, answer) = app.post_body(body.to_string()).await;
    assert_eq!(codes(&answer), ["GRAPHQL_VALIDATION_FAILED"]);
    assert_eq!(gauge(&app, "authgraph_persisted_queries").await, 0.0);
}

#[tokio::test]
async fn the_persisted_query_store_is_bounded_in_bytes() {
    let app = spawn_app_with(|config| config.graphql.apq_cache_bytes = 10_000).await;
    for i in 0..20 {
        // Valid documents of ~3 KB each (a comment makes them long).
        let document = format!("{{ __typename }} # {i} {}", "x".repeat(3_000));
        let (status, _) = app.post_body(persisted(&document)).await;
        assert_eq!(status, StatusCode::OK);
        let (_, by_hash) = app.post_body(by_hash(&document)).await;
        assert_eq!(by_hash["data"]["__typename"], "Query");
    }
    let bytes = gauge(&app, "authgraph_persisted_query_bytes").await;
    assert!(bytes > 0.0 && bytes <= 10_000.0, "{bytes}");
    assert_eq!(gauge(&app, "authgraph_persisted_queries").await, 3.0);
}

#[tokio::test]
async fn without_persisted_queries_a_hash_alone_is_told_they_are_not_supported() {
    let app = spawn_app_with(|config| config.graphql.apq_cache_size = 0).await;
    let (_, answer) = app.post_body(by_hash("{ __typename }")).await;
    assert_eq!(codes(&answer), ["PERSISTED_QUERY_NOT_SUPPORTED"]);
    let (status, answer) = app.post_body(persisted("{ __typename }")).await;
    assert_eq!(
        (status, &answer["data"]["__typename"]),
        (StatusCode::OK, &json!("Query"))
    );
}

/// What GraphiQL sends when it opens (graphiql 3, with descriptions and repeatable directives).
const GRAPHIQL_INTROSPECTION: &str = r#"
query IntrospectionQuery {
  __schema {
    queryType { name }
    mutationType { name }
    subscriptionType { name }
    types { ...FullType }
    directives { name description locations isRepeatable args(includeDeprecated: true) { ...InputValue } }
  }
}
fragment FullType on __Type {
  kind name description specifiedByURL
  fields(includeDeprecated: true) {
    name description
    args(includeDeprecated: true) { ...InputValue }
    type { ...TypeRef }
    isDeprecated deprecationReason
  }
  inputFields(includeDeprecated: true) { ...InputValue }
  interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
  possibleTypes { ...TypeRef }
}
fragment InputValue on __InputValue {
  name description type { ...TypeRef } defaultValue isDeprecated deprecationReason
}
fragment TypeRef on __Type {
  kind name
  ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name
    ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } } } }
}
"#;

/// Misspelt names: a field, a mutation and an argument.
const MISSPELT: [&str; 3] = [
    "{ userz { id } }",
    "mutation { resetUserMfaa(input: {userId: \"x\"}) { id } }",
    "{ users(firs: 1) { totalCount } }",
];

#[tokio::test]
async fn suggestions_name_the_schema_only_while_introspection_is_on() {
    let development = spawn_app().await;
    for (document, hint) in MISSPELT
        .iter()
        .zip(["\"users\"", "\"resetUserMfa\"", "\"first\""])
    {
        let (status, body) = development.post_body(query(document)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{document}");
        let message = only_error(&body).message;
        assert!(
            message.contains("Did you mean") && message.contains(hint),
            "{document}: {message}"
        );
    }

    let closed = spawn_app_with(|c| c.graphql.introspection = Some(false)).await;
    for document in MISSPELT {
        let (status, body) = closed.post_body(query(document)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{document}");
        assert_eq!(codes(&body), ["GRAPHQL_VALIDATION_FAILED"], "{document}");
        let message = only_error(&body).message;
        assert!(!message.contains("Did you mean"), "{document}: {message}");
    }
}

fn register_document(input: &str) -> String {
    format!("mutation {{ register(input: {input}) {{ user {{ email }} }} }}")
}

#[tokio::test]
async fn an_input_field_written_twice_is_refused_wherever_the_object_is() {
    let app = spawn_app().await;
    let (first, second) = (unique_email(), unique_email());
    let twice = format!(r#"{{email: "{first}", password: "{PASSWORD}", email: "{second}"}}"#);
    let documents = [
        register_document(&twice),
        // In a variable's default value, and in another field's argument.
        format!(
            "mutation($input: RegisterInput! = {twice}) {{ register(input: $input) {{ user {{ email }} }} }}"
        ),
        r#"{ users(filter: {role: USER, emailContains: "a", emailContains: "b"}) { totalCount } }"#
            .to_owned(),
    ];
    for document in &documents {
        let (status, body) = app.post_body(query(document)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{document}: {body}");
        assert_eq!(codes(&body), ["GRAPHQL_VALIDATION_FAILED"], "{document}");
        assert!(body.get("data").is_none(), "nothing ran: {body}");
    }
    let (_, body) = app.post_body(query(&documents[0])).await;
    assert_eq!(
        only_error(&body).message,
        "There can be only one input field named \"email\"."
    );
    assert_eq!(body["errors"][0]["locations"][0]["line"], 1);
    // Neither address was registered.
    let answer = app.login(&second, PASSWORD).await;
    assert_eq!(crate::helpers::error_code(&answer), "UNAUTHENTICATED");

    // The same name in two objects, or inside a string, is no repeat.
    let fine = register_document(&format!(
        r#"{{email: "{first}", password: "{PASSWORD}", displayName: "{{email: \"x\", email: \"y\"}}"}}"#
    ));
    let (status, body) = app.post_body(query(&fine)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["register"]["user"]["email"], first.as_str());
}

#[tokio::test]
async fn a_json_key_given_twice_anywhere_in_the_request_is_refused() {
    let app = spawn_app().await;
    let (first, second) = (unique_email(), unique_email());
    let document =
        "mutation($input: RegisterInput!) { register(input: $input) { user { email } } }";
    let bodies = [
        format!(
            r#"{{"query": {document:?}, "variables": {{"input": {{"email": "{first}", "password": "{PASSWORD}", "email": "{second}"}}}}}}"#
        ),
        format!(
            r#"{{"query": {document:?}, "variables": {{"input": {{"email": "{first}", "password": "{PASSWORD}"}}, "input": {{"email": "{second}", "password": "{PASSWORD}"}}}}}}"#
        ),
        r#"{"query": "{ __typename }", "variables": {"a": [{"b": 1, "b": 2}]}}"#.to_owned(),
        r#"{"query": "{ __typename }", "extensions": {"x": {"y": 1, "y": 1}}}"#.to_owned(),
        r#"{"query": "{ __typename }", "query": "{ __typename }"}"#.to_owned(),
        r#"{"query": "{ __typename }", "unknown": 1, "unknown": 2}"#.to_owned(),
    ];
    for body in &bodies {
        let (status, answer) = app.post_body(body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        assert_eq!(codes(&answer), ["GRAPHQL_PARSE_FAILED"], "{body}");
        let message = only_error(&answer).message;
        assert!(message.contains("twice"), "{body}: {message}");
    }
    let answer = app.login(&second, PASSWORD).await;
    assert_eq!(crate::helpers::error_code(&answer), "UNAUTHENTICATED");

    // Over GET too.
    let response = app
        .client
        .get(app.url("/graphql"))
        .query(&[
            ("query", "query($a: Int) { __typename }"),
            ("variables", r#"{"a": 1, "a": 2}"#),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(codes(&answer), ["GRAPHQL_PARSE_FAILED"]);
}

#[tokio::test]
async fn a_json_body_nested_past_the_reader_s_depth_is_refused_without_harm() {
    // Past the default body limit (32 KiB) this would be a 413 unread; with the limit raised,
    // the input itself must be handled.
    let app = spawn_app_with(|c| c.http.http_max_body_bytes = 2 * 1024 * 1024).await;
    let deep = format!(
        r#"{{"query": "{{ __typename }}", "variables": {{"a": {}1{}}}}}"#,
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let (status, body) = app.post_body(deep).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(codes(&body), ["GRAPHQL_PARSE_FAILED"]);
    let objects = format!(
        r#"{{"query": "{{ __typename }}", "extensions": {}1{}}}"#,
        r#"{"a":"#.repeat(100_000),
        "}".repeat(100_000)
    );
    let (status, _) = app.post_body(objects).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_healthy(&app).await;
}

#[tokio::test]
async fn every_json_array_is_refused_as_a_batch_even_in_the_tuple_form() {
    let app = spawn_app().await;
    for body in [
        json!(["query A { __typename } query B { me { id } }", "A"]),
        json!(["{ __typename }"]),
        json!([{ "query": "{ __typename }" }]),
        json!([]),
    ] {
        let (status, answer) = app.post_body(body.to_string()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(codes(&answer), ["GRAPHQL_PARSE_FAILED"], "{body}");
        assert_eq!(
            only_error(&answer).message,
            "Batched requests are not supported: send one operation per request.",
            "{body}"
        );
        assert!(answer.get("data").is_none());
    }
    // Leading white space changes nothing.
    let (status, _) = app.post_body(" \n\t[\"{ __typename }\"]".to_owned()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}
