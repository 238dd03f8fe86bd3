//! The socket calls of the data path, made through `syscall(2)` rather than libc's wrappers of
//! the same name. Those wrappers are thread cancellation points: in a multi-threaded process
//! (every process using the library is one) each call switches asynchronous cancellation on and
//! off around the system call, which cost more than the rest of the wrapper; and a cancellation
//! taken there — an application thread cancelled inside `wsSendText` — would unwind through the
//! library with the connection's lock held. None of the library's calls is meant to be a
//! cancellation point. The calls themselves are unchanged (same arguments, same errors).

use std::io;
use std::os::fd::RawFd;

/// `syscall` gives -1 and sets `errno` on failure, else the call's non-negative result.
fn result(value: libc::c_long) -> io::Result<usize> {
    if value < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(value as usize)
    }
}

/// `recv(fd, buffer, len, 0)`.
pub fn recv(fd: RawFd, buffer: &mut [u8]) -> io::Result<usize> {
    // SAFETY: recvfrom writes at most `buffer.len()` bytes into `buffer`, which is writable for
    // the call; no address is asked for (both address arguments NULL).
    result(unsafe {
        libc::syscall(
            libc::SYS_recvfrom,
            fd,
            buffer.as_mut_ptr(),
            buffer.len(),
            0,
            std::ptr::null_mut::<libc::sockaddr>(),
            std::ptr::null_mut::<libc::socklen_t>(),
        )
    })
}

/// `send(fd, data, len, flags)`.
pub fn send(fd: RawFd, data: &[u8], flags: i32) -> io::Result<usize> {
    // SAFETY: sendto reads `data.len()` bytes of `data`, readable for the call; no address is
    // given (NULL, 0), as for send(2).
    result(unsafe {
        libc::syscall(
            libc::SYS_sendto,
            fd,
            data.as_ptr(),
            data.len(),
            flags,
            std::ptr::null::<libc::sockaddr>(),
            0 as libc::socklen_t,
        )
    })
}

/// `sendmsg(fd, message, flags)`.
///
/// # Safety
/// `message` and what it points to (its iovecs and their buffers) are valid for reads.
pub unsafe fn sendmsg(fd: RawFd, message: &libc::msghdr, flags: i32) -> io::Result<usize> {
    // SAFETY: the caller guarantees a readable message; the kernel only reads it.
    result(unsafe { libc::syscall(libc::SYS_sendmsg, fd, message as *const libc::msghdr, flags) })
}
