//! The `WsEvent` family: what a callback was told.
//!
//! Index: wsEventMessageType · wsEventData · wsEventText · wsEventStatusCode ·
//! wsEventConnection · wsEventRetain · wsEventRelease
//!
//! A `WsEvent*` is a generational handle (`handle.rs`), not an address: it is valid during the
//! callback that received it and, after a `wsEventRetain`, until the matching `wsEventRelease`.
//! Used at any other time — after the callback, after its last release, released without a
//! retain or once too often — every function fails with `EBADF`, and never reaches another event.
//!
//! Each thread that runs callbacks owns one event slot and refills it for every callback, so a
//! message costs no allocation and no table-wide lock. A retained event keeps its slot (the
//! thread takes a fresh one for its next callback) and gets its own copy of the data.

use super::handle::{Slot, SlotTable, vacate};
use super::{WsConnection, WsEvent, boundary, copy_out, ws_message_t};
use crate::error::{Error, Result};
use crate::ws::connection::Connection;
use crate::ws::event::{Event, MessageKind};
use parking_lot::Mutex;
use std::cell::Cell;
use std::ffi::c_char;
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};

/// The event as C functions see it. The two pointers are atomics because a retain (under the
/// slot's lock) redirects them to the event's own copies while the callback's thread may be
/// reading them without the lock: both targets are valid during the callback.
struct CEvent {
    message_type: ws_message_t,
    status_code: i32,
    connection: AtomicPtr<Arc<Connection>>,
    data: AtomicPtr<u8>,
    length: AtomicUsize,
}

struct Kept {
    data: Box<[u8]>,
    connection: Arc<Connection>,
}

impl CEvent {
    fn empty() -> CEvent {
        CEvent {
            message_type: ws_message_t::kWsMessageUnknown,
            status_code: 0,
            connection: AtomicPtr::new(std::ptr::null_mut()),
            data: AtomicPtr::new(std::ptr::null_mut()),
            length: AtomicUsize::new(0),
        }
    }

    fn data(&self) -> &[u8] {
        let pointer = self.data.load(Ordering::Acquire);
        let length = self.length.load(Ordering::Acquire);
        if pointer.is_null() || length == 0 {
            return &[];
        }
        // SAFETY: the borrowed buffer (valid during the callback) or our own copy (valid while
        // the event is retained); the caller holds the event valid for this borrow.
        unsafe { std::slice::from_raw_parts(pointer, length) }
    }

    fn connection(&self) -> &Arc<Connection> {
        // SAFETY: set before the event is handed out: the session's Arc during the callback,
        // the event's own reference once retained.
        unsafe { &*self.connection.load(Ordering::Acquire) }
    }
}

struct EventEntry {
    event: Box<CEvent>,
    /// What a retained event owns: a copy of the data and a reference to the connection. Kept
    /// apart from `event`, which other threads only ever read, so that a retain never writes
    /// to an object the callback's thread may be reading.
    kept: Option<Box<Kept>>,
    /// The callback this event was made for is still running.
    in_callback: bool,
    /// References taken with `wsEventRetain` and not yet released.
    retains: u32,
}

impl EventEntry {
    fn is_live(&self) -> bool {
        self.in_callback || self.retains > 0
    }
}

// SAFETY: the raw pointers inside point to data that is valid wherever the event is valid (see
// CEvent); every change happens under the slot's lock.
unsafe impl Send for EventEntry {}

/// Index bits of event handles. Each callback moves its thread's slot on by one generation, so
/// a slot's generations come round fastest here: on 32-bit targets the table is kept small
/// (4095 slots: one per callback thread, and the retained events) to leave 20 generation bits.
#[cfg(target_pointer_width = "64")]
const EVENT_BITS: u32 = super::handle::INDEX_BITS;
#[cfg(not(target_pointer_width = "64"))]
const EVENT_BITS: u32 = 12;

type EventTable = SlotTable<EventEntry, EVENT_BITS>;

static EVENTS: LazyLock<EventTable> = LazyLock::new(SlotTable::new);

thread_local! {
    /// This thread's event slot, reused for every callback until an event in it is retained.
    static OWN_SLOT: OwnSlot = const {
        OwnSlot {
            handle: Cell::new(0),
            slot: Cell::new(None),
        }
    };
    /// The event whose callback runs on this thread: its handle and object. Calls made with
    /// exactly this handle skip the table lookup.
    static CURRENT: Cell<(usize, *const CEvent)> = const { Cell::new((0, std::ptr::null())) };
}

