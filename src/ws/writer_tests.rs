//! The writer over a real socket pair: what waits in the send buffer and what goes out at
//! once, under the event loop's cork and outside it, and where a drained send buffer goes (the
//! thread's spare, the loop's spare, or freed).

use super::connection::Writer;
use crate::protocol::FrameSink;
use crate::transport::Transport;
use std::io::Read;
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// A drained send buffer goes to the thread's spare: an idle connection owns none, and the
/// next connection that queues something on this thread reuses it.
#[test]
fn a_drained_send_buffer_is_not_kept_by_its_connection() {
    let (mut writer, client) = writer_over_loopback();
    writer.corked = true;
    writer.write_raw(&[b'x'; 300]);
    assert!(writer.capacity() >= 300, "queued while corked");
    writer.uncork();
    assert_eq!(writer.queued(), 0);
    assert_eq!(
        writer.capacity(),
        0,
        "drained: the buffer went to the spare"
    );
    writer.corked = true;
    writer.write_raw(b"again");
    assert!(writer.capacity() >= 300, "the spare came back");
    writer.uncork();
    let mut received = vec![0u8; 305];
    (&client).read_exact(&mut received).unwrap();
    assert!(received.ends_with(b"xagain"));
}

/// The event loop lends its spare send buffer for a cork: replies collect in it, and once they
/// are written it goes back to the loop, not to the connection.
#[test]
fn a_send_buffer_lent_for_a_cork_goes_back_to_the_loop() {
    let (mut writer, client) = writer_over_loopback();
    let mut spare = Vec::with_capacity(1000);
    writer.cork_with(&mut spare);
    assert_eq!(spare.capacity(), 0, "lent to the writer");
    writer.write_raw(b"corked");
    writer.uncork_into(&mut spare);
    assert_eq!(writer.queued(), 0);
    assert_eq!(
        writer.capacity(),
        0,
        "an idle connection owns no send buffer"
    );
    assert!(
        spare.capacity() >= 1000 && spare.is_empty(),
        "back, cleared"
    );
    // Nothing sent under the cork: the buffer comes back all the same.
    writer.cork_with(&mut spare);
    writer.uncork_into(&mut spare);
    assert!(spare.capacity() >= 1000);
    let mut received = [0u8; 6];
    (&client).read_exact(&mut received).unwrap();
    assert_eq!(&received, b"corked");
}

/// A send buffer that a read's replies grew past 16 KiB goes back to the loop as its spare
/// (up to the size of a read), so that the next read's replies need no allocation and no growth.
#[test]
fn a_send_buffer_grown_by_a_reads_replies_goes_back_to_the_loop() {
    let (mut writer, client) = writer_over_loopback();
    roomy(&writer, &client);
    let replies = 16 * 2048;
    let reader = std::thread::spawn(move || {
        let mut received = vec![0u8; 2 * replies];
        (&client).read_exact(&mut received).unwrap();
        received
    });
    let mut spare = Vec::new();
    for round in 0..2 {
        writer.cork_with(&mut spare);
        for _ in 0..16 {
            writer.write_raw(&[b'r'; 2048]);
        }
        writer.uncork_into(&mut spare);
        assert_eq!(writer.queued(), 0, "the uncork wrote the replies");
        if round == 0 {
            assert!(
                spare.capacity() >= replies,
                "kept by the loop: {} bytes",
                spare.capacity()
            );
        }
    }
    assert!(spare.capacity() >= replies, "and again after the next read");
    assert_eq!(writer.capacity(), 0, "the connection keeps none");
    assert!(reader.join().unwrap().iter().all(|&b| b == b'r'));
}

/// Outside a cork a frame below 16 KiB is copied into the send buffer and written at once (one
/// send(2)): it arrives without waiting for another event, and the connection keeps no send
/// buffer afterwards.
#[test]
fn uncorked_small_frames_go_out_at_once_and_leave_no_send_buffer() {
    let (mut writer, client) = writer_over_loopback();
    let larger = vec![b'L'; 4096];
    for payload in [&b"small"[..], &larger] {
        writer.frame(&[0x82, 0x7e], payload, None);
        assert_eq!(
            writer.queued(),
            0,
            "{} bytes: written at once",
            payload.len()
        );
        assert_eq!(writer.capacity(), 0, "no send buffer kept");
        let mut received = vec![0u8; 2 + payload.len()];
        (&client).read_exact(&mut received).unwrap();
        assert_eq!(&received[2..], payload);
    }
}

