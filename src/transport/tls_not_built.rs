//! TLS left out of this build (the `tls` feature is off): the names `transport::tls` gives, with
//! no TLS behind them. A wss:// URL fails when the client connects, and a server with
//! `cert-file-path`/`pkey-file-path` when it is created, with `ENOSYS` and a sentence naming the
//! feature: never a silent fall-back to plain TCP. The configuration types are empty, so no TLS
//! stream can exist and the transport's TLS branches are never reached.

use crate::config::{ClientTls, ServerTls};
use crate::error::{Error, Result};
use mio::net::TcpStream;
use std::convert::Infallible;
use std::io;
use std::sync::Arc;

/// A wss server's configuration: none can be made.
pub enum ServerConfig {}

/// A wss client's configuration and server name: none can be made.
pub enum ClientTarget {}

pub fn server_config(_: &ServerTls) -> Result<Arc<ServerConfig>> {
    Err(Error::not_built(
        "tls",
        "cert-file-path and pkey-file-path make a TLS server",
    ))
}

pub fn client_target(_: &ClientTls, _host: &str) -> Result<ClientTarget> {
    Err(Error::not_built("tls", "a wss:// URL needs TLS"))
}

/// As with TLS built in; no I/O error ever carries one.
#[derive(Debug)]
pub struct TlsFailure {
    pub errno: i32,
    pub what: String,
}

pub fn tls_failure(_: &io::Error) -> Option<&TlsFailure> {
    None
}

/// Never made: it needs a configuration, and there is none.
pub struct TlsStream {
    pub tcp: TcpStream,
    never: Infallible,
}

impl TlsStream {
    pub fn accept(_: TcpStream, config: &Arc<ServerConfig>) -> Result<TlsStream> {
        match **config {}
    }

    pub fn connect(_: TcpStream, target: &ClientTarget) -> Result<TlsStream> {
        match *target {}
    }

    pub fn at_end(&self) -> bool {
        match self.never {}
    }

    pub fn wants_write(&self) -> bool {
        match self.never {}
    }

    pub fn flush(&mut self) -> io::Result<bool> {
        match self.never {}
    }

    pub fn wire_bytes_at_most(&self, _: usize) -> usize {
        match self.never {}
    }

    pub fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        match self.never {}
    }

    pub fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        match self.never {}
    }

    pub fn shutdown_write(&mut self) {
        match self.never {}
    }

    pub fn close(&mut self) {
        match self.never {}
    }
}
