//! The `WsServer` family: create, start, stop, destroy, and the bound port.
//!
//! Index: createWsServer · startWsServer · stopWsServer · destroyWsServer · wsServerPort ·
//! wsServerRetain · wsServerRelease · wsServerShutdown
//!
//! Every function here may be called from any thread, including from inside a callback; the
//! waiting ones (stop, shutdown, destroy, the last release) do not wait there.

use super::handle::kind;
use super::handle_table::HandleTable;
use super::{OasisKeyValue, WsEventDelegateVTable, WsServer, boundary, key_values};
use crate::config::ServerConfig;
use crate::error::Error;
use crate::ws::server::Server;
use std::ffi::c_void;
use std::sync::{Arc, LazyLock};

static SERVERS: LazyLock<HandleTable<Server, { kind::SERVER }>> =
    LazyLock::new(|| HandleTable::new("WsServer handle"));

fn server(handle: *mut WsServer) -> crate::error::Result<Arc<Server>> {
    SERVERS.get(handle as usize)
}

/// Creates a server from `parameters` (docs/PARAMETERS.md: `port` is required) and a delegate
/// whose callbacks receive the events of every connection it accepts. It does not listen until
/// `startWsServer`. With `cert-file-path` and `pkey-file-path` it is a wss server; every
/// certificate and key file is read and checked here.
///
/// Returns: a handle owned by the caller (end it with `destroyWsServer`), or NULL with `errno`:
/// `EINVAL` (bad argument, parameter value, certificate or key), `ENOENT` (a file is missing),
/// `ENOTSUP` (DSA or encrypted key), `EPERM` (`oasis_initialize` not called), `EMFILE` (too many
/// live handles), `ENOSYS` (the library was built without the `server` feature, or without `tls`
/// and TLS keys were given).
/// NULL: `delegate`: `EINVAL`; `parameters` may be NULL when `count` is 0; `user` may be NULL.
/// Lifetime: `parameters` and `*delegate` are read during the call only (the vtable is copied).
/// `user` goes to every callback and to `release`, called exactly once when the server and all
/// its connections are gone; also when this call fails (before it returns), unless the vtable
/// itself was refused (NULL or `struct_size` too small).
/// Threads: any thread, also inside any callback.
///
/// # Safety
/// `parameters` points to `count` pairs (or is NULL with 0); `delegate` is NULL or a valid
/// vtable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn createWsServer(
    parameters: *const OasisKeyValue,
    count: usize,
    delegate: *const WsEventDelegateVTable,
    user: *mut c_void,
) -> *mut WsServer {
    boundary("createWsServer", std::ptr::null_mut(), || {
        // SAFETY: forwarded caller contract.
        let delegate = unsafe { super::delegate::from_c(delegate, user) }?;
        // SAFETY: forwarded caller contract.
        let pairs = unsafe { key_values(parameters, count) }?;
        let config = ServerConfig::parse(&pairs)?;
        let server = Server::create(config, delegate)?;
        Ok(SERVERS.publish(&server, true)? as *mut WsServer)
    })
}

/// Binds (on the calling thread) and starts accepting on an event loop. A stopped server may be
/// started again: it binds anew.
///
/// Returns: 0, or -1 with `errno`: `EADDRINUSE`, `EACCES` (bind failed), `EALREADY` (already
/// running), `EINVAL` (after `wsServerShutdown`/`destroyWsServer`), `EPERM` (not initialized, or
/// finalized), `EBADF` (stale handle).
/// NULL: `EINVAL`.
/// Threads: any thread, also inside any callback.
#[unsafe(no_mangle)]
pub extern "C" fn startWsServer(server_handle: *mut WsServer) -> i32 {
    boundary("startWsServer", -1, || {
        server(server_handle)?.start()?;
        Ok(0)
    })
}

/// Stops accepting and closes every connection of the server with 1001 (going away). Outside a
/// callback it waits until the loop stopped listening (at most 5 s) and until each connection's
/// onClose has run (at most `close-timeout-ms` + 1 s); inside a callback it only starts the
/// closes and returns. The delegate stays on: a stopped server may be started again.
///
/// Returns: 0, also for a server already stopped; -1 with `EBADF` for a stale handle.
/// NULL: `EINVAL`.
/// Threads: any thread, also inside any callback (without waiting there).
#[unsafe(no_mangle)]
pub extern "C" fn stopWsServer(server_handle: *mut WsServer) -> i32 {
    boundary("stopWsServer", -1, || {
        server(server_handle)?.stop()?;
        Ok(0)
    })
}

