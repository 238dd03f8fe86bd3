//! oasisnet: a WebSocket server and client library with the C ABI of the Oasis SDK's
//! `OasisNet.h` (see `include/`).
//!
//! Layout (arrows point one way: each module uses only those listed after it):
//! `ffi` is the C surface (argument checks, handles, errno, panic boundary, the C delegate);
//! `http` is the HTTP/1.1 server (files, WebSocket services, the firmware's answers);
//! `ws` runs servers and clients (accept, connect, sessions on the event loops, registries);
//! `protocol` is the WebSocket protocol as plain values (no I/O); `transport` is the byte
//! stream under a connection (TCP, TLS, name resolution); `config` turns key-value parameters
//! into typed settings; `runtime` is the reactor (event-loop threads, tasks, commands);
//! `log` and `error` serve them all.

pub mod config;
pub mod error;
pub mod ffi;
pub mod http;
pub mod log;
pub mod protocol;
pub mod runtime;
pub mod simd;
pub mod transport;
pub mod ws;
