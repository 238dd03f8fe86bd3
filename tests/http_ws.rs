//! WebSocket services on the HTTP server's paths: the same echo, events and close codes as
//! createWsServer, per-service parameters and delegates, refusals (426, 405, 404), frames that
//! come with the upgrade, an upgrade behind a pipelined request, https and wss on one port,
//! the request's path, query and headers on a connection, and the server's lifecycle.

mod common;
use common::http::*;
use common::http_server::*;
use common::*;
use oasisnet::ffi::*;
use parking_lot::Mutex;
use std::ffi::{CString, c_void};
use std::sync::Arc;

fn protocol_of(connection: *mut WsConnection) -> String {
    c_text(|b, c| unsafe { wsConnectionProtocol(connection, b, c) }).unwrap()
}

/// A text, a binary and a close with 1000 from a client of this library; the events each side
/// saw, without connection ids.
fn echo_scenario(url: &str, server_events: &Arc<Recorder>) -> (Vec<Seen>, Vec<Seen>) {
    let client_events = Recorder::new(false);
    let client = open(url, &client_events, &[], 5000);
    assert!(!client.is_null(), "{url}: {}", last_error());
    assert_eq!(send_text(client, "hello"), 0);
    assert_eq!(
        unsafe { wsSendBinary(client, [1u8, 2, 3].as_ptr().cast(), 3) },
        0
    );
    client_events.wait_messages(2);
    assert_eq!(wsCloseConnection(client), 0);
    client_events.wait_for("client onClose", |e| e.iter().any(|(_, s)| is_close(s)));
    server_events.wait_for("server onClose", |e| e.iter().any(|(_, s)| is_close(s)));
    assert_eq!(wsConnectionRelease(client), 0);
    (server_events.seen(), client_events.seen())
}

#[test]
fn a_service_behaves_as_a_ws_server_with_its_own_parameters() {
    let _process = shared();
    init();
    let served = start_http(&[], None);
    let events = Recorder::new(true);
    let parameters = [
        ("websocket-protocols", "chat, superchat"),
        ("websocket-message-size-max", "1000"),
    ];
    assert_eq!(add_service(served.server, "/ws", &parameters, &events), 0);
    let url = format!("ws://127.0.0.1:{}/ws", served.port);
    let on_service = echo_scenario(&url, &events);
    let plain_events = Recorder::new(true);
    let (plain, plain_port) = start_server(&plain_events, &[]);
    let on_plain = echo_scenario(&format!("ws://127.0.0.1:{plain_port}/"), &plain_events);
    assert_eq!(on_service, on_plain, "service vs createWsServer");
    assert_eq!(
        on_service.0,
        vec![
            Seen::Open,
            Seen::Message(ws_message_t::kWsMessageText, b"hello".to_vec()),
            Seen::Message(ws_message_t::kWsMessageBinary, vec![1, 2, 3]),
            Seen::Close(1000, Vec::new()),
        ]
    );
    destroyWsServer(plain);

    // The service's subprotocols.
    let client_events = Recorder::new(false);
    let client = open(
        &url,
        &client_events,
        &[("websocket-protocols", "x, superchat")],
        5000,
    );
    assert!(!client.is_null(), "{}", last_error());
    assert_eq!(protocol_of(client), "superchat");
    wsConnectionRelease(client);
    // Its message size limit.
    let mut raw = ws_connect(served.port, "/ws");
    raw.send_frame(0x82, &[0u8; 2000]);
    assert_eq!(raw.read_close_code(), Some(1009));
    events.wait_for("onClose 1009", |e| {
        e.iter().any(|(_, s)| *s == Seen::Error(1009))
            && e.iter().any(|(_, s)| matches!(s, Seen::Close(1009, _)))
    });
    served.destroy();
}

