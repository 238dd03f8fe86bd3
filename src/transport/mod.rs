//! The byte stream under a WebSocket connection: plain TCP or TLS over TCP. The connection
//! state machine sees only this type, so both behave alike: non-blocking reads and writes, and
//! a short read means the socket is drained.

mod nosigpipe;
#[cfg(feature = "client")]
pub mod resolver;
mod syscalls;
#[cfg(feature = "tls")]
pub mod tls;
// Without the `tls` feature: the same names, every use of TLS failing with the feature's name.
#[cfg(not(feature = "tls"))]
#[path = "tls_not_built.rs"]
pub mod tls;

pub use nosigpipe::NoSigPipe;

use crate::error::Result;
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use std::io::{self, IoSlice, Write};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use tls::TlsStream;

/// Sets the int-valued option `option` at `level` of `socket` (setsockopt(2)); false when it
/// failed. (The server's listening socket, and the tests' sockets; the client sets none.)
#[cfg(any(feature = "server", test))]
pub(crate) fn set_int_option(socket: &impl AsRawFd, level: i32, option: i32, value: i32) -> bool {
    // SAFETY: a valid descriptor, and an option value of the size given that outlives the call.
    let done = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            option,
            (&raw const value).cast(),
            size_of_val(&value) as libc::socklen_t,
        )
    };
    done == 0
}

#[inline(never)]
fn read_tls(tls: &mut TlsStream, buffer: &mut [u8]) -> io::Result<usize> {
    tls.read(buffer)
}

pub enum Transport {
    Plain(TcpStream),
    Tls(Box<TlsStream>),
}

impl Transport {
    /// An accepted socket: TLS when the server has a TLS configuration. (`TCP_NODELAY` is the
    /// listener's to set: see `ws::listener`.)
    pub fn accepted(stream: TcpStream, tls: Option<&Arc<tls::ServerConfig>>) -> Result<Transport> {
        match tls {
            None => Ok(Transport::Plain(stream)),
            Some(config) => Ok(Transport::Tls(Box::new(TlsStream::accept(stream, config)?))),
        }
    }

    /// A connected client socket: TLS towards the target's server name when one is given.
    pub fn connected(stream: TcpStream, tls: Option<&tls::ClientTarget>) -> Result<Transport> {
        let _ = stream.set_nodelay(true);
        match tls {
            None => Ok(Transport::Plain(stream)),
            Some(target) => Ok(Transport::Tls(Box::new(TlsStream::connect(
                stream, target,
            )?))),
        }
    }

    fn tcp(&self) -> &TcpStream {
        match self {
            Transport::Plain(stream) => stream,
            Transport::Tls(tls) => &tls.tcp,
        }
    }

