//! The one place where failures become GraphQL errors with a stable `extensions.code`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery, NextPrepareRequest,
    NextValidation,
};
use async_graphql::parser::types::{DocumentOperations, ExecutableDocument};
use async_graphql::registry::{MetaType, MetaTypeName, Registry};
use async_graphql::{
    ErrorExtensionValues, Request, Response, ServerError, ServerResult, ValidationResult, Value,
    Variables,
};

use crate::application::ServiceError;

/// The codes clients branch on (see docs/errors.md).
pub mod code {
    pub const BAD_USER_INPUT: &str = "BAD_USER_INPUT";
    pub const UNAUTHENTICATED: &str = "UNAUTHENTICATED";
    pub const FORBIDDEN: &str = "FORBIDDEN";
    pub const NOT_FOUND: &str = "NOT_FOUND";
    pub const CONFLICT: &str = "CONFLICT";
    pub const RATE_LIMITED: &str = "RATE_LIMITED";
    pub const GRAPHQL_PARSE_FAILED: &str = "GRAPHQL_PARSE_FAILED";
    pub const GRAPHQL_VALIDATION_FAILED: &str = "GRAPHQL_VALIDATION_FAILED";
    pub const INTERNAL_SERVER_ERROR: &str = "INTERNAL_SERVER_ERROR";
    /// The server is overloaded, or its database cannot be reached or stayed too busy: try
    /// again after `extensions.retryAfter` seconds (HTTP 503).
    pub const SERVICE_UNAVAILABLE: &str = "SERVICE_UNAVAILABLE";
    /// Automatic persisted queries: the server does not know the hash; Apollo Client then
    /// sends the full query (the name is the APQ protocol's).
    pub const PERSISTED_QUERY_NOT_FOUND: &str = "PERSISTED_QUERY_NOT_FOUND";
    /// Automatic persisted queries are turned off; the client should send whole queries.
    pub const PERSISTED_QUERY_NOT_SUPPORTED: &str = "PERSISTED_QUERY_NOT_SUPPORTED";
}

/// What an unexpected failure tells the client; the details go to the log.
const INTERNAL_MESSAGE: &str =
    "Something went wrong on our side. Quote the requestId when reporting it.";

/// Maps a service error to its GraphQL error. Internal errors are logged here, inside the
/// request's span (so the log line carries the request id), and reach the client as a
/// generic message.
pub fn graphql_error(error: ServiceError) -> async_graphql::Error {
    shared_graphql_error(&error)
}

/// [`graphql_error`] for an error shared by several fields (a batch loader's).
pub fn shared_graphql_error(error: &ServiceError) -> async_graphql::Error {
    let message = error.to_string();
    let (code, message) = match error {
        ServiceError::InvalidInput { .. } => (code::BAD_USER_INPUT, message),
        ServiceError::Unauthenticated(_) => (code::UNAUTHENTICATED, message),
        ServiceError::EmailNotVerified
        | ServiceError::AccountSuspended
        | ServiceError::MfaRequired { .. }
        | ServiceError::ReauthenticationRequired
        | ServiceError::SocialRefused(_)
        | ServiceError::Forbidden(_) => (code::FORBIDDEN, message),
        ServiceError::NotFound(_) => (code::NOT_FOUND, message),
        ServiceError::EmailTaken | ServiceError::LastAdmin | ServiceError::Conflict(_) => {
            (code::CONFLICT, message)
        }
        ServiceError::Overloaded { .. } | ServiceError::RateLimited { .. } => {
            (code::RATE_LIMITED, message)
        }
        ServiceError::Unavailable { source, .. } => {
            tracing::warn!(error = %source, "request failed: the database is unavailable");
            (code::SERVICE_UNAVAILABLE, message)
        }
        ServiceError::Internal(source) => {
            tracing::error!(error = %source, "request failed unexpectedly");
            (code::INTERNAL_SERVER_ERROR, INTERNAL_MESSAGE.to_owned())
        }
    };
    let mut graphql = async_graphql::Error::new(message);
    let extensions = graphql.extensions.get_or_insert_with(Default::default);
    extensions.set("code", code);
    match error {
        ServiceError::InvalidInput { field, .. } => extensions.set("field", *field),
        ServiceError::Overloaded { retry_after_secs }
        | ServiceError::RateLimited { retry_after_secs }
        | ServiceError::Unavailable {
            retry_after_secs, ..
        } => extensions.set("retryAfter", *retry_after_secs),
        // Lets a frontend tell these refusals apart from other ones.
        ServiceError::EmailNotVerified => extensions.set("reason", "EMAIL_NOT_VERIFIED"),
        ServiceError::AccountSuspended => extensions.set("reason", "ACCOUNT_SUSPENDED"),
        ServiceError::MfaRequired { ticket } => {
            extensions.set("reason", "MFA_REQUIRED");
            extensions.set("mfaTicket", ticket.expose());
        }
        ServiceError::ReauthenticationRequired => {
            extensions.set("reason", "REAUTHENTICATION_REQUIRED");
        }
        ServiceError::SocialRefused(refusal) => extensions.set("reason", refusal.reason()),
        _ => {}
    }
    graphql
}

