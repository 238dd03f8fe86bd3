//! The socket of a connection and what waits to be written to it. A small frame is copied into
//! the send buffer and written with one send(2) (at once, or under the event loop's cork with
//! the read's other replies); a large one goes out straight from the caller's buffer when
//! nothing waits, except a read's second and later large replies below 128 KiB, which wait
//! under the cork to go out together; the one that brings what waits to 128 KiB goes out with
//! it, straight from its caller's buffer. What the socket does not take waits in the send buffer. A
//! connection owns a send buffer only while bytes wait in it; its event loop keeps one, up to
//! the size of a read, for the next read's replies.

use super::outbox::Outbox;
use crate::protocol::frame::EncodedHeader;
use crate::protocol::{FrameSink, frame};
use crate::transport::{NoSigPipe, Transport};
use std::io::{self, IoSlice, Write};

/// A drained send buffer up to this size is kept as its thread's spare; a larger one is freed,
/// so a big message does not pin memory.
const OUTBOX_KEEP: usize = 16 * 1024;

thread_local! {
    /// One drained send buffer per thread, for the next connection that queues something on
    /// it: a connection owns a send buffer only while bytes wait in it (an idle connection
    /// owns none), yet the event loop's corked replies, one read after another, cost no
    /// allocation.
    static SPARE_OUTBOX: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

/// While corked, the send buffer is written out once it holds this much: replies are batched
/// into large writes without letting a long burst pile up.
const CORK_FLUSH: usize = 128 * 1024;

/// A payload this large is written at once, straight from the caller's buffer, when nothing
/// waits before it (under the cork: the read's first such reply, and any of CORK_FLUSH or
/// more), or under the cork with what waits when it brings that to CORK_FLUSH; a smaller one
/// goes through the send buffer.
const CORK_BYPASS: usize = OUTBOX_KEEP;

/// The socket and what waits to be written to it.
pub struct Writer {
    pub transport: Option<Transport>,
    /// The send buffer, in one word (see [`Outbox`]): a `Vec` and its written count would take
    /// four in every connection.
    outbox: Outbox,
    /// A write failed: the peer is gone; the event loop reports it.
    pub broken: bool,
    /// Set by the event loop while it hands one read's messages to callbacks: replies collect
    /// in the send buffer and go out with one write afterwards, instead of one per message.
    pub corked: bool,
    /// Under the cork, a large frame went out straight from its caller's buffer: the read's
    /// next large replies wait in the send buffer (see [`Writer::frame`]). Read only while
    /// corked, and cleared where a read's cork begins ([`Writer::cork_with`]).
    wrote_straight: bool,
}

impl Writer {
    /// A writer over `transport` (None: a client not connected yet), with nothing queued.
    pub(crate) fn new(transport: Option<Transport>) -> Writer {
        Writer {
            transport,
            outbox: Outbox::new(),
            broken: false,
            corked: false,
            wrote_straight: false,
        }
    }

    #[inline]
    pub fn queued(&self) -> usize {
        self.outbox.queued()
    }

    /// Replies collected under the cork are not backpressure: when more than `cap` bytes wait,
    /// they go out now, so that only what the socket does not take counts against a limit.
    pub fn flush_corked_past(&mut self, cap: usize) {
        if self.corked && self.queued() > cap {
            self.flush();
        }
    }

    /// Writes what waits in the send buffer until the socket is full. Returns true when empty.
    pub fn flush(&mut self) -> bool {
        self.flush_into(None)
    }

    /// As [`Writer::flush`]; a drained send buffer goes to `spare` when that is given and
    /// empty, else to this thread's spare (or is freed when large).
    fn flush_into(&mut self, spare: Option<&mut Vec<u8>>) -> bool {
        let Some(transport) = self.transport.as_mut() else {
            return true;
        };
        // Nothing queued on plain TCP (every read's uncork, most writable edges): nothing to
        // write; an emptied send buffer goes (one lent for a cork, back to its loop).
        if self.outbox.queued() == 0 && !transport.is_tls() {
            if !self.corked {
                self.release_outbox(spare);
            }
            return true;
        }
        // What the transport still holds (TLS records) goes first.
        match transport.flush_pending() {
            Ok(true) => {}
            Ok(false) => {
                // The records wait for the socket; an emptied send buffer need not wait too.
                if !self.corked && self.outbox.queued() == 0 {
                    self.release_outbox(spare);
                }
                return false;
            }
            Err(_) => self.broken = true,
        }
        while !self.broken && self.outbox.queued() > 0 {
            match transport.write(self.outbox.pending()) {
                Ok(0) => self.broken = true,
                Ok(n) => self.outbox.consume(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => self.broken = true,
            }
        }
        if self.broken {
            self.outbox = Outbox::new();
            return true;
        }
        let drained = !transport.has_pending();
        if self.corked {
            // A flush in the middle of a cork (at CORK_FLUSH): the read's next replies fill the
            // buffer again, so it stays, emptied; the uncork lets it go.
            self.outbox.clear();
        } else {
            self.release_outbox(spare);
        }
        drained
    }

    /// Lets go of the drained send buffer: to `spare` (the event loop's, which keeps it for the
    /// next read's replies, up to the size of a read) when that is given and empty; else to
    /// this thread's spare, up to OUTBOX_KEEP; a larger one is freed.
    #[inline(always)]
    fn release_outbox(&mut self, spare: Option<&mut Vec<u8>>) {
        let capacity = self.outbox.capacity();
        if capacity == 0 {
            return;
        }
        match spare.filter(|spare| spare.capacity() == 0) {
            Some(spare) => *spare = self.outbox.take_vec(),
            _ if capacity <= OUTBOX_KEEP => give_spare_outbox(self.outbox.take_vec()),
            _ => self.outbox = Outbox::new(),
        }
    }

    /// What the send buffer holds allocated (for tests: an idle connection holds none).
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.outbox.capacity()
    }

    /// Appends `bytes` to the send buffer, which starts as this thread's spare.
    fn queue(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        self.queue_frame(bytes, &[]);
    }

    /// Appends a frame's header and payload to the send buffer (one capacity check for both).
    #[inline(always)]
    fn queue_frame(&mut self, header: &[u8], payload: &[u8]) {
        if !self.outbox.try_push(header, payload) {
            self.queue_frame_growing(header, payload);
        }
    }

    /// As [`Writer::queue_frame`] when the send buffer has no room: it starts as this thread's
    /// spare, or grows.
    #[cold]
    #[inline(never)]
    fn queue_frame_growing(&mut self, header: &[u8], payload: &[u8]) {
        if !self.outbox.is_allocated() {
            self.outbox = Outbox::from_vec(take_spare_outbox());
        }
        self.outbox.push(header, payload);
    }

    /// Queues raw bytes (an HTTP head) and writes them if the socket takes them.
    pub fn write_raw(&mut self, bytes: &[u8]) {
        self.queue(bytes);
        if !self.corked {
            self.flush();
        }
    }

    /// Queues raw bytes given in parts (an HTTP head built from pieces), as one write.
    pub fn write_raw_parts(&mut self, parts: &[&[u8]]) {
        for part in parts {
            self.queue(part);
        }
        if !self.corked {
            self.flush();
        }
    }

    /// Ends a cork: writes what collected meanwhile, and what waited for the socket to drain
    /// (so a read that comes with a writable edge needs no flush of its own).
    pub fn uncork(&mut self) {
        self.corked = false;
        self.flush();
    }

    /// Starts a cork with `spare` (the event loop's spare send buffer) as the send buffer when
    /// none is allocated: the replies to one read collect in it without a thread-local lookup.
    pub fn cork_with(&mut self, spare: &mut Vec<u8>) {
        self.corked = true;
        self.wrote_straight = false;
        if !self.outbox.is_allocated() && Outbox::fits_in(spare) {
            self.outbox = Outbox::from_vec(std::mem::take(spare));
        }
    }

    /// Ends a cork whose read ended the connection (the socket is closed, or nothing waits):
    /// the send buffer goes back to `spare`, with any bytes that can no longer be written.
    pub fn end_cork_into(&mut self, spare: &mut Vec<u8>) {
        self.corked = false;
        if self.transport.is_none() || self.outbox.queued() == 0 {
            self.outbox.clear();
            self.release_outbox(Some(spare));
        }
    }

    /// Ends a cork begun with [`Writer::cork_with`]: as [`Writer::uncork`], and the send buffer,
    /// once drained, goes back to `spare`.
    #[inline]
    pub fn uncork_into(&mut self, spare: &mut Vec<u8>) {
        self.corked = false;
        if let Some(Transport::Plain(stream)) = self.transport.as_mut() {
            // The usual cases, on plain TCP: nothing collected (no reply, or only large ones
            // written at once), or replies that one send takes whole. Anything else (a short
            // write, a full socket, an error) goes the general way.
            let pending = self.outbox.pending();
            if pending.is_empty() {
                self.release_outbox(Some(spare));
                return;
            }
            if !self.outbox.partly_written() && !self.broken {
                match NoSigPipe(stream).write(pending) {
                    Ok(n) if n == pending.len() => {
                        self.release_outbox(Some(spare));
                        return;
                    }
                    Ok(n) => self.outbox.consume(n),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                    Err(_) => {}
                }
            }
        }
        self.flush_into(Some(spare));
    }

    /// Under the cork, with replies waiting: writes them and one more frame, straight from the
    /// caller's buffer, in one vectored write; what the socket does not take waits in the send
    /// buffer (the uncork, which ends every cork, writes on until the socket is full).
    fn write_with_queued(&mut self, header: &[u8], payload: &[u8]) {
        let transport = self.transport.as_mut().expect("checked by the caller");
        let pending = self.outbox.pending();
        let waiting = pending.len();
        let parts = [
            IoSlice::new(pending),
            IoSlice::new(header),
            IoSlice::new(payload),
        ];
        let Ok(written) = write_straight(transport, &parts) else {
            // As `flush_into`: a broken writer holds no send buffer.
            self.broken = true;
            self.outbox = Outbox::new();
            return;
        };
        // This reply went out as a read's first large one does: the next ones join the batch.
        self.wrote_straight = true;
        if written < waiting {
            self.outbox.consume(written);
            self.queue_frame(header, payload);
            return;
        }
        // The waiting replies are out: the emptied buffer stays for the read's next replies.
        self.outbox.clear();
        self.queue_unwritten(header, payload, written - waiting);
    }

    /// Queues what of a frame written straight the socket did not take: `sent` bytes of
    /// header and payload went out.
    fn queue_unwritten(&mut self, header: &[u8], payload: &[u8], sent: usize) {
        if sent < header.len() {
            self.queue_frame(&header[sent..], payload);
        } else {
            self.queue(&payload[sent - header.len()..]);
        }
    }
}

impl FrameSink for Writer {
    /// A server frame goes through the send buffer, or (large) straight from the caller's
    /// buffer as header + payload in one vectored write (after what waits, under the cork, when
    /// that fills the batch); a client frame is masked into the send buffer.
    fn frame(&mut self, header: &[u8], payload: &[u8], mask: Option<[u8; 4]>) {
        if self.broken || self.transport.is_none() {
            return;
        }
        if let Some(mask) = mask {
            self.queue(header);
            self.queue(payload);
            // (Counted from the end: making room may have moved the bytes that wait.)
            let start = self.outbox.len() - payload.len();
            frame::apply_mask(self.outbox.tail_mut(start), mask);
            if !self.corked || self.queued() >= CORK_FLUSH {
                self.flush();
            }
            return;
        }
        // A frame below CORK_BYPASS goes through the send buffer: one contiguous send(2) costs the
        // kernel less than a sendmsg(2) of header and payload (measured on loopback, Linux 6:
        // 0.2-0.3 us less per call up to 4 KiB, even at 16 KiB, more than the copy costs), and
        // under the cork it waits there for the read's other replies. A larger payload is
        // written straight from the caller's buffer when nothing waits before it: at 64 KiB the
        // copy costs more. TLS copies into records anyway, so it always goes through the buffer.
        // Under the cork, only the read's first large reply goes straight; the next ones below
        // CORK_FLUSH are copied and go out together. A peer then takes the replies to a stream
        // of large messages in a few large writes, not one per message: measured at 16 messages
        // of 64 KiB in flight, both ends spend a quarter less CPU a message and the echo rate
        // rises by a third (docs/BENCHMARKS.md, "large replies under the cork"). A read with one
        // large message (one in flight) still costs no copy. The reply that brings what waits to
        // CORK_FLUSH is not copied: it goes out with it in that write (`write_with_queued`), so
        // of a stream of 64 KiB replies every other one is copied, not 15 of 16
        // (docs/BENCHMARKS.md, "the reply that fills the batch").
        let tls = self.transport.as_ref().is_some_and(Transport::is_tls);
        let small = payload.len() < CORK_BYPASS;
        let queued = self.queued();
        let was_empty = queued == 0;
        if self.corked && !was_empty && !small && !tls {
            let frame_len = header.len() + payload.len();
            if queued + frame_len >= CORK_FLUSH {
                self.write_with_queued(header, payload);
                return;
            }
        }
        let joins_replies = self.corked && self.wrote_straight && payload.len() < CORK_FLUSH;
        let mut written = 0;
        if was_empty && !small && !tls && !joins_replies {
            self.wrote_straight = self.corked;
            let transport = self.transport.as_mut().expect("checked above");
            let parts = [IoSlice::new(header), IoSlice::new(payload)];
            let Ok(count) = write_straight(transport, &parts) else {
                self.broken = true;
                return;
            };
            written = count;
        }
        let n = header.len();
        self.queue_unwritten(header, payload, written);
        // Outside a cork a small frame goes out now, unless bytes waited before it (the socket
        // is full: its writable edge flushes them all).
        // (What waits now: what waited, and what of this frame was not written at once.)
        let flush = match self.corked {
            true => queued + n + payload.len() - written >= CORK_FLUSH,
            false => tls || (was_empty && small),
        };
        if flush {
            self.flush();
        }
    }

    /// Under the cork (a reply from a callback, the usual send), a small server frame joins
    /// the send buffer at once; anything else goes through [`Writer::frame`]. (What `frame`
    /// does with such a frame, with fewer tests and without a copy call for the header.)
    #[inline(always)]
    fn frame_in(&mut self, header: EncodedHeader, payload: &[u8], mask: Option<[u8; 4]>) {
        if self.corked
            && mask.is_none()
            && !self.broken
            && payload.len() < CORK_BYPASS
            && self.transport.is_some()
            && self.outbox.try_push_frame(header, payload)
        {
            if self.queued() >= CORK_FLUSH {
                self.flush();
            }
            return;
        }
        self.frame(&header.padded()[..header.size()], payload, mask);
    }

    fn queued(&self) -> usize {
        Writer::queued(self)
    }

    /// From the kernel: the bytes the peer's TCP acknowledged; and that count plus what the
    /// socket holds unacknowledged plus what the socket is still to be given for what waits
    /// here. Over TLS that last part is a bound: the records the waiting bytes will be sealed
    /// into are at most that long. (A position past the frame's true end costs a live peer
    /// nothing, and a hung one the timeouts its TCP takes to acknowledge the difference; one
    /// short of it could drop a live peer.)
    fn acknowledged(&self) -> Option<(u32, u32)> {
        let transport = self.transport.as_ref()?;
        // What the socket holds unacknowledged first: an acknowledgement that comes between
        // the two calls then counts twice (the end too far), not never (too short).
        let unacknowledged = transport.unacknowledged() as u64;
        let acknowledged = transport.bytes_acknowledged()?;
        let end = acknowledged
            .wrapping_add(unacknowledged)
            .wrapping_add(transport.wire_bytes_at_most(self.queued()) as u64);
        // (Positions modulo 2^32: the endpoint compares them within a few timeouts' traffic.)
        Some((acknowledged as u32, end as u32))
    }

    fn mask_key(&mut self) -> [u8; 4] {
        mask_key()
    }
}

/// A client frame's masking key (RFC 6455 section 5.3: from a strong source of entropy).
#[cfg(feature = "client")]
fn mask_key() -> [u8; 4] {
    rand::random()
}

/// Only a client masks, and without the `client` feature no client connection exists.
#[cfg(not(feature = "client"))]
fn mask_key() -> [u8; 4] {
    unreachable!("a frame to mask in a build without the `client` feature")
}

/// This thread's spare send buffer (or an unallocated one). Not inlined: the thread-local lookup
/// would be hoisted into its callers' paths that do not need it.
#[inline(never)]
/// One vectored write straight from the caller's buffers: the bytes the socket took (0 when it
/// is full), retried when a signal interrupts it; an error means the peer is gone.
fn write_straight(transport: &mut Transport, parts: &[IoSlice<'_>]) -> io::Result<usize> {
    loop {
        match transport.write_vectored(parts) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(0),
            result => return result,
        }
    }
}

fn take_spare_outbox() -> Vec<u8> {
    SPARE_OUTBOX.take()
}

/// Keeps a drained send buffer as this thread's spare, or frees it when the spare is larger.
fn give_spare_outbox(mut buffer: Vec<u8>) {
    buffer.clear();
    let spare = SPARE_OUTBOX.take();
    SPARE_OUTBOX.set(if buffer.capacity() > spare.capacity() {
        buffer
    } else {
        spare
    });
}
