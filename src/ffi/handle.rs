//! Handle tables: the only place where a C handle becomes a Rust object.
//!
//! A C handle is not an address. It is a slot index plus that slot's generation, packed into a
//! pointer-sized number. Freeing a slot bumps its generation, so a handle that outlived its
//! object (stale), was made up (foreign), or was released once too often fails the lookup with
//! `EBADF` even after its slot — or the memory of its object — is reused for another one.
//! Freed slots are reused oldest first, so one slot comes back only after every other free slot
//! did: on 32-bit targets, where the generation has 16 bits, a stale handle could only alias
//! after 65536 reuses of its very slot.
//!
//! Each slot has its own small lock: a lookup touches only the slot of its handle, so sends on
//! different connections from different threads never wait for one another. The table-wide
//! lock guards only the free list (taken when a handle is created or freed).

use crate::error::{Error, Result};
use parking_lot::{Mutex, MutexGuard};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::{Arc, Weak};

/// The index bits of a handle (the rest is generation): a million live handles per table.
#[cfg(target_pointer_width = "64")]
pub(crate) const INDEX_BITS: u32 = 20;
#[cfg(not(target_pointer_width = "64"))]
pub(crate) const INDEX_BITS: u32 = 16;

/// Slots are allocated in chunks that never move, so a slot can be locked without the table lock.
const CHUNK: usize = 256;

/// One slot: its current generation and, while it is in use, its value.
pub struct Slot<V> {
    pub generation: u64,
    pub value: Option<V>,
}

type Chunk<V> = [Mutex<Slot<V>>; CHUNK];

struct FreeList {
    /// Freed slot indexes, oldest first.
    queue: VecDeque<usize>,
    /// Slots handed out at least once (the next never-used index).
    used: usize,
}

/// Generational slots holding values of type `V`; the building block of every handle table.
/// Empties the slot behind a locked guard and makes every handle to it stale. The index is
/// queued for reuse (`SlotTable::recycle`) once the caller has dropped the guard.
pub fn vacate<V>(slot: &mut Slot<V>) -> Option<V> {
    slot.generation = slot.generation.wrapping_add(1);
    slot.value.take()
}

/// `BITS` is the number of index bits of its handles: fewer slots leave more generation bits,
/// so a slot's generation comes round again later (a table whose slots are reused at a high
/// rate, as the per-thread event slots are, wants few slots and a long generation).
pub struct SlotTable<V, const BITS: u32 = INDEX_BITS> {
    chunks: Box<[AtomicPtr<Chunk<V>>]>,
    free: Mutex<FreeList>,
}

impl<V, const BITS: u32> SlotTable<V, BITS> {
    /// Slots at most (index 0 .. MAX_SLOTS-1 encode as 1 .. 2^BITS-1).
    const MAX_SLOTS: usize = (1 << BITS) - 1;
    const INDEX_MASK: usize = (1 << BITS) - 1;

    fn encode(index: usize, generation: u64) -> usize {
        // The generation wraps within the bits left beside the index.
        ((generation as usize) << BITS) | (index + 1)
    }

    /// The slot index and generation a handle names, or None for 0.
    fn decode(handle: usize) -> Option<(usize, u64)> {
        let index = (handle & Self::INDEX_MASK).checked_sub(1)?;
        Some((index, (handle >> BITS) as u64))
    }

    fn generation_matches(slot: u64, handle: u64) -> bool {
        let bits = usize::BITS - BITS;
        let mask = if bits >= 64 {
            u64::MAX
        } else {
            (1u64 << bits) - 1
        };
        slot & mask == handle
    }

    pub fn new() -> Self {
        SlotTable {
            chunks: (0..Self::MAX_SLOTS.div_ceil(CHUNK))
                .map(|_| AtomicPtr::new(std::ptr::null_mut()))
                .collect(),
            free: Mutex::new(FreeList {
                queue: VecDeque::new(),
                used: 0,
            }),
        }
    }

    fn slot(&self, index: usize) -> Option<&Mutex<Slot<V>>> {
        let chunk = self.chunks.get(index / CHUNK)?.load(Ordering::Acquire);
        // SAFETY: a published chunk is never freed or moved while the table exists.
        let chunk = unsafe { chunk.as_ref() }?;
        Some(&chunk[index % CHUNK])
    }

