//! The `WsConnection` family: open (client), send, close, and what tells connections apart.
//!
//! Index: wsOpenConnection · wsSendText · wsSendTextLength · wsSendBinary · wsSendPing ·
//! wsCloseConnection · wsCloseConnectionWithStatus · wsConnectionPeerAddress ·
//! wsConnectionProtocol · wsConnectionSetUserData · wsConnectionGetUserData ·
//! wsConnectionIsOpen · wsConnectionRetain · wsConnectionRelease
//!
//! Every function here may be called from any thread, including from inside a callback.

use super::event::callback_connection;
use super::handle::HandleTable;
use super::{
    OasisKeyValue, WsConnection, WsEventDelegateVTable, boundary, c_bytes, c_str, copy_out,
    key_values,
};
use crate::error::{Error, Result};
use crate::ws::connection::{Connection, OutgoingKind};
use std::ffi::{CStr, c_char, c_void};
use std::sync::atomic::Ordering;
use std::sync::{Arc, LazyLock};

static CONNECTIONS: LazyLock<HandleTable<Connection>> =
    LazyLock::new(|| HandleTable::new("WsConnection handle"));

fn connection(handle: *mut WsConnection) -> Result<Arc<Connection>> {
    CONNECTIONS.get(handle as usize)
}

/// Runs `f` on the connection behind `handle`. The connection of the callback running on this
/// thread (the usual case: replying from onMessage) needs no handle-table lookup.
fn with_connection<R>(
    handle: *mut WsConnection,
    f: impl FnOnce(&Connection) -> Result<R>,
) -> Result<R> {
    let current = callback_connection();
    // SAFETY: the running callback's event holds its connection alive until it returns.
    if let Some(current) = unsafe { current.as_ref() }
        && handle as usize != 0
        && current.api_handle.load(Ordering::Relaxed) == handle as usize
    {
        return f(current);
    }
    let connection = connection(handle)?;
    f(&connection)
}

/// The handle C knows `connection` by: one per connection, made the first time it is needed
/// (a client's `wsOpenConnection`, or the first `wsEventConnection` of a server connection).
pub(crate) fn handle_of(connection: &Arc<Connection>) -> Result<*mut WsConnection> {
    Ok(assign_handle(connection, false)? as *mut WsConnection)
}

fn assign_handle(connection: &Arc<Connection>, owned_by_caller: bool) -> Result<usize> {
    let known = connection.api_handle.load(Ordering::Acquire);
    if known != 0 {
        if owned_by_caller {
            CONNECTIONS.retain(known)?;
        }
        return Ok(known);
    }
    let handle = CONNECTIONS.publish(connection, owned_by_caller)?;
    match connection
        .api_handle
        .compare_exchange(0, handle, Ordering::AcqRel, Ordering::Acquire)
    {
        Ok(_) => Ok(handle),
        Err(first) => {
            // Another thread published it meanwhile: keep its handle, give ours back.
            CONNECTIONS.forget(handle);
            if owned_by_caller {
                CONNECTIONS.retain(first)?;
            }
            Ok(first)
        }
    }
}

