//! The WebSocket protocol: frames, the opening handshake, the per-connection state machine,
//! servers and clients.

pub mod client;
pub mod connection;
pub mod delegate;
pub mod event;
pub mod frame;
pub mod handshake;
pub mod server;
pub mod session;
pub mod url;

#[cfg(test)]
mod tests;
