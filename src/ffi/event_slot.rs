//! The event slots behind `WsEvent` handles: the slot each callback thread owns and refills
//! for every callback, and the lookup that turns a handle into a live event (`event.rs` holds
//! the C functions).
//!
//! Each thread that runs callbacks owns one event slot and refills it for every callback, so a
//! message costs no allocation and no table-wide lock. A retained event keeps its slot (the
//! thread takes a fresh one for its next callback) and gets its own copy of the data.
//!
//! The owning thread fills its slot's event without the slot's lock, and takes the lock once a
//! callback, after it, to end the event. The slot's lock is biased to its owner
//! (`runtime::BiasedLock`): that costs no atomic operation until another thread looks the slot
//! up, which revokes the bias once. Every other thread reaches an event only through a
//! handle lookup, which takes the slot's lock, compares the generation and then reads
//! `in_callback` (or `retains`): the fill happens while the event is not live (the lookup finds
//! it dead, and reads nothing else), and the `Release` store that makes it live publishes the
//! filled fields to every lookup that sees it live (`Acquire`). The event's fields are atomics,
//! so a lookup that loses this race reads nothing torn either.

use super::handle::{SlotGuard, SlotLock, SlotTable, kind};
use super::{WsEvent, ws_message_t};
use crate::error::{Error, Result};
use crate::ws::connection::Connection;
use crate::ws::event::{Event, MessageKind};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicPtr, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};

/// The event as C functions see it. Every field is an atomic: the owning thread fills them
/// without the slot's lock (see the module comment), and a retain (under the lock) redirects
/// the two pointers to the event's own copies while the callback's thread may be reading them
/// without the lock: both targets are valid during the callback. Plain loads and stores of
/// atomics are ordinary moves; none of this is a read-modify-write.
pub(super) struct CEvent {
    /// A `ws_message_t`, as its number.
    message_type: AtomicU8,
    status_code: AtomicI32,
    connection: AtomicPtr<Arc<Connection>>,
    data: AtomicPtr<u8>,
    length: AtomicUsize,
    /// The callback this event was made for is still running. Set (`Release`) by the owning
    /// thread after it filled the other fields, cleared under the slot's lock when the callback
    /// returns; read under the lock (`Acquire`) by every lookup before any other field.
    in_callback: AtomicBool,
}

pub(super) struct Kept {
    data: Box<[u8]>,
    connection: Arc<Connection>,
}

impl CEvent {
    fn empty() -> CEvent {
        CEvent {
            message_type: AtomicU8::new(ws_message_t::kWsMessageUnknown as u8),
            status_code: AtomicI32::new(0),
            connection: AtomicPtr::new(std::ptr::null_mut()),
            data: AtomicPtr::new(std::ptr::null_mut()),
            length: AtomicUsize::new(0),
            in_callback: AtomicBool::new(false),
        }
    }

    pub(super) fn message_type(&self) -> ws_message_t {
        match self.message_type.load(Ordering::Relaxed) {
            1 => ws_message_t::kWsMessageText,
            2 => ws_message_t::kWsMessageBinary,
            3 => ws_message_t::kWsMessagePing,
            4 => ws_message_t::kWsMessagePong,
            _ => ws_message_t::kWsMessageUnknown,
        }
    }

    pub(super) fn status_code(&self) -> i32 {
        self.status_code.load(Ordering::Relaxed)
    }

    /// For a lookup under the slot's lock. The owning thread sets it without the lock, so a
    /// lookup racing the start of a callback may find it clear (the event not yet live); it is
    /// cleared only under the lock, so a lookup that finds it set sees the callback running.
    /// `Acquire`, as in [`EventEntry::is_live`], for a caller that reads the event next.
    pub(super) fn in_callback(&self) -> bool {
        self.in_callback.load(Ordering::Acquire)
    }

    /// What a retain keeps (under the slot's lock, with the event live): a copy of the data and
    /// a reference to the connection, which the event points at from now on. They live in their
    /// own box: they stay put until the event is freed, and the event itself is only changed
    /// through its atomics.
    pub(super) fn keep(&self) -> Box<Kept> {
        let mut kept = Box::new(Kept {
            data: self.data().into(),
            connection: Arc::clone(self.connection()),
        });
        self.length.store(kept.data.len(), Ordering::Release);
        self.data.store(kept.data.as_mut_ptr(), Ordering::Release);
        self.connection
            .store(&mut kept.connection, Ordering::Release);
        kept
    }