/// Under the cork, a read's first large reply goes out straight from the caller's buffer and
/// the next ones wait in the send buffer, to go out together at the uncork; the next read's
/// first large reply goes straight again. Everything arrives whole and in order.
#[test]
fn under_the_cork_large_replies_after_the_first_go_out_together() {
    let (mut writer, client) = writer_over_loopback();
    roomy(&writer, &client);
    let mut spare = Vec::with_capacity(1000);
    let header = [0x82, 0x7e, 0x50, 0x00];
    let payloads: Vec<Vec<u8>> = (0..6u8).map(|i| vec![b'a' + i; 0x5000]).collect();
    let framed = header.len() + 0x5000;
    let mut expected = Vec::new();
    for read in payloads.chunks(3) {
        writer.cork_with(&mut spare);
        for (i, payload) in read.iter().enumerate() {
            writer.frame(&header, payload, None);
            expected.extend_from_slice(&header);
            expected.extend_from_slice(payload);
            assert_eq!(
                writer.queued(),
                i * framed,
                "reply {i}: the first written at once, the others waiting"
            );
        }
        writer.uncork_into(&mut spare);
        assert_eq!(writer.queued(), 0, "the uncork wrote the waiting replies");
    }
    let mut received = vec![0u8; expected.len()];
    (&client).read_exact(&mut received).unwrap();
    assert!(received == expected, "every reply whole, in order");
}

/// A reply of CORK_FLUSH (128 KiB) or more is not copied whole to wait under the cork: it goes
/// straight when nothing waits before it, also after the read's first large reply, and only
/// what the socket did not take waits.
#[test]
fn under_the_cork_a_reply_of_128_kib_or_more_goes_straight() {
    let (mut writer, client) = writer_over_loopback();
    // Socket buffers of a known size (the kernel doubles what is asked): whatever the host's
    // defaults, 8 MiB cannot go at once while the peer does not read.
    set_buffer_sizes(&writer, &client, 256 * 1024);
    let mut spare = Vec::with_capacity(1000);
    let small_header = [0x82, 0x7e, 0x50, 0x00];
    let first = vec![b'f'; 0x5000];
    let large = vec![b'L'; 8 * 1024 * 1024];
    let large_header = [0x82, 0x7f, 0, 0, 0, 0, 0, 0x80, 0, 0];
    writer.cork_with(&mut spare);
    writer.frame(&small_header, &first, None);
    writer.frame(&large_header, &large, None);
    assert!(writer.queued() > 0, "the socket cannot take 8 MiB at once");
    assert!(
        writer.capacity() < large.len(),
        "only the part the socket did not take was copied: {} bytes held",
        writer.capacity()
    );
    let expected = [&small_header[..], &first, &large_header, &large].concat();
    let total = expected.len();
    let reader = std::thread::spawn(move || {
        let mut received = vec![0u8; total];
        (&client).read_exact(&mut received).unwrap();
        received
    });
    writer.uncork_into(&mut spare);
    drain(&mut writer);
    assert!(
        reader.join().unwrap() == expected,
        "both frames whole, in order"
    );
}

