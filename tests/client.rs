//! Client connections: URLs, opening modes, subprotocols, fragmentation, threads, IPv6.

mod common;
use common::*;
use oasisnet::ffi::*;
use std::ffi::{CString, c_void};
use std::sync::Arc;

fn protocol_of(connection: *mut WsConnection) -> String {
    let mut buf = [0 as std::ffi::c_char; 64];
    let n = unsafe { wsConnectionProtocol(connection, buf.as_mut_ptr(), buf.len()) };
    assert!(n >= 0);
    unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

#[test]
fn subprotocol_is_negotiated_and_readable_on_both_sides() {
    init();
    let server_events = Recorder::new(true);
    let (server, port) = start_server(&server_events, &[("websocket-protocols", "b, c")]);
    let client_events = Recorder::new(false);
    let client = open(
        &format!("ws://localhost:{port}/"),
        &client_events,
        &[("websocket-protocols", "a,c")],
        5000,
    );
    assert!(!client.is_null(), "{}", last_error());
    assert_eq!(protocol_of(client), "c");
    let server_side =
        server_events.wait_for("server onOpen", |e| e.iter().any(|(_, s)| *s == Seen::Open))[0].0;
    assert_eq!(protocol_of(server_side as *mut WsConnection), "c");
    let mut peer = [0 as std::ffi::c_char; 64];
    assert!(
        unsafe {
            wsConnectionPeerAddress(
                server_side as *mut WsConnection,
                peer.as_mut_ptr(),
                peer.len(),
            )
        } > 0
    );
    let peer = unsafe { std::ffi::CStr::from_ptr(peer.as_ptr()) }
        .to_string_lossy()
        .into_owned();
    assert!(
        peer.starts_with("127.0.0.1:") || peer.starts_with("[::1]:"),
        "{peer}"
    );
    wsConnectionRelease(client);
    destroyWsServer(server);
    oasis_finalize();
}

#[test]
fn large_messages_go_out_in_fragments_and_arrive_whole() {
    init();
    let server_events = Recorder::new(true);
    let (server, port) = start_server(&server_events, &[("websocket-fragment-size-max", "1000")]);
    let client_events = Recorder::new(false);
    let client = open(
        &format!("ws://127.0.0.1:{port}"),
        &client_events,
        &[("websocket-fragment-size-max", "4096")],
        5000,
    );
    assert!(!client.is_null());
    let text: String = (0..50_000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    assert_eq!(send_text(client, &text), 0);
    client_events.wait_for("echo", |e| {
        e.iter().any(|(_, s)| matches!(s, Seen::Message(..)))
    });
    assert!(client_events.seen().contains(&Seen::Message(
        ws_message_t::kWsMessageText,
        text.into_bytes()
    )));
    // On the wire: a raw peer sees the server's fragments of at most 1000 bytes.
    let mut raw = RawClient::connect(port);
    raw.send_frame(0x82, &[5u8; 2500]);
    let sizes: Vec<(u8, usize)> = (0..3)
        .map(|_| raw.read_frame().map(|(b, p)| (b, p.len())).unwrap())
        .collect();
    assert_eq!(sizes, vec![(0x02, 1000), (0x00, 1000), (0x80, 500)]);
    drop(raw);
    wsConnectionRelease(client);
    destroyWsServer(server);
    oasis_finalize();
}

#[test]
fn async_open_reports_through_callbacks() {
    init();
    let server_events = Recorder::new(true);
    let (server, port) = start_server(&server_events, &[]);
    let ok_events = Recorder::new(false);
    let ok = open(&format!("ws://127.0.0.1:{port}"), &ok_events, &[], 0);
    assert!(!ok.is_null());
    ok_events.wait_for("onOpen", |e| e.iter().any(|(_, s)| *s == Seen::Open));
    // A port nobody listens on: onError 1006, never onClose.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_port = listener.local_addr().unwrap().port();
    drop(listener);
    let bad_events = Recorder::new(false);
    let bad = open(&format!("ws://127.0.0.1:{dead_port}"), &bad_events, &[], 0);
    assert!(!bad.is_null());
    bad_events.wait_for("onError", |e| {
        e.iter().any(|(_, s)| *s == Seen::Error(1006))
    });
    assert_eq!(bad_events.count(is_close), 0);
    // The delegate lives as long as the handle: releasing it lets the library drop the delegate.
    assert_eq!(wsConnectionRelease(bad), 0);
    bad_events.wait_for("delegate released", |_| *bad_events.released.lock());
    // Blocking open to the same dead port: NULL with ECONNREFUSED, and onError too.
    let blocked_events = Recorder::new(false);
    let blocked = open(
        &format!("ws://127.0.0.1:{dead_port}"),
        &blocked_events,
        &[],
        2000,
    );
    assert!(blocked.is_null());
    assert_eq!(errno(), libc::ECONNREFUSED, "{}", last_error());
    blocked_events.wait_for("onError", |e| {
        e.iter().any(|(_, s)| *s == Seen::Error(1006))
    });
    wsConnectionRelease(ok);
    destroyWsServer(server);
    oasis_finalize();
}

#[test]
fn blocking_open_times_out_against_a_silent_server() {
    init();
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let events = Recorder::new(false);
    let started = std::time::Instant::now();
    let connection = open(&format!("ws://127.0.0.1:{port}"), &events, &[], 300);
    assert!(connection.is_null());
    assert_eq!(errno(), libc::ETIMEDOUT);
    assert!(started.elapsed() < WAIT);
    drop(silent);
    oasis_finalize();
}

/// Opens a blocking connection from inside onOpen of another one, on the event-loop thread.
struct Nested {
    url: CString,
    inner: Arc<Recorder>,
    result: parking_lot::Mutex<Option<usize>>,
    returned: parking_lot::Condvar,
}

unsafe extern "C" fn nested_open(user: *mut c_void, _event: *mut WsEvent) {
    let nested = unsafe { &*(user as *const Nested) };
    let (vtable, inner_user) = delegate(&nested.inner);
    let c = unsafe {
        wsOpenConnection(
            nested.url.as_ptr(),
            std::ptr::null(),
            0,
            &vtable,
            inner_user,
            3000,
        )
    };
    *nested.result.lock() = Some(c as usize);
    nested.returned.notify_all();
}

/// An echo server no part of this library runs: tungstenite in its own thread.
fn independent_echo_server() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let Ok(mut socket) = tungstenite::accept(stream) else {
                    return;
                };
                while let Ok(message) = socket.read() {
                    if message.is_text() || message.is_binary() {
                        let _ = socket.send(message);
                    }
                }
            });
        }
    });
    port
}

