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
    let frame = client_frame(Opcode::Text, true, &payload);
    let stream = frame.repeat(40);
    let (mut reader, mut fed) = cut_in_first_frame(&stream);
    let mut delivered = 0;
    let mut read = |reader: &mut Reader, fed: &mut usize, short: bool| {
        // (The stream repeats one frame, and every whole frame read so far was taken.)
        let cut = *fed % frame.len();
        let target = reader
            .direct_read_buffer(READ_MAX)
            .expect("large frames flow");
        let offered = target.len();
        assert!(
            cut + offered <= READ_MAX,
            "{offered} offered after {cut} bytes"
        );
        let n = if short { offered / 2 } else { offered };
        target[..n].copy_from_slice(&stream[*fed..*fed + n]);
        *fed += n;
        let mut input = reader.direct_filled(n, READ_MAX);
        while let Some(event) = reader.next(&mut input, Role::Server, &limits()) {
            assert!(matches!(event, Incoming::Message { data, .. } if data == payload));
            delivered += 1;
        }
        // What the loop weighs before keeping the buffer as its spare.
        assert!(
            reader.buffered() <= READ_MAX,
            "{} bytes held",
            reader.buffered()
        );
        offered
    };
    // The room doubles with each full read; what is offered is all of the buffer beyond the
    // frame in progress: at least the room, within the read size.
    let mut rooms = Vec::new();
    for _ in 0..5 {
        let room = reader.direct_room();
        let cut = fed % frame.len();
        let offered = read(&mut reader, &mut fed, false);
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
    assert_eq!(reader.direct_room(), READ_MAX);
    // A short read sets the room back to 64 KiB; a full read grows it again, from what it was
    // offered: all of the buffer beyond the frame in progress, which is already grown.
    read(&mut reader, &mut fed, true);
    assert_eq!(reader.direct_room(), 64 * 1024);
    read(&mut reader, &mut fed, false);
    assert_eq!(reader.direct_room(), READ_MAX);
    assert!(delivered >= 10, "{delivered} messages");

    // A peer that never fills a read (slow, or trickling on purpose) never makes the room grow:
    // the buffer (zero-filled, and so resident) stays within one frame and 64 KiB.
    let (mut reader, mut fed) = cut_in_first_frame(&stream);
    while fed < 20 * frame.len() {
        assert_eq!(reader.direct_room(), 64 * 1024);
        let target = reader
            .direct_read_buffer(READ_MAX)
            .expect("large frames flow");
        let n = (target.len() - 1).min(40_000);
        target[..n].copy_from_slice(&stream[fed..fed + n]);
        fed += n;
        let mut input = reader.direct_filled(n, READ_MAX);
        while reader.next(&mut input, Role::Server, &limits()).is_some() {}
        let held = reader.buffered();
        assert!(held <= frame.len() + 64 * 1024, "{held} bytes held");
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
    let frame = client_frame(Opcode::Text, true, &payload);
    let stream = frame.repeat(2);
    let (mut reader, mut fed) = cut_in_first_frame(&stream);
    let (mut delivered, mut largest, mut offered_past_read_size) = (0, 0, 0);
    while fed < stream.len() {
        // (Every whole frame read so far was taken.)
        let cut = fed % frame.len();
        let target = reader
            .direct_read_buffer(READ_MAX)
            .expect("a large frame flows");
        let offered = target.len();
        assert!(
            cut + offered <= frame.len(),
            "{offered} offered after {cut} bytes"
        );
        largest = largest.max(cut + offered);
        if cut + 64 * 1024 > READ_MAX {
            offered_past_read_size = offered_past_read_size.max(offered);
        }
        let n = offered.min(stream.len() - fed);
        target[..n].copy_from_slice(&stream[fed..fed + n]);
        fed += n;
        let mut input = reader.direct_filled(n, READ_MAX);
        while let Some(event) = reader.next(&mut input, Role::Server, &limits()) {
            assert!(matches!(event, Incoming::Message { data, .. } if data == payload));
            delivered += 1;
        }
    }
    assert_eq!(delivered, 2);
    assert!(
        largest > READ_MAX,
        "the buffer stayed within {largest} bytes"
    );
    assert!(
        offered_past_read_size > 64 * 1024,
        "{offered_past_read_size} bytes a read"
    );
}

/// A reader that was fed the first 20,000 bytes of `stream`, a frame of 16 KiB or more cut
/// there, and the count of bytes fed.
fn cut_in_first_frame(stream: &[u8]) -> (Reader, usize) {
    let mut reader = Reader::default();
    let fed = 20_000;
    let mut first = stream[..fed].to_vec();
    let mut input = reader.feed(&mut first);
    assert!(reader.next(&mut input, Role::Server, &limits()).is_none());
    (reader, fed)
}

/// Frames a little smaller than a read, the largest that still fit one, keep the buffer within
/// the read size too: the loop keeps it as its spare.
#[test]
fn frames_nearly_as_large_as_a_read_stay_within_it() {
    let payload = vec![b'c'; READ_MAX - 20_000];
    let frame = client_frame(Opcode::Binary, true, &payload);
    let stream = frame.repeat(4);
    let (mut reader, mut fed) = cut_in_first_frame(&stream);
    let mut delivered = 0;
    while fed < stream.len() {
        let target = reader
            .direct_read_buffer(READ_MAX)
            .expect("large frames flow");
        let n = target.len().min(stream.len() - fed);
        target[..n].copy_from_slice(&stream[fed..fed + n]);
        fed += n;
        let mut input = reader.direct_filled(n, READ_MAX);
        while let Some(event) = reader.next(&mut input, Role::Server, &limits()) {
            assert!(matches!(event, Incoming::Message { data, .. } if data == payload));
            delivered += 1;
        }
        assert!(
            reader.buffered() <= READ_MAX,
            "{} bytes held",
            reader.buffered()
        );
    }
    assert_eq!(delivered, 4);
}
