//! Hostile and broken peers against a server of this library: each must end in the right
//! close code and callbacks, never a crash or a hang.

mod common;
use common::*;
use oasisnet::ffi::*;
use std::io::Write;

fn server_closes_with(port: u16, events: &Recorder, frames: &[(u8, Vec<u8>)], code: u16) {
    let before = events.count(is_close);
    let mut peer = RawClient::connect(port);
    for (first, payload) in frames {
        peer.send_frame(*first, payload);
    }
    assert_eq!(peer.read_close_code(), Some(code));
    peer.send_frame(0x88, &code.to_be_bytes());
    assert!(
        peer.sees_eof(),
        "server closes TCP after the closing handshake"
    );
    events.wait_for("onClose", |e| {
        e.iter().filter(|(_, s)| is_close(s)).count() > before
    });
    let seen = events.seen();
    let close = seen.iter().rev().find(|s| is_close(s)).unwrap();
    assert!(
        matches!(close, Seen::Close(c, _) if *c == code as i32),
        "{close:?}"
    );
    let error = seen
        .iter()
        .rev()
        .find(|s| matches!(s, Seen::Error(_)))
        .unwrap();
    assert_eq!(*error, Seen::Error(code as i32), "onError precedes onClose");
}

#[test]
fn protocol_utf8_and_size_violations_give_onerror_and_close_codes() {
    init();
    let events = Recorder::new(true);
    let (server, port) = start_server(&events, &[("websocket-message-size-max", "1000")]);
    // Reserved bits, reserved opcode, continuation without a start, fragmented ping.
    server_closes_with(port, &events, &[(0x81 | 0x40, b"x".to_vec())], 1002);
    server_closes_with(port, &events, &[(0x83, b"x".to_vec())], 1002);
    server_closes_with(port, &events, &[(0x80, b"x".to_vec())], 1002);
    server_closes_with(port, &events, &[(0x09, b"x".to_vec())], 1002);
    // Invalid UTF-8, whole and split across fragments (fails on the fragment that breaks it).
    server_closes_with(port, &events, &[(0x81, vec![0xce, 0xba, 0xff])], 1007);
    server_closes_with(
        port,
        &events,
        &[(0x01, vec![0xce]), (0x00, vec![0xff])],
        1007,
    );
    // Past the first blocks of a long frame (unmasked with wider registers where the
    // processor has them).
    let mut long = vec![b'a'; 300];
    long[290] = 0xff;
    server_closes_with(port, &events, &[(0x81, long)], 1007);
    // Too big: one frame, and fragments adding up.
    server_closes_with(port, &events, &[(0x82, vec![0; 1001])], 1009);
    server_closes_with(
        port,
        &events,
        &[(0x02, vec![0; 600]), (0x80, vec![0; 600])],
        1009,
    );
    // A 64-bit length with its most significant bit set (RFC 6455 5.2): a protocol error,
    // known from the header alone.
    let mut peer = RawClient::connect(port);
    let mut header = vec![0x82, 0xff];
    header.extend((1u64 << 63).to_be_bytes());
    header.extend([1, 2, 3, 4]);
    peer.stream.write_all(&header).unwrap();
    assert_eq!(peer.read_close_code(), Some(1002));
    drop(peer);
    // The server keeps serving afterwards.
    let mut peer = RawClient::connect(port);
    peer.send_frame(0x81, b"still here");
    assert_eq!(peer.read_frame(), Some((0x81, b"still here".to_vec())));
    drop(peer);
    destroyWsServer(server);
    oasis_finalize();
}

