//! A lock that one thread, its owner, takes without an atomic read-modify-write.
//!
//! A connection's state is locked by its loop's thread (reads, writes, timers, and the replies
//! its callbacks send) far more often than by any other thread, and a thread's event slot is
//! locked at the end of every callback it runs and hardly ever by another thread. Each `lock
//! cmpxchg` of a mutex there waited for the callback's stores to drain: the documented sample,
//! which replies from inside `onMessage`, paid four per message.
//!
//! While the lock is *biased*, its owner enters by storing `owner_inside` and checking that the
//! bias still holds: plain stores and loads, with only a compiler fence between them. Any other
//! thread takes the mutex and, if the lock is biased, revokes the bias: it clears `biased`,
//! then makes every thread of the process run a full memory barrier
//! (`membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)`, the heavy side of an asymmetric Dekker
//! handshake), and waits until the owner is out. After that barrier the owner either sees the
//! bias gone before it enters, or its `owner_inside` is visible to the revoking thread; from then
//! on the owner takes the mutex too. So an owner no other thread disturbs never pays an atomic
//! operation for its lock, and the first other thread pays the barrier (a few microseconds),
//! then what a mutex costs.
//!
//! An owner may also give the bias up itself ([`BiasedGuard::give_up_bias`], an event slot
//! whose event the application kept), and a new owner may take it ([`BiasedGuard::bias`], under
//! the mutex): other threads that find the lock unbiased still wait for `owner_inside` to clear,
//! so an owner that gave the bias up while inside is waited for without a barrier.
//!
//! A revocation interrupts every core that runs a thread of the process, once per lock: a
//! thread that writes to many connections (a broadcast) pays it once for each, the first time.
//! Should the barrier ever fail after registration, the revoking thread does not enter (an
//! internal error), and the lock stays biased.
//!
//! Where the kernel has no private expedited membarrier (before Linux 4.14, or refused by a
//! seccomp filter), locks are never biased: the mutex alone.

use parking_lot::{Mutex, MutexGuard};
use std::cell::UnsafeCell;
use std::marker::PhantomData;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicBool, Ordering, compiler_fence};

/// Whether this process may use private expedited membarriers (registered once).
static MEMBARRIER: LazyLock<bool> = LazyLock::new(|| {
    // (Registered once, when the runtime starts: `register`.)
    // SAFETY: the membarrier system call takes two integers and touches no memory of ours.
    let registered = unsafe {
        libc::syscall(
            libc::SYS_membarrier,
            libc::MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED,
            0,
        )
    };
    registered == 0
});

/// Registers this process for the barriers biased locks need (it may take a while on some
/// kernels: done once, when the runtime starts). False where the kernel refuses: then no lock
/// is ever biased.
pub fn register() -> bool {
    *MEMBARRIER
}

/// A full memory barrier on every running thread of this process; false if the kernel failed
/// it (registered, it cannot: it takes no memory and no rights — unless a seccomp filter
/// installed since forbids it).
fn barrier_on_every_thread() -> bool {
    // SAFETY: as in `MEMBARRIER`; registered before any lock could be biased.
    let done = unsafe {
        libc::syscall(
            libc::SYS_membarrier,
            libc::MEMBARRIER_CMD_PRIVATE_EXPEDITED,
            0,
        )
    };
    done == 0
}

pub struct BiasedLock<T> {
    mutex: Mutex<()>,
    /// The owner may enter without the mutex. Set by an owner holding the mutex; cleared by
    /// the first other thread that locks (under the mutex), or by the owner giving it up.
    biased: AtomicBool,
    /// The owner is inside without the mutex.
    owner_inside: AtomicBool,
    value: UnsafeCell<T>,
}

// SAFETY: `value` is reached only through a guard, and guards exclude one another: the mutex
// between threads that hold it, and the handshake of the module comment between the owner
// inside without it and any other thread.
unsafe impl<T: Send> Sync for BiasedLock<T> {}

