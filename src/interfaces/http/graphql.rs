//! `/graphql` over HTTP, following the GraphQL-over-HTTP spec: POST with a JSON body, GET for
//! queries only, GraphiQL for browsers, and the response media type the client asked for.

use std::net::SocketAddr;

use async_graphql::parser::types::OperationType;
use axum::extract::rejection::QueryRejection;
use axum::extract::{ConnectInfo, Extension, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::application::ClientInfo;
use crate::interfaces::graphql::error::{
    code, error_code, finish_response, unavailable_retry_after,
};
use crate::interfaces::graphql::{ExecutionMarker, RequestContext, Transport};

use super::request_json::{self, Unreadable};
use super::{AppState, RequestId, graphiql, problem};

/// `POST /graphql` with `{query, variables, operationName}`.
pub async fn post_graphql(
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    let headers = request.headers().clone();
    let format = ResponseFormat::negotiate(&headers);
    // Before anything else, even reading the body: a page of another site gets nothing.
    let transport = match transport(&state, &headers) {
        Ok(transport) => transport,
        Err(refused) => return refused.into_response(format),
    };
    if !is_json(&headers) {
        // Only JSON: a page on another site can make a browser POST text/plain or a form
        // without asking first (CSRF), but not JSON.
        return Rejection::unreadable(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Send the request body as JSON, with Content-Type: application/json.".to_owned(),
        )
        .into_response(format);
    }
    // The whole body is reserved before a byte of it is read, and held until the answer.
    let limit = state.settings.max_body_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    let Some(_reservation) = state
        .load
        .reserve_body(declared.unwrap_or(limit).min(limit))
    else {
        return super::load::busy();
    };
    let request = match read_body(request, limit).await {
        Ok(request) => request,
        Err(rejection) => {
            if let Some(metrics) = &state.metrics {
                metrics.observe("unreadable", rejection.code, std::time::Duration::ZERO);
            }
            return rejection.into_response(format);
        }
    };
    execute(
        &state,
        request,
        &headers,
        peer,
        &request_id,
        format,
        (Method::Post, transport),
    )
    .await
}

/// `GET /graphql`: GraphiQL for a browser, otherwise a query from the URL.
pub async fn get_graphql(
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    parameters: Result<Query<UrlParameters>, QueryRejection>,
) -> Response {
    if prefers_html(&headers) {
        if state.settings.graphiql {
            return graphiql::page();
        }
        return problem::problem(
            StatusCode::NOT_FOUND,
            code::NOT_FOUND,
            "GraphiQL is turned off on this server.",
            None,
        );
    }
    let format = ResponseFormat::negotiate(&headers);
    let transport = match transport(&state, &headers) {
        Ok(transport) => transport,
        Err(refused) => return refused.into_response(format),
    };
    let request = match from_url(parameters) {
        Ok(request) => request,
        Err(rejection) => return rejection.into_response(format),
    };
    execute(
        &state,
        request,
        &headers,
        peer,
        &request_id,
        format,
        (Method::Get, transport),
    )
    .await
}

/// How the request's session travels; with cookie sessions on, a request from a page of
/// another site or an unlisted origin is refused here (`browser.rs`).
fn transport(state: &AppState, headers: &HeaderMap) -> Result<Transport, Rejection> {
    let Some(cookies) = &state.settings.session_cookies else {
        return Ok(Transport::Bearer);
    };
    cookies
        .transport(headers, &state.settings.cors)
        .map_err(|refusal| {
            if let Some(metrics) = &state.metrics {
                metrics.observe("refused", code::FORBIDDEN, std::time::Duration::ZERO);
            }
            Rejection {
                status: StatusCode::FORBIDDEN,
                code: code::FORBIDDEN,
                reason: Some(refusal.reason()),
                message: refusal.message().to_owned(),
            }
        })
}

/// How the request came: GET may only run queries.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Method {
    Get,
    Post,
}