/// A handle to this thread's slot (any generation will do: only the index is used), and the
/// slot itself (slots never move: no lookup per callback). The slot goes back to the table when
/// the thread ends.
struct OwnSlot {
    handle: Cell<usize>,
    slot: Cell<Option<&'static Mutex<Slot<EventEntry>>>>,
}

impl OwnSlot {
    fn set(&self, handle: usize, slot: Option<&'static Mutex<Slot<EventEntry>>>) {
        self.handle.set(handle);
        self.slot.set(slot);
    }
}

impl Drop for OwnSlot {
    fn drop(&mut self) {
        let handle = self.handle.get();
        if handle == 0 {
            return;
        }
        let mut slot = EVENTS.lock_index(handle);
        if slot.value.as_ref().is_some_and(|e| !e.is_live()) {
            let entry = vacate(&mut slot);
            drop(slot);
            drop(entry);
            EVENTS.recycle(handle);
        }
    }
}

/// The event whose callback runs on this thread, if any, read once: a call that asks several
/// things of it (a reply: its connection, and whether the text is the message's own) pays one
/// thread-local lookup.
#[derive(Clone, Copy)]
pub(crate) struct Running(*const CEvent);

impl Running {
    #[inline(always)]
    pub(crate) fn get() -> Running {
        Running(CURRENT.get().1)
    }

    /// The connection whose callback runs on this thread (NULL outside callbacks), so that
    /// replying on it needs no handle lookup (see `connection.rs`).
    pub(crate) fn connection(self) -> *const Connection {
        // SAFETY: the current event is valid for the whole callback.
        match unsafe { self.0.as_ref() } {
            Some(event) => Arc::as_ptr(event.connection()),
            None => std::ptr::null(),
        }
    }

    /// True when `text` holds the bytes of the text message whose callback runs on this
    /// thread. The reader checked those as UTF-8 when they arrived, so a reply that echoes them
    /// (the message itself, or a copy of it) needs no second check: the same address and
    /// length is proof at no cost, and equal bytes elsewhere are proved by one comparison,
    /// cheaper than the UTF-8 check (several times so for text that is not ASCII). Anything
    /// else is for the caller to check.
    pub(crate) fn is_text(self, text: &[u8]) -> bool {
        // SAFETY: the current event, and the data it points to, are valid for the whole
        // callback.
        let Some(event) = (unsafe { self.0.as_ref() }) else {
            return false;
        };
        if event.message_type != ws_message_t::kWsMessageText {
            return false;
        }
        let message = event.data();
        message.len() == text.len() && (message.as_ptr() == text.as_ptr() || message == text)
    }
}

fn message_type(kind: MessageKind) -> ws_message_t {
    match kind {
        MessageKind::None => ws_message_t::kWsMessageUnknown,
        MessageKind::Text => ws_message_t::kWsMessageText,
        MessageKind::Binary => ws_message_t::kWsMessageBinary,
        MessageKind::Ping => ws_message_t::kWsMessagePing,
        MessageKind::Pong => ws_message_t::kWsMessagePong,
    }
}

/// Fills this thread's event slot with `event`, runs `call` with its handle, then makes the
/// handle stale — unless the application retained it, in which case the slot is the event's
/// until its last release and the thread takes another slot next time.
pub(crate) fn with_c_event(event: &Event<'_>, call: impl FnOnce(*mut WsEvent)) {
    let nested = !CURRENT.get().1.is_null();
    let own = OWN_SLOT.with(|own| own.slot.get().map(|slot| (own.handle.get(), slot)));
    // A callback never runs inside another on one thread; should it ever, it gets a slot of
    // its own rather than overwrite the outer event.
    let (slot_handle, slot) = match own {
        Some(own) if !nested => own,
        _ => {
            let Some(new) = new_slot(nested) else {
                return;
            };
            new
        }
    };
    let (handle, pointer) = {
        let mut slot = slot.lock();
        let generation = slot.generation;
        let entry = slot
            .value
            .as_mut()
            .expect("a thread's event slot holds an entry");
        let c_event = &mut *entry.event;
        c_event.message_type = message_type(event.message);
        c_event.status_code = i32::from(event.status);
        *c_event.connection.get_mut() = (event.connection as *const Arc<Connection>).cast_mut();
        *c_event.data.get_mut() = event.data.as_ptr().cast_mut();
        *c_event.length.get_mut() = event.data.len();
        entry.in_callback = true;
        entry.retains = 0;
        let pointer: *const CEvent = &*entry.event;
        (EventTable::handle(slot_handle, generation), pointer)
    };
    let outer = CURRENT.replace((handle, pointer));
    call(handle as *mut WsEvent);
    CURRENT.set(outer);

    let mut slot = slot.lock();
    let entry = slot
        .value
        .as_mut()
        .expect("the slot is ours until we let it go");
    entry.in_callback = false;
    if entry.retains > 0 {
        // The event is the application's now; this thread needs another slot.
        if !nested {
            OWN_SLOT.with(|own| own.set(0, None));
        }
        return;
    }
    let kept = entry.kept.take();
    *entry.event.connection.get_mut() = std::ptr::null_mut();
    *entry.event.data.get_mut() = std::ptr::null_mut();
    if nested {
        let entry = vacate(&mut slot);
        drop(slot);
        drop(entry);
        EVENTS.recycle(slot_handle);
    } else {
        // The handle goes stale at once; the slot and its event object wait for the next one.
        slot.generation = slot.generation.wrapping_add(1);
        drop(slot);
    }
    // A retain released inside the callback left a reference to the connection: dropped
    // outside the lock (it may be the last and run the delegate's release).
    drop(kept);
}