    pub(super) fn data(&self) -> &[u8] {
        let pointer = self.data.load(Ordering::Acquire);
        let length = self.length.load(Ordering::Acquire);
        if pointer.is_null() || length == 0 {
            return &[];
        }
        // SAFETY: the borrowed buffer (valid during the callback) or our own copy (valid while
        // the event is retained); the caller holds the event valid for this borrow.
        unsafe { std::slice::from_raw_parts(pointer, length) }
    }

    pub(super) fn connection(&self) -> &Arc<Connection> {
        // SAFETY: callers reach only a live event: the one whose callback runs on their thread,
        // or one a lookup found live under the slot's lock, whose callback cannot end (or whose
        // last release cannot happen) while the caller holds it. Live, the pointer is set: to
        // the session's Arc during the callback (stored before `in_callback`, published by its
        // `Release`), to the event's own reference once retained (stored under the lock). It
        // is nulled only after the callback, under the lock, when nothing retained the event.
        unsafe { &*self.connection.load(Ordering::Acquire) }
    }
}

pub(super) struct EventEntry {
    pub(super) event: Box<CEvent>,
    /// What a retained event owns: a copy of the data and a reference to the connection. Kept
    /// apart from `event`, which other threads only ever read, so that a retain never writes
    /// to an object the callback's thread may be reading.
    pub(super) kept: Option<Box<Kept>>,
    /// References taken with `wsEventRetain` and not yet released.
    pub(super) retains: u32,
}

impl EventEntry {
    /// Read under the slot's lock, before anything else of the event: `Acquire` pairs with the
    /// owning thread's fill (see the module comment).
    pub(super) fn is_live(&self) -> bool {
        self.event.in_callback.load(Ordering::Acquire) || self.retains > 0
    }
}

/// Index bits of event handles. Each callback moves its thread's slot on by one generation, so
/// a slot's generations come round fastest here: on 32-bit targets the table is kept small
/// (4095 slots: one per callback thread, and the retained events) to leave 20 generation bits.
#[cfg(target_pointer_width = "64")]
const EVENT_BITS: u32 = super::handle::INDEX_BITS;
#[cfg(not(target_pointer_width = "64"))]
const EVENT_BITS: u32 = 12;

type EventTable = SlotTable<EventEntry, EVENT_BITS, { kind::EVENT }>;

pub(super) static EVENTS: LazyLock<EventTable> = LazyLock::new(SlotTable::new);

thread_local! {
    /// This thread's event slot, reused for every callback until an event in it is retained.
    static OWN_SLOT: OwnSlot = const {
        OwnSlot {
            handle: Cell::new(0),
            slot: Cell::new(None),
            event: Cell::new(std::ptr::null()),
            generation: Cell::new(0),
        }
    };
    /// The event whose callback runs on this thread: its handle and object. Calls made with
    /// exactly this handle skip the table lookup.
    static CURRENT: Cell<(usize, *const CEvent)> = const { Cell::new((0, std::ptr::null())) };
}

/// A handle to this thread's slot (any generation will do: only the index is used), the slot
/// itself (slots never move: no lookup per callback), its event object and its generation. The
/// slot goes back to the table when the thread ends. The slot's lock is biased to the thread
/// while it owns the slot; it gives the bias up with the slot (a retained event, thread exit).
///
/// While a thread owns its slot, only that thread changes the slot's generation or frees its
/// entry: another thread frees an entry only at its last `wsEventRelease`, and the owner gives
/// the slot up as soon as a callback returns with the event retained; an event that is not live
/// cannot be retained, and a release without a retain fails. So the generation kept here is the
/// slot's, and `event` stays valid while the slot is owned.
struct OwnSlot {
    handle: Cell<usize>,
    slot: Cell<Option<&'static SlotLock<EventEntry>>>,
    event: Cell<*const CEvent>,
    generation: Cell<u64>,
}