    /// Puts `value` into a free slot and returns its handle; `EMFILE` when the table is full.
    pub fn insert(&self, value: V) -> Result<usize> {
        let index = self.take_free_index()?;
        let slot = self.slot(index).expect("a handed-out slot exists");
        let mut slot = slot.lock();
        slot.value = Some(value);
        Ok(Self::encode(index, slot.generation))
    }

    fn take_free_index(&self) -> Result<usize> {
        let mut free = self.free.lock();
        if let Some(index) = free.queue.pop_front() {
            return Ok(index);
        }
        let index = free.used;
        if index >= Self::MAX_SLOTS {
            return Err(Error::new(
                libc::EMFILE,
                format!("too many live handles (at most {})", Self::MAX_SLOTS),
            ));
        }
        if index.is_multiple_of(CHUNK) {
            let chunk: Box<Chunk<V>> = Box::new(std::array::from_fn(|_| {
                Mutex::new(Slot {
                    generation: 0,
                    value: None,
                })
            }));
            self.chunks[index / CHUNK].store(Box::into_raw(chunk), Ordering::Release);
        }
        free.used += 1;
        Ok(index)
    }

    /// Locks the slot `handle` names, if the handle is current (its generation matches and the
    /// slot holds a value).
    pub fn lock(&self, handle: usize) -> Option<MutexGuard<'_, Slot<V>>> {
        let (index, generation) = Self::decode(handle)?;
        let slot = self.slot(index)?.lock();
        (Self::generation_matches(slot.generation, generation) && slot.value.is_some())
            .then_some(slot)
    }

    /// Locks the slot `handle` names whatever its generation: for the owner of a slot, which
    /// changes the generation itself.
    pub fn lock_index(&self, handle: usize) -> MutexGuard<'_, Slot<V>> {
        self.slot_of(handle).lock()
    }

    /// The slot `handle` names, whatever its generation, not locked: for the owner of a slot,
    /// which may keep the reference (slots never move) and lock it without a lookup.
    pub fn slot_of(&self, handle: usize) -> &Mutex<Slot<V>> {
        let (index, _) = Self::decode(handle).expect("a handle the table issued");
        self.slot(index).expect("a handed-out slot exists")
    }

    /// The handle of the slot `handle` names, at `generation`.
    pub fn handle(handle: usize, generation: u64) -> usize {
        let (index, _) = Self::decode(handle).expect("a handle the table issued");
        Self::encode(index, generation)
    }

    /// Queues a vacated slot's index for reuse.
    pub fn recycle(&self, handle: usize) {
        if let Some((index, _)) = Self::decode(handle) {
            self.free.lock().queue.push_back(index);
        }
    }

    /// Slots holding a value (or vacated and not yet recycled).
    pub fn occupied(&self) -> usize {
        let free = self.free.lock();
        free.used - free.queue.len()
    }

    /// Visits every slot in use; `f` returns true to vacate it (its value is dropped after the
    /// slot's lock is released).
    pub fn sweep(&self, mut f: impl FnMut(&V) -> bool) {
        let used = self.free.lock().used;
        let mut freed = Vec::new();
        for index in 0..used {
            let Some(slot) = self.slot(index) else { break };
            let mut slot = slot.lock();
            if slot.value.as_ref().is_some_and(&mut f) {
                let value = vacate(&mut slot);
                drop(slot);
                drop(value);
                freed.push(index);
            }
        }
        self.free.lock().queue.extend(freed);
    }
}

impl<V, const BITS: u32> Default for SlotTable<V, BITS> {
    fn default() -> Self {
        Self::new()
    }
}

/// What a handle table keeps for one object: a `Weak` (the handle alone never keeps the object
/// alive) and the references C holds (`…Retain`, or a handle returned as owned by the caller).
/// While C holds any, the entry owns one strong reference that stands for all of them, kept as
/// a count of the object's own (`Arc::into_raw`) rather than a second pointer: every live
/// connection has an entry, so its size counts per idle connection (a slot takes 32 bytes).
struct Entry<T> {
    object: Weak<T>,
    held_by_c: usize,
}

impl<T> Entry<T> {
    /// Takes the strong reference standing for C's (the object is alive: `held_by_c` was 0).
    fn hold(&mut self, object: Arc<T>) {
        debug_assert_eq!(self.held_by_c, 0);
        let _ = Arc::into_raw(object);
    }

