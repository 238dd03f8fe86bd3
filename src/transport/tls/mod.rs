//! TLS with rustls (ring provider), non-blocking, inside the event loop: no extra thread.
//!
//! `config` builds the rustls configurations from the parameter keys (every file problem is a
//! clear error when the server is created or the client connects); `stream` is the byte stream
//! over a TCP socket; `failure` turns rustls errors into what the application is told.

mod config;
mod failure;
mod names;
mod stream;

pub use config::{SYSTEM_CA_BUNDLE, client_config, server_config, server_name};
pub use failure::{TlsFailure, tls_failure};
pub use stream::TlsStream;
