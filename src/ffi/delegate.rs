//! The C delegate (`WsEventDelegateVTable` + `user`) as the core's event handler: each event is
//! turned into a `WsEvent*` handle for the duration of the callback (`event.rs`).

use super::event::with_c_event;
use super::{WsEventCallback, WsEventDelegateVTable};
use crate::error::{Error, Result};
use crate::ws::delegate::{CallbackMark, Delegate};
use crate::ws::event::{Event, EventHandler, EventKind};
use std::ffi::c_void;
use std::sync::Arc;

struct CDelegate {
    vtable: WsEventDelegateVTable,
    user: *mut c_void,
}

// SAFETY: the user pointer belongs to the application, which by the documented contract
// accepts callbacks (and `release`) on the library's threads.
unsafe impl Send for CDelegate {}
// SAFETY: as above; the vtable is immutable after creation.
unsafe impl Sync for CDelegate {}

/// Copies a C vtable into a delegate. NULL is an error; `struct_size` must cover the callbacks
/// we know. On failure `release(user)` is not called (there is no vtable to call it from, or
/// the caller learns of the failure at once).
///
/// # Safety
/// `vtable` is NULL or points to a readable `WsEventDelegateVTable` of `struct_size` bytes.
pub(crate) unsafe fn from_c(
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
    let delegate = CDelegate {
        // SAFETY: the caller guarantees a readable vtable of at least our size.
        vtable: unsafe { vtable.read_unaligned() },
        user,
    };
    Ok(Arc::new(Delegate::new(Box::new(delegate))))
}

impl CDelegate {
    fn callback(&self, kind: EventKind) -> WsEventCallback {
        match kind {
            EventKind::Open => self.vtable.onOpen,
            EventKind::Message => self.vtable.onMessage,
            EventKind::Error => self.vtable.onError,
            EventKind::Close => self.vtable.onClose,
        }
    }
}

impl EventHandler for CDelegate {
    fn handles(&self, kind: EventKind) -> bool {
        self.callback(kind).is_some()
    }

    fn handle(&self, event: &Event<'_>) {
        self.handle_marked(event);
    }

    /// The thread is marked next to the event slot's thread-locals (see
    /// [`EventHandler::handle_marked`]).
    fn handle_marked(&self, event: &Event<'_>) {
        let Some(function) = self.callback(event.kind) else {
            return;
        };
        with_c_event(event, |handle| {
            let _running = CallbackMark::new();
            // SAFETY: a function pointer the application registered for exactly this call,
            // given a live event handle.
            unsafe { function(self.user, handle) }
        });
    }
}

impl Drop for CDelegate {
    fn drop(&mut self) {
        if let Some(release) = self.vtable.release {
            // SAFETY: called exactly once, when the library is done with `user`.
            unsafe { release(self.user) };
        }
    }
}
