//! The event object a callback receives.
//!
//! Message data is borrowed from the event loop's receive buffer while the callback runs (no
//! copy). An event the application retains gets its own copy of the data at that moment, and
//! then lives until its last reference is released.

use super::connection::Connection;
use crate::ffi::{WsEvent, ws_message_t};
use parking_lot::Mutex;
use std::cell::Cell;
use std::mem::ManuallyDrop;
use std::sync::Arc;
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

thread_local! {
    /// An event object kept for the next callback on this thread, so a message costs no
    /// allocation unless the application retains its event.
    static SPARE: Cell<Option<Box<Event>>> = const { Cell::new(None) };
    /// The connection whose callback is running on this thread (null outside callbacks).
    static CALLBACK_CONNECTION: Cell<*const Connection> = const { Cell::new(std::ptr::null()) };
}

/// The connection whose callback is running on this thread, if any. It stays alive for the
/// whole callback, so the C layer may use it without a handle-table lookup.
pub fn callback_connection() -> *const Connection {
    CALLBACK_CONNECTION.with(Cell::get)
}

pub struct Event {
    references: AtomicUsize,
    message_type: ws_message_t,
    status_code: i32,
    /// The dispatching session's `Arc`, borrowed without touching its count (it is never
    /// dropped through here): valid during the callback, and afterwards through `kept`.
    connection: ManuallyDrop<Arc<Connection>>,
    data: AtomicPtr<u8>,
    length: usize,
    /// What a retained event owns: a copy of the data and a reference to the connection.
    kept: Mutex<Option<Kept>>,
}

struct Kept {
    _data: Option<Box<[u8]>>,
    _connection: Arc<Connection>,
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
        let mut kept = self.kept.lock();
        if kept.is_none() {
            let copy: Option<Box<[u8]>> = (self.length > 0).then(|| self.data().into());
            if let Some(copy) = &copy {
                self.data.store(copy.as_ptr() as *mut u8, Ordering::Release);
            }
            *kept = Some(Kept {
                _data: copy,
                _connection: Arc::clone(&self.connection),
            });
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

/// Builds an event, hands it to `call`, and afterwards either keeps the object for the next
/// event or, when the application retained it, leaves it to the application's references.
pub fn dispatch(
    connection: &Arc<Connection>,
    message_type: ws_message_t,
    status_code: i32,
    data: &[u8],
    call: impl FnOnce(*mut WsEvent),
) {
    let fields = Event {
        references: AtomicUsize::new(1),
        message_type,
        status_code,
        // SAFETY: an alias of the caller's Arc that is never dropped (ManuallyDrop); the
        // caller's Arc outlives the callback, and a retain takes a real reference.
        connection: ManuallyDrop::new(unsafe { Arc::from_raw(Arc::as_ptr(connection)) }),
        data: AtomicPtr::new(data.as_ptr() as *mut u8),
        length: data.len(),
        kept: Mutex::new(None),
    };
    let event = match SPARE.take() {
        Some(mut spare) => {
            *spare = fields;
            Box::into_raw(spare)
        }
        None => Box::into_raw(Box::new(fields)),
    };
    let outer = CALLBACK_CONNECTION.replace(Arc::as_ptr(connection));
    call(event.cast::<WsEvent>());
    CALLBACK_CONNECTION.set(outer);
    // SAFETY: `event` is alive: we still hold the reference taken at creation.
    let references = &unsafe { &*event }.references;
    // Not retained (the usual case) costs no atomic write; retained, ours is given up.
    if references.load(Ordering::Acquire) == 1 || references.fetch_sub(1, Ordering::AcqRel) == 1 {
        // SAFETY: nobody else holds the event; the object came from Box::into_raw above.
        let mut spare = unsafe { Box::from_raw(event) };
        *spare.kept.get_mut() = None;
        SPARE.set(Some(spare));
    }
}
