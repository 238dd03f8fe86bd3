//! `oasis_initialize` / `oasis_finalize`: the library-wide runtime (event-loop threads).

use super::{OasisKeyValue, boundary, key_values};
use crate::config::RuntimeConfig;

/// Starts the library: parses `parameters` (see docs/PARAMETERS.md: `event-loop-threads`,
/// `log-level`, `offs-disable`) and starts the event-loop threads.
///
/// `parameters` may be NULL when `count` is 0. Calling it again while initialized changes
/// nothing and returns 0 (a warning is logged).
/// Returns 0, or -1 with `errno` (`EINVAL` for a bad parameter, or the thread-creation error).
///
/// # Safety
/// `parameters` points to `count` pairs of NUL-terminated strings (or is NULL with 0).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn oasis_initialize(parameters: *const OasisKeyValue, count: usize) -> i32 {
    boundary("oasis_initialize", -1, || {
        // SAFETY: forwarded caller contract.
        let pairs = unsafe { key_values(parameters, count) }?;
        let config = RuntimeConfig::parse(&pairs)?;
        crate::runtime::initialize(config)?;
        Ok(0)
    })
}

/// Stops the library: every server is stopped and every connection closed with 1001 (waiting
/// at most each connection's `close-timeout-ms`), then every event-loop thread is joined. No
/// callback runs after it returns. Handles stay valid to release, but every other call on them
/// fails with `ENOTCONN`/`EBADF`.
///
/// Must not be called from inside a callback (it would wait for its own thread): that fails
/// with `EDEADLK`. Returns 0 (also when not initialized), or -1 with `errno`.
#[unsafe(no_mangle)]
pub extern "C" fn oasis_finalize() -> i32 {
    boundary("oasis_finalize", -1, || {
        crate::runtime::finalize()?;
        Ok(0)
    })
}
