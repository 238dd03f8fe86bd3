//! Text set once and read for as long as its owner lives, in one word: a pointer to one heap
//! block that holds the text's length, then its bytes. An `OnceLock<Option<Box<str>>>` takes
//! three words. A connection keeps its subprotocol and request target in one of these when they
//! do not fit its `PeerAndOpened` word otherwise (`peer_opened.rs`).

use std::alloc::{Layout, alloc, dealloc};
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicPtr, Ordering};

const HEADER: usize = size_of::<usize>();

/// Where an empty text points (no allocation): a length of 0.
static EMPTY: usize = 0;

pub(super) struct OnceText(AtomicPtr<usize>);

fn layout(len: usize) -> Layout {
    Layout::from_size_align(HEADER + len, align_of::<usize>()).expect("a text that fits memory")
}

impl OnceText {
    pub(super) const fn new() -> OnceText {
        OnceText(AtomicPtr::new(ptr::null_mut()))
    }

    /// Sets the text; false (and nothing changes) when it was set already.
    pub(super) fn set(&self, text: &str) -> bool {
        let block = if text.is_empty() {
            (&raw const EMPTY).cast_mut()
        } else {
            let layout = layout(text.len());
            // SAFETY: the layout is never zero-sized (it has the header).
            let Some(block) = NonNull::new(unsafe { alloc(layout) }.cast::<usize>()) else {
                std::alloc::handle_alloc_error(layout);
            };
            // SAFETY: the block holds a usize, then `text.len()` bytes.
            unsafe {
                block.write(text.len());
                ptr::copy_nonoverlapping(
                    text.as_ptr(),
                    block.as_ptr().cast::<u8>().add(HEADER),
                    text.len(),
                );
            }
            block.as_ptr()
        };
        let won = self
            .0
            .compare_exchange(ptr::null_mut(), block, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        if !won {
            free(block);
        }
        won
    }

    /// The text, once set.
    pub(super) fn get(&self) -> Option<&str> {
        let block = self.0.load(Ordering::Acquire);
        if block.is_null() {
            return None;
        }
        // SAFETY: a published block is never changed or freed before `self` is dropped, and
        // holds its length, then that many bytes copied from a `&str`.
        unsafe {
            let len = block.read();
            let bytes = std::slice::from_raw_parts(block.cast::<u8>().add(HEADER), len);
            Some(std::str::from_utf8_unchecked(bytes))
        }
    }
}

fn free(block: *mut usize) {
    if block.is_null() || ptr::eq(block, &raw const EMPTY) {
        return;
    }
    // SAFETY: allocated by `set` with the layout of the length it holds.
    unsafe { dealloc(block.cast::<u8>(), layout(block.read())) }
}

impl Drop for OnceText {
    fn drop(&mut self) {
        free(*self.0.get_mut());
    }
}

#[cfg(test)]
mod tests {
    use super::OnceText;

    #[test]
    fn set_once_then_read() {
        let text = OnceText::new();
        assert_eq!(text.get(), None);
        assert!(text.set("chat\n/room?x=1"));
        assert!(!text.set("other"), "set once");
        assert_eq!(text.get(), Some("chat\n/room?x=1"));
        let empty = OnceText::new();
        assert!(empty.set(""));
        assert_eq!(empty.get(), Some(""));
        assert_eq!(size_of::<OnceText>(), size_of::<usize>());
    }
}
