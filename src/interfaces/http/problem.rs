//! A refusal at the HTTP level, shaped like any GraphQL error so clients handle it the same.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::interfaces::graphql::error::code;

/// A response `{"errors": [{"message", "extensions": {"code", "requestId"?}}]}`.
pub fn problem(
    status: StatusCode,
    code: &str,
    message: impl Into<String>,
    request_id: Option<&str>,
) -> Response {
    let mut extensions = json!({ "code": code });
    if let Some(id) = request_id {
        extensions["requestId"] = json!(id);
    }
    let body = json!({ "errors": [{ "message": message.into(), "extensions": extensions }] });
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        )],
        body.to_string(),
    )
        .into_response()
}

/// 503 with `Retry-After`: the server is busy, a dependency is down or the request ran out
/// of time, and the client should try again after `retry_after_secs`.
pub fn unavailable(message: &str, retry_after_secs: u64, request_id: Option<&str>) -> Response {
    let mut extensions =
        json!({ "code": code::SERVICE_UNAVAILABLE, "retryAfter": retry_after_secs });
    if let Some(id) = request_id {
        extensions["requestId"] = json!(id);
    }
    let body = json!({ "errors": [{ "message": message, "extensions": extensions }] });
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json; charset=utf-8"),
            ),
            (header::RETRY_AFTER, HeaderValue::from(retry_after_secs)),
        ],
        body.to_string(),
    )
        .into_response()
}
