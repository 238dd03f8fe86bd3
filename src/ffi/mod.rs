//! The C surface. Every exported function lives in one of the files below, one per C object
//! family; the machinery they share (panic boundary, errno, last-error text, C strings, handle
//! tables) lives here and in `handle.rs`. Nothing in this layer decides behaviour: it checks
//! arguments, converts them, calls the core, and turns the result into `0`/`-1`/`NULL` + `errno`.

pub mod connection;
mod delegate;
pub mod event;
mod event_slot;
pub mod handle;
pub mod handle_table;
pub mod http_request;
pub mod http_server;
pub mod log;
pub mod runtime;
pub mod server;
pub mod types;

use crate::error::{Error, Result};
use crate::log::{LogLevel, log};
use std::cell::RefCell;
use std::ffi::{CStr, CString, c_char};

pub use connection::*;
pub use event::*;
pub use http_request::*;
pub use http_server::*;
pub use log::*;
pub use runtime::*;
pub use server::*;
pub use types::*;

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

/// Records a failure for C: `errno`, the thread's last-error text, and a log line.
pub(crate) fn fail(function: &str, err: &Error) {
    // EAGAIN is flow control, not a fault: keep it out of the default log.
    record_failure(function, err, err.errno == libc::EAGAIN);
}

/// Records an answer that comes as -1 and `errno` but is no fault (a header the request did not
/// have): as [`fail`], logged at debug level only.
pub(crate) fn fail_quietly(function: &str, err: &Error) {
    record_failure(function, err, true);
}

fn record_failure(function: &str, err: &Error, quiet: bool) {
    let text = format!("{function}: {}", err.message);
    if quiet {
        log!(Debug, "{text}");
    } else {
        log!(Warn, "{text}");
    }
    LAST_ERROR.with(|slot| {
        *slot.borrow_mut() = CString::new(text.replace('\0', " ")).unwrap_or_default();
    });
    set_errno(err.errno);
}

pub(crate) fn set_errno(value: i32) {
    // SAFETY: __errno_location always returns this thread's errno slot.
    unsafe { *libc::__errno_location() = value };
}

pub(crate) fn last_error_ptr() -> *const c_char {
    LAST_ERROR.with(|slot| slot.borrow().as_ptr())
}

/// Runs an exported function's body: turns `Err` into errno + last error, and a panic into an
/// `EFAULT` failure, so that no panic ever unwinds into C.
pub(crate) fn boundary<T>(function: &str, failed: T, body: impl FnOnce() -> Result<T>) -> T {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)) {
        Ok(Ok(value)) => value,
        outcome => settle(function, failed, outcome),
    }
}

/// A call that failed or panicked, reported as `boundary` says. A function of its own, kept out
/// of every exported function's way: their successful calls pay for none of it.
#[cold]
#[inline(never)]
fn settle<T>(function: &str, failed: T, outcome: std::thread::Result<Result<T>>) -> T {
    match outcome {
        Ok(Ok(value)) => value,
        Ok(Err(err)) => {
            fail(function, &err);
            failed
        }
        Err(panic) => {
            let what = crate::error::panic_text(&*panic);
            crate::log::write(
                LogLevel::Error,
                "oasisnet",
                &format!("{function}: internal error: {what}"),
            );
            fail(
                function,
                &Error::new(libc::EFAULT, format!("internal error: {what}")),
            );
            failed
        }
    }
}

/// Borrows a NUL-terminated C string as UTF-8, naming the argument in the error.
///
/// # Safety
/// `ptr` is NULL or points to a NUL-terminated string that outlives the borrow.
pub(crate) unsafe fn c_str<'a>(ptr: *const c_char, what: &str) -> Result<&'a str> {
    if ptr.is_null() {
        return Err(Error::invalid(format!("{what} is NULL")));
    }
    // SAFETY: non-NULL and NUL-terminated by the caller's contract.
    let bytes = unsafe { CStr::from_ptr(ptr) }.to_bytes();
    std::str::from_utf8(bytes).map_err(|_| Error::invalid(format!("{what} is not valid UTF-8")))
}

/// Borrows `len` bytes at `ptr`; NULL is accepted only for an empty slice.
///
/// # Safety
/// `ptr` is NULL or points to `len` readable bytes that outlive the borrow.
pub(crate) unsafe fn c_bytes<'a>(ptr: *const u8, len: usize, what: &str) -> Result<&'a [u8]> {
    if ptr.is_null() {
        if len == 0 {
            return Ok(&[]);
        }
        return Err(bad_bytes(what, len));
    }
    if len > isize::MAX as usize {
        return Err(bad_bytes(what, len));
    }
    // SAFETY: the caller promises `len` readable bytes at `ptr`.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// The error of `c_bytes` (NULL with a length, or a length no buffer has), made out of the way
/// of the successful calls.
#[cold]
#[inline(never)]
fn bad_bytes(what: &str, len: usize) -> Error {
    if len > isize::MAX as usize {
        Error::invalid(format!("{what} length {len} is impossible"))
    } else {
        Error::invalid(format!("{what} is NULL with length {len}"))
    }
}

/// Copies a C key-value array into owned pairs.
///
/// # Safety
/// `pairs` is NULL (then `count` must be 0) or points to `count` entries whose strings are
/// NUL-terminated.
pub(crate) unsafe fn key_values(
    pairs: *const OasisKeyValue,
    count: usize,
) -> Result<Vec<(String, String)>> {
    if count == 0 {
        return Ok(Vec::new());
    }
    if pairs.is_null() {
        return Err(Error::invalid(format!(
            "parameters is NULL with count {count}"
        )));
    }
    if count > 4096 {
        return Err(Error::invalid(format!(
            "parameter count {count} is implausible"
        )));
    }
    // SAFETY: the caller promises `count` entries.
    let entries = unsafe { std::slice::from_raw_parts(pairs, count) };
    entries
        .iter()
        .enumerate()
        .map(|(index, entry)| {
            // SAFETY: each entry holds NUL-terminated strings or NULL, by contract.
            let key = unsafe { c_str(entry.key, &format!("parameters[{index}].key")) }?;
            let value = unsafe { c_str(entry.value, &format!("parameter '{key}' value")) }?;
            Ok((key.to_string(), value.to_string()))
        })
        .collect()
}

/// Copies `text` into a caller's buffer like `snprintf`: always NUL-terminated when `capacity`
/// > 0, returns the full length so the caller can detect truncation.
///
/// # Safety
/// `buffer` is NULL (then `capacity` must be 0) or has `capacity` writable bytes.
pub(crate) unsafe fn copy_out(text: &[u8], buffer: *mut c_char, capacity: usize) -> Result<i32> {
    let full = i32::try_from(text.len())
        .map_err(|_| Error::new(libc::EOVERFLOW, "value too long for int32_t"))?;
    if capacity == 0 {
        return Ok(full);
    }
    if buffer.is_null() {
        return Err(Error::invalid(format!(
            "buffer is NULL with capacity {capacity}"
        )));
    }
    let n = text.len().min(capacity - 1);
    // SAFETY: `buffer` has `capacity` bytes and n + 1 <= capacity.
    unsafe {
        std::ptr::copy_nonoverlapping(text.as_ptr(), buffer.cast::<u8>(), n);
        *buffer.add(n) = 0;
    }
    Ok(full)
}
