//! One span and one log line per request, tagged with a request id that is also returned to
//! the client (`x-request-id`) and quoted in internal errors: tower-http's request-id and
//! trace layers, told what to name and what to record.

use std::time::Duration;

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, Method, Response};
use tower_http::classify::{ServerErrorsAsFailures, SharedClassifier};
use tower_http::request_id::{MakeRequestId, RequestId};
use tower_http::trace::{MakeSpan, OnResponse, TraceLayer};
use tracing::Span;
use uuid::Uuid;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The id is always generated here, never taken from the client (whose header is dropped
/// before `SetRequestId` looks for one), so log lines cannot be forged or made to collide.
#[derive(Clone, Copy)]
pub struct NewRequestId;

impl MakeRequestId for NewRequestId {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        let mut text = [0; uuid::fmt::Hyphenated::LENGTH];
        let id = Uuid::now_v7().hyphenated().encode_lower(&mut text);
        HeaderValue::from_str(id).ok().map(RequestId::new)
    }
}

/// Drops an `x-request-id` the client sent.
pub fn forget_client_id(mut request: Request) -> Request {
    request.headers_mut().remove(REQUEST_ID);
    request
}

/// The request's id as text (it is a UUID, so always visible ASCII).
pub fn id_text(id: &RequestId) -> &str {
    id.header_value().to_str().unwrap_or_default()
}

/// The span and the closing log line of every request; nothing logged when it starts.
pub type Trace =
    TraceLayer<SharedClassifier<ServerErrorsAsFailures>, RequestSpan, (), Finished, (), (), ()>;

pub fn trace() -> Trace {
    TraceLayer::new_for_http()
        .make_span_with(RequestSpan)
        .on_request(())
        .on_response(Finished)
        .on_body_chunk(())
        .on_eos(())
        .on_failure(())
}

/// The span of a request: its id, its method and its route.
#[derive(Clone, Copy)]
pub struct RequestSpan;

impl<B> MakeSpan<B> for RequestSpan {
    fn make_span(&mut self, request: &axum::http::Request<B>) -> Span {
        // The route, not the client's path: the log keeps nothing a client can make up.
        let route = request
            .extensions()
            .get::<MatchedPath>()
            .map_or("(no route)", MatchedPath::as_str);
        let id = request.extensions().get::<RequestId>().map(id_text);
        tracing::info_span!(
            "request",
            request_id = %id.unwrap_or_default(),
            method = %method_name(request.method()),
            route = %route,
            operation = tracing::field::Empty,
            status = tracing::field::Empty,
            latency_ms = tracing::field::Empty,
        )
    }
}

/// Records the status and latency on the span and logs `request finished`, as an error for a
/// 5xx.
#[derive(Clone, Copy)]
pub struct Finished;

impl<B> OnResponse<B> for Finished {
    fn on_response(self, response: &Response<B>, latency: Duration, span: &Span) {
        let status = response.status();
        span.record("status", status.as_u16());
        // Microsecond resolution is plenty and keeps log lines short.
        span.record("latency_ms", latency.as_micros() as f64 / 1000.0);
        if status.is_server_error() {
            tracing::error!("request finished");
        } else {
            tracing::info!("request finished");
        }
    }
}

/// The method for the log: one of the standard ones, or `other` (a client may send any token).
fn method_name(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        _ => "other",
    }
}
