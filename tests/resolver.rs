//! Name resolution and the two-phase timeout of `wsOpenConnection`, against a name server the
//! test controls.
//!
//! Each test runs in a private network and mount namespace (`unshare -mn`) where
//! /etc/resolv.conf names 127.0.0.1 as the only name server and the test answers DNS on
//! 127.0.0.1:53 itself: a name `no-answer.*` is never answered (as with a name server that is
//! down: glibc waits `timeout:5 attempts:2`, ten seconds and more), a name `dns-<ms>.*` is
//! answered with 127.0.0.1 after <ms> milliseconds. Outside such a namespace a test re-executes
//! itself inside one (as root, as in CI); set OASISNET_SKIP_NETNS_TESTS=1 to skip them where
//! namespaces are not allowed.

mod common;
use common::*;
use oasisnet::ffi::*;
use std::ffi::{CString, c_void};
use std::io::{Read, Write};
use std::net::{TcpListener, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Set in the environment of a test re-executed inside its namespace.
const INSIDE_NAMESPACE: &str = "OASISNET_TEST_IN_NETNS";
/// Set to skip these tests where `unshare` is not permitted.
const SKIP: &str = "OASISNET_SKIP_NETNS_TESTS";

/// glibc's own limits for a query: far longer than any timeout the tests use, so a test that
/// waited for glibc would fail its time bound.
const RESOLV_CONF: &str = "nameserver 127.0.0.1\noptions timeout:5 attempts:2\n";

/// Runs `body` inside a private network + mount namespace with our resolv.conf, re-executing
/// this test (`name`) there when not inside one yet.
fn in_namespace(name: &str, body: impl FnOnce()) {
    if std::env::var_os(INSIDE_NAMESPACE).is_some() {
        body();
        return;
    }
    let probe = std::process::Command::new("unshare")
        .args(["-mn", "true"])
        .stderr(std::process::Stdio::piped())
        .output();
    let refused = match &probe {
        Ok(output) if output.status.success() => None,
        Ok(output) => Some(String::from_utf8_lossy(&output.stderr).into_owned()),
        Err(err) => Some(format!("cannot run unshare (util-linux): {err}")),
    };
    if let Some(why) = refused {
        if std::env::var_os(SKIP).is_some() {
            eprintln!("{name}: skipped ({SKIP} is set): unshare -mn failed: {why}");
            return;
        }
        panic!(
            "{name} needs a private network namespace (unshare -mn, as root or with \
             CAP_SYS_ADMIN, and `ip` from iproute2): {why}\nSet {SKIP}=1 to skip these tests."
        );
    }
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("netns-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let resolv_conf = dir.join("resolv.conf");
    let nsswitch_conf = dir.join("nsswitch.conf");
    std::fs::write(&resolv_conf, RESOLV_CONF).unwrap();
    std::fs::write(&nsswitch_conf, "hosts: files dns\n").unwrap();
    let script = r#"set -e
ip link set lo up
mount --bind "$1" /etc/resolv.conf
mount --bind "$2" /etc/nsswitch.conf
shift 2
exec "$@""#;
    let status = std::process::Command::new("unshare")
        .args(["-mn", "sh", "-c", script, "sh"])
        .arg(&resolv_conf)
        .arg(&nsswitch_conf)
        .arg(std::env::current_exe().unwrap())
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(INSIDE_NAMESPACE, "1")
        .status()
        .expect("unshare");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(status.success(), "{name} failed inside its namespace");
}

/// The name server on 127.0.0.1:53: `no-answer.*` never answered, `dns-<ms>.*` answered with
/// one A record 127.0.0.1 (and no AAAA record) after <ms> milliseconds, anything else NXDOMAIN.
fn start_name_server() {
    let socket = UdpSocket::bind("127.0.0.1:53").expect("bind 127.0.0.1:53 in the namespace");
    std::thread::spawn(move || {
        let mut buffer = [0u8; 512];
        loop {
            let Ok((n, from)) = socket.recv_from(&mut buffer) else {
                return;
            };
            let query = buffer[..n].to_vec();
            let Some((name, question_end)) = question(&query) else {
                continue;
            };
            if name.starts_with("no-answer.") {
                continue;
            }
            let delay = name
                .strip_prefix("dns-")
                .and_then(|rest| rest.split('.').next())
                .and_then(|ms| ms.parse::<u64>().ok());
            let socket = socket.try_clone().unwrap();
            std::thread::spawn(move || {
                if let Some(ms) = delay {
                    // The name server's latency under test, not a synchronisation.
                    std::thread::sleep(Duration::from_millis(ms));
                }
                let _ = socket.send_to(&answer(&query, question_end, delay.is_some()), from);
            });
        }
    });
}

/// The queried name (lower case, dot-separated) and where the question section ends.
fn question(query: &[u8]) -> Option<(String, usize)> {
    let mut labels = Vec::new();
    let mut at = 12;
    loop {
        let length = *query.get(at)? as usize;
        at += 1;
        if length == 0 {
            break;
        }
        labels.push(String::from_utf8_lossy(query.get(at..at + length)?).to_lowercase());
        at += length;
    }
    let question_end = at + 4;
    (query.len() >= question_end).then(|| (labels.join("."), question_end))
}

/// The response to `query`: its id and question, then one A record 127.0.0.1 when the
/// question asks for A and `found`; NXDOMAIN when not `found`.
fn answer(query: &[u8], question_end: usize, found: bool) -> Vec<u8> {
    let asks_for_a = query[question_end - 4..question_end - 2] == [0, 1];
    let records = u8::from(found && asks_for_a);
    let rcode = if found { 0 } else { 3 };
    let mut response = vec![
        query[0],
        query[1],
        0x81,
        0x80 | rcode,
        0,
        1,
        0,
        records,
        0,
        0,
        0,
        0,
    ];
    response.extend_from_slice(&query[12..question_end]);
    if records == 1 {
        // Name: pointer to the question's; type A, class IN, TTL 60, 4 bytes of address.
        response.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 1]);
    }
    response
}

