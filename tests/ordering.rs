//! Whole and in order: echoes of every size class the writer treats apart (small, corked,
//! straight, batched, larger than a batch), with pings among them, fragmented or not, to a
//! peer that reads in uneven steps; and sends from an application thread while the loop
//! echoes, under its cork.

mod common;
use common::rng::Rng;
use common::*;
use oasisnet::ffi::*;
use std::io::Write;
use std::time::{Duration, Instant};

/// Reads server frames, reassembling fragmented messages: (messages, pong payloads), until
/// `count` messages came or the deadline passed.
fn collect(
    stream: &mut std::net::TcpStream,
    count: usize,
    pace: &mut Rng,
) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    use std::io::Read;
    let mut messages = Vec::new();
    let mut pongs = Vec::new();
    let mut partial: Option<Vec<u8>> = None;
    let deadline = Instant::now() + WAIT;
    while messages.len() < count && Instant::now() < deadline {
        // A reader that sometimes pauses (pacing, nothing waits on it): the server's sends
        // meet a full socket at varying points.
        if pace.below(8) == 0 {
            std::thread::sleep(Duration::from_millis(pace.below(5) as u64));
        }
        let mut head = [0u8; 2];
        if stream.read_exact(&mut head).is_err() {
            break;
        }
        let mut len = (head[1] & 0x7f) as usize;
        if len == 126 {
            let mut b = [0u8; 2];
            stream.read_exact(&mut b).unwrap();
            len = u16::from_be_bytes(b) as usize;
        } else if len == 127 {
            let mut b = [0u8; 8];
            stream.read_exact(&mut b).unwrap();
            len = u64::from_be_bytes(b) as usize;
        }
        assert_eq!(head[1] & 0x80, 0, "server frames are not masked");
        let mut payload = vec![0u8; len];
        stream.read_exact(&mut payload).unwrap();
        let fin = head[0] & 0x80 != 0;
        match head[0] & 0x0f {
            0xa => pongs.push(payload),
            0x1 | 0x2 => {
                assert!(partial.is_none(), "a new message inside a fragmented one");
                if fin {
                    messages.push(payload);
                } else {
                    partial = Some(payload);
                }
            }
            0x0 => {
                let mut whole = partial.take().expect("a continuation without a start");
                whole.extend_from_slice(&payload);
                if fin {
                    messages.push(whole);
                } else {
                    partial = Some(whole);
                }
            }
            other => panic!("unexpected opcode {other:#x}"),
        }
    }
    (messages, pongs)
}

/// 40 rounds of 1 to 24 echoed messages of random sizes (from a few bytes to 528 KiB), written
/// in one go with pings among them, to a peer with a small receive buffer (64 KiB asked, which
/// the kernel doubles): every echo and every pong arrives, whole and in order.
fn echo_round_trips(extra: &[(&str, &str)], seed: u64) {
    init();
    let events = Recorder::new(true);
    let mut list = vec![("send-buffer-size-max", "268435456")];
    list.extend_from_slice(extra);
    let (server, port) = start_server(&events, &list);
    let mut rng = Rng(seed);
    let mut peer = RawClient::connect(port);
    peer.set_receive_buffer(64 * 1024);
    for round in 0..40 {
        let count = 1 + rng.below(24);
        let mut sent = Vec::new();
        let mut bytes = Vec::new();
        let mut pings = Vec::new();
        for i in 0..count {
            let size = match rng.below(6) {
                0 => rng.below(126),
                1 => rng.below(16 * 1024),
                2 => 16 * 1024 + rng.below(48 * 1024),
                3 => 64 * 1024 + rng.below(64 * 1024),
                4 => 120 * 1024 + rng.below(16 * 1024),
                _ => 128 * 1024 + rng.below(400 * 1024),
            };
            let payload: Vec<u8> = (0..size)
                .map(|j| (j as u8) ^ (i as u8) ^ (round as u8))
                .collect();
            bytes.extend(client_frame(0x82, &payload));
            sent.push(payload);
            if rng.below(4) == 0 {
                let ping = format!("ping {round} {i}").into_bytes();
                bytes.extend(client_frame(0x89, &ping));
                pings.push(ping);
            }
        }
        let mut writer = peer.stream.try_clone().unwrap();
        let feeder = std::thread::spawn(move || writer.write_all(&bytes).unwrap());
        let mut pace = Rng(seed ^ round);
        let (messages, pongs) = collect(&mut peer.stream, count, &mut pace);
        feeder.join().unwrap();
        assert_eq!(messages.len(), count, "round {round}: messages lost");
        for (i, (got, want)) in messages.iter().zip(&sent).enumerate() {
            assert!(
                got == want,
                "round {round}: message {i} differs ({} vs {} bytes)",
                got.len(),
                want.len()
            );
        }
        // Pongs may trail the last echo: read those still due.
        let mut pongs = pongs;
        while pongs.len() < pings.len() {
            let frame = peer.read_frame().expect("a pong");
            assert_eq!(frame.0, 0x8a, "round {round}");
            pongs.push(frame.1);
        }
        assert_eq!(pongs, pings, "round {round}: pongs");
    }
    peer.send_frame(0x88, &1000u16.to_be_bytes());
    assert_eq!(peer.read_close_code(), Some(1000));
    destroyWsServer(server);
    oasis_finalize();
}

