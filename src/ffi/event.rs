//! The `WsEvent` family: what a callback was told.
//!
//! Index: wsEventMessageType · wsEventData · wsEventText · wsEventStatusCode ·
//! wsEventConnection · wsEventRetain · wsEventRelease
//!
//! An event pointer is valid during the callback that received it. `wsEventRetain` keeps it
//! (and a copy of its data) valid until the matching `wsEventRelease`, on any thread.

use super::{WsConnection, WsEvent, boundary, copy_out, ws_message_t};
use crate::error::{Error, Result};
use crate::ws::event::Event;
use std::ffi::c_char;

fn event<'a>(handle: *const WsEvent) -> Result<&'a Event> {
    // SAFETY: a non-NULL event pointer is one the library handed to a callback and is still
    // valid by the documented lifetime rule.
    unsafe { handle.cast::<Event>().as_ref() }.ok_or_else(|| Error::invalid("WsEvent is NULL"))
}

/// The message type of a message event; `kWsMessageUnknown` for open, error and close events
/// (and for NULL).
#[unsafe(no_mangle)]
pub extern "C" fn wsEventMessageType(event_handle: *const WsEvent) -> ws_message_t {
    boundary(
        "wsEventMessageType",
        ws_message_t::kWsMessageUnknown,
        || Ok(event(event_handle)?.message_type()),
    )
}

/// Points `*data` at the whole message (fragments reassembled; text is not NUL-terminated) and
/// returns its size, without copying. The bytes live as long as the event. An event without
/// data gives 0 and `*data` = NULL. Returns -1 with `EINVAL` for NULL arguments.
///
/// # Safety
/// `data` is NULL or a writable pointer slot.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsEventData(event_handle: *const WsEvent, data: *mut *const u8) -> i32 {
    boundary("wsEventData", -1, || {
        if data.is_null() {
            return Err(Error::invalid("data is NULL"));
        }
        let bytes = event(event_handle)?.data();
        let size = i32::try_from(bytes.len())
            .map_err(|_| Error::new(libc::EOVERFLOW, "message too large"))?;
        // SAFETY: checked non-NULL above; the caller provides a writable slot.
        unsafe {
            *data = if bytes.is_empty() {
                std::ptr::null()
            } else {
                bytes.as_ptr()
            }
        };
        Ok(size)
    })
}

/// Copies the message (or the close reason) as a NUL-terminated string into `buffer` like
/// `snprintf` and returns its full length, or -1 with `errno`. `buffer` may be NULL with
/// `capacity` 0 to ask for the length.
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
        let bytes = event(event_handle)?.data();
        // SAFETY: forwarded caller contract.
        unsafe { copy_out(bytes, buffer, capacity) }
    })
}

/// The status code of an error or close event (`ws_status_code_t`: 1000…1015); 0 for open
/// and message events; -1 with `EINVAL` for NULL.
#[unsafe(no_mangle)]
pub extern "C" fn wsEventStatusCode(event_handle: *const WsEvent) -> i32 {
    boundary("wsEventStatusCode", -1, || {
        Ok(event(event_handle)?.status_code())
    })
}

/// The connection the event belongs to, borrowed: valid during the callback (retain it with
/// `wsConnectionRetain` to keep it). NULL with `EINVAL` for a NULL event.
#[unsafe(no_mangle)]
pub extern "C" fn wsEventConnection(event_handle: *const WsEvent) -> *mut WsConnection {
    boundary("wsEventConnection", std::ptr::null_mut(), || {
        Ok(super::connection::publish(
            event(event_handle)?.connection(),
        ))
    })
}

/// Keeps the event (and its data, copied now if it was borrowed) valid after the callback.
/// Call it inside the callback, on the callback's thread: the borrowed data is only valid
/// until the callback returns. Returns 0, or -1 with `EINVAL` for NULL.
#[unsafe(no_mangle)]
pub extern "C" fn wsEventRetain(event_handle: *mut WsEvent) -> i32 {
    boundary("wsEventRetain", -1, || {
        event(event_handle)?.retain();
        Ok(0)
    })
}

/// Drops a reference taken with `wsEventRetain`.
#[unsafe(no_mangle)]
pub extern "C" fn wsEventRelease(event_handle: *mut WsEvent) -> i32 {
    boundary("wsEventRelease", -1, || {
        let event = event(event_handle)?;
        // SAFETY: the pointer came from the library and the caller owns the reference it drops.
        unsafe { Event::release(event) };
        Ok(0)
    })
}
