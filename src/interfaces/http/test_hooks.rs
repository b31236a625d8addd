//! Routes that exist only in test builds (feature `test-hooks`): a handler that panics, one
//! that is slow and one that waits until the test lets it go, to prove containment, timeouts,
//! limits and graceful shutdown.

/// Requests held by `/__test/held/{key}`, by key: each is answered once its key is released.
static HELD: std::sync::LazyLock<
    std::sync::Mutex<std::collections::HashMap<String, tokio::sync::watch::Sender<bool>>>,
> = std::sync::LazyLock::new(Default::default);

fn held(key: &str) -> tokio::sync::watch::Receiver<bool> {
    HELD.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .entry(key.to_owned())
        .or_insert_with(|| tokio::sync::watch::channel(false).0)
        .subscribe()
}

/// Answers every request held under `key`, now and later (test builds only).
pub fn release_held(key: &str) {
    HELD.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .entry(key.to_owned())
        .or_insert_with(|| tokio::sync::watch::channel(false).0)
        .send_replace(true);
}

/// The routes.
pub fn routes() -> axum::Router<super::AppState> {
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
