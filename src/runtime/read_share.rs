//! How much of a loop turn one connection's reads may take, so that a peer that keeps its
//! socket full does not keep the loop to itself.

use std::time::{Duration, Instant};

/// The reads a connection makes in one turn before its loop serves the others
/// ([`super::Context::read_again_later`]): up to 8 MiB at the default read size, more than a
/// stream of large messages fills at once. Usually the first read comes back short and ends it
/// anyway.
pub const READS_PER_TURN: usize = 16;

/// How long a connection may go on reading in one turn once its first read came back full.
/// Reads count bytes, not the work their messages make: a read full of small messages whose
/// callbacks are slow (a busy device) takes far longer than one full of large ones. So the
/// turn ends at this time too, whichever comes first. (The first read's own work is bounded by
/// the read size, `event-loop-read-size`.)
pub const TIME_PER_TURN: Duration = Duration::from_millis(2);

/// One connection's reads in one turn: [`ReadShare::another`] says whether it may make one
/// more.
#[derive(Default)]
pub struct ReadShare {
    reads: usize,
    /// When the second read began: the clock is read only once a read came back full.
    since: Option<Instant>,
}

impl ReadShare {
    /// The reads made so far this turn.
    pub fn reads(&self) -> usize {
        self.reads
    }

    /// Whether one more read may be made this turn (it is then counted): the first always; the
    /// next ones while fewer than [`READS_PER_TURN`] were made and [`TIME_PER_TURN`] has not
    /// passed since the second began.
    pub fn another(&mut self) -> bool {
        let more = match self.reads {
            0 => true,
            1 => {
                self.since = Some(Instant::now());
                true
            }
            n if n < READS_PER_TURN => self
                .since
                .is_some_and(|since| since.elapsed() < TIME_PER_TURN),
            _ => false,
        };
        self.reads += usize::from(more);
        more
    }
}

/// The tasks to call again, readable, next turn ([`super::Context::read_again_later`]), each
/// with whether its peer had closed; and an empty list that changes places with it.
#[derive(Default)]
pub(super) struct ReadLater {
    listed: Vec<(u64, bool)>,
    spare: Vec<(u64, bool)>,
}

impl ReadLater {
    /// Lists task `id` to be read again next turn, once. A task can be driven twice in a turn
    /// (its readiness, and the read again it asked for in the turn before) and ask both times;
    /// listed twice, it would be read twice as often in each next turn while its peer kept the
    /// socket full, the list growing by one a turn. (A list of the few connections that fill
    /// their reads: each entry stands for a full read, which costs far more than the search.)
    #[cold]
    pub(super) fn list(&mut self, id: u64, closed: bool) {
        if !self.holds(id, closed) {
            self.listed.push((id, closed));
        }
    }

    /// Whether task `id` is listed for next turn already; if so, `closed` is kept with it. A
    /// task listed last turn and again in this one was read on its readiness this turn: its
    /// share of the turn is taken, and the loop does not read it a second time.
    pub(super) fn holds(&mut self, id: u64, closed: bool) -> bool {
        let listed = self.listed.iter_mut().find(|(listed, _)| *listed == id);
        listed
            .map(|(_, was_closed)| *was_closed |= closed)
            .is_some()
    }

    #[cfg(test)]
    pub(super) fn is_empty(&self) -> bool {
        self.listed.is_empty()
    }

    /// The tasks to read again this turn, if any; the spare list takes their place.
    #[inline]
    pub(super) fn take(&mut self) -> Option<Vec<(u64, bool)>> {
        (!self.listed.is_empty())
            .then(|| std::mem::replace(&mut self.listed, std::mem::take(&mut self.spare)))
    }

    /// Keeps a list emptied by the turn that took it.
    pub(super) fn give_back(&mut self, emptied: Vec<(u64, bool)>) {
        self.spare = emptied;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_turn_ends_at_the_read_limit() {
        let mut share = ReadShare::default();
        assert!(share.another() && share.another());
        // The turn's time never runs out here (the test thread may be preempted).
        share.since = Some(Instant::now() + Duration::from_secs(3600));
        let mut reads = 2;
        while share.another() {
            reads += 1;
        }
        assert_eq!(reads, READS_PER_TURN);
        assert_eq!(share.reads(), READS_PER_TURN);
    }

    #[test]
    fn a_turn_ends_once_its_time_passed_after_the_first_read() {
        let mut share = ReadShare::default();
        assert!(share.another(), "the first read");
        assert!(share.another(), "the second read starts the clock");
        // Slow callbacks of the second read's messages:
        std::thread::sleep(TIME_PER_TURN);
        assert!(!share.another(), "no third read past the turn's time");
        assert_eq!(share.reads(), 2);
    }

    #[test]
    fn a_task_is_listed_once_with_its_peer_s_close_kept() {
        let mut later = ReadLater::default();
        later.list(7, false);
        later.list(9, false);
        later.list(7, true);
        later.list(7, false);
        assert_eq!(later.take(), Some(vec![(7, true), (9, false)]));
        assert!(later.is_empty());
        assert_eq!(later.take(), None);
    }
}
