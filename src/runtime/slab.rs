//! Where a loop keeps its tasks, and the ids that name them.
//!
//! A task id is a slot of its loop's slab, the loop's index and that slot's generation, in one
//! `u64`. The loop finds a task by indexing its slab — no hashing —, and the slot alone is the
//! task's poll token. Commands from other threads name tasks by id, possibly after the task
//! has gone: a slot's generation changes each time the slot is freed, so a stale id finds
//! nothing rather than the task that took its slot since (the loop compares the id the task
//! reports, [`Task::id`], with the one asked for). A slot whose generation has run out is never
//! handed out again, so an id is never reused within a runtime.
//!
//! Ids are handed out by the loop's [`Ids`] to whoever makes a task — often on another thread,
//! before the task reaches its loop (an accepted connection, a client open) — and taken back by
//! the loop when the task is gone. A reserved slot stays empty until its task is adopted.
//!
//! The slab itself belongs to the loop's thread: chunks of [`CHUNK`] slots, each slot one
//! `Box<dyn Task>` (16 bytes, empty while free or reserved). Chunks never move and growing the
//! slab frees nothing, so memory given to the slab once stays the slab's, and no growth copies
//! the tasks.
//!
//! [`Task::id`]: super::Task::id

use parking_lot::Mutex;

/// The slot's bits, lowest in an id: the slab's index (and, alone, the poll token).
const SLOT_BITS: u32 = 32;
/// The loop's index, above the slot: ids of different loops never meet, in maps kept across
/// loops (an HTTP server's live connections).
const LOOP_BITS: u32 = 8;
const GENERATION_SHIFT: u32 = SLOT_BITS + LOOP_BITS;
/// A slot is handed out this many times plus one at most, then retired.
const LAST_GENERATION: u64 = (1 << (64 - GENERATION_SHIFT)) - 1;

/// Loops a runtime may have (their index fits the id).
pub const MAX_LOOPS: usize = 1 << LOOP_BITS;

/// Slots per chunk: 256 slots of 16 bytes, one 4 KiB block.
pub const CHUNK: usize = 256;

/// The slot an id names.
pub fn slot_of(id: u64) -> usize {
    (id & ((1 << SLOT_BITS) - 1)) as usize
}

fn loop_of(id: u64) -> usize {
    ((id >> SLOT_BITS) & ((1 << LOOP_BITS) - 1)) as usize
}

fn generation_of(id: u64) -> u64 {
    id >> GENERATION_SHIFT
}

fn encode(generation: u64, loop_index: usize, slot: usize) -> u64 {
    (generation << GENERATION_SHIFT) | ((loop_index as u64) << SLOT_BITS) | slot as u64
}

/// The ids of one loop: handed out from any thread, taken back by the loop.
pub struct Ids {
    loop_index: usize,
    state: Mutex<IdState>,
}

struct IdState {
    /// The next id of each freed slot, the last freed first (its chunk is the likeliest to be
    /// in the cache).
    free: Vec<u64>,
    /// Slots handed out at least once: the next never-used slot.
    used: usize,
}

impl Ids {
    pub fn new(loop_index: usize) -> Ids {
        assert!(loop_index < MAX_LOOPS, "at most {MAX_LOOPS} event loops");
        Ids {
            loop_index,
            state: Mutex::new(IdState {
                free: Vec::new(),
                used: 0,
            }),
        }
    }

    /// An id for a task this loop will adopt. Its slot stays reserved (empty, and handed to no
    /// one else) until the task is adopted and then gone.
    pub fn reserve(&self) -> u64 {
        let mut state = self.state.lock();
        if let Some(id) = state.free.pop() {
            return id;
        }
        let slot = state.used;
        // Unreachable in practice (each slot holds a task of a few hundred bytes), but a slot
        // number must never reach the waker's token (`usize::MAX` on 32-bit targets).
        assert!(
            (slot as u64) < (1u64 << SLOT_BITS) - 1,
            "event loop {}: out of task slots",
            self.loop_index
        );
        state.used += 1;
        encode(0, self.loop_index, slot)
    }

    /// The task `id` is gone: its slot may be handed out again, under the next generation.
    pub fn release(&self, id: u64) {
        debug_assert_eq!(loop_of(id), self.loop_index, "an id of another loop");
        let generation = generation_of(id);
        if generation == LAST_GENERATION {
            // Retired: a stale id of this slot's first generation must never find a task.
            return;
        }
        let next = encode(generation + 1, self.loop_index, slot_of(id));
        self.state.lock().free.push(next);
    }
}

type Chunk<T> = [Option<T>; CHUNK];

