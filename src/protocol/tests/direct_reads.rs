//! Large frames read straight into the reader's own buffer (`Reader::direct_read_buffer`): what
//! arrives is delivered whole whatever the reads, the read room grows only while reads come back
//! full, and a header alone sizes nothing.

use super::*;

/// The most one read may take in these tests (the loop's default read size).
pub(super) const READ_MAX: usize = 512 * 1024;

#[test]
fn direct_reads_of_large_frames() {
    let big = vec![b'a'; 100_000];
    let stream = [
        client_frame(Opcode::Text, true, &big),
        client_frame(Opcode::Text, true, &big),
    ]
    .concat();
    let mut reader = Reader::default();
    let mut delivered = 0;
    let mut fed = 0;
    while fed < stream.len() {
        let mut input = match reader.direct_read_buffer(READ_MAX) {
            Some(target) => {
                let n = target.len().min(stream.len() - fed).min(30_000);
                target[..n].copy_from_slice(&stream[fed..fed + n]);
                fed += n;
                reader.direct_filled(n, READ_MAX)
            }
            None => {
                let n = (stream.len() - fed).min(30_000);
                let mut chunk = stream[fed..fed + n].to_vec();
                fed += n;
                let mut input = reader.feed(&mut chunk);
                while let Some(event) = reader.next(&mut input, Role::Server, &limits()) {
                    assert!(matches!(event, Incoming::Message { data, .. } if data == big));
                    delivered += 1;
                }
                continue;
            }
        };
        while let Some(event) = reader.next(&mut input, Role::Server, &limits()) {
            assert!(matches!(event, Incoming::Message { data, .. } if data == big));
            delivered += 1;
        }
    }
    assert_eq!(delivered, 2);
}

/// While reads come back full, a direct read asks for twice as much each time, up to the
/// largest read; a short read sets it back to 64 KiB beyond the frame in progress. Frames
/// smaller than a read never grow the buffer past the read size.
#[test]
fn direct_reads_grow_only_while_they_come_back_full() {
    let payload: Vec<u8> = (0..65_536).map(|i| b'a' + (i % 26) as u8).collect();
    let mut s = Stream::of(client_frame(Opcode::Text, true, &payload), 40, payload);
    let read = |s: &mut Stream, short: bool| {
        let cut = s.cut();
        let offered = s.read(|offered| if short { offered / 2 } else { offered });
        assert!(
            cut + offered <= READ_MAX,
            "{offered} offered after {cut} bytes"
        );
        // What the loop weighs before keeping the buffer as its spare.
        let held = s.reader.buffered();
        assert!(held <= READ_MAX, "{held} bytes held");
        offered
    };
    // The room doubles with each full read; what is offered is all of the buffer beyond the
    // frame in progress: at least the room, within the read size.
    let mut rooms = Vec::new();
    for _ in 0..5 {
        let room = s.reader.direct_room();
        let cut = s.cut();
        let offered = read(&mut s, false);
        assert!(
            offered >= room.min(READ_MAX - cut),
            "{offered} offered for a room of {room} after {cut} bytes"
        );
        rooms.push(room);
    }
    assert_eq!(
        rooms,
        [64 * 1024, 128 * 1024, 256 * 1024, READ_MAX, READ_MAX]
    );
    assert_eq!(s.reader.direct_room(), READ_MAX);
    // A short read sets the room back to 64 KiB; a full read grows it again, from what it was
    // offered: all of the buffer beyond the frame in progress, which is already grown.
    read(&mut s, true);
    assert_eq!(s.reader.direct_room(), 64 * 1024);
    read(&mut s, false);
    assert_eq!(s.reader.direct_room(), READ_MAX);
    assert!(s.delivered >= 10, "{} messages", s.delivered);

    // A peer that never fills a read (slow, or trickling on purpose) never makes the room grow:
    // the buffer (zero-filled, and so resident) stays within one frame and 64 KiB.
    let mut s = Stream::of(s.frame, 40, s.payload);
    while s.fed < 20 * s.frame.len() {
        assert_eq!(s.reader.direct_room(), 64 * 1024);
        s.read(|offered| (offered - 1).min(40_000));
        let held = s.reader.buffered();
        assert!(held <= s.frame.len() + 64 * 1024, "{held} bytes held");
    }
}

