//! What tower-http's layers (stacked in `mod.rs`) leave to us: the header limits, a panic's
//! log line, and a coded body in GraphQL shape for every refusal that comes without one (the
//! framework's own, a timed-out request, a panic).

use std::any::Any;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tower_http::catch_panic::ResponseForPanic;
use tower_http::request_id::RequestId;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::interfaces::graphql::error::code;

use super::HttpSettings;
use super::observe::id_text;
use super::problem::{problem, unavailable};

/// Applies the header limits, and gives every refusal without a body of ours the coded one.
pub async fn guard(
    State(settings): State<Arc<HttpSettings>>,
    request: Request,
    next: Next,
) -> Response {
    let request_id = request.extensions().get::<RequestId>().cloned();
    let request_id = request_id.as_ref().map(id_text);
    let header_count = request.headers().len();
    if header_count > MAX_HEADERS {
        return problem(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            code::GRAPHQL_PARSE_FAILED,
            format!(
                "The request has {header_count} headers; at most {MAX_HEADERS} headers are accepted."
            ),
            None,
        );
    }
    let header_bytes = header_size(request.headers());
    if header_bytes > settings.max_header_bytes {
        return problem(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            code::GRAPHQL_PARSE_FAILED,
            format!(
                "The request headers are {header_bytes} bytes long; at most {} are accepted.",
                settings.max_header_bytes
            ),
            None,
        );
    }
    coded(next.run(request).await, request_id, &settings)
}

/// Most headers a request may carry. hyper's own cap is set far above it (`server.rs`), so a
/// request over this one gets the coded body here rather than hyper's bare 431.
pub const MAX_HEADERS: usize = 100;

/// Refusals without a body of ours get the coded body every other refusal has, keeping their
/// status and headers (`Allow` among them): those the framework writes itself (an unknown
/// path, a method the route does not take, an extractor's rejection), with no body or a
/// plain-text one whose text may name our types; tower-http's timeout (a bare 503); and a
/// panic (a bare 500, from [`Panicked`]).
fn coded(response: Response, request_id: Option<&str>, settings: &HttpSettings) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let plain = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v.starts_with("text/plain"));
    if !plain {
        return response;
    }
    if status == StatusCode::SERVICE_UNAVAILABLE {
        // Every 503 of ours has its body: this is the timeout layer's.
        tracing::error!(
            timeout_ms = settings.request_timeout.as_millis() as u64,
            "request timed out"
        );
        // Try again, like any other momentary refusal: the request's work was cancelled with
        // it, and a transaction not yet committed rolls back.
        return unavailable(
            &format!(
                "The server did not finish this request within {} seconds; try again.",
                settings.request_timeout.as_secs_f32()
            ),
            1,
            request_id,
        );
    }
    let (code, message, request_id) = match status {
        StatusCode::NOT_FOUND => (
            code::NOT_FOUND,
            "There is nothing at this path; the API is at /graphql.",
            None,
        ),
        StatusCode::METHOD_NOT_ALLOWED => (
            code::GRAPHQL_PARSE_FAILED,
            "This path does not take this method; the Allow header lists those it takes.",
            None,
        ),
        status if status.is_server_error() => (
            code::INTERNAL_SERVER_ERROR,
            "Something went wrong on our side. Quote the requestId when reporting it.",
            request_id,
        ),
        _ => (
            code::GRAPHQL_PARSE_FAILED,
            "The request cannot be read.",
            None,
        ),
    };
    let (mut parts, _) = response.into_parts();
    let (coded, body) = problem(status, code, message, request_id).into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    if let Some(content_type) = coded.headers.get(header::CONTENT_TYPE) {
        parts
            .headers
            .insert(header::CONTENT_TYPE, content_type.clone());
    }
    Response::from_parts(parts, body)
}

fn header_size(headers: &HeaderMap) -> usize {
    headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum()
}

/// A handler panicked: its message goes to the log, and the client gets a bare 500 that
/// [`guard`] answers with the coded body and the request id. The request fails alone.
#[derive(Clone, Copy)]
pub struct Panicked;

impl ResponseForPanic for Panicked {
    type ResponseBody = Body;

    fn response_for_panic(&mut self, panic: Box<dyn Any + Send + 'static>) -> Response {
        let what = panic
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
            .unwrap_or_default();
        tracing::error!(panic = %what, "a handler panicked; the request failed alone");
        StatusCode::INTERNAL_SERVER_ERROR.into_response()
    }
}

/// A header every response gets unless its handler set it: the security headers make browsers
/// treat responses as data only, and as responses may hold tokens, nothing is cached unless a
/// handler says otherwise (GraphiQL's assets do).
pub fn default_header(
    name: HeaderName,
    value: &'static str,
) -> SetResponseHeaderLayer<HeaderValue> {
    SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value))
}

/// `Strict-Transport-Security` on every response when `hsts` (behind HTTPS only).
pub fn hsts(hsts: bool) -> SetResponseHeaderLayer<Option<HeaderValue>> {
    SetResponseHeaderLayer::overriding(
        header::STRICT_TRANSPORT_SECURITY,
        hsts.then(|| HeaderValue::from_static("max-age=31536000; includeSubDomains")),
    )
}
