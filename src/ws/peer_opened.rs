//! A connection's peer address and the text its opening handshake settled (subprotocol and
//! request target, see `Connection::set_opened`), in one word. Each is set once and read from
//! any thread. A word of each would make every connection 8 bytes larger, and with it the
//! `Arc<Connection>` a malloc step larger; most connections — an IPv4 peer, no subprotocol,
//! target `/` (an empty text) — fit both in the word itself.
//!
//! The word, by its low bits (blocks are aligned to 8, so a pointer's three low bits are clear):
//! - 0: neither is known yet.
//! - `…1`: an IPv4 peer in the word (`peer::ipv4_word`); bit 1 set once the text is set, empty.
//! - `…010`: a [`Fixed`] block: an IPv4 peer and a text that is not empty, both final (the
//!   block is what a text alone would take, plus the address's word).
//! - `…000`: a `Box<Record>`: a [`PeerAddress`] and a [`OnceText`], each set once on its own
//!   (any other address, or a text set before the peer).
//!
//! A block, once published, is neither changed nor freed until the value is dropped, so a
//! reader never sees one go.

use super::once_text::OnceText;
use super::peer::{PeerAddress, from_ipv4_word, ipv4_word};
use std::alloc::{Layout, alloc, dealloc};
use std::net::SocketAddr;
use std::ptr;
use std::sync::atomic::{AtomicU64, Ordering};

const INLINE: u64 = 1;
const OPENED_EMPTY: u64 = 2;
const TAG: u64 = 7;
const FIXED: u64 = 2;

pub(super) struct PeerAndOpened(AtomicU64);

/// Any other case: each part set once on its own.
struct Record {
    peer: PeerAddress,
    opened: OnceText,
}

/// An IPv4 peer's word, the text's length, then its bytes, in one block.
struct Fixed;

const FIXED_HEAD: usize = 2 * size_of::<u64>();

impl Fixed {
    fn layout(len: usize) -> Layout {
        // 8, not `align_of::<u64>()` (4 on some 32-bit targets): the word's three tag bits
        // need the block's address to be a multiple of 8.
        Layout::from_size_align(FIXED_HEAD + len, 8).expect("a text that fits memory")
    }

    /// A block for `peer` (an IPv4 word) and `text`, as a tagged word.
    fn make(peer: u64, text: &str) -> u64 {
        let layout = Fixed::layout(text.len());
        // SAFETY: the layout is never zero-sized (it has the head).
        let block = unsafe { alloc(layout) }.cast::<u64>();
        if block.is_null() {
            std::alloc::handle_alloc_error(layout);
        }
        debug_assert_eq!(block as usize & TAG as usize, 0, "a block aligned to 8");
        // SAFETY: the block holds two u64 (aligned to 8), then `text.len()` bytes.
        unsafe {
            block.write(peer);
            block.add(1).write(text.len() as u64);
            ptr::copy_nonoverlapping(
                text.as_ptr(),
                block.cast::<u8>().add(FIXED_HEAD),
                text.len(),
            );
        }
        block as usize as u64 | FIXED
    }

    fn block(word: u64) -> *mut u64 {
        (word & !TAG) as usize as *mut u64
    }

    /// # Safety
    /// `word` is a tagged word [`Fixed::make`] returned and not yet freed; the text lives as
    /// long as the block.
    unsafe fn parts<'a>(word: u64) -> (u64, &'a str) {
        let block = Fixed::block(word);
        // SAFETY: as the caller promises: the block holds what `make` wrote, bytes of a `&str`.
        unsafe {
            let len = block.add(1).read() as usize;
            let bytes = std::slice::from_raw_parts(block.cast::<u8>().add(FIXED_HEAD), len);
            (block.read(), std::str::from_utf8_unchecked(bytes))
        }
    }

    /// # Safety
    /// As for [`Fixed::parts`]; nothing reads the block afterwards.
    unsafe fn free(word: u64) {
        // SAFETY: as the caller promises.
        let len = unsafe { Fixed::parts(word) }.1.len();
        // SAFETY: allocated by `make` with the layout of this length.
        unsafe { dealloc(Fixed::block(word).cast::<u8>(), Fixed::layout(len)) }
    }
}