#[test]
fn a_header_alone_allocates_nothing_like_what_it_claims() {
    let mut limits = limits();
    limits.message_max = 16 << 20;
    let mut header = [0; MAX_HEADER];
    let n = frame::encode_header(
        &mut header,
        Opcode::Binary,
        true,
        16 << 20,
        Some([1, 2, 3, 4]),
    );
    let mut bytes = header[..n].to_vec();
    bytes.push(0);
    let mut reader = Reader::default();
    let mut input = reader.feed(&mut bytes);
    assert!(reader.next(&mut input, Role::Server, &limits).is_none());
    assert!(reader.buffered() < 1024, "{} bytes held", reader.buffered());
    // Reading straight into the reader grows it by one read at a time, not to 16 MiB.
    let target = reader
        .direct_read_buffer(READ_MAX)
        .expect("a large frame is cut");
    assert!(target.len() <= 128 * 1024, "{} bytes offered", target.len());
}

/// A frame larger than a read grows the buffer to that frame, and no further: it is delivered
/// whole, and reads near the read size still take more than 64 KiB at a time.
#[test]
fn a_frame_larger_than_a_read_grows_the_buffer_to_the_frame() {
    let payload = vec![b'b'; READ_MAX + 100_000];
    let mut s = Stream::of(client_frame(Opcode::Text, true, &payload), 2, payload);
    let (mut largest, mut offered_past_read_size) = (0, 0);
    while s.fed < s.bytes.len() {
        let cut = s.cut();
        let offered = s.read(|offered| offered);
        assert!(
            cut + offered <= s.frame.len(),
            "{offered} offered after {cut} bytes"
        );
        largest = largest.max(cut + offered);
        if cut + 64 * 1024 > READ_MAX {
            offered_past_read_size = offered_past_read_size.max(offered);
        }
    }
    assert_eq!(s.delivered, 2);
    assert!(
        largest > READ_MAX,
        "the buffer stayed within {largest} bytes"
    );
    assert!(
        offered_past_read_size > 64 * 1024,
        "{offered_past_read_size} bytes a read"
    );
}

/// Frames a little smaller than a read, the largest that still fit one, keep the buffer within
/// the read size too: the loop keeps it as its spare.
#[test]
fn frames_nearly_as_large_as_a_read_stay_within_it() {
    let payload = vec![b'c'; READ_MAX - 20_000];
    let mut s = Stream::of(client_frame(Opcode::Binary, true, &payload), 4, payload);
    while s.fed < s.bytes.len() {
        s.read(|offered| offered);
        let held = s.reader.buffered();
        assert!(held <= READ_MAX, "{held} bytes held");
    }
    assert_eq!(s.delivered, 4);
}

/// A stream of one frame repeated, read straight into a reader as a session reads it.
struct Stream {
    frame: Vec<u8>,
    bytes: Vec<u8>,
    payload: Vec<u8>,
    reader: Reader,
    /// Bytes of `bytes` given to the reader so far.
    fed: usize,
    /// Messages the reader handed out, each checked to be `payload`.
    delivered: usize,
}

impl Stream {
    /// `count` copies of `frame` (carrying `payload`), the first cut after 20,000 bytes: a
    /// frame of 16 KiB or more then wants reads straight into the reader.
    fn of(frame: Vec<u8>, count: usize, payload: Vec<u8>) -> Stream {
        let bytes = frame.repeat(count);
        let mut reader = Reader::default();
        let fed = 20_000;
        let mut first = bytes[..fed].to_vec();
        let mut input = reader.feed(&mut first);
        assert!(reader.next(&mut input, Role::Server, &limits()).is_none());
        Stream {
            frame,
            bytes,
            payload,
            reader,
            fed,
            delivered: 0,
        }
    }

    /// The bytes of the frame in progress the reader holds (every whole frame fed was taken).
    fn cut(&self) -> usize {
        self.fed % self.frame.len()
    }

    /// One read: the reader offers its buffer, `amount` says how much of the offer arrives
    /// (capped at what is left), and the frames it completes are taken. Returns the offer.
    fn read(&mut self, amount: impl FnOnce(usize) -> usize) -> usize {
        let target = self
            .reader
            .direct_read_buffer(READ_MAX)
            .expect("large frames flow");
        let offered = target.len();
        let n = amount(offered).min(self.bytes.len() - self.fed);
        target[..n].copy_from_slice(&self.bytes[self.fed..self.fed + n]);
        self.fed += n;
        let mut input = self.reader.direct_filled(n, READ_MAX);
        while let Some(event) = self.reader.next(&mut input, Role::Server, &limits()) {
            assert!(matches!(event, Incoming::Message { data, .. } if data == self.payload));
            self.delivered += 1;
        }
        offered
    }
}
