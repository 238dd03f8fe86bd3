//! The `WsConnection` family: open (client), send, close, and what tells connections apart.
//!
//! Index: wsOpenConnection · wsSendText · wsSendTextLength · wsSendBinary · wsSendPing ·
//! wsCloseConnection · wsCloseConnectionWithStatus · wsConnectionPeerAddress ·
//! wsConnectionProtocol · wsConnectionRequestPath · wsConnectionRequestQuery ·
//! wsConnectionRequestHeader · wsConnectionSetUserData · wsConnectionGetUserData ·
//! wsConnectionIsOpen · wsConnectionRetain · wsConnectionRelease
//!
//! Every function here may be called from any thread, including from inside a callback.

use super::event::Running;
use super::handle::kind;
use super::handle_table::HandleTable;
use super::{
    OasisKeyValue, WsConnection, WsEventDelegateVTable, boundary, c_bytes, c_str, copy_out,
    fail_quietly, key_values,
};
use crate::error::{Error, Result};
use crate::protocol::{self, Outgoing};
use crate::ws::connection::Connection;
use std::ffi::{CStr, c_char, c_void};
use std::sync::atomic::Ordering;
use std::sync::{Arc, LazyLock};

static CONNECTIONS: LazyLock<HandleTable<Connection, { kind::CONNECTION }>> =
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
    with_connection_at(Running::get(), handle, f)
}

/// [`with_connection`] with the running callback's event already read.
#[inline(always)]
fn with_connection_at<R>(
    running: Running,
    handle: *mut WsConnection,
    f: impl FnOnce(&Connection) -> Result<R>,
) -> Result<R> {
    let found;
    // SAFETY: the running callback's event holds its connection alive until it returns.
    let connection = match unsafe { running.connection().as_ref() } {
        Some(current)
            if handle as usize != 0
                && current.api_handle.load(Ordering::Relaxed) == handle as usize =>
        {
            current
        }
        _ => {
            found = connection(handle)?;
            &*found
        }
    };
    // (One call of `f`: it is inlined here.)
    f(connection)
}

/// The handle C knows `connection` by: one per connection, made the first time it is needed
/// (a client's `wsOpenConnection`, or the first `wsEventConnection` of a server connection).
#[inline]
pub(crate) fn handle_of(connection: &Arc<Connection>) -> Result<*mut WsConnection> {
    // Published already (every call after the first): no call into the table.
    let known = connection.api_handle.load(Ordering::Acquire);
    if known != 0 {
        return Ok(known as *mut WsConnection);
    }
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
/// name, an IPv4 address or `[IPv6]`) with the keys of docs/PARAMETERS.md (the TLS keys apply to
/// `wss://`). The vtable is copied; `user` goes to every callback and to `release`.
///
/// Outcome: once the delegate is accepted, exactly one onOpen or onError (1006, or 1015 for a
/// TLS failure; never onClose) reports the open, whatever failed (URL, parameter, certificate
/// file, name, connect, TLS, handshake), on an event-loop thread, also when this call returns
/// NULL. `release(user)` runs exactly once, after the last callback, when the connection is
/// gone (its handle released, its retained events released).
///
/// Timeout: with `timeout_msec > 0` the call blocks in two phases: up to `timeout_msec` to reach
/// the server (name resolution, then TCP connect to each address in turn), then up to
/// `timeout_msec` again, counted from the connect, for TLS and the opening handshake. Outside a
/// callback it returns after onOpen has run (waiting at most 5 s for onOpen to return). With
/// `timeout_msec <= 0` nothing blocks, name resolution included (it runs on a resolver thread):
/// the connection is returned at once, not open yet, and `handshake-timeout-ms` bounds the whole
/// open (onError 1006 past it).
///
/// Returns: a handle owned by the caller, or NULL with `errno` and onError following: `EINVAL`
/// (bad URL, also one that is not UTF-8, or parameter value), `ENOENT` (certificate or key file
/// missing), `ENOTSUP` (DSA or encrypted key), `ENOSYS` (a `wss://` URL, and the library was
/// built without the `tls` feature); blocking only: `ETIMEDOUT` (either phase),
/// `EHOSTUNREACH` (name not resolved), `ECONNREFUSED`, `ECONNRESET`, `EPROTO` (handshake refused,
/// TLS protocol mismatch), `EKEYREJECTED`/`EKEYEXPIRED` (server certificate not trusted / out of
/// its validity), `EACCES` (our certificate refused), ….
/// Only these return NULL without any callback: `url` or `delegate` NULL, or `struct_size` too
/// small (`EINVAL`), a call before `oasis_initialize` (`EPERM`), and any call to a library built
/// without the `client` feature (`ENOSYS`). An accepted delegate's `release(user)` then runs
/// before the call returns; a refused vtable's never runs.
/// NULL: `url` or `delegate`: `EINVAL`, as above. `parameters` may be NULL when `count` is 0;
/// `user` may be NULL.
/// Lifetime: `url`, `parameters` and `*delegate` are read during the call only. Release the
/// returned handle with `wsConnectionRelease` (that does not close the connection).
/// Threads: any thread. Inside a callback it does not deadlock, but a blocking open stalls that
/// callback's loop (up to twice `timeout_msec`) and returns before onOpen, which runs later on the
/// connection's loop (after the current callback, when that is the same loop).
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

/// The four send functions (`Text` takes NUL-terminated text, `TextLength` a length).
#[derive(Clone, Copy, PartialEq)]
enum SendFunction {
    Text,
    TextLength,
    Binary,
    Ping,
}

impl SendFunction {
    fn name(self) -> &'static str {
        match self {
            SendFunction::Text => "wsSendText",
            SendFunction::TextLength => "wsSendTextLength",
            SendFunction::Binary => "wsSendBinary",
            SendFunction::Ping => "wsSendPing",
        }
    }

    fn kind(self) -> Outgoing {
        match self {
            SendFunction::Text | SendFunction::TextLength => Outgoing::Text,
            SendFunction::Binary => Outgoing::Binary,
            SendFunction::Ping => Outgoing::Ping,
        }
    }
}

