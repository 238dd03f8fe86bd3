//! One answer handed from one thread to another that waits for it, with a time limit: the event
//! loop confirms it stopped listening, the resolver thread answers a lookup, a client's `onOpen`
//! has run. Neither end is shared or cloned, so a mutex and a condition variable do the whole
//! job; std's `mpsc::sync_channel`, which these hand-overs used before, brings its three channel
//! flavours along, about 15 KB of the aarch64 library for what is here under 1 KB.

use parking_lot::{Condvar, Mutex};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where the answer stands.
enum State<T> {
    Waiting,
    Answered(T),
    /// The sender went away without answering: the waiter need not wait any longer.
    Abandoned,
}

struct Shared<T> {
    state: Mutex<State<T>>,
    changed: Condvar,
}

/// The answering end: [`Sender::send`] once, or drop it to tell the waiter no answer comes.
pub struct Sender<T>(Arc<Shared<T>>);

/// The waiting end.
pub struct Receiver<T>(Arc<Shared<T>>);

/// A new hand-over: its answering and its waiting end.
pub fn oneshot<T>() -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State::Waiting),
        changed: Condvar::new(),
    });
    (Sender(shared.clone()), Receiver(shared))
}

impl<T> Sender<T> {
    pub fn send(self, answer: T) {
        self.settle(State::Answered(answer));
    }

    fn settle(&self, to: State<T>) {
        let mut state = self.0.state.lock();
        if matches!(*state, State::Waiting) {
            *state = to;
            self.0.changed.notify_one();
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        // After send, the state is no longer Waiting and this changes nothing.
        self.settle(State::Abandoned);
    }
}

impl<T> Receiver<T> {
    /// The answer, once it comes within `limit`; `None` when the time runs out first or the
    /// sender was dropped without answering.
    pub fn wait(self, limit: Duration) -> Option<T> {
        let deadline = Instant::now().checked_add(limit);
        let mut state = self.0.state.lock();
        while matches!(*state, State::Waiting) {
            match deadline {
                Some(deadline) => {
                    if self.0.changed.wait_until(&mut state, deadline).timed_out() {
                        break;
                    }
                }
                None => self.0.changed.wait(&mut state),
            }
        }
        match std::mem::replace(&mut *state, State::Abandoned) {
            State::Answered(answer) => Some(answer),
            State::Waiting | State::Abandoned => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::thread;

    #[test]
    fn an_answer_from_another_thread_reaches_the_waiter() {
        let (sender, receiver) = oneshot();
        let answering = thread::spawn(move || sender.send(42));
        assert_eq!(receiver.wait(Duration::from_secs(30)), Some(42));
        answering.join().unwrap();
    }

    #[test]
    fn an_answer_sent_before_the_wait_is_kept() {
        let (sender, receiver) = oneshot();
        sender.send("early");
        assert_eq!(receiver.wait(Duration::ZERO), Some("early"));
    }

    #[test]
    fn a_dropped_sender_ends_the_wait_at_once() {
        let (sender, receiver) = oneshot::<u8>();
        let started = Instant::now();
        let dropping = thread::spawn(move || drop(sender));
        // Far longer than the test may take: only the drop can end this wait in time.
        assert_eq!(receiver.wait(Duration::from_secs(3600)), None);
        assert!(started.elapsed() < Duration::from_secs(600));
        dropping.join().unwrap();
    }

    #[test]
    fn the_wait_ends_when_its_time_runs_out() {
        let (_sender, receiver) = oneshot::<u8>();
        let started = Instant::now();
        assert_eq!(receiver.wait(Duration::from_millis(50)), None);
        assert!(started.elapsed() >= Duration::from_millis(50));
    }

    #[test]
    fn an_answer_after_the_waiter_gave_up_is_dropped_with_the_hand_over() {
        let (sender, receiver) = oneshot::<Arc<()>>();
        let answer = Arc::new(());
        assert_eq!(receiver.wait(Duration::ZERO), None);
        sender.send(answer.clone());
        assert_eq!(
            Arc::strong_count(&answer),
            1,
            "the late answer was not dropped"
        );
    }
}