/// A WebSocket server written out by hand that accepts the upgrade `delay` after the request
/// arrived; after that it answers the client's first frame with a close frame.
fn slow_upgrade_server(delay: Duration) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if stream.read(&mut byte).unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                let key = head
                    .lines()
                    .find_map(|line| {
                        let (name, value) = line.split_once(':')?;
                        name.trim()
                            .eq_ignore_ascii_case("sec-websocket-key")
                            .then(|| value.trim().to_string())
                    })
                    .expect("Sec-WebSocket-Key");
                // The server's slowness under test, not a synchronisation.
                std::thread::sleep(delay);
                let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
                let response = format!(
                    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
                     Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
                );
                if stream.write_all(response.as_bytes()).is_err() {
                    return;
                }
                let mut frame = [0u8; 256];
                if stream.read(&mut frame).unwrap_or(0) > 0 {
                    let _ = stream.write_all(&[0x88, 0x02, 0x03, 0xe8]);
                }
            });
        }
    });
    port
}

fn saw_error(recorder: &Recorder) -> bool {
    recorder.count(|s| matches!(s, Seen::Error(_))) > 0
}

#[test]
fn blocking_open_gives_up_on_a_silent_name_server_within_its_timeout() {
    in_namespace(
        "blocking_open_gives_up_on_a_silent_name_server_within_its_timeout",
        || {
            start_name_server();
            init();
            let events = Recorder::new(false);
            let started = Instant::now();
            let connection = open("ws://no-answer.example.test/", &events, &[], 1000);
            let took = started.elapsed();
            assert!(connection.is_null());
            assert_eq!(errno(), libc::ETIMEDOUT, "{}", last_error());
            assert!(
                took >= Duration::from_millis(950) && took < Duration::from_secs(3),
                "returned after {took:?}"
            );
            events.wait_for("onError", |e| {
                e.iter().any(|(_, s)| *s == Seen::Error(1006))
            });
            assert_eq!(events.count(|s| *s == Seen::Open), 0);
            oasis_finalize();
        },
    );
}

#[test]
fn non_blocking_open_returns_at_once_and_reports_the_handshake_timeout() {
    in_namespace(
        "non_blocking_open_returns_at_once_and_reports_the_handshake_timeout",
        || {
            start_name_server();
            init();
            let events = Recorder::new(false);
            let started = Instant::now();
            let connection = open(
                "ws://no-answer.example.test/",
                &events,
                &[("handshake-timeout-ms", "1000")],
                0,
            );
            assert!(!connection.is_null(), "{}", last_error());
            assert!(
                started.elapsed() < Duration::from_millis(500),
                "returned after {:?}",
                started.elapsed()
            );
            events.wait_for("onError", |e| {
                e.iter().any(|(_, s)| *s == Seen::Error(1006))
            });
            let took = started.elapsed();
            assert!(
                took >= Duration::from_millis(950) && took < Duration::from_secs(3),
                "onError after {took:?}"
            );
            assert_eq!(events.count(|s| *s == Seen::Open), 0);
            wsConnectionRelease(connection);
            oasis_finalize();
        },
    );
}

/// The delegate of a connection whose onMessage opens another connection (non-blocking, to a
/// name nobody answers) and notes how long that call took.
struct OpensFromCallback {
    state: parking_lot::Mutex<Nested>,
    changed: parking_lot::Condvar,
    /// The nested connection's delegate.
    opened: Arc<Recorder>,
}

#[derive(Default)]
struct Nested {
    call_took: Option<Duration>,
    messages: Vec<Vec<u8>>,
}

impl OpensFromCallback {
    /// Waits (at most WAIT) until `pred` holds.
    fn wait_until(&self, what: &str, pred: impl Fn(&Nested) -> bool) {
        let deadline = Instant::now() + WAIT;
        let mut state = self.state.lock();
        while !pred(&state) {
            if self.changed.wait_until(&mut state, deadline).timed_out() {
                panic!("timed out waiting for {what}");
            }
        }
    }
}

