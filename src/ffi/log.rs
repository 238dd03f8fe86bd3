//! Logging and error reporting for C: levels, the firmware hook, the last-error text.

use super::{boundary, last_error_ptr};
use crate::error::Error;
use crate::log::{self, LogHook, LogLevel};
use std::ffi::{CStr, c_char, c_void};

/// The text of the last failure on the calling thread (`"function: reason"`), or `""`.
/// The pointer stays valid until the next failing call on this thread.
#[unsafe(no_mangle)]
pub extern "C" fn oasis_last_error() -> *const c_char {
    last_error_ptr()
}

/// Sets the log level (`oasis_log_level_t`, 0..5). Returns 0, or -1 with `EINVAL`.
#[unsafe(no_mangle)]
pub extern "C" fn oasis_log_set_level(level: i32) -> i32 {
    boundary("oasis_log_set_level", -1, || {
        let level = LogLevel::from_i32(level)
            .ok_or_else(|| Error::invalid(format!("log level {level} is not 0..5")))?;
        log::set_level(level);
        Ok(0)
    })
}

/// The current log level (`oasis_log_level_t`).
#[unsafe(no_mangle)]
pub extern "C" fn oasis_log_get_level() -> i32 {
    log::level() as i32
}

/// Routes every log line to `hook(user, level, line)` instead of stderr; NULL restores stderr.
/// The hook may be called from any thread, including event-loop threads, and must not block.
/// `line` is NUL-terminated, has no trailing newline, and lives only during the call.
#[unsafe(no_mangle)]
pub extern "C" fn oasis_log_set_hook(
    hook: Option<unsafe extern "C" fn(user: *mut c_void, level: i32, line: *const c_char)>,
    user: *mut c_void,
) {
    let hook: Option<LogHook> = hook;
    log::set_hook(hook, user);
}

/// Writes one line through the library's logger (used by the `DLOG` macros of OasisLog.h).
/// `tag` may be NULL. Lines above the current level are dropped.
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
