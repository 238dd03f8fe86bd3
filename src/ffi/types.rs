//! Types that cross the C boundary: opaque handles, the key-value pair, the delegate vtable and
//! the documented enumerations.
#![allow(non_camel_case_types, non_upper_case_globals, non_snake_case)]

use std::ffi::{c_char, c_void};

/// A WebSocket server. Opaque; created by `createWsServer`, ended by `destroyWsServer`.
pub struct WsServer {
    _opaque: [u8; 0],
}

/// One WebSocket connection, accepted by a server or opened by `wsOpenConnection`. Opaque.
pub struct WsConnection {
    _opaque: [u8; 0],
}

/// One event handed to a delegate callback. Opaque; valid during the callback, or until
/// `wsEventRelease` after a `wsEventRetain`.
pub struct WsEvent {
    _opaque: [u8; 0],
}

/// One parameter: both strings NUL-terminated UTF-8, borrowed only for the duration of the call.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct OasisKeyValue {
    pub key: *const c_char,
    pub value: *const c_char,
}

/// A delegate callback: `user` is the pointer given with the vtable; `event` is valid during
/// the call (retain it with `wsEventRetain` to keep it).
pub type WsEventCallback = Option<unsafe extern "C" fn(user: *mut c_void, event: *mut WsEvent)>;

/// The C form of `WsEventDelegate`. Copied when registered, so it may live on the caller's stack.
/// Any callback may be NULL (that event is then ignored). `release` is called exactly once, on an
/// event-loop thread or in the call that dropped the last use, when the library is done with
/// `user`; after it returns no callback of this delegate runs again.
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

/// The type of a message event.
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

/// Close and error status codes (RFC 6455 section 7.4.1), with the Oasis SDK's names.
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
