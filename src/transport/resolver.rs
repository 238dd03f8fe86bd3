//! Host-name lookups that never hold up the thread that asked for them.
//!
//! Why this exists: `getaddrinfo` blocks for as long as the system resolver's own timeouts and
//! retries say (`options timeout:5 attempts:2` in resolv.conf is ten seconds per query, and
//! more per name server), and it cannot be cancelled. An open with `timeout_msec > 0` must give
//! up when its time is up, and an open with `timeout_msec <= 0` must not block its caller —
//! possibly a callback on an event-loop thread — at all. So lookups run here, on a few threads
//! of their own: the asker waits for the answer only as long as it wants to (or not at all), and
//! an answer that comes after its deadline is dropped.
//!
//! The pool is small and bounded: a name server that never answers ties up at most
//! `MAX_THREADS` threads, and further lookups queue behind them (a queued lookup whose deadline
//! passes while it waits is dropped unresolved). Threads start on demand and exit after
//! `IDLE_EXIT` without work, so an idle process has no resolver threads and no wake-ups.

use parking_lot::{Condvar, Mutex};
use std::collections::VecDeque;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

/// At most this many lookups run at once.
const MAX_THREADS: usize = 4;

/// A resolver thread with nothing to do for this long exits.
const IDLE_EXIT: Duration = Duration::from_secs(10);

/// The outcome of a lookup: the host's addresses (possibly none), or why there are none.
pub type Answer = io::Result<Vec<SocketAddr>>;

struct Lookup {
    host: String,
    port: u16,
    deadline: Instant,
    deliver: Box<dyn FnOnce(Answer) + Send>,
}

#[derive(Default)]
struct Pool {
    queue: VecDeque<Lookup>,
    threads: usize,
    /// Threads waiting for work (each takes one queued lookup when woken).
    idle: usize,
}

static POOL: Mutex<Pool> = Mutex::new(Pool {
    queue: VecDeque::new(),
    threads: 0,
    idle: 0,
});
static WORK_QUEUED: Condvar = Condvar::new();

/// Resolves `host` (a name; IP literals need no lookup) for `port` on a resolver thread and
/// hands the answer to `deliver`, on that thread, if it is ready before `deadline`. Past the
/// deadline `deliver` is dropped without being called: the asker has stopped waiting.
pub fn lookup(
    host: &str,
    port: u16,
    deadline: Instant,
    deliver: impl FnOnce(Answer) + Send + 'static,
) {
    let mut pool = POOL.lock();
    pool.queue.push_back(Lookup {
        host: host.to_string(),
        port,
        deadline,
        deliver: Box::new(deliver),
    });
    if pool.queue.len() <= pool.idle {
        WORK_QUEUED.notify_one();
        return;
    }
    if pool.threads >= MAX_THREADS {
        // Taken by the first thread that finishes its lookup.
        return;
    }
    pool.threads += 1;
    drop(pool);
    let started = std::thread::Builder::new()
        .name("oasisnet-resolver".into())
        .spawn(work);
    if let Err(err) = started {
        let mut pool = POOL.lock();
        pool.threads -= 1;
        if pool.threads > 0 {
            return;
        }
        // No thread will ever take what is queued: answer it with the failure now.
        let stranded: Vec<Lookup> = pool.queue.drain(..).collect();
        drop(pool);
        for lookup in stranded {
            (lookup.deliver)(Err(io::Error::new(
                err.kind(),
                format!("cannot start a resolver thread: {err}"),
            )));
        }
    }
}

/// One resolver thread: takes lookups until none came for `IDLE_EXIT`.
fn work() {
    loop {
        let lookup = {
            let mut pool = POOL.lock();
            loop {
                if let Some(lookup) = pool.queue.pop_front() {
                    break lookup;
                }
                pool.idle += 1;
                let timed_out = WORK_QUEUED.wait_for(&mut pool, IDLE_EXIT).timed_out();
                pool.idle -= 1;
                if timed_out && pool.queue.is_empty() {
                    pool.threads -= 1;
                    return;
                }
            }
        };
        if Instant::now() >= lookup.deadline {
            continue;
        }
        let answer = (lookup.host.as_str(), lookup.port)
            .to_socket_addrs()
            .map(Iterator::collect);
        if Instant::now() < lookup.deadline {
            (lookup.deliver)(answer);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::sync_channel;

    #[test]
    fn resolves_a_name_and_drops_a_lookup_already_past_its_deadline() {
        let (sender, answer) = sync_channel(1);
        lookup(
            "localhost",
            80,
            Instant::now() + Duration::from_secs(10),
            move |a| {
                let _ = sender.send(a);
            },
        );
        let addresses = answer.recv().unwrap().unwrap();
        assert!(
            addresses
                .iter()
                .all(|a| a.ip().is_loopback() && a.port() == 80)
        );
        let (sender, answer) = sync_channel(1);
        lookup("localhost", 80, Instant::now(), move |a| {
            let _ = sender.send(a);
        });
        // The lookup is dropped with its sender: the channel disconnects without an answer.
        assert!(answer.recv().is_err());
    }
}
