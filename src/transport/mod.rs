//! The byte stream under a WebSocket connection. Plain TCP today; TLS becomes another variant
//! with the same methods, so the connection state machine does not change when it arrives.

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, SocketAddr};

pub enum Transport {
    Plain(TcpStream),
}

impl Transport {
    pub fn plain(stream: TcpStream) -> Transport {
        let _ = stream.set_nodelay(true);
        Transport::Plain(stream)
    }

    pub fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(stream) => stream.read(buffer),
        }
    }

    pub fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(stream) => stream.write(data),
        }
    }

    /// Writes a frame header and its payload with one system call where the transport allows.
    pub fn write_vectored(&mut self, parts: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Transport::Plain(stream) => stream.write_vectored(parts),
        }
    }

    /// Registers for both readiness kinds once: edge-triggered, so an idle connection costs
    /// no wake-ups and a full send buffer is reported when it drains.
    pub fn register(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        match self {
            Transport::Plain(stream) => {
                registry.register(stream, token, Interest::READABLE | Interest::WRITABLE)
            }
        }
    }

    /// Sends FIN after what was written: the server side of a finished closing handshake.
    pub fn shutdown_write(&mut self) {
        match self {
            Transport::Plain(stream) => {
                let _ = stream.shutdown(Shutdown::Write);
            }
        }
    }

    /// The pending socket error of a non-blocking connect, if any.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        match self {
            Transport::Plain(stream) => stream.take_error(),
        }
    }

    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        match self {
            Transport::Plain(stream) => stream.peer_addr(),
        }
    }
}