#[test]
fn echoes_of_mixed_sizes_arrive_whole_and_in_order() {
    echo_round_trips(&[], 0x9e3779b97f4a7c15);
}

#[test]
fn fragmented_echoes_of_mixed_sizes_arrive_whole_and_in_order() {
    echo_round_trips(&[("websocket-fragment-size-max", "20000")], 0x1234567);
}

/// A payload that names its stream and sequence number, checkable at the far end.
fn tagged(tag: u8, seq: u32, size: usize) -> Vec<u8> {
    let mut payload = vec![tag];
    payload.extend_from_slice(&seq.to_be_bytes());
    payload.extend((0..size).map(|j| (j as u8).wrapping_mul(31) ^ (seq as u8) ^ tag));
    payload
}

/// An application thread sends to a connection while its loop handles reads and echoes
/// (sends under the cork from another thread): both streams arrive whole and in order.
#[test]
fn sends_from_another_thread_during_reads_keep_order() {
    init();
    let events = Recorder::new(true);
    let (server, port) = start_server(&events, &[("send-buffer-size-max", "268435456")]);
    let mut peer = RawClient::connect(port);
    let seen = events.wait_for("onOpen", |e| e.iter().any(|(_, s)| *s == Seen::Open));
    let handle = seen.iter().find(|(_, s)| *s == Seen::Open).unwrap().0 as *mut WsConnection;
    assert_eq!(wsConnectionRetain(handle), 0);
    let handle_bits = handle as usize;
    const N: u32 = 3000;
    let sizes = |seq: u32| -> usize {
        match seq % 7 {
            0 => 20 * 1024 + (seq as usize * 37) % 50_000,
            1 => 130 * 1024 + (seq as usize * 13) % 30_000,
            _ => (seq as usize * 101) % 3000,
        }
    };
    let app = std::thread::spawn(move || {
        let handle = handle_bits as *mut WsConnection;
        for seq in 0..N {
            let payload = tagged(b'T', seq, sizes(seq + 3));
            loop {
                let rc = unsafe { wsSendBinary(handle, payload.as_ptr().cast(), payload.len()) };
                if rc == 0 {
                    break;
                }
                assert_eq!(errno(), libc::EAGAIN, "send {seq}: {}", last_error());
                std::thread::sleep(Duration::from_millis(1)); // (a retry's back-off)
            }
        }
    });
    let mut writer = peer.stream.try_clone().unwrap();
    let feeder = std::thread::spawn(move || {
        let mut seq = 0;
        while seq < N {
            let mut bytes = Vec::new();
            for _ in 0..(1 + seq % 11) {
                if seq == N {
                    break;
                }
                bytes.extend(client_frame(0x82, &tagged(b'E', seq, sizes(seq))));
                seq += 1;
            }
            writer.write_all(&bytes).unwrap();
        }
    });
    let mut pace = Rng(77);
    let (messages, _) = collect(&mut peer.stream, 2 * N as usize, &mut pace);
    feeder.join().unwrap();
    app.join().unwrap();
    let mut next = [0u32; 2];
    for (i, m) in messages.iter().enumerate() {
        let stream = match m[0] {
            b'E' => 0,
            b'T' => 1,
            other => panic!("message {i}: bad tag {other}"),
        };
        let seq = u32::from_be_bytes(m[1..5].try_into().unwrap());
        assert_eq!(seq, next[stream], "message {i} of stream {}", m[0] as char);
        let size = if stream == 0 {
            sizes(seq)
        } else {
            sizes(seq + 3)
        };
        assert!(
            *m == tagged(m[0], seq, size),
            "message {i}: content differs"
        );
        next[stream] += 1;
    }
    assert_eq!(next, [N, N], "all messages arrived");
    wsConnectionRelease(handle);
    peer.send_frame(0x88, &1000u16.to_be_bytes());
    assert_eq!(peer.read_close_code(), Some(1000));
    destroyWsServer(server);
    oasis_finalize();
}
