//! Lifetimes the application relies on: closing from inside a callback, and no callback after
//! destroyWsServer / oasis_finalize return, even while peers keep sending.

mod common;
use common::*;
use oasisnet::ffi::*;
use parking_lot::{Condvar, Mutex};
use std::ffi::c_void;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

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
    start_server_with(
        &watch_vtable(),
        watch as *const Watch as *mut c_void,
        &[("close-timeout-ms", "500")],
    )
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

/// A server whose onMessage is `on_message`, with `user` as its user pointer: (server, port).
fn server_with_on_message(
    on_message: unsafe extern "C" fn(*mut c_void, *mut WsEvent),
    user: *const c_void,
) -> (*mut WsServer, u16) {
    start_server_with(
        &message_vtable(None, Some(on_message)),
        user.cast_mut(),
        &[("close-timeout-ms", "500")],
    )
}

/// Sixteen text frames in one write, "message 0" to "message 15": they arrive in one read, and
/// the server delivers them as one run (from the second on, with the delegate's gate held).
fn send_sixteen_at_once(client: &mut RawClient) {
    use std::io::Write;
    let messages: Vec<u8> = (0..16)
        .flat_map(|i| client_frame(0x81, format!("message {i}").as_bytes()))
        .collect();
    client.stream.write_all(&messages).unwrap();
}

/// Spins until `done` holds; panics after WAIT.
fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::yield_now();
    }
}

/// What the destroying onMessage is told and what it saw.
#[derive(Default)]
struct Destroyer {
    server: AtomicUsize,
    /// The onMessage (counted from 1) that calls destroyWsServer itself; 0: none.
    destroy_at: usize,
    /// The onMessage that waits inside until another thread calls destroyWsServer, and stays
    /// a while longer; 0: none.
    wait_at: usize,
    messages: AtomicUsize,
    /// What destroyWsServer inside the callback returned, plus one (0: not called).
    destroyed_with: AtomicUsize,
    waiting: AtomicBool,
    destroying: AtomicBool,
    inside: AtomicBool,
}

unsafe extern "C" fn count_and_destroy(user: *mut c_void, _event: *mut WsEvent) {
    let destroyer = unsafe { &*(user as *const Destroyer) };
    destroyer.inside.store(true, Ordering::SeqCst);
    let n = destroyer.messages.fetch_add(1, Ordering::SeqCst) + 1;
    if n == destroyer.destroy_at {
        let result = destroyWsServer(destroyer.server.load(Ordering::SeqCst) as *mut WsServer);
        destroyer
            .destroyed_with
            .store(result as usize + 1, Ordering::SeqCst);
    }
    if n == destroyer.wait_at {
        destroyer.waiting.store(true, Ordering::SeqCst);
        wait_until("the test thread destroys the server", || {
            destroyer.destroying.load(Ordering::SeqCst)
        });
        // Not synchronisation: a destroyWsServer that did not wait for this run would return
        // within this time, with the callback still running, and the test would see it.
        let until = Instant::now() + Duration::from_millis(50);
        while Instant::now() < until {
            std::thread::yield_now();
        }
    }
    destroyer.inside.store(false, Ordering::SeqCst);
}

/// A server whose onMessage is `count_and_destroy` with `destroyer`, and a client that has
/// sent it sixteen messages in one write.
fn destroyer_and_client(destroyer: &'static Destroyer) -> (*mut WsServer, RawClient) {
    init();
    let (server, port) = server_with_on_message(
        count_and_destroy,
        destroyer as *const Destroyer as *const c_void,
    );
    destroyer.server.store(server as usize, Ordering::SeqCst);
    let mut client = RawClient::connect(port);
    send_sixteen_at_once(&mut client);
    (server, client)
}

/// Messages that arrive together are delivered as one run: `destroyWsServer` from the onMessage
/// of one of them returns at once (the callback's own server, on the callback's own thread),
/// and none of the later ones reaches the application. The first message of a run takes the
/// gate for itself, the later ones run inside the held gate: both are checked.
#[test]
fn destroy_inside_a_callback_stops_the_messages_that_arrived_with_it() {
    for destroy_at in [1, 3] {
        let destroyer: &'static Destroyer = Box::leak(Box::new(Destroyer {
            destroy_at,
            ..Destroyer::default()
        }));
        let (_server, mut client) = destroyer_and_client(destroyer);
        // The destroyed server closes the connection.
        assert!(
            client.sees_eof(),
            "the destroyed server closed the connection"
        );
        assert_eq!(
            destroyer.destroyed_with.load(Ordering::SeqCst),
            1,
            "destroyWsServer inside onMessage {destroy_at} returned 0"
        );
        assert_eq!(destroyer.messages.load(Ordering::SeqCst), destroy_at);
        assert_eq!(oasis_finalize(), 0);
    }
}

