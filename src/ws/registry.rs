//! What is live, so that `oasis_finalize` can stop it: every server, and every client
//! connection. Finalize stops them here, then ends the reactor.
//!
//! Servers are known through [`Stoppable`], so that a server of a layer above this one (an HTTP
//! server) is stopped alike without this layer naming it.

use super::group::ConnectionGroup;
use crate::error::{Error, Result};
use crate::log::log;
use crate::runtime::{self, on_loop_thread};
use parking_lot::Mutex;
use std::sync::{Arc, LazyLock, Weak};
use std::time::{Duration, Instant};

/// A server as finalize sees it.
pub trait Stoppable: Send + Sync {
    /// Stops listening and starts closing every connection with 1001; returns at once.
    fn begin_stop(&self);
    /// Waits until every connection is gone or `deadline` passes; true when none is left.
    fn wait_empty(&self, deadline: Instant) -> bool;
    /// How long its connections may take to close (the longest of their close timeouts).
    fn close_timeout(&self) -> Duration;
    /// Switches its delegates off for good (the event loops have ended).
    fn deactivate(&self);
}

static SERVERS: Mutex<Vec<Weak<dyn Stoppable>>> = Mutex::new(Vec::new());

/// Every client connection, so finalize can close them.
pub static CLIENTS: LazyLock<Arc<ConnectionGroup>> = LazyLock::new(Arc::default);

/// How long finalize waits for closing handshakes beyond the usual close timeout.
const FINALIZE_GRACE: Duration = Duration::from_secs(1);

/// Makes `server` known to finalize for as long as it exists.
pub fn add_server<S: Stoppable + 'static>(server: &Arc<S>) {
    let weak: Weak<S> = Arc::downgrade(server);
    let weak: Weak<dyn Stoppable> = weak;
    let mut servers = SERVERS.lock();
    servers.retain(|s| s.strong_count() > 0);
    servers.push(weak);
}

/// `oasis_finalize`: every server is stopped and every connection closed with 1001 (waiting at
/// most the longest close timeout, and no less than 5 s, plus a grace second), then the event
/// loops end. Calls after this fail with `EPERM` until the next `oasis_initialize`.
pub fn finalize() -> Result<()> {
    if on_loop_thread() {
        return Err(Error::new(
            libc::EDEADLK,
            "oasis_finalize called from a callback: it would wait for its own thread",
        ));
    }
    let Some(runtime) = runtime::take() else {
        return Ok(());
    };
    let servers: Vec<Arc<dyn Stoppable>> =
        SERVERS.lock().iter().filter_map(Weak::upgrade).collect();
    for server in &servers {
        server.begin_stop();
    }
    CLIENTS.close_all(1001, "going away");
    let deadline = Instant::now()
        + servers
            .iter()
            .map(|s| s.close_timeout())
            .max()
            .unwrap_or_default()
            .max(Duration::from_secs(5))
        + FINALIZE_GRACE;
    for server in &servers {
        server.wait_empty(deadline);
    }
    CLIENTS.wait_empty(deadline);
    runtime.stop();
    // Client connections of the next `oasis_initialize` are not closed as they start.
    CLIENTS.reopen();
    for server in &servers {
        server.deactivate();
    }
    log!(Info, "finalized");
    Ok(())
}