/// Opens a client connection to `url` (`ws://` or `wss://host[:port][/path][?query]`; host is a
/// name, an IPv4 address or `[IPv6]`). For `wss://` the TLS keys apply (docs/PARAMETERS.md).
///
/// The outcome of every open given a delegate is reported by exactly one onOpen or onError
/// (1006, or 1015 for a TLS failure; never onClose), on an event-loop thread, whatever failed:
/// the URL, a parameter, a certificate file, the name, the connect, TLS or the handshake. The
/// delegate's `release(user)` runs exactly once, after the last callback, when the connection
/// is gone (also on failure; the caller's handle must be released first).
///
/// With `timeout_msec > 0` it blocks in two phases: up to `timeout_msec` until connected to the
/// server (name resolution and TCP connect, each address in turn), then up to `timeout_msec`
/// again until the WebSocket connection is complete (TLS and the opening handshake). It returns
/// the open connection (onOpen has run, unless called from a callback: then it follows), or
/// NULL with `errno`: `ETIMEDOUT` (either phase), `EHOSTUNREACH` (name not resolved),
/// `ECONNREFUSED`, `EPROTO` for a refused handshake or TLS protocol mismatch,
/// `EKEYREJECTED`/`EKEYEXPIRED` for a server certificate that is not trusted / out of its
/// validity, `EACCES` when the server refused our certificate, …; onError follows. It may be
/// called from inside a callback (it then drives the connection itself and does not deadlock,
/// but that event loop waits meanwhile).
///
/// With `timeout_msec <= 0` nothing blocks, name resolution included (it runs on a resolver
/// thread): the connection is returned at once and onOpen or onError reports the outcome;
/// `handshake-timeout-ms` bounds the whole open (onError 1006 when it passes).
///
/// In both modes a failure found before anything is sent returns NULL at once, and onError
/// follows: `EINVAL` for a bad URL (also one that is not UTF-8) or parameter value, `ENOENT`
/// for a missing certificate or key file, `ENOTSUP` for an unsupported key. Only these return
/// NULL without any callback: `url` or `delegate` NULL (`EINVAL`) and a call before
/// `oasis_initialize` (`EPERM`); `release(user)` of a non-NULL delegate then runs before the
/// function returns.
///
/// The returned handle is owned by the caller: release it with `wsConnectionRelease`.
///
/// # Safety
/// `url` is NULL or NUL-terminated; `parameters` points to `count` pairs (or is NULL with 0);
/// `delegate` is NULL or a valid vtable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsOpenConnection(
    url: *const c_char,
    parameters: *const OasisKeyValue,
    count: usize,
    delegate: *const WsEventDelegateVTable,
    user: *mut c_void,
    timeout_msec: i32,
) -> *mut WsConnection {
    boundary("wsOpenConnection", std::ptr::null_mut(), || {
        // SAFETY: forwarded caller contract.
        let delegate = unsafe { super::delegate::from_c(delegate, user) }?;
        if url.is_null() {
            return Err(Error::invalid("url is NULL"));
        }
        // SAFETY: non-NULL, and NUL-terminated by the caller's contract.
        let url = unsafe { CStr::from_ptr(url) }.to_bytes();
        // SAFETY: forwarded caller contract. (A failure here is the open's to report.)
        let parameters = unsafe { key_values(parameters, count) };
        let connection = crate::ws::client::open(url, parameters, delegate, timeout_msec)?;
        Ok(assign_handle(&connection, true)? as *mut WsConnection)
    })
}

fn send(
    function: &str,
    handle: *mut WsConnection,
    kind: OutgoingKind,
    payload: Result<&[u8]>,
) -> i32 {
    boundary(function, -1, || {
        with_connection(handle, |connection| connection.send(kind, payload?))?;
        Ok(0)
    })
}

/// Sends a NUL-terminated UTF-8 text message. Returns 0 when queued, or -1 with `errno`:
/// `ENOTCONN` (not open, closing or closed), `EAGAIN` (send buffer full: `send-buffer-size-max`),
/// `EINVAL` (NULL or not UTF-8), `EBADF` (stale handle).
///
/// # Safety
/// `text` is NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsSendText(connection: *mut WsConnection, text: *const c_char) -> i32 {
    // SAFETY: forwarded caller contract.
    let payload = unsafe { c_str(text, "text") }.map(str::as_bytes);
    send("wsSendText", connection, OutgoingKind::Text, payload)
}

/// Sends `length` bytes of UTF-8 text (no NUL needed). Errors as `wsSendText`.
///
/// # Safety
/// `text` points to `length` readable bytes (or is NULL with 0).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsSendTextLength(
    connection: *mut WsConnection,
    text: *const c_char,
    length: usize,
) -> i32 {
    // SAFETY: forwarded caller contract.
    let payload = unsafe { c_bytes(text.cast(), length, "text") }.and_then(|bytes| {
        std::str::from_utf8(bytes)
            .map(str::as_bytes)
            .map_err(|_| Error::invalid("text is not valid UTF-8"))
    });
    send("wsSendTextLength", connection, OutgoingKind::Text, payload)
}

/// Sends a binary message. Errors as `wsSendText`.
///
/// # Safety
/// `data` points to `length` readable bytes (or is NULL with 0).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsSendBinary(
    connection: *mut WsConnection,
    data: *const c_void,
    length: usize,
) -> i32 {
    // SAFETY: forwarded caller contract.
    let payload = unsafe { c_bytes(data.cast(), length, "data") };
    send("wsSendBinary", connection, OutgoingKind::Binary, payload)
}

/// Sends a ping with at most 125 bytes of payload; the pong arrives as a `kWsMessagePong`
/// message event. Errors as `wsSendText`, plus `EMSGSIZE` for a longer payload.
///
/// # Safety
/// `data` points to `length` readable bytes (or is NULL with 0).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsSendPing(
    connection: *mut WsConnection,
    data: *const c_void,
    length: usize,
) -> i32 {
    // SAFETY: forwarded caller contract.
    let payload = unsafe { c_bytes(data.cast(), length, "data") };
    send("wsSendPing", connection, OutgoingKind::Ping, payload)
}

/// Starts the closing handshake with 1000 (normal closure) and returns; onClose follows when
/// the peer answers (or after `close-timeout-ms`). Everything sent before is delivered first.
/// Closing a connection that is already closing or closed returns 0. A client connection
/// still opening is abandoned (onError 1006).
#[unsafe(no_mangle)]
pub extern "C" fn wsCloseConnection(connection_handle: *mut WsConnection) -> i32 {
    boundary("wsCloseConnection", -1, || {
        with_connection(connection_handle, |connection| connection.close(1000, ""))?;
        Ok(0)
    })
}

