//! What a connection tells of the request that opened it, over the C ABI:
//! `wsConnectionRequestPath`, `wsConnectionRequestQuery` and `wsConnectionRequestHeader` on
//! `createWsServer` connections (any path is accepted) and on client connections. The head is
//! kept while onOpen runs; after onOpen returns the header lookup fails with `ENODATA`, unless
//! `websocket-keep-request-headers` keeps it.

mod common;

use common::*;
use oasisnet::ffi::*;
use parking_lot::{Condvar, Mutex};
use std::ffi::{CStr, CString, c_char, c_void};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Instant;

/// What the callbacks report, and a bounded wait for one report.
#[derive(Default)]
struct Facts {
    list: Mutex<Vec<String>>,
    changed: Condvar,
}

impl Facts {
    fn push(&self, fact: String) {
        self.list.lock().push(fact);
        self.changed.notify_all();
    }

    /// Waits for a fact starting with `prefix`; returns the rest of it.
    fn wait_for(&self, prefix: &str) -> String {
        let deadline = Instant::now() + WAIT;
        let mut list = self.list.lock();
        loop {
            if let Some(found) = list.iter().find_map(|f| f.strip_prefix(prefix)) {
                return found.to_string();
            }
            if self.changed.wait_until(&mut list, deadline).timed_out() {
                panic!("timed out waiting for '{prefix}'; facts: {:?}", *list);
            }
        }
    }
}

/// A string getter's answer: the text, or "-1/errno".
fn answer(fill: impl Fn(*mut c_char, usize) -> i32) -> String {
    let mut buffer = [0 as c_char; 256];
    let length = fill(buffer.as_mut_ptr(), buffer.len());
    if length < 0 {
        return format!("-1/{}", errno());
    }
    let text = unsafe { CStr::from_ptr(buffer.as_ptr()) }.to_string_lossy();
    assert_eq!(
        text.len(),
        length as usize,
        "the length returned is the text's"
    );
    text.into_owned()
}

fn path(connection: *mut WsConnection) -> String {
    answer(|buffer, capacity| unsafe { wsConnectionRequestPath(connection, buffer, capacity) })
}

fn query(connection: *mut WsConnection) -> String {
    answer(|buffer, capacity| unsafe { wsConnectionRequestQuery(connection, buffer, capacity) })
}

fn header(connection: *mut WsConnection, name: &str) -> String {
    let name = CString::new(name).unwrap();
    answer(|buffer, capacity| unsafe {
        wsConnectionRequestHeader(connection, name.as_ptr(), buffer, capacity)
    })
}

fn facts_of<'a>(user: *mut c_void) -> &'a Facts {
    unsafe { &*(user as *const Facts) }
}

const HEADERS: [&str; 5] = [
    "host",
    "X-CUSTOM",
    "x-empty",
    "x-missing",
    "Sec-WebSocket-Key",
];

unsafe extern "C" fn on_open(user: *mut c_void, event: *mut WsEvent) {
    let facts = facts_of(user);
    let connection = wsEventConnection(event);
    facts.push(format!("open path={}", path(connection)));
    facts.push(format!("open query={}", query(connection)));
    for name in HEADERS {
        facts.push(format!("open {name}={}", header(connection, name)));
    }
    // Truncated like snprintf: the full length, and as much as fits with a NUL.
    let name = CString::new("host").unwrap();
    let mut small = [0x55 as c_char; 4];
    let length =
        unsafe { wsConnectionRequestHeader(connection, name.as_ptr(), small.as_mut_ptr(), 4) };
    let kept = unsafe { CStr::from_ptr(small.as_ptr()) }
        .to_string_lossy()
        .into_owned();
    let asked =
        unsafe { wsConnectionRequestHeader(connection, name.as_ptr(), std::ptr::null_mut(), 0) };
    facts.push(format!("open truncated={length} {kept} {asked}"));
    // Kept for the test thread (a panic here would abort: report instead).
    match wsConnectionRetain(connection) {
        0 => facts.push(format!("open handle={}", connection as usize)),
        failed => facts.push(format!("open retain failed={failed}")),
    }
}

unsafe extern "C" fn on_message(user: *mut c_void, event: *mut WsEvent) {
    let facts = facts_of(user);
    let connection = wsEventConnection(event);
    facts.push(format!("message host={}", header(connection, "host")));
    facts.push(format!("message path={}", path(connection)));
}

