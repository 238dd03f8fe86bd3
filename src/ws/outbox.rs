//! A connection's send buffer in one word: a pointer to a `Vec<u8>`'s heap block whose first
//! bytes hold the buffer's own capacity, length and written count ([`Head`]), then the bytes
//! that wait. A `Vec<u8>` and its written count take four words in every connection, though an
//! idle connection's buffer is empty; this takes one (null while nothing is allocated).
//!
//! The block stays a `Vec<u8>` allocation, so a drained buffer passes to and from the spare
//! buffers (the thread's and the event loop's, kept as `Vec<u8>`) without being copied or
//! reallocated: [`Outbox::from_vec`] and [`Outbox::take_vec`] only write or read the header.

use crate::protocol::frame::{EncodedHeader, HEADER_PADDED};
use std::mem::ManuallyDrop;
use std::ptr::{self, NonNull};

/// What the block's first bytes hold. The block is a `Vec<u8>` allocation (alignment 1), so the
/// header is read and written unaligned.
#[derive(Clone, Copy)]
struct Head {
    /// The block's size in bytes (the `Vec`'s capacity), header included.
    cap: usize,
    /// Bytes queued after the header.
    len: usize,
    /// Of those, bytes written already.
    sent: usize,
}

const HEAD: usize = size_of::<Head>();

/// Bytes queued for a socket: the part [`Outbox::pending`] not yet written, after `sent` bytes
/// that were. A block always has room for a byte after its header: an outbox is allocated
/// exactly when its [`Outbox::capacity`] is not 0.
pub(super) struct Outbox(Option<NonNull<u8>>);

// SAFETY: an `Outbox` owns its block alone, as a `Vec<u8>` owns its buffer; moving it to
// another thread moves that ownership along (nothing else points into the block).
unsafe impl Send for Outbox {}

impl Outbox {
    /// No block (nothing allocated).
    pub(super) const fn new() -> Outbox {
        Outbox(None)
    }

    fn head(&self) -> Option<Head> {
        // SAFETY: a block starts with its header, written by `set_head` (see `Head`: unaligned).
        self.0
            .map(|block| unsafe { block.as_ptr().cast::<Head>().read_unaligned() })
    }

    /// Writes the header of the block, which must exist.
    fn set_head(&mut self, head: Head) {
        let block = self.0.expect("a block to write the header of");
        debug_assert!(head.sent <= head.len && HEAD + head.len <= head.cap);
        // SAFETY: the block holds at least `HEAD` bytes (`from_vec` and `grow` make sure).
        unsafe { block.as_ptr().cast::<Head>().write_unaligned(head) }
    }

    /// Forgets what the block holds (written or not) and keeps the block, if any.
    pub(super) fn clear(&mut self) {
        if let Some(head) = self.head() {
            self.set_head(Head {
                len: 0,
                sent: 0,
                ..head
            });
        }
    }

    /// Whether a block is allocated (an idle connection's outbox has none).
    #[inline]
    pub(super) fn is_allocated(&self) -> bool {
        self.0.is_some()
    }

    /// The bytes that fit before the block has to grow (0 without a block).
    pub(super) fn capacity(&self) -> usize {
        self.head().map_or(0, |head| head.cap - HEAD)
    }

    /// Bytes queued (written ones included, until [`Outbox::clear`] or until making room lets
    /// them go: [`Outbox::grow`]).
    #[inline]
    pub(super) fn len(&self) -> usize {
        self.head().map_or(0, |head| head.len)
    }

    /// Bytes queued and not yet written.
    #[inline]
    pub(super) fn queued(&self) -> usize {
        self.head().map_or(0, |head| head.len - head.sent)
    }

    /// True when some bytes were written and others still wait (a short write).
    #[inline]
    pub(super) fn partly_written(&self) -> bool {
        self.head().is_some_and(|head| head.sent > 0)
    }

