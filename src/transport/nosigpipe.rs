//! Socket writes that never raise SIGPIPE. A write to a peer that has gone away must come back
//! as `EPIPE`, not kill the firmware process (C programs keep SIGPIPE's default action, and
//! the library does not change the process's signal dispositions). `send`/`sendmsg` with
//! `MSG_NOSIGNAL` do that for every write the library makes, TLS records included.

use super::syscalls;
use mio::net::TcpStream;
use std::io::{self, IoSlice, Write};
use std::os::fd::AsRawFd;

pub struct NoSigPipe<'a>(pub &'a TcpStream);

impl Write for NoSigPipe<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        syscalls::send(self.0.as_raw_fd(), data, libc::MSG_NOSIGNAL)
    }

    fn write_vectored(&mut self, parts: &[IoSlice<'_>]) -> io::Result<usize> {
        // SAFETY: an all-zero msghdr is valid; IoSlice has the layout of iovec on Unix.
        let mut message: libc::msghdr = unsafe { std::mem::zeroed() };
        message.msg_iov = parts.as_ptr() as *mut libc::iovec;
        message.msg_iovlen = parts.len().min(libc::UIO_MAXIOV as usize) as _;
        // SAFETY: the msghdr points at `parts`, which outlive the call.
        unsafe { syscalls::sendmsg(self.0.as_raw_fd(), &message, libc::MSG_NOSIGNAL) }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// `sendfile(2)` from `file` at `offset` (64 bits on every target) to a socket without SIGPIPE:
/// it has no `MSG_NOSIGNAL`, so SIGPIPE is blocked on this thread for the call, and one it raised
/// (with EPIPE, or with a short count when the pipe broke after some bytes) is taken back before
/// the old mask returns (a SIGPIPE that was already pending is left alone).
pub fn send_file(
    socket: &TcpStream,
    file: std::os::fd::RawFd,
    offset: &mut i64,
    count: usize,
) -> io::Result<usize> {
    // SAFETY: plain signal-set and signal-mask calls on local sets; sendfile on descriptors
    // that are open for the duration of the call.
    unsafe {
        let mut pipe_only: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut pipe_only);
        libc::sigaddset(&mut pipe_only, libc::SIGPIPE);
        let mut pending: libc::sigset_t = std::mem::zeroed();
        libc::sigpending(&mut pending);
        let already_pending = libc::sigismember(&pending, libc::SIGPIPE) == 1;
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::pthread_sigmask(libc::SIG_BLOCK, &pipe_only, &mut old);
        // The 64-bit call: where off_t has 32 bits (armv7 glibc), `sendfile` stops at 2 GiB
        // (EOVERFLOW) and cannot even name an offset past it. (musl has only 64-bit offsets.)
        #[cfg(not(any(target_env = "musl", target_env = "ohos")))]
        let sent = libc::sendfile64(socket.as_raw_fd(), file, offset, count);
        #[cfg(any(target_env = "musl", target_env = "ohos"))]
        let sent = libc::sendfile(socket.as_raw_fd(), file, offset, count);
        let result = if sent < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(sent as usize)
        };
        // A broken pipe raises SIGPIPE also when the call moved some bytes before it and
        // returns their count: a short count may have left one pending too (the wait takes it
        // if so, and returns at once if not).
        let may_have_raised = match &result {
            Err(err) => err.raw_os_error() == Some(libc::EPIPE),
            Ok(sent) => *sent < count,
        };
        if !already_pending && may_have_raised {
            let now = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            libc::sigtimedwait(&pipe_only, std::ptr::null_mut(), &now);
        }
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        result
    }
}
