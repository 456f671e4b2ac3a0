//! The time the services read. Deployed, it is the system clock; the tests
//! give the services a clock they move forward, so that time rules — link
//! windows and expiry, sessions, throttle windows, upload and archive
//! deadlines — are tested without sleeping on, or racing, the wall clock.

use chrono::{DateTime, Duration, Utc};
use std::fmt::Debug;
use std::sync::{Arc, Mutex};

/// Where the services read "now".
pub trait Clock: Send + Sync + Debug {
    /// The current instant.
    fn now(&self) -> DateTime<Utc>;
}

/// The system's clock: what every deployed service reads.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// The system's clock moved ahead by what [`advance`](Self::advance) added:
/// time still passes between steps (as stores and network calls expect),
/// and a test skips an hour instead of sleeping through it. Clones share
/// one offset.
#[derive(Clone, Debug, Default)]
pub struct ShiftedClock {
    offset: Arc<Mutex<Duration>>,
}

impl ShiftedClock {
    /// A clock that reads the system's until moved.
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves this clock (and its clones) ahead by `by`.
    pub fn advance(&self, by: Duration) {
        *self.offset.lock().expect("the offset is never poisoned") += by;
    }
}

impl Clock for ShiftedClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + *self.offset.lock().expect("the offset is never poisoned")
    }
}

/// The clock every deployed part reads, shared.
pub fn system() -> Arc<dyn Clock> {
    Arc::new(SystemClock)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shifted_clock_moves_with_its_clones_and_keeps_running() {
        let clock = ShiftedClock::new();
        let twin = clock.clone();
        let before = Utc::now();
        twin.advance(Duration::hours(2));
        let read = clock.now();
        assert!(read >= before + Duration::hours(2) && read < Utc::now() + Duration::hours(2) + Duration::seconds(1));
        assert!(clock.now() >= read, "never backwards");
    }
}
