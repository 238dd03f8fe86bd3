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
//! Each slot of a [`SlotTable`] (events, HTTP requests) has its own small lock, a
//! [`BiasedLock`]: a lookup touches only the slot of its handle, and an event slot's callback
//! thread takes it without an atomic operation. The table-wide lock guards only the free list
//! (taken when a handle is created or freed). Servers and connections have a more compact table
//! of their own, with the same handles (`handle_table.rs`).

use crate::error::{Error, Result};
use crate::runtime::{BiasedGuard, BiasedLock};
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicPtr, Ordering};

/// The index bits of a handle (the rest is generation): a million live handles per table.
#[cfg(target_pointer_width = "64")]
pub(crate) const INDEX_BITS: u32 = 20;
#[cfg(not(target_pointer_width = "64"))]
pub(crate) const INDEX_BITS: u32 = 16;

/// Slots are allocated in chunks that never move, so a slot can be locked without the table lock.
pub(super) const CHUNK: usize = 256;

/// Chunk pointers per leaf of a table's directory (512 bytes on 64-bit targets).
const LEAF: usize = 64;
/// Leaves a directory can have: room for 2^20 slots (`CHUNK * LEAF * LEAVES`), the most any
/// table has.
const LEAVES: usize = 64;

/// Where a table finds its chunks: a directory of two levels, the first (`LEAVES` pointers) in
/// the table itself, the leaves made as the table grows. A flat array of pointers to every
/// chunk a table may ever have would take 32 KiB per table from its first handle on (at 5000
/// idle connections, 6.5 bytes of each one's memory); this takes 512 bytes a leaf, one per
/// 16384 slots. A lookup still loads two pointers (a flat array's address is a load too), and
/// takes no lock: leaves and chunks are published once and never move or go while the table
/// exists.
pub(super) struct Chunks<C> {
    leaves: [AtomicPtr<Leaf<C>>; LEAVES],
    /// The table owns its chunks (and drops them): it may go to or be shared with another
    /// thread only as its chunks may (`AtomicPtr` alone would make it `Send + Sync` whatever
    /// the slots hold).
    owns: PhantomData<Box<C>>,
}

type Leaf<C> = [AtomicPtr<C>; LEAF];

impl<C> Chunks<C> {
    /// Chunks a table of `max_slots` slots needs must fit the directory.
    pub(super) fn new(max_slots: usize) -> Self {
        assert!(
            max_slots.div_ceil(CHUNK) <= LEAF * LEAVES,
            "a table too large"
        );
        Chunks {
            leaves: std::array::from_fn(|_| AtomicPtr::new(std::ptr::null_mut())),
            owns: PhantomData,
        }
    }

    /// The chunk holding slot `slot`, if it was published.
    #[inline]
    pub(super) fn get(&self, slot: usize) -> Option<&C> {
        let index = slot / CHUNK;
        let leaf = self.leaves.get(index / LEAF)?.load(Ordering::Acquire);
        // SAFETY: a published leaf is never freed or moved while the table exists (only `drop`,
        // which has the table to itself, frees it); null is None.
        let leaf = unsafe { leaf.as_ref() }?;
        let chunk = leaf[index % LEAF].load(Ordering::Acquire);
        // SAFETY: the same holds for a published chunk.
        unsafe { chunk.as_ref() }
    }

    /// Publishes the chunk that holds slot `slot` (a multiple of `CHUNK`). Each chunk is
    /// published once, by a caller holding the lock that hands out slots: one writer at a time.
    pub(super) fn publish(&self, slot: usize, chunk: Box<C>) {
        let index = slot / CHUNK;
        let place = &self.leaves[index / LEAF];
        let mut leaf = place.load(Ordering::Acquire);
        if leaf.is_null() {
            let new: Box<Leaf<C>> =
                Box::new(std::array::from_fn(
                    |_| AtomicPtr::new(std::ptr::null_mut()),
                ));
            leaf = Box::into_raw(new);
            place.store(leaf, Ordering::Release);
        }
        // SAFETY: `leaf` is published (just now or before) and never freed while the table
        // exists.
        let leaf = unsafe { &*leaf };
        debug_assert!(leaf[index % LEAF].load(Ordering::Relaxed).is_null());
        leaf[index % LEAF].store(Box::into_raw(chunk), Ordering::Release);
    }
}

