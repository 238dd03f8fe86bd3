//! System calls of the data path (the loop's wait, a socket's recv and send), made with the
//! processor's system-call instruction on x86-64 and AArch64 rather than through libc's
//! `syscall(2)`. That function is generic: it moves seven arguments from the C calling
//! convention into the kernel's and sets the thread's `errno` on failure — about a dozen
//! instructions and a thread-local lookup per call, three calls per echoed message. The kernel
//! sees the same call either way. Elsewhere (armv7 and others) libc's `syscall(2)` is used.

use std::io;

/// System call `number` with six arguments (unused ones 0): its non-negative result, or the
/// error the kernel returned.
///
/// # Safety
/// The arguments must be what system call `number` expects: pointers to memory the kernel may
/// read or write for the call's duration.
#[inline(always)]
pub unsafe fn syscall6(number: libc::c_long, args: [usize; 6]) -> io::Result<usize> {
    // SAFETY: forwarded caller contract.
    let value = unsafe { raw(number, args) };
    // The kernel returns -errno (-4095..=-1) on failure.
    if (-4095..0).contains(&value) {
        return Err(io::Error::from_raw_os_error(-value as i32));
    }
    Ok(value as usize)
}

#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn raw(number: libc::c_long, args: [usize; 6]) -> isize {
    let value: isize;
    // SAFETY: the Linux x86-64 system-call convention: number in rax, arguments in rdi, rsi,
    // rdx, r10, r8, r9, result in rax; the instruction overwrites rcx and r11 and touches no
    // stack. Memory the arguments point to is the caller's contract (the asm block is not
    // `nomem`, so the compiler assumes it may be read and written).
    unsafe {
        std::arch::asm!(
            "syscall",
            inlateout("rax") number as isize => value,
            in("rdi") args[0],
            in("rsi") args[1],
            in("rdx") args[2],
            in("r10") args[3],
            in("r8") args[4],
            in("r9") args[5],
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    value
}

#[cfg(target_arch = "aarch64")]
#[inline(always)]
unsafe fn raw(number: libc::c_long, args: [usize; 6]) -> isize {
    let value: isize;
    // SAFETY: the Linux AArch64 system-call convention: number in x8, arguments in x0-x5,
    // result in x0; nothing else is changed and no stack is used. Memory as on x86-64.
    unsafe {
        std::arch::asm!(
            "svc 0",
            in("x8") number,
            inlateout("x0") args[0] as isize => value,
            in("x1") args[1],
            in("x2") args[2],
            in("x3") args[3],
            in("x4") args[4],
            in("x5") args[5],
            options(nostack),
        );
    }
    value
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
#[inline(always)]
unsafe fn raw(number: libc::c_long, args: [usize; 6]) -> isize {
    // SAFETY: forwarded caller contract.
    let value =
        unsafe { libc::syscall(number, args[0], args[1], args[2], args[3], args[4], args[5]) };
    if value < 0 {
        // libc returned -1 and set errno: hand it on as the kernel gave it.
        return -(io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO) as isize);
    }
    value as isize
}

#[cfg(test)]
mod tests {
    use super::syscall6;

    /// A call that succeeds gives the kernel's result, one that fails the kernel's error.
    #[test]
    fn results_and_errors_come_through() {
        let mut fds = [0i32; 2];
        // SAFETY: pipe2 writes two descriptors into `fds`.
        let made = unsafe { syscall6(libc::SYS_pipe2, [fds.as_mut_ptr() as usize, 0, 0, 0, 0, 0]) };
        assert_eq!(made.unwrap(), 0);
        let byte = [7u8];
        // SAFETY: write reads one byte of `byte`.
        let written = unsafe {
            syscall6(
                libc::SYS_write,
                [fds[1] as usize, byte.as_ptr() as usize, 1, 0, 0, 0],
            )
        };
        assert_eq!(written.unwrap(), 1);
        let mut read = [0u8; 4];
        // SAFETY: read writes at most four bytes into `read`.
        let got = unsafe {
            syscall6(
                libc::SYS_read,
                [fds[0] as usize, read.as_mut_ptr() as usize, 4, 0, 0, 0],
            )
        };
        assert_eq!((got.unwrap(), read[0]), (1, 7));
        // SAFETY: closing descriptors this test owns.
        unsafe {
            libc::close(fds[0]);
            libc::close(fds[1]);
        }
        // SAFETY: a descriptor that is not open: the kernel answers EBADF.
        let failed = unsafe { syscall6(libc::SYS_close, [fds[0] as usize, 0, 0, 0, 0, 0]) };
        assert_eq!(failed.unwrap_err().raw_os_error(), Some(libc::EBADF));
    }
}
