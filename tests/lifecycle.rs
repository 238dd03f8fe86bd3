//! Lifetimes the application relies on: closing from inside a callback, and no callback after
//! destroyWsServer / oasis_finalize return, even while peers keep sending.

mod common;
use common::*;
use oasisnet::ffi::*;
use parking_lot::{Condvar, Mutex};
use std::ffi::c_void;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

/// Counts callbacks, and those that start after `destroyed` was set.
#[derive(Default)]
struct Watch {
    destroyed: AtomicBool,
    calls: AtomicUsize,
    late_calls: AtomicUsize,
    /// Notified after every call, for `wait_calls`.
    lock: Mutex<()>,
    called: Condvar,
    /// Close the connection from inside onMessage when the text is "close me".
    close_on_request: bool,
}

impl Watch {
    /// Waits until at least `n` callbacks ran; panics after WAIT.
    fn wait_calls(&self, n: usize) {
        let deadline = Instant::now() + WAIT;
        let mut guard = self.lock.lock();
        while self.calls.load(Ordering::SeqCst) < n {
            if self.called.wait_until(&mut guard, deadline).timed_out() {
                let calls = self.calls.load(Ordering::SeqCst);
                assert!(
                    calls >= n,
                    "timed out waiting for {n} server callbacks (saw {calls})"
                );
            }
        }
    }
}

unsafe extern "C" fn watch_any(user: *mut c_void, event: *mut WsEvent) {
    let watch = unsafe { &*(user as *const Watch) };
    watch.calls.fetch_add(1, Ordering::SeqCst);
    if watch.destroyed.load(Ordering::SeqCst) {
        watch.late_calls.fetch_add(1, Ordering::SeqCst);
    }
    {
        // Taken so that the notification cannot slip in between a waiter's check and its wait.
        let _guard = watch.lock.lock();
        watch.called.notify_all();
    }
    if watch.close_on_request && wsEventMessageType(event) == ws_message_t::kWsMessageText {
        let mut data = std::ptr::null();
        let n = unsafe { wsEventData(event, &mut data) };
        if n > 0 && unsafe { std::slice::from_raw_parts(data, n as usize) } == b"close me" {
            let reason = std::ffi::CString::new("as you wish").unwrap();
            assert_eq!(
                unsafe {
                    wsCloseConnectionWithStatus(wsEventConnection(event), 4002, reason.as_ptr())
                },
                0
            );
            // A send after our own close frame fails cleanly, even inside the callback.
            assert_eq!(
                unsafe { wsSendText(wsEventConnection(event), c"late".as_ptr()) },
                -1
            );
        }
    }
}

fn watch_vtable() -> WsEventDelegateVTable {
    WsEventDelegateVTable {
        struct_size: std::mem::size_of::<WsEventDelegateVTable>() as u32,
        onOpen: Some(watch_any),
        onMessage: Some(watch_any),
        onError: Some(watch_any),
        onClose: Some(watch_any),
        release: None,
    }
}

fn watched_server(watch: &Watch) -> (*mut WsServer, u16) {
    let p = params(&[
        ("port", "0"),
        ("bind-address", "127.0.0.1"),
        ("close-timeout-ms", "500"),
    ]);
    let vtable = watch_vtable();
    let server = unsafe {
        createWsServer(
            p.pairs.as_ptr(),
            p.pairs.len(),
            &vtable,
            watch as *const Watch as *mut c_void,
        )
    };
    assert!(!server.is_null());
    assert_eq!(startWsServer(server), 0);
    (server, wsServerPort(server) as u16)
}

#[test]
fn close_from_inside_a_callback() {
    init();
    let watch = Box::leak(Box::new(Watch {
        close_on_request: true,
        ..Default::default()
    }));
    let (server, port) = watched_server(watch);
    let client_events = Recorder::new(false);
    let client = open(&format!("ws://127.0.0.1:{port}"), &client_events, &[], 5000);
    assert!(!client.is_null());
    assert_eq!(send_text(client, "close me"), 0);
    client_events.wait_for("onClose", |e| e.iter().any(|(_, s)| is_close(s)));
    assert_eq!(
        client_events.seen().last(),
        Some(&Seen::Close(4002, b"as you wish".to_vec()))
    );
    wsConnectionRelease(client);
    destroyWsServer(server);
    oasis_finalize();
}

