//! The `HttpServer` family: create, start, stop, destroy, the bound port, and the WebSocket
//! services on its paths.
//!
//! Index: createHttpServer · startHttpServer · stopHttpServer · httpServerShutdown ·
//! destroyHttpServer · httpServerPort · httpServerRetain · httpServerRelease ·
//! createHttpWsService
//!
//! Every function here may be called from any thread, including from inside a callback; the
//! waiting ones (stop, shutdown, destroy, the last release) do not wait there.

use super::handle::kind;
use super::handle_table::HandleTable;
use super::{
    HttpServer, HttpUpStreamDelegateVTable, OasisKeyValue, WsEventDelegateVTable, boundary, c_str,
    key_values,
};
use crate::config::{ConnectionSettings, HttpServerConfig};
use crate::error::Error;
use crate::http::server::HttpServer as Server;
use std::ffi::{c_char, c_void};
use std::sync::{Arc, LazyLock};

static SERVERS: LazyLock<HandleTable<Server, { kind::HTTP_SERVER }>> =
    LazyLock::new(|| HandleTable::new("HttpServer handle"));

fn server(handle: *mut HttpServer) -> crate::error::Result<Arc<Server>> {
    SERVERS.get(handle as usize)
}

/// Creates an HTTP server from `parameters` (docs/PARAMETERS.md: `port` is required; `root-dir`
/// serves static files; with `cert-file-path` and `pkey-file-path` it is HTTPS, every file read
/// and checked here as by `createWsServer`). It does not listen until `startHttpServer`.
///
/// Returns: a handle owned by the caller (end it with `destroyHttpServer`), or NULL with
/// `errno`: `EINVAL` (bad argument, parameter value, certificate or key), `ENOENT` (a file or
/// `root-dir` is missing), `ENOTDIR` (`root-dir` is not a folder), `ENOTSUP` (DSA or encrypted
/// key), `EPERM` (`oasis_initialize` not called), `EMFILE` (too many live handles), `ENOSYS`
/// (the library was built without the `http` feature, or without `tls` and TLS keys were given).
/// NULL: `delegate` may be NULL (no filter, unrouted requests get 404); `parameters` may be NULL
/// when `count` is 0; `user` may be NULL.
/// Lifetime: `parameters` and `*delegate` are read during the call only (the vtable is copied).
/// `user` goes to every callback and to `release`, called exactly once when the server is gone;
/// also when this call fails (before it returns), unless the vtable itself was refused.
/// Threads: any thread, also inside any callback.
///
/// # Safety
/// `parameters` points to `count` pairs (or is NULL with 0); `delegate` is NULL or a valid
/// vtable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn createHttpServer(
    parameters: *const OasisKeyValue,
    count: usize,
    delegate: *const HttpUpStreamDelegateVTable,
    user: *mut c_void,
) -> *mut HttpServer {
    boundary("createHttpServer", std::ptr::null_mut(), || {
        let upstream = if delegate.is_null() {
            None
        } else {
            // SAFETY: forwarded caller contract.
            Some(unsafe { super::http_request::upstream_from_c(delegate, user) }?)
        };
        // SAFETY: forwarded caller contract.
        let pairs = unsafe { key_values(parameters, count) }?;
        let config = HttpServerConfig::parse(&pairs)?;
        let server = Server::create(config, upstream)?;
        Ok(SERVERS.publish(&server, true)? as *mut HttpServer)
    })
}

/// Binds (on the calling thread) and starts accepting on an event loop. A stopped server may be
/// started again: it binds anew.
///
/// Returns: 0, or -1 with `errno`: `EADDRINUSE`, `EACCES` (bind failed), `EALREADY` (already
/// running), `EINVAL` (after `httpServerShutdown`/`destroyHttpServer`), `EPERM` (not
/// initialized, or finalized), `EBADF` (stale handle).
/// NULL: `EINVAL`.
/// Threads: any thread, also inside any callback.
#[unsafe(no_mangle)]
pub extern "C" fn startHttpServer(server_handle: *mut HttpServer) -> i32 {
    boundary("startHttpServer", -1, || {
        server(server_handle)?.start()?;
        Ok(0)
    })
}

/// Stops accepting, drops every HTTP connection and closes every WebSocket connection of its
/// services with 1001 (going away). Outside a callback it waits until the loop stopped listening
/// and until each WebSocket connection's onClose has run (at most its `close-timeout-ms` + 1 s);
/// inside a callback it only starts the closes and returns. A stopped server may be started
/// again.
///
/// Returns: 0, also for a server already stopped; -1 with `EBADF` for a stale handle.
/// NULL: `EINVAL`.
/// Threads: any thread, also inside any callback (without waiting there).
#[unsafe(no_mangle)]
pub extern "C" fn stopHttpServer(server_handle: *mut HttpServer) -> i32 {
    boundary("stopHttpServer", -1, || {
        server(server_handle)?.stop()?;
        Ok(0)
    })
}

