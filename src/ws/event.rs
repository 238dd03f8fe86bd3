//! The event object a callback receives.
//!
//! Message data is borrowed from the event loop's receive buffer while the callback runs (no
//! copy). An event the application retains gets its own copy of the data at that moment, and
//! then lives until its last reference is released.

use super::connection::Connection;
use crate::ffi::{WsEvent, ws_message_t};
use parking_lot::Mutex;
use std::sync::Arc;
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

pub struct Event {
    references: AtomicUsize,
    message_type: ws_message_t,
    status_code: i32,
    connection: Arc<Connection>,
    data: AtomicPtr<u8>,
    length: usize,
    /// The data's own copy once retained.
    owned: Mutex<Option<Box<[u8]>>>,
}

impl Event {
    pub fn connection(&self) -> &Arc<Connection> {
        &self.connection
    }

    pub fn message_type(&self) -> ws_message_t {
        self.message_type
    }

    pub fn status_code(&self) -> i32 {
        self.status_code
    }

    pub fn data(&self) -> &[u8] {
        let pointer = self.data.load(Ordering::Acquire);
        if pointer.is_null() || self.length == 0 {
            return &[];
        }
        // SAFETY: the pointer is the borrowed buffer (valid during the callback) or our own copy
        // (valid while the event lives).
        unsafe { std::slice::from_raw_parts(pointer, self.length) }
    }

    /// Adds a reference and makes sure the data no longer depends on the receive buffer.
    pub fn retain(&self) {
        self.references.fetch_add(1, Ordering::AcqRel);
        let mut owned = self.owned.lock();
        if owned.is_none() && self.length > 0 {
            let copy: Box<[u8]> = self.data().into();
            self.data.store(copy.as_ptr() as *mut u8, Ordering::Release);
            *owned = Some(copy);
        }
    }

    /// Drops a reference; frees the event when it was the last.
    ///
    /// # Safety
    /// `event` was produced by [`dispatch`] and the caller owns the reference it drops.
    pub unsafe fn release(event: &Event) {
        if event.references.fetch_sub(1, Ordering::AcqRel) == 1 {
            // SAFETY: the last reference; the event was leaked from a Box by `dispatch`.
            drop(unsafe { Box::from_raw(event as *const Event as *mut Event) });
        }
    }
}

/// Builds an event, hands it to `call`, and afterwards either frees it or, when the
/// application retained it, leaves it to the application's references.
pub fn dispatch(
    connection: &Arc<Connection>,
    message_type: ws_message_t,
    status_code: i32,
    data: &[u8],
    call: impl FnOnce(*mut WsEvent),
) {
    let event = Box::into_raw(Box::new(Event {
        references: AtomicUsize::new(1),
        message_type,
        status_code,
        connection: connection.clone(),
        data: AtomicPtr::new(data.as_ptr() as *mut u8),
        length: data.len(),
        owned: Mutex::new(None),
    }));
    call(event.cast::<WsEvent>());
    // SAFETY: `event` is alive: we still hold the reference taken at creation.
    unsafe { Event::release(&*event) };
}
