//! The `WsEvent` family: what a callback was told.
//!
//! Index: wsEventMessageType · wsEventData · wsEventText · wsEventStatusCode ·
//! wsEventConnection · wsEventRetain · wsEventRelease
//!
//! A `WsEvent*` is a generational handle (`handle.rs`), not an address: it is valid during the
//! callback that received it and, after a `wsEventRetain`, until the matching `wsEventRelease`.
//! Used at any other time — after the callback, after its last release, released without a
//! retain or once too often — every function fails with `EBADF`, and never reaches another event.
//!
//! The events live in per-thread slots (`event_slot.rs`).

use super::event_slot::{EVENTS, lock_event, running_event, stale, with_event};
pub(crate) use super::event_slot::{Running, with_c_event};
use super::{WsConnection, WsEvent, boundary, copy_out, ws_message_t};
use crate::error::Error;
use std::ffi::c_char;
use std::sync::atomic::Ordering;

/// The type of a message event.
///
/// Returns: `kWsMessageText`, `kWsMessageBinary`, `kWsMessagePing` or `kWsMessagePong` for a
/// message event; `kWsMessageUnknown` for open, error and close events, and (with `errno` set:
/// `EINVAL`, `EBADF`) for a NULL event or one that is not live.
/// NULL: `kWsMessageUnknown` with `EINVAL`.
/// Threads: any thread while the event is live (during its callback, or retained).
#[unsafe(no_mangle)]
pub extern "C" fn wsEventMessageType(event_handle: *const WsEvent) -> ws_message_t {
    // SAFETY: the event of the callback running on this thread is valid until it returns.
    if let Some(event) = unsafe { running_event(event_handle).as_ref() } {
        return event.message_type();
    }
    event_message_type(event_handle)
}

/// `wsEventMessageType` for any other handle (see [`running_event`]).
#[inline(never)]
fn event_message_type(event_handle: *const WsEvent) -> ws_message_t {
    boundary(
        "wsEventMessageType",
        ws_message_t::kWsMessageUnknown,
        || with_event(event_handle, |event| Ok(event.message_type())),
    )
}

/// Points `*data` at the event's data without copying and returns its size: the whole message
/// (fragments reassembled; text is not NUL-terminated), or the reason of a close or error event.
///
/// Returns: the size in bytes (0 with `*data` = NULL when there is no data), or -1 with `errno`:
/// `EINVAL`, `EBADF` (event not live), `EOVERFLOW` (size over `INT32_MAX`).
/// NULL: `event_handle` or `data`: `EINVAL`, `*data` untouched.
/// Lifetime: the bytes belong to the library; never free them. Fetched during the callback, they
/// are valid until the callback returns. After `wsEventRetain` the event has its own copy: call
/// `wsEventData` again after the retain for a pointer valid until the last `wsEventRelease` (a
/// pointer fetched before the retain still ends with the callback).
/// Threads: any thread while the event is live.
///
/// # Safety
/// `data` is NULL or a writable pointer slot.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsEventData(event_handle: *const WsEvent, data: *mut *const u8) -> i32 {
    // SAFETY: the event of the callback running on this thread is valid until it returns.
    if let Some(event) = unsafe { running_event(event_handle).as_ref() }
        && !data.is_null()
    {
        let bytes = event.data();
        if let Ok(size) = i32::try_from(bytes.len()) {
            // SAFETY: checked non-NULL; the caller provides a writable slot.
            unsafe { *data = data_pointer(bytes) };
            return size;
        }
    }
    // SAFETY: forwarded caller contract.
    unsafe { event_data(event_handle, data) }
}

/// Where `*data` points for `bytes`: NULL when there are none.
fn data_pointer(bytes: &[u8]) -> *const u8 {
    if bytes.is_empty() {
        std::ptr::null()
    } else {
        bytes.as_ptr()
    }
}

/// `wsEventData` for any other handle, and its errors (see [`running_event`]).
///
/// # Safety
/// As `wsEventData`.
#[inline(never)]
unsafe fn event_data(event_handle: *const WsEvent, data: *mut *const u8) -> i32 {
    boundary("wsEventData", -1, || {
        if data.is_null() {
            return Err(Error::invalid("data is NULL"));
        }
        with_event(event_handle, |event| {
            let bytes = event.data();
            let size = i32::try_from(bytes.len())
                .map_err(|_| Error::new(libc::EOVERFLOW, "message too large"))?;
            // SAFETY: checked non-NULL above; the caller provides a writable slot.
            unsafe { *data = data_pointer(bytes) };
            Ok(size)
        })
    })
}

/// Copies the event's data (the message, or the close or error reason) and a NUL into `buffer`
/// like `snprintf`: at most `capacity - 1` bytes. Binary data is copied as it is.
///
/// Returns: the data's full length without the NUL (at least `capacity` means truncated), or -1
/// with `errno`: `EINVAL`, `EBADF` (event not live).
/// NULL: `event_handle`: `EINVAL`. `buffer` NULL with `capacity` 0 asks for the length; NULL with
/// `capacity` > 0: `EINVAL`.
/// Lifetime: the text is copied into the caller's buffer; nothing stays borrowed.
/// Threads: any thread while the event is live.
///
/// # Safety
/// `buffer` has `capacity` writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsEventText(
    event_handle: *const WsEvent,
    buffer: *mut c_char,
    capacity: usize,
) -> i32 {
    boundary("wsEventText", -1, || {
        // SAFETY: forwarded caller contract.
        with_event(event_handle, |event| unsafe {
            copy_out(event.data(), buffer, capacity)
        })
    })
}