/// Sends the payload at `data` (`length` bytes; for `wsSendText`, up to its NUL, and `length`
/// is unused; text is checked as UTF-8 first: [`is_utf8_text`]). A bad handle is reported
/// before a bad payload. The payload comes as pointer and length, not as a `Result` of a slice:
/// two words travel in registers, where a larger value goes through memory, and reading it
/// back whole stalls on the separate stores that wrote it.
fn send(function: SendFunction, handle: *mut WsConnection, data: *const u8, length: usize) -> i32 {
    boundary(function.name(), -1, || {
        let running = Running::get();
        with_connection_at(running, handle, |connection| {
            // SAFETY: forwarded from the exported function's caller contract.
            let payload = unsafe { given_payload(function, data, length) }?;
            let kind = function.kind();
            if kind == Outgoing::Text && !is_utf8_text(running, payload) {
                return Err(not_utf8());
            }
            connection.send(kind, payload)
        })?;
        Ok(0)
    })
}

/// The payload a send function was given (see [`send`]).
///
/// # Safety
/// As the send functions': for `wsSendText`, `data` is NULL or NUL-terminated; for the others
/// it points to `length` readable bytes (or is NULL with 0).
unsafe fn given_payload<'a>(
    function: SendFunction,
    data: *const u8,
    length: usize,
) -> Result<&'a [u8]> {
    match function {
        SendFunction::Text if data.is_null() => Err(Error::invalid("text is NULL")),
        // SAFETY: non-NULL, and NUL-terminated by the caller's contract.
        SendFunction::Text => Ok(unsafe { CStr::from_ptr(data.cast()) }.to_bytes()),
        // SAFETY: the caller's contract.
        SendFunction::TextLength => unsafe { c_bytes(data, length, "text") },
        // SAFETY: the caller's contract.
        SendFunction::Binary | SendFunction::Ping => unsafe { c_bytes(data, length, "data") },
    }
}

/// Whether text to send is valid UTF-8, found the cheapest way its bytes allow: the message
/// being answered, sent back as it is, was checked when it arrived; ASCII takes one pass that
/// stops at the first byte that is not; a copy of the message, one comparison; anything else,
/// the UTF-8 check.
fn is_utf8_text(running: Running, text: &[u8]) -> bool {
    let message = running.text_message();
    message.is_some_and(|m| m.as_ptr() == text.as_ptr() && m.len() == text.len())
        || protocol::is_ascii(text)
        || message == Some(text)
        || protocol::is_utf8(text)
}

#[cold]
fn not_utf8() -> Error {
    Error::invalid("text is not valid UTF-8")
}

