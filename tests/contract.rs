//! The API contract under misuse: stale, foreign and double-released handles of every kind,
//! event lifetimes, what a connection reports inside onError/onClose, the failure's close code
//! surviving a close from onError, and `…Release(NULL)`.

mod common;

use common::*;
use oasisnet::ffi::*;
use parking_lot::{Condvar, Mutex};
use std::ffi::c_void;
use std::time::Instant;

/// A list of facts a callback reports, and a bounded wait for one.
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

    fn wait_for(&self, prefix: &str) -> String {
        let deadline = Instant::now() + WAIT;
        let mut list = self.list.lock();
        loop {
            if let Some(found) = list.iter().find(|f| f.starts_with(prefix)) {
                return found.clone();
            }
            if self.changed.wait_until(&mut list, deadline).timed_out() {
                panic!("timed out waiting for '{prefix}'; facts: {:?}", *list);
            }
        }
    }
}

fn vtable(
    on_message: WsEventCallback,
    on_error: WsEventCallback,
    on_close: WsEventCallback,
) -> WsEventDelegateVTable {
    WsEventDelegateVTable {
        struct_size: std::mem::size_of::<WsEventDelegateVTable>() as u32,
        onOpen: None,
        onMessage: on_message,
        onError: on_error,
        onClose: on_close,
        release: None,
    }
}

/// A server whose callbacks report to `facts` (which must outlive the server).
fn start_probe_server(facts: &'static Facts, table: WsEventDelegateVTable) -> (*mut WsServer, u16) {
    let p = params(&[("port", "0"), ("bind-address", "127.0.0.1")]);
    let server = unsafe {
        createWsServer(
            p.pairs.as_ptr(),
            p.pairs.len(),
            &table,
            facts as *const Facts as *mut c_void,
        )
    };
    assert!(!server.is_null(), "{}", last_error());
    assert_eq!(startWsServer(server), 0, "{}", last_error());
    (server, wsServerPort(server) as u16)
}

fn facts_of<'a>(user: *mut c_void) -> &'a Facts {
    unsafe { &*(user as *const Facts) }
}

fn leak_facts() -> &'static Facts {
    Box::leak(Box::default())
}

#[test]
fn a_released_connection_handle_never_reaches_a_later_connection() {
    init();
    let server_seen = Recorder::new(false);
    let (server, port) = start_server(&server_seen, &[]);
    let url = format!("ws://127.0.0.1:{port}/");
    // Enough cycles for released slots to be swept and handed out again.
    let mut stale = Vec::new();
    for cycle in 0..300 {
        let client = Recorder::new(false);
        let connection = open(&url, &client, &[], 5000);
        assert!(!connection.is_null(), "cycle {cycle}: {}", last_error());
        assert_eq!(wsCloseConnection(connection), 0);
        client.wait_for("onClose", |e| e.iter().any(|(_, s)| is_close(s)));
        assert_eq!(wsConnectionRelease(connection), 0);
        stale.push(connection);
    }
    let newest_seen = Recorder::new(false);
    let newest = open(&url, &newest_seen, &[], 5000);
    assert!(!newest.is_null(), "{}", last_error());
    for &old in &stale {
        assert_ne!(old, newest, "a stale handle equals the newest one");
        assert_eq!(send_text(old, "stale"), -1);
        assert_eq!(errno(), libc::EBADF, "{}", last_error());
        assert_eq!(wsConnectionIsOpen(old), -1);
        assert_eq!(errno(), libc::EBADF);
        assert_eq!(wsConnectionRelease(old), -1, "double release");
        assert_eq!(errno(), libc::EBADF);
    }
    // Only what was sent on the newest handle arrives.
    assert_eq!(send_text(newest, "fresh"), 0);
    let seen = server_seen.wait_messages(1);
    let texts: Vec<&[u8]> = seen
        .iter()
        .filter_map(|(_, s)| match s {
            Seen::Message(_, bytes) => Some(bytes.as_slice()),
            _ => None,
        })
        .collect();
    assert_eq!(texts, vec![b"fresh".as_slice()]);
    assert_eq!(wsConnectionRelease(newest), 0);
    assert_eq!(destroyWsServer(server), 0);
}

