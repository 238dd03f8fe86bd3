//! The application's event handler, wrapped with the gate that guarantees no callback runs after
//! the delegate is switched off.

use super::event::{Event, EventHandler, EventKind};
use parking_lot::{RwLock, RwLockReadGuard};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};

pub struct Delegate {
    handler: Box<dyn EventHandler>,
    gate: Gate,
    /// The event kinds the handler takes (one bit per kind, by [`kind_bit`]).
    handled: u8,
}

fn kind_bit(kind: EventKind) -> u8 {
    1 << kind as u8
}

/// What keeps application code from running once it is switched off, and lets the switch wait
/// for calls that are running. Shared by every kind of application handler.
pub struct Gate {
    active: AtomicBool,
    /// Held shared while a callback runs, or a run of them ([`Gate::hold`]); taken exclusively
    /// to wait for running callbacks. Callbacks never nest on one thread, and a thread holds
    /// one gate at a time, so a plain shared lock is enough. This is the one lock held while
    /// application code runs: nothing a callback may call takes it exclusively without first
    /// checking that it is not inside a callback or a run this thread holds (`deactivate`).
    lock: RwLock<()>,
}

impl Default for Gate {
    fn default() -> Self {
        Gate {
            active: AtomicBool::new(true),
            lock: RwLock::new(()),
        }
    }
}

impl Gate {
    /// Runs `callback` (application code) unless the gate is switched off.
    pub fn run<R>(&self, callback: impl FnOnce() -> R) -> Option<R> {
        self.run_unmarked(|| {
            let _running = CallbackMark::new();
            callback()
        })
    }

    /// As [`Gate::run`], for a callback that marks the thread itself with a [`CallbackMark`]
    /// around the application code.
    #[inline(always)]
    fn run_unmarked<R>(&self, callback: impl FnOnce() -> R) -> Option<R> {
        let _gate = self.lock.read();
        self.run_open(callback)
    }

    /// As [`Gate::run_unmarked`], within a run `hold` holds open: no lock of its own when the
    /// hold holds this gate.
    #[inline(always)]
    fn run_held<R>(&self, hold: &Hold<'_>, callback: impl FnOnce() -> R) -> Option<R> {
        let held = (hold.0.as_ref())
            .is_some_and(|guard| std::ptr::eq(RwLockReadGuard::rwlock(guard), &self.lock));
        let _gate = (!held).then(|| self.lock.read());
        self.run_open(callback)
    }

    #[inline(always)]
    fn run_open<R>(&self, callback: impl FnOnce() -> R) -> Option<R> {
        if !self.active.load(Ordering::Acquire) {
            return None;
        }
        Some(callback())
    }

    /// Holds the gate open on this thread for a run of callbacks (the messages of one read):
    /// one shared lock for the run instead of one per callback. Each callback still checks
    /// that the gate is on. `deactivate` on another thread waits for the run to end; on this
    /// thread (a callback of the run, or anything it calls) it does not wait, as inside a
    /// callback. A thread holds one gate at a time: while it holds one, this returns a hold
    /// that holds nothing and callbacks lock as usual (a second shared lock of the same gate
    /// could wait behind a waiting `deactivate` that waits for the first).
    // Not inlined: its thread-local would otherwise be looked up on entry to every caller, also
    // for runs of one message that never hold.
    #[inline(never)]
    pub fn hold(&self) -> Hold<'_> {
        let outer = HELD.replace(self);
        if !outer.is_null() {
            HELD.set(outer);
            return Hold(None);
        }
        Hold(Some(self.lock.read()))
    }

    fn held_here(&self) -> bool {
        std::ptr::eq(HELD.get(), self)
    }

    /// Switches the gate off: no callback starts after this returns, and callbacks running on
    /// other threads are waited for. Called from inside a callback (any handler's), it does not
    /// wait: the current callback finishes after we return to it, and waiting for other loops
    /// from a loop could deadlock two loops that switch each other's handlers off.
    ///
    /// A run another thread holds open ([`Gate::hold`]) is waited for to its end, not only to
    /// the end of its current callback: the rest of the run checks the gate and skips its
    /// callbacks, which costs the wait no more than the rest of one read. Until that thread sees
    /// the store, one of its callbacks may still start; it starts before this returns, since
    /// the write lock below is taken only after the run has let go of its shared one.
    pub fn deactivate(&self) {
        self.active.store(false, Ordering::Release);
        if inside_callback() {
            return;
        }
        // A run is held only around its callbacks (`deliver_messages`): outside a callback this
        // thread holds none. Were it to, the write lock would wait for this thread itself.
        let held_here = self.held_here();
        debug_assert!(
            !held_here,
            "Gate::deactivate outside a callback of a run this thread holds"
        );
        if !held_here {
            drop(self.lock.write());
        }
    }
}

thread_local! {
    /// True while a delegate callback runs on this thread.
    static RUNNING: Cell<bool> = const { Cell::new(false) };
    /// The gate this thread holds open for a run of callbacks ([`Gate::hold`]), or NULL. Only
    /// compared, never dereferenced.
    static HELD: Cell<*const Gate> = const { Cell::new(std::ptr::null()) };
}

/// A gate held open on this thread (see [`Gate::hold`]) until dropped.
pub struct Hold<'a>(Option<RwLockReadGuard<'a, ()>>);

impl Drop for Hold<'_> {
    #[inline(never)]
    fn drop(&mut self) {
        if self.0.is_some() {
            HELD.set(std::ptr::null());
        }
    }
}

/// True inside a delegate callback on this thread.
pub fn inside_callback() -> bool {
    RUNNING.get()
}

/// Marks this thread as inside a callback until dropped; then restores the mark as it was, also
/// when a panic unwinds.
pub struct CallbackMark(bool);

impl CallbackMark {
    #[inline(always)]
    #[allow(clippy::new_without_default)]
    pub fn new() -> CallbackMark {
        CallbackMark(RUNNING.replace(true))
    }
}

impl Drop for CallbackMark {
    fn drop(&mut self) {
        RUNNING.set(self.0);
    }
}

impl Delegate {
    pub fn new(handler: Box<dyn EventHandler>) -> Delegate {
        let handled = [
            EventKind::Open,
            EventKind::Message,
            EventKind::Error,
            EventKind::Close,
        ]
        .into_iter()
        .filter(|kind| handler.handles(*kind))
        .fold(0, |bits, kind| bits | kind_bit(kind));
        Delegate {
            handler,
            gate: Gate::default(),
            handled,
        }
    }

    /// False when the handler ignores events of `kind` (see [`EventHandler::handles`]).
    pub fn handles(&self, kind: EventKind) -> bool {
        self.handled & kind_bit(kind) != 0
    }

    /// Hands one event to the handler, unless the delegate has been switched off.
    pub fn invoke(&self, event: &Event<'_>) {
        self.gate.run_unmarked(|| self.handler.handle_marked(event));
    }

    /// Holds the delegate's gate open for a run of events on this thread (see [`Gate::hold`]).
    pub fn hold(&self) -> Hold<'_> {
        self.gate.hold()
    }

    /// As [`Delegate::invoke`], within a run held open by `hold` (from `self.hold()`).
    pub fn invoke_held(&self, hold: &Hold<'_>, event: &Event<'_>) {
        self.gate
            .run_held(hold, || self.handler.handle_marked(event));
    }

    /// Switches the delegate off (see [`Gate::deactivate`]).
    pub fn deactivate(&self) {
        self.gate.deactivate();
    }
}