pub struct BiasedGuard<'a, T> {
    lock: &'a BiasedLock<T>,
    /// The mutex, when this guard holds it (None: the owner, inside by the bias).
    mutex: Option<MutexGuard<'a, ()>>,
    /// Not `Send` (an owner's guard must be dropped by the owner), and `Sync` only for a `T`
    /// that is (`unsafe impl` below), as a mutex guard.
    not_send: PhantomData<*mut T>,
}

// SAFETY: a shared guard lends only `&T`, which may be shared when `T` is `Sync`.
unsafe impl<T: Sync> Sync for BiasedGuard<'_, T> {}

impl<T> BiasedLock<T> {
    /// A lock no thread owns yet: every thread takes the mutex until one biases it.
    pub fn new(value: T) -> BiasedLock<T> {
        BiasedLock {
            mutex: Mutex::new(()),
            biased: AtomicBool::new(false),
            owner_inside: AtomicBool::new(false),
            value: UnsafeCell::new(value),
        }
    }

    /// Locks, as a thread that does not own the lock (any thread may).
    #[inline]
    pub fn lock_shared(&self) -> BiasedGuard<'_, T> {
        self.lock_mutex(false)
    }

    /// Locks, as the owner when `on_owner_thread`.
    ///
    /// # Safety
    /// `on_owner_thread` is true only on the one thread that owns the lock: no other thread has
    /// passed true since the calling thread last biased it ([`BiasedGuard::bias`]), nor will
    /// until it gives the bias up ([`BiasedGuard::give_up_bias`]). (For a connection: its
    /// loop's thread, `LoopShared::is_current`.)
    #[inline]
    pub unsafe fn lock(&self, on_owner_thread: bool) -> BiasedGuard<'_, T> {
        if on_owner_thread && self.biased.load(Ordering::Relaxed) {
            assert!(
                !self.owner_inside.load(Ordering::Relaxed),
                "a biased lock taken twice by its owner"
            );
            self.owner_inside.store(true, Ordering::Relaxed);
            // The light side of the handshake: the revoking thread's membarrier makes this a
            // full barrier whenever it matters, so the store above and the load below cannot
            // pass each other unseen.
            compiler_fence(Ordering::SeqCst);
            if self.biased.load(Ordering::Relaxed) {
                return BiasedGuard {
                    lock: self,
                    mutex: None,
                    not_send: PhantomData,
                };
            }
            // Revoked meanwhile: the revoking thread waits for this store.
            self.owner_inside.store(false, Ordering::Release);
        }
        self.lock_mutex(on_owner_thread)
    }

    #[inline(never)]
    fn lock_mutex(&self, on_owner_thread: bool) -> BiasedGuard<'_, T> {
        let mutex = self.mutex.lock();
        if on_owner_thread {
            // (Inside by the bias and locking again, after giving the bias up: a bug.)
            assert!(
                !self.owner_inside.load(Ordering::Relaxed),
                "a biased lock taken twice by its owner"
            );
        } else {
            // `Acquire`: an owner that gave the bias up while inside stored `owner_inside`
            // before it; then that store is seen below.
            if self.biased.load(Ordering::Acquire) {
                self.revoke_bias();
            }
            self.wait_for_owner();
        }
        BiasedGuard {
            lock: self,
            mutex: Some(mutex),
            not_send: PhantomData,
        }
    }

    /// Called with the mutex held, by a thread other than the owner.
    #[cold]
    fn revoke_bias(&self) {
        self.biased.store(false, Ordering::Relaxed);
        if !barrier_on_every_thread() {
            // Without the barrier, the owner may be inside unseen: the bias stays, and this
            // thread does not enter (the panic releases the mutex; the caller's boundary
            // reports it as an internal error).
            self.biased.store(true, Ordering::Relaxed);
            panic!("membarrier failed after registration: the lock cannot be taken");
        }
    }

    /// Waits until the owner is not inside by the bias. Its sections are short (a connection's
    /// hold a socket read or write at most), so this yields rather than parks.
    #[inline]
    fn wait_for_owner(&self) {
        while self.owner_inside.load(Ordering::Acquire) {
            std::thread::yield_now();
        }
    }

    /// Whether the owner still enters without the mutex (for tests and figures).
    pub fn is_biased(&self) -> bool {
        self.biased.load(Ordering::Relaxed)
    }
}