    /// The bytes not yet written.
    #[inline]
    pub(super) fn pending(&self) -> &[u8] {
        match (self.0, self.head()) {
            // SAFETY: the block holds `HEAD + len` initialised bytes (`push` copied them in).
            (Some(block), Some(head)) => unsafe {
                std::slice::from_raw_parts(
                    block.as_ptr().add(HEAD + head.sent),
                    head.len - head.sent,
                )
            },
            _ => &[],
        }
    }

    /// Queued bytes from `start` on, to change in place (a client frame's payload to mask).
    pub(super) fn tail_mut(&mut self, start: usize) -> &mut [u8] {
        match (self.0, self.head()) {
            (Some(block), Some(head)) => {
                assert!(start <= head.len, "the tail starts inside the queued bytes");
                // SAFETY: as in `pending`; `&mut self` makes this the only view of the block.
                unsafe {
                    std::slice::from_raw_parts_mut(
                        block.as_ptr().add(HEAD + start),
                        head.len - start,
                    )
                }
            }
            _ => &mut [],
        }
    }

    /// `count` more bytes were written.
    #[inline]
    pub(super) fn consume(&mut self, count: usize) {
        if let Some(mut head) = self.head() {
            assert!(count <= head.len - head.sent, "more written than queued");
            head.sent += count;
            self.set_head(head);
        }
    }

    /// Appends `first`, then `second` (a frame's header and payload: one capacity check for
    /// both). Grows the block, or allocates one, when they do not fit.
    #[inline]
    pub(super) fn push(&mut self, first: &[u8], second: &[u8]) {
        if !self.try_push(first, second) {
            self.grow(first.len() + second.len());
            let pushed = self.try_push(first, second);
            debug_assert!(pushed, "grown to fit");
        }
    }

    /// As [`Outbox::push`] when a block exists and has room (the usual case: the thread's or
    /// the loop's spare); false, and nothing changes, otherwise.
    #[inline(always)]
    pub(super) fn try_push(&mut self, first: &[u8], second: &[u8]) -> bool {
        let Some(block) = self.0 else {
            return false;
        };
        let base = block.as_ptr();
        // SAFETY: `base` is this outbox's block.
        let (cap, len) = unsafe { capacity_and_length(base) };
        let added = first.len() + second.len();
        if cap - HEAD - len < added {
            return false;
        }
        // SAFETY: the block has room for `added` more bytes after the `HEAD + len` it holds
        // (checked above); the sources are the caller's, not in the block (`&mut self` excludes
        // that). Only the length changes in the header.
        unsafe {
            let end = base.add(HEAD + len);
            ptr::copy_nonoverlapping(first.as_ptr(), end, first.len());
            ptr::copy_nonoverlapping(second.as_ptr(), end.add(first.len()), second.len());
            (&raw mut (*base.cast::<Head>()).len).write_unaligned(len + added);
        }
        true
    }

    /// As [`Outbox::try_push`] for a frame with an encoded header: its padded bytes are
    /// written at once (one 16-byte store, where a copy of `header.size()` bytes is a call),
    /// so the block needs room for all `HEADER_PADDED` of them.
    #[inline(always)]
    pub(super) fn try_push_frame(&mut self, header: EncodedHeader, payload: &[u8]) -> bool {
        let Some(block) = self.0 else {
            return false;
        };
        let base = block.as_ptr();
        // SAFETY: `base` is this outbox's block.
        let (cap, len) = unsafe { capacity_and_length(base) };
        let room = cap - HEAD - len;
        if room < HEADER_PADDED + payload.len() {
            // (A block grown to fit such frames exactly: the bytes are copied as they are.)
            return self.try_push(&header.padded()[..header.size()], payload);
        }
        // SAFETY: the block has room for `HEADER_PADDED + payload.len()` more bytes (checked
        // above, and a header's size is at most `MAX_HEADER`, below `HEADER_PADDED`); the
        // payload is the caller's and cannot overlap the block, which this outbox owns alone.
        // The padding past the header's size lands where the payload then goes, or past the
        // new length.
        unsafe {
            let end = base.add(HEAD + len);
            ptr::write_unaligned(end.cast::<[u8; HEADER_PADDED]>(), header.padded());
            ptr::copy_nonoverlapping(payload.as_ptr(), end.add(header.size()), payload.len());
            let added = header.size() + payload.len();
            (&raw mut (*base.cast::<Head>()).len).write_unaligned(len + added);
        }
        true
    }

