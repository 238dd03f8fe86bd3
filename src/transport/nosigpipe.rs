//! Socket writes that never raise SIGPIPE. A write to a peer that has gone away must come back
//! as `EPIPE`, not kill the firmware process (C programs keep SIGPIPE's default action, and
//! the library does not change the process's signal dispositions). `send`/`sendmsg` with
//! `MSG_NOSIGNAL` do that for every write the library makes, TLS records included.

use mio::net::TcpStream;
use std::io::{self, IoSlice, Write};
use std::os::fd::AsRawFd;

pub struct NoSigPipe<'a>(pub &'a TcpStream);

impl Write for NoSigPipe<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        // SAFETY: a valid descriptor and a readable buffer of `data.len()` bytes.
        let sent = unsafe {
            libc::send(
                self.0.as_raw_fd(),
                data.as_ptr().cast(),
                data.len(),
                libc::MSG_NOSIGNAL,
            )
        };
        if sent < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(sent as usize)
        }
    }

    fn write_vectored(&mut self, parts: &[IoSlice<'_>]) -> io::Result<usize> {
        // SAFETY: an all-zero msghdr is valid; IoSlice has the layout of iovec on Unix.
        let mut message: libc::msghdr = unsafe { std::mem::zeroed() };
        message.msg_iov = parts.as_ptr() as *mut libc::iovec;
        message.msg_iovlen = parts.len().min(libc::UIO_MAXIOV as usize) as _;
        // SAFETY: the msghdr points at `parts`, which outlive the call.
        let sent = unsafe { libc::sendmsg(self.0.as_raw_fd(), &message, libc::MSG_NOSIGNAL) };
        if sent < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(sent as usize)
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