fn record_word(record: Record) -> u64 {
    Box::into_raw(Box::new(record)) as usize as u64
}

/// Frees what a word owns.
///
/// # Safety
/// `word` is 0, an inline word, or a block's word no one else holds: made for a lost race (never
/// published), or the word of a value being dropped.
unsafe fn discard(word: u64) {
    if word == 0 || word & INLINE != 0 {
        return;
    }
    if word & TAG == FIXED {
        // SAFETY: made by `Fixed::make`; the caller holds it alone.
        unsafe { Fixed::free(word) }
    } else {
        // SAFETY: made by `record_word`; the caller holds it alone.
        drop(unsafe { Box::from_raw(word as usize as *mut Record) });
    }
}

impl PeerAndOpened {
    pub(super) const fn new() -> PeerAndOpened {
        PeerAndOpened(AtomicU64::new(0))
    }

    /// The record a `…000` word points to.
    ///
    /// # Safety
    /// `word` was loaded from `self` and is a record's word (not 0, tag `000`).
    unsafe fn record(&self, word: u64) -> &Record {
        debug_assert!(word != 0 && word & TAG == 0);
        // SAFETY: a published record is freed only by `drop`, which has `self` to itself: it
        // lives while `&self` does.
        unsafe { &*(word as usize as *const Record) }
    }

    /// Publishes `new` in place of `old`; on a lost race, frees `new` and returns the word
    /// that won.
    fn publish(&self, old: u64, new: u64) -> Result<(), u64> {
        self.0
            .compare_exchange(old, new, Ordering::AcqRel, Ordering::Acquire)
            .map(drop)
            // SAFETY: `new` lost, so it was never published: this call holds it alone.
            .inspect_err(|_| unsafe { discard(new) })
    }

    /// Records the peer's address (once; a later call changes nothing).
    pub(super) fn set_peer(&self, address: SocketAddr) {
        let mut word = self.0.load(Ordering::Acquire);
        loop {
            if word & INLINE != 0 || word & TAG == FIXED {
                return;
            }
            if word != 0 {
                // SAFETY: `word` came from `self`, not 0, not inline, not `Fixed`: a record's.
                unsafe { self.record(word) }.peer.set(address);
                return;
            }
            let new = ipv4_word(address).unwrap_or_else(|| {
                let record = Record {
                    peer: PeerAddress::default(),
                    opened: OnceText::new(),
                };
                record.peer.set(address);
                record_word(record)
            });
            match self.publish(0, new) {
                Ok(()) => return,
                Err(now) => word = now,
            }
        }
    }

    pub(super) fn peer(&self) -> Option<SocketAddr> {
        let word = self.0.load(Ordering::Acquire);
        if word == 0 {
            None
        } else if word & INLINE != 0 {
            Some(from_ipv4_word(word))
        } else if word & TAG == FIXED {
            // SAFETY: a published block lives while `&self` does (see `record`).
            Some(from_ipv4_word(unsafe { Fixed::parts(word) }.0))
        } else {
            // SAFETY: `word` came from `self`, not 0, not inline, not `Fixed`: a record's.
            unsafe { self.record(word) }.peer.get()
        }
    }

    /// Sets the text; false (and nothing changes) when it was set already.
    pub(super) fn set_opened(&self, text: &str) -> bool {
        let mut word = self.0.load(Ordering::Acquire);
        loop {
            let new = if word & INLINE != 0 {
                if word & OPENED_EMPTY != 0 {
                    return false;
                }
                if text.is_empty() {
                    word | OPENED_EMPTY
                } else {
                    Fixed::make(word, text)
                }
            } else if word & TAG == FIXED {
                return false;
            } else if word != 0 {
                // SAFETY: `word` came from `self`, not 0, not inline, not `Fixed`: a record's.
                return unsafe { self.record(word) }.opened.set(text);
            } else {
                let record = Record {
                    peer: PeerAddress::default(),
                    opened: OnceText::new(),
                };
                record.opened.set(text);
                record_word(record)
            };
            match self.publish(word, new) {
                Ok(()) => return true,
                Err(now) => word = now,
            }
        }
    }