#[test]
fn no_callback_after_destroy_or_finalize_returns() {
    init();
    let watch: &'static Watch = Box::leak(Box::default());
    let (server, port) = watched_server(watch);
    let stop = Arc::new(AtomicBool::new(false));
    // Clients in other threads keep sending while the server is destroyed.
    let (recorders, senders): (Vec<Arc<Recorder>>, Vec<_>) = (0..4)
        .map(|_| {
            let recorder = Recorder::new(false);
            let client = open(&format!("ws://127.0.0.1:{port}"), &recorder, &[], 5000) as usize;
            assert_ne!(client, 0);
            let stop = stop.clone();
            let sender = std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    send_text(client as *mut WsConnection, "busy");
                }
                wsConnectionRelease(client as *mut WsConnection);
            });
            (recorder, sender)
        })
        .unzip();
    // The server is busy with their messages when it is destroyed.
    watch.wait_calls(1000);
    assert_eq!(destroyWsServer(server), 0);
    watch.destroyed.store(true, Ordering::SeqCst);
    let calls = watch.calls.load(Ordering::SeqCst);
    // The clients keep sending until each has its onClose 1001 from the destroyed server, so
    // their messages were still arriving at the server after destroyWsServer returned. Then
    // oasis_finalize joins every event loop: a callback started late has been counted by the
    // time it returns.
    for r in &recorders {
        r.wait_for("onClose from the destroyed server", |e| {
            e.iter().any(|(_, s)| is_close(s))
        });
    }
    stop.store(true, Ordering::SeqCst);
    for sender in senders {
        sender.join().unwrap();
    }
    assert_eq!(oasis_finalize(), 0);
    assert_eq!(watch.late_calls.load(Ordering::SeqCst), 0);
    assert_eq!(watch.calls.load(Ordering::SeqCst), calls);
    for r in &recorders {
        assert_eq!(r.count(is_close), 1, "each client saw exactly one onClose");
        assert!(
            matches!(r.seen().last(), Some(Seen::Close(1001, _))),
            "{:?}",
            r.seen().last()
        );
    }
}

/// A blocking open still waiting for its upgrade response when `oasis_finalize` has stopped the
/// event loops: when it then fails, its delegate is still released (exactly once), and no
/// callback runs after finalize returned.
#[test]
fn a_blocking_open_that_outlives_finalize_still_releases_its_delegate() {
    init();
    // A server that accepts and never answers the upgrade request.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (accepted_tx, accepted_rx) = std::sync::mpsc::channel();
    let silent = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        accepted_tx.send(()).unwrap();
        // Held open (and silent) until the client gives up.
        let mut buffer = [0u8; 1024];
        let mut stream = stream;
        while std::io::Read::read(&mut stream, &mut buffer).is_ok_and(|n| n > 0) {}
    });
    let recorder = Recorder::new(false);
    let opener = {
        let recorder = recorder.clone();
        // Longer than finalize waits for connections to close (its default 5 s + 1 s).
        std::thread::spawn(move || {
            let connection = open(&format!("ws://127.0.0.1:{port}/"), &recorder, &[], 7500);
            (connection as usize, errno())
        })
    };
    accepted_rx.recv_timeout(WAIT).unwrap();
    assert_eq!(oasis_finalize(), 0);
    let finalized_with = recorder.seen().len();
    let (connection, err) = opener.join().unwrap();
    assert_eq!(connection, 0, "the open cannot have succeeded");
    assert_eq!(err, libc::ETIMEDOUT);
    recorder.wait_for("the delegate's release", |_| *recorder.released.lock());
    assert_eq!(
        recorder.seen().len(),
        finalized_with,
        "a callback ran after oasis_finalize returned: {:?}",
        recorder.seen()
    );
    silent.join().unwrap();
}

