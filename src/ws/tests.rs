//! The event loop's panic boundary, over real sockets: a panic while handling one connection
//! fails that connection with 1011 and the loop serves the others on. (The panic is injected
//! through a test-only trigger in `Session::on_input`; nothing in a release build can reach it.)

use super::delegate::Delegate;
use super::event::{Event, EventHandler, EventKind};
use super::server::Server;
use crate::config::ServerConfig;
use crate::protocol::Outgoing;
use parking_lot::{Condvar, Mutex};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Held by every test here that starts and ends the runtime: the runtime is one per process,
/// and one test's `finalize` would end another's loops (`cargo test` runs tests in parallel).
pub static RUNTIME: Mutex<()> = Mutex::new(());

/// A text message that makes the session panic while delivering it.
pub const PANIC_TRIGGER: &[u8] = b"oasisnet test: panic while delivering this";

#[derive(Default)]
struct Echo {
    seen: Mutex<Vec<(EventKind, u16)>>,
    changed: Condvar,
}

impl EventHandler for Arc<Echo> {
    fn handle(&self, event: &Event<'_>) {
        if event.kind == EventKind::Message {
            let _ = event.connection.send(Outgoing::Text, event.data);
        }
        self.seen.lock().push((event.kind, event.status));
        self.changed.notify_all();
    }
}

/// A started server on 127.0.0.1 (an ephemeral port) whose events go to `handler`.
fn start_server(handler: impl EventHandler + 'static) -> (Arc<Server>, u16) {
    let config = ServerConfig::parse(&[
        ("port".into(), "0".into()),
        ("bind-address".into(), "127.0.0.1".into()),
    ])
    .unwrap();
    let server = Server::create(config, Arc::new(Delegate::new(Box::new(handler)))).unwrap();
    server.start().unwrap();
    let port = server.local_port().unwrap();
    (server, port)
}

fn connect(port: u16) -> TcpStream {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(stream.read(&mut byte).unwrap(), 1);
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"));
    stream
}

fn send_text(stream: &mut TcpStream, text: &[u8]) {
    assert!(text.len() < 126);
    let mask = [1u8, 2, 3, 4];
    let mut frame = vec![0x81, 0x80 | text.len() as u8];
    frame.extend_from_slice(&mask);
    frame.extend(text.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    stream.write_all(&frame).unwrap();
}

/// Reads one small server frame: (opcode, payload).
fn read_frame(stream: &mut TcpStream) -> (u8, Vec<u8>) {
    let mut head = [0u8; 2];
    stream.read_exact(&mut head).unwrap();
    let mut payload = vec![0u8; usize::from(head[1] & 0x7f)];
    stream.read_exact(&mut payload).unwrap();
    (head[0] & 0x0f, payload)
}

#[test]
fn a_panic_fails_one_connection_with_1011_and_the_loop_goes_on() {
    let _serial = RUNTIME.lock();
    crate::runtime::initialize(1, 64 * 1024, None).unwrap();
    let echo = Arc::new(Echo::default());
    let (server, port) = start_server(echo.clone());

    // Two connections on the one event loop.
    let mut doomed = connect(port);
    let mut survivor = connect(port);
    send_text(&mut survivor, b"before");
    assert_eq!(read_frame(&mut survivor), (0x1, b"before".to_vec()));

    send_text(&mut doomed, PANIC_TRIGGER);
    let (opcode, payload) = read_frame(&mut doomed);
    assert_eq!(opcode, 0x8, "a close frame");
    assert_eq!(u16::from_be_bytes([payload[0], payload[1]]), 1011);
    let mut rest = Vec::new();
    assert_eq!(
        doomed.read_to_end(&mut rest).unwrap(),
        0,
        "then the TCP close"
    );

    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = echo.seen.lock();
    while !seen.contains(&(EventKind::Close, 1011)) {
        assert!(
            !echo.changed.wait_until(&mut seen, deadline).timed_out(),
            "no onClose 1011; seen {seen:?}"
        );
    }
    assert!(seen.contains(&(EventKind::Error, 1011)), "{seen:?}");
    drop(seen);

    send_text(&mut survivor, b"after");
    assert_eq!(read_frame(&mut survivor), (0x1, b"after".to_vec()));
    drop(survivor);
    server.shutdown().unwrap();
    super::registry::finalize().unwrap();
}

/// A handler that panics in onError: the connection still gets its onClose.
struct PanicsInOnError {
    seen: Mutex<Vec<(EventKind, u16)>>,
    changed: Condvar,
}

impl EventHandler for Arc<PanicsInOnError> {
    fn handle(&self, event: &Event<'_>) {
        self.seen.lock().push((event.kind, event.status));
        self.changed.notify_all();
        if event.kind == EventKind::Error {
            panic!("a handler that panics in onError");
        }
    }
}

#[test]
fn a_panic_in_onerror_still_ends_with_onclose() {
    let _serial = RUNTIME.lock();
    crate::runtime::initialize(1, 64 * 1024, None).unwrap();
    let handler = Arc::new(PanicsInOnError {
        seen: Mutex::default(),
        changed: Condvar::new(),
    });
    let (server, port) = start_server(handler.clone());
    let mut stream = connect(port);
    // Text that is not UTF-8: onError 1007 (which panics), then onClose.
    let mask = [1u8, 2, 3, 4];
    let mut frame = vec![0x81, 0x82];
    frame.extend_from_slice(&mask);
    frame.extend(
        [0xffu8, 0xfe]
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ mask[i % 4]),
    );
    stream.write_all(&frame).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = handler.seen.lock();
    while !seen.iter().any(|(kind, _)| *kind == EventKind::Close) {
        assert!(
            !handler.changed.wait_until(&mut seen, deadline).timed_out(),
            "onError without onClose: {seen:?}"
        );
    }
    assert_eq!(seen.first(), Some(&(EventKind::Open, 0)));
    assert!(seen.contains(&(EventKind::Error, 1007)), "{seen:?}");
    drop(seen);
    drop(stream);
    server.shutdown().unwrap();
    super::registry::finalize().unwrap();
}

