//! A point in time in 8 bytes (an `Option<Instant>` takes 16): every connection keeps its next
//! timer, in its endpoint and in its session, so it counts in the memory of each idle
//! connection.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Deadlines count from here: 2^31 s (68 years) before the first instant stored (where the
/// clock allows; else that instant), so that every instant a caller has is after it. Taken
/// from what callers pass: the protocol core reads no clock.
static ORIGIN: OnceLock<Instant> = OnceLock::new();

fn origin(first: Instant) -> Instant {
    *ORIGIN.get_or_init(|| {
        first
            .checked_sub(Duration::from_secs(1 << 31))
            .unwrap_or(first)
    })
}

/// Nanoseconds since [`ORIGIN`], plus one; 0 is no deadline.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct Deadline(u64);

impl Deadline {
    /// A deadline before the origin becomes the origin: both have passed by now, so it fires
    /// as soon either way.
    pub fn new(when: Option<Instant>) -> Deadline {
        Deadline(when.map_or(0, |when| {
            let since = when.saturating_duration_since(origin(when)).as_nanos();
            u64::try_from(since)
                .unwrap_or(u64::MAX - 1)
                .min(u64::MAX - 1)
                + 1
        }))
    }

    /// The same `Instant` each time for one stored value (the loop removes a deadline by it).
    pub fn get(self) -> Option<Instant> {
        if self.0 == 0 {
            return None;
        }
        // A stored deadline set the origin.
        let origin = *ORIGIN.get()?;
        Some(origin + Duration::from_nanos(self.0 - 1))
    }
}