/// Set by [`RequestErrors`] when execution starts; tells request errors (the document or
/// variables were rejected, nothing ran) from field errors.
#[derive(Clone, Default)]
pub struct ExecutionMarker(Arc<AtomicBool>);

impl ExecutionMarker {
    pub fn executed(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// Gives async-graphql's own errors the codes of the contract: parse failures, validation
/// failures (including depth and complexity limits), and argument coercion during execution.
/// Before anything runs it also refuses variables async-graphql would only find wrong in the
/// middle of execution. (The limits async-graphql lacks are checked earlier, by `Admission`.)
pub struct RequestErrors;

impl ExtensionFactory for RequestErrors {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(RequestErrorsExtension {
            operation_name: Mutex::default(),
        })
    }
}

/// One per request.
struct RequestErrorsExtension {
    operation_name: Mutex<Option<String>>,
}

#[async_trait::async_trait]
impl Extension for RequestErrorsExtension {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        if let Ok(mut name) = self.operation_name.lock() {
            name.clone_from(&request.operation_name);
        }
        next.run(ctx, request)
            .await
            .map_err(|error| with_code(error, code::GRAPHQL_VALIDATION_FAILED))
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next
            .run(ctx, query, variables)
            .await
            .map_err(parse_failed)?;
        let operation_name = self.operation_name.lock().ok().and_then(|n| n.clone());
        check_variables(
            &ctx.schema_env.registry,
            &document,
            operation_name.as_deref(),
            variables,
        )?;
        Ok(document)
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        next.run(ctx).await.map_err(|errors| {
            errors
                .into_iter()
                .map(|e| with_code(e, code::GRAPHQL_VALIDATION_FAILED))
                .collect()
        })
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        if let Some(marker) = ctx.data_opt::<ExecutionMarker>() {
            marker.0.store(true, Ordering::Relaxed);
        }
        let mut response = next.run(ctx, operation_name).await;
        // Resolvers always set a code; an error without one comes from async-graphql turning
        // an argument value into its Rust type, which is the client's input.
        for error in &mut response.errors {
            set_code_if_missing(error, code::BAD_USER_INPUT);
        }
        response
    }
}

/// Finishes a response for the wire: request errors that reached no stage with a code (an
/// unknown `operationName`, say) become validation failures, and internal errors and
/// unavailability carry the request id so a report can be matched to the log.
pub fn finish_response(response: &mut Response, request_id: &str) {
    for error in &mut response.errors {
        set_code_if_missing(error, code::GRAPHQL_VALIDATION_FAILED);
        if matches!(
            error_code(error),
            Some(code::INTERNAL_SERVER_ERROR | code::SERVICE_UNAVAILABLE)
        ) {
            error
                .extensions
                .get_or_insert_with(Default::default)
                .set("requestId", request_id);
        }
    }
}

/// The longest `extensions.retryAfter` of the response's `SERVICE_UNAVAILABLE` errors, if it
/// has any: the HTTP layer answers such a response with 503 and `Retry-After`.
pub fn unavailable_retry_after(response: &Response) -> Option<u64> {
    response
        .errors
        .iter()
        .filter(|error| error_code(error) == Some(code::SERVICE_UNAVAILABLE))
        .map(
            |error| match error.extensions.as_ref().and_then(|e| e.get("retryAfter")) {
                Some(Value::Number(seconds)) => seconds.as_u64().unwrap_or(1),
                _ => 1,
            },
        )
        .max()
}

/// The `extensions.code` of an error, if set.
pub fn error_code(error: &ServerError) -> Option<&str> {
    match error.extensions.as_ref()?.get("code")? {
        async_graphql::Value::String(code) => Some(code),
        _ => None,
    }
}

