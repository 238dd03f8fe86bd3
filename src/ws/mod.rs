//! WebSocket servers and clients: accepting, connecting, driving the protocol core
//! (`crate::protocol`) over a transport on the event loops, delivering events to the
//! application's handler, and knowing what is live.

pub mod client;
mod client_blocking;
pub mod connection;
pub mod delegate;
pub mod event;
mod group;
mod opening;
pub mod registry;
pub mod server;
pub mod session;
mod spare_buffer;
pub mod url;

#[cfg(test)]
mod tests;
