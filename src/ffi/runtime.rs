//! `oasis_initialize` / `oasis_finalize`: the library-wide runtime (event-loop threads).
//!
//! Index: oasis_initialize · oasis_finalize

use super::{OasisKeyValue, boundary, key_values};
use crate::config::RuntimeConfig;

/// Starts the library: parses `parameters` (docs/PARAMETERS.md: `event-loop-threads`,
/// `log-level`, `offs-disable`) and starts the event-loop threads. Until it has run,
/// `createWsServer` and `wsOpenConnection` fail with `EPERM`. It may be called again after
/// `oasis_finalize`.
///
/// Returns: 0, or -1 with `errno`: `EINVAL` (bad parameter), `EBUSY` (on an event-loop thread
/// while `oasis_finalize` stops the library), or the thread-creation error.
/// Called again while initialized it changes nothing (its parameters, `log-level` included, are
/// not applied), logs a warning and returns 0; its parameters are still checked first (a bad
/// one fails with `EINVAL`).
/// NULL: `parameters` may be NULL when `count` is 0; a NULL key or value: `EINVAL`.
/// Lifetime: `parameters` is read during the call only.
/// Threads: any thread; concurrent calls are serialized. Inside a callback the library is
/// initialized already, so the call changes nothing; in one on an event-loop thread while
/// `oasis_finalize` stops the library (an onClose of the connections it closes) it fails with
/// `EBUSY` and changes nothing either.
///
/// # Safety
/// `parameters` points to `count` pairs of NUL-terminated strings (or is NULL with 0).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn oasis_initialize(parameters: *const OasisKeyValue, count: usize) -> i32 {
    boundary("oasis_initialize", -1, || {
        // SAFETY: forwarded caller contract.
        let pairs = unsafe { key_values(parameters, count) }?;
        let config = RuntimeConfig::parse(&pairs)?;
        crate::runtime::initialize(
            config.event_loop_threads,
            config.receive_buffer_size,
            config.log_level,
        )?;
        Ok(0)
    })
}

/// Stops the library: every server stops listening and every connection is closed with 1001,
/// waiting for their onClose up to the largest server `close-timeout-ms` (at least 5 s) plus
/// 1 s; connections still open then get onClose 1006 (still opening: onError 1006); then the
/// event-loop threads are joined and every server's delegate is turned off.
///
/// Returns: 0, also when not initialized; -1 with `EDEADLK` on an event-loop thread.
/// Lifetime: handles stay valid: release and destroy them as usual (a delegate's
/// `release(user)` runs when its last handle goes). Calls that need the runtime fail: opens and
/// `startWsServer` with `EPERM`, sends with `ENOTCONN`. No delegate callback runs after it
/// returns.
/// Threads: any thread except an event-loop thread: inside a callback (or a log hook running on
/// a loop thread) it would wait for its own thread, so it fails with `EDEADLK` and changes
/// nothing. A concurrent second call returns 0 at once, possibly before the first finished.
#[unsafe(no_mangle)]
pub extern "C" fn oasis_finalize() -> i32 {
    boundary("oasis_finalize", -1, || {
        crate::ws::registry::finalize()?;
        Ok(0)
    })
}
