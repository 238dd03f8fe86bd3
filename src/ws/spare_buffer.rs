//! The loop's spare buffer for large frames: a connection reading large frames reads them
//! straight into a buffer of its own (`protocol::Reader::direct_read_buffer`); once drained it
//! gives the buffer back, and its loop thread keeps one for the next connection (or the next
//! burst) that needs it.

use super::session::Phase;
use crate::protocol::Reader;

/// A large-frame buffer a drained connection gave back, kept by its loop thread for the next
/// connection whose large frames need one: bursts of large frames cost no allocation, and idle
/// connections own no buffer. A stream of frames smaller than a read grows its buffer up to the
/// read size (512 KiB by default, `Reader::direct_read_buffer`), which is kept. Larger buffers
/// (a larger frame, or a larger read size) are not: what a loop holds between bursts stays
/// bounded, and such a burst allocates again.
const SPARE_BUFFER_MAX: usize = 512 * 1024;

thread_local! {
    static SPARE_BUFFER: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

/// The buffer an open connection's reader of large frames reads into directly, with the loop's
/// spare buffer lent to it; None when the phase is not open or the reader wants no direct read.
/// (Not inlined: the thread-local lookup would be hoisted into every read of its caller, and
/// the caller's common path tests whether the reader wants one, not the phase again.)
#[inline(never)]
pub(super) fn direct_read_buffer(phase: &mut Phase, read_max: usize) -> Option<&mut [u8]> {
    let Phase::Open(reader) = phase else {
        return None;
    };
    if reader.wants_direct_read() {
        let spare = SPARE_BUFFER.take();
        if spare.capacity() > 0
            && let Some(unused) = reader.lend_buffer(spare)
        {
            SPARE_BUFFER.set(unused);
        }
    }
    reader.direct_read_buffer(read_max)
}

/// Takes back a drained reader's buffer as the loop's spare (or frees it).
#[inline]
pub(super) fn keep_spare(phase: &mut Phase) {
    // A reader of small frames holds no buffer (every read but those of large frames).
    if let Phase::Open(reader) = phase
        && reader.buffered() > 0
    {
        take_back(reader);
    }
}

/// Not inlined, as `lend_spare`.
#[inline(never)]
fn take_back(reader: &mut Reader) {
    if let Some(buffer) = reader.release_if_idle()
        && buffer.capacity() <= SPARE_BUFFER_MAX
    {
        let previous = SPARE_BUFFER.take();
        SPARE_BUFFER.set(if buffer.capacity() >= previous.capacity() {
            buffer
        } else {
            previous
        });
    }
}