    /// Makes room for `additional` more bytes. When at least half of what the block holds was
    /// written and moving the bytes that wait to its front makes the room, they move; else a
    /// larger block takes only the bytes that wait (twice as many as it keeps, at least, for
    /// amortised growth). Without either, a buffer that never drains completely (a peer that
    /// reads steadily, a little slower than the application sends) kept every byte ever written
    /// and grew with them; now the block stays within a few times what waits, and each byte
    /// moved in place was paid for by a byte written.
    #[cold]
    #[inline(never)]
    fn grow(&mut self, additional: usize) {
        let Some(head) = self.head() else {
            // (One allocation: room for the header and what is added.)
            let mut vec = ManuallyDrop::new(vec![0; HEAD]);
            vec.reserve_exact(additional.max(1));
            self.adopt(&mut vec, 0);
            return;
        };
        let waiting = head.len - head.sent;
        let room_after_move = head.cap - HEAD - waiting;
        if head.sent > 0 && head.sent >= head.len / 2 && room_after_move >= additional {
            let block = self.0.expect("a block with a header");
            // SAFETY: the block holds `HEAD + len` initialised bytes; `ptr::copy` allows the
            // source (the unwritten bytes) and the destination (after the header) to overlap.
            unsafe {
                let base = block.as_ptr().add(HEAD);
                ptr::copy(base.add(head.sent), base, waiting);
            }
            self.set_head(Head {
                len: waiting,
                sent: 0,
                ..head
            });
            return;
        }
        let needed = HEAD + waiting + additional.max(1);
        let mut vec = ManuallyDrop::new(Vec::with_capacity(needed.max(2 * (HEAD + waiting))));
        vec.resize(HEAD, 0);
        vec.extend_from_slice(self.pending());
        drop(self.as_vec(head.len));
        self.adopt(&mut vec, waiting);
    }

    /// Makes `vec` (the header's room, then `len` bytes that wait) this outbox's block.
    fn adopt(&mut self, vec: &mut ManuallyDrop<Vec<u8>>, len: usize) {
        self.0 = NonNull::new(vec.as_mut_ptr());
        self.set_head(Head {
            cap: vec.capacity(),
            len,
            sent: 0,
        });
    }

    /// The block as the `Vec` it was allocated as, holding the header and `len` bytes; this
    /// outbox lets go of it.
    fn as_vec(&mut self, len: usize) -> Vec<u8> {
        let cap = self.capacity() + HEAD;
        let block = self.0.take().expect("a block");
        // SAFETY: the block was allocated by a `Vec<u8>` of capacity `cap` (`from_vec`, `grow`)
        // and its first `HEAD + len` bytes are initialised; `take` leaves no other owner.
        unsafe { Vec::from_raw_parts(block.as_ptr(), HEAD + len, cap) }
    }

    /// Whether [`Outbox::from_vec`] makes a block of `vec`: it holds the header and a byte.
    #[inline]
    pub(super) fn fits_in(vec: &Vec<u8>) -> bool {
        vec.capacity() > HEAD
    }

    /// An empty outbox in `vec`'s allocation (none when `vec` is too small to hold the header
    /// and a byte: it is dropped).
    #[inline]
    pub(super) fn from_vec(vec: Vec<u8>) -> Outbox {
        if !Outbox::fits_in(&vec) {
            return Outbox::new();
        }
        let mut vec = ManuallyDrop::new(vec);
        let mut outbox = Outbox(NonNull::new(vec.as_mut_ptr()));
        outbox.set_head(Head {
            cap: vec.capacity(),
            len: 0,
            sent: 0,
        });
        outbox
    }

