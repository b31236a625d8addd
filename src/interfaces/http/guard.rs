//! Limits every request must pass, containment of panics, and the security headers of every
//! response.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use futures_util::FutureExt;

use crate::interfaces::graphql::error::code;

use super::HttpSettings;
use super::observe::RequestId;
use super::problem::{problem, unavailable};

/// Applies the header-size limit and the request timeout, turns a panic into an
/// `INTERNAL_SERVER_ERROR` for this request alone, and adds the security headers.
pub async fn guard(
    State(settings): State<Arc<HttpSettings>>,
    request: Request,
    next: Next,
) -> Response {
    let request_id = request
        .extensions()
        .get::<RequestId>()
        .map(|id| id.0.clone());
    let header_bytes = header_size(request.headers());
    let header_count = request.headers().len();
    let response = if header_count > MAX_HEADERS {
        problem(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            code::GRAPHQL_PARSE_FAILED,
            format!(
                "The request has {header_count} headers; at most {MAX_HEADERS} headers are accepted."
            ),
            None,
        )
    } else if header_bytes > settings.max_header_bytes {
        problem(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            code::GRAPHQL_PARSE_FAILED,
            format!(
                "The request headers are {header_bytes} bytes long; at most {} are accepted.",
                settings.max_header_bytes
            ),
            None,
        )
    } else {
        let handled = AssertUnwindSafe(next.run(request)).catch_unwind();
        match tokio::time::timeout(settings.request_timeout, handled).await {
            Ok(Ok(response)) => response,
            Ok(Err(panic)) => {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                tracing::error!(panic = %what, "a handler panicked; the request failed alone");
                internal(
                    request_id.as_deref(),
                    "Something went wrong on our side. Quote the requestId when reporting it.",
                )
            }
            Err(_) => {
                tracing::error!(
                    timeout_ms = settings.request_timeout.as_millis() as u64,
                    "request timed out"
                );
                // Try again, like any other momentary refusal: the request's work was
                // cancelled with it, and a transaction not yet committed rolls back.
                unavailable(
                    &format!(
                        "The server did not finish this request within {} seconds; try again.",
                        settings.request_timeout.as_secs_f32()
                    ),
                    1,
                    request_id.as_deref(),
                )
            }
        }
    };
    let mut response = coded(response, request_id.as_deref());
    secure(response.headers_mut(), settings.hsts);
    response
}

/// Most headers a request may carry. hyper's own cap is set far above it (`server.rs`), so a
/// request over this one gets the coded body here rather than hyper's bare 431.
pub const MAX_HEADERS: usize = 100;

/// Refusals the framework writes itself (an unknown path, a method the route does not take,
/// an extractor's rejection) come with no body or a plain-text one, whose text may name our
/// types: they get the coded body every other refusal has, keeping their status and headers
/// (`Allow` among them).
fn coded(response: Response, request_id: Option<&str>) -> Response {
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

fn internal(request_id: Option<&str>, message: &str) -> Response {
    problem(
        StatusCode::INTERNAL_SERVER_ERROR,
        code::INTERNAL_SERVER_ERROR,
        message,
        request_id,
    )
}

fn header_size(headers: &HeaderMap) -> usize {
    headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum()
}

/// Headers that make browsers treat responses as data only. Responses may hold tokens, so
/// nothing is cached unless a handler says otherwise (GraphiQL's assets do).
fn secure(headers: &mut HeaderMap, hsts: bool) {
    let defaults: [(HeaderName, &str); 5] = [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; frame-ancestors 'none'",
        ),
        (header::CACHE_CONTROL, "no-store"),
    ];
    for (name, value) in defaults {
        headers
            .entry(name)
            .or_insert(HeaderValue::from_static(value));
    }
    if hsts {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        );
    }
}

/// Requests held by `/__test/held/{key}`, by key: each is answered once its key is released.
#[cfg(feature = "test-hooks")]
static HELD: std::sync::LazyLock<
    std::sync::Mutex<std::collections::HashMap<String, tokio::sync::watch::Sender<bool>>>,
> = std::sync::LazyLock::new(Default::default);

#[cfg(feature = "test-hooks")]
fn held(key: &str) -> tokio::sync::watch::Receiver<bool> {
    HELD.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .entry(key.to_owned())
        .or_insert_with(|| tokio::sync::watch::channel(false).0)
        .subscribe()
}

/// Answers every request held under `key`, now and later (test builds only).
#[cfg(feature = "test-hooks")]
pub fn release_held(key: &str) {
    HELD.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .entry(key.to_owned())
        .or_insert_with(|| tokio::sync::watch::channel(false).0)
        .send_replace(true);
}

/// Routes that exist only in test builds (feature `test-hooks`): a handler that panics, one
/// that is slow and one that waits until the test lets it go, to prove containment, timeouts,
/// limits and graceful shutdown.
#[cfg(feature = "test-hooks")]
pub fn test_hooks() -> axum::Router<super::AppState> {
    use axum::routing::get;
    axum::Router::new()
        .route(
            "/__test/held/{key}",
            get(
                |axum::extract::Path(key): axum::extract::Path<String>| async move {
                    let _ = held(&key).wait_for(|released| *released).await;
                    "released"
                },
            ),
        )
        .route(
            "/__test/panic",
            get(|| async {
                panic!("injected by a test");
                #[allow(unreachable_code)]
                ""
            }),
        )
        .route(
            "/__test/slow/{millis}",
            get(
                |axum::extract::Path(millis): axum::extract::Path<u64>| async move {
                    // What a test in another process waits for before it acts on the
                    // request in flight (a shutdown signal, say), instead of guessing a delay.
                    tracing::info!("slow test request started");
                    tokio::time::sleep(std::time::Duration::from_millis(millis)).await;
                    "done"
                },
            ),
        )
}