/// Sends 16 KiB binaries from the server side to a peer that never reads, until EAGAIN; the
/// bytes accepted before.
fn fill_until_eagain(connection: *mut WsConnection) -> usize {
    let chunk = vec![7u8; 16 * 1024];
    let mut accepted = 0;
    while accepted < 256 << 20 {
        if unsafe { wsSendBinary(connection, chunk.as_ptr().cast(), chunk.len()) } != 0 {
            assert_eq!(errno(), libc::EAGAIN, "{}", last_error());
            return accepted;
        }
        accepted += chunk.len();
    }
    panic!("no EAGAIN after {accepted} bytes");
}

#[test]
fn each_service_has_its_own_delegate_and_send_buffer() {
    let _process = shared();
    init();
    let served = start_http(&[], None);
    let (a, b) = (Recorder::new(true), Recorder::new(true));
    assert_eq!(
        add_service(
            served.server,
            "/a",
            &[("send-buffer-size-max", "65536")],
            &a
        ),
        0
    );
    assert_eq!(
        add_service(
            served.server,
            "/b",
            &[("send-buffer-size-max", "33554432")],
            &b
        ),
        0
    );
    let (mut a1, mut a2, mut b1) = (
        ws_connect(served.port, "/a"),
        ws_connect(served.port, "/a"),
        ws_connect(served.port, "/b"),
    );
    for (client, text) in [(&mut a1, "a1"), (&mut a2, "a2"), (&mut b1, "b1")] {
        client.send_frame(0x81, text.as_bytes());
        assert_eq!(client.read_frame(), Some((0x81, text.as_bytes().to_vec())));
    }
    let connections = |r: &Recorder| {
        let mut ids: Vec<usize> = r.events.lock().iter().map(|(c, _)| *c).collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    };
    let (on_a, on_b) = (connections(&a), connections(&b));
    assert_eq!((on_a.len(), on_b.len()), (2, 1), "{on_a:?} {on_b:?}");
    assert!(!on_a.contains(&on_b[0]));
    assert_eq!(a.count(|s| matches!(s, Seen::Message(..))), 2);
    assert_eq!(
        b.count(|s| *s == Seen::Message(ws_message_t::kWsMessageText, b"b1".to_vec())),
        1
    );
    // Nobody reads from here on: each service pushes back at its own send-buffer-size-max.
    let small = fill_until_eagain(on_a[0] as *mut WsConnection);
    let roomy = fill_until_eagain(on_b[0] as *mut WsConnection);
    assert!(
        roomy > small + (16 << 20),
        "/a (64 KiB) accepted {small} bytes, /b (32 MiB) {roomy}"
    );
    drop((a1, a2, b1));
    served.destroy();
}

#[test]
fn service_paths_refuse_what_is_not_an_upgrade_and_unknown_paths_refuse_upgrades() {
    let _process = shared();
    init();
    let served = start_http(&[], None);
    let events = Recorder::new(true);
    assert_eq!(add_service(served.server, "/ws", &[], &events), 0);
    let plain = fetch(served.port, &get("/ws"));
    assert_eq!(plain.status, 426, "{plain:?}");
    assert_eq!(plain.header("upgrade"), Some("websocket"));
    // RFC 9110 7.8: the `upgrade` option comes with an Upgrade header; the connection stays.
    assert_eq!(plain.header("connection"), Some("Upgrade, keep-alive"));
    let post = fetch(served.port, &request("POST", "/ws", &[], b"x=1"));
    assert_eq!(post.status, 405, "{post:?}");
    assert_eq!(post.header("allow"), Some("GET"));
    let mut nope = Client::connect(served.port);
    assert_eq!(nope.exchange(&upgrade_request("/nope", "")).status, 404);
    assert!(nope.end().is_silent_close());
    let old_version =
        b"GET /ws HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n";
    let refused = fetch(served.port, old_version);
    assert_eq!(refused.status, 426, "{refused:?}");
    assert_eq!(refused.header("sec-websocket-version"), Some("13"));
    assert_eq!(refused.header("upgrade"), Some("websocket"));
    assert_eq!(refused.header("connection"), Some("Upgrade, close"));
    // RFC 6455 section 4.2.1 item 5: the key is the base64 encoding of 16 bytes.
    let bad_key = String::from_utf8(old_version.to_vec())
        .unwrap()
        .replace("dGhlIHNhbXBsZSBub25jZQ==", "AAAAAAAAAAAAAAAAAAAAAAAA")
        .replace("Version: 8", "Version: 13");
    let refused = fetch(served.port, bad_key.as_bytes());
    assert_eq!(refused.status, 400, "{refused:?}");
    // Services may be added while the server runs.
    assert_eq!(add_service(served.server, "/late", &[], &events), 0);
    drop(ws_connect(served.port, "/late"));
    events.wait_for("onOpen", |e| !e.is_empty());
    assert_eq!(events.count(|s| *s == Seen::Open), 1, "{:?}", events.seen());
    served.destroy();
}

