//! A session's next timer in 8 bytes (an `Option<Instant>` takes 16): every connection keeps
//! one, so it counts in the memory of each idle connection.

use std::sync::LazyLock;
use std::time::{Duration, Instant};

/// Deadlines count from here (the first time one is read or stored).
static ORIGIN: LazyLock<Instant> = LazyLock::new(Instant::now);

/// Nanoseconds since [`ORIGIN`], plus one; 0 is no deadline.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub(super) struct Deadline(u64);

impl Deadline {
    /// A deadline before the origin becomes the origin: both have passed by now, so it fires
    /// as soon either way.
    pub(super) fn new(when: Option<Instant>) -> Deadline {
        Deadline(when.map_or(0, |when| {
            let since = when.saturating_duration_since(*ORIGIN).as_nanos();
            u64::try_from(since)
                .unwrap_or(u64::MAX - 1)
                .min(u64::MAX - 1)
                + 1
        }))
    }

    /// The same `Instant` each time for one stored value (the loop removes a deadline by it).
    pub(super) fn get(self) -> Option<Instant> {
        (self.0 > 0).then(|| *ORIGIN + Duration::from_nanos(self.0 - 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deadline_reads_back_as_stored_to_the_nanosecond() {
        assert_eq!(Deadline::new(None).get(), None);
        assert_eq!(Deadline::default().get(), None);
        LazyLock::force(&ORIGIN);
        let now = Instant::now();
        for later in [0, 1, 999, 1_000_000_007, 86_400 * 1_000_000_000] {
            let when = now + Duration::from_nanos(later);
            assert_eq!(Deadline::new(Some(when)).get(), Some(when));
        }
        // Before the origin: it has passed, and still reads as passed.
        if let Some(before) = ORIGIN.checked_sub(Duration::from_secs(1)) {
            assert_eq!(Deadline::new(Some(before)).get(), Some(*ORIGIN));
        }
    }
}