unsafe extern "C" fn open_from_on_message(user: *mut c_void, event: *mut WsEvent) {
    let me = unsafe { &*(user as *const OpensFromCallback) };
    let mut data = std::ptr::null();
    let n = unsafe { wsEventData(event, &mut data) };
    let text = unsafe { std::slice::from_raw_parts(data, n.max(0) as usize) }.to_vec();
    if text == b"open now" {
        let started = Instant::now();
        let connection = open(
            "ws://no-answer.example.test/",
            &me.opened,
            &[("handshake-timeout-ms", "3000")],
            0,
        );
        me.state.lock().call_took = Some(started.elapsed());
        wsConnectionRelease(connection);
    }
    me.state.lock().messages.push(text);
    me.changed.notify_all();
}

#[test]
fn non_blocking_open_from_a_callback_does_not_stall_its_loop() {
    in_namespace(
        "non_blocking_open_from_a_callback_does_not_stall_its_loop",
        || {
            start_name_server();
            init();
            // One event loop (the default): the server side, the client and the nested open
            // all share it.
            let server_events = Recorder::new(true);
            let (server, port) = start_server(&server_events, &[]);
            let me = Arc::new(OpensFromCallback {
                state: parking_lot::Mutex::new(Nested::default()),
                changed: parking_lot::Condvar::new(),
                opened: Recorder::new(false),
            });
            let vtable = message_vtable(None, Some(open_from_on_message));
            let url = CString::new(format!("ws://127.0.0.1:{port}/")).unwrap();
            let client = unsafe {
                wsOpenConnection(
                    url.as_ptr(),
                    std::ptr::null(),
                    0,
                    &vtable,
                    Arc::as_ptr(&me) as *mut c_void,
                    5000,
                )
            };
            assert!(!client.is_null(), "{}", last_error());
            assert_eq!(send_text(client, "open now"), 0);
            me.wait_until("the echo that opens", |n| n.call_took.is_some());
            let call_took = me.state.lock().call_took.unwrap();
            assert!(
                call_took < Duration::from_millis(200),
                "the open inside the callback took {call_took:?}"
            );
            // The loop keeps serving while the nested open waits for its name.
            assert_eq!(send_text(client, "still echoing"), 0);
            me.wait_until("the second echo", |n| {
                n.messages.iter().any(|m| m == b"still echoing")
            });
            assert!(
                !saw_error(&me.opened),
                "the nested open failed before the echo came back"
            );
            me.opened.wait_for("nested onError", |e| {
                e.iter().any(|(_, s)| *s == Seen::Error(1006))
            });
            wsConnectionRelease(client);
            destroyWsServer(server);
            oasis_finalize();
        },
    );
}

/// A blocking open of `ws://dns-<dns_ms>.example.test:<port>/` to a server that accepts the
/// upgrade after `upgrade_ms`, with `timeout_msec`: the handle, errno, the time it took, and
/// what the delegate saw.
fn open_slow(
    dns_ms: u64,
    upgrade_ms: u64,
    timeout_msec: i32,
) -> (*mut WsConnection, i32, Duration, Arc<Recorder>) {
    let port = slow_upgrade_server(Duration::from_millis(upgrade_ms));
    let events = Recorder::new(false);
    let started = Instant::now();
    let connection = open(
        &format!("ws://dns-{dns_ms}.example.test:{port}/"),
        &events,
        &[],
        timeout_msec,
    );
    (connection, errno(), started.elapsed(), events)
}

#[test]
fn each_phase_of_a_blocking_open_has_the_whole_timeout() {
    in_namespace(
        "each_phase_of_a_blocking_open_has_the_whole_timeout",
        || {
            start_name_server();
            init();
            // Reached after 1.0 s, upgraded 0.9 s later: each phase within 1.6 s, so it opens,
            // though the whole takes 1.9 s.
            let (connection, _, took, events) = open_slow(1000, 900, 1600);
            assert!(!connection.is_null(), "after {took:?}: {}", last_error());
            events.wait_for("onOpen", |e| e.iter().any(|(_, s)| *s == Seen::Open));
            wsConnectionRelease(connection);
            // Upgraded 1.7 s after the connect: the second phase times out, 1.6 s after the connect.
            let (connection, errno, took, events) = open_slow(1000, 1700, 1600);
            assert!(connection.is_null());
            assert_eq!(errno, libc::ETIMEDOUT, "{}", last_error());
            assert!(
                took >= Duration::from_millis(2500) && took < Duration::from_millis(3500),
                "returned after {took:?}"
            );
            events.wait_for("onError", |e| {
                e.iter().any(|(_, s)| *s == Seen::Error(1006))
            });
            // The name answered after 1.7 s: the first phase (resolution included) times out.
            let (connection, errno, took, events) = open_slow(1700, 0, 1600);
            assert!(connection.is_null());
            assert_eq!(errno, libc::ETIMEDOUT, "{}", last_error());
            assert!(
                took >= Duration::from_millis(1550) && took < Duration::from_millis(2500),
                "returned after {took:?}"
            );
            events.wait_for("onError", |e| {
                e.iter().any(|(_, s)| *s == Seen::Error(1006))
            });
            assert_eq!(events.count(|s| *s == Seen::Open), 0);
            oasis_finalize();
        },
    );
}
