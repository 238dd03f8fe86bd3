//! A C delegate (vtable + user pointer) and the gate that guarantees no callback runs after the
//! delegate is switched off.

use crate::error::{Error, Result};
use crate::ffi::{WsEvent, WsEventDelegateVTable};
use parking_lot::RwLock;
use std::cell::Cell;
use std::ffi::c_void;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Callback {
    Open,
    Message,
    Error,
    Close,
}

pub struct Delegate {
    vtable: WsEventDelegateVTable,
    user: *mut c_void,
    active: AtomicBool,
    /// Held shared while a callback runs; taken exclusively to wait for running callbacks.
    /// Callbacks never nest on one thread, so a plain shared lock is enough.
    gate: RwLock<()>,
}

// SAFETY: the user pointer belongs to the application, which by the documented contract
// accepts callbacks on the event-loop threads.
unsafe impl Send for Delegate {}
// SAFETY: as above; the vtable is immutable after creation.
unsafe impl Sync for Delegate {}

thread_local! {
    /// The delegate whose callback is running on this thread (0 when none).
    static RUNNING: Cell<usize> = const { Cell::new(0) };
}

impl Delegate {
    /// Copies a C vtable. NULL is an error; `struct_size` must cover the callbacks we know.
    ///
    /// # Safety
    /// `vtable` is NULL or points to a readable `WsEventDelegateVTable` of `struct_size` bytes.
    pub unsafe fn from_c(
        vtable: *const WsEventDelegateVTable,
        user: *mut c_void,
    ) -> Result<Arc<Delegate>> {
        if vtable.is_null() {
            return Err(Error::invalid("delegate is NULL"));
        }
        // SAFETY: non-NULL; reading the size field first is valid for every version.
        let size = unsafe { std::ptr::addr_of!((*vtable).struct_size).read_unaligned() } as usize;
        if size < std::mem::size_of::<WsEventDelegateVTable>() {
            return Err(Error::invalid(format!(
                "delegate struct_size {size} is smaller than sizeof(WsEventDelegateVTable) = {}",
                std::mem::size_of::<WsEventDelegateVTable>()
            )));
        }
        Ok(Arc::new(Delegate {
            // SAFETY: the caller guarantees a readable vtable of at least our size.
            vtable: unsafe { vtable.read_unaligned() },
            user,
            active: AtomicBool::new(true),
            gate: RwLock::new(()),
        }))
    }

    /// Calls one callback, unless the delegate has been switched off.
    ///
    /// # Safety
    /// `event` is a live event made by `event::dispatch`, valid for the call.
    pub unsafe fn invoke(&self, which: Callback, event: *mut WsEvent) {
        let function = match which {
            Callback::Open => self.vtable.onOpen,
            Callback::Message => self.vtable.onMessage,
            Callback::Error => self.vtable.onError,
            Callback::Close => self.vtable.onClose,
        };
        let Some(function) = function else { return };
        let _running = self.gate.read();
        if !self.active.load(Ordering::Acquire) {
            return;
        }
        let me = self as *const Delegate as usize;
        let outer = RUNNING.replace(me);
        // SAFETY: a function pointer the application registered for exactly this call, given
        // the live event our caller vouches for.
        unsafe { function(self.user, event) };
        RUNNING.set(outer);
    }

    /// Switches the delegate off: no callback starts afterwards, and callbacks running on other
    /// threads are waited for. Called from inside a callback (any delegate's), it does not wait:
    /// the current callback finishes after we return to it, and waiting for other loops from a
    /// loop could deadlock two loops that switch each other's delegates off.
    pub fn deactivate(&self) {
        self.active.store(false, Ordering::Release);
        let inside_a_callback = RUNNING.get() != 0;
        if !inside_a_callback {
            drop(self.gate.write());
        }
    }
}

impl Drop for Delegate {
    fn drop(&mut self) {
        if let Some(release) = self.vtable.release {
            // SAFETY: called exactly once, when the library is done with `user`.
            unsafe { release(self.user) };
        }
    }
}