/// Stops the server (as `stopHttpServer`) and turns its delegates off for good (its own and its
/// services'), without giving up a reference: the handle stays valid until released, but the
/// server cannot be started again. `destroyHttpServer` is this plus `httpServerRelease`.
///
/// Returns: 0, or -1 with `EBADF` for a stale handle.
/// NULL: `EINVAL`.
/// Threads: as `wsServerShutdown`.
#[unsafe(no_mangle)]
pub extern "C" fn httpServerShutdown(server_handle: *mut HttpServer) -> i32 {
    boundary("httpServerShutdown", -1, || {
        server(server_handle)?.shutdown()?;
        Ok(0)
    })
}

/// Stops the server (as `stopHttpServer`), turns its delegates off and releases the caller's
/// reference: `httpServerShutdown` plus `httpServerRelease`.
///
/// Returns: 0; -1 with `EBADF` for a stale, foreign or already destroyed handle (then nothing
/// else happens).
/// NULL: no-op, returns 0.
/// Lifetime: each delegate's `release(user)` (the server's and each service's) runs once, when
/// nothing can call it any more, possibly on the calling thread before this returns.
/// Threads: as `destroyWsServer`.
#[unsafe(no_mangle)]
pub extern "C" fn destroyHttpServer(server_handle: *mut HttpServer) -> i32 {
    boundary("destroyHttpServer", -1, || {
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
pub extern "C" fn httpServerPort(server_handle: *mut HttpServer) -> i32 {
    boundary("httpServerPort", -1, || {
        let port = server(server_handle)?
            .local_port()
            .ok_or_else(|| Error::not_connected("server is not running"))?;
        Ok(i32::from(port))
    })
}

/// Adds a reference owned by the caller (the C++ layer keeps one per `HttpServerRef`); end it
/// with `httpServerRelease`.
///
/// Returns: 0, or -1 with `EBADF` (stale, foreign or released handle).
/// NULL: `EINVAL`.
/// Threads: any thread, also inside any callback.
#[unsafe(no_mangle)]
pub extern "C" fn httpServerRetain(server_handle: *mut HttpServer) -> i32 {
    boundary("httpServerRetain", -1, || {
        SERVERS.retain(server_handle as usize)?;
        Ok(0)
    })
}

/// Drops one reference taken by `createHttpServer` or `httpServerRetain`. When the last one goes
/// the server is shut down as by `httpServerShutdown`, and the handle goes stale once the server
/// is gone.
///
/// Returns: 0; -1 with `EBADF` for a stale handle or one released more often than retained.
/// NULL: no-op, returns 0.
/// Threads: as `httpServerShutdown`.
#[unsafe(no_mangle)]
pub extern "C" fn httpServerRelease(server_handle: *mut HttpServer) -> i32 {
    boundary("httpServerRelease", -1, || {
        if let Some((server, 0)) = SERVERS.release(server_handle as usize)? {
            server.shutdown()?;
        }
        Ok(0)
    })
}

/// Adds a WebSocket service at `url_path` (exact match on the decoded path, e.g. "/ws"): an
/// upgrade request to it becomes a WebSocket connection handled like one of `createWsServer`,
/// reporting to `delegate`, with the per-connection `parameters` of docs/PARAMETERS.md
/// (`websocket-protocols`, `websocket-message-size-max`, `send-buffer-size-max`, ...). A plain
/// GET to the path gets 426; an upgrade to a path without a service gets 404. Services may be
/// added while the server runs; they live until the server is destroyed.
///
/// Returns: 0, or -1 with `errno`: `EINVAL` (NULL server, path or delegate; a path that does
/// not start with '/' or holds '?', '#', '%' or a `..` segment; a bad parameter), `EEXIST` (the
/// path has a service already), `EBADF` (stale handle).
/// Lifetime: as `createWsServer`'s delegate: `release(user)` runs once, when the server and the
/// service's connections are gone, or before this returns when it fails.
/// Threads: any thread, also inside any callback.
///
/// # Safety
/// `url_path` is NULL or NUL-terminated; `parameters` points to `count` pairs (or is NULL with
/// 0); `delegate` is NULL or a valid vtable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn createHttpWsService(
    server_handle: *mut HttpServer,
    url_path: *const c_char,
    parameters: *const OasisKeyValue,
    count: usize,
    delegate: *const WsEventDelegateVTable,
    user: *mut c_void,
) -> i32 {
    boundary("createHttpWsService", -1, || {
        // SAFETY: forwarded caller contract.
        let delegate = unsafe { super::delegate::from_c(delegate, user) }?;
        let server = server(server_handle)?;
        // SAFETY: forwarded caller contract.
        let path = unsafe { c_str(url_path, "url_path") }?;
        // SAFETY: forwarded caller contract.
        let pairs = unsafe { key_values(parameters, count) }?;
        let settings = ConnectionSettings::parse_service(&pairs)?;
        server.add_service(path, settings, delegate)?;
        Ok(0)
    })
}