/// As `wsCloseConnection`, with a status code (1000, 1001, 1002, 1003, 1007..1011 or
/// 3000..4999) and a UTF-8 reason of at most 123 bytes (NULL for none). `EINVAL` otherwise.
///
/// # Safety
/// `reason` is NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsCloseConnectionWithStatus(
    connection_handle: *mut WsConnection,
    status_code: i32,
    reason: *const c_char,
) -> i32 {
    boundary("wsCloseConnectionWithStatus", -1, || {
        // SAFETY: forwarded caller contract.
        let reason = if reason.is_null() {
            ""
        } else {
            unsafe { c_str(reason, "reason") }?
        };
        with_connection(connection_handle, |connection| {
            connection.close(status_code, reason)
        })?;
        Ok(0)
    })
}

/// Writes the peer's address (`"192.0.2.1:5000"` or `"[2001:db8::1]:5000"`) into `buffer` like
/// `snprintf` and returns its full length, or -1 with `errno`. `buffer` may be NULL with
/// `capacity` 0 to ask for the length.
///
/// # Safety
/// `buffer` has `capacity` writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsConnectionPeerAddress(
    connection_handle: *mut WsConnection,
    buffer: *mut c_char,
    capacity: usize,
) -> i32 {
    boundary("wsConnectionPeerAddress", -1, || {
        let address = connection(connection_handle)?
            .peer_address()
            .ok_or_else(|| Error::not_connected("the connection has no peer address yet"))?;
        // SAFETY: forwarded caller contract.
        unsafe { copy_out(address.to_string().as_bytes(), buffer, capacity) }
    })
}

/// Writes the agreed subprotocol (`""` when none was agreed or the connection is not open yet)
/// into `buffer` like `snprintf`; returns its full length, or -1 with `errno`.
///
/// # Safety
/// `buffer` has `capacity` writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsConnectionProtocol(
    connection_handle: *mut WsConnection,
    buffer: *mut c_char,
    capacity: usize,
) -> i32 {
    boundary("wsConnectionProtocol", -1, || {
        let connection = connection(connection_handle)?;
        let protocol = connection.protocol().unwrap_or_default();
        // SAFETY: forwarded caller contract.
        unsafe { copy_out(protocol.as_bytes(), buffer, capacity) }
    })
}

/// Stores one pointer of the application's on the connection (the library never touches it).
#[unsafe(no_mangle)]
pub extern "C" fn wsConnectionSetUserData(
    connection_handle: *mut WsConnection,
    user_data: *mut c_void,
) -> i32 {
    boundary("wsConnectionSetUserData", -1, || {
        connection(connection_handle)?.set_user_data(user_data);
        Ok(0)
    })
}

/// The pointer stored with `wsConnectionSetUserData` (NULL until then, or with `errno` set for a
/// bad handle).
#[unsafe(no_mangle)]
pub extern "C" fn wsConnectionGetUserData(connection_handle: *mut WsConnection) -> *mut c_void {
    boundary("wsConnectionGetUserData", std::ptr::null_mut(), || {
        Ok(connection(connection_handle)?.user_data())
    })
}

/// 1 when the connection is open (messages may be sent), 0 when not (yet or any more), -1 with
/// `errno` for a bad handle.
#[unsafe(no_mangle)]
pub extern "C" fn wsConnectionIsOpen(connection_handle: *mut WsConnection) -> i32 {
    boundary("wsConnectionIsOpen", -1, || {
        Ok(i32::from(connection(connection_handle)?.is_open()))
    })
}

/// Adds a reference: the handle stays valid (calls on a closed connection fail with
/// `ENOTCONN`) until the matching `wsConnectionRelease`. Use it to keep a connection seen in a
/// callback (`wsEventConnection`) beyond that callback.
#[unsafe(no_mangle)]
pub extern "C" fn wsConnectionRetain(connection_handle: *mut WsConnection) -> i32 {
    boundary("wsConnectionRetain", -1, || {
        CONNECTIONS.retain(connection_handle as usize)?;
        Ok(0)
    })
}

/// Drops a reference taken by `wsOpenConnection` or `wsConnectionRetain`. Releasing does not
/// close an open connection (use `wsCloseConnection`). Releasing NULL is a no-op (returns 0);
/// a stale handle, or one released more often than retained, fails with `EBADF` and nothing
/// else happens.
#[unsafe(no_mangle)]
pub extern "C" fn wsConnectionRelease(connection_handle: *mut WsConnection) -> i32 {
    boundary("wsConnectionRelease", -1, || {
        CONNECTIONS.release(connection_handle as usize)?;
        Ok(0)
    })
}
