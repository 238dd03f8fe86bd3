//! Keepalive (`websocket-ping-interval-ms`, `websocket-pong-timeout-ms`): a live but quiet peer
//! keeps its connection, and a peer that vanished without a FIN — a proxy between the two ends
//! stops forwarding and keeps both sockets open — is detected within interval + timeout, on the
//! server side and on the client side. A peer still reading what was sent before our ping or
//! our close frame is given the time to reach it.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const INTERVAL_MS: u64 = 200;
const TIMEOUT_MS: u64 = 300;

fn keepalive() -> Vec<(&'static str, String)> {
    vec![
        ("websocket-ping-interval-ms", INTERVAL_MS.to_string()),
        ("websocket-pong-timeout-ms", TIMEOUT_MS.to_string()),
    ]
}

/// A TCP proxy from a local port to `target` that can be frozen: it then forwards nothing more
/// and keeps both sockets open, as a vanished peer or a dead route would look.
struct Proxy {
    port: u16,
    frozen: Arc<AtomicBool>,
}

impl Proxy {
    fn start(target: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let frozen = Arc::new(AtomicBool::new(false));
        let flag = frozen.clone();
        std::thread::spawn(move || {
            let (inbound, _) = listener.accept().unwrap();
            let outbound = TcpStream::connect(("127.0.0.1", target)).unwrap();
            let pump = |mut from: TcpStream, mut to: TcpStream, frozen: Arc<AtomicBool>| {
                std::thread::spawn(move || {
                    let mut buffer = [0u8; 16384];
                    loop {
                        let n = match from.read(&mut buffer) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        if frozen.load(Ordering::SeqCst) {
                            // Swallow everything from now on, and keep the sockets open.
                            continue;
                        }
                        if to.write_all(&buffer[..n]).is_err() {
                            return;
                        }
                    }
                })
            };
            pump(
                inbound.try_clone().unwrap(),
                outbound.try_clone().unwrap(),
                flag.clone(),
            );
            pump(outbound, inbound, flag);
        });
        Proxy { port, frozen }
    }

    fn freeze(&self) {
        self.frozen.store(true, Ordering::SeqCst);
    }
}

/// Waits for onClose 1006 on `side` after the proxy froze at `frozen_at`: within interval +
/// timeout (plus scheduling slack), and not before a ping can have gone unanswered.
fn assert_detected(side: &Recorder, frozen_at: Instant) {
    let seen = side.wait_for("onClose", |e| e.iter().any(|(_, s)| is_close(s)));
    let took = frozen_at.elapsed();
    assert!(
        seen.iter().any(|(_, s)| matches!(s, Seen::Close(1006, _))),
        "{seen:?}"
    );
    assert!(
        took <= Duration::from_millis(INTERVAL_MS + TIMEOUT_MS + 700),
        "detected after {took:?}"
    );
    assert!(
        took >= Duration::from_millis(TIMEOUT_MS),
        "detected after {took:?}"
    );
}

fn params_of<'a>(list: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    list.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

#[test]
fn a_quiet_live_peer_keeps_its_connection() {
    init();
    let server_seen = Recorder::new(false);
    let keep = keepalive();
    let (server, port) = start_server(&server_seen, &params_of(&keep));
    let client_seen = Recorder::new(false);
    let connection = open(&format!("ws://127.0.0.1:{port}/"), &client_seen, &[], 5000);
    assert!(!connection.is_null(), "{}", last_error());
    // The client answers the server's pings by itself: several intervals pass, and the
    // server's pings arrive at the client as ping messages.
    client_seen.wait_for("three pings from the server", |events| {
        events
            .iter()
            .filter(|(_, s)| matches!(s, Seen::Message(k, _) if *k == oasisnet::ffi::ws_message_t::kWsMessagePing))
            .count()
            >= 3
    });
    assert_eq!(server_seen.count(is_close), 0, "{:?}", server_seen.seen());
    assert_eq!(oasisnet::ffi::wsConnectionIsOpen(connection), 1);
    assert_eq!(send_text(connection, "still here"), 0);
    server_seen.wait_messages(1);
    assert_eq!(oasisnet::ffi::wsConnectionRelease(connection), 0);
    assert_eq!(oasisnet::ffi::destroyWsServer(server), 0);
}

