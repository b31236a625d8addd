//! `/metrics` in Prometheus (OpenMetrics) text: requests and their latency by operation and
//! outcome, sign-in outcomes, the password-hash queue, the database pool, the audit queue and
//! the requests refused for want of room in the rate-limit store.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::application::ports::{DropCount, HashingLoad, KeyClass, StoreHealth};
use crate::application::{HookStats, Throttle};
use crate::interfaces::graphql::Admission;

/// Where scrape-time figures come from.
pub struct Sources {
    pub hashing: Arc<dyn HashingLoad>,
    /// The audit writer's queue.
    pub audit: Arc<dyn DropCount>,
    pub store: Arc<dyn StoreHealth>,
    pub admission: Arc<Admission>,
    /// The queue of emails with links.
    pub mail: Arc<dyn DropCount>,
    pub limits: Arc<Throttle>,
    /// The claims hook's calls, failures and waiting time.
    pub claims_hook: Arc<HookStats>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Request {
    /// The root field of the operation (bounded by the schema), not the client's name for it.
    operation: String,
    /// `ok`, or the code of the first error.
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Operation {
    operation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Retry {
    /// `deadlock`, `serialization_failure`, `lock_timeout` or `busy`.
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Class {
    /// `address` or `account`.
    class: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Login {
    result: &'static str,
}

/// The registry and the series the handlers update.
pub struct Metrics {
    registry: Registry,
    requests: Family<Request, Counter>,
    latency: Family<Operation, Histogram>,
    logins: Family<Login, Counter>,
    hashes_in_flight: Gauge,
    hashes: Gauge,
    db_connections: Gauge,
    db_idle_connections: Gauge,
    db_statements: Gauge,
    db_retries: Family<Retry, Gauge>,
    db_retries_exhausted: Gauge,
    audit_dropped: Gauge,
    mail_dropped: Gauge,
    persisted_queries: Gauge,
    persisted_query_bytes: Gauge,
    limits_refused_for_room: Family<Class, Gauge>,
    claims_hook_calls: Gauge,
    claims_hook_failures: Gauge,
    claims_hook_wait: Gauge,
    sources: Sources,
}

impl Metrics {
    pub fn new(sources: Sources) -> Self {
        let mut registry = Registry::with_prefix("authgraph");
        let requests = Family::<Request, Counter>::default();
        registry.register(
            "graphql_requests",
            "GraphQL requests by operation and outcome",
            requests.clone(),
        );
        let latency = Family::<Operation, Histogram>::new_with_constructor(|| {
            // 100 µs to ~13 s.
            Histogram::new(exponential_buckets(0.0001, 2.5, 14))
        });
        registry.register(
            "graphql_request_duration_seconds",
            "Time to answer a GraphQL request, by operation",
            latency.clone(),
        );
        let logins = Family::<Login, Counter>::default();
        registry.register(
            "logins",
            "Sign-in attempts by result: success, failure (wrong credentials), limited, error",
            logins.clone(),
        );
        let gauge = |registry: &mut Registry, name: &str, help: &str| {
            let gauge = Gauge::default();
            registry.register(name, help, gauge.clone());
            gauge
        };
        let hashes_in_flight = gauge(
            &mut registry,
            "password_hash_queue_depth",
            "Password hashes waiting for a worker or running",
        );
        let hashes = gauge(
            &mut registry,
            "password_hashes_completed",
            "Password hashes computed or verified since start",
        );
        let db_connections = gauge(
            &mut registry,
            "db_pool_connections",
            "Open database connections",
        );
        let db_idle_connections = gauge(
            &mut registry,
            "db_pool_idle_connections",
            "Open database connections not in use",
        );
        let db_statements = gauge(
            &mut registry,
            "db_statements_executed",
            "Statements sent to the database since start",
        );
        let db_retries = Family::<Retry, Gauge>::default();
        registry.register(
            "db_transaction_retries",
            "Transactions run again after losing a race for locks, by reason, since start",
            db_retries.clone(),
        );
        let db_retries_exhausted = gauge(
            &mut registry,
            "db_transaction_retries_exhausted",
            "Transactions still failing on contention after their last attempt, since start",
        );
        let mail_dropped = gauge(
            &mut registry,
            "mail_dropped",
            "Emails (with their links) dropped because the mail queue was full",
        );
        let audit_dropped = gauge(
            &mut registry,
            "audit_events_dropped",
            "Audit events dropped because their queue was full",
        );
        let persisted_queries = gauge(
            &mut registry,
            "persisted_queries",
            "Documents held for automatic persisted queries",
        );
        let persisted_query_bytes = gauge(
            &mut registry,
            "persisted_query_bytes",
            "Bytes of the documents held for automatic persisted queries",
        );
        let limits_refused_for_room = Family::<Class, Gauge>::default();
        registry.register(
            "rate_limit_refused_no_room",
            "Requests refused (RATE_LIMITED) since start because the rate-limit store had no room \
             for a new key of this class: every key it held still restricted someone",
            limits_refused_for_room.clone(),
        );
        let claims_hook_calls = gauge(
            &mut registry,
            "claims_hook_calls",
            "Calls to the claims hook since start, failed ones included",
        );
        let claims_hook_failures = gauge(
            &mut registry,
            "claims_hook_failures",
            "Calls to the claims hook without a usable answer (timeout, error, refused answer) \
             since start",
        );
        let claims_hook_wait = gauge(
            &mut registry,
            "claims_hook_wait_milliseconds",
            "Milliseconds spent waiting for the claims hook since start (divide by the calls \
             for the mean latency)",
        );
        Self {
            registry,
            requests,
            latency,
            logins,
            hashes_in_flight,
            hashes,
            db_connections,
            db_idle_connections,
            db_statements,
            db_retries,
            db_retries_exhausted,
            audit_dropped,
            mail_dropped,
            persisted_queries,
            persisted_query_bytes,
            limits_refused_for_room,
            claims_hook_calls,
            claims_hook_failures,
            claims_hook_wait,
            sources,
        }
    }

    /// Counts one answered request.
    pub fn observe(&self, operation: &str, outcome: &str, elapsed: Duration) {
        self.requests
            .get_or_create(&Request {
                operation: operation.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
        self.latency
            .get_or_create(&Operation {
                operation: operation.to_owned(),
            })
            .observe(elapsed.as_secs_f64());
        if operation == "login" {
            let result = match outcome {
                "ok" => "success",
                "UNAUTHENTICATED" => "failure",
                "RATE_LIMITED" => "limited",
                _ => "error",
            };
            self.logins.get_or_create(&Login { result }).inc();
        }
    }

    fn refresh(&self) {
        let as_i64 = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        self.hashes_in_flight
            .set(as_i64(self.sources.hashing.in_flight()));
        self.hashes.set(as_i64(self.sources.hashing.completed()));
        let store = self.sources.store.usage();
        self.db_statements.set(as_i64(store.statements));
        for (reason, count) in store.retries {
            self.db_retries
                .get_or_create(&Retry { reason })
                .set(as_i64(count));
        }
        self.db_retries_exhausted
            .set(as_i64(store.retries_exhausted));
        self.audit_dropped.set(as_i64(self.sources.audit.dropped()));
        self.mail_dropped.set(as_i64(self.sources.mail.dropped()));
        let (documents, bytes) = self.sources.admission.persisted_usage();
        self.persisted_queries.set(as_i64(documents as u64));
        self.persisted_query_bytes.set(as_i64(bytes as u64));
        for class in KeyClass::ALL {
            self.limits_refused_for_room
                .get_or_create(&Class {
                    class: class.name(),
                })
                .set(as_i64(self.sources.limits.refused_for_room(class)));
        }
        let hook = &self.sources.claims_hook;
        self.claims_hook_calls.set(as_i64(hook.calls()));
        self.claims_hook_failures.set(as_i64(hook.failures()));
        self.claims_hook_wait
            .set(i64::try_from(hook.latency().as_millis()).unwrap_or(i64::MAX));
        self.db_connections.set(i64::from(store.connections));
        self.db_idle_connections
            .set(i64::from(store.idle_connections));
    }
}

/// `GET /metrics`.
pub async fn metrics(State(metrics): State<Arc<Metrics>>) -> Response {
    metrics.refresh();
    let mut text = String::new();
    if encode(&mut text, &metrics.registry).is_err() {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
        )],
        text,
    )
        .into_response()
}