/// The slot a callback's event goes in: a handle naming it, the slot, its event object and its
/// current generation.
type Place = (usize, &'static SlotLock<EventEntry>, *const CEvent, u64);

impl OwnSlot {
    fn set(&self, place: Option<Place>) {
        let (handle, slot, event, generation) = match place {
            Some((handle, slot, event, generation)) => (handle, Some(slot), event, generation),
            None => (0, None, std::ptr::null(), 0),
        };
        self.handle.set(handle);
        self.slot.set(slot);
        self.event.set(event);
        self.generation.set(generation);
    }

    fn get(&self) -> Option<Place> {
        let slot = self.slot.get()?;
        Some((
            self.handle.get(),
            slot,
            self.event.get(),
            self.generation.get(),
        ))
    }
}

impl Drop for OwnSlot {
    fn drop(&mut self) {
        let Some(slot) = self.slot.get() else {
            return;
        };
        // SAFETY: the thread's own slot (it gives the bias up here, and owns no slot after).
        let slot = unsafe { slot.lock(true) };
        slot.give_up_bias();
        if slot.value.as_ref().is_some_and(|e| !e.is_live()) {
            EVENTS.free(slot, self.handle.get());
        }
    }
}

/// Locks the event slot `handle` names, if the handle is current: as its owner when it is this
/// thread's own slot (a retain or release inside the thread's callback then costs no atomic,
/// and leaves the slot's bias alone).
pub(super) fn lock_event(handle: usize) -> Option<SlotGuard<'static, EventEntry>> {
    let is_own = |slot: &SlotLock<EventEntry>| {
        // (`try_with`: also from a thread's exit destructors, after `OWN_SLOT` has gone — a
        // C++ `thread_local` that releases its events, say: then no slot is the thread's.)
        OWN_SLOT
            .try_with(|own| own.slot.get().is_some_and(|own| std::ptr::eq(own, slot)))
            .unwrap_or(false)
    };
    // SAFETY: a slot in `OWN_SLOT` is this thread's, biased to it (`new_slot`) until it gives
    // it up, which also takes it out of `OWN_SLOT`.
    unsafe { EVENTS.lock_as(handle, is_own) }
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

    /// The bytes of the text message whose callback runs on this thread, if it is one: the
    /// reader checked them as UTF-8 when they arrived, so a reply of these bytes, or of a copy
    /// of them, needs no second check.
    pub(crate) fn text_message(&self) -> Option<&[u8]> {
        // SAFETY: the current event, and the data it points to, are valid for the whole
        // callback, and `self` does not outlive it.
        let event = unsafe { self.0.as_ref() }?;
        (event.message_type() == ws_message_t::kWsMessageText).then(|| event.data())
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
    let own = OWN_SLOT.with(OwnSlot::get);
    // A callback never runs inside another on one thread; should it ever, it gets a slot of
    // its own rather than overwrite the outer event.
    let (slot_handle, slot, pointer, generation) = match own {
        Some(own) if !nested => own,
        _ => {
            let Some(new) = new_slot(nested) else {
                return;
            };
            new
        }
    };
    // SAFETY: the slot's entry, and its boxed event, stay put until this thread frees them or
    // gives the slot up (see `OwnSlot`; a slot made for a nested callback is this call's
    // alone), and neither happens before the end of this function.
    let c_event = unsafe { &*pointer };
    // Not live yet: other threads read nothing here but `in_callback` (see the module comment).
    c_event
        .message_type
        .store(message_type(event.message) as u8, Ordering::Relaxed);
    c_event
        .status_code
        .store(i32::from(event.status), Ordering::Relaxed);
    c_event.connection.store(
        (event.connection as *const Arc<Connection>).cast_mut(),
        Ordering::Relaxed,
    );
    c_event
        .data
        .store(event.data.as_ptr().cast_mut(), Ordering::Relaxed);
    c_event.length.store(event.data.len(), Ordering::Relaxed);
    c_event.in_callback.store(true, Ordering::Release);
    let handle = EventTable::handle(slot_handle, generation);

    let outer = CURRENT.replace((handle, pointer));
    // `call` does not unwind: the application's function is `extern "C"`, out of which a
    // panic (or a C++ exception) aborts the process. So nothing below needs a drop guard.
    call(handle as *mut WsEvent);
    CURRENT.set(outer);

    // SAFETY: the thread's own slot, locked as its owner (without an atomic operation unless
    // another thread has locked it), when not nested; a nested callback's slot is never biased
    // and is locked as any thread would.
    let mut slot = unsafe { slot.lock(!nested) };
    let entry = slot
        .value
        .as_mut()
        .expect("the slot is ours until we let it go");
    entry.event.in_callback.store(false, Ordering::Relaxed);
    if entry.retains > 0 {
        // The event is the application's now; this thread needs another slot.
        if !nested {
            slot.give_up_bias();
            OWN_SLOT.with(|own| own.set(None));
        }
        return;
    }
    let kept = entry.kept.take();
    entry
        .event
        .connection
        .store(std::ptr::null_mut(), Ordering::Relaxed);
    entry
        .event
        .data
        .store(std::ptr::null_mut(), Ordering::Relaxed);
    if nested {
        EVENTS.free(slot, slot_handle);
    } else {
        // The handle goes stale at once; the slot and its event object wait for the next one.
        slot.generation = slot.generation.wrapping_add(1);
        let generation = slot.generation;
        drop(slot);
        OWN_SLOT.with(|own| own.generation.set(generation));
    }
    // A retain released inside the callback left a reference to the connection: dropped
    // outside the lock (it may be the last and run the delegate's release).
    drop(kept);
}

/// A slot for a thread's first callback (or one after a retain), or for a nested one: made apart
/// from `with_c_event`, whose every call would otherwise carry its stack frame.
#[cold]
#[inline(never)]
fn new_slot(nested: bool) -> Option<Place> {
    let Ok(handle) = EVENTS.insert(EventEntry {
        event: Box::new(CEvent::empty()),
        kept: None,
        retains: 0,
    }) else {
        crate::log::log!(Error, "no event slot left: an event was not delivered");
        return None;
    };
    let slot = EVENTS.slot_of(handle);
    let (pointer, generation) = {
        let slot = slot.lock_shared();
        if !nested {
            // SAFETY: this thread's own from now on: the slot came off the free list, so its
            // last owner gave the bias up (only stale handles name it; their lookups fail).
            unsafe { slot.bias() };
        }
        let entry = slot.value.as_ref().expect("a slot just filled");
        (&*entry.event as *const CEvent, slot.generation)
    };
    let place = (handle, slot, pointer, generation);
    if !nested {
        OWN_SLOT.with(|own| own.set(Some(place)));
    }
    Some(place)
}

/// The event of the callback running on this thread when `handle` is its handle, else NULL.
/// The calls a callback makes about its own event (nearly all of them) answer from it at once;
/// every other handle, and every error, takes the full path (a function of its own, so that
/// its error machinery costs the quick answer nothing).
#[inline(always)]
pub(super) fn running_event(handle: *const WsEvent) -> *const CEvent {
    let (current, event) = CURRENT.get();
    match handle as usize == current {
        true => event,
        false => std::ptr::null(),
    }
}

/// Runs `f` on the live event behind `handle`: `EINVAL` for NULL, `EBADF` when it is not live.
pub(super) fn with_event<R>(
    handle: *const WsEvent,
    f: impl FnOnce(&CEvent) -> Result<R>,
) -> Result<R> {
    let handle = handle as usize;
    if handle == 0 {
        return Err(Error::invalid("WsEvent is NULL"));
    }
    let (current, event) = CURRENT.get();
    if handle == current {
        // SAFETY: the event of the callback running on this thread is valid until it returns.
        return f(unsafe { &*event });
    }
    let slot = lock_event(handle).ok_or_else(stale)?;
    let entry = slot.value.as_ref().expect("locked slots hold a value");
    if !entry.is_live() {
        return Err(stale());
    }
    f(&entry.event)
}

pub(super) fn stale() -> Error {
    Error::new(
        libc::EBADF,
        "WsEvent is not live (its callback returned and it was not retained, or it was released)",
    )
}