#[test]
fn blocking_open_inside_a_callback_does_not_deadlock() {
    init();
    let port = independent_echo_server();
    let nested = Box::leak(Box::new(Nested {
        url: CString::new(format!("ws://127.0.0.1:{port}")).unwrap(),
        inner: Recorder::new(false),
        result: parking_lot::Mutex::new(None),
        returned: parking_lot::Condvar::new(),
    }));
    let vtable = WsEventDelegateVTable {
        struct_size: std::mem::size_of::<WsEventDelegateVTable>() as u32,
        onOpen: Some(nested_open),
        onMessage: None,
        onError: None,
        onClose: None,
        release: None,
    };
    let url = CString::new(format!("ws://127.0.0.1:{port}")).unwrap();
    let outer = unsafe {
        wsOpenConnection(
            url.as_ptr(),
            std::ptr::null(),
            0,
            &vtable,
            (nested as *mut Nested).cast(),
            0,
        )
    };
    assert!(!outer.is_null());
    nested
        .inner
        .wait_for("inner onOpen", |e| e.iter().any(|(_, s)| *s == Seen::Open));
    // The inner connection's onOpen may run on the other loop thread before the outer
    // callback has stored what wsOpenConnection returned.
    let inner = {
        let deadline = std::time::Instant::now() + WAIT;
        let mut result = nested.result.lock();
        while result.is_none()
            && !nested
                .returned
                .wait_until(&mut result, deadline)
                .timed_out()
        {}
        result.expect("the outer onOpen returned")
    };
    assert_ne!(inner, 0, "nested blocking open succeeded");
    assert_eq!(send_text(inner as *mut WsConnection, "from inside"), 0);
    nested.inner.wait_for("echo", |e| {
        e.iter().any(|(_, s)| matches!(s, Seen::Message(..)))
    });
    wsConnectionRelease(outer);
    wsConnectionRelease(inner as *mut WsConnection);
    oasis_finalize();
}