/// The status code of an error or close event (`ws_status_code_t`: 1000..1015).
///
/// Returns: the code; 0 for open and message events; -1 with `errno`: `EINVAL`, `EBADF` (event
/// not live).
/// NULL: `EINVAL`.
/// Threads: any thread while the event is live.
#[unsafe(no_mangle)]
pub extern "C" fn wsEventStatusCode(event_handle: *const WsEvent) -> i32 {
    boundary("wsEventStatusCode", -1, || {
        with_event(event_handle, |event| Ok(event.status_code()))
    })
}

/// The connection the event belongs to: the same handle `wsOpenConnection` returned for a client
/// connection, and one handle per server connection for all its events.
///
/// Returns: a borrowed handle, or NULL with `errno`: `EINVAL`, `EBADF` (event not live).
/// NULL: NULL with `EINVAL`.
/// Lifetime: borrowed, not owned by the caller: do not release it. It is valid at least while
/// the event is live; to keep it longer, `wsConnectionRetain` it (then release it once).
/// Threads: any thread while the event is live.
#[unsafe(no_mangle)]
pub extern "C" fn wsEventConnection(event_handle: *const WsEvent) -> *mut WsConnection {
    // SAFETY: the event of the callback running on this thread is valid until it returns.
    if let Some(event) = unsafe { running_event(event_handle).as_ref() } {
        let known = event.connection().api_handle.load(Ordering::Acquire);
        if known != 0 {
            return known as *mut WsConnection;
        }
    }
    event_connection(event_handle)
}

/// `wsEventConnection` for any other handle, and a connection's first handle (see
/// [`running_event`]).
#[inline(never)]
fn event_connection(event_handle: *const WsEvent) -> *mut WsConnection {
    boundary("wsEventConnection", std::ptr::null_mut(), || {
        with_event(event_handle, |event| {
            super::connection::handle_of(event.connection())
        })
    })
}

/// Keeps the event live after its callback returns, until the matching `wsEventRelease`
/// (retains nest). The first retain copies the data and takes a reference to the connection:
/// call `wsEventData` again afterwards for a pointer that outlives the callback.
///
/// Returns: 0, or -1 with `errno`: `EINVAL`, `EBADF` (event not live: its callback returned and
/// it was not retained, or it was released).
/// NULL: `EINVAL` (unlike the release, a NULL retain is an error).
/// Lifetime: each successful retain is the caller's, to end with one `wsEventRelease`.
/// Threads: any thread while the event is live; so the first retain must happen before the
/// callback returns.
#[unsafe(no_mangle)]
pub extern "C" fn wsEventRetain(event_handle: *mut WsEvent) -> i32 {
    boundary("wsEventRetain", -1, || {
        let handle = event_handle as usize;
        if handle == 0 {
            return Err(Error::invalid("WsEvent is NULL"));
        }
        let mut slot = lock_event(handle).ok_or_else(stale)?;
        let entry = slot.value.as_mut().expect("locked slots hold a value");
        if !entry.is_live() {
            return Err(stale());
        }
        if entry.kept.is_none() {
            entry.kept = Some(entry.event.keep());
        }
        entry.retains += 1;
        Ok(0)
    })
}

/// Drops one reference taken with `wsEventRetain`. After the last one the handle is stale and
/// the data fetched after the retain is freed; a release inside the event's own callback leaves
/// the event valid until the callback returns.
///
/// Returns: 0; -1 with `EBADF` for an event that is not live or not retained (released without a
/// retain, or more often than retained): then nothing else happens.
/// NULL: no-op, returns 0.
/// Lifetime: the last release may drop the last reference to an ended connection; the
/// delegate's `release(user)` then runs on the calling thread, before this returns.
/// Threads: any thread, also inside any callback.
#[unsafe(no_mangle)]
pub extern "C" fn wsEventRelease(event_handle: *mut WsEvent) -> i32 {
    boundary("wsEventRelease", -1, || {
        let handle = event_handle as usize;
        if handle == 0 {
            return Ok(0);
        }
        let mut slot = lock_event(handle).ok_or_else(stale)?;
        let entry = slot.value.as_mut().expect("locked slots hold a value");
        if entry.retains == 0 {
            return Err(Error::new(
                libc::EBADF,
                "WsEvent was not retained (or was released as often as it was retained)",
            ));
        }
        entry.retains -= 1;
        if entry.retains > 0 || entry.event.in_callback() {
            return Ok(0);
        }
        // (The event's connection reference, which may be the last, is dropped outside the lock.)
        EVENTS.free(slot, handle);
        Ok(0)
    })
}