/// Sends a NUL-terminated UTF-8 text message (split into fragments of at most
/// `websocket-fragment-size-max` bytes when that key is set).
///
/// Returns: 0 once the message is written or queued, or -1 with `errno`: `ENOTCONN` (not open
/// yet, closing or closed; also inside onClose and the onError of a failure), `EAGAIN` (send
/// buffer over `send-buffer-size-max`: retry later), `ECONNRESET` (a write to the peer failed),
/// `EINVAL` (not UTF-8), `EBADF` (stale, foreign or released handle).
/// NULL: `connection` or `text`: `EINVAL`.
/// Lifetime: `text` is read during the call only; the library keeps no pointer to it.
/// Threads: any thread, also inside any callback. Sends from one thread go out in order; sends
/// from several threads are serialized by the connection's lock.
///
/// # Safety
/// `text` is NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsSendText(connection: *mut WsConnection, text: *const c_char) -> i32 {
    send(SendFunction::Text, connection, text.cast(), 0)
}

/// Sends `length` bytes of UTF-8 text (no NUL needed; `length` 0 sends an empty message).
///
/// Returns: as `wsSendText`.
/// NULL: `connection`: `EINVAL`; `text` may be NULL only with `length` 0.
/// Lifetime: `text` is read during the call only.
/// Threads: any thread, also inside any callback.
///
/// # Safety
/// `text` points to `length` readable bytes (or is NULL with 0).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsSendTextLength(
    connection: *mut WsConnection,
    text: *const c_char,
    length: usize,
) -> i32 {
    send(SendFunction::TextLength, connection, text.cast(), length)
}

/// Sends a binary message of `length` bytes (0 sends an empty message).
///
/// Returns: as `wsSendText` (without the UTF-8 check).
/// NULL: `connection`: `EINVAL`; `data` may be NULL only with `length` 0.
/// Lifetime: `data` is read during the call only.
/// Threads: any thread, also inside any callback.
///
/// # Safety
/// `data` points to `length` readable bytes (or is NULL with 0).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsSendBinary(
    connection: *mut WsConnection,
    data: *const c_void,
    length: usize,
) -> i32 {
    send(SendFunction::Binary, connection, data.cast(), length)
}

/// Sends a ping with at most 125 bytes of payload; the peer's pong arrives as a
/// `kWsMessagePong` message event.
///
/// Returns: as `wsSendText`, plus `EMSGSIZE` for a payload over 125 bytes.
/// NULL: `connection`: `EINVAL`; `data` may be NULL only with `length` 0.
/// Lifetime: `data` is read during the call only.
/// Threads: any thread, also inside any callback.
///
/// # Safety
/// `data` points to `length` readable bytes (or is NULL with 0).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsSendPing(
    connection: *mut WsConnection,
    data: *const c_void,
    length: usize,
) -> i32 {
    send(SendFunction::Ping, connection, data.cast(), length)
}

/// Starts the closing handshake with 1000 (normal closure) and returns at once; onClose follows
/// when the peer answers (with the peer's code), or 1006 after `close-timeout-ms`, which waits for
/// a peer still reading what was sent before (docs/PARAMETERS.md). Everything sent before goes out
/// first. A client still opening is abandoned (onError 1006; opened meanwhile: closed normally).
///
/// Returns: 0, also when the connection is already closing or closed: then nothing changes
/// (inside onClose and the onError of a failure the reported code stays); -1 with `EBADF` for a
/// stale, foreign or released handle.
/// NULL: `EINVAL`.
/// Lifetime: the handle stays the caller's; closing does not release it.
/// Threads: any thread, also inside any callback.
#[unsafe(no_mangle)]
pub extern "C" fn wsCloseConnection(connection_handle: *mut WsConnection) -> i32 {
    boundary("wsCloseConnection", -1, || {
        with_connection(connection_handle, |connection| connection.close(1000, ""))?;
        Ok(0)
    })
}