/// A live peer reading a large message more slowly than the pong timeout: the server's ping
/// waits behind the message, and the peer answers it as soon as it arrives. Taking bytes all
/// along, the peer is not dropped as silent meanwhile.
#[test]
fn a_peer_reading_a_long_message_is_not_dropped_before_it_reaches_the_ping() {
    reads_a_long_message_then_answers_the_ping(&[], slow_peer);
}

#[test]
fn a_tls_peer_reading_a_long_message_is_not_dropped_before_it_reaches_the_ping() {
    reads_a_long_message_then_answers_the_ping(&tls_params(), slow_tls_peer);
}

/// A peer with a small receive buffer ([`RECEIVE_BUFFER`]), upgraded over plain TCP.
fn slow_peer(port: u16) -> RawClient {
    let peer = RawClient::connect(port);
    peer.set_receive_buffer(RECEIVE_BUFFER);
    peer
}

/// As [`slow_peer`], over TLS.
fn slow_tls_peer(port: u16) -> RawClient<rustls::StreamOwned<rustls::ClientConnection, TcpStream>> {
    let peer = RawClient::connect_tls(port);
    set_receive_buffer(&peer.stream.sock, RECEIVE_BUFFER);
    peer
}

/// The server keys of a TLS server with the test certificate.
fn tls_params() -> [(&'static str, String); 2] {
    let (chain, key) = (cert("fullchain.pem"), cert("privkey.pem"));
    [("cert-file-path", chain), ("pkey-file-path", key)]
}

/// A receive buffer of 128 KiB, as behind a slow link: the peer's TCP acknowledges the ping
/// some 16 ms before its application reads it, well inside a pong timeout. (Data its TCP has
/// acknowledged is the peer's to read within one timeout: docs/DESIGN-NOTES.md.)
const RECEIVE_BUFFER: i32 = 64 * 1024;

/// A server with keepalive sends a 16 MiB message to a peer that reads it slowly, for several
/// pong timeouts; the peer then answers the ping that waited behind the message, and the
/// connection is still open.
fn reads_a_long_message_then_answers_the_ping<S: Read + Write>(
    extra: &[(&'static str, String)],
    connect: impl FnOnce(u16) -> RawClient<S>,
) {
    let mut params = keepalive();
    params.extend_from_slice(extra);
    let (server, server_seen, mut peer) = send_a_long_message(&params, connect, |_| {});
    let ping = peer
        .read_frame()
        .expect("the keepalive ping, after the message");
    assert_eq!(ping.0, 0x89);
    peer.send_frame(0x8a, &ping.1);
    // Still open: the closing handshake completes with our code.
    peer.send_frame(0x88, &1000u16.to_be_bytes());
    assert_eq!(peer.read_close_code(), Some(1000));
    closed_with_1000(server, &server_seen);
}

/// The server saw the closing handshake complete with 1000; then it is destroyed.
fn closed_with_1000(server: *mut oasisnet::ffi::WsServer, server_seen: &Recorder) {
    server_seen.wait_for("onClose", |e| e.iter().any(|(_, s)| is_close(s)));
    assert!(
        server_seen.seen().contains(&Seen::Close(1000, Vec::new())),
        "{:?}",
        server_seen.seen()
    );
    assert_eq!(oasisnet::ffi::destroyWsServer(server), 0);
}

#[test]
fn a_peer_reading_a_long_message_gets_all_of_it_and_the_close_after_it() {
    for over_tls in [false, true] {
        let mut params = vec![("close-timeout-ms", TIMEOUT_MS.to_string())];
        if over_tls {
            params.extend(tls_params());
        }
        // The application closes right after its send: the close frame waits behind the
        // message, for several close timeouts.
        let close = |handle| assert_eq!(oasisnet::ffi::wsCloseConnection(handle), 0);
        let (server, server_seen) = match over_tls {
            false => {
                let (server, seen, mut peer) = send_a_long_message(&params, slow_peer, close);
                answer_the_close(&mut peer);
                (server, seen)
            }
            true => {
                let (server, seen, mut peer) = send_a_long_message(&params, slow_tls_peer, close);
                answer_the_close(&mut peer);
                (server, seen)
            }
        };
        closed_with_1000(server, &server_seen);
    }
}

/// A stop waits a close timeout and a second for its connections' onClose. A connection the
/// application was closing behind a long message, to a peer still reading it, is not given
/// more time once the stop comes: it ends (1006) within a close timeout, and its onClose comes
/// before `stopWsServer` returns.
#[test]
fn a_stop_ends_a_close_still_draining_to_a_reading_peer() {
    let params = [("close-timeout-ms", TIMEOUT_MS.to_string())];
    let close = |handle| assert_eq!(oasisnet::ffi::wsCloseConnection(handle), 0);
    let (server, server_seen, mut peer) = start_a_long_message(&params, slow_peer, close);
    // The peer reads 4 MiB at about 8 MiB/s (half a second: the close timeout was extended
    // at least once), says so, then reads on at about 1 MiB/s until the server ends the
    // connection: 12 more seconds, far longer than the stop waits. (The pauses pace the
    // reader; nothing waits on them.)
    let (four_mib_read, read_so_far) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut chunk = vec![0u8; 32 * 1024];
        let mut total = 0usize;
        loop {
            match peer.stream.read(&mut chunk) {
                Ok(0) | Err(_) => return total,
                Ok(n) => total += n,
            }
            if total >= 4 << 20 {
                let _ = four_mib_read.send(());
                std::thread::sleep(Duration::from_millis(30));
            } else {
                std::thread::sleep(Duration::from_millis(4));
            }
        }
    });
    read_so_far
        .recv_timeout(Duration::from_secs(30))
        .expect("the peer read 4 MiB");
    assert!(
        !server_seen.seen().iter().any(is_close),
        "still draining before the stop: {:?}",
        server_seen.seen()
    );
    assert_eq!(oasisnet::ffi::stopWsServer(server), 0);
    assert!(
        server_seen.seen().contains(&Seen::Close(1006, Vec::new())),
        "onClose (1006) before stopWsServer returned: {:?}",
        server_seen.seen()
    );
    let read = reader.join().unwrap();
    assert!(read < 16 << 20, "cut by the stop: {read} bytes read");
    assert_eq!(oasisnet::ffi::destroyWsServer(server), 0);
}

/// Reads the server's close frame, which came after the message, and answers it.
fn answer_the_close<S: Read + Write>(peer: &mut RawClient<S>) {
    let close = peer
        .read_frame()
        .expect("our close frame, after the message");
    assert_eq!(close, (0x88, 1000u16.to_be_bytes().to_vec()));
    peer.send_frame(0x88, &1000u16.to_be_bytes());
}

/// As [`start_a_long_message`], then reads the message at about 8 MiB/s: two seconds, several
/// timeouts. (The pauses pace the reader; nothing waits on them.)
fn send_a_long_message<S: Read + Write>(
    params: &[(&'static str, String)],
    connect: impl FnOnce(u16) -> RawClient<S>,
    after_send: impl FnOnce(*mut oasisnet::ffi::WsConnection),
) -> (*mut oasisnet::ffi::WsServer, Arc<Recorder>, RawClient<S>) {
    let (server, server_seen, mut peer) = start_a_long_message(params, connect, after_send);
    let mut head = [0u8; 10];
    peer.stream.read_exact(&mut head).unwrap();
    assert_eq!(head[0], 0x82);
    let mut chunk = vec![0u8; 32 * 1024];
    let mut left = 16 << 20;
    while left > 0 {
        let want = left.min(chunk.len());
        if let Err(e) = peer.stream.read_exact(&mut chunk[..want]) {
            panic!("dropped while reading, {} KiB to go: {e}", left >> 10);
        }
        assert!(
            chunk[..want].iter().all(|&b| b == b'b'),
            "the message as sent"
        );
        left -= want;
        std::thread::sleep(Duration::from_millis(4));
    }
    (server, server_seen, peer)
}

/// Starts a server with `params` and a 64 MiB send buffer, connects a peer, and has the server
/// send it a 16 MiB message of `b`s, then runs `after_send` with the connection. The server,
/// what it saw, and the peer, which has read nothing yet.
fn start_a_long_message<S: Read + Write>(
    params: &[(&'static str, String)],
    connect: impl FnOnce(u16) -> RawClient<S>,
    after_send: impl FnOnce(*mut oasisnet::ffi::WsConnection),
) -> (*mut oasisnet::ffi::WsServer, Arc<Recorder>, RawClient<S>) {
    init();
    let server_seen = Recorder::new(false);
    let mut params = params.to_vec();
    params.push(("send-buffer-size-max", (64 << 20).to_string()));
    let (server, port) = start_server(&server_seen, &params_of(&params));
    let peer = connect(port);
    let opened = server_seen.wait_for("onOpen", |e| e.iter().any(|(_, s)| *s == Seen::Open));
    let handle = opened.iter().find(|(_, s)| *s == Seen::Open).unwrap().0
        as *mut oasisnet::ffi::WsConnection;
    let big = vec![b'b'; 16 << 20];
    let sent = unsafe { oasisnet::ffi::wsSendBinary(handle, big.as_ptr().cast(), big.len()) };
    assert_eq!(sent, 0, "{}", last_error());
    after_send(handle);
    (server, server_seen, peer)
}

#[test]
fn a_server_detects_a_vanished_client() {
    server_detects_a_vanished_client(false);
}

#[test]
fn a_tls_server_detects_a_vanished_client() {
    server_detects_a_vanished_client(true);
}

fn server_detects_a_vanished_client(tls: bool) {
    init();
    let server_seen = Recorder::new(false);
    let root = cert("RootCA.pem");
    let mut params = keepalive();
    if tls {
        params.extend(tls_params());
    }
    let (server, port) = start_server(&server_seen, &params_of(&params));
    let proxy = Proxy::start(port);
    let client_seen = Recorder::new(false);
    let (scheme, client_params) = match tls {
        true => ("wss", vec![("ca-certs-file-path", root.as_str())]),
        false => ("ws", vec![]),
    };
    let connection = open(
        &format!("{scheme}://localhost:{}/", proxy.port),
        &client_seen,
        &client_params,
        5000,
    );
    assert!(!connection.is_null(), "{}", last_error());
    server_seen.wait_for("onOpen", |e| e.iter().any(|(_, s)| *s == Seen::Open));
    let frozen_at = Instant::now();
    proxy.freeze();
    assert_detected(&server_seen, frozen_at);
    assert_eq!(oasisnet::ffi::wsConnectionRelease(connection), 0);
    assert_eq!(oasisnet::ffi::destroyWsServer(server), 0);
}

#[test]
fn a_client_detects_a_vanished_server() {
    init();
    let server_seen = Recorder::new(false);
    // The server's side of the frozen connection ends by its close timeout at destroy.
    let (server, port) = start_server(&server_seen, &[("close-timeout-ms", "300")]);
    let proxy = Proxy::start(port);
    let client_seen = Recorder::new(false);
    let keep = keepalive();
    let connection = open(
        &format!("ws://127.0.0.1:{}/", proxy.port),
        &client_seen,
        &params_of(&keep),
        5000,
    );
    assert!(!connection.is_null(), "{}", last_error());
    let frozen_at = Instant::now();
    proxy.freeze();
    assert_detected(&client_seen, frozen_at);
    assert_eq!(oasisnet::ffi::wsConnectionIsOpen(connection), 0);
    assert_eq!(oasisnet::ffi::wsConnectionRelease(connection), 0);
    assert_eq!(oasisnet::ffi::destroyWsServer(server), 0);
}

#[test]
fn keepalive_values_are_checked() {
    init();
    let recorder = Recorder::new(false);
    let p = params(&[("port", "0"), ("websocket-pong-timeout-ms", "0")]);
    let (vtable, user) = delegate(&recorder);
    let server =
        unsafe { oasisnet::ffi::createWsServer(p.pairs.as_ptr(), p.pairs.len(), &vtable, user) };
    assert!(server.is_null());
    assert_eq!(errno(), libc::EINVAL);
    assert!(
        last_error().contains("websocket-pong-timeout-ms"),
        "{}",
        last_error()
    );
}
