//! A refusal at the HTTP level, shaped like any GraphQL error so clients handle it the same.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

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
