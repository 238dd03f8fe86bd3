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