    /// The block as an empty `Vec` of its size (empty and unallocated without one); the outbox
    /// is left without a block.
    #[inline]
    pub(super) fn take_vec(&mut self) -> Vec<u8> {
        match self.0.take() {
            None => Vec::new(),
            // SAFETY: the block was allocated by a `Vec<u8>` of capacity `cap` (`from_vec`,
            // `grow`), which its header holds; `take` leaves no other owner.
            Some(block) => unsafe {
                let cap = (&raw const (*block.as_ptr().cast::<Head>()).cap).read_unaligned();
                Vec::from_raw_parts(block.as_ptr(), 0, cap)
            },
        }
    }
}

/// A block's capacity and length, read without the rest of its header (the short paths need
/// only these two).
///
/// # Safety
/// `base` points to a live outbox block, which starts with its `Head`.
#[inline(always)]
unsafe fn capacity_and_length(base: *const u8) -> (usize, usize) {
    let head = base.cast::<Head>();
    // SAFETY: the caller's block starts with its header (see `Head`: read unaligned).
    unsafe {
        (
            (&raw const (*head).cap).read_unaligned(),
            (&raw const (*head).len).read_unaligned(),
        )
    }
}

impl Default for Outbox {
    fn default() -> Outbox {
        Outbox::new()
    }
}

impl Drop for Outbox {
    fn drop(&mut self) {
        drop(self.take_vec());
    }
}

#[cfg(test)]
mod tests {
    use super::{EncodedHeader, Outbox};
    use crate::protocol::frame::Opcode;

    #[test]
    fn bytes_queue_grow_and_are_written_in_parts() {
        let mut outbox = Outbox::new();
        assert!(!outbox.is_allocated());
        assert_eq!(
            (outbox.len(), outbox.queued(), outbox.pending()),
            (0, 0, &[][..])
        );
        outbox.push(b"ab", b"cd");
        assert!(outbox.is_allocated());
        assert_eq!(outbox.pending(), b"abcd");
        let big = vec![7u8; 5000];
        outbox.push(&big, b"");
        assert!(outbox.capacity() >= 5004);
        assert_eq!(outbox.len(), 5004);
        outbox.consume(3);
        assert!(outbox.partly_written());
        assert_eq!(outbox.queued(), 5001);
        assert_eq!(&outbox.pending()[..2], b"d\x07");
        // Full: a larger block takes what waits, not what was written.
        let capacity = outbox.capacity();
        outbox.push(&vec![8u8; capacity - 5004 + 1], b"z");
        assert!(outbox.capacity() > capacity);
        assert_eq!(&outbox.pending()[..2], b"d\x07");
        assert_eq!(outbox.pending().last(), Some(&b'z'));
        let waiting = 5001 + capacity - 5004 + 2;
        assert_eq!((outbox.len(), outbox.queued()), (waiting, waiting));
        assert!(!outbox.partly_written());
        outbox.consume(waiting);
        assert_eq!(
            (outbox.len(), outbox.queued(), outbox.pending()),
            (waiting, 0, &[][..])
        );
    }

    /// A buffer whose peer always leaves a little unwritten: what was written makes room for
    /// what comes next, once it is half of what the block holds, so the block stays the size
    /// of what waits; the bytes come out whole and in order.
    #[test]
    fn a_buffer_that_never_drains_keeps_its_size() {
        let mut outbox = Outbox::new();
        let mut expected = std::collections::VecDeque::new();
        let mut capacity_after_warmup = 0;
        for round in 0..10_000u32 {
            let bytes = round.to_le_bytes().repeat(100);
            outbox.push(&bytes, b"");
            expected.extend(bytes.iter().copied());
            // The peer takes all but about 1000 bytes.
            let taken = outbox
                .queued()
                .saturating_sub(1000)
                .min(outbox.queued() - 1);
            outbox.consume(taken);
            expected.drain(..taken);
            assert!(outbox.pending().iter().eq(expected.iter()), "round {round}");
            if round == 100 {
                capacity_after_warmup = outbox.capacity();
            }
        }
        assert!(outbox.partly_written());
        assert_eq!(
            outbox.capacity(),
            capacity_after_warmup,
            "the block grew with what was written"
        );
        // Less than half written: the block grows instead of moving most of what waits.
        let mut outbox = Outbox::new();
        outbox.push(&[1; 1000], b"");
        outbox.consume(10);
        let capacity = outbox.capacity();
        outbox.push(&vec![2; capacity], b"");
        assert!(outbox.capacity() > capacity);
        assert_eq!(outbox.queued(), 990 + capacity);
        assert_eq!(outbox.pending()[989..991], [1, 2]);
    }