/// Stops the server (as `stopWsServer`) and turns its delegate off for good, without giving up a
/// reference: the handle stays valid until released, but the server cannot be started again.
/// `destroyWsServer` is this plus `wsServerRelease`.
///
/// Returns: 0, or -1 with `EBADF` for a stale handle.
/// NULL: `EINVAL`.
/// Threads: any thread. Outside a callback no callback of this server runs once it returns
/// (running ones are waited for). Inside a callback it does not wait: callbacks of this server
/// already running on other event-loop threads may still finish after it returns; no new one
/// starts.
#[unsafe(no_mangle)]
pub extern "C" fn wsServerShutdown(server_handle: *mut WsServer) -> i32 {
    boundary("wsServerShutdown", -1, || {
        server(server_handle)?.shutdown()?;
        Ok(0)
    })
}

/// Stops the server (as `stopWsServer`), turns its delegate off and releases the caller's
/// reference: `wsServerShutdown` plus `wsServerRelease`. `server_handle` must not be used
/// afterwards (unless it was retained: each `wsServerRetain` still needs its release).
///
/// Returns: 0; -1 with `EBADF` for a stale, foreign or already destroyed handle (then nothing
/// else happens).
/// NULL: no-op, returns 0.
/// Lifetime: the delegate's `release(user)` runs once the server and all its connections are
/// gone, possibly on the calling thread before this returns.
/// Threads: any thread. Outside a callback no callback of this server runs once it returns: it
/// waits for running ones through the delegate's gate (the one library lock held while a
/// callback runs). Inside a callback it does not wait: callbacks of this server already running
/// on other event-loop threads (`event-loop-threads` > 1) may still finish after it returns; no
/// new one starts.
#[unsafe(no_mangle)]
pub extern "C" fn destroyWsServer(server_handle: *mut WsServer) -> i32 {
    boundary("destroyWsServer", -1, || {
        if server_handle.is_null() {
            return Ok(0);
        }
        server(server_handle)?.shutdown()?;
        SERVERS.release(server_handle as usize)?;
        Ok(0)
    })
}

/// The TCP port the server listens on (useful with `port` = 0).
///
/// Returns: the port, or -1 with `errno`: `ENOTCONN` (not running), `EBADF` (stale handle).
/// NULL: `EINVAL`.
/// Threads: any thread, also inside any callback.
#[unsafe(no_mangle)]
pub extern "C" fn wsServerPort(server_handle: *mut WsServer) -> i32 {
    boundary("wsServerPort", -1, || {
        let port = server(server_handle)?
            .local_port()
            .ok_or_else(|| Error::not_connected("server is not running"))?;
        Ok(i32::from(port))
    })
}

/// Adds a reference owned by the caller (the C++ layer keeps one per `WsServerRef`); end it with
/// `wsServerRelease`.
///
/// Returns: 0, or -1 with `EBADF` (stale, foreign or released handle).
/// NULL: `EINVAL` (unlike the release, a NULL retain is an error).
/// Threads: any thread, also inside any callback.
#[unsafe(no_mangle)]
pub extern "C" fn wsServerRetain(server_handle: *mut WsServer) -> i32 {
    boundary("wsServerRetain", -1, || {
        SERVERS.retain(server_handle as usize)?;
        Ok(0)
    })
}

/// Drops one reference taken by `createWsServer` or `wsServerRetain`. When the last one goes the
/// server is shut down as by `wsServerShutdown` (with its waiting rules), and the handle goes
/// stale once the server is gone.
///
/// Returns: 0; -1 with `EBADF` for a stale handle or one released more often than retained (then
/// nothing else happens).
/// NULL: no-op, returns 0.
/// Lifetime: as `destroyWsServer`: the delegate's `release(user)` may run before this returns.
/// Threads: as `wsServerShutdown`.
#[unsafe(no_mangle)]
pub extern "C" fn wsServerRelease(server_handle: *mut WsServer) -> i32 {
    boundary("wsServerRelease", -1, || {
        if let Some((server, 0)) = SERVERS.release(server_handle as usize)? {
            server.shutdown()?;
        }
        Ok(0)
    })
}