/// A slot for a thread's first callback (or one after a retain), or for a nested one: made apart
/// from `with_c_event`, whose every call would otherwise carry its stack frame.
#[cold]
#[inline(never)]
fn new_slot(nested: bool) -> Option<(usize, &'static Mutex<Slot<EventEntry>>)> {
    let Ok(handle) = EVENTS.insert(EventEntry {
        event: Box::new(CEvent::empty()),
        kept: None,
        in_callback: false,
        retains: 0,
    }) else {
        crate::log::log!(Error, "no event slot left: an event was not delivered");
        return None;
    };
    let slot = EVENTS.slot_of(handle);
    if !nested {
        OWN_SLOT.with(|own| own.set(handle, Some(slot)));
    }
    Some((handle, slot))
}

/// The event of the callback running on this thread when `handle` is its handle, else NULL.
/// The calls a callback makes about its own event (nearly all of them) answer from it at once;
/// every other handle, and every error, takes the full path (a function of its own, so that
/// its error machinery costs the quick answer nothing).
#[inline(always)]
fn running_event(handle: *const WsEvent) -> *const CEvent {
    let (current, event) = CURRENT.get();
    match handle as usize == current {
        true => event,
        false => std::ptr::null(),
    }
}

/// Runs `f` on the live event behind `handle`: `EINVAL` for NULL, `EBADF` when it is not live.
fn with_event<R>(handle: *const WsEvent, f: impl FnOnce(&CEvent) -> Result<R>) -> Result<R> {
    let handle = handle as usize;
    if handle == 0 {
        return Err(Error::invalid("WsEvent is NULL"));
    }
    let (current, event) = CURRENT.get();
    if handle == current {
        // SAFETY: the event of the callback running on this thread is valid until it returns.
        return f(unsafe { &*event });
    }
    let slot = EVENTS.lock(handle).ok_or_else(stale)?;
    let entry = slot.value.as_ref().expect("locked slots hold a value");
    if !entry.is_live() {
        return Err(stale());
    }
    f(&entry.event)
}

fn stale() -> Error {
    Error::new(
        libc::EBADF,
        "WsEvent is not live (its callback returned and it was not retained, or it was released)",
    )
}

/// The type of a message event.
///
/// Returns: `kWsMessageText`, `kWsMessageBinary`, `kWsMessagePing` or `kWsMessagePong` for a
/// message event; `kWsMessageUnknown` for open, error and close events, and (with `errno` set:
/// `EINVAL`, `EBADF`) for a NULL event or one that is not live.
/// NULL: `kWsMessageUnknown` with `EINVAL`.
/// Threads: any thread while the event is live (during its callback, or retained).
#[unsafe(no_mangle)]
pub extern "C" fn wsEventMessageType(event_handle: *const WsEvent) -> ws_message_t {
    // SAFETY: the event of the callback running on this thread is valid until it returns.
    if let Some(event) = unsafe { running_event(event_handle).as_ref() } {
        return event.message_type;
    }
    event_message_type(event_handle)
}

