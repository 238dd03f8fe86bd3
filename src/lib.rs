//! oasisnet: a WebSocket server and client library with the C ABI of the Oasis SDK's
//! `OasisNet.h` (see `include/`).
//!
//! Layout: `ffi` is the C surface (argument checks, handles, errno, panic boundary);
//! `config` turns key-value parameters into typed settings; `runtime` runs the event-loop
//! threads; `ws` is the protocol (handshake, frames, connection state machine, server,
//! client); `transport` is the byte stream under a connection.

pub mod config;
pub mod error;
pub mod ffi;
pub mod log;
pub mod runtime;
pub mod transport;
pub mod ws;