#[test]
fn fragments_are_reassembled_and_pings_answered_and_reported() {
    init();
    let events = Recorder::new(true);
    let (server, port) = start_server(&events, &[]);
    let mut peer = RawClient::connect(port);
    peer.send_frame(0x01, "καλη".as_bytes());
    peer.send_frame(0x89, b"ping!"); // control frame between fragments
    peer.send_frame(0x80, "μέρα".as_bytes());
    assert_eq!(peer.read_frame(), Some((0x8a, b"ping!".to_vec())));
    assert_eq!(
        peer.read_frame(),
        Some((0x81, "καλημέρα".as_bytes().to_vec()))
    );
    peer.send_frame(0x8a, b"unsolicited");
    events.wait_for("pong event", |e| {
        e.iter().any(|(_, s)| {
            *s == Seen::Message(ws_message_t::kWsMessagePong, b"unsolicited".to_vec())
        })
    });
    assert!(events.seen().contains(&Seen::Message(
        ws_message_t::kWsMessagePing,
        b"ping!".to_vec()
    )));
    peer.send_frame(0x88, &1000u16.to_be_bytes());
    assert_eq!(peer.read_close_code(), Some(1000));
    destroyWsServer(server);
    oasis_finalize();
}

/// A reply larger than `send-buffer-size-max` waits under the cork for the rest of the read's
/// replies: that is not a peer that stopped reading, so a ping in the same read is answered.
#[test]
fn a_ping_behind_a_large_reply_in_one_read_is_answered() {
    init();
    let events = Recorder::new(true);
    let (server, port) = start_server(&events, &[("send-buffer-size-max", "1024")]);
    let mut peer = RawClient::connect(port);
    let text = vec![b't'; 4000];
    let mut both = client_frame(0x81, &text);
    both.extend(client_frame(0x89, b"still there?"));
    peer.stream.write_all(&both).unwrap();
    assert_eq!(peer.read_frame(), Some((0x81, text)));
    assert_eq!(peer.read_frame(), Some((0x8a, b"still there?".to_vec())));
    peer.send_frame(0x88, &1000u16.to_be_bytes());
    assert_eq!(peer.read_close_code(), Some(1000));
    destroyWsServer(server);
    oasis_finalize();
}