#[test]
fn frames_sent_with_the_upgrade_are_delivered() {
    let _process = shared();
    init();
    let served = start_http(&[], None);
    let events = Recorder::new(false);
    assert_eq!(add_service(served.server, "/ws", &[], &events), 0);
    let mut client = Client::connect(served.port);
    let mut bytes = upgrade_request("/ws", "");
    bytes.extend(client_frame(0x81, b"with the upgrade"));
    bytes.extend(client_frame(0x82, &pattern(300, 5)));
    client.send(&bytes);
    assert_eq!(client.response().status, 101);
    let seen = events.wait_messages(2);
    let messages: Vec<&Seen> = seen.iter().map(|(_, s)| s).skip(1).collect();
    assert_eq!(
        messages,
        [
            &Seen::Message(ws_message_t::kWsMessageText, b"with the upgrade".to_vec()),
            &Seen::Message(ws_message_t::kWsMessageBinary, pattern(300, 5)),
        ]
    );
    drop(client);
    served.destroy();
}

#[test]
fn an_upgrade_behind_a_pipelined_request_follows_its_answer() {
    let _process = shared();
    init();
    let fixture = Fixture::new();
    let served = serve_files(&fixture, &[], None);
    let events = Recorder::new(true);
    assert_eq!(add_service(served.server, "/ws", &[], &events), 0);
    let mut client = Client::connect(served.port);
    client.send(&[get("/index.html"), upgrade_request("/ws", "")].concat());
    assert_eq!(client.response().body, fixture.bytes("index.html"));
    assert_eq!(client.response().status, 101);
    let mut ws = RawClient {
        stream: client.into_tcp(),
    };
    ws.send_frame(0x81, b"after 200 and 101");
    assert_eq!(ws.read_frame(), Some((0x81, b"after 200 and 101".to_vec())));
    drop(ws);
    served.destroy();
}

fn tls_keys(chain: &str, key: &str) -> (String, String) {
    (cert(chain), cert(key))
}

#[test]
fn https_and_wss_share_one_port() {
    let _process = shared();
    init();
    let fixture = Fixture::new();
    let (chain, key) = tls_keys("fullchain.pem", "privkey.pem");
    let served = serve_files(
        &fixture,
        &[("cert-file-path", &chain), ("pkey-file-path", &key)],
        None,
    );
    let events = Recorder::new(true);
    assert_eq!(add_service(served.server, "/ws", &[], &events), 0);
    let mut https = Client::connect_tls(served.port);
    assert_eq!(https.get("/t.txt").body, fixture.bytes("t.txt"));
    assert_eq!(https.get("/ws").status, 426);
    let client_events = Recorder::new(false);
    let root = cert("RootCA.pem");
    let client = open(
        &format!("wss://localhost:{}/ws", served.port),
        &client_events,
        &[("ca-certs-file-path", &root)],
        5000,
    );
    assert!(!client.is_null(), "{}", last_error());
    assert_eq!(send_text(client, "over wss"), 0);
    let seen = client_events.wait_messages(1);
    assert!(
        seen.iter()
            .any(|(_, s)| *s == Seen::Message(ws_message_t::kWsMessageText, b"over wss".to_vec()))
    );
    // Plain HTTP to the TLS port is not answered in the clear.
    let mut clear = Client::connect(served.port);
    clear.set_timeout(std::time::Duration::from_secs(3));
    clear.send(&get("/t.txt"));
    let (End::Eof(bytes) | End::Reset(bytes) | End::Timeout(bytes)) = clear.end();
    assert!(
        !bytes.starts_with(b"HTTP/"),
        "{:?}",
        String::from_utf8_lossy(&bytes)
    );
    wsConnectionRelease(client);
    served.destroy();
}

