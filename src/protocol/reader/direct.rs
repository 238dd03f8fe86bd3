//! Large frames read straight into the reader's own buffer: the socket's bytes are copied once,
//! not through the caller's buffer and again into the cut-frame buffer. The caller asks
//! [`Reader::direct_read_buffer`] before each read, and gives a drained reader's buffer to the
//! next reader that wants one.

use super::{Input, LARGE_FRAME, PartialFrame, Reader, Source};

/// How much a direct read first asks for beyond the frame in progress: the next frames' bytes
/// too, so a stream of frames up to this size costs about one read per frame. While reads come
/// back full (more is waiting than was asked for) the room doubles, up to the caller's largest
/// read: a window of 64 KiB messages then takes about seven a read at 512 KiB (the default).
/// A short read (a slow or trickling peer) sets it back, so only a peer that keeps the socket
/// full makes it grow.
pub(super) const DIRECT_READ: usize = 64 * 1024;

impl Reader {
    /// A buffer to read straight into while large frames flow (after a large frame, or while
    /// a large frame is cut), or None: then read into the caller's buffer and `feed` it.
    /// `read_max`: the most one read should take (as for [`Reader::direct_filled`]).
    pub fn direct_read_buffer(&mut self, read_max: usize) -> Option<&mut [u8]> {
        if !self.wants_direct_read() {
            return None;
        }
        self.compact_partial();
        let partial = &mut self.held().partial;
        // Room for one more read: the buffer grows with what arrives, never by what a header
        // merely claims (a 14-byte header may announce 16 MiB). Nor past the read size, unless
        // the frame in progress is larger still, and then to that frame: a buffer grown by a
        // stream of frames smaller than a read stays within what the loop keeps as its spare
        // for the next burst. (A cut frame's bytes are fewer than its size, and than a read's
        // while its header is incomplete, so the cap leaves room; the `filled + 1` only makes
        // sure that no read is ever offered nothing, which it would report as the end.)
        let cap = read_max
            .max(partial.needed as usize)
            .max(partial.filled + 1);
        let want = (partial.filled + partial.room()).min(cap);
        if partial.bytes.len() < want {
            // Exactly: the zero-filled length is what becomes resident, and the capacity is
            // what the loop's spare limit weighs.
            partial.bytes.reserve_exact(want - partial.bytes.len());
            partial.bytes.resize(want, 0);
        }
        // All of the buffer beyond `filled`, also where it is larger than the room (a lent spare,
        // or room left after moving a cut frame to the front): a frame a little over the room
        // (64 KiB of payload and its header) then still comes in one read.
        Some(&mut partial.bytes[partial.filled..])
    }

    /// `n` bytes were read into [`Reader::direct_read_buffer`]: parse them from there.
    /// `read_max`: the most one read should take. A full read lets the next one ask for up to
    /// twice as much, within it (but never less than [`DIRECT_READ`]).
    pub fn direct_filled(&mut self, n: usize, read_max: usize) -> Input<'static> {
        let partial = &mut self.held().partial;
        // (What `direct_read_buffer` offered.)
        let space = partial.bytes.len() - partial.filled;
        partial.room = if n == space {
            let doubled = space.saturating_mul(2).min(read_max).max(DIRECT_READ);
            u32::try_from(doubled).unwrap_or(u32::MAX)
        } else {
            0
        };
        partial.filled += n;
        Input {
            bytes: &mut [],
            offset: 0,
            source: Source::Partial,
        }
    }

    /// The socket is drained: the buffer kept for large frames is given back when no frame is
    /// cut, so an idle connection owns no buffer whatever it received before. The caller may
    /// keep it for the next reader that wants one ([`Reader::lend_buffer`]).
    pub fn release_if_idle(&mut self) -> Option<Vec<u8>> {
        let held = self.held.as_mut()?;
        let partial = &mut held.partial;
        if partial.filled == partial.consumed && partial.bytes.capacity() > 0 {
            let bytes = std::mem::take(partial).bytes;
            self.drop_held_if_empty();
            return Some(bytes);
        }
        None
    }

    /// True when the next read should go straight into the reader's buffer.
    pub fn wants_direct_read(&self) -> bool {
        self.large_frames
            || self
                .held
                .as_ref()
                .is_some_and(|held| held.partial.needed as usize >= LARGE_FRAME)
    }

    /// What the next direct read asks for beyond the frame in progress, at least.
    #[cfg(test)]
    pub fn direct_room(&self) -> usize {
        self.held
            .as_ref()
            .map_or(DIRECT_READ, |held| held.partial.room())
    }

    /// Hands the reader a buffer for its direct reads (one a drained reader gave back), when it
    /// has none: no allocation, and no zero-filling, per burst of large frames.
    pub fn lend_buffer(&mut self, buffer: Vec<u8>) -> Option<Vec<u8>> {
        let partial = &mut self.held().partial;
        if partial.bytes.capacity() == 0 && partial.filled == 0 {
            partial.bytes = buffer;
            return None;
        }
        Some(buffer)
    }
}

impl PartialFrame {
    /// What the next direct read asks for beyond `filled`.
    fn room(&self) -> usize {
        match self.room {
            0 => DIRECT_READ,
            room => room as usize,
        }
    }
}
