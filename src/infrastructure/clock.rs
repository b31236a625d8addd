//! A clock for integration tests: the system's time plus an offset the test moves forward,
//! so a test of something that expires (a lockout, a token, a link) jumps over the wait
//! instead of sleeping through it. Time still flows between jumps, so rows written one
//! after the other keep distinct, ordered timestamps.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::application::ports::{Clock, SystemClock};

/// The system clock, shifted by however far the test has advanced it.
#[derive(Debug, Default)]
pub struct AdvancingClock {
    ahead: Mutex<chrono::Duration>,
}

impl AdvancingClock {
    /// Moves the time forward by `by` for everyone reading this clock.
    pub fn advance(&self, by: Duration) {
        let by = chrono::Duration::from_std(by).expect("a test advances by a sane duration");
        *self.ahead.lock().unwrap_or_else(PoisonError::into_inner) += by;
    }
}

impl Clock for AdvancingClock {
    fn now(&self) -> DateTime<Utc> {
        SystemClock.now() + *self.ahead.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_follows_the_system_clock_until_advanced_then_stays_ahead_by_that_much() {
        let clock = AdvancingClock::default();
        let before = SystemClock.now();
        let read = clock.now();
        assert!(read >= before && read - before < chrono::Duration::seconds(5));
        clock.advance(Duration::from_secs(3600));
        let ahead = clock.now() - SystemClock.now();
        assert!(ahead > chrono::Duration::minutes(59) && ahead <= chrono::Duration::hours(1));
    }
}