/// A flush in the middle of a cork (small replies reached CORK_FLUSH) keeps the send buffer,
/// emptied, for the read's next replies; the uncork then gives it to the loop.
#[test]
fn a_flush_in_the_middle_of_a_cork_keeps_the_send_buffer() {
    let (mut writer, client) = writer_over_loopback();
    roomy(&writer, &client);
    let header = [0x82, 0x7e, 0x20, 0x00];
    let payload = vec![b's'; 0x2000];
    let framed = header.len() + payload.len();
    let count = 20;
    let reader = std::thread::spawn(move || read_all_of(client, count * framed));
    let mut spare = Vec::new();
    writer.cork_with(&mut spare);
    let mut flushed = false;
    for _ in 0..count {
        let before = writer.queued();
        writer.frame(&header, &payload, None);
        if writer.queued() < before {
            flushed = true;
            assert_eq!(writer.queued(), 0, "the flush wrote everything");
            assert!(
                writer.capacity() >= 128 * 1024 - framed,
                "kept while corked: {} bytes",
                writer.capacity()
            );
        }
    }
    assert!(flushed, "the replies reached 128 KiB and were written");
    writer.uncork_into(&mut spare);
    assert_eq!(writer.capacity(), 0, "the connection keeps none");
    assert!(spare.capacity() >= 128 * 1024 - framed, "the loop has it");
    let expected = [&header[..], &payload].concat().repeat(count);
    assert!(reader.join().unwrap() == expected);
}

/// The same when a large reply fills the batch and goes out with it: the send buffer, emptied,
/// stays for the read's next replies, and did not have to hold that reply.
#[test]
fn a_batch_written_in_the_middle_of_a_cork_keeps_the_send_buffer() {
    let (mut writer, client) = writer_over_loopback();
    roomy(&writer, &client);
    let header = [0x82, 0x7e, 0xc0, 0x00];
    let payload = vec![b'p'; 0xc000];
    let total = 4 * (header.len() + payload.len());
    let reader = std::thread::spawn(move || read_all_of(client, total));
    let mut spare = Vec::new();
    writer.cork_with(&mut spare);
    // The first goes straight; the second and third wait, and the fourth would take them past
    // 128 KiB: it goes out with them, from its own buffer.
    for i in 0..4 {
        writer.frame(&header, &payload, None);
        let waiting = [0, 1, 2, 0][i] * (header.len() + payload.len());
        assert_eq!(writer.queued(), waiting, "after reply {i}");
    }
    assert!(
        writer.capacity() >= 2 * payload.len(),
        "kept while corked: {} bytes",
        writer.capacity()
    );
    assert!(
        writer.capacity() < 3 * payload.len(),
        "the reply that filled the batch was not copied: {} bytes held",
        writer.capacity()
    );
    writer.uncork_into(&mut spare);
    assert_eq!(writer.capacity(), 0, "the connection keeps none");
    assert!(spare.capacity() >= 2 * payload.len(), "the loop has it");
    let expected = [&header[..], &payload].concat().repeat(4);
    assert!(reader.join().unwrap() == expected);
}

/// A large reply that fills a batch of small ones counts as the read's first large reply:
/// the next large one waits to join the next batch rather than take a write of its own.
#[test]
fn after_a_batch_a_large_reply_filled_the_next_one_waits() {
    let (mut writer, client) = writer_over_loopback();
    roomy(&writer, &client);
    let small_header = [0x82, 0x7e, 0x20, 0x00];
    let small = vec![b's'; 0x2000];
    let large_header = [0x82, 0x7e, 0xc0, 0x00];
    let large = vec![b'L'; 0xc000];
    let mut expected = Vec::new();
    let mut spare = Vec::new();
    writer.cork_with(&mut spare);
    for _ in 0..10 {
        writer.frame(&small_header, &small, None);
        expected.extend_from_slice(&[&small_header[..], &small].concat());
    }
    assert!(writer.queued() > 0, "the small replies wait");
    writer.frame(&large_header, &large, None);
    assert_eq!(writer.queued(), 0, "the large reply went out with them");
    writer.frame(&large_header, &large, None);
    assert_eq!(
        writer.queued(),
        large_header.len() + large.len(),
        "the next large reply waits for the next batch"
    );
    expected.extend_from_slice(&[&large_header[..], &large].concat().repeat(2));
    let total = expected.len();
    let reader = std::thread::spawn(move || read_all_of(client, total));
    writer.uncork_into(&mut spare);
    assert!(
        reader.join().unwrap() == expected,
        "every reply whole, in order"
    );
}

