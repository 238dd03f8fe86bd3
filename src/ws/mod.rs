//! WebSocket servers and clients: accepting, connecting, driving the protocol core
//! (`crate::protocol`) over a transport on the event loops, delivering events to the
//! application's handler, and knowing what is live.

pub mod admission;
#[cfg(feature = "client")]
pub mod client;
// Without the `client` feature `wsOpenConnection` is still there, and fails naming the feature.
#[cfg(not(feature = "client"))]
#[path = "client_not_built.rs"]
pub mod client;
#[cfg(feature = "client")]
mod client_blocking;
pub mod connection;
pub mod delegate;
mod dispatch;
pub mod event;
pub(crate) mod group;
#[cfg(feature = "server")]
pub mod listener;
mod once_text;
mod opening;
mod peer;
mod peer_opened;
pub mod registry;
#[cfg(feature = "server")]
pub mod server;
// Without the `server` feature `createWsServer` is still there, and fails naming the feature.
mod outbox;
#[cfg(not(feature = "server"))]
#[path = "server_not_built.rs"]
pub mod server;
pub mod session;
mod spare_buffer;
#[cfg(feature = "client")]
pub mod url;
mod writer;

// The hand-over tests drive a server and a wss client.
#[cfg(all(test, feature = "tls", feature = "client", feature = "server"))]
mod handover_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod writer_tests;