/// As `wsCloseConnection`, with a status code an endpoint may send (1000..1003, 1007..1014 or
/// 3000..4999) and a UTF-8 reason of at most 123 bytes.
///
/// Returns: as `wsCloseConnection`; -1 with `EINVAL` for another code or a bad reason (checked
/// even when the connection is already closed).
/// NULL: `connection_handle`: `EINVAL`; `reason` NULL sends no reason.
/// Lifetime: `reason` is read during the call only.
/// Threads: any thread, also inside any callback.
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
/// `snprintf`: at most `capacity - 1` bytes and a NUL. The address stays known after the
/// connection closed.
///
/// Returns: the address's full length without the NUL (at least `capacity` means truncated), or
/// -1 with `errno`: `ENOTCONN` (a client not connected yet has no peer address), `EBADF`, `EINVAL`.
/// NULL: `connection_handle`: `EINVAL`. `buffer` NULL with `capacity` 0 asks for the length; NULL
/// with `capacity` > 0: `EINVAL`.
/// Lifetime: the text is copied into the caller's buffer; nothing stays borrowed.
/// Threads: any thread, also inside any callback.
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

/// Writes the agreed subprotocol into `buffer` like `snprintf` (`""` when none was agreed or the
/// connection is not open yet).
///
/// Returns: its full length without the NUL (at least `capacity` means truncated), or -1 with
/// `errno`: `EBADF`, `EINVAL`.
/// NULL: as `wsConnectionPeerAddress`.
/// Lifetime: the text is copied into the caller's buffer; nothing stays borrowed.
/// Threads: any thread, also inside any callback.
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

/// Writes the path of the upgrade request's target into `buffer` like `snprintf`: `"/chat"` for
/// `GET /chat?room=1`, as sent (not percent-decoded). A client connection gives its URL's path.
/// `""` while the connection is not open yet. It stays known for the connection's life.
///
/// Returns: its full length without the NUL (at least `capacity` means truncated), or -1 with
/// `errno`: `EBADF`, `EINVAL`.
/// NULL: as `wsConnectionPeerAddress`.
/// Lifetime: the text is copied into the caller's buffer; nothing stays borrowed.
/// Threads: any thread, also inside any callback.
///
/// # Safety
/// `buffer` has `capacity` writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsConnectionRequestPath(
    connection_handle: *mut WsConnection,
    buffer: *mut c_char,
    capacity: usize,
) -> i32 {
    boundary("wsConnectionRequestPath", -1, || {
        let connection = connection(connection_handle)?;
        // SAFETY: forwarded caller contract.
        unsafe { copy_out(connection.request_path().as_bytes(), buffer, capacity) }
    })
}

/// Writes the query of the upgrade request's target into `buffer` like `snprintf`, raw and
/// without the `?`: `"room=1&x"` for `GET /chat?room=1&x` (`""` when there is none, or while the
/// connection is not open yet). A client connection gives its URL's query.
///
/// Returns: its full length without the NUL (at least `capacity` means truncated), or -1 with
/// `errno`: `EBADF`, `EINVAL`.
/// NULL: as `wsConnectionPeerAddress`.
/// Lifetime: the text is copied into the caller's buffer; nothing stays borrowed.
/// Threads: any thread, also inside any callback.
///
/// # Safety
/// `buffer` has `capacity` writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsConnectionRequestQuery(
    connection_handle: *mut WsConnection,
    buffer: *mut c_char,
    capacity: usize,
) -> i32 {
    boundary("wsConnectionRequestQuery", -1, || {
        let connection = connection(connection_handle)?;
        // SAFETY: forwarded caller contract.
        unsafe { copy_out(connection.request_query().as_bytes(), buffer, capacity) }
    })
}

/// Writes the value of the upgrade request's header `name` (any case, e.g. `"cookie"`) into
/// `buffer` like `snprintf`, without surrounding blanks; several lines of that name are joined
/// with `", "`. The request head is kept until onOpen returns, so call it from onOpen; with the
/// server key `websocket-keep-request-headers` set it answers for the connection's life.
///
/// Returns: the value's full length without the NUL (at least `capacity` means truncated; a
/// present but empty header gives 0), or -1 with `errno`: `ENOENT` (the request had no such
/// header), `ENODATA` (the head is not kept: after onOpen returned, or a client connection, which
/// received no request), `EBADF`, `EINVAL` (`name` empty or not UTF-8).
/// NULL: `connection_handle` or `name`: `EINVAL`; `buffer` as `wsConnectionPeerAddress`.
/// Lifetime: `name` is read during the call only; the value is copied into the caller's buffer.
/// Threads: any thread, also inside any callback.
///
/// # Safety
/// `name` is NULL or NUL-terminated; `buffer` has `capacity` writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsConnectionRequestHeader(
    connection_handle: *mut WsConnection,
    name: *const c_char,
    buffer: *mut c_char,
    capacity: usize,
) -> i32 {
    boundary("wsConnectionRequestHeader", -1, || {
        let connection = connection(connection_handle)?;
        // SAFETY: forwarded caller contract.
        let name = unsafe { c_str(name, "name") }?;
        if name.is_empty() {
            return Err(Error::invalid("name is empty"));
        }
        match connection.request_header(name) {
            // SAFETY: forwarded caller contract.
            Ok(value) => unsafe { copy_out(&value, buffer, capacity) },
            // An optional header the request did not have is an answer, not a fault: no warning
            // in the log for each lookup.
            Err(err) if err.errno == libc::ENOENT => {
                fail_quietly("wsConnectionRequestHeader", &err);
                Ok(-1)
            }
            Err(err) => Err(err),
        }
    })
}