/// A server whose callbacks report to `facts` (which must outlive it).
fn start_probe_server(facts: &'static Facts, extra: &[(&str, &str)]) -> (*mut WsServer, u16) {
    start_probe_server_with(facts, extra, Some(on_open))
}

/// The same with `on_open` as the delegate's onOpen (None: a delegate without one).
fn start_probe_server_with(
    facts: &'static Facts,
    extra: &[(&str, &str)],
    on_open: WsEventCallback,
) -> (*mut WsServer, u16) {
    start_server_with(
        &message_vtable(on_open, Some(on_message)),
        facts as *const Facts as *mut c_void,
        extra,
    )
}

/// Connects with a request of our own making (any path, extra headers) and reads the 101.
fn upgrade(port: u16, target: &str, extra_headers: &str) -> TcpStream {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let request = format!(
        "GET {target} HTTP/1.1\r\nHost: camera.local:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra_headers}\r\n"
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(
            stream.read(&mut byte).unwrap(),
            1,
            "closed during the handshake"
        );
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"), "{head:?}");
    stream
}

fn send_text(stream: &mut TcpStream, text: &[u8]) {
    let mask = [9u8, 8, 7, 6];
    let mut frame = vec![0x81, 0x80 | text.len() as u8];
    frame.extend_from_slice(&mask);
    frame.extend(text.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    stream.write_all(&frame).unwrap();
}

#[test]
fn the_request_is_known_in_onopen_and_its_head_goes_when_onopen_returns() {
    init();
    let facts: &'static Facts = Box::leak(Box::default());
    let (server, port) = start_probe_server(facts, &[]);
    let mut client = upgrade(
        port,
        "/any/where%20else?x=1&y=%2F",
        "X-Custom: a\r\nx-custom:  b \r\nX-Empty:\r\n",
    );
    assert_eq!(facts.wait_for("open path="), "/any/where%20else", "as sent");
    assert_eq!(facts.wait_for("open query="), "x=1&y=%2F", "raw");
    assert_eq!(facts.wait_for("open host="), format!("camera.local:{port}"));
    assert_eq!(facts.wait_for("open X-CUSTOM="), "a, b", "joined, any case");
    assert_eq!(facts.wait_for("open x-empty="), "", "present but empty");
    assert_eq!(
        facts.wait_for("open x-missing="),
        format!("-1/{}", libc::ENOENT)
    );
    assert_eq!(
        facts.wait_for("open Sec-WebSocket-Key="),
        "dGhlIHNhbXBsZSBub25jZQ=="
    );
    let host_length = format!("camera.local:{port}").len();
    assert_eq!(
        facts.wait_for("open truncated="),
        format!("{host_length} cam {host_length}")
    );
    let handle: usize = facts.wait_for("open handle=").parse().unwrap();
    let connection = handle as *mut WsConnection;

    // onMessage runs after onOpen returned: the head is gone, the target stays.
    send_text(&mut client, b"hello");
    assert_eq!(
        facts.wait_for("message host="),
        format!("-1/{}", libc::ENODATA)
    );
    assert_eq!(facts.wait_for("message path="), "/any/where%20else");
    assert_eq!(header(connection, "host"), format!("-1/{}", libc::ENODATA));
    assert!(
        last_error().contains("websocket-keep-request-headers"),
        "{}",
        last_error()
    );
    assert_eq!(path(connection), "/any/where%20else");
    assert_eq!(query(connection), "x=1&y=%2F");

    // Bad arguments.
    let name = CString::new("host").unwrap();
    let mut buffer = [0 as c_char; 8];
    assert_eq!(
        unsafe { wsConnectionRequestHeader(connection, std::ptr::null(), buffer.as_mut_ptr(), 8) },
        -1
    );
    assert_eq!(errno(), libc::EINVAL);
    assert_eq!(
        unsafe { wsConnectionRequestPath(connection, std::ptr::null_mut(), 8) },
        -1
    );
    assert_eq!(errno(), libc::EINVAL);
    assert_eq!(
        unsafe {
            wsConnectionRequestHeader(std::ptr::null_mut(), name.as_ptr(), buffer.as_mut_ptr(), 8)
        },
        -1
    );
    assert_eq!(errno(), libc::EINVAL);

    assert_eq!(wsConnectionRelease(connection), 0);
    drop(client);
    assert_eq!(destroyWsServer(server), 0);
    oasis_finalize();
}

/// The usual target, `/` with no subprotocol, is stored without an allocation: it must read
/// back the same as any other.
#[test]
fn the_root_target_reads_back_as_root() {
    init();
    let facts: &'static Facts = Box::leak(Box::default());
    let (server, port) = start_probe_server(facts, &[]);
    let mut client = upgrade(port, "/", "");
    assert_eq!(facts.wait_for("open path="), "/");
    assert_eq!(facts.wait_for("open query="), "");
    let handle: usize = facts.wait_for("open handle=").parse().unwrap();
    let connection = handle as *mut WsConnection;
    send_text(&mut client, b"hello");
    assert_eq!(facts.wait_for("message path="), "/");
    assert_eq!(path(connection), "/");
    assert_eq!(query(connection), "");
    assert_eq!(wsConnectionRelease(connection), 0);
    drop(client);
    assert_eq!(destroyWsServer(server), 0);
    oasis_finalize();
}

#[test]
fn websocket_keep_request_headers_keeps_the_head_for_the_connections_life() {
    init();
    let facts: &'static Facts = Box::leak(Box::default());
    let (server, port) = start_probe_server(facts, &[("websocket-keep-request-headers", "1")]);
    let mut client = upgrade(port, "/kept", "X-Custom: c\r\n");
    let handle: usize = facts.wait_for("open handle=").parse().unwrap();
    let connection = handle as *mut WsConnection;
    send_text(&mut client, b"hello");
    assert_eq!(
        facts.wait_for("message host="),
        format!("camera.local:{port}")
    );
    assert_eq!(
        header(connection, "x-custom"),
        "c",
        "after onOpen, from another thread"
    );
    assert_eq!(
        header(connection, "x-missing"),
        format!("-1/{}", libc::ENOENT)
    );
    assert_eq!(query(connection), "", "no query");
    assert_eq!(wsConnectionRelease(connection), 0);
    drop(client);
    assert_eq!(destroyWsServer(server), 0);
    oasis_finalize();
}

/// Without an onOpen callback the head is not kept past the handshake (nothing could read it),
/// unless `websocket-keep-request-headers` asks for it: then onMessage reads it as usual. The
/// target reads back either way.
#[test]
fn without_onopen_the_head_is_kept_only_when_asked() {
    init();
    for keep in ["0", "1"] {
        let facts: &'static Facts = Box::leak(Box::default());
        let (server, port) =
            start_probe_server_with(facts, &[("websocket-keep-request-headers", keep)], None);
        let mut client = upgrade(port, "/no/open?q", "");
        send_text(&mut client, b"hello");
        let host = if keep == "1" {
            format!("camera.local:{port}")
        } else {
            format!("-1/{}", libc::ENODATA)
        };
        assert_eq!(facts.wait_for("message host="), host, "keep {keep}");
        assert_eq!(facts.wait_for("message path="), "/no/open");
        drop(client);
        assert_eq!(destroyWsServer(server), 0);
    }
    oasis_finalize();
}

#[test]
fn a_client_connection_reports_its_urls_path_and_query() {
    init();
    let facts: &'static Facts = Box::leak(Box::default());
    let (server, port) = start_probe_server(facts, &[]);
    let recorder = Recorder::new(false);
    let client = open(
        &format!("ws://127.0.0.1:{port}/c/p?q=2&r"),
        &recorder,
        &[],
        5000,
    );
    assert!(!client.is_null(), "{}", last_error());
    assert_eq!(path(client), "/c/p");
    assert_eq!(query(client), "q=2&r");
    assert_eq!(
        header(client, "host"),
        format!("-1/{}", libc::ENODATA),
        "a client received no request"
    );
    assert_eq!(
        facts.wait_for("open path="),
        "/c/p",
        "the server saw the same"
    );
    assert_eq!(facts.wait_for("open host="), format!("127.0.0.1:{port}"));
    let handle: usize = facts.wait_for("open handle=").parse().unwrap();
    assert_eq!(wsConnectionRelease(handle as *mut WsConnection), 0);
    assert_eq!(wsConnectionRelease(client), 0);
    assert_eq!(destroyWsServer(server), 0);
    oasis_finalize();
}
