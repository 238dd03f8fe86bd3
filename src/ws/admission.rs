//! One place under a connection cap, held for as long as a socket is open.
//!
//! A server that limits its connections counts them in one shared counter; each connection
//! holds an [`Admission`] that gives its place back when dropped. A connection that changes
//! hands (an HTTP connection upgraded to WebSocket) passes its admission on to the session that
//! takes its socket, so the place stays taken until that socket closes — not until the last
//! `WsConnectionRef` the application keeps goes away, which is why it lives in the session and
//! not in the [`Connection`](super::connection::Connection).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

pub struct Admission(Arc<AtomicUsize>);

impl Admission {
    /// Takes one of `max` places counted by `counter`, or None when all are taken.
    pub fn try_acquire(counter: &Arc<AtomicUsize>, max: usize) -> Option<Admission> {
        counter
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |taken| {
                (taken < max).then_some(taken + 1)
            })
            .ok()
            .map(|_| Admission(counter.clone()))
    }

    /// Places taken now (by every holder of this counter).
    pub fn taken(&self) -> usize {
        self.0.load(Ordering::Acquire)
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl std::fmt::Debug for Admission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Admission({} taken)", self.taken())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_are_counted_and_given_back() {
        let counter = Arc::new(AtomicUsize::new(0));
        let first = Admission::try_acquire(&counter, 2).unwrap();
        let second = Admission::try_acquire(&counter, 2).unwrap();
        assert!(
            Admission::try_acquire(&counter, 2).is_none(),
            "over the cap"
        );
        assert_eq!(
            counter.load(Ordering::Acquire),
            2,
            "a refusal takes nothing"
        );
        drop(first);
        assert_eq!(second.taken(), 1);
        let third = Admission::try_acquire(&counter, 2).unwrap();
        drop((second, third));
        assert_eq!(counter.load(Ordering::Acquire), 0);
    }
}