/// `wsEventMessageType` for any other handle (see [`running_event`]).
#[inline(never)]
fn event_message_type(event_handle: *const WsEvent) -> ws_message_t {
    boundary(
        "wsEventMessageType",
        ws_message_t::kWsMessageUnknown,
        || with_event(event_handle, |event| Ok(event.message_type)),
    )
}

/// Points `*data` at the event's data without copying and returns its size: the whole message
/// (fragments reassembled; text is not NUL-terminated), or the reason of a close or error event.
///
/// Returns: the size in bytes (0 with `*data` = NULL when there is no data), or -1 with `errno`:
/// `EINVAL`, `EBADF` (event not live), `EOVERFLOW` (size over `INT32_MAX`).
/// NULL: `event_handle` or `data`: `EINVAL`, `*data` untouched.
/// Lifetime: the bytes belong to the library; never free them. Fetched during the callback, they
/// are valid until the callback returns. After `wsEventRetain` the event has its own copy: call
/// `wsEventData` again after the retain for a pointer valid until the last `wsEventRelease` (a
/// pointer fetched before the retain still ends with the callback).
/// Threads: any thread while the event is live.
///
/// # Safety
/// `data` is NULL or a writable pointer slot.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsEventData(event_handle: *const WsEvent, data: *mut *const u8) -> i32 {
    // SAFETY: the event of the callback running on this thread is valid until it returns.
    if let Some(event) = unsafe { running_event(event_handle).as_ref() }
        && !data.is_null()
    {
        let bytes = event.data();
        if let Ok(size) = i32::try_from(bytes.len()) {
            // SAFETY: checked non-NULL; the caller provides a writable slot.
            unsafe { *data = data_pointer(bytes) };
            return size;
        }
    }
    // SAFETY: forwarded caller contract.
    unsafe { event_data(event_handle, data) }
}

/// Where `*data` points for `bytes`: NULL when there are none.
fn data_pointer(bytes: &[u8]) -> *const u8 {
    if bytes.is_empty() {
        std::ptr::null()
    } else {
        bytes.as_ptr()
    }
}

/// `wsEventData` for any other handle, and its errors (see [`running_event`]).
///
/// # Safety
/// As `wsEventData`.
#[inline(never)]
unsafe fn event_data(event_handle: *const WsEvent, data: *mut *const u8) -> i32 {
    boundary("wsEventData", -1, || {
        if data.is_null() {
            return Err(Error::invalid("data is NULL"));
        }
        with_event(event_handle, |event| {
            let bytes = event.data();
            let size = i32::try_from(bytes.len())
                .map_err(|_| Error::new(libc::EOVERFLOW, "message too large"))?;
            // SAFETY: checked non-NULL above; the caller provides a writable slot.
            unsafe { *data = data_pointer(bytes) };
            Ok(size)
        })
    })
}

/// Copies the event's data (the message, or the close or error reason) and a NUL into `buffer`
/// like `snprintf`: at most `capacity - 1` bytes. Binary data is copied as it is.
///
/// Returns: the data's full length without the NUL (at least `capacity` means truncated), or -1
/// with `errno`: `EINVAL`, `EBADF` (event not live).
/// NULL: `event_handle`: `EINVAL`. `buffer` NULL with `capacity` 0 asks for the length; NULL with
/// `capacity` > 0: `EINVAL`.
/// Lifetime: the text is copied into the caller's buffer; nothing stays borrowed.
/// Threads: any thread while the event is live.
///
/// # Safety
/// `buffer` has `capacity` writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsEventText(
    event_handle: *const WsEvent,
    buffer: *mut c_char,
    capacity: usize,
) -> i32 {
    boundary("wsEventText", -1, || {
        // SAFETY: forwarded caller contract.
        with_event(event_handle, |event| unsafe {
            copy_out(event.data(), buffer, capacity)
        })
    })
}

/// The status code of an error or close event (`ws_status_code_t`: 1000..1015).
///
/// Returns: the code; 0 for open and message events; -1 with `errno`: `EINVAL`, `EBADF` (event
/// not live).
/// NULL: `EINVAL`.
/// Threads: any thread while the event is live.
#[unsafe(no_mangle)]
pub extern "C" fn wsEventStatusCode(event_handle: *const WsEvent) -> i32 {
    boundary("wsEventStatusCode", -1, || {
        with_event(event_handle, |event| Ok(event.status_code))
    })
}