    /// The text, once set.
    pub(super) fn opened(&self) -> Option<&str> {
        let word = self.0.load(Ordering::Acquire);
        if word == 0 {
            None
        } else if word & INLINE != 0 {
            (word & OPENED_EMPTY != 0).then_some("")
        } else if word & TAG == FIXED {
            // SAFETY: a published block lives while `&self` does (see `record`).
            Some(unsafe { Fixed::parts(word) }.1)
        } else {
            // SAFETY: `word` came from `self`, not 0, not inline, not `Fixed`: a record's.
            unsafe { self.record(word) }.opened.get()
        }
    }
}

impl Drop for PeerAndOpened {
    fn drop(&mut self) {
        // What the word owns goes with it (an inline word owns nothing).
        // SAFETY: `&mut self`: no one else reads the word any more.
        unsafe { discard(*self.0.get_mut()) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each order of the two sets, each kind of address, an empty and a longer text.
    #[test]
    fn both_read_back_as_first_set_in_either_order() {
        for address in ["10.1.2.3:8080", "[fe80::1%2]:9"] {
            let address: SocketAddr = address.parse().unwrap();
            for text in ["", "chat\n/room?x=1"] {
                for peer_first in [true, false] {
                    // Dropped having neither (a client whose connect failed), or only one.
                    drop(PeerAndOpened::new());
                    let peer_only = PeerAndOpened::new();
                    peer_only.set_peer(address);
                    drop(peer_only);
                    let both = PeerAndOpened::new();
                    assert_eq!((both.peer(), both.opened()), (None, None));
                    if peer_first {
                        both.set_peer(address);
                        assert_eq!((both.peer(), both.opened()), (Some(address), None));
                    }
                    assert!(both.set_opened(text));
                    assert!(!both.set_opened("other\n/"), "set once");
                    if !peer_first {
                        assert_eq!(both.peer(), None);
                        both.set_peer(address);
                    }
                    both.set_peer("1.2.3.4:5".parse().unwrap());
                    let what = format!("{address} {text:?} {peer_first}");
                    assert_eq!(both.peer(), Some(address), "{what}");
                    assert_eq!(both.opened(), Some(text), "{what}");
                }
            }
        }
        assert_eq!(size_of::<PeerAndOpened>(), 8);
    }

    /// The usual connection allocates nothing; an IPv4 peer with a text takes one block.
    #[test]
    fn an_ipv4_peer_and_an_empty_text_stay_in_the_word() {
        let both = PeerAndOpened::new();
        both.set_peer("127.0.0.1:80".parse().unwrap());
        both.set_opened("");
        assert_eq!(both.0.load(Ordering::Relaxed) & INLINE, INLINE);
        let other = PeerAndOpened::new();
        other.set_peer("127.0.0.1:80".parse().unwrap());
        other.set_opened("\n/ws");
        assert_eq!(other.0.load(Ordering::Relaxed) & TAG, FIXED);
        assert_eq!(other.opened(), Some("\n/ws"));
    }

    /// Threads racing to set each part: one value wins each, and nothing is lost or leaked
    /// (the losers' blocks are freed: run under Miri or valgrind to see it).
    #[test]
    fn racing_sets_leave_one_winner() {
        for _ in 0..200 {
            let both = PeerAndOpened::new();
            let wins = std::thread::scope(|s| {
                let texts = ["\n/a", "\n/b", ""];
                let setters: Vec<_> = texts
                    .iter()
                    .map(|text| s.spawn(|| both.set_opened(text)))
                    .collect();
                s.spawn(|| both.set_peer("9.8.7.6:5".parse().unwrap()));
                s.spawn(|| both.set_peer("[::1]:5".parse().unwrap()));
                setters
                    .into_iter()
                    .map(|t| t.join().unwrap())
                    .filter(|won| *won)
                    .count()
            });
            assert_eq!(wins, 1);
            assert!(both.peer().is_some() && both.opened().is_some());
        }
    }
}