/// Stores one pointer of the application's on the connection, replacing the previous one. The
/// library never dereferences or frees it.
///
/// Returns: 0, or -1 with `EBADF` (stale handle).
/// NULL: `connection_handle`: `EINVAL`; `user_data` may be NULL.
/// Lifetime: the pointed-to data stays the application's to free (after onClose, say).
/// Threads: any thread, also inside any callback.
#[unsafe(no_mangle)]
pub extern "C" fn wsConnectionSetUserData(
    connection_handle: *mut WsConnection,
    user_data: *mut c_void,
) -> i32 {
    boundary("wsConnectionSetUserData", -1, || {
        connection(connection_handle)?.set_user_data(user_data as usize);
        Ok(0)
    })
}

/// The pointer stored with `wsConnectionSetUserData`.
///
/// Returns: the pointer (NULL until one was stored), or NULL with `errno` (`EINVAL`, `EBADF`) for
/// a bad handle: set `errno` to 0 first to tell a stored NULL from a failure.
/// NULL: `EINVAL`.
/// Threads: any thread, also inside any callback.
#[unsafe(no_mangle)]
pub extern "C" fn wsConnectionGetUserData(connection_handle: *mut WsConnection) -> *mut c_void {
    boundary("wsConnectionGetUserData", std::ptr::null_mut(), || {
        Ok(connection(connection_handle)?.user_data() as *mut c_void)
    })
}

/// Whether messages may be sent on the connection.
///
/// Returns: 1 when open; 0 when not yet or not any more (0 inside onClose and the onError of a
/// failure); -1 with `errno` (`EBADF`) for a bad handle.
/// NULL: `EINVAL`.
/// Threads: any thread, also inside any callback.
#[unsafe(no_mangle)]
pub extern "C" fn wsConnectionIsOpen(connection_handle: *mut WsConnection) -> i32 {
    boundary("wsConnectionIsOpen", -1, || {
        Ok(i32::from(connection(connection_handle)?.is_open()))
    })
}

/// Adds a reference owned by the caller: the handle then stays valid until the matching
/// `wsConnectionRelease`, also after the connection closed (calls on it then fail with
/// `ENOTCONN`). Use it to keep a connection seen in a callback (`wsEventConnection`).
///
/// Returns: 0, or -1 with `EBADF` (stale, foreign, or the connection is gone).
/// NULL: `EINVAL` (unlike the release, a NULL retain is an error).
/// Threads: any thread, also inside any callback.
#[unsafe(no_mangle)]
pub extern "C" fn wsConnectionRetain(connection_handle: *mut WsConnection) -> i32 {
    boundary("wsConnectionRetain", -1, || {
        CONNECTIONS.retain(connection_handle as usize)?;
        Ok(0)
    })
}

/// Drops one reference taken by `wsOpenConnection` or `wsConnectionRetain`. It does not close an
/// open connection (`wsCloseConnection` does): while the connection lives, its callbacks go on
/// and `wsEventConnection` gives the same handle; once it is gone and unreferenced, the handle is
/// stale (`EBADF`).
///
/// Returns: 0; -1 with `EBADF` for a stale handle or one released more often than retained (then
/// nothing else happens).
/// NULL: no-op, returns 0.
/// Lifetime: the last reference to an ended connection may go here; the delegate's
/// `release(user)` then runs on the calling thread, before this returns.
/// Threads: any thread, also inside any callback.
#[unsafe(no_mangle)]
pub extern "C" fn wsConnectionRelease(connection_handle: *mut WsConnection) -> i32 {
    boundary("wsConnectionRelease", -1, || {
        CONNECTIONS.release(connection_handle as usize)?;
        Ok(0)
    })
}