/// Slots in chunks that never move.
pub struct Slab<T> {
    chunks: Vec<Box<Chunk<T>>>,
}

impl<T> Slab<T> {
    pub fn new() -> Slab<T> {
        Slab { chunks: Vec::new() }
    }

    pub fn get_mut(&mut self, slot: usize) -> Option<&mut T> {
        self.chunks.get_mut(slot / CHUNK)?[slot % CHUNK].as_mut()
    }

    /// Puts `value` in `slot` (growing the slab to reach it), or gives it back when the slot
    /// is taken.
    pub fn insert(&mut self, slot: usize, value: T) -> Result<(), T> {
        while self.chunks.len() <= slot / CHUNK {
            self.chunks.push(Box::new(std::array::from_fn(|_| None)));
        }
        let place = &mut self.chunks[slot / CHUNK][slot % CHUNK];
        if place.is_some() {
            return Err(value);
        }
        *place = Some(value);
        Ok(())
    }

    pub fn take(&mut self, slot: usize) -> Option<T> {
        self.chunks.get_mut(slot / CHUNK)?[slot % CHUNK].take()
    }

    /// The slots that hold something, in order.
    pub fn slots(&self) -> Vec<usize> {
        self.chunks
            .iter()
            .flat_map(|chunk| chunk.iter())
            .enumerate()
            .filter_map(|(slot, value)| value.as_ref().map(|_| slot))
            .collect()
    }

    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut T> {
        self.chunks
            .iter_mut()
            .flat_map(|chunk| chunk.iter_mut())
            .filter_map(Option::as_mut)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_names_its_slot_loop_and_generation() {
        let id = encode(5, 3, 70_000);
        assert_eq!(
            (slot_of(id), loop_of(id), generation_of(id)),
            (70_000, 3, 5)
        );
        let last = encode(
            LAST_GENERATION,
            MAX_LOOPS - 1,
            ((1u64 << SLOT_BITS) - 2) as usize,
        );
        assert_eq!(generation_of(last), LAST_GENERATION);
        assert_eq!(loop_of(last), MAX_LOOPS - 1);
        assert_eq!(slot_of(last) as u64, (1u64 << SLOT_BITS) - 2);
    }

    #[test]
    fn a_freed_slot_comes_back_under_a_new_id() {
        let ids = Ids::new(2);
        let first = ids.reserve();
        let second = ids.reserve();
        assert_eq!((slot_of(first), slot_of(second)), (0, 1));
        assert_eq!((loop_of(first), loop_of(second)), (2, 2));
        ids.release(first);
        let again = ids.reserve();
        assert_eq!(slot_of(again), 0, "the freed slot is reused");
        assert_ne!(again, first, "under another id");
        assert_eq!(slot_of(ids.reserve()), 2, "a new slot once none is free");
    }

    #[test]
    fn a_slot_whose_generation_ran_out_is_retired() {
        let ids = Ids::new(0);
        let _ = ids.reserve();
        ids.release(encode(LAST_GENERATION - 1, 0, 0));
        let last = ids.reserve();
        assert_eq!(last, encode(LAST_GENERATION, 0, 0));
        ids.release(last);
        assert_eq!(slot_of(ids.reserve()), 1, "slot 0 is not handed out again");
    }

    #[test]
    fn chunks_do_not_move_as_the_slab_grows() {
        let mut slab = Slab::new();
        slab.insert(0, 7u64).unwrap();
        let first: *const u64 = slab.get_mut(0).unwrap();
        for slot in 1..CHUNK * 40 {
            slab.insert(slot, slot as u64).unwrap();
        }
        let after: *const u64 = slab.get_mut(0).unwrap();
        assert_eq!(first, after, "slot 0 stayed where it was");
        assert_eq!(slab.slots().len(), CHUNK * 40);
        assert_eq!(
            slab.insert(5, 0),
            Err(0),
            "a taken slot refuses a second value"
        );
        assert_eq!(slab.take(5), Some(5));
        assert_eq!(slab.get_mut(5), None);
        assert_eq!(slab.get_mut(CHUNK * 1000), None, "beyond the slab: nothing");
        assert_eq!(slab.values_mut().count(), CHUNK * 40 - 1);
    }

    #[test]
    fn a_slot_far_ahead_grows_the_slab_to_it() {
        let mut slab = Slab::new();
        slab.insert(CHUNK * 3 + 1, "x").unwrap();
        assert_eq!(slab.slots(), vec![CHUNK * 3 + 1]);
        assert_eq!(slab.get_mut(CHUNK * 3 + 1), Some(&mut "x"));
    }
}
