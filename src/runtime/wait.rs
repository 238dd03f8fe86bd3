//! The loop's wait for readiness: `epoll_pwait` on the poll's epoll descriptor, made directly
//! (`sys.rs`). mio's `Poll::poll` calls libc's `epoll_wait`, a thread cancellation point: in a
//! multi-threaded process each call switches asynchronous cancellation on and off around the
//! system call, and mio rebuilds its event list around it — together more than the rest of a
//! loop turn. The registrations stay mio's (`Registry`); only the wait is made here, with the
//! events read as mio reads them (the epoll backend of mio 1.x, which registers every source
//! edge-triggered with EPOLLRDHUP).

use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

/// The kernel's signal-set size (_NSIG / 8), which libc's epoll_pwait passes.
const KERNEL_SIGSET_SIZE: libc::size_t = 8;

/// What one wait reported, up to its capacity.
pub struct Events {
    list: Vec<libc::epoll_event>,
    len: usize,
}

/// One source's readiness, as mio's `Event` reports it.
#[derive(Clone, Copy)]
pub struct Event {
    pub token: usize,
    bits: u32,
}

impl Event {
    pub fn is_readable(&self) -> bool {
        self.bits & (libc::EPOLLIN | libc::EPOLLPRI) as u32 != 0
    }

    pub fn is_writable(&self) -> bool {
        self.bits & libc::EPOLLOUT as u32 != 0
    }

    pub fn is_error(&self) -> bool {
        self.bits & libc::EPOLLERR as u32 != 0
    }

    /// The peer closed its side (or the socket failed), as mio's `is_read_closed`.
    pub fn is_read_closed(&self) -> bool {
        let hup = libc::EPOLLHUP as u32;
        let in_and_rdhup = (libc::EPOLLIN | libc::EPOLLRDHUP) as u32;
        self.bits & hup != 0 || self.bits & in_and_rdhup == in_and_rdhup
    }
}

impl Events {
    pub fn with_capacity(capacity: usize) -> Events {
        Events {
            list: vec![libc::epoll_event { events: 0, u64: 0 }; capacity],
            len: 0,
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = Event> + '_ {
        self.list[..self.len].iter().map(|event| Event {
            // Copies out of the (on x86-64 packed) kernel structure.
            token: { event.u64 } as usize,
            bits: { event.events },
        })
    }

    /// Waits on `epoll` until something is ready or `timeout` passes (None: no limit). A
    /// timeout is rounded up to whole milliseconds, so that a deadline less than one away
    /// does not turn into a busy wait (as mio does).
    pub fn wait(&mut self, epoll: RawFd, timeout: Option<Duration>) -> io::Result<()> {
        let timeout = timeout.map_or(-1, |timeout| {
            let rounded = timeout
                .checked_add(Duration::from_nanos(999_999))
                .unwrap_or(timeout);
            i32::try_from(rounded.as_millis()).unwrap_or(i32::MAX)
        });
        self.len = 0;
        let capacity = i32::try_from(self.list.len()).unwrap_or(i32::MAX);
        // SAFETY: the kernel writes at most `capacity` events into `list`, which holds that
        // many; no signal mask is given (NULL), so the last argument (the kernel's signal-set
        // size, as libc passes it) is not read.
        let count = unsafe {
            super::sys::syscall6(
                libc::SYS_epoll_pwait,
                [
                    epoll as usize,
                    self.list.as_mut_ptr() as usize,
                    capacity as usize,
                    timeout as isize as usize,
                    0,
                    KERNEL_SIGSET_SIZE,
                ],
            )
        }?;
        self.len = count.min(self.list.len());
        Ok(())
    }
}