/// destroyWsServer from another thread while the event loop delivers a run of messages waits
/// for the callback that runs, returns 0, and no callback starts after it returned. (It also
/// waits for the server's connections to close, which the rest of the run comes before.)
#[test]
fn destroy_from_another_thread_waits_for_a_run_of_messages() {
    let destroyer: &'static Destroyer = Box::leak(Box::new(Destroyer {
        wait_at: 2,
        ..Destroyer::default()
    }));
    let (server, mut client) = destroyer_and_client(destroyer);
    wait_until("the second onMessage runs", || {
        destroyer.waiting.load(Ordering::SeqCst)
    });
    destroyer.destroying.store(true, Ordering::SeqCst);
    assert_eq!(destroyWsServer(server), 0, "{}", last_error());
    assert!(
        !destroyer.inside.load(Ordering::SeqCst),
        "destroyWsServer returned while onMessage was running"
    );
    let delivered = destroyer.messages.load(Ordering::SeqCst);
    assert!(
        client.sees_eof(),
        "the destroyed server closed the connection"
    );
    assert_eq!(
        destroyer.messages.load(Ordering::SeqCst),
        delivered,
        "an onMessage started after destroyWsServer returned"
    );
    assert_eq!(oasis_finalize(), 0);
}

/// The handle of the event being delivered, and its message's number, as the last onMessage
/// published them, for a thread that polls the handle.
#[derive(Default)]
struct Published {
    latest: Mutex<(usize, usize)>,
    messages: AtomicUsize,
    /// Polls that found the event live, counted by the polling thread.
    live_polls: AtomicUsize,
}

unsafe extern "C" fn publish_handle(user: *mut c_void, event: *mut WsEvent) {
    let published = unsafe { &*(user as *const Published) };
    let n = published.messages.load(Ordering::SeqCst);
    let live_polls = published.live_polls.load(Ordering::SeqCst);
    *published.latest.lock() = (event as usize, n);
    // One message of each burst, inside the held run, waits until the polling thread has
    // read its data through the handle: the polls then also meet the event live.
    if n % 16 == 5 {
        wait_until("the polling thread reads a live event", || {
            published.live_polls.load(Ordering::SeqCst) > live_polls
        });
    }
    published.messages.store(n + 1, Ordering::SeqCst);
}

/// A thread that keeps asking for the data of the latest event handle, while the event loop
/// delivers messages in runs and reuses its event slot for each, gets either that event's own
/// message (while its callback runs) or EBADF: never the data of a later message, never a crash.
#[test]
fn a_handle_polled_from_another_thread_never_shows_a_later_event() {
    use std::io::Write;
    const BURSTS: usize = 200;
    init();
    let published: &'static Published = Box::leak(Box::default());
    let (server, port) = server_with_on_message(
        publish_handle,
        published as *const Published as *const c_void,
    );
    let mut client = RawClient::connect(port);
    let stop = Arc::new(AtomicBool::new(false));
    let poller = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let (mut live, mut stale) = (0usize, 0usize);
            while !stop.load(Ordering::SeqCst) {
                let (handle, n) = *published.latest.lock();
                if handle == 0 {
                    continue;
                }
                let mut data = std::ptr::null();
                let length = unsafe { wsEventData(handle as *const WsEvent, &mut data) };
                if length < 0 {
                    assert_eq!(errno(), libc::EBADF, "{}", last_error());
                    stale += 1;
                } else {
                    let bytes = unsafe { std::slice::from_raw_parts(data, length as usize) };
                    assert_eq!(
                        bytes,
                        format!("message {}", n % 16).as_bytes(),
                        "the handle of message {n} showed other data"
                    );
                    live += 1;
                    published.live_polls.fetch_add(1, Ordering::SeqCst);
                }
            }
            (live, stale)
        })
    };
    for _ in 0..BURSTS {
        send_sixteen_at_once(&mut client);
    }
    client.stream.flush().unwrap();
    wait_until("every message was delivered", || {
        published.messages.load(Ordering::SeqCst) == BURSTS * 16
    });
    stop.store(true, Ordering::SeqCst);
    let (live, stale) = poller.join().expect("the polling thread");
    // The last callback has returned: its handle is stale now, whichever thread asks.
    let (handle, _) = *published.latest.lock();
    let mut data = std::ptr::null();
    assert_eq!(
        unsafe { wsEventData(handle as *const WsEvent, &mut data) },
        -1
    );
    assert_eq!(errno(), libc::EBADF);
    eprintln!("polls: {live} while the callback ran, {stale} after it");
    assert!(live >= BURSTS, "{live} polls met a live event");
    assert_eq!(destroyWsServer(server), 0);
    assert_eq!(oasis_finalize(), 0);
}
