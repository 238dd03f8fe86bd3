//! Handles to objects shared with the core (`Arc`): servers and connections.
//!
//! Every live connection C has seen has one of these slots, so a slot's size counts per idle
//! connection: 16 bytes — the object's `Weak`, the slot's generation and the references C holds
//! in 32 bits each. The slots have no lock of their own (a lock would round a slot up to 24
//! bytes): a slot is guarded by one of [`STRIPES`] locks, chosen by its index, so lookups of
//! different handles from different threads wait for one another only when their slots share a
//! stripe, and then for a few instructions (an upgrade of a `Weak`). Generations, free-slot
//! reuse and the handle's encoding are those of every handle table (`handle.rs`).

use super::handle::{CHUNK, Chunks, INDEX_BITS, SlotTable};
use crate::error::{Error, Result};
use parking_lot::{Mutex, MutexGuard};
use std::cell::UnsafeCell;
use std::collections::VecDeque;
use std::sync::{Arc, Weak};

/// How many locks guard a table's slots (slot `i` is guarded by lock `i % STRIPES`).
const STRIPES: usize = 64;

/// The encoding of handles (the slot table's, with its index width and the table's kind).
type Codec<const KIND: usize> = SlotTable<(), INDEX_BITS, KIND>;

/// One slot. `object` is None while the slot is free.
struct Entry<T> {
    object: Option<Weak<T>>,
    generation: u32,
    /// The references C holds (`…Retain`, or a handle returned as owned by the caller). While
    /// C holds any, the entry owns one strong reference that stands for all of them, kept as a
    /// count of the object's own (`Arc::into_raw`) rather than a second pointer.
    held_by_c: u32,
}

type Chunk<T> = [UnsafeCell<Entry<T>>; CHUNK];

struct FreeList {
    /// Freed slot indexes, oldest first.
    queue: VecDeque<usize>,
    /// Slots handed out at least once (the next never-used index).
    used: usize,
}

/// A slot, locked: its stripe's lock is held for as long as this lives, and the entry is lent
/// only through it.
struct Locked<'a, T> {
    _stripe: MutexGuard<'a, ()>,
    cell: &'a UnsafeCell<Entry<T>>,
}

impl<T> std::ops::Deref for Locked<'_, T> {
    type Target = Entry<T>;

    fn deref(&self) -> &Entry<T> {
        // SAFETY: the entry's stripe lock is held while `self` lives, and every access to an
        // entry goes through a `Locked` (`HandleTable::lock_index`): nothing else reaches it.
        unsafe { &*self.cell.get() }
    }
}

impl<T> std::ops::DerefMut for Locked<'_, T> {
    fn deref_mut(&mut self) -> &mut Entry<T> {
        // SAFETY: as in `deref`; `&mut self` makes this the only reference lent.
        unsafe { &mut *self.cell.get() }
    }
}

pub struct HandleTable<T, const KIND: usize = 0> {
    what: &'static str,
    chunks: Chunks<Chunk<T>>,
    stripes: [Mutex<()>; STRIPES],
    free: Mutex<FreeList>,
    /// Publishing sweeps the slots of dead objects once the table has grown to this size.
    sweep_at: Mutex<usize>,
}

// SAFETY: an entry is only read or written by a thread that holds its stripe's lock
// (`HandleTable::lock_index` is the only way to one), so the `UnsafeCell`s are never reached
// from two threads at once; what they hold (`Weak<T>`, integers) may move between threads when
// `T` is Send and Sync, as it is for `Arc<T>`.
unsafe impl<T: Send + Sync, const KIND: usize> Sync for HandleTable<T, KIND> {}
// SAFETY: as above: the table owns `Weak<T>`s and integers only.
unsafe impl<T: Send + Sync, const KIND: usize> Send for HandleTable<T, KIND> {}

impl<T, const KIND: usize> HandleTable<T, KIND> {
    pub fn new(what: &'static str) -> Self {
        HandleTable {
            what,
            chunks: Chunks::new(Codec::<KIND>::MAX_SLOTS),
            stripes: std::array::from_fn(|_| Mutex::new(())),
            free: Mutex::new(FreeList {
                queue: VecDeque::new(),
                used: 0,
            }),
            sweep_at: Mutex::new(CHUNK),
        }
    }

