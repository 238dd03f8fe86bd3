//! The WebSocket protocol (RFC 6455) as plain values: bytes in, messages and control frames
//! out, frames to send, timers to honour. Nothing here does I/O, takes a lock, starts a thread,
//! logs, or knows of sockets, TLS, event loops or C: the `ws` layer drives it over a transport,
//! tests and fuzzers drive it with byte slices. (The models: rustls' `read_tls` →
//! `process_new_packets` → `write_tls`, and quiche's `recv`/`send`/`timeout`.)
//!
//! - [`handshake`]: the opening handshake for both roles, and subprotocol negotiation.
//! - [`Reader`]: the receiving half — frames, message assembly, UTF-8 checks, limits.
//! - [`Endpoint`]: the sending half and the policy — state, framing and masking, pongs, the
//!   closing handshake, failures (which code, who closes TCP when), handshake/close/keepalive
//!   timers.
//! - [`close`] and [`frame`]: close codes and frame headers.

pub mod close;
mod deadline;
mod endpoint;
pub mod frame;
pub mod handshake;
mod key;
mod mask;
mod reader;
mod utf8;

pub use deadline::Deadline;
pub use endpoint::{
    CloseBy, CloseError, CloseStarted, Endpoint, Expired, FrameSink, Outgoing, SendError, State,
    TcpClose,
};
pub use reader::{Incoming, Input, LARGE_FRAME, Reader};
/// For text an application sends (received text is checked by the reader).
pub use {mask::is_ascii, utf8::is_valid as is_utf8};

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Server,
    Client,
}

/// The type of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    Text,
    Binary,
}

/// The limits and timers a connection runs with (shared by every connection of a server).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest incoming message after reassembly; a larger one fails the connection with 1009.
    pub message_max: usize,
    /// Outgoing messages larger than this go out as fragments of at most this size; 0 = never.
    pub fragment_max: usize,
    /// Bytes that may wait unsent; beyond it automatic pongs stop (and the owner refuses sends).
    pub send_buffer_max: usize,
    pub handshake_timeout: Duration,
    pub close_timeout: Duration,
    /// Keepalive: a ping after this long without hearing from the peer (None: off).
    pub ping_interval: Option<Duration>,
    /// Keepalive: how long after a ping the peer has to answer (or send anything).
    pub pong_timeout: Duration,
}

#[cfg(test)]
mod tests;