impl<C> Drop for Chunks<C> {
    fn drop(&mut self) {
        for place in &mut self.leaves {
            let leaf = *place.get_mut();
            if leaf.is_null() {
                continue;
            }
            // SAFETY: `publish` made it with `Box::into_raw`, and `&mut self` means no lookup
            // can still reach it; it is freed once (the table goes).
            let mut leaf = unsafe { Box::from_raw(leaf) };
            for place in leaf.iter_mut() {
                let chunk = *place.get_mut();
                if !chunk.is_null() {
                    // SAFETY: as for the leaf.
                    drop(unsafe { Box::from_raw(chunk) });
                }
            }
        }
    }
}

/// One slot: its current generation and, while it is in use, its value.
pub struct Slot<V> {
    pub generation: u64,
    pub value: Option<V>,
}

/// A slot's lock: a mutex, which a slot's owner thread (an event slot's callback thread) may
/// take without an atomic operation while no other thread disturbs it.
pub type SlotLock<V> = BiasedLock<Slot<V>>;
pub type SlotGuard<'a, V> = BiasedGuard<'a, Slot<V>>;

type Chunk<V> = [SlotLock<V>; CHUNK];

struct FreeList {
    /// Freed slot indexes, oldest first.
    queue: VecDeque<usize>,
    /// Slots handed out at least once (the next never-used index).
    used: usize,
}

/// Generational slots holding values of type `V`; the building block of every handle table.
/// Empties the slot behind a locked guard and makes every handle to it stale. The index is
/// queued for reuse (`SlotTable::recycle`) once the caller has dropped the guard.
fn vacate<V>(slot: &mut Slot<V>) -> Option<V> {
    slot.generation = slot.generation.wrapping_add(1);
    slot.value.take()
}

/// The kinds of handle, one per table C sees: each kind's handles carry it in their top bits
/// (`KIND_BITS` of the generation's), so that a handle passed where another kind is expected (a
/// `WsServer*` given to `wsSendText`, say) names a generation its slot does not have, and fails
/// with `EBADF` instead of reaching the object of the same index in the other table. 0 marks
/// nothing (the unit tests' tables).
pub(crate) mod kind {
    pub(crate) const EVENT: usize = 1;
    pub(crate) const HTTP_REQUEST: usize = 2;
    pub(crate) const CONNECTION: usize = 3;
    pub(crate) const SERVER: usize = 4;
    pub(crate) const HTTP_SERVER: usize = 5;
}

/// The top bits of a handle that hold its kind.
const KIND_BITS: u32 = 3;

/// `BITS` is the number of index bits of its handles: fewer slots leave more generation bits,
/// so a slot's generation comes round again later (a table whose slots are reused at a high
/// rate, as the per-thread event slots are, wants few slots and a long generation). `KIND`
/// marks its handles (see [`kind`]).
pub struct SlotTable<V, const BITS: u32 = INDEX_BITS, const KIND: usize = 0> {
    chunks: Chunks<Chunk<V>>,
    free: Mutex<FreeList>,
}

impl<V, const BITS: u32, const KIND: usize> SlotTable<V, BITS, KIND> {
    /// Slots at most (index 0 .. MAX_SLOTS-1 encode as 1 .. 2^BITS-1).
    pub(super) const MAX_SLOTS: usize = (1 << BITS) - 1;
    const INDEX_MASK: usize = (1 << BITS) - 1;
    /// What the kind flips in each handle: top bits of the generation, never the index.
    const KIND_MARK: usize = {
        assert!(KIND < 1 << KIND_BITS, "a kind fits in KIND_BITS");
        KIND << (usize::BITS - KIND_BITS)
    };

    pub(super) fn encode(index: usize, generation: u64) -> usize {
        // The generation wraps within the bits left beside the index.
        (((generation as usize) << BITS) | (index + 1)) ^ Self::KIND_MARK
    }

    /// The slot index and generation a handle names, or None for 0.
    pub(super) fn decode(handle: usize) -> Option<(usize, u64)> {
        let handle = handle ^ Self::KIND_MARK;
        let index = (handle & Self::INDEX_MASK).checked_sub(1)?;
        Some((index, (handle >> BITS) as u64))
    }

