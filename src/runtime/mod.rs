//! The runtime `oasis_initialize` starts: event-loop threads, round-robin placement of
//! connections, and the registry of servers and client connections `oasis_finalize` stops.

mod event_loop;
mod group;

pub use event_loop::{Command, LoopShared, on_loop_thread};
pub use group::ConnectionGroup;

use crate::config::RuntimeConfig;
use crate::error::{Error, Result};
use crate::log::{self, log};
use crate::ws::server::Server;
use event_loop::EventLoop;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub struct Runtime {
    loops: Vec<Arc<LoopShared>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    next_loop: AtomicUsize,
    servers: Mutex<Vec<Weak<Server>>>,
    /// Every client connection, so finalize can close them.
    pub clients: Arc<ConnectionGroup>,
}

static RUNTIME: Mutex<Option<Arc<Runtime>>> = Mutex::new(None);

/// How long finalize waits for closing handshakes beyond the usual close timeout.
const FINALIZE_GRACE: Duration = Duration::from_secs(1);

impl Runtime {
    /// The loop for the next connection, round-robin.
    pub fn pick_loop(&self) -> Arc<LoopShared> {
        let index = self.next_loop.fetch_add(1, Ordering::Relaxed) % self.loops.len();
        self.loops[index].clone()
    }

    pub fn register_server(&self, server: &Arc<Server>) {
        let mut servers = self.servers.lock();
        servers.retain(|s| s.strong_count() > 0);
        servers.push(Arc::downgrade(server));
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

pub fn initialize(config: RuntimeConfig) -> Result<()> {
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
    if let Some(level) = config.log_level {
        log::set_level(level);
    }
    let mut loops = Vec::new();
    for index in 0..config.event_loop_threads {
        loops
            .push(EventLoop::new(index).map_err(|e| Error::io("cannot create an event loop", &e))?);
    }
    let runtime = Arc::new(Runtime {
        loops: loops.iter().map(EventLoop::shared).collect(),
        threads: Mutex::new(Vec::new()),
        next_loop: AtomicUsize::new(0),
        servers: Mutex::new(Vec::new()),
        clients: Arc::new(ConnectionGroup::default()),
    });
    for event_loop in loops {
        let weak = Arc::downgrade(&runtime);
        let index = event_loop.shared().index;
        let thread = std::thread::Builder::new()
            .name(format!("oasisnet-loop-{index}"))
            .spawn(move || event_loop.run(weak))
            .map_err(|e| Error::io("cannot start an event-loop thread", &e));
        match thread {
            Ok(handle) => runtime.threads.lock().push(handle),
            Err(err) => {
                // Joined without the runtime's lock: a started loop may log through a hook
                // that calls into the library.
                drop(slot);
                stop_threads(&runtime);
                return Err(err);
            }
        }
    }
    let threads = runtime.loops.len();
    *slot = Some(runtime);
    // Logged after the lock is released: a log hook may call into the library.
    drop(slot);
    log!(Info, "initialized with {threads} event-loop thread(s)");
    Ok(())
}

pub fn finalize() -> Result<()> {
    if on_loop_thread() {
        return Err(Error::new(
            libc::EDEADLK,
            "oasis_finalize called from a callback: it would wait for its own thread",
        ));
    }
    let Some(runtime) = RUNTIME.lock().take() else {
        return Ok(());
    };
    let servers: Vec<Arc<Server>> = runtime
        .servers
        .lock()
        .iter()
        .filter_map(Weak::upgrade)
        .collect();
    for server in &servers {
        server.begin_stop(&runtime);
    }
    runtime.clients.close_all(1001, "going away");
    let deadline = Instant::now()
        + servers
            .iter()
            .map(|s| s.settings.close_timeout)
            .max()
            .unwrap_or_default()
            .max(Duration::from_secs(5))
        + FINALIZE_GRACE;
    for server in &servers {
        server.group.wait_empty(deadline);
    }
    runtime.clients.wait_empty(deadline);
    stop_threads(&runtime);
    for server in &servers {
        server.deactivate();
    }
    log!(Info, "finalized");
    Ok(())
}

fn stop_threads(runtime: &Runtime) {
    for event_loop in &runtime.loops {
        event_loop.submit(Command::Shutdown);
    }
    let threads: Vec<JoinHandle<()>> = runtime.threads.lock().drain(..).collect();
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