/// The reply that fills the batch goes out with the waiting replies in one write; when the
/// socket takes only part of that write (a peer that does not read), whatever it did not take
/// waits, in order, whether the write ended inside the waiting replies or inside the frame's
/// payload: several sizes put the socket's limit at different places.
#[test]
fn a_batch_a_full_socket_cuts_short_arrives_whole_and_in_order() {
    for (size, count) in [(0x5000, 24), (0xc000, 9), (0x18000, 6), (0x4321, 40)] {
        let (mut writer, client) = writer_over_loopback();
        set_buffer_sizes(&writer, &client, 64 * 1024);
        let mut spare = Vec::new();
        let mut expected = Vec::new();
        writer.cork_with(&mut spare);
        for i in 0..count {
            // Headers and payloads that differ from frame to frame: a frame out of place, or
            // bytes lost or sent twice, change what the peer reads.
            let header = [0x82, 0x7e, i as u8, (size >> 8) as u8];
            let payload = vec![b'a' + (i % 26) as u8; size];
            writer.frame(&header, &payload, None);
            expected.extend_from_slice(&header);
            expected.extend_from_slice(&payload);
        }
        assert!(
            writer.queued() > 0,
            "{size}: the socket cannot take all of it"
        );
        let total = expected.len();
        let reader = std::thread::spawn(move || read_all_of(client, total));
        writer.uncork_into(&mut spare);
        drain(&mut writer);
        assert!(
            reader.join().unwrap() == expected,
            "{size} x {count}: every frame whole, in order"
        );
    }
}

/// What the peer reads, `total` bytes, or a failure after 10 s: bytes lost fail the test
/// rather than hang it.
fn read_all_of(client: TcpStream, total: usize) -> Vec<u8> {
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut received = vec![0u8; total];
    (&client).read_exact(&mut received).unwrap();
    received
}

/// A connection that ends inside its read's cork (the peer's close frame answered, the socket
/// closed) gives the send buffer back to the loop, with any bytes it can no longer write.
#[test]
fn a_cork_ended_by_the_connection_gives_the_send_buffer_back() {
    let (mut writer, _client) = writer_over_loopback();
    let mut spare = Vec::with_capacity(1000);
    writer.cork_with(&mut spare);
    writer.write_raw(b"close");
    writer.flush();
    assert!(writer.capacity() > 0, "kept while corked");
    writer.end_cork_into(&mut spare);
    assert_eq!(writer.capacity(), 0, "the connection keeps none");
    assert!(spare.capacity() >= 1000, "back with the loop");
    // Bytes that wait when the socket is gone go with it.
    writer.cork_with(&mut spare);
    writer.write_raw(b"never written");
    writer.transport = None;
    writer.end_cork_into(&mut spare);
    assert_eq!(writer.capacity(), 0);
    assert!(spare.capacity() >= 1000 && spare.is_empty());
}

/// An uncork that the socket does not take whole keeps the rest queued (and the lent buffer with
/// it) until the socket drains; then the buffer, grown past what the thread keeps, is freed
/// (the flushes of writable edges have no loop to give it to).
#[test]
fn an_uncork_into_a_full_socket_keeps_the_rest_queued() {
    let (mut writer, client) = writer_over_loopback();
    let mut spare = Vec::with_capacity(1000);
    writer.cork_with(&mut spare);
    // More than any socket takes while its peer does not read.
    let total = 64 * 1024 * 1024;
    let chunk = vec![b'q'; 1024 * 1024];
    for _ in 0..total / chunk.len() {
        writer.write_raw(&chunk);
    }
    writer.uncork_into(&mut spare);
    let waiting = writer.queued();
    assert!(
        waiting > 0 && waiting < total,
        "partly written: {waiting} waiting"
    );
    assert_eq!(
        spare.capacity(),
        0,
        "the buffer stays with the bytes that wait"
    );
    let reader = std::thread::spawn(move || {
        let mut received = 0;
        let mut buffer = vec![0u8; 1 << 20];
        while received < total {
            let n = (&client).read(&mut buffer).unwrap();
            assert!(n > 0 && buffer[..n].iter().all(|b| *b == b'q'));
            received += n;
        }
    });
    drain(&mut writer);
    reader.join().unwrap();
    assert_eq!(
        writer.capacity(),
        0,
        "drained: the connection keeps no buffer"
    );
}

