//! Logging and error reporting for C: levels, the firmware hook, the last-error text.
//!
//! Index: oasis_last_error · oasis_log_set_level · oasis_log_get_level · oasis_log_set_hook ·
//! oasis_log_message

use super::{boundary, last_error_ptr};
use crate::error::Error;
use crate::log::{self, LogLevel, LogSink};
use std::ffi::{CStr, CString, c_char, c_void};
use std::sync::Arc;

/// The reason for the last failure on the calling thread, as `"function: reason"`, or `""` when
/// this thread has had none. Successful calls do not clear it.
///
/// Returns: never NULL.
/// Lifetime: owned by the library (one string per thread); never free it. Valid until the next
/// failing library call on this thread, that thread's log hook included: copy it to keep it.
/// Threads: any thread; each thread sees its own failures (a failure inside a callback is
/// recorded on that event-loop thread).
#[unsafe(no_mangle)]
pub extern "C" fn oasis_last_error() -> *const c_char {
    last_error_ptr()
}

/// Sets the log level (`oasis_log_level_t`, 0..5): lines at or below it are written.
///
/// Returns: 0, or -1 with `EINVAL` for another value.
/// Threads: any thread, also inside any callback and the log hook.
#[unsafe(no_mangle)]
pub extern "C" fn oasis_log_set_level(level: i32) -> i32 {
    boundary("oasis_log_set_level", -1, || {
        let level = LogLevel::from_i32(level)
            .ok_or_else(|| Error::invalid(format!("log level {level} is not 0..5")))?;
        log::set_level(level);
        Ok(0)
    })
}

/// The current log level (`oasis_log_level_t`). Never fails.
/// Threads: any thread, also inside any callback and the log hook.
#[unsafe(no_mangle)]
pub extern "C" fn oasis_log_get_level() -> i32 {
    log::level() as i32
}

/// Routes every log line to `hook(user, level, line)` instead of stderr. Never fails.
///
/// NULL: `hook` NULL restores stderr; `user` may be NULL (it is passed to the hook as it is).
/// Lifetime: `line` is NUL-terminated, has no trailing newline, belongs to the library and lives
/// only during the hook call. `user` must stay valid until a later `oasis_log_set_hook` has
/// returned: that call waits for hook calls already running on other threads (called from
/// inside the hook itself it cannot wait for that call, which is still running).
/// Threads: `oasis_log_set_hook` may be called from any thread, also inside callbacks and the
/// hook. The hook is called on whichever thread logs (event-loop threads, the application's),
/// possibly on several at once; it should not block. It is called with no library lock held
/// and may call any library function (with the rules of its thread: on an event-loop thread,
/// those of a callback); lines the library logs on that thread while the hook runs go to
/// stderr, not back into the hook.
#[unsafe(no_mangle)]
pub extern "C" fn oasis_log_set_hook(
    hook: Option<unsafe extern "C" fn(user: *mut c_void, level: i32, line: *const c_char)>,
    user: *mut c_void,
) {
    let user = user as usize;
    let sink = hook.map(|function| -> LogSink {
        Arc::new(move |level: LogLevel, line: &str| {
            if let Ok(line) = CString::new(line) {
                // SAFETY: the hook was registered by the firmware for exactly this call; `user`
                // is the pointer it registered with it.
                unsafe { function(user as *mut c_void, level as i32, line.as_ptr()) };
            }
        })
    });
    log::set_hook(sink);
}

/// Writes one line through the library's logger (used by the `DLOG` macros of OasisLog.h), to
/// stderr or the hook. Lines above the current level, or with a level outside 1..5, are dropped.
/// Non-UTF-8 bytes are replaced.
///
/// Returns: nothing; a NULL `message` sets `errno` to `EINVAL` (and the last error).
/// NULL: `tag` may be NULL (tagged `app`); `message` NULL: nothing is logged, `EINVAL`.
/// Lifetime: `tag` and `message` are read during the call only.
/// Threads: any thread, also inside any callback; inside the hook the line goes to stderr.
///
/// # Safety
/// `tag` and `message` are NULL or NUL-terminated strings.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn oasis_log_message(level: i32, tag: *const c_char, message: *const c_char) {
    boundary("oasis_log_message", (), || {
        let Some(level) = LogLevel::from_i32(level) else {
            return Ok(());
        };
        if message.is_null() {
            return Err(crate::error::Error::invalid("message is NULL"));
        }
        // A log line is written even when the firmware's text is not UTF-8 (bytes replaced).
        // SAFETY: non-NULL strings are NUL-terminated by the caller's contract.
        let text = |p: *const c_char| unsafe { CStr::from_ptr(p) }.to_string_lossy();
        let tag = if tag.is_null() {
            "app".into()
        } else {
            text(tag)
        };
        let message = text(message);
        log::write(level, &tag, &message);
        Ok(())
    })
}
