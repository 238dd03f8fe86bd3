//! The socket calls of the data path, made directly (`runtime::sys`) rather than through
//! libc's wrappers of the same name. Those wrappers are thread cancellation points: in a
//! multi-threaded process (every process using the library is one) each call switches
//! asynchronous cancellation on and off around the system call, which cost more than the rest
//! of the wrapper; and a cancellation taken there — an application thread cancelled inside
//! `wsSendText` — would unwind through the library with the connection's lock held. None of
//! the library's calls is meant to be a cancellation point. The calls themselves are unchanged
//! (same arguments, same errors).

use crate::runtime::sys::syscall6;
use std::io;
use std::os::fd::RawFd;

/// `recv(fd, buffer, len, 0)`.
#[inline]
pub fn recv(fd: RawFd, buffer: &mut [u8]) -> io::Result<usize> {
    // SAFETY: recvfrom writes at most `buffer.len()` bytes into `buffer`, which is writable for
    // the call; no address is asked for (both address arguments NULL).
    unsafe {
        syscall6(
            libc::SYS_recvfrom,
            [
                fd as usize,
                buffer.as_mut_ptr() as usize,
                buffer.len(),
                0,
                0,
                0,
            ],
        )
    }
}

/// `send(fd, data, len, flags)`.
#[inline]
pub fn send(fd: RawFd, data: &[u8], flags: i32) -> io::Result<usize> {
    // SAFETY: sendto reads `data.len()` bytes of `data`, readable for the call; no address is
    // given (NULL, 0), as for send(2).
    unsafe {
        syscall6(
            libc::SYS_sendto,
            [
                fd as usize,
                data.as_ptr() as usize,
                data.len(),
                flags as usize,
                0,
                0,
            ],
        )
    }
}

/// `sendmsg(fd, message, flags)`.
///
/// # Safety
/// `message` and what it points to (its iovecs and their buffers) are valid for reads.
pub unsafe fn sendmsg(fd: RawFd, message: &libc::msghdr, flags: i32) -> io::Result<usize> {
    // SAFETY: the caller guarantees a readable message; the kernel only reads it.
    unsafe {
        syscall6(
            libc::SYS_sendmsg,
            [
                fd as usize,
                message as *const libc::msghdr as usize,
                flags as usize,
                0,
                0,
                0,
            ],
        )
    }
}
