//! Types that cross the C boundary: opaque handles, the key-value pair, the delegate vtable and
//! the documented enumerations.
//!
//! Index: WsServer · WsConnection · WsEvent · HttpServer · HttpRequest · OasisKeyValue ·
//! WsEventCallback · WsEventDelegateVTable · HttpUpStreamDelegateVTable · ws_message_t ·
//! ws_status_code_t · oasis_log_level_t
#![allow(non_camel_case_types, non_upper_case_globals, non_snake_case)]

use std::ffi::{c_char, c_void};

/// A WebSocket server: a listening socket and the connections it accepted, all reporting to one
/// delegate. Opaque: a generational handle, not an address, so a stale, foreign or released
/// `WsServer*` fails with `EBADF` and never reaches another server. The caller of
/// `createWsServer` owns one reference (plus one per `wsServerRetain`).
///
/// Functions: createWsServer · startWsServer · stopWsServer · wsServerPort · wsServerShutdown ·
/// destroyWsServer · wsServerRetain · wsServerRelease
pub struct WsServer {
    _opaque: [u8; 0],
}

/// One WebSocket connection, accepted by a server (seen through `wsEventConnection`, borrowed) or
/// opened by `wsOpenConnection` (owned by its caller). Opaque: a generational handle, not an
/// address, so a stale, foreign or released `WsConnection*` fails with `EBADF` and never reaches
/// another connection.
///
/// Functions: wsOpenConnection · wsEventConnection · wsSendText · wsSendTextLength ·
/// wsSendBinary · wsSendPing · wsCloseConnection · wsCloseConnectionWithStatus ·
/// wsConnectionIsOpen · wsConnectionPeerAddress · wsConnectionProtocol ·
/// wsConnectionRequestPath · wsConnectionRequestQuery · wsConnectionRequestHeader ·
/// wsConnectionSetUserData · wsConnectionGetUserData · wsConnectionRetain · wsConnectionRelease
pub struct WsConnection {
    _opaque: [u8; 0],
}

/// One event handed to a delegate callback. Opaque: a generational handle, live during the
/// callback that received it and, after `wsEventRetain`, until the matching `wsEventRelease`; at
/// any other time every function fails on it with `EBADF` (it never reaches another event). The
/// caller never owns it except through a retain.
///
/// Functions: wsEventMessageType · wsEventData · wsEventText · wsEventStatusCode ·
/// wsEventConnection · wsEventRetain · wsEventRelease
pub struct WsEvent {
    _opaque: [u8; 0],
}

/// An HTTP(S) server: static files under its `root-dir`, WebSocket services on its paths
/// (`createHttpWsService`) and the firmware's own answers (`HttpUpStreamDelegateVTable`), all on
/// one port. Opaque: a generational handle, like `WsServer`. The caller of `createHttpServer`
/// owns one reference (plus one per `httpServerRetain`).
///
/// Functions: createHttpServer · startHttpServer · stopHttpServer · httpServerPort ·
/// httpServerShutdown · destroyHttpServer · httpServerRetain · httpServerRelease ·
/// createHttpWsService
pub struct HttpServer {
    _opaque: [u8; 0],
}

/// One HTTP request with the answer being built for it, handed to `onFilter` and `onRequest`.
/// Opaque: a generational handle, live during that callback only (there is no retain); after it
/// returns every function fails on it with `EBADF`.
///
/// Functions: httpRequestMethod · httpRequestPath · httpRequestQuery · httpRequestHeader ·
/// httpRequestBody · httpRequestPeerAddress · httpResponseSetStatus · httpResponseAddHeader ·
/// httpResponseSetBody
pub struct HttpRequest {
    _opaque: [u8; 0],
}

/// One parameter: both strings NUL-terminated UTF-8 and not NULL (`EINVAL`), read during the call
/// only (the library copies what it keeps). An array of them plus a count is a key-value map.
///
/// Functions: oasis_initialize · createWsServer · wsOpenConnection · createHttpServer ·
/// createHttpWsService
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct OasisKeyValue {
    pub key: *const c_char,
    pub value: *const c_char,
}

/// A delegate callback, run on an event-loop thread: `user` is the pointer given with the vtable;
/// `event` is live during the call (keep it with `wsEventRetain`) and belongs to the library.
pub type WsEventCallback = Option<unsafe extern "C" fn(user: *mut c_void, event: *mut WsEvent)>;