#[test]
fn tls_key_errors_match_create_ws_server() {
    let _process = shared();
    init();
    let (chain, key) = tls_keys("fullchain.pem", "privkey.pem");
    let (dsa_chain, dsa_key) = tls_keys("dsa_fullchain.pem", "dsa_pkey.pem");
    let (ec_chain, encrypted) = tls_keys("ec_fullchain.pem", "encrypted_pkey.pem");
    let cases: [(&[(&str, &str)], i32); 5] = [
        (
            &[("cert-file-path", &dsa_chain), ("pkey-file-path", &dsa_key)],
            libc::ENOTSUP,
        ),
        (
            &[("cert-file-path", &chain), ("pkey-file-path", &encrypted)],
            libc::ENOTSUP,
        ),
        (
            &[("cert-file-path", &ec_chain), ("pkey-file-path", &key)],
            libc::EINVAL,
        ),
        (
            &[
                ("cert-file-path", "/nonexistent/chain.pem"),
                ("pkey-file-path", &key),
            ],
            libc::ENOENT,
        ),
        (&[("cert-file-path", &chain)], libc::EINVAL),
    ];
    for (keys, expected) in cases {
        let mut list = vec![("port", "0")];
        list.extend_from_slice(keys);
        let p = params(&list);
        let http = unsafe {
            createHttpServer(
                p.pairs.as_ptr(),
                p.pairs.len(),
                std::ptr::null(),
                std::ptr::null_mut(),
            )
        };
        let http_errno = errno();
        let recorder = Recorder::new(false);
        let (vtable, user) = delegate(&recorder);
        let ws = unsafe { createWsServer(p.pairs.as_ptr(), p.pairs.len(), &vtable, user) };
        let ws_errno = errno();
        assert!(http.is_null() && ws.is_null(), "{keys:?}");
        assert_eq!((http_errno, ws_errno), (expected, expected), "{keys:?}");
    }
}

/// What onOpen read of a connection's request, and the connection (retained there).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Opened {
    path: String,
    query: String,
    probe: Option<String>,
    absent_errno: i32,
}

#[derive(Default)]
struct Probe {
    opened: Mutex<Vec<(usize, Opened)>>,
    count: Count,
}

fn request_header(connection: *mut WsConnection, name: &str) -> Option<String> {
    let name = CString::new(name).unwrap();
    c_text(|b, c| unsafe { wsConnectionRequestHeader(connection, name.as_ptr(), b, c) })
}

fn request_path_and_query(connection: *mut WsConnection) -> (String, String) {
    (
        c_text(|b, c| unsafe { wsConnectionRequestPath(connection, b, c) }).unwrap_or_default(),
        c_text(|b, c| unsafe { wsConnectionRequestQuery(connection, b, c) }).unwrap_or_default(),
    )
}

unsafe extern "C" fn probe_open(user: *mut c_void, event: *mut WsEvent) {
    let probe = unsafe { &*(user as *const Probe) };
    let connection = wsEventConnection(event);
    wsConnectionRetain(connection);
    let (path, query) = request_path_and_query(connection);
    let absent = request_header(connection, "X-Not-Sent");
    let opened = Opened {
        path,
        query,
        probe: request_header(connection, "x-probe"),
        absent_errno: if absent.is_none() { errno() } else { 0 },
    };
    probe.opened.lock().push((connection as usize, opened));
    probe.count.add();
}