#[test]
fn foreign_null_and_destroyed_server_and_connection_handles() {
    init();
    let foreign = 0x1234_5678usize;
    assert_eq!(wsServerPort(foreign as *mut WsServer), -1);
    assert_eq!(errno(), libc::EBADF);
    assert_eq!(send_text(foreign as *mut WsConnection, "x"), -1);
    assert_eq!(errno(), libc::EBADF);
    assert_eq!(wsEventStatusCode(foreign as *const WsEvent), -1);
    assert_eq!(errno(), libc::EBADF);

    // Releasing NULL is a no-op, as free(NULL) is.
    assert_eq!(wsConnectionRelease(std::ptr::null_mut()), 0);
    assert_eq!(wsServerRelease(std::ptr::null_mut()), 0);
    assert_eq!(wsEventRelease(std::ptr::null_mut()), 0);
    assert_eq!(destroyWsServer(std::ptr::null_mut()), 0);

    let recorder = Recorder::new(false);
    let (server, _) = start_server(&recorder, &[]);
    assert_eq!(destroyWsServer(server), 0);
    assert_eq!(wsServerPort(server), -1);
    assert_eq!(errno(), libc::EBADF);
    assert_eq!(startWsServer(server), -1);
    assert_eq!(errno(), libc::EBADF);
    assert_eq!(destroyWsServer(server), -1, "destroyed twice");
    assert_eq!(errno(), libc::EBADF);
    // A new server does not answer to the old handle.
    let (second, port) = start_server(&recorder, &[]);
    assert_ne!(second, server);
    assert_eq!(wsServerPort(server), -1);
    assert_eq!(wsServerPort(second), i32::from(port));
    assert_eq!(destroyWsServer(second), 0);
}

// ---- events ---------------------------------------------------------------------------------

struct EventProbe {
    facts: Facts,
    /// The last message event, kept retained, and the data pointer fetched after the retain.
    kept: Mutex<Option<(usize, usize, usize)>>,
    /// A message event that was not retained, used after its callback.
    stale: Mutex<Option<usize>>,
}

static EVENT_PROBE: std::sync::OnceLock<EventProbe> = std::sync::OnceLock::new();

unsafe extern "C" fn misuse_events(_user: *mut c_void, event: *mut WsEvent) {
    let probe = EVENT_PROBE.get().unwrap();
    let mut data = std::ptr::null();
    let n = unsafe { wsEventData(event, &mut data) };
    let text = unsafe { std::slice::from_raw_parts(data, n as usize) }.to_vec();
    match text.as_slice() {
        b"release-without-retain" => {
            let rc = wsEventRelease(event);
            let err = errno();
            // The event is still the callback's: it keeps working.
            let still = wsEventStatusCode(event);
            probe.facts.push(format!(
                "release-without-retain rc={rc} errno={err} after={still}"
            ));
        }
        b"retain-once-release-twice" => {
            let retain = wsEventRetain(event);
            let first = wsEventRelease(event);
            let second = wsEventRelease(event);
            let err = errno();
            probe.facts.push(format!(
                "retain-once-release-twice retain={retain} first={first} second={second} errno={err}"
            ));
        }
        b"keep" => {
            assert_eq!(wsEventRetain(event), 0);
            let mut kept = std::ptr::null();
            let n = unsafe { wsEventData(event, &mut kept) };
            *probe.kept.lock() = Some((event as usize, kept as usize, n as usize));
            probe.facts.push("kept".into());
        }
        b"forget" => {
            *probe.stale.lock() = Some(event as usize);
            probe.facts.push("forgotten".into());
        }
        b"sync" => probe.facts.push("synced".into()),
        _ => {}
    }
}

#[test]
fn event_handles_are_checked_and_retained_data_stays_valid() {
    init();
    let _ = EVENT_PROBE.set(EventProbe {
        facts: Facts::default(),
        kept: Mutex::new(None),
        stale: Mutex::new(None),
    });
    let probe = EVENT_PROBE.get().unwrap();
    let facts = leak_facts();
    let (server, port) = start_probe_server(facts, vtable(Some(misuse_events), None, None));
    let mut client = RawClient::connect(port);

    client.send_frame(0x81, b"release-without-retain");
    let fact = probe.facts.wait_for("release-without-retain");
    assert_eq!(
        fact,
        format!("release-without-retain rc=-1 errno={} after=0", libc::EBADF)
    );

    client.send_frame(0x81, b"retain-once-release-twice");
    let fact = probe.facts.wait_for("retain-once-release-twice");
    assert_eq!(
        fact,
        format!(
            "retain-once-release-twice retain=0 first=0 second=-1 errno={}",
            libc::EBADF
        )
    );

    client.send_frame(0x81, b"keep");
    probe.facts.wait_for("kept");
    client.send_frame(0x81, b"forget");
    // More messages reuse the loop's buffer and the thread's event slot; "sync" is handled only
    // after the callbacks before it have returned.
    for _ in 0..10 {
        client.send_frame(0x81, b"0123456789abcdefghijklmnopqrstuvwxyz");
    }
    client.send_frame(0x81, b"sync");
    probe.facts.wait_for("synced");

    // The event that was not retained is stale now, on this thread and any other.
    let stale = probe.stale.lock().unwrap() as *mut WsEvent;
    let mut data = std::ptr::null();
    assert_eq!(unsafe { wsEventData(stale, &mut data) }, -1);
    assert_eq!(errno(), libc::EBADF);
    assert_eq!(wsEventRetain(stale), -1);
    assert_eq!(errno(), libc::EBADF);
    assert!(wsEventConnection(stale).is_null());

    // The retained one: the pointer fetched after the retain still holds the message.
    let (kept, pointer, length) = probe.kept.lock().unwrap();
    let kept_handle = kept;
    let kept = kept as *mut WsEvent;
    let bytes = unsafe { std::slice::from_raw_parts(pointer as *const u8, length) };
    assert_eq!(bytes, b"keep");
    assert_eq!(wsEventMessageType(kept), ws_message_t::kWsMessageText);
    assert!(!wsEventConnection(kept).is_null());
    let from_other_thread = std::thread::spawn(move || wsEventRelease(kept_handle as *mut WsEvent));
    assert_eq!(from_other_thread.join().unwrap(), 0);
    assert_eq!(wsEventStatusCode(kept), -1);
    assert_eq!(errno(), libc::EBADF);
    assert_eq!(wsEventRelease(kept), -1);
    assert_eq!(errno(), libc::EBADF);
    drop(client);
    assert_eq!(destroyWsServer(server), 0);
}

