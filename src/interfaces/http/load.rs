//! Load is shed, not queued: past a number of requests in flight, or past a budget of request
//! bodies held in memory, new work is answered 503 with `Retry-After` at once. The budget is
//! what bounds memory under a flood of large bodies: a body is reserved in full (its declared
//! length, or the largest allowed) before a byte of it is read, and stays reserved until its
//! request is answered, while its parsed copies are alive.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::problem::unavailable;

/// How much work is taken on at once.
#[derive(Debug, Clone, Copy)]
pub struct LoadLimits {
    /// Requests being answered at once (the probes are not counted).
    pub max_in_flight: usize,
    /// Bytes of request bodies held at once.
    pub body_budget_bytes: usize,
}

/// The counters of work in progress.
pub struct Load {
    in_flight: Arc<Semaphore>,
    /// In KiB, so the count fits a semaphore's permits.
    body_budget: Arc<Semaphore>,
}

/// A body's share of the budget, given back when dropped.
pub struct BodyReservation(#[allow(dead_code)] OwnedSemaphorePermit);

impl Load {
    pub fn new(limits: LoadLimits) -> Self {
        Self {
            in_flight: Arc::new(Semaphore::new(limits.max_in_flight)),
            body_budget: Arc::new(Semaphore::new(kib(limits.body_budget_bytes))),
        }
    }

    /// Reserves `bytes` of the body budget, or `None` when it is spent.
    pub fn reserve_body(&self, bytes: usize) -> Option<BodyReservation> {
        let permits = u32::try_from(kib(bytes).max(1)).ok()?;
        self.body_budget
            .clone()
            .try_acquire_many_owned(permits)
            .ok()
            .map(BodyReservation)
    }
}

fn kib(bytes: usize) -> usize {
    bytes.div_ceil(1024)
}

/// Middleware: refuses a request when too many are in flight.
pub async fn shed(State(load): State<Arc<Load>>, request: Request, next: Next) -> Response {
    match load.in_flight.clone().try_acquire_owned() {
        Ok(_permit) => next.run(request).await,
        Err(_) => busy(),
    }
}

/// The answer to work the server cannot take on now.
pub fn busy() -> Response {
    unavailable("The server is busy; try again in a moment.", 1, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_reserved_in_full_until_dropped() {
        let load = Load::new(LoadLimits {
            max_in_flight: 1,
            body_budget_bytes: 3 * 1024,
        });
        let first = load.reserve_body(2 * 1024).expect("within the budget");
        assert!(
            load.reserve_body(1500).is_none(),
            "1.5 KiB rounds up past what is left"
        );
        let small = load.reserve_body(10).expect("one KiB is left");
        drop((first, small));
        assert!(load.reserve_body(3 * 1024).is_some());
        assert!(load.reserve_body(usize::MAX).is_none());
    }
}