fn probe_delegate() -> (WsEventDelegateVTable, *mut c_void, &'static Probe) {
    let probe: &'static Probe = Box::leak(Box::default());
    let vtable = WsEventDelegateVTable {
        struct_size: std::mem::size_of::<WsEventDelegateVTable>() as u32,
        onOpen: Some(probe_open),
        onMessage: None,
        onError: None,
        onClose: None,
        release: None,
    };
    (vtable, probe as *const Probe as *mut c_void, probe)
}

#[test]
fn a_connection_knows_its_request_path_query_and_headers() {
    let _process = shared();
    init();
    let served = start_http(&[], None);
    let (vtable, user, probe) = probe_delegate();
    for (path, keep) in [("/svc", "0"), ("/kept", "1")] {
        let p = params(&[("websocket-keep-request-headers", keep)]);
        let path = CString::new(path).unwrap();
        let rc = unsafe {
            createHttpWsService(
                served.server,
                path.as_ptr(),
                p.pairs.as_ptr(),
                1,
                &vtable,
                user,
            )
        };
        assert_eq!(rc, 0, "{}", last_error());
    }
    let (plain_vtable, plain_user, plain_probe) = probe_delegate();
    let p = params(&[("port", "0"), ("bind-address", "127.0.0.1")]);
    let plain = unsafe { createWsServer(p.pairs.as_ptr(), 2, &plain_vtable, plain_user) };
    assert!(
        !plain.is_null() && startWsServer(plain) == 0,
        "{}",
        last_error()
    );
    let plain_port = wsServerPort(plain) as u16;

    let upgrade = |port: u16, target: &str, probe: &Probe, n: usize| {
        let mut client = Client::connect(port);
        let response = client.exchange(&upgrade_request(target, "X-Probe: p r o b e\r\n"));
        assert_eq!(response.status, 101, "{target}: {response:?}");
        probe.count.wait_for(n);
        let (connection, opened) = probe.opened.lock()[n - 1].clone();
        (client, connection as *mut WsConnection, opened)
    };
    let expect = |path: &str, query: &str| Opened {
        path: path.into(),
        query: query.into(),
        probe: Some("p r o b e".into()),
        absent_errno: libc::ENOENT,
    };
    let (c1, svc, opened) = upgrade(served.port, "/svc?room=1&x", probe, 1);
    assert_eq!(opened, expect("/svc", "room=1&x"));
    let (c2, kept, opened) = upgrade(served.port, "/kept", probe, 2);
    assert_eq!(opened, expect("/kept", ""));
    let (c3, any, opened) = upgrade(plain_port, "/anything?x=1", plain_probe, 1);
    assert_eq!(opened, expect("/anything", "x=1"));

    // After onOpen: path and query stay; headers only where the server keeps them.
    for connection in [svc, any] {
        assert_eq!(request_header(connection, "x-probe"), None);
        assert_eq!(errno(), libc::ENODATA, "{}", last_error());
    }
    assert_eq!(
        request_header(kept, "x-probe").as_deref(),
        Some("p r o b e")
    );
    assert_eq!(
        request_path_and_query(svc),
        ("/svc".to_string(), "room=1&x".to_string())
    );
    for connection in [svc, kept, any] {
        assert_eq!(wsConnectionRelease(connection), 0);
    }
    drop((c1, c2, c3));
    destroyWsServer(plain);
    served.destroy();
}