    pub(super) fn generation_matches(slot: u64, handle: u64) -> bool {
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
            chunks: Chunks::new(Self::MAX_SLOTS),
            free: Mutex::new(FreeList {
                queue: VecDeque::new(),
                used: 0,
            }),
        }
    }

    fn slot(&self, index: usize) -> Option<&SlotLock<V>> {
        Some(&self.chunks.get(index)?[index % CHUNK])
    }

    /// Puts `value` into a free slot and returns its handle; `EMFILE` when the table is full.
    pub fn insert(&self, value: V) -> Result<usize> {
        let index = self.take_free_index()?;
        let slot = self.slot(index).expect("a handed-out slot exists");
        let mut slot = slot.lock_shared();
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
                BiasedLock::new(Slot {
                    generation: 0,
                    value: None,
                })
            }));
            self.chunks.publish(index, chunk);
        }
        free.used += 1;
        Ok(index)
    }

    /// Locks the slot `handle` names, if the handle is current (its generation matches and the
    /// slot holds a value).
    pub fn lock(&self, handle: usize) -> Option<SlotGuard<'_, V>> {
        // SAFETY: no slot is claimed as the caller's own.
        unsafe { self.lock_as(handle, |_| false) }
    }

    /// As [`SlotTable::lock`], as the slot's owner when `is_owner` says the slot is the calling
    /// thread's own.
    ///
    /// # Safety
    /// As [`BiasedLock::lock`]: `is_owner` is true only for a slot the calling thread owns.
    pub unsafe fn lock_as(
        &self,
        handle: usize,
        is_owner: impl FnOnce(&SlotLock<V>) -> bool,
    ) -> Option<SlotGuard<'_, V>> {
        let (index, generation) = Self::decode(handle)?;
        let slot = self.slot(index)?;
        // SAFETY: the caller's contract.
        let slot = unsafe { slot.lock(is_owner(slot)) };
        (Self::generation_matches(slot.generation, generation) && slot.value.is_some())
            .then_some(slot)
    }

    /// Locks the slot `handle` names whatever its generation (as a thread that does not own it).
    pub fn lock_index(&self, handle: usize) -> SlotGuard<'_, V> {
        self.slot_of(handle).lock_shared()
    }

    /// The slot `handle` names, whatever its generation, not locked: for the owner of a slot,
    /// which may keep the reference (slots never move), lock it without a lookup and change its
    /// generation itself.
    pub fn slot_of(&self, handle: usize) -> &SlotLock<V> {
        let (index, _) = Self::decode(handle).expect("a handle the table issued");
        self.slot(index).expect("a handed-out slot exists")
    }

    /// The handle of the slot `handle` names, at `generation`.
    pub fn handle(handle: usize, generation: u64) -> usize {
        let (index, _) = Self::decode(handle).expect("a handle the table issued");
        Self::encode(index, generation)
    }

    /// Empties the locked slot of `handle` for good: its handles go stale, the lock is let go,
    /// then the value is dropped (outside the lock: dropping it may run code that takes locks
    /// of its own, such as a connection's last reference) and the slot is queued for reuse.
    pub fn free(&self, mut slot: SlotGuard<'_, V>, handle: usize) {
        let value = vacate(&mut slot);
        drop(slot);
        drop(value);
        self.recycle(handle);
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
            let mut slot = slot.lock_shared();
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

impl<V, const BITS: u32, const KIND: usize> Default for SlotTable<V, BITS, KIND> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A table past its first leaf of chunk pointers finds every slot, and stale handles of any
    /// leaf fail.
    #[test]
    fn slots_of_every_leaf_are_found() {
        let table: SlotTable<usize> = SlotTable::new();
        let count = CHUNK * LEAF + 3 * CHUNK + 1;
        let handles: Vec<usize> = (0..count).map(|i| table.insert(i).unwrap()).collect();
        for (i, &handle) in handles.iter().enumerate() {
            assert_eq!(table.lock(handle).unwrap().value, Some(i));
        }
        let last = *handles.last().unwrap();
        let mut slot = table.lock(last).unwrap();
        assert_eq!(vacate(&mut slot), Some(count - 1));
        drop(slot);
        table.recycle(last);
        assert!(table.lock(last).is_none(), "stale");
        let beyond = SlotTable::<usize>::encode(count + CHUNK, 0);
        assert!(table.lock(beyond).is_none(), "never handed out");
        assert_eq!(table.occupied(), count - 1);
    }
}