/// The C form of `WsEventDelegate`: what the library calls for one server's connections or one
/// client connection. Copied when registered, so it may live on the caller's stack.
///
/// `struct_size` must be at least `sizeof(WsEventDelegateVTable)` (else `EINVAL`). Any callback
/// may be NULL: that event is then ignored. `release(user)` (may be NULL) is called exactly once,
/// when the library is done with `user`: on an event-loop thread, or in the call that dropped
/// the last use (`destroyWsServer`, a `…Release`, or the registering call when it fails). It is
/// not called when the vtable itself is refused (NULL or `struct_size` too small). After it
/// starts no callback of this delegate runs.
///
/// Inside a callback: every library function may be called, except `oasis_finalize` (`EDEADLK`).
/// No library lock is held while it runs except this delegate's gate (shared; it lets
/// `destroyWsServer` on another thread wait for running callbacks). A callback that blocks stalls
/// every connection of its loop, so does a blocking `wsOpenConnection` made there;
/// `stopWsServer`, `wsServerShutdown` and `destroyWsServer` do not wait there (callbacks already
/// running on other loops may still finish after they return).
///
/// Functions: createWsServer · wsOpenConnection (callbacks receive a `WsEvent*`)
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct WsEventDelegateVTable {
    /// `sizeof(WsEventDelegateVTable)`: lets later versions add callbacks without breaking the ABI.
    pub struct_size: u32,
    pub onOpen: WsEventCallback,
    pub onMessage: WsEventCallback,
    pub onError: WsEventCallback,
    pub onClose: WsEventCallback,
    pub release: Option<unsafe extern "C" fn(user: *mut c_void)>,
}

/// The firmware's part of an HTTP server (this library's own: the original SDK document shows no
/// HTTP types). Copied when registered, so it may live on the caller's stack.
///
/// `struct_size` must be at least `sizeof(HttpUpStreamDelegateVTable)` (else `EINVAL`).
/// `onFilter` (may be NULL: every request passes) sees every request before routing and returns
/// 0 to let it through, or a status to refuse it with: 401 with a `WWW-Authenticate` header
/// added with `httpResponseAddHeader`, 403, or a 3xx redirect with `Location` (300..599 but
/// 304; anything else refuses with 500). `onRequest` (may be NULL) answers a
/// request that matched no WebSocket service and no file: what the callback sets goes out; a
/// callback that sets nothing answers 404, one that sets a body or a header but no status 200. Both run on an event-loop thread, with the rules of
/// `WsEventDelegateVTable`'s callbacks; the answer is complete when the callback returns (the
/// body is copied). `release(user)` (may be NULL) is called exactly once, when the server is
/// gone, or when `createHttpServer` fails after accepting the vtable.
///
/// Functions: createHttpServer (callbacks receive an `HttpRequest*`)
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct HttpUpStreamDelegateVTable {
    /// `sizeof(HttpUpStreamDelegateVTable)`.
    pub struct_size: u32,
    pub onFilter: Option<unsafe extern "C" fn(user: *mut c_void, request: *mut HttpRequest) -> i32>,
    pub onRequest: Option<unsafe extern "C" fn(user: *mut c_void, request: *mut HttpRequest)>,
    pub release: Option<unsafe extern "C" fn(user: *mut c_void)>,
}

/// The type of a message event.
///
/// Functions: wsEventMessageType
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ws_message_t {
    /// Not a message (an open, error or close event).
    kWsMessageUnknown = 0,
    kWsMessageText = 1,
    kWsMessageBinary = 2,
    /// A ping arrived (already answered with a pong by the library).
    kWsMessagePing = 3,
    /// A pong arrived.
    kWsMessagePong = 4,
}

/// Close and error status codes (RFC 6455 section 7.4.1), with the Oasis SDK's names. 1005, 1006
/// and 1015 are only reported, never sent.
///
/// Functions: wsEventStatusCode · wsCloseConnectionWithStatus
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ws_status_code_t {
    kWsStatusCode_NormalClosure = 1000,
    kWsStatusCode_EndPointGoingAway = 1001,
    kWsStatusCode_EndPointTerminatingConnectionDueToProtocolError = 1002,
    kWsStatusCode_EndPointTerminatingConnectionDueToUnknownOpcode = 1003,
    kWsStatusCode_NoStatusCodePresent = 1005,
    kWsStatusCode_ConnectionClosedAbnormally = 1006,
    kWsStatusCode_EndPointTerminatingConnectionDueToInconsistentData = 1007,
    kWsStatusCode_EndPointTerminatingConnectionDueToPolicy = 1008,
    kWsStatusCode_EndPointTerminatingConnectionDueToTooBigData = 1009,
    kWsStatusCode_ClientTerminatingConnectionDueToLackOfExtensions = 1010,
    kWsStatusCode_ServerTerminatingConnectionDueToUnexpectedCondition = 1011,
    kWsStatusCode_TlsHandshakeFailure = 1015,
}

/// Log levels for `oasis_log_set_level` and the `log-level` key: a line is written when its
/// level is at or below the current one. The default is `OASIS_LOG_WARN`.
///
/// Functions: oasis_log_set_level · oasis_log_get_level · oasis_log_message ·
/// oasis_log_set_hook (the hook's `level`)
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum oasis_log_level_t {
    OASIS_LOG_OFF = 0,
    OASIS_LOG_ERROR = 1,
    OASIS_LOG_WARN = 2,
    OASIS_LOG_INFO = 3,
    OASIS_LOG_DEBUG = 4,
    OASIS_LOG_TRACE = 5,
}