#[test]
fn vanished_peer_and_garbage_end_in_1006_or_refusal() {
    init();
    let events = Recorder::new(true);
    let (server, port) = start_server(&events, &[]);
    // Vanishes mid-frame: header promises 100 bytes, 3 arrive, then the socket closes.
    let mut peer = RawClient::connect(port);
    peer.stream
        .write_all(&[0x82, 0x80 | 100, 1, 2, 3, 4, 9, 9, 9])
        .unwrap();
    drop(peer);
    events.wait_for("onClose 1006", |e| {
        e.iter().any(|(_, s)| matches!(s, Seen::Close(1006, _)))
    });
    // Garbage instead of an upgrade request: a 400 answer, no callbacks.
    let mut raw = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    raw.write_all(b"\x16\x03\x01\x02\x00 not http at all\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut raw, &mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert_eq!(events.count(|s| *s == Seen::Open), 1);
    destroyWsServer(server);
    oasis_finalize();
}

#[test]
fn silent_peers_time_out() {
    init();
    let events = Recorder::new(true);
    let (server, port) = start_server(
        &events,
        &[("handshake-timeout-ms", "200"), ("close-timeout-ms", "300")],
    );
    // Never sends an upgrade request: dropped after the handshake timeout.
    let mut idle = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    idle.set_read_timeout(Some(WAIT)).unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(
        std::io::Read::read(&mut idle, &mut buf).unwrap(),
        0,
        "server dropped the silent socket"
    );
    // Never answers our close frame: onClose 1006 after the close timeout.
    let peer = RawClient::connect(port);
    let connection = events.wait_for("onOpen", |e| e.iter().any(|(_, s)| *s == Seen::Open))[0].0;
    assert_eq!(wsCloseConnection(connection as *mut WsConnection), 0);
    events.wait_for("onClose", |e| e.iter().any(|(_, s)| is_close(s)));
    assert!(events.seen().contains(&Seen::Close(1006, Vec::new())));
    drop(peer);
    destroyWsServer(server);
    oasis_finalize();
}

#[test]
fn send_buffer_cap_gives_eagain_and_memory_stays_bounded() {
    init();
    let events = Recorder::new(false);
    let (server, port) = start_server(
        &events,
        &[
            ("send-buffer-size-max", "65536"),
            ("close-timeout-ms", "300"),
        ],
    );
    let _peer = RawClient::connect(port); // never reads
    let connection = events.wait_for("onOpen", |e| e.iter().any(|(_, s)| *s == Seen::Open))[0].0
        as *mut WsConnection;
    let chunk = vec![7u8; 16 * 1024];
    let mut accepted = 0usize;
    let mut refused = false;
    for _ in 0..10_000 {
        if unsafe { wsSendBinary(connection, chunk.as_ptr().cast(), chunk.len()) } == 0 {
            accepted += chunk.len();
        } else {
            assert_eq!(errno(), libc::EAGAIN, "{}", last_error());
            refused = true;
            break;
        }
    }
    assert!(refused, "a peer that never reads must end in EAGAIN");
    assert!(
        accepted < 64 << 20,
        "accepted {accepted} bytes before pushing back"
    );
    destroyWsServer(server);
    oasis_finalize();
}

#[test]
fn a_failed_fragment_still_closes_the_socket_of_a_retained_connection() {
    init();
    let events = Recorder::new(false);
    let (server, port) = start_server(&events, &[]);
    let open_descriptors = || std::fs::read_dir("/proc/self/fd").unwrap().count();
    let before = open_descriptors();
    let mut peer = RawClient::connect(port);
    let handle = events.wait_for("onOpen", |e| e.iter().any(|(_, s)| *s == Seen::Open))[0].0
        as *mut WsConnection;
    // The application keeps the connection: the socket must still be closed after the failure.
    assert_eq!(wsConnectionRetain(handle), 0);
    peer.send_frame(0x01, &[0xce]);
    peer.send_frame(0x80, &[0xff]);
    assert_eq!(peer.read_close_code(), Some(1007));
    peer.send_frame(0x88, &1007u16.to_be_bytes());
    assert!(
        peer.sees_eof(),
        "the server closes TCP after failing the connection"
    );
    events.wait_for("onClose 1007", |e| {
        e.iter().any(|(_, s)| matches!(s, Seen::Close(1007, _)))
    });
    drop(peer);
    // Both ends closed: the server's socket goes too, while the handle is still held. (No event
    // announces a closed descriptor, so this polls, bounded.)
    let deadline = std::time::Instant::now() + WAIT;
    while open_descriptors() > before {
        assert!(
            std::time::Instant::now() < deadline,
            "the server socket of a retained connection stayed open"
        );
        std::thread::yield_now();
    }
    assert_eq!(send_text(handle, "late"), -1);
    assert_eq!(wsConnectionRelease(handle), 0);
    destroyWsServer(server);
    oasis_finalize();
}

#[test]
fn control_frames_do_not_count_against_the_message_size_limit() {
    init();
    let events = Recorder::new(true);
    let (server, port) = start_server(&events, &[("websocket-message-size-max", "1000")]);
    let mut peer = RawClient::connect(port);
    peer.send_frame(0x01, &[b'a'; 990]);
    peer.send_frame(0x89, &[b'p'; 100]); // a ping while the message is 10 bytes from the limit
    peer.send_frame(0x80, &[b'b'; 10]);
    assert_eq!(peer.read_frame(), Some((0x8a, vec![b'p'; 100])));
    let (first, echo) = peer.read_frame().unwrap();
    assert_eq!((first, echo.len()), (0x81, 1000));
    drop(peer);
    destroyWsServer(server);
    oasis_finalize();
}

fn rss_kib() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// An application streams to a peer that reads steadily but a little slower, and retries on
/// EAGAIN: no more than `send-buffer-size-max` (16 MiB) ever waits, and memory stays within a
/// few times that, though the send buffer never drains completely and hundreds of MiB go
/// through it.
#[test]
fn a_send_buffer_that_never_drains_does_not_grow_with_what_was_sent() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::{Duration, Instant};
    init();
    let events = Recorder::new(false);
    let (server, port) = start_server(&events, &[("send-buffer-size-max", "16777216")]);
    let peer = RawClient::connect(port);
    let seen = events.wait_for("onOpen", |e| e.iter().any(|(_, s)| *s == Seen::Open));
    let handle = seen.iter().find(|(_, s)| *s == Seen::Open).unwrap().0 as *mut WsConnection;
    assert_eq!(wsConnectionRetain(handle), 0);
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let mut reader = peer.stream.try_clone().unwrap();
    let drainer = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            use std::io::Read;
            let mut buffer = vec![0u8; 64 * 1024];
            while !stop.load(Ordering::Relaxed) {
                if !matches!(reader.read(&mut buffer), Ok(n) if n > 0) {
                    break;
                }
                // (Pacing, not waiting for anything: a reader a little slower than the sender.)
                std::thread::sleep(Duration::from_micros(500));
            }
        })
    };
    let before = rss_kib();
    let payload = vec![b'v'; 8 * 1024];
    let start = Instant::now();
    let (mut sent, mut peak) = (0usize, before);
    while start.elapsed() < Duration::from_secs(4) {
        if unsafe { wsSendBinary(handle, payload.as_ptr().cast(), payload.len()) } == 0 {
            sent += payload.len();
            if sent.is_multiple_of(1 << 20) {
                peak = peak.max(rss_kib());
            }
        } else {
            assert_eq!(errno(), libc::EAGAIN, "{}", last_error());
            std::thread::yield_now();
        }
    }
    let grown = peak.max(rss_kib()).saturating_sub(before) >> 10;
    stop.store(true, Ordering::Relaxed);
    wsConnectionRelease(handle);
    drop(peer);
    drainer.join().unwrap();
    destroyWsServer(server);
    oasis_finalize();
    assert!(sent > 64 << 20, "the peer read only {} MiB", sent >> 20);
    assert!(
        grown < 64,
        "RSS grew by {grown} MiB while at most 16 MiB waited ({} MiB sent)",
        sent >> 20
    );
}