    /// Gives back the strong reference standing for C's (`held_by_c` has just reached 0).
    fn unhold(&mut self) -> Arc<T> {
        // SAFETY: `hold` kept one strong count of this very allocation (`Weak::as_ptr` is the
        // pointer `Arc::into_raw` returned), and it is given back once, here.
        unsafe { Arc::from_raw(self.object.as_ptr()) }
    }
}

impl<T> Drop for Entry<T> {
    /// An entry vacated while C still holds it (a handle forgotten after a lost race) gives its
    /// strong reference back.
    fn drop(&mut self) {
        if self.held_by_c > 0 {
            self.held_by_c = 0;
            drop(self.unhold());
        }
    }
}

/// Handles to objects shared with the core (`Arc`), such as servers and connections.
pub struct HandleTable<T> {
    what: &'static str,
    slots: SlotTable<Entry<T>>,
    /// Publishing sweeps the slots of dead objects once the table has grown to this size.
    sweep_at: Mutex<usize>,
}

impl<T> HandleTable<T> {
    pub fn new(what: &'static str) -> Self {
        HandleTable {
            what,
            slots: SlotTable::new(),
            sweep_at: Mutex::new(256),
        }
    }

    /// Makes `object` reachable from C and returns its new handle. With `owned_by_caller`, the
    /// caller holds one reference and must release it.
    pub fn publish(&self, object: &Arc<T>, owned_by_caller: bool) -> Result<usize> {
        self.sweep_if_grown();
        let mut entry = Entry {
            object: Arc::downgrade(object),
            held_by_c: 0,
        };
        if owned_by_caller {
            entry.hold(object.clone());
            entry.held_by_c = 1;
        }
        self.slots.insert(entry)
    }

    /// Frees the slots of objects that are gone and that C no longer holds, once the table has
    /// doubled since the last sweep: the table stays proportional to the live objects, at an
    /// amortised constant cost per handle.
    fn sweep_if_grown(&self) {
        let mut sweep_at = self.sweep_at.lock();
        if self.slots.occupied() < *sweep_at {
            return;
        }
        let mut live = 0;
        self.slots.sweep(|entry| {
            let dead = entry.held_by_c == 0 && entry.object.strong_count() == 0;
            live += usize::from(!dead);
            dead
        });
        *sweep_at = (live * 2).max(CHUNK);
    }

    /// The object behind a handle: `EINVAL` for NULL, `EBADF` when stale or foreign.
    pub fn get(&self, handle: usize) -> Result<Arc<T>> {
        if handle == 0 {
            return Err(Error::invalid(format!("{} is NULL", self.what)));
        }
        self.slots
            .lock(handle)
            .and_then(|slot| slot.value.as_ref().and_then(|e| e.object.upgrade()))
            .ok_or_else(|| self.stale())
    }

    pub fn retain(&self, handle: usize) -> Result<()> {
        if handle == 0 {
            return Err(Error::invalid(format!("{} is NULL", self.what)));
        }
        let mut slot = self.slots.lock(handle).ok_or_else(|| self.stale())?;
        let entry = slot.value.as_mut().expect("locked slots hold a value");
        let object = entry.object.upgrade().ok_or_else(|| self.stale())?;
        if entry.held_by_c == 0 {
            entry.hold(object);
        } else {
            // Dropped under the slot's lock: C holds another reference, so this is not the last.
            drop(object);
        }
        entry.held_by_c += 1;
        Ok(())
    }

    /// Drops one reference C holds. Returns the object (dropped by the caller, outside any
    /// lock of ours: dropping it may run application code) and how many references C still
    /// holds. NULL is a no-op (`Ok(None)`), as `free(NULL)` is.
    pub fn release(&self, handle: usize) -> Result<Option<(Arc<T>, usize)>> {
        if handle == 0 {
            return Ok(None);
        }
        let mut slot = self.slots.lock(handle).ok_or_else(|| self.stale())?;
        let entry = slot.value.as_mut().expect("locked slots hold a value");
        if entry.held_by_c == 0 {
            return Err(Error::new(
                libc::EBADF,
                format!("{} was released more often than it was retained", self.what),
            ));
        }
        entry.held_by_c -= 1;
        let still_held = entry.held_by_c;
        let object = if still_held == 0 {
            entry.unhold()
        } else {
            entry.object.upgrade().expect("held by C, so alive")
        };
        drop(slot);
        Ok(Some((object, still_held)))
    }