/// `event-loop-read-size` sets how much one read takes: a value below its minimum is refused
/// with EINVAL, and with the smallest allowed reads, messages many reads long still arrive
/// whole, in order and intact, in both directions.
#[test]
fn the_read_size_is_checked_and_messages_larger_than_a_read_arrive_whole() {
    assert_eq!(oasis_finalize(), 0);
    let refused = params(&[("event-loop-read-size", "100")]);
    assert_eq!(
        unsafe { oasis_initialize(refused.pairs.as_ptr(), refused.pairs.len()) },
        -1
    );
    assert_eq!(errno(), libc::EINVAL);
    assert!(
        last_error().contains("event-loop-read-size"),
        "{}",
        last_error()
    );

    let small = params(&[("event-loop-read-size", "4096")]);
    assert_eq!(
        unsafe { oasis_initialize(small.pairs.as_ptr(), small.pairs.len()) },
        0
    );
    let server_events = Recorder::new(true);
    let (server, port) = start_server(&server_events, &[]);
    let client_events = Recorder::new(false);
    let client = open(
        &format!("ws://127.0.0.1:{port}/"),
        &client_events,
        &[],
        5000,
    );
    assert!(!client.is_null(), "open: {}", last_error());
    let sent: Vec<Vec<u8>> = (0..8u32)
        .map(|m| (0..70_000 + m).map(|i| (i * 7 + m) as u8).collect())
        .collect();
    for message in &sent {
        assert_eq!(
            unsafe { wsSendBinary(client, message.as_ptr().cast(), message.len()) },
            0
        );
    }
    let echoed: Vec<Vec<u8>> = client_events
        .wait_messages(sent.len())
        .into_iter()
        .filter_map(|(_, seen)| match seen {
            Seen::Message(_, bytes) => Some(bytes),
            _ => None,
        })
        .collect();
    assert!(echoed == sent, "the echoes differ from what was sent");
    assert_eq!(wsConnectionRelease(client), 0);
    assert_eq!(destroyWsServer(server), 0);
    assert_eq!(oasis_finalize(), 0);
}

/// What `destroy_on_first_message` was given and saw.
#[derive(Default)]
struct Destroyer {
    server: AtomicUsize,
    messages: AtomicUsize,
    destroyed_with: AtomicUsize,
}

unsafe extern "C" fn destroy_on_first_message(user: *mut c_void, _event: *mut WsEvent) {
    let destroyer = unsafe { &*(user as *const Destroyer) };
    if destroyer.messages.fetch_add(1, Ordering::SeqCst) == 0 {
        let result = destroyWsServer(destroyer.server.load(Ordering::SeqCst) as *mut WsServer);
        destroyer
            .destroyed_with
            .store(result as usize + 1, Ordering::SeqCst);
    }
}

/// Messages that arrive together are delivered as one run: `destroyWsServer` from the onMessage
/// of the first returns at once (the callback's own server, on the callback's own thread), and
/// none of the others reaches the application afterwards.
#[test]
fn destroy_inside_a_callback_stops_the_messages_that_arrived_with_it() {
    use std::io::{Read, Write};
    init();
    let destroyer: &'static Destroyer = Box::leak(Box::default());
    let vtable = WsEventDelegateVTable {
        struct_size: std::mem::size_of::<WsEventDelegateVTable>() as u32,
        onOpen: None,
        onMessage: Some(destroy_on_first_message),
        onError: None,
        onClose: None,
        release: None,
    };
    let p = params(&[
        ("port", "0"),
        ("bind-address", "127.0.0.1"),
        ("close-timeout-ms", "500"),
    ]);
    let server = unsafe {
        createWsServer(
            p.pairs.as_ptr(),
            p.pairs.len(),
            &vtable,
            destroyer as *const Destroyer as *mut c_void,
        )
    };
    assert!(!server.is_null());
    destroyer.server.store(server as usize, Ordering::SeqCst);
    assert_eq!(startWsServer(server), 0);
    let port = wsServerPort(server) as u16;

    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream
        .write_all(
            b"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        )
        .unwrap();
    let mut response = Vec::new();
    let mut byte = [0u8; 1];
    while !response.ends_with(b"\r\n\r\n") {
        assert_eq!(
            stream.read(&mut byte).unwrap(),
            1,
            "the upgrade response ended early"
        );
        response.push(byte[0]);
    }
    assert!(response.starts_with(b"HTTP/1.1 101"), "{response:?}");
    // Sixteen messages in one write: they arrive in one read.
    let messages: Vec<u8> = (0..16)
        .flat_map(|i| client_frame(0x81, format!("message {i}").as_bytes()))
        .collect();
    stream.write_all(&messages).unwrap();
    // The destroyed server closes the connection.
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest);
    assert_eq!(
        destroyer.destroyed_with.load(Ordering::SeqCst),
        1,
        "destroyWsServer inside the callback returned 0"
    );
    assert_eq!(destroyer.messages.load(Ordering::SeqCst), 1);
    assert_eq!(oasis_finalize(), 0);
}