/// Variable coercion failures async-graphql would only find during execution: a required
/// variable left out, or an input-object variable given something that is not an object.
fn check_variables(
    registry: &Registry,
    document: &ExecutableDocument,
    operation_name: Option<&str>,
    variables: &Variables,
) -> ServerResult<()> {
    let operation = match (&document.operations, operation_name) {
        (DocumentOperations::Single(op), _) => op,
        (DocumentOperations::Multiple(ops), Some(name)) => match ops.get(name) {
            Some(op) => op,
            None => return Ok(()), // reported by operation selection
        },
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => match ops.values().next() {
            Some(op) => op,
            None => return Ok(()),
        },
        _ => return Ok(()),
    };
    for definition in &operation.node.variable_definitions {
        let definition = &definition.node;
        let (name, ty) = (&definition.name.node, &definition.var_type.node);
        let problem = match variables.get(name) {
            None if !ty.nullable && definition.default_value.is_none() => Some(format!(
                "Variable \"${name}\" of required type \"{ty}\" was not provided."
            )),
            None => None,
            Some(value) => misplaced_scalar(registry, &ty.to_string(), value)
                .map(|found| format!("Variable \"${name}\" of type \"{ty}\" got {found}.")),
        };
        if let Some(message) = problem {
            let error = ServerError::new(message, Some(definition.name.pos));
            return Err(with_code(error, code::GRAPHQL_VALIDATION_FAILED));
        }
    }
    Ok(())
}

/// Describes a value that is not an object where an input object is expected, at any depth.
fn misplaced_scalar(registry: &Registry, type_name: &str, value: &Value) -> Option<String> {
    match (MetaTypeName::create(type_name), value) {
        (_, Value::Null) => None,
        (MetaTypeName::NonNull(inner), _) => misplaced_scalar(registry, inner, value),
        (MetaTypeName::List(inner), Value::List(items)) => items
            .iter()
            .find_map(|item| misplaced_scalar(registry, inner, item)),
        (MetaTypeName::List(inner), _) => misplaced_scalar(registry, inner, value),
        (MetaTypeName::Named(name), _) => match registry.types.get(name) {
            Some(MetaType::InputObject { input_fields, .. }) => match value {
                Value::Object(fields) => input_fields.values().find_map(|field| {
                    fields
                        .get(field.name.as_str())
                        .and_then(|v| misplaced_scalar(registry, &field.ty, v))
                }),
                other => Some(format!(
                    "{other} where an object of type \"{name}\" is needed"
                )),
            },
            _ => None,
        },
    }
}

/// A document that cannot be parsed (or nests past the parser's guard).
pub(super) fn parse_failed(mut error: ServerError) -> ServerError {
    // The parser's own words for its recursion guards are cryptic.
    if error.message.contains("recursion") {
        error.message = "The document is nested too deeply to be parsed.".into();
    }
    with_code(error, code::GRAPHQL_PARSE_FAILED)
}

pub(super) fn with_code(mut error: ServerError, code: &str) -> ServerError {
    set_code_if_missing(&mut error, code);
    error
}

fn set_code_if_missing(error: &mut ServerError, code: &str) {
    let extensions = error
        .extensions
        .get_or_insert_with(ErrorExtensionValues::default);
    if extensions.get("code").is_none() {
        extensions.set("code", code);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::RepositoryError;

    #[test]
    fn an_unavailable_database_is_service_unavailable_with_retry_after_never_internal() {
        let error: ServiceError =
            RepositoryError::Unavailable("Connection refused (os error 111)".into()).into();
        let graphql = graphql_error(error);
        let extensions = graphql.extensions.unwrap();
        assert_eq!(
            extensions.get("code"),
            Some(&Value::from(code::SERVICE_UNAVAILABLE))
        );
        assert_eq!(extensions.get("retryAfter"), Some(&Value::from(2)));
        assert!(!graphql.message.contains("refused"), "{}", graphql.message);

        let internal: ServiceError = RepositoryError::Internal("corrupt row".into()).into();
        let extensions = graphql_error(internal).extensions.unwrap();
        assert_eq!(
            extensions.get("code"),
            Some(&Value::from(code::INTERNAL_SERVER_ERROR))
        );
    }

    #[test]
    fn a_response_is_unavailable_when_any_error_says_so() {
        let error = |code: &str, retry_after: Option<u64>| {
            let mut error = ServerError::new("x", None);
            let extensions = error.extensions.get_or_insert_with(Default::default);
            extensions.set("code", code);
            if let Some(seconds) = retry_after {
                extensions.set("retryAfter", seconds);
            }
            error
        };
        let mut response = Response::new(Value::Null);
        assert_eq!(unavailable_retry_after(&response), None);
        response.errors = vec![error(code::NOT_FOUND, None)];
        assert_eq!(unavailable_retry_after(&response), None);
        response.errors = vec![
            error(code::NOT_FOUND, None),
            error(code::SERVICE_UNAVAILABLE, Some(2)),
            error(code::SERVICE_UNAVAILABLE, Some(5)),
        ];
        assert_eq!(unavailable_retry_after(&response), Some(5));
    }
}
