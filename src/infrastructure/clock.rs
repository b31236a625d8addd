//! A clock for integration tests: the system's time plus an offset the test moves forward,
//! so a test of something that expires (a lockout, a token, a link) jumps over the wait
//! instead of sleeping through it. Time still flows between jumps, so rows written one
//! after the other keep distinct, ordered timestamps. A test whose subject is a window
//! (two requests within a grace) holds the clock, so a slow machine cannot push them apart.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::application::ports::{Clock, SystemClock};

/// The system clock, shifted by however far the test has advanced it.
#[derive(Debug, Default)]
pub struct AdvancingClock {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    ahead: chrono::Duration,
    /// Where a held clock stands (before `ahead`); `None` while it follows the system.
    held: Option<DateTime<Utc>>,
}

/// How far a held clock moves on each reading: readings stay distinct and ordered, and
/// even thousands of them move it by seconds only.
const HELD_TICK: chrono::Duration = chrono::Duration::milliseconds(1);

impl AdvancingClock {
    /// Moves the time forward by `by` for everyone reading this clock.
    pub fn advance(&self, by: Duration) {
        let by = chrono::Duration::from_std(by).expect("a test advances by a sane duration");
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .ahead += by;
    }

    /// Stops following the system's time: from now on the time moves only when advanced,
    /// and by a millisecond on each reading.
    pub fn hold(&self) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.held.get_or_insert_with(|| SystemClock.now());
    }
}

impl Clock for AdvancingClock {
    fn now(&self) -> DateTime<Utc> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let base = match &mut state.held {
            Some(held) => {
                *held += HELD_TICK;
                *held
            }
            None => SystemClock.now(),
        };
        base + state.ahead
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

    #[test]
    fn a_held_clock_ignores_the_system_time_but_still_orders_its_readings() {
        let clock = AdvancingClock::default();
        clock.hold();
        let first = clock.now();
        std::thread::sleep(Duration::from_millis(30));
        let second = clock.now();
        assert!(second > first, "readings stay ordered");
        assert_eq!(second - first, HELD_TICK, "the sleep did not move it");
        clock.advance(Duration::from_secs(11));
        assert_eq!(
            clock.now() - second,
            chrono::Duration::seconds(11) + HELD_TICK
        );
    }
}