/// What an idle connection costs is mostly these objects: growing one must be a decision
/// (docs/BENCHMARKS.md measures the RSS per idle connection), not an accident. Each is one heap
/// block, and glibc's blocks take the size asked for plus 8, rounded up to 16: a
/// `Box<Session>` of 41 to 56 bytes takes 64, one of up to 40 takes 48; an `Arc<Connection>`
/// (16 bytes of counts) of 105 to 120 bytes takes 144, one of up to 104 takes 128.
#[test]
#[cfg(target_pointer_width = "64")]
fn per_connection_objects_stay_within_their_budget() {
    let sizes = [
        (
            "Connection",
            std::mem::size_of::<super::connection::Connection>(),
            // mio's socket carries a selector id in debug builds only (8 bytes).
            if cfg!(debug_assertions) { 112 } else { 104 },
        ),
        (
            "Session",
            std::mem::size_of::<super::session::Session>(),
            40,
        ),
        (
            "Endpoint",
            std::mem::size_of::<crate::protocol::Endpoint>(),
            24,
        ),
        ("Reader", std::mem::size_of::<crate::protocol::Reader>(), 16),
    ];
    for (name, size, budget) in sizes {
        eprintln!("{name}: {size} bytes (budget {budget})");
        assert!(size <= budget, "{name} is {size} bytes, over its {budget}");
    }
}

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

/// Replies `r1`..`rN` to a message `many:N`, and echoes anything else.
struct Replies;

impl EventHandler for Replies {
    fn handle(&self, event: &Event<'_>) {
        if event.kind != EventKind::Message {
            return;
        }
        match event.data.strip_prefix(b"many:") {
            Some(count) => {
                let count: usize = std::str::from_utf8(count).unwrap().parse().unwrap();
                for i in 1..=count {
                    let reply = format!("r{i}");
                    event
                        .connection
                        .send(Outgoing::Text, reply.as_bytes())
                        .unwrap();
                }
            }
            None => event.connection.send(Outgoing::Text, event.data).unwrap(),
        }
    }
}