async fn execute(
    state: &AppState,
    mut request: async_graphql::Request,
    headers: &HeaderMap,
    peer: SocketAddr,
    request_id: &RequestId,
    format: ResponseFormat,
    (method, transport): (Method, Transport),
) -> Response {
    let started = std::time::Instant::now();
    let admitted = match state.admission.admit(&mut request) {
        Ok(admitted) => admitted,
        Err(error) => {
            if let Some(metrics) = &state.metrics {
                let outcome = error_code(&error).unwrap_or("unknown");
                metrics.observe("invalid", outcome, started.elapsed());
            }
            return request_error(format, vec![error]);
        }
    };
    // GET must never change anything (a link or an <img> could trigger it).
    if method == Method::Get && admitted.operation_type == Some(OperationType::Mutation) {
        let mut response = Rejection {
            status: StatusCode::METHOD_NOT_ALLOWED,
            code: code::GRAPHQL_VALIDATION_FAILED,
            reason: None,
            message: "Mutations must be sent with POST.".to_owned(),
        }
        .into_response(format);
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, POST"));
        return response;
    }
    let cookie_session = match &transport {
        Transport::Cookies(session) => Some(session.clone()),
        Transport::Bearer => None,
    };
    let client = ClientInfo {
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        ip: Some(state.settings.trusted_proxies.client_ip(peer, headers)),
    };
    let context = RequestContext::new(
        headers
            .get(header::AUTHORIZATION)
            .map(HeaderValue::as_bytes),
        client,
        transport,
    );
    let marker = ExecutionMarker::default();
    let binding = std::sync::Arc::new(super::social::presented_binding(
        headers,
        state.settings.secure_cookies,
    ));
    let mut response = state
        .schema
        .execute(
            request
                .data(context)
                .data(marker.clone())
                .data(binding.clone()),
        )
        .await;
    finish_response(&mut response, super::observe::id_text(request_id));
    // The schema's name for what ran, never the client's `operationName` (unbounded text).
    let operation = state.admission.finish(admitted, marker.executed());
    tracing::Span::current().record("operation", operation.as_str());
    if let Some(metrics) = &state.metrics {
        let outcome = response
            .errors
            .first()
            .map_or("ok", |e| error_code(e).unwrap_or("unknown"));
        metrics.observe(&operation, outcome, started.elapsed());
    }

    // A request error (the document or variables were rejected; nothing ran) has no `data`
    // and, for clients that understand the GraphQL response media type, a 4xx status.
    if !marker.executed() {
        return request_error(format, response.errors);
    }
    // The database could not serve it: 503 and Retry-After in either format, so clients,
    // proxies and load balancers take it for "try again", not for a bug.
    let retry_after = unavailable_retry_after(&response);
    let status = retry_after.map_or(StatusCode::OK, |_| StatusCode::SERVICE_UNAVAILABLE);
    let mut http_response = match serde_json::to_vec(&response) {
        Ok(body) => with_retry_after(format.respond(status, body), retry_after),
        Err(error) => {
            tracing::error!(%error, "cannot serialise a GraphQL response");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    if let Some(value) = super::social::binding_cookie(&binding, state.settings.secure_cookies) {
        http_response
            .headers_mut()
            .append(header::SET_COOKIE, value);
    }
    if let (Some(session), Some(cookies)) = (cookie_session, &state.settings.session_cookies) {
        let headers = http_response.headers_mut();
        // `guard.rs` marks every response `Cache-Control: no-store`, so no cache keeps these.
        for value in cookies.set_cookie_headers(&session.changes()) {
            headers.append(header::SET_COOKIE, value);
        }
    }
    http_response
}

/// Errors of a request that never ran: no `data`, and a 4xx for clients that understand the
/// GraphQL response media type.
fn request_error(format: ResponseFormat, errors: Vec<async_graphql::ServerError>) -> Response {
    let body = json!({ "errors": errors }).to_string().into_bytes();
    format.respond(format.request_error_status(), body)
}

/// Reads a body of at most `limit` bytes and parses it as a GraphQL request. Batches (any JSON
/// array) are refused: they multiply the cost of one HTTP request past every per-request
/// limit.
async fn read_body(request: Request, limit: usize) -> Result<async_graphql::Request, Rejection> {
    // Buffer under a limit first, so an oversized body is refused before any parsing.
    let bytes = axum::body::to_bytes(request.into_body(), limit)
        .await
        .map_err(|_| {
            Rejection::unreadable(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("The request body is larger than {} KiB.", limit / 1024),
            )
        })?;
    let request = request_json::from_body(&bytes).map_err(Rejection::from)?;
    // A persisted query may come as a hash with no document; anything else needs one.
    if request.query.trim().is_empty() && !request.extensions.contains_key("persistedQuery") {
        return Err(Rejection::unreadable(
            StatusCode::BAD_REQUEST,
            "The request has no \"query\".".to_owned(),
        ));
    }
    Ok(request)
}

/// The parameters of a `GET`, named as the GraphQL-over-HTTP spec names them.
#[derive(serde::Deserialize)]
pub struct UrlParameters {
    #[serde(default)]
    query: String,
    #[serde(rename = "operationName")]
    operation_name: Option<String>,
    variables: Option<String>,
    extensions: Option<String>,
}

/// Reads a GraphQL request from a URL's query string; `variables` and `extensions` are JSON
/// read as strictly as a body is.
fn from_url(
    parameters: Result<Query<UrlParameters>, QueryRejection>,
) -> Result<async_graphql::Request, Rejection> {
    let Query(parameters) = parameters.map_err(|rejection| {
        Rejection::unreadable(
            StatusCode::BAD_REQUEST,
            format!(
                "The URL does not hold a valid GraphQL request: {}.",
                rejection.body_text()
            ),
        )
    })?;
    let object = |name: &str, text: Option<String>| {
        text.map_or_else(
            || Ok(Default::default()),
            |text| request_json::object_parameter(name, &text),
        )
        .map_err(Rejection::from)
    };
    Ok(request_json::Fields {
        variables: object("variables", parameters.variables)?,
        extensions: object("extensions", parameters.extensions)?,
        query: parameters.query,
        operation_name: parameters.operation_name,
    }
    .into_request())
}

/// A request that never reached GraphQL execution.
struct Rejection {
    status: StatusCode,
    code: &'static str,
    /// `extensions.reason`, when the code alone does not say why.
    reason: Option<&'static str>,
    message: String,
}

impl From<Unreadable> for Rejection {
    fn from(unreadable: Unreadable) -> Self {
        let message = match unreadable {
            Unreadable::Batch => {
                "Batched requests are not supported: send one operation per request.".to_owned()
            }
            Unreadable::Invalid(message) => message,
        };
        Self::unreadable(StatusCode::BAD_REQUEST, message)
    }
}

impl Rejection {
    /// The body or URL could not be read as a GraphQL request.
    fn unreadable(status: StatusCode, message: String) -> Self {
        Self {
            status,
            code: code::GRAPHQL_PARSE_FAILED,
            reason: None,
            message,
        }
    }

    fn into_response(self, format: ResponseFormat) -> Response {
        let mut extensions = json!({ "code": self.code });
        if let Some(reason) = self.reason {
            extensions["reason"] = reason.into();
        }
        let body = json!({
            "errors": [{ "message": self.message, "extensions": extensions }]
        });
        // Not a well-formed GraphQL-over-HTTP request: the status says so in both formats.
        format.respond(self.status, body.to_string().into_bytes())
    }
}

/// The media type of the response, from the request's `Accept` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ResponseFormat {
    /// `application/graphql-response+json`: status codes carry meaning.
    GraphqlResponse,
    /// `application/json`, the legacy default: a well-formed request always answers 200.
    Json,
}

impl ResponseFormat {
    fn negotiate(headers: &HeaderMap) -> Self {
        let accept = headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if accept.contains("application/graphql-response+json") {
            Self::GraphqlResponse
        } else {
            Self::Json
        }
    }

    /// The status of a well-formed request whose document or variables were rejected.
    fn request_error_status(self) -> StatusCode {
        match self {
            Self::GraphqlResponse => StatusCode::BAD_REQUEST,
            Self::Json => StatusCode::OK,
        }
    }

    fn respond(self, status: StatusCode, body: Vec<u8>) -> Response {
        let content_type = match self {
            Self::GraphqlResponse => "application/graphql-response+json; charset=utf-8",
            Self::Json => "application/json; charset=utf-8",
        };
        (
            status,
            [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
            body,
        )
            .into_response()
    }
}

/// Whether the body is declared JSON (`application/json`, with any parameters).
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
}

/// A browser navigating to the endpoint asks for HTML before anything else.
fn prefers_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .and_then(|accept| accept.split(',').next())
        .is_some_and(|first| first.trim().starts_with("text/html"))
}

/// Adds `Retry-After` (seconds) when there is one.
fn with_retry_after(mut response: Response, seconds: Option<u64>) -> Response {
    if let Some(seconds) = seconds {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}