    /// (Inlined into the loop's read, with TLS a call apart: a plain read is the system call.)
    #[inline(always)]
    pub fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(stream) => syscalls::recv(stream.as_raw_fd(), buffer),
            Transport::Tls(tls) => read_tls(tls, buffer),
        }
    }

    pub fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(stream) => NoSigPipe(stream).write(data),
            Transport::Tls(tls) => tls.write(data),
        }
    }

    /// Writes a frame header and its payload with one system call where the transport allows.
    pub fn write_vectored(&mut self, parts: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Transport::Plain(stream) => NoSigPipe(stream).write_vectored(parts),
            Transport::Tls(tls) => {
                let first = parts
                    .iter()
                    .find(|p| !p.is_empty())
                    .map(|p| &**p)
                    .unwrap_or_default();
                tls.write(first)
            }
        }
    }

    /// Writes what the transport itself still holds (TLS records); `Ok(false)` when the socket
    /// is full.
    pub fn flush_pending(&mut self) -> io::Result<bool> {
        match self {
            Transport::Plain(_) => Ok(true),
            Transport::Tls(tls) => tls.flush(),
        }
    }

    /// True while the transport holds bytes the socket has not taken.
    pub fn has_pending(&self) -> bool {
        match self {
            Transport::Plain(_) => false,
            Transport::Tls(tls) => tls.wants_write(),
        }
    }

    /// True once the peer ended the stream inside the transport (TLS close_notify, or EOF seen
    /// by TLS): the next read returns 0 at once.
    pub fn at_end(&self) -> bool {
        match self {
            Transport::Plain(_) => false,
            Transport::Tls(tls) => tls.at_end(),
        }
    }

    pub fn is_tls(&self) -> bool {
        matches!(self, Transport::Tls(_))
    }

    /// Registers for both readiness kinds once: edge-triggered, so an idle connection costs
    /// no wake-ups and a full send buffer is reported when it drains.
    pub fn register(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        let interest = Interest::READABLE | Interest::WRITABLE;
        match self {
            Transport::Plain(stream) => registry.register(stream, token, interest),
            Transport::Tls(tls) => registry.register(&mut tls.tcp, token, interest),
        }
    }

    /// Takes the socket out of the poll set, so that another task may register it (mio refuses
    /// a second registration): an HTTP connection hands its socket to a WebSocket session so.
    pub fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        match self {
            Transport::Plain(stream) => registry.deregister(stream),
            Transport::Tls(tls) => registry.deregister(&mut tls.tcp),
        }
    }

    /// Ends our direction: TLS close_notify (when TLS) and FIN, after what was written.
    pub fn shutdown_write(&mut self) {
        match self {
            Transport::Plain(stream) => {
                let _ = stream.shutdown(Shutdown::Write);
            }
            Transport::Tls(tls) => tls.shutdown_write(),
        }
    }

    /// Ends the stream properly before the socket is dropped: TLS close_notify (plain TCP needs
    /// nothing: closing the socket sends FIN).
    pub fn close(&mut self) {
        if let Transport::Tls(tls) = self {
            tls.close();
        }
    }

    /// Sends `count` bytes of `file` from `offset` (advanced by what went) straight from the
    /// kernel: plain TCP only (TLS must encrypt, so it gives `Unsupported`).
    pub fn send_file(
        &mut self,
        file: std::os::fd::RawFd,
        offset: &mut i64,
        count: usize,
    ) -> io::Result<usize> {
        match self {
            Transport::Plain(stream) => nosigpipe::send_file(stream, file, offset, count),
            Transport::Tls(_) => Err(io::ErrorKind::Unsupported.into()),
        }
    }

    /// The pending socket error of a non-blocking connect, if any.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.tcp().take_error()
    }

    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.tcp().peer_addr()
    }

    /// Bytes of this connection the peer's TCP has acknowledged (`TCP_INFO`'s
    /// `tcpi_bytes_acked`, Linux 4.1 and later; None where the system does not say). Asked by
    /// keepalive only, when a ping goes out and when its timeout passes.
    pub fn bytes_acknowledged(&self) -> Option<u64> {
        // SAFETY: an all-zero tcp_info is a valid value of a plain C struct.
        let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
        let mut length = size_of::<libc::tcp_info>() as libc::socklen_t;
        // SAFETY: getsockopt writes at most `length` bytes into `info`, which holds that many,
        // and the length it filled into `length`.
        let asked = unsafe {
            libc::getsockopt(
                self.tcp().as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_INFO,
                (&raw mut info).cast(),
                &mut length,
            )
        };
        let filled = std::mem::offset_of!(libc::tcp_info, tcpi_bytes_acked) + size_of::<u64>();
        (asked == 0 && length as usize >= filled).then_some(info.tcpi_bytes_acked)
    }

    /// The most bytes the socket is still to be given for what the transport holds and for
    /// `queued` bytes written to it after that: as many on plain TCP; over TLS, the records
    /// held plus the records those bytes will be sealed into. Asked by keepalive only.
    pub fn wire_bytes_at_most(&self, queued: usize) -> usize {
        match self {
            Transport::Plain(_) => queued,
            Transport::Tls(tls) => tls.wire_bytes_at_most(queued),
        }
    }

    /// Bytes written to the socket that the peer's TCP has not acknowledged yet (`SIOCOUTQ`;
    /// 0 where the system does not say). Asked by keepalive only, as above.
    pub fn unacknowledged(&self) -> usize {
        let mut bytes: i32 = 0;
        // SAFETY: TIOCOUTQ (SIOCOUTQ) writes one int through the pointer, which is valid.
        let asked = unsafe { libc::ioctl(self.tcp().as_raw_fd(), libc::TIOCOUTQ, &mut bytes) };
        match asked {
            0 => usize::try_from(bytes).unwrap_or(0),
            _ => 0,
        }
    }

    /// The raw descriptor, for a caller that waits on it with poll(2).
    pub fn raw_fd(&self) -> std::os::fd::RawFd {
        self.tcp().as_raw_fd()
    }
}