#[test]
fn stop_restart_and_destroy_close_everything_and_release_each_delegate_once() {
    let _process = shared();
    init();
    let fixture = Fixture::new();
    let upstream = Upstream::answer(|request| {
        request.set_status(200);
    });
    let served = serve_files(&fixture, &[], Some(upstream));
    let (one, two) = (Recorder::new(true), Recorder::new(true));
    assert_eq!(add_service(served.server, "/one", &[], &one), 0);
    assert_eq!(add_service(served.server, "/two", &[], &two), 0);
    let client_events = Recorder::new(false);
    let url = format!("ws://127.0.0.1:{}/one", served.port);
    let client = open(&url, &client_events, &[], 5000);
    assert!(!client.is_null(), "{}", last_error());
    let mut idle = Client::connect(served.port);
    assert_eq!(idle.get("/t.txt").status, 200);

    assert_eq!(stopHttpServer(served.server), 0);
    client_events.wait_for("onClose", |e| e.iter().any(|(_, s)| is_close(s)));
    assert!(
        matches!(client_events.seen().last(), Some(Seen::Close(1001, _))),
        "{:?}",
        client_events.seen()
    );
    one.wait_for("service onClose", |e| {
        e.iter().any(|(_, s)| matches!(s, Seen::Close(1001, _)))
    });
    assert!(
        idle.end().is_silent_close(),
        "the idle HTTP connection was dropped"
    );
    wsConnectionRelease(client);

    assert_eq!(startHttpServer(served.server), 0, "{}", last_error());
    let port = httpServerPort(served.server) as u16;
    assert_eq!(fetch(port, &get("/t.txt")).body, fixture.bytes("t.txt"));
    let mut again = ws_connect(port, "/two");
    again.send_frame(0x81, b"restarted");
    assert_eq!(again.read_frame(), Some((0x81, b"restarted".to_vec())));
    drop(again);

    let released = served.released.clone();
    served.destroy();
    released.wait_for(1);
    for recorder in [&one, &two] {
        recorder.wait_for("service delegate released", |_| *recorder.released.lock());
    }
    assert_eq!(released.get(), 1);
}

#[test]
fn finalize_stops_http_servers() {
    // oasis_finalize ends every server of the process: nothing else may run meanwhile.
    let _process = exclusive();
    init();
    let fixture = Fixture::new();
    let served = serve_files(&fixture, &[], None);
    let events = Recorder::new(true);
    assert_eq!(add_service(served.server, "/ws", &[], &events), 0);
    let mut idle = Client::connect(served.port);
    assert_eq!(idle.get("/t.txt").status, 200);
    let mut ws = ws_connect(served.port, "/ws");
    events.wait_for("onOpen", |e| !e.is_empty());
    // The peer answers the close that finalize starts, so finalize need not wait it out.
    let peer = std::thread::spawn(move || {
        let code = ws.read_close_code();
        if let Some(code) = code {
            ws.send_frame(0x88, &code.to_be_bytes());
        }
        code
    });
    assert_eq!(oasis_finalize(), 0);
    assert!(
        idle.end().is_silent_close(),
        "the HTTP connection survived finalize"
    );
    assert_eq!(peer.join().unwrap(), Some(1001));
    assert!(events.seen().iter().any(is_close), "{:?}", events.seen());
    assert!(std::net::TcpStream::connect(("127.0.0.1", served.port)).is_err());
    init();
}

#[test]
#[ignore = "needs .venv with Python websockets (tests/scripts/venv.sh); run-tests.sh runs it"]
fn python_websockets_on_the_service_path() {
    let _process = shared();
    init();
    let python = concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/bin/python");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/check_http_ws.py");
    assert!(
        std::path::Path::new(python).exists(),
        "no {python}: run tests/scripts/venv.sh"
    );
    let (chain, key) = tls_keys("fullchain.pem", "privkey.pem");
    for tls in [false, true] {
        let keys = [
            ("cert-file-path", chain.as_str()),
            ("pkey-file-path", key.as_str()),
        ];
        let served = start_http(if tls { &keys[..] } else { &[] }, None);
        let events = Recorder::new(true);
        assert_eq!(add_service(served.server, "/ws", &[], &events), 0);
        let mut command = std::process::Command::new(python);
        command.arg(script);
        if tls {
            command.arg("--cafile").arg(cert("RootCA.pem"));
        }
        let scheme = if tls { "wss" } else { "ws" };
        let output = command
            .arg(format!("{scheme}://127.0.0.1:{}/ws", served.port))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&output.stdout);
        println!("{text}{}", String::from_utf8_lossy(&output.stderr));
        assert!(output.status.success(), "{scheme}: {text}");
        served.destroy();
    }
}
