//! The reactor `oasis_initialize` starts: event-loop threads and round-robin placement of work
//! on them. It knows nothing of WebSocket: it runs [`Task`]s and [`Command`]s (see
//! `event_loop.rs`); what is live and how it stops belongs to the code above that owns it.

mod biased_lock;
mod event_loop;
pub mod oneshot;
mod read_share;
mod slab;
pub mod sys;
mod wait;

pub use biased_lock::{BiasedGuard, BiasedLock, register as biased_locks_available};

pub use event_loop::{
    Command, Context, Flow, LoopShared, Readiness, Task, Tasks, on_loop_thread, token,
};
pub use read_share::ReadShare;

use crate::error::{Error, Result};
use crate::log::{self, log};
use event_loop::EventLoop;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;

pub struct Runtime {
    loops: Vec<Arc<LoopShared>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    next_loop: AtomicUsize,
}

static RUNTIME: Mutex<Option<Arc<Runtime>>> = Mutex::new(None);

/// The runtime as long as anyone holds it: also while `oasis_finalize`, which has taken it out
/// of service, stops what runs on it.
static LAST: Mutex<Weak<Runtime>> = Mutex::new(Weak::new());

impl Runtime {
    /// The loop for the next connection, round-robin.
    pub fn pick_loop(&self) -> Arc<LoopShared> {
        let index = self.next_loop.fetch_add(1, Ordering::Relaxed) % self.loops.len();
        self.loops[index].clone()
    }

    /// Ends every loop (its tasks get `Task::shutdown`) and joins its thread. A thread that
    /// ended with a panic is logged.
    pub fn stop(&self) {
        for event_loop in &self.loops {
            event_loop.submit(|tasks| tasks.stop());
        }
        let threads: Vec<JoinHandle<()>> = self.threads.lock().drain(..).collect();
        for thread in threads {
            let name = thread.thread().name().unwrap_or("event loop").to_string();
            if let Err(panic) = thread.join() {
                log!(
                    Error,
                    "{name} ended with an internal error: {}",
                    crate::error::panic_text(&*panic)
                );
            }
        }
    }
}

/// The running runtime, or `EPERM` before `oasis_initialize` / after `oasis_finalize`.
pub fn current() -> Result<Arc<Runtime>> {
    RUNTIME.lock().clone().ok_or_else(|| {
        Error::new(
            libc::EPERM,
            "oasis_initialize has not been called (or oasis_finalize has)",
        )
    })
}

/// The event loops of the runtime, running or being stopped by `oasis_finalize`; none once it
/// has stopped.
pub fn loops() -> Vec<Arc<LoopShared>> {
    LAST.lock()
        .upgrade()
        .map(|runtime| runtime.loops.clone())
        .unwrap_or_default()
}

/// Takes the runtime out of service: from now on `current` fails with `EPERM`. The caller
/// finishes the work still on its loops, then calls [`Runtime::stop`].
pub fn take() -> Option<Arc<Runtime>> {
    RUNTIME.lock().take()
}

/// Starts `threads` event loops, and sets the log level when one is given. A second call while
/// running changes nothing (and says so).
/// `receive_buffer_size`: the bytes one read on an event loop may take.
pub fn initialize(
    threads: usize,
    receive_buffer_size: usize,
    log_level: Option<log::LogLevel>,
) -> Result<()> {
    // (Before the runtime's lock: a log hook may call into the library.)
    if !biased_lock::register() {
        log!(
            Info,
            "membarrier (private expedited) not available: connections take their locks with atomic operations"
        );
    }
    let mut slot = RUNTIME.lock();
    if slot.is_some() {
        // Nothing of this call applies, log-level included: the first call's settings stay.
        drop(slot);
        log!(
            Warn,
            "oasis_initialize: already initialized; this call changed nothing (its parameters were not applied)"
        );
        return Ok(());
    }
    if on_loop_thread() {
        // A loop thread of a runtime that `oasis_finalize` has taken and is stopping (a callback
        // its closes run): a new runtime started here would outlive that finalize.
        drop(slot);
        return Err(Error::new(
            libc::EBUSY,
            "called from an event-loop thread while oasis_finalize is stopping the library",
        ));
    }
    if let Some(level) = log_level {
        log::set_level(level);
    }
    let mut loops = Vec::new();
    for index in 0..threads {
        loops.push(
            EventLoop::new(index, receive_buffer_size)
                .map_err(|e| Error::io("cannot create an event loop", &e))?,
        );
    }
    let runtime = Arc::new(Runtime {
        loops: loops.iter().map(EventLoop::shared).collect(),
        threads: Mutex::new(Vec::new()),
        next_loop: AtomicUsize::new(0),
    });
    for event_loop in loops {
        let index = event_loop.shared().index;
        let thread = std::thread::Builder::new()
            .name(format!("oasisnet-loop-{index}"))
            .spawn(move || event_loop.run())
            .map_err(|e| Error::io("cannot start an event-loop thread", &e));
        match thread {
            Ok(handle) => runtime.threads.lock().push(handle),
            Err(err) => {
                // Joined without the runtime's lock: a started loop may log through a hook
                // that calls into the library.
                drop(slot);
                runtime.stop();
                return Err(err);
            }
        }
    }
    let threads = runtime.loops.len();
    *LAST.lock() = Arc::downgrade(&runtime);
    *slot = Some(runtime);
    // Logged after the lock is released: a log hook may call into the library.
    drop(slot);
    log!(
        Info,
        "initialized with {threads} event-loop thread(s), reads of up to {receive_buffer_size} bytes"
    );
    Ok(())
}