/// Replies to the messages of one read collect under the cork and go out together: several
/// replies to one message, and replies to messages that arrive together, all arrive whole and
/// in order.
#[test]
fn replies_collected_under_the_cork_arrive_in_order() {
    let _serial = RUNTIME.lock();
    crate::runtime::initialize(1, 64 * 1024, None).unwrap();
    let (server, port) = start_server(Replies);
    let mut stream = connect(port);
    let expect = |stream: &mut TcpStream, replies: &[&[u8]]| {
        for reply in replies {
            assert_eq!(read_frame(stream), (0x1, reply.to_vec()));
        }
    };
    // One message, three replies.
    send_text(&mut stream, b"many:3");
    expect(&mut stream, &[b"r1", b"r2", b"r3"]);
    // Several messages in one write (most likely one read): replies collected, the last
    // message's replies behind them.
    let mut frames = Vec::new();
    for text in [&b"a"[..], b"many:2", b"b", b"many:3"] {
        let mut one = Vec::new();
        let mask = [9u8, 8, 7, 6];
        one.extend([0x81, 0x80 | text.len() as u8]);
        one.extend_from_slice(&mask);
        one.extend(text.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        frames.extend(one);
    }
    stream.write_all(&frames).unwrap();
    expect(
        &mut stream,
        &[b"a", b"r1", b"r2", b"b", b"r1", b"r2", b"r3"],
    );
    send_text(&mut stream, b"last");
    expect(&mut stream, &[b"last"]);
    drop(stream);
    server.shutdown().unwrap();
    super::registry::finalize().unwrap();
}

/// Outside a cork a frame below 16 KiB is copied into the send buffer and written at once (one
/// send(2)): it arrives without waiting for another event, and the connection keeps no send
/// buffer afterwards.
#[test]
fn uncorked_small_frames_go_out_at_once_and_leave_no_send_buffer() {
    use crate::protocol::FrameSink;
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
    use crate::protocol::FrameSink;
    let (mut writer, client) = writer_over_loopback();
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
    use crate::protocol::FrameSink;
    let (mut writer, client) = writer_over_loopback();
    let mut spare = Vec::with_capacity(1000);
    let small_header = [0x82, 0x7e, 0x50, 0x00];
    let first = vec![b'f'; 0x5000];
    // More than a socket takes while its peer does not read.
    let large = vec![b'L'; 8 * 1024 * 1024];
    let large_header = [0x82, 0x7f, 0, 0, 0, 0, 0, 0x80, 0, 0];
    writer.cork_with(&mut spare);
    writer.frame(&small_header, &first, None);
    writer.frame(&large_header, &large, None);
    let waiting = writer.queued();
    assert!(waiting > 0, "the socket cannot take 8 MiB at once");
    assert!(
        writer.capacity() < large.len(),
        "only the part the socket did not take was copied: {} bytes held",
        writer.capacity()
    );
    let total = small_header.len() + first.len() + large_header.len() + large.len();
    let reader = std::thread::spawn(move || {
        let mut received = vec![0u8; total];
        (&client).read_exact(&mut received).unwrap();
        received
    });
    writer.uncork_into(&mut spare);
    while writer.queued() > 0 {
        writer.flush();
        std::thread::yield_now();
    }
    let received = reader.join().unwrap();
    assert!(received[4..4 + first.len()] == first[..] && received.ends_with(&large));
}

/// An uncork that the socket does not take whole keeps the rest queued (and the lent buffer with
/// it) until the socket drains; then the buffer goes back to the loop.
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
    let deadline = Instant::now() + Duration::from_secs(30);
    while !writer.flush() {
        assert!(
            Instant::now() < deadline,
            "{} bytes never drained",
            writer.queued()
        );
        std::thread::yield_now();
    }
    reader.join().unwrap();
    assert_eq!(
        writer.capacity(),
        0,
        "drained: the connection keeps no buffer"
    );
}

/// A writer over the server end of a loopback connection (non-blocking), and the client end.
fn writer_over_loopback() -> (super::connection::Writer, TcpStream) {
    use crate::transport::Transport;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    server.set_nonblocking(true).unwrap();
    let server = mio::net::TcpStream::from_std(server);
    (
        super::connection::Writer::new(Some(Transport::Plain(server))),
        client,
    )
}

/// Records, for each message, whether its connection's lock is biased to the connection's loop.
#[derive(Default)]
struct BiasSeen {
    biased: Mutex<Vec<bool>>,
    changed: Condvar,
}

impl EventHandler for Arc<BiasSeen> {
    fn handle(&self, event: &Event<'_>) {
        if event.kind == EventKind::Message {
            let _ = event.connection.send(Outgoing::Text, event.data);
            self.biased.lock().push(event.connection.io_is_biased());
            self.changed.notify_all();
        }
    }
}

/// With two loops, the listener's loop accepts every connection and hands half of them to the
/// other loop: each connection's lock is still biased to its own loop when its messages come
/// (the accepting thread locks it before the bias is taken, which costs no revocation).
#[test]
fn connections_on_every_loop_keep_their_lock_biased() {
    let _serial = RUNTIME.lock();
    crate::runtime::initialize(2, 64 * 1024, None).unwrap();
    let seen = Arc::new(BiasSeen::default());
    let (server, port) = start_server(seen.clone());
    let mut streams: Vec<TcpStream> = (0..4).map(|_| connect(port)).collect();
    for stream in &mut streams {
        send_text(stream, b"hello");
        assert_eq!(read_frame(stream), (0x1, b"hello".to_vec()));
    }
    let biased = seen.biased.lock().clone();
    assert_eq!(biased.len(), 4);
    if crate::runtime::biased_locks_available() {
        assert!(
            biased.iter().all(|&b| b),
            "a connection lost its bias: {biased:?}"
        );
    } else {
        eprintln!("no private expedited membarrier here: locks are never biased");
    }
    drop(streams);
    server.shutdown().unwrap();
    super::registry::finalize().unwrap();
}