    /// Frees a handle nobody has seen yet (one published in a race that another thread won).
    pub fn forget(&self, handle: usize) {
        let Some(mut slot) = self.slots.lock(handle) else {
            return;
        };
        let entry = vacate(&mut slot);
        drop(slot);
        drop(entry);
        self.slots.recycle(handle);
    }

    fn stale(&self) -> Error {
        Error::new(
            libc::EBADF,
            format!(
                "{} is not a live handle (released, destroyed or never created)",
                self.what
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reused_slot_does_not_answer_to_its_old_handle() {
        let table = HandleTable::new("thing");
        let first = Arc::new(1);
        let old = table.publish(&first, true).unwrap();
        let (object, held) = table.release(old).unwrap().unwrap();
        assert_eq!(held, 0);
        drop((object, first));
        // Make the sweep run: the slot comes back with a new generation.
        table.slots.sweep(|e| e.object.strong_count() == 0);
        let second = Arc::new(2);
        let new = table.publish(&second, true).unwrap();
        assert_ne!(old, new);
        let index = |h| SlotTable::<Entry<i32>>::decode(h).unwrap().0;
        assert_eq!(index(old), index(new), "same slot");
        assert_eq!(table.get(old).unwrap_err().errno, libc::EBADF);
        assert_eq!(*table.get(new).unwrap(), 2);
    }

    #[test]
    fn the_table_stays_as_small_as_what_is_live() {
        let table = HandleTable::new("thing");
        let keep: Vec<Arc<usize>> = (0..10).map(Arc::new).collect();
        for object in &keep {
            table.publish(object, false).unwrap();
        }
        for round in 0..100_000usize {
            let object = Arc::new(round);
            let handle = table.publish(&object, true).unwrap();
            let (object, _) = table.release(handle).unwrap().unwrap();
            drop(object);
        }
        let used = table.slots.free.lock().used;
        assert!(used <= 4 * CHUNK, "{used} slots for 10 live objects");
        assert!(keep.iter().all(|k| Arc::strong_count(k) == 1));
    }

    /// Every live connection has a slot: its size counts per idle connection.
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn a_slot_takes_32_bytes() {
        assert_eq!(std::mem::size_of::<Mutex<Slot<Entry<usize>>>>(), 32);
    }

    /// The strong reference standing for C's goes back whichever way the entry ends.
    #[test]
    fn references_held_for_c_are_given_back() {
        let table = HandleTable::new("thing");
        let object = Arc::new(5);
        let handle = table.publish(&object, true).unwrap();
        table.retain(handle).unwrap();
        assert_eq!(Arc::strong_count(&object), 2, "one for all of C's");
        let (again, held) = table.release(handle).unwrap().unwrap();
        assert_eq!((held, Arc::strong_count(&object)), (1, 3));
        drop(again);
        let (last, held) = table.release(handle).unwrap().unwrap();
        assert_eq!(held, 0);
        drop(last);
        assert_eq!(Arc::strong_count(&object), 1);
        // A handle forgotten while C would hold it (a race lost in publishing).
        let lost = table.publish(&object, true).unwrap();
        assert_eq!(Arc::strong_count(&object), 2);
        table.forget(lost);
        assert_eq!(Arc::strong_count(&object), 1);
        assert_eq!(
            Arc::weak_count(&object),
            1,
            "the first handle's entry, until swept"
        );
    }

    #[test]
    fn foreign_double_released_and_null_handles() {
        let table = HandleTable::new("thing");
        let object = Arc::new(7);
        let handle = table.publish(&object, true).unwrap();
        assert_eq!(
            table
                .get(handle.wrapping_add(1 << INDEX_BITS))
                .unwrap_err()
                .errno,
            libc::EBADF
        );
        assert_eq!(table.get(0x1234_5678).unwrap_err().errno, libc::EBADF);
        assert!(table.release(handle).unwrap().is_some());
        assert_eq!(table.release(handle).unwrap_err().errno, libc::EBADF);
        assert!(table.release(0).unwrap().is_none());
        assert_eq!(table.get(0).unwrap_err().errno, libc::EINVAL);
    }
}