// ---- what a connection reports inside onError and onClose -----------------------------------

unsafe extern "C" fn report_state(user: *mut c_void, event: *mut WsEvent) {
    let facts = facts_of(user);
    let connection = wsEventConnection(event);
    let open = wsConnectionIsOpen(connection);
    let sent = send_text(connection, "too late");
    let err = errno();
    let kind = if wsEventMessageType(event) == ws_message_t::kWsMessageUnknown {
        "event"
    } else {
        "message"
    };
    facts.push(format!(
        "{kind} {} open={open} send={sent} errno={err}",
        wsEventStatusCode(event)
    ));
}

fn expect_closed_state(fact: &str, code: i32) {
    assert_eq!(
        fact,
        format!("event {code} open=0 send=-1 errno={}", libc::ENOTCONN),
        "inside the callback the connection must report itself closed"
    );
}

#[test]
fn a_connection_reports_itself_closed_in_onclose_after_fin_or_reset() {
    init();
    let facts = leak_facts();
    let (server, port) = start_probe_server(facts, vtable(None, None, Some(report_state)));

    // FIN without a closing handshake.
    let client = RawClient::connect(port);
    drop(client);
    expect_closed_state(&facts.wait_for("event 1006"), 1006);

    // RST (linger 0) without a closing handshake.
    facts.list.lock().clear();
    let client = RawClient::connect(port);
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    use std::os::fd::AsRawFd;
    let rc = unsafe {
        libc::setsockopt(
            client.stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as u32,
        )
    };
    assert_eq!(rc, 0);
    drop(client);
    expect_closed_state(&facts.wait_for("event 1006"), 1006);
    assert_eq!(destroyWsServer(server), 0);
}

unsafe extern "C" fn close_in_on_error(user: *mut c_void, event: *mut WsEvent) {
    let facts = facts_of(user);
    let connection = wsEventConnection(event);
    let open = wsConnectionIsOpen(connection);
    let sent = send_text(connection, "too late");
    let err = errno();
    // What a natural handler does; it must not replace the failure's code on the wire.
    let closed = wsCloseConnection(connection);
    facts.push(format!(
        "error {} open={open} send={sent} errno={err} close={closed}",
        wsEventStatusCode(event)
    ));
}

#[test]
fn closing_inside_onerror_keeps_the_failure_code_on_the_wire() {
    init();
    let facts = leak_facts();
    let (server, port) = start_probe_server(
        facts,
        vtable(None, Some(close_in_on_error), Some(report_state)),
    );
    for (first, payload, code) in [
        (0xC1u8, b"rsv1 set".as_slice(), 1002i32),
        (0x81u8, b"\xff\xfe not utf-8".as_slice(), 1007i32),
    ] {
        facts.list.lock().clear();
        let mut client = RawClient::connect(port);
        client.send_frame(first, payload);
        assert_eq!(client.read_close_code().map(i32::from), Some(code));
        let fact = facts.wait_for(&format!("error {code} "));
        assert_eq!(
            fact,
            format!(
                "error {code} open=0 send=-1 errno={} close=0",
                libc::ENOTCONN
            )
        );
        // onClose follows with the same code, and the connection still reports itself closed.
        expect_closed_state(&facts.wait_for(&format!("event {code} ")), code);
    }
    assert_eq!(destroyWsServer(server), 0);
}

#[test]
fn a_second_initialize_changes_nothing_and_says_so() {
    capture_logs();
    init();
    assert_eq!(oasis_log_get_level(), 3, "init() asks for info");
    let p = params(&[("log-level", "error"), ("event-loop-threads", "3")]);
    assert_eq!(
        unsafe { oasis_initialize(p.pairs.as_ptr(), p.pairs.len()) },
        0
    );
    assert_eq!(
        oasis_log_get_level(),
        3,
        "the second call applied its log-level"
    );
    assert!(logged("already initialized; this call changed nothing"));
    // Still usable.
    let recorder = Recorder::new(true);
    let (server, port) = start_server(&recorder, &[]);
    let client = Recorder::new(false);
    let connection = open(&format!("ws://127.0.0.1:{port}/"), &client, &[], 5000);
    assert!(!connection.is_null());
    assert_eq!(wsConnectionRelease(connection), 0);
    assert_eq!(destroyWsServer(server), 0);
}
