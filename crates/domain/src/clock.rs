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
/// and a test skips an hour instead of sleeping through it. A test whose
/// rule counts seconds between its own steps [`hold`](Self::hold)s it, so a
/// slow machine cannot add time between them. Clones share one state.
#[derive(Clone, Debug, Default)]
pub struct ShiftedClock {
    shift: Arc<Mutex<Shift>>,
}

/// How a [`ShiftedClock`] differs from the system's.
#[derive(Debug, Default)]
struct Shift {
    offset: Duration,
    /// While held: the instant it reads.
    held: Option<DateTime<Utc>>,
}

impl ShiftedClock {
    /// A clock that reads the system's until moved.
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves this clock (and its clones) ahead by `by`.
    pub fn advance(&self, by: Duration) {
        let mut shift = self.shift.lock().expect("the shift is never poisoned");
        match shift.held.as_mut() {
            Some(held) => *held += by,
            None => shift.offset += by,
        }
    }

    /// Stops this clock (and its clones) where it is: from now on it moves
    /// only by [`advance`](Self::advance).
    pub fn hold(&self) {
        let now = self.now();
        self.shift.lock().expect("the shift is never poisoned").held = Some(now);
    }
}

impl Clock for ShiftedClock {
    fn now(&self) -> DateTime<Utc> {
        let shift = self.shift.lock().expect("the shift is never poisoned");
        shift.held.unwrap_or_else(|| Utc::now() + shift.offset)
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

    #[test]
    fn a_held_clock_moves_only_when_advanced() {
        let clock = ShiftedClock::new();
        clock.advance(Duration::hours(1));
        clock.hold();
        let held = clock.now();
        assert!(held >= Utc::now() + Duration::minutes(59), "holding keeps what was advanced");
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(clock.clone().now(), held, "time does not pass while held");
        clock.advance(Duration::seconds(3));
        assert_eq!(clock.now(), held + Duration::seconds(3));
    }
}