impl<T> BiasedGuard<'_, T> {
    /// The owner gives the lock up: from now on it takes the mutex like any thread (and must
    /// not pass `on_owner_thread` any more). May be called inside by the bias.
    pub fn give_up_bias(&self) {
        self.lock.biased.store(false, Ordering::Release);
    }

    /// The calling thread becomes the lock's owner (where the kernel allows biased locks). A
    /// guard taken by the bias is the owner's already: then nothing changes.
    ///
    /// # Safety
    /// No other thread passes `on_owner_thread` to [`BiasedLock::lock`] from now on, until
    /// the calling thread gives the bias up.
    pub unsafe fn bias(&self) {
        if self.mutex.is_some() {
            self.lock.biased.store(*MEMBARRIER, Ordering::Relaxed);
        }
    }
}

impl<T> Drop for BiasedGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        if self.mutex.is_none() {
            self.lock.owner_inside.store(false, Ordering::Release);
        }
        // (The mutex, when held, is released by its own guard right after.)
    }
}

impl<T> std::ops::Deref for BiasedGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: this guard excludes every other (see `Sync` above).
        unsafe { &*self.lock.value.get() }
    }
}

impl<T> std::ops::DerefMut for BiasedGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`; `&mut self` makes this the only reference lent.
        unsafe { &mut *self.lock.value.get() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;

    /// A lock biased to the calling thread (the test's owner).
    fn biased<T>(value: T) -> BiasedLock<T> {
        let lock = BiasedLock::new(value);
        // SAFETY: the lock is this thread's alone so far.
        unsafe { own(&lock).bias() };
        lock
    }

    /// Locks as the owner: each test passes true on one thread only.
    fn own<T>(lock: &BiasedLock<T>) -> BiasedGuard<'_, T> {
        // SAFETY: see above.
        unsafe { lock.lock(true) }
    }

    /// A lock biased to this thread and a flag for another thread to say it got in; None (and a
    /// line saying why) where the kernel allows no biased lock: nothing to test then.
    fn biased_and_watched() -> Option<(Arc<BiasedLock<u64>>, Arc<AtomicBool>)> {
        let lock = Arc::new(biased(0u64));
        if !lock.is_biased() {
            eprintln!("no private expedited membarrier here: locks are never biased");
            return None;
        }
        Some((lock, Arc::new(AtomicBool::new(false))))
    }

    /// A thread that locks as a non-owner, says it got in, increments, and with `then_bias`
    /// becomes the owner.
    fn locker(
        lock: &Arc<BiasedLock<u64>>,
        got_in: &Arc<AtomicBool>,
        then_bias: bool,
    ) -> std::thread::JoinHandle<()> {
        let (lock, got_in) = (lock.clone(), got_in.clone());
        std::thread::spawn(move || {
            let mut value = lock.lock_shared();
            got_in.store(true, Ordering::SeqCst);
            *value += 1;
            if then_bias {
                // SAFETY: the test's first owner gave the bias up; no other thread claims it.
                unsafe { value.bias() };
            }
        })
    }

    /// Watches `got_in` stay false for 50 ms (the window in which a broken handshake lets the
    /// other thread in: it would be in within microseconds).
    fn stays_out(got_in: &AtomicBool, when: &str) {
        let watched = std::time::Instant::now();
        while watched.elapsed() < std::time::Duration::from_millis(50) {
            assert!(
                !got_in.load(Ordering::SeqCst),
                "another thread got in {when}"
            );
            std::thread::yield_now();
        }
    }

    #[test]
    fn the_owner_enters_without_the_mutex_until_another_thread_locks() {
        let lock = biased(0u64);
        let biased_at_start = lock.is_biased();
        {
            let mut inside = own(&lock);
            assert_eq!(
                lock.mutex.is_locked(),
                !biased_at_start,
                "no mutex while biased"
            );
            *inside += 1;
        }
        assert_eq!(lock.is_biased(), biased_at_start);
        *lock.lock_shared() += 1;
        assert!(!lock.is_biased(), "another thread's lock revokes the bias");
        *own(&lock) += 1;
        assert_eq!(*lock.lock_shared(), 3);
    }

    /// Biasing a lock to the owner that holds it by the bias already (a second session start
    /// on one connection, say) changes nothing.
    #[test]
    fn biasing_again_by_the_owner_changes_nothing() {
        let lock = biased(1u8);
        let biased_at_start = lock.is_biased();
        {
            let inside = own(&lock);
            // SAFETY: this thread is the owner.
            unsafe { inside.bias() };
        }
        assert_eq!(lock.is_biased(), biased_at_start);
        assert_eq!(*own(&lock), 1);
    }

    /// Another thread that locks while the owner is inside by the bias revokes the bias, then
    /// waits: it must not get in until the owner leaves.
    #[test]
    fn a_revoking_thread_waits_for_the_owner_inside() {
        let Some((lock, got_in)) = biased_and_watched() else {
            return;
        };
        let mut inside = own(&lock);
        let other = locker(&lock, &got_in, false);
        // The other thread has begun revoking once the bias is gone.
        while lock.is_biased() {
            std::thread::yield_now();
        }
        stays_out(&got_in, "while the owner was inside");
        *inside += 1;
        drop(inside);
        other.join().unwrap();
        assert!(got_in.load(Ordering::SeqCst));
        assert_eq!(
            *own(&lock),
            2,
            "the owner takes the mutex after the revocation"
        );
    }

    /// An owner that gives the bias up while inside is waited for by the next thread, which
    /// finds the lock unbiased (no barrier); a new owner may then bias it to itself.
    #[test]
    fn an_owner_giving_up_inside_is_waited_for_and_a_new_owner_takes_over() {
        let Some((lock, got_in)) = biased_and_watched() else {
            return;
        };
        let mut inside = own(&lock);
        inside.give_up_bias();
        assert!(!lock.is_biased());
        let other = locker(&lock, &got_in, true);
        stays_out(&got_in, "while the owner that gave the bias up was inside");
        *inside += 1;
        drop(inside);
        other.join().unwrap();
        assert!(lock.is_biased(), "biased to the new owner");
        assert_eq!(*lock.lock_shared(), 2);
        assert!(!lock.is_biased(), "revoked by this thread");
    }

    /// The owner and three other threads increment one counter; a lost update (two threads
    /// inside at once) shows as a smaller total. Run many times, so that revocation meets an
    /// owner inside.
    #[test]
    fn no_update_is_lost_while_the_bias_is_revoked() {
        for _ in 0..200 {
            let lock = Arc::new(biased(0u64));
            let started = Arc::new(AtomicUsize::new(0));
            const EACH: u64 = 2_000;
            let threads: Vec<_> = (0..4)
                .map(|i| {
                    let lock = lock.clone();
                    let started = started.clone();
                    std::thread::spawn(move || {
                        started.fetch_add(1, Ordering::SeqCst);
                        while started.load(Ordering::SeqCst) < 4 {
                            std::hint::spin_loop();
                        }
                        for _ in 0..EACH {
                            let mut value = match i {
                                0 => own(&lock),
                                _ => lock.lock_shared(),
                            };
                            let read = *value;
                            std::hint::black_box(&mut *value);
                            *value = read + 1;
                        }
                    })
                })
                .collect();
            for thread in threads {
                thread.join().unwrap();
            }
            assert_eq!(*lock.lock_shared(), 4 * EACH);
        }
    }

    #[test]
    fn the_owner_locking_twice_is_caught() {
        let lock = biased(());
        if !lock.is_biased() {
            eprintln!("no private expedited membarrier here: locks are never biased");
            return;
        }
        let first = own(&lock);
        let second = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            drop(own(&lock));
        }));
        assert!(second.is_err(), "a second lock by the owner must panic");
        drop(first);
        drop(own(&lock));
    }
}