/// A client's masked frames into a socket that takes a little at a time: the send buffer
/// makes room by moving what waits to its front, also between a frame's header and its
/// payload, and every payload is still masked where it lies, so the peer unmasks each whole.
#[test]
fn masked_frames_arrive_whole_while_the_send_buffer_makes_room() {
    use crate::protocol::frame::{EncodedHeader, Opcode, apply_mask};
    let (mut writer, client) = writer_over_loopback();
    set_buffer_sizes(&writer, &client, 32 * 1024);
    client.set_nonblocking(true).unwrap();
    let mut received = Vec::new();
    let mut sent = Vec::new();
    let mut seed = 7u32;
    let mut most_held = 0;
    for round in 0..400u32 {
        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
        let len = 200 + (seed >> 16) as usize % 5000;
        let payload: Vec<u8> = (0..len).map(|i| (i as u32 + round) as u8).collect();
        let mask = round.to_le_bytes();
        let header = EncodedHeader::new(Opcode::Binary, true, len, Some(mask));
        writer.frame(&header.padded()[..header.size()], &payload, Some(mask));
        most_held = most_held.max(writer.capacity());
        sent.push(payload);
        // The peer takes a little of what came: the send buffer never drains.
        let mut some = [0u8; 2000];
        if let Ok(n) = (&client).read(&mut some) {
            received.extend_from_slice(&some[..n]);
        }
    }
    client.set_nonblocking(false).unwrap();
    let total: usize = sent.iter().map(|p| p.len() + 8).sum();
    // The buffer made room from what was written: it never held most of what went through.
    assert!(
        most_held < total / 2,
        "the send buffer grew to {most_held} bytes for {total} sent"
    );
    let rest = total - received.len();
    let reader = std::thread::spawn(move || read_all_of(client, rest));
    drain(&mut writer);
    received.extend(reader.join().unwrap());
    let mut at = 0;
    for (index, payload) in sent.iter().enumerate() {
        let len = u16::from_be_bytes([received[at + 2], received[at + 3]]) as usize;
        assert_eq!(len, payload.len(), "frame {index}'s length");
        let mask: [u8; 4] = received[at + 4..at + 8].try_into().unwrap();
        let mut bytes = received[at + 8..at + 8 + len].to_vec();
        apply_mask(&mut bytes, mask);
        assert!(bytes == *payload, "frame {index}'s payload");
        at += 8 + len;
    }
    assert_eq!(at, received.len());
}

/// A writer over the server end of a loopback connection (non-blocking), and the client end.
fn writer_over_loopback() -> (Writer, TcpStream) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    server.set_nonblocking(true).unwrap();
    let server = mio::net::TcpStream::from_std(server);
    (Writer::new(Some(Transport::Plain(server))), client)
}

/// Flushes until nothing waits: the test's reader thread is taking the bytes.
fn drain(writer: &mut Writer) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while writer.queued() > 0 {
        assert!(
            Instant::now() < deadline,
            "{} bytes never drained",
            writer.queued()
        );
        writer.flush();
        std::thread::yield_now();
    }
}

/// Socket buffers of 1 MiB at both ends (the kernel doubles what is asked), so that the writes
/// of a test take everything it sends at once, whatever the host's defaults.
fn roomy(writer: &Writer, client: &TcpStream) {
    set_buffer_sizes(writer, client, 1 << 20);
}

/// The writer's send buffer and the client's receive buffer, each of `bytes` (as asked: the
/// kernel doubles it, within its limits).
fn set_buffer_sizes(writer: &Writer, client: &TcpStream, bytes: i32) {
    let Some(Transport::Plain(socket)) = writer.transport.as_ref() else {
        unreachable!("a plain socket");
    };
    let sndbuf = crate::transport::set_int_option(socket, libc::SOL_SOCKET, libc::SO_SNDBUF, bytes);
    let rcvbuf = crate::transport::set_int_option(client, libc::SOL_SOCKET, libc::SO_RCVBUF, bytes);
    assert!(sndbuf && rcvbuf, "setsockopt");
}