/// Pings the server's delegate received, and a signal for waiting on the count.
static PINGS: parking_lot::Mutex<usize> = parking_lot::Mutex::new(0);
static PINGED: parking_lot::Condvar = parking_lot::Condvar::new();

unsafe extern "C" fn count_pings(_user: *mut std::ffi::c_void, event: *mut WsEvent) {
    if wsEventMessageType(event) == ws_message_t::kWsMessagePing {
        *PINGS.lock() += 1;
        PINGED.notify_all();
    }
}

#[test]
fn a_peer_that_pings_and_never_reads_cannot_grow_memory() {
    init();
    let (server, port) = start_server_with(
        &message_vtable(None, Some(count_pings)),
        std::ptr::null_mut(),
        &[("send-buffer-size-max", "65536")],
    );
    let mut peer = RawClient::connect(port);
    let before = rss_kib();
    // 200,000 pings of 125 bytes that are never read back: 26 MB of pongs if all were queued.
    let mut frames = Vec::new();
    for _ in 0..1000 {
        frames.extend_from_slice(&[0x89, 0x80 | 125, 0, 0, 0, 0]);
        frames.extend_from_slice(&[b'p'; 125]);
    }
    for _ in 0..200 {
        std::io::Write::write_all(&mut peer.stream, &frames).unwrap();
    }
    let deadline = std::time::Instant::now() + WAIT;
    let mut pings = PINGS.lock();
    while *pings < 200_000 {
        if PINGED.wait_until(&mut pings, deadline).timed_out() {
            assert!(
                *pings >= 200_000,
                "pings not all handled ({} of 200000)",
                *pings
            );
        }
    }
    drop(pings);
    let grown = rss_kib().saturating_sub(before);
    assert!(grown < 8 * 1024, "RSS grew by {grown} KiB");
    drop(peer);
    destroyWsServer(server);
    oasis_finalize();
}

