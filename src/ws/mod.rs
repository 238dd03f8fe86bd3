//! WebSocket servers and clients: accepting, connecting, driving the protocol core
//! (`crate::protocol`) over a transport on the event loops, delivering events to the
//! application's handler, and knowing what is live.

pub mod admission;
pub mod client;
mod client_blocking;
pub mod connection;
mod deadline;
pub mod delegate;
pub mod event;
pub(crate) mod group;
pub mod listener;
mod once_text;
mod opening;
pub mod registry;
pub mod server;
pub mod session;
mod spare_buffer;
pub mod url;

#[cfg(test)]
mod handover_tests;
#[cfg(test)]
mod tests;
