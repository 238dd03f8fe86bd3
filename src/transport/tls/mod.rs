//! TLS with rustls (ring provider), non-blocking, inside the event loop: no extra thread.
//!
//! `config` builds the rustls configurations from the parameter keys (every file problem is a
//! clear error when the server is created or the client connects); `stream` is the byte stream
//! over a TCP socket; `failure` turns rustls errors into what the application is told.

mod config;
mod failure;
mod names;
mod records;
mod stream;
#[cfg(test)]
pub(crate) mod tests;

pub use config::{SYSTEM_CA_BUNDLE, client_config, server_config, server_name};
pub use failure::{TlsFailure, tls_failure};
pub use rustls::ServerConfig;
pub use stream::TlsStream;

use crate::config::ClientTls;
use crate::error::Result;
use rustls::pki_types::ServerName;
use std::sync::Arc;

/// What a wss client connects with: its configuration, and the name the server's certificate
/// must carry (also sent as SNI when asked).
pub type ClientTarget = (Arc<rustls::ClientConfig>, ServerName<'static>);

/// The configuration of a wss client connection to `host` (every file is read here).
pub fn client_target(tls: &ClientTls, host: &str) -> Result<ClientTarget> {
    Ok((client_config(tls)?, server_name(host)?))
}
