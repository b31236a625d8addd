//! The accept loop: HTTP/1.1 and HTTP/2 on one port, with the limits `axum::serve` cannot set.
//!
//! - A connection must send a request's headers within `header_read_timeout`, including an
//!   idle keep-alive connection waiting for its next request, so slow or silent clients
//!   (slowloris) cannot hold connections open.
//! - At most `max_connections` connections are served. Past that, a few more are let into a
//!   narrow lane that answers `/health` and `/ready` and refuses everything else with 503 and
//!   `Retry-After`, then closes; past that lane, connections are closed at once. So a flood
//!   of connections is refused fast, costs a bounded amount of memory, and leaves the probes
//!   of the orchestrator answered.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, Request};
use axum::response::Response;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

use super::problem::unavailable;

/// Limits on connections.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub max_connections: usize,
    pub header_read_timeout: Duration,
}

/// Connections past the limit that still get an answer (a probe's, or a 503).
const OVERFLOW_CONNECTIONS: usize = 64;
/// hyper's own cap on a request's headers. Past it hyper answers 431 with no body and closes
/// the connection; below it the request reaches `guard.rs`, which refuses more than
/// `MAX_HEADERS` with the coded body. hyper reserves room for this many on every parse, so it
/// is high enough for no client to reach by accident, not unbounded.
const HEADER_CEILING: usize = 1024;
/// Concurrent requests on one HTTP/2 connection.
const MAX_STREAMS_PER_CONNECTION: u32 = 64;

/// Serves `router` on `listener` until `shutdown` completes, then stops accepting and waits
/// for the connections to finish their requests in flight (the caller bounds that wait).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let serving = builder(limits, true);
    let refusing = builder(limits, false);
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    let overflow = Arc::new(Semaphore::new(OVERFLOW_CONNECTIONS));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    accept_failed(error).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Small responses go out at once rather than waiting for more to send.
        let _ = stream.set_nodelay(true);
        let io = TokioIo::new(stream);
        let (permit, connection) = if let Ok(permit) = connections.clone().try_acquire_owned() {
            let service = hyper::service::service_fn(with_peer(router.clone(), peer, false));
            let connection = serving.serve_connection(io, service).into_owned();
            (permit, graceful.watch(connection))
        } else if let Ok(permit) = overflow.clone().try_acquire_owned() {
            let service = hyper::service::service_fn(with_peer(router.clone(), peer, true));
            let connection = refusing.serve_connection(io, service).into_owned();
            (permit, graceful.watch(connection))
        } else {
            continue; // dropped: closed at once
        };
        tokio::spawn(async move {
            let _ = connection.await;
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

fn builder(limits: ConnectionLimits, keep_alive: bool) -> Builder<TokioExecutor> {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_headers(HEADER_CEILING)
        .keep_alive(keep_alive);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(MAX_STREAMS_PER_CONNECTION)
        // A connection that stops answering pings is closed.
        .keep_alive_interval(limits.header_read_timeout)
        .keep_alive_timeout(limits.header_read_timeout);
    builder
}

/// The router as a per-connection hyper service that knows the peer's address; on an
/// overflow connection only the probes reach it.
fn with_peer(
    router: Router,
    peer: SocketAddr,
    overflow: bool,
) -> impl Fn(
    hyper::Request<Incoming>,
) -> futures_util::future::BoxFuture<'static, Result<Response, std::convert::Infallible>>
+ Clone {
    move |request: hyper::Request<Incoming>| {
        let router = router.clone();
        Box::pin(async move {
            let mut request: Request = request.map(axum::body::Body::new);
            if overflow && !matches!(request.uri().path(), "/health" | "/ready") {
                let mut response = unavailable(
                    "The server has too many connections open; try again in a moment.",
                    1,
                    None,
                );
                response.headers_mut().insert(
                    axum::http::header::CONNECTION,
                    axum::http::HeaderValue::from_static("close"),
                );
                return Ok(response);
            }
            request.extensions_mut().insert(ConnectInfo(peer));
            Ok(router
                .oneshot(request)
                .await
                .unwrap_or_else(|never| match never {}))
        })
    }
}

/// Transient accept errors (a client that gave up) are ignored; running out of file
/// descriptors waits a little for connections to close instead of spinning.
async fn accept_failed(error: io::Error) {
    if matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!(%error, "cannot accept a connection; pausing for a second");
    tokio::time::sleep(Duration::from_secs(1)).await;
}
