//! A TLS session over a non-blocking TCP socket, read and written like the socket itself.
//!
//! `read` fills the caller's buffer until it is full or the socket has nothing more, so a short
//! read still means "drained" (the edge-triggered loop relies on that). `write` hands plaintext
//! to rustls (bounded by its buffer limit) and writes out what it produced; what the socket does
//! not take stays in rustls until `flush` is called on the next writable edge.

use super::ClientTarget;
use super::failure::describe;
use crate::error::{Error, Result};
use crate::transport::NoSigPipe;
use mio::net::TcpStream;
use rustls::Connection;
use std::io::{self, Read, Write};
use std::sync::Arc;

/// Plaintext rustls may buffer before `write` pushes back (the connection's own send buffer,
/// bounded by send-buffer-size-max, holds the rest).
const PLAINTEXT_LIMIT: usize = 64 * 1024;

pub struct TlsStream {
    pub tcp: TcpStream,
    tls: Connection,
    /// The TCP peer closed; rustls reports whether it said close_notify.
    tcp_closed: bool,
    /// Our close_notify went out (it is sent once).
    close_notify_sent: bool,
    /// The peer's close_notify (or the TCP end) was reached: reads return 0 from now on.
    ended: bool,
}

fn cannot_start(err: rustls::Error) -> Error {
    Error::invalid(format!("cannot start a TLS session: {err}"))
}

fn would_block() -> io::Error {
    io::ErrorKind::WouldBlock.into()
}

impl TlsStream {
    /// The server side of a session on an accepted socket.
    pub fn accept(tcp: TcpStream, config: &Arc<rustls::ServerConfig>) -> Result<TlsStream> {
        let session = rustls::ServerConnection::new(config.clone()).map_err(cannot_start)?;
        Ok(TlsStream::new(tcp, session.into()))
    }

    /// The client side of a session on a connected socket, towards the target's server name.
    pub fn connect(tcp: TcpStream, (config, name): &ClientTarget) -> Result<TlsStream> {
        let session =
            rustls::ClientConnection::new(config.clone(), name.clone()).map_err(cannot_start)?;
        Ok(TlsStream::new(tcp, session.into()))
    }

    fn new(tcp: TcpStream, mut tls: Connection) -> TlsStream {
        tls.set_buffer_limit(Some(PLAINTEXT_LIMIT));
        TlsStream {
            tcp,
            tls,
            tcp_closed: false,
            close_notify_sent: false,
            ended: false,
        }
    }

    fn is_server(&self) -> bool {
        matches!(self.tls, Connection::Server(_))
    }

    pub fn at_end(&self) -> bool {
        self.ended
    }

    /// True while rustls holds records the socket has not taken yet.
    pub fn wants_write(&self) -> bool {
        self.tls.wants_write()
    }

    /// Writes pending TLS records; `Ok(false)` when the socket is full.
    pub fn flush(&mut self) -> io::Result<bool> {
        while self.tls.wants_write() {
            match self.tls.write_tls(&mut NoSigPipe(&self.tcp)) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    fn failed(&mut self, err: rustls::Error) -> io::Error {
        // Send the alert rustls queued, so the peer learns why.
        let _ = self.flush();
        io::Error::new(io::ErrorKind::InvalidData, describe(&err, self.is_server()))
    }

    pub fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let mut filled = 0;
        loop {
            match self.tls.reader().read(&mut buffer[filled..]) {
                Ok(0) if filled == buffer.len() => return Ok(filled),
                // close_notify: the end of the stream. Answer it, as TLS asks: some peers hold
                // the TCP connection open until they hear ours.
                Ok(0) => {
                    self.ended = true;
                    self.send_close_notify();
                    return Ok(filled);
                }
                Ok(n) => {
                    filled += n;
                    if filled == buffer.len() {
                        return Ok(filled);
                    }
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // TCP closed without close_notify: for the WebSocket layer, also the end.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    self.ended = true;
                    return Ok(filled);
                }
                Err(e) => return Err(e),
            }
            if self.tcp_closed {
                self.ended = true;
                return Ok(filled);
            }
            match self.tls.read_tls(&mut self.tcp) {
                Ok(0) => self.tcp_closed = true,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.flush()?;
                    return if filled > 0 {
                        Ok(filled)
                    } else {
                        Err(would_block())
                    };
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            if let Err(err) = self.tls.process_new_packets() {
                return Err(self.failed(err));
            }
            // Handshake messages and alerts go out as soon as rustls has them.
            self.flush()?;
        }
    }

    pub fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let accepted = self.tls.writer().write(data)?;
        self.flush()?;
        if accepted == 0 && !data.is_empty() {
            return Err(would_block());
        }
        Ok(accepted)
    }

    fn send_close_notify(&mut self) {
        if !self.close_notify_sent {
            self.close_notify_sent = true;
            self.tls.send_close_notify();
            let _ = self.flush();
        }
    }

    /// Sends close_notify and FIN.
    pub fn shutdown_write(&mut self) {
        self.send_close_notify();
        let _ = self.tcp.shutdown(std::net::Shutdown::Write);
    }

    /// Sends close_notify before the socket is dropped (a TLS peer then sees a clean end).
    pub fn close(&mut self) {
        self.send_close_notify();
    }
}
