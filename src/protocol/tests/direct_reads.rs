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
        let mut input = match reader.direct_read_buffer() {
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
/// largest read; a short read sets it back to 64 KiB beyond the frame in progress.
#[test]
fn direct_reads_grow_only_while_they_come_back_full() {
    let payload: Vec<u8> = (0..65_536).map(|i| b'a' + (i % 26) as u8).collect();
    let frame = client_frame(Opcode::Text, true, &payload);
    let stream = frame.repeat(40);
    let mut reader = Reader::default();
    let mut fed = 20_000;
    let mut first = stream[..fed].to_vec();
    let mut input = reader.feed(&mut first);
    assert!(reader.next(&mut input, Role::Server, &limits()).is_none());
    let mut delivered = 0;
    let mut read = |reader: &mut Reader, fed: &mut usize, short: bool| {
        let target = reader.direct_read_buffer().expect("large frames flow");
        let offered = target.len();
        let n = if short { offered / 2 } else { offered };
        target[..n].copy_from_slice(&stream[*fed..*fed + n]);
        *fed += n;
        let mut input = reader.direct_filled(n, READ_MAX);
        while let Some(event) = reader.next(&mut input, Role::Server, &limits()) {
            assert!(matches!(event, Incoming::Message { data, .. } if data == payload));
            delivered += 1;
        }
        offered
    };
    // The room doubles with each full read; what is offered is at least the room (all of the
    // buffer beyond the frame in progress).
    let mut rooms = Vec::new();
    for _ in 0..5 {
        let room = reader.direct_room();
        let offered = read(&mut reader, &mut fed, false);
        assert!(offered >= room, "{offered} offered for a room of {room}");
        rooms.push(room);
    }
    assert_eq!(
        rooms,
        [64 * 1024, 128 * 1024, 256 * 1024, READ_MAX, READ_MAX]
    );
    assert_eq!(reader.direct_room(), READ_MAX);
    // A short read sets the room back to 64 KiB; full reads grow it again.
    read(&mut reader, &mut fed, true);
    assert_eq!(reader.direct_room(), 64 * 1024);
    read(&mut reader, &mut fed, false);
    assert!(reader.direct_room() > 64 * 1024);
    assert!(delivered >= 10, "{delivered} messages");

    // A peer that never fills a read (slow, or trickling on purpose) is never offered more
    // than 64 KiB: the buffer's used part (what is zero-filled, and so resident) stays within
    // its cut frame and 64 KiB.
    let mut reader = Reader::default();
    let mut fed = 20_000;
    let mut first = stream[..fed].to_vec();
    let mut input = reader.feed(&mut first);
    assert!(reader.next(&mut input, Role::Server, &limits()).is_none());
    while fed < 20 * frame.len() {
        assert_eq!(reader.direct_room(), 64 * 1024);
        let target = reader.direct_read_buffer().expect("large frames flow");
        assert!(
            target.len() <= frame.len() + 64 * 1024,
            "{} offered",
            target.len()
        );
        let n = (target.len() - 1).min(40_000);
        target[..n].copy_from_slice(&stream[fed..fed + n]);
        fed += n;
        let mut input = reader.direct_filled(n, READ_MAX);
        while reader.next(&mut input, Role::Server, &limits()).is_some() {}
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
    let target = reader.direct_read_buffer().expect("a large frame is cut");
    assert!(target.len() <= 128 * 1024, "{} bytes offered", target.len());
}