    /// Locks the slot at `index`, if it was ever handed out.
    fn lock_index(&self, index: usize) -> Option<Locked<'_, T>> {
        let chunk = self.chunks.get(index)?;
        Some(Locked {
            _stripe: self.stripes[index % STRIPES].lock(),
            cell: &chunk[index % CHUNK],
        })
    }

    /// Locks the slot `handle` names, if the handle is current (its generation matches and the
    /// slot holds an object).
    fn lock(&self, handle: usize) -> Option<Locked<'_, T>> {
        let (index, generation) = Codec::<KIND>::decode(handle)?;
        let slot = self.lock_index(index)?;
        (Codec::<KIND>::generation_matches(u64::from(slot.generation), generation)
            && slot.object.is_some())
        .then_some(slot)
    }

    fn take_free_index(&self) -> Result<usize> {
        let mut free = self.free.lock();
        if let Some(index) = free.queue.pop_front() {
            return Ok(index);
        }
        let index = free.used;
        if index >= Codec::<KIND>::MAX_SLOTS {
            return Err(Error::new(
                libc::EMFILE,
                format!(
                    "too many live handles (at most {})",
                    Codec::<KIND>::MAX_SLOTS
                ),
            ));
        }
        if index.is_multiple_of(CHUNK) {
            let chunk: Box<Chunk<T>> = Box::new(std::array::from_fn(|_| {
                UnsafeCell::new(Entry {
                    object: None,
                    generation: 0,
                    held_by_c: 0,
                })
            }));
            self.chunks.publish(index, chunk);
        }
        free.used += 1;
        Ok(index)
    }

    /// Makes `object` reachable from C and returns its new handle. With `owned_by_caller`, the
    /// caller holds one reference and must release it.
    pub fn publish(&self, object: &Arc<T>, owned_by_caller: bool) -> Result<usize> {
        self.sweep_if_grown();
        let index = self.take_free_index()?;
        let mut slot = self.lock_index(index).expect("a handed-out slot exists");
        slot.object = Some(Arc::downgrade(object));
        if owned_by_caller {
            let _ = Arc::into_raw(object.clone());
            slot.held_by_c = 1;
        }
        Ok(Codec::<KIND>::encode(index, u64::from(slot.generation)))
    }

    /// Empties a locked slot and makes every handle to it stale. Returns what the slot held —
    /// dropped by the caller once the lock is released — and queues the index for reuse.
    fn vacate(&self, index: usize, mut slot: Locked<'_, T>) -> (Option<Weak<T>>, Option<Arc<T>>) {
        let entry = &mut *slot;
        entry.generation = entry.generation.wrapping_add(1);
        let held = std::mem::take(&mut entry.held_by_c) > 0;
        let weak = entry.object.take();
        // The strong reference standing for C's, if C still held it (a handle forgotten after
        // a lost race).
        let strong = weak.as_ref().filter(|_| held).map(|weak| unhold(weak));
        drop(slot);
        self.free.lock().queue.push_back(index);
        (weak, strong)
    }

    /// Frees the slots of objects that are gone and that C no longer holds, once the table has
    /// doubled since the last sweep: the table stays proportional to the live objects, at an
    /// amortised constant cost per handle.
    fn sweep_if_grown(&self) {
        let mut sweep_at = self.sweep_at.lock();
        if self.occupied() >= *sweep_at {
            *sweep_at = (self.sweep() * 2).max(CHUNK);
        }
    }

    /// Slots holding an object.
    fn occupied(&self) -> usize {
        let free = self.free.lock();
        free.used - free.queue.len()
    }

    /// Vacates every slot whose object is gone and not held by C; returns how many are left.
    fn sweep(&self) -> usize {
        let used = self.free.lock().used;
        let mut live = 0;
        for index in 0..used {
            let Some(slot) = self.lock_index(index) else {
                break;
            };
            let Some(object) = &slot.object else {
                continue;
            };
            if slot.held_by_c == 0 && object.strong_count() == 0 {
                drop(self.vacate(index, slot));
            } else {
                live += 1;
            }
        }
        live
    }

    /// The object behind a handle: `EINVAL` for NULL, `EBADF` when stale or foreign.
    pub fn get(&self, handle: usize) -> Result<Arc<T>> {
        if handle == 0 {
            return Err(Error::invalid(format!("{} is NULL", self.what)));
        }
        self.lock(handle)
            .and_then(|slot| slot.object.as_ref().and_then(Weak::upgrade))
            .ok_or_else(|| self.stale())
    }

    pub fn retain(&self, handle: usize) -> Result<()> {
        if handle == 0 {
            return Err(Error::invalid(format!("{} is NULL", self.what)));
        }
        let mut slot = self.lock(handle).ok_or_else(|| self.stale())?;
        let entry = &mut *slot;
        let weak = entry.object.as_ref().expect("locked slots hold an object");
        let object = weak.upgrade().ok_or_else(|| self.stale())?;
        let Some(held) = entry.held_by_c.checked_add(1) else {
            return Err(Error::new(
                libc::EOVERFLOW,
                format!("{} was retained too often", self.what),
            ));
        };
        if entry.held_by_c == 0 {
            let _ = Arc::into_raw(object);
        } else {
            // Dropped under the slot's lock: C holds another reference, so this is not the last.
            drop(object);
        }
        entry.held_by_c = held;
        Ok(())
    }

    /// Drops one reference C holds. Returns the object (dropped by the caller, outside any
    /// lock of ours: dropping it may run application code) and how many references C still
    /// holds. NULL is a no-op (`Ok(None)`), as `free(NULL)` is.
    pub fn release(&self, handle: usize) -> Result<Option<(Arc<T>, usize)>> {
        if handle == 0 {
            return Ok(None);
        }
        let mut slot = self.lock(handle).ok_or_else(|| self.stale())?;
        let entry = &mut *slot;
        if entry.held_by_c == 0 {
            return Err(Error::new(
                libc::EBADF,
                format!("{} was released more often than it was retained", self.what),
            ));
        }
        entry.held_by_c -= 1;
        let still_held = entry.held_by_c as usize;
        let weak = entry.object.as_ref().expect("locked slots hold an object");
        let object = if still_held == 0 {
            unhold(weak)
        } else {
            weak.upgrade().expect("held by C, so alive")
        };
        Ok(Some((object, still_held)))
    }

    /// Frees a handle nobody has seen yet (one published in a race that another thread won).
    pub fn forget(&self, handle: usize) {
        let Some(slot) = self.lock(handle) else {
            return;
        };
        let (index, _) = Codec::<KIND>::decode(handle).expect("a current handle");
        drop(self.vacate(index, slot));
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

/// Gives back the strong reference standing for C's (C's count has just reached 0, or the
/// slot that held it is vacated).
fn unhold<T>(weak: &Weak<T>) -> Arc<T> {
    // SAFETY: the slot kept one strong count of this very allocation (`Weak::as_ptr` is the
    // pointer `Arc::into_raw` returned) while C held it, and it is given back once: the caller
    // has set C's count to 0 under the slot's lock.
    unsafe { Arc::from_raw(weak.as_ptr()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reused_slot_does_not_answer_to_its_old_handle() {
        let table: HandleTable<_> = HandleTable::new("thing");
        let first = Arc::new(1);
        let old = table.publish(&first, true).unwrap();
        let (object, held) = table.release(old).unwrap().unwrap();
        assert_eq!(held, 0);
        drop((object, first));
        // The slot comes back with a new generation.
        assert_eq!(table.sweep(), 0);
        let second = Arc::new(2);
        let new = table.publish(&second, true).unwrap();
        assert_ne!(old, new);
        let index = |h| Codec::<0>::decode(h).unwrap().0;
        assert_eq!(index(old), index(new), "same slot");
        assert_eq!(table.get(old).unwrap_err().errno, libc::EBADF);
        assert_eq!(*table.get(new).unwrap(), 2);
    }

    #[test]
    fn the_table_stays_as_small_as_what_is_live() {
        let table: HandleTable<_> = HandleTable::new("thing");
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
        let used = table.free.lock().used;
        assert!(used <= 4 * CHUNK, "{used} slots for 10 live objects");
        assert!(keep.iter().all(|k| Arc::strong_count(k) == 1));
    }

    /// Every live connection C has seen has a slot: its size counts per idle connection.
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn a_slot_takes_16_bytes() {
        assert_eq!(std::mem::size_of::<UnsafeCell<Entry<usize>>>(), 16);
    }

    /// Slots sharing a stripe are found apart, each with its own object.
    #[test]
    fn slots_of_one_stripe_answer_each_for_itself() {
        let table: HandleTable<_> = HandleTable::new("thing");
        let objects: Vec<Arc<usize>> = (0..3 * STRIPES).map(Arc::new).collect();
        let handles: Vec<usize> = objects
            .iter()
            .map(|o| table.publish(o, true).unwrap())
            .collect();
        for (i, &handle) in handles.iter().enumerate() {
            assert_eq!(*table.get(handle).unwrap(), i);
        }
        for &handle in &handles {
            drop(table.release(handle).unwrap());
        }
        assert!(objects.iter().all(|o| Arc::strong_count(o) == 1));
    }

    /// The strong reference standing for C's goes back whichever way the entry ends.
    #[test]
    fn references_held_for_c_are_given_back() {
        let table: HandleTable<_> = HandleTable::new("thing");
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
        assert_eq!(table.get(lost).unwrap_err().errno, libc::EBADF);
    }

    #[test]
    fn foreign_double_released_and_null_handles() {
        let table: HandleTable<_> = HandleTable::new("thing");
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