/// What the server answers a raw client's `request`: a refusal read to the end (the server
/// closes after it), or the head of a 101 with the socket left open for frames.
fn handshake_answer(port: u16, request: &str) -> (String, Option<RawClient>) {
    use std::io::Read;
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(stream.read(&mut byte).unwrap(), 1, "closed mid-answer");
        head.push(byte[0]);
    }
    if head.starts_with(b"HTTP/1.1 101 ") {
        return (String::from_utf8(head).unwrap(), Some(RawClient { stream }));
    }
    stream
        .read_to_end(&mut head)
        .expect("the server closes after a refusal");
    (String::from_utf8(head).unwrap(), None)
}

/// The opening handshake's rules of RFC 6455 section 4.2.1 as a client on the wire sees them:
/// a key that is not 16 bytes in base64, a repeated key or version, or no Host get a 400 and
/// the connection closes without an onOpen; list headers split over lines are accepted; a
/// wrong version gets a 426 that says what to send.
#[test]
fn the_opening_handshake_is_checked_as_rfc_6455_says() {
    init();
    let events = Recorder::new(true);
    let (server, port) = start_server(&events, &[]);
    let request = |replace: &str, with: &str| {
        let base = "GET / HTTP/1.1\r\nHost: camera.local\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
        assert!(base.contains(replace));
        base.replace(replace, with)
    };
    let refused = [
        request("dGhlIHNhbXBsZSBub25jZQ==", "!!!!!!!!!!!!!!!!!!!!!!!!"),
        request("dGhlIHNhbXBsZSBub25jZQ==", "AAAAAAAAAAAAAAAAAAAAAAAA"),
        request(
            "Sec-WebSocket-Version: 13\r\n",
            "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: AQIDBAUGBwgJCgsMDQ4PEA==\r\n",
        ),
        request(
            "Sec-WebSocket-Version: 13\r\n",
            "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Version: 13\r\n",
        ),
        request("Host: camera.local\r\n", ""),
    ];
    for request in &refused {
        let (answer, open) = handshake_answer(port, request);
        assert!(
            open.is_none() && answer.starts_with("HTTP/1.1 400 Bad Request\r\n"),
            "{request:?}: {answer:?}"
        );
        assert!(answer.contains("\r\nConnection: close\r\n"), "{answer:?}");
    }

    let (answer, _) = handshake_answer(port, &request("Version: 13", "Version: 8"));
    assert!(
        answer.starts_with("HTTP/1.1 426 Upgrade Required\r\n"),
        "{answer:?}"
    );
    for header in [
        "Upgrade: websocket",
        "Connection: Upgrade, close",
        "Sec-WebSocket-Version: 13",
    ] {
        assert!(
            answer.contains(&format!("\r\n{header}\r\n")),
            "{header}: {answer:?}"
        );
    }

    // Connection and Upgrade are lists a client may split over lines (RFC 7230 section 3.2.2).
    let split = request(
        "Upgrade: websocket\r\nConnection: Upgrade\r\n",
        "Connection: keep-alive\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n",
    );
    let (answer, open) = handshake_answer(port, &split);
    assert!(
        answer.contains("\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"),
        "{answer:?}"
    );
    let mut peer = open.expect("upgraded");
    peer.send_frame(0x81, b"split headers");
    assert_eq!(peer.read_frame(), Some((0x81, b"split headers".to_vec())));
    drop(peer);
    assert_eq!(
        events.count(|s| *s == Seen::Open),
        1,
        "only the valid request opened"
    );
    destroyWsServer(server);
    oasis_finalize();
}