/// The connection the event belongs to: the same handle `wsOpenConnection` returned for a client
/// connection, and one handle per server connection for all its events.
///
/// Returns: a borrowed handle, or NULL with `errno`: `EINVAL`, `EBADF` (event not live).
/// NULL: NULL with `EINVAL`.
/// Lifetime: borrowed, not owned by the caller: do not release it. It is valid at least while
/// the event is live; to keep it longer, `wsConnectionRetain` it (then release it once).
/// Threads: any thread while the event is live.
#[unsafe(no_mangle)]
pub extern "C" fn wsEventConnection(event_handle: *const WsEvent) -> *mut WsConnection {
    // SAFETY: the event of the callback running on this thread is valid until it returns.
    if let Some(event) = unsafe { running_event(event_handle).as_ref() } {
        let known = event.connection().api_handle.load(Ordering::Acquire);
        if known != 0 {
            return known as *mut WsConnection;
        }
    }
    event_connection(event_handle)
}

/// `wsEventConnection` for any other handle, and a connection's first handle (see
/// [`running_event`]).
#[inline(never)]
fn event_connection(event_handle: *const WsEvent) -> *mut WsConnection {
    boundary("wsEventConnection", std::ptr::null_mut(), || {
        with_event(event_handle, |event| {
            super::connection::handle_of(event.connection())
        })
    })
}

/// Keeps the event live after its callback returns, until the matching `wsEventRelease`
/// (retains nest). The first retain copies the data and takes a reference to the connection:
/// call `wsEventData` again afterwards for a pointer that outlives the callback.
///
/// Returns: 0, or -1 with `errno`: `EINVAL`, `EBADF` (event not live: its callback returned and
/// it was not retained, or it was released).
/// NULL: `EINVAL` (unlike the release, a NULL retain is an error).
/// Lifetime: each successful retain is the caller's, to end with one `wsEventRelease`.
/// Threads: any thread while the event is live; so the first retain must happen before the
/// callback returns.
#[unsafe(no_mangle)]
pub extern "C" fn wsEventRetain(event_handle: *mut WsEvent) -> i32 {
    boundary("wsEventRetain", -1, || {
        let handle = event_handle as usize;
        if handle == 0 {
            return Err(Error::invalid("WsEvent is NULL"));
        }
        let mut slot = EVENTS.lock(handle).ok_or_else(stale)?;
        let entry = slot.value.as_mut().expect("locked slots hold a value");
        if !entry.is_live() {
            return Err(stale());
        }
        if entry.kept.is_none() {
            let event = &*entry.event;
            let mut kept = Box::new(Kept {
                data: event.data().into(),
                connection: Arc::clone(event.connection()),
            });
            // Point at the copies where they live, in their own box: they stay put until the
            // event is freed, and the event itself is only changed through its atomics.
            event.length.store(kept.data.len(), Ordering::Release);
            event.data.store(kept.data.as_mut_ptr(), Ordering::Release);
            event
                .connection
                .store(&mut kept.connection, Ordering::Release);
            entry.kept = Some(kept);
        }
        entry.retains += 1;
        Ok(0)
    })
}

/// Drops one reference taken with `wsEventRetain`. After the last one the handle is stale and
/// the data fetched after the retain is freed; a release inside the event's own callback leaves
/// the event valid until the callback returns.
///
/// Returns: 0; -1 with `EBADF` for an event that is not live or not retained (released without a
/// retain, or more often than retained): then nothing else happens.
/// NULL: no-op, returns 0.
/// Lifetime: the last release may drop the last reference to an ended connection; the
/// delegate's `release(user)` then runs on the calling thread, before this returns.
/// Threads: any thread, also inside any callback.
#[unsafe(no_mangle)]
pub extern "C" fn wsEventRelease(event_handle: *mut WsEvent) -> i32 {
    boundary("wsEventRelease", -1, || {
        let handle = event_handle as usize;
        if handle == 0 {
            return Ok(0);
        }
        let mut slot = EVENTS.lock(handle).ok_or_else(stale)?;
        let entry = slot.value.as_mut().expect("locked slots hold a value");
        if entry.retains == 0 {
            return Err(Error::new(
                libc::EBADF,
                "WsEvent was not retained (or was released as often as it was retained)",
            ));
        }
        entry.retains -= 1;
        if entry.retains > 0 || entry.in_callback {
            return Ok(0);
        }
        let freed = vacate(&mut slot);
        drop(slot);
        // Dropped outside the lock: the event's connection reference may be the last one.
        drop(freed);
        EVENTS.recycle(handle);
        Ok(0)
    })
}