#[test]
fn many_threads_send_while_two_loops_run() {
    let p = params(&[("event-loop-threads", "2")]);
    assert_eq!(
        unsafe { oasis_initialize(p.pairs.as_ptr(), p.pairs.len()) },
        0
    );
    let server_events = Recorder::new(true);
    let (server, port) = start_server(&server_events, &[]);
    let recorders: Vec<Arc<Recorder>> = (0..4).map(|_| Recorder::new(false)).collect();
    let clients: Vec<usize> = recorders
        .iter()
        .map(|r| open(&format!("ws://127.0.0.1:{port}"), r, &[], 5000) as usize)
        .collect();
    assert!(clients.iter().all(|c| *c != 0));
    let threads: Vec<_> = clients
        .iter()
        .map(|&c| {
            std::thread::spawn(move || {
                for i in 0..500 {
                    while send_text(c as *mut WsConnection, &format!("message {i}")) != 0 {
                        assert_eq!(errno(), libc::EAGAIN);
                        std::thread::yield_now();
                    }
                }
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
    for r in &recorders {
        let seen = r.wait_messages(500);
        let texts: Vec<Vec<u8>> = seen
            .into_iter()
            .filter_map(|(_, s)| match s {
                Seen::Message(_, d) => Some(d),
                _ => None,
            })
            .collect();
        let expected: Vec<Vec<u8>> = (0..500)
            .map(|i| format!("message {i}").into_bytes())
            .collect();
        assert_eq!(texts, expected, "in order, none lost");
    }
    clients.iter().for_each(|&c| {
        wsConnectionRelease(c as *mut WsConnection);
    });
    destroyWsServer(server);
    assert_eq!(oasis_finalize(), 0);
    assert!(
        recorders.iter().all(|r| r.count(is_close) == 1),
        "finalize closed every client once"
    );
}

#[test]
fn ipv6_loopback_when_available() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("no IPv6 loopback here: skipped");
        return;
    }
    init();
    let server_events = Recorder::new(true);
    let p = params(&[("port", "0"), ("bind-address", "::1")]);
    let (vtable, user) = delegate(&server_events);
    let server = unsafe { createWsServer(p.pairs.as_ptr(), p.pairs.len(), &vtable, user) };
    assert_eq!(startWsServer(server), 0);
    let port = wsServerPort(server);
    let client_events = Recorder::new(false);
    let client = open(&format!("ws://[::1]:{port}/v6"), &client_events, &[], 5000);
    assert!(!client.is_null(), "{}", last_error());
    assert_eq!(send_text(client, "over v6"), 0);
    client_events.wait_for("echo", |e| {
        e.iter().any(|(_, s)| matches!(s, Seen::Message(..)))
    });
    wsConnectionRelease(client);
    destroyWsServer(server);
    oasis_finalize();
}

/// A server that answers the upgrade request of the first client to connect with `answer`
/// (given the `Sec-WebSocket-Accept` value the request calls for), written once `go` is
/// signalled (at once without it), then closes the connection. Returns its port, a receiver
/// told when the request has been read, and its thread.
fn answering_server(
    answer: impl FnOnce(&str) -> Vec<u8> + Send + 'static,
    go: Option<std::sync::mpsc::Receiver<()>>,
) -> (
    u16,
    std::sync::mpsc::Receiver<()>,
    std::thread::JoinHandle<()>,
) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (request_read, requested) = std::sync::mpsc::channel();
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            assert_eq!(stream.read(&mut byte).unwrap(), 1, "closed mid-request");
            head.push(byte[0]);
        }
        let head = String::from_utf8(head).unwrap();
        let key = head
            .lines()
            .find_map(|line| line.strip_prefix("Sec-WebSocket-Key: "))
            .expect("a key");
        let accept = tungstenite::handshake::derive_accept_key(key.trim().as_bytes());
        let _ = request_read.send(());
        if let Some(go) = go {
            go.recv().unwrap();
        }
        let _ = stream.write_all(&answer(&accept));
        // Dropped here: the FIN follows the answer at once.
    });
    (port, requested, server)
}

/// An unmasked server frame.
fn server_frame(first: u8, payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() < 126);
    let mut frame = vec![first, payload.len() as u8];
    frame.extend_from_slice(payload);
    frame
}

/// onMessage that says it started (on `user`, a `SyncSender<()>`), then keeps its loop busy
/// for a second.
unsafe extern "C" fn busy_for_a_second(user: *mut c_void, _event: *mut WsEvent) {
    // SAFETY: the test's sender, which outlives the server.
    let started = unsafe { &*(user as *const std::sync::mpsc::SyncSender<()>) };
    let _ = started.try_send(());
    std::thread::sleep(std::time::Duration::from_secs(1));
}

