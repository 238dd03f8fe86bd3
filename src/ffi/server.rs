//! The `WsServer` family: create, start, stop, destroy, and the bound port.
//!
//! Index: createWsServer · startWsServer · stopWsServer · destroyWsServer · wsServerPort ·
//! wsServerRetain · wsServerRelease · wsServerShutdown

use super::handle::HandleTable;
use super::{OasisKeyValue, WsEventDelegateVTable, WsServer, boundary, key_values};
use crate::config::ServerConfig;
use crate::error::Error;
use crate::ws::server::Server;
use std::ffi::c_void;
use std::sync::{Arc, LazyLock};

static SERVERS: LazyLock<HandleTable<Server>> =
    LazyLock::new(|| HandleTable::new("WsServer handle"));

fn server(handle: *mut WsServer) -> crate::error::Result<Arc<Server>> {
    SERVERS.get(handle as usize)
}

/// Creates a server from `parameters` (docs/PARAMETERS.md: `port` is required) and a delegate
/// whose callbacks receive every connection's events. The vtable is copied; `user` is handed to
/// every callback and to `release`, which is called exactly once when the server and all its
/// connections are gone — also when this call fails.
///
/// With `cert-file-path` and `pkey-file-path` it is a wss server; every certificate and key
/// file is read and checked here.
///
/// Returns a handle owned by the caller (end it with `destroyWsServer`), or NULL with `errno`:
/// `EINVAL` (bad argument, parameter value, or certificate/key problem), `ENOENT` (a file is
/// missing), `ENOTSUP` (DSA or encrypted key), `EPERM` (oasis_initialize not called).
///
/// # Safety
/// `parameters` points to `count` pairs (or is NULL with 0); `delegate` is NULL (the call fails with `EINVAL`) or a valid vtable.
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

/// Binds and starts accepting. A stopped server may be started again (it binds anew).
/// Returns 0, or -1 with `errno` (`EADDRINUSE`, `EACCES`, `EALREADY` when already running,
/// `EINVAL` after `wsServerShutdown`/`destroyWsServer`, `EBADF` for a bad handle).
#[unsafe(no_mangle)]
pub extern "C" fn startWsServer(server_handle: *mut WsServer) -> i32 {
    boundary("startWsServer", -1, || {
        server(server_handle)?.start()?;
        Ok(0)
    })
}

/// Stops accepting and closes every connection with 1001 (going away). Outside a callback it
/// waits until each connection's onClose has run (at most `close-timeout-ms`); inside a
/// callback it only starts the closes. Stopping a stopped server returns 0.
#[unsafe(no_mangle)]
pub extern "C" fn stopWsServer(server_handle: *mut WsServer) -> i32 {
    boundary("stopWsServer", -1, || {
        server(server_handle)?.stop()?;
        Ok(0)
    })
}

/// Stops the server and turns its delegate off (no callback of it starts after this returns),
/// without giving up a reference. `destroyWsServer` is this plus `wsServerRelease`.
#[unsafe(no_mangle)]
pub extern "C" fn wsServerShutdown(server_handle: *mut WsServer) -> i32 {
    boundary("wsServerShutdown", -1, || {
        server(server_handle)?.shutdown()?;
        Ok(0)
    })
}

/// Stops the server (as `stopWsServer`), turns its delegate off and releases the caller's
/// handle: `server_handle` must not be used afterwards. No callback of this server runs after
/// it returns. Called from inside a callback it cannot wait for callbacks of this server that
/// are already running on other event-loop threads (with `event-loop-threads` > 1); no new one
/// starts.
/// NULL is a no-op (returns 0); a stale handle fails with `EBADF` and nothing else happens.
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

/// The TCP port the server listens on (useful with `port` = 0), or -1 with `ENOTCONN` when it
/// is not running.
#[unsafe(no_mangle)]
pub extern "C" fn wsServerPort(server_handle: *mut WsServer) -> i32 {
    boundary("wsServerPort", -1, || {
        let port = server(server_handle)?
            .local_port()
            .ok_or_else(|| Error::not_connected("server is not running"))?;
        Ok(i32::from(port))
    })
}

/// Adds a reference to the handle (the C++ layer keeps one per `WsServerRef`).
#[unsafe(no_mangle)]
pub extern "C" fn wsServerRetain(server_handle: *mut WsServer) -> i32 {
    boundary("wsServerRetain", -1, || {
        SERVERS.retain(server_handle as usize)?;
        Ok(0)
    })
}

/// Drops a reference. When the last reference goes, the server is shut down as by
/// `wsServerShutdown`. Releasing NULL is a no-op (returns 0); a stale handle, or one released
/// more often than retained, fails with `EBADF` and nothing else happens.
#[unsafe(no_mangle)]
pub extern "C" fn wsServerRelease(server_handle: *mut WsServer) -> i32 {
    boundary("wsServerRelease", -1, || {
        if let Some((server, 0)) = SERVERS.release(server_handle as usize)? {
            server.shutdown()?;
        }
        Ok(0)
    })
}