    #[test]
    fn a_spare_vec_becomes_the_block_and_goes_back_whole() {
        let spare = Vec::with_capacity(4096);
        let address = spare.as_ptr();
        let mut outbox = Outbox::from_vec(spare);
        assert!(outbox.capacity() > 0 && outbox.capacity() < 4096);
        outbox.push(b"hello", b" world");
        let tail = outbox.tail_mut(6);
        tail.make_ascii_uppercase();
        assert_eq!(outbox.pending(), b"hello WORLD");
        let back = outbox.take_vec();
        assert_eq!(
            (back.as_ptr(), back.capacity(), back.len()),
            (address, 4096, 0)
        );
        assert!(!outbox.is_allocated());
        assert!(!Outbox::from_vec(Vec::new()).is_allocated());
        let mut tiny = Outbox::from_vec(Vec::with_capacity(1));
        assert_eq!(tiny.capacity(), 0, "too small to adopt");
        tiny.push(b"x", b"");
        assert_eq!(tiny.pending(), b"x");
        let mut empty = Outbox::new();
        empty.push(b"", b"");
        assert!(empty.capacity() > 0, "a block has room for a byte");
    }

    /// A frame pushed with its encoded header (written padded) queues exactly the header's
    /// bytes and its payload, with room to spare or without (then the bytes are copied as they
    /// are), and is refused where it does not fit.
    #[test]
    fn a_frame_with_an_encoded_header_queues_only_its_bytes() {
        let header = EncodedHeader::new(Opcode::Text, true, 3, None);
        let mut outbox = Outbox::new();
        assert!(!outbox.try_push_frame(header, b"abc"), "no block yet");
        let mut outbox = Outbox::from_vec(Vec::with_capacity(256));
        let room = outbox.capacity();
        assert!(outbox.try_push_frame(header, b"abc"));
        assert!(outbox.try_push_frame(header, b"xyz"));
        assert_eq!(outbox.pending(), b"\x81\x03abc\x81\x03xyz");
        // Exactly the room the frame needs, less than the padded write would.
        let fill = vec![b'.'; room - outbox.len() - 5];
        outbox.push(&fill, b"");
        assert!(outbox.try_push_frame(header, b"end"));
        assert!(outbox.pending().ends_with(b".\x81\x03end"));
        assert_eq!(outbox.len(), room);
        assert!(!outbox.try_push_frame(header, b""), "full");
    }

    /// Headers of every size (2, 4, 10 and, masked, 14 bytes) queue exactly their bytes with 0
    /// to 3 bytes of room to spare: for the 14-byte header that is 2 bytes short of the padded
    /// write, 1 short, exactly enough and 1 more; the smaller ones always take the copy.
    #[test]
    fn encoded_headers_of_every_size_at_the_room_boundary() {
        let mask = Some([1, 2, 3, 4]);
        for (len, mask) in [(3, None), (200, None), (70_000, None), (70_000, mask)] {
            let header = EncodedHeader::new(Opcode::Binary, true, len, mask);
            let bytes = &header.padded()[..header.size()];
            for spare in [0, 1, 2, 3] {
                let mut outbox = Outbox::from_vec(Vec::with_capacity(256));
                let room = outbox.capacity();
                let payload = b"xyz";
                // Leave exactly `header.size() + payload.len() + spare` bytes of room.
                let fill = vec![b'.'; room - outbox.len() - header.size() - payload.len() - spare];
                outbox.push(&fill, b"");
                assert!(
                    outbox.try_push_frame(header, payload),
                    "{len} spare {spare}"
                );
                let mut expected = fill.clone();
                expected.extend_from_slice(bytes);
                expected.extend_from_slice(payload);
                assert_eq!(outbox.pending(), &expected[..], "{len} spare {spare}");
            }
        }
    }
}