/// The server's answer, frames behind it and its FIN may all be waiting when the connecting
/// client first reads (its loop was busy meanwhile), more than one read takes: they come with
/// one readiness edge, and no other comes after them. The client reads on to the end and
/// reports the FIN (onClose 1006), rather than stop at the first short read and wait for an
/// edge that never comes, with the connection open forever.
#[test]
fn a_server_that_answers_sends_and_closes_at_once_is_seen_closing() {
    // Reads of 4 KiB (the smallest the parameter allows): an answer and 10 KiB of frames take
    // several.
    let p = params(&[("log-level", "info"), ("event-loop-read-size", "4096")]);
    assert_eq!(
        unsafe { oasis_initialize(p.pairs.as_ptr(), p.pairs.len()) },
        0
    );
    // A server on the same (only) loop, whose onMessage keeps the loop busy for a second.
    let (busy_started, loop_busy) = std::sync::mpsc::sync_channel::<()>(1);
    let (busy_server, busy_port) = start_server_with(
        &message_vtable(None, Some(busy_for_a_second)),
        &busy_started as *const _ as *mut c_void,
        &[],
    );
    let mut busy = RawClient::connect(busy_port);
    let (go, start) = std::sync::mpsc::channel();
    let (port, requested, server) = answering_server(
        |accept| {
            let mut all = format!(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
            )
            .into_bytes();
            for _ in 0..100 {
                all.extend(server_frame(0x82, &[9; 100]));
            }
            all
        },
        Some(start),
    );
    let events = Recorder::new(false);
    let client = open(&format!("ws://127.0.0.1:{port}/"), &events, &[], 0);
    assert!(!client.is_null(), "{}", last_error());
    requested.recv_timeout(WAIT).unwrap();
    busy.send_frame(0x82, b"keep the loop busy");
    // The loop is inside the callback before the answer goes out.
    loop_busy.recv_timeout(WAIT).unwrap();
    go.send(()).unwrap();
    server.join().unwrap();
    events.wait_for("onClose after the server's FIN", |e| {
        e.iter().any(|(_, s)| is_close(s))
    });
    let seen = events.seen();
    assert_eq!(
        seen.iter()
            .filter(|s| matches!(s, Seen::Message(..)))
            .count(),
        100
    );
    assert_eq!(seen.last(), Some(&Seen::Close(1006, Vec::new())));
    drop(busy);
    wsConnectionRelease(client);
    destroyWsServer(busy_server);
    oasis_finalize();
}

/// RFC 6455 section 4.1 as a client sees the server's answer. `Sec-WebSocket-Accept` and
/// `Sec-WebSocket-Protocol` may come once only (section 11.3): a second line, which a client
/// reading only the first would not notice, is refused — also one that names a subprotocol
/// the client did not offer, or a wrong accept value. `Upgrade` and `Connection` are lists a
/// server may split over lines (RFC 7230 section 3.2.2): the token on a later line counts.
#[test]
fn the_server_answer_is_checked_line_by_line() {
    init();
    let ok = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n";
    // (`ACCEPT` stands for the value the request calls for.)
    let refused = [
        (
            "the second subprotocol",
            "Sec-WebSocket-Accept: ACCEPT\r\nSec-WebSocket-Protocol: a\r\nSec-WebSocket-Protocol: zz\r\n",
        ),
        (
            "a second, wrong accept value",
            "Sec-WebSocket-Accept: ACCEPT\r\nSec-WebSocket-Accept: dGhlIHNhbXBsZSBub25jZQ==\r\n",
        ),
        (
            "an extension on a second line",
            "Sec-WebSocket-Accept: ACCEPT\r\nSec-WebSocket-Extensions:\r\nSec-WebSocket-Extensions: x-unoffered\r\n",
        ),
    ];
    for (what, headers) in refused {
        let (port, _, server) = answering_server(
            move |accept| format!("{ok}{}\r\n", headers.replace("ACCEPT", accept)).into_bytes(),
            None,
        );
        let events = Recorder::new(false);
        let client = open(
            &format!("ws://127.0.0.1:{port}/"),
            &events,
            &[("websocket-protocols", "a")],
            5000,
        );
        assert!(client.is_null(), "{what}: accepted");
        assert_eq!(errno(), libc::EPROTO, "{what}: {}", last_error());
        server.join().unwrap();
    }
    let (port, _, server) = answering_server(
        |accept| {
            format!("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: keep-alive\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n").into_bytes()
        },
        None,
    );
    let events = Recorder::new(false);
    let client = open(&format!("ws://127.0.0.1:{port}/"), &events, &[], 5000);
    assert!(
        !client.is_null(),
        "Connection split over lines: {}",
        last_error()
    );
    server.join().unwrap();
    wsConnectionRelease(client);
    oasis_finalize();
}
