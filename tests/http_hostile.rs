//! Peers that do not play along: one that sends requests and never reads the answers, one that
//! reads a large answer slowly, and a stop that races requests already on their way.

mod common;

use common::http::*;
use common::http_server::*;
use common::*;
use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::time::{Duration, Instant};

/// Pipelined requests from a peer that never reads: the server stops reading once its answers
/// pile up, so its memory stays bounded (without that pause each tiny request adds its answer to
/// an unbounded send buffer: +277 MiB for 40 MiB of requests).
#[test]
fn a_peer_that_never_reads_cannot_grow_the_send_buffer() {
    let _alone = exclusive();
    init();
    let served = start_http(&[], None);
    let mut tcp = std::net::TcpStream::connect(("127.0.0.1", served.port)).unwrap();
    // The server stops reading, so our writes stop too: that is the expected end.
    tcp.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
    let one = b"GET /nothing-here HTTP/1.1\r\nHost: a\r\n\r\n";
    let batch: Vec<u8> = one
        .iter()
        .copied()
        .cycle()
        .take(one.len() * 20_000)
        .collect();
    let before = vm_rss_kib();
    let mut sent = 0usize;
    while sent < 40 << 20 {
        if tcp.write_all(&batch).is_err() {
            break;
        }
        sent += batch.len();
    }
    let after = vm_rss_kib();
    assert!(
        sent < 40 << 20,
        "the server kept reading {} MiB of requests whose answers nobody read",
        sent >> 20
    );
    assert!(
        after < before + 16 * 1024,
        "RSS grew by {} KiB for {} KiB of requests",
        after.saturating_sub(before),
        sent >> 10
    );
    // Once the peer reads again, the answers come, in order.
    tcp.set_read_timeout(Some(WAIT)).unwrap();
    let mut head = [0u8; 12];
    tcp.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 404");
    drop(tcp);
    served.destroy();
}

/// Pipelined requests for a 4 KiB file from a peer that reads the answers slowly: while answers
/// pile up the server reads no further requests, so what it holds stays bounded. (Reading paused
/// only while more than 64 KiB of answers waited: each time the peer took a little of them the
/// server read everything its socket held, some 2 MiB a second of requests it had no room to
/// answer, kept in the connection's input: +16 MiB in 8 s.)
#[test]
fn a_peer_that_reads_slowly_cannot_grow_the_pending_requests() {
    use std::sync::atomic::AtomicBool;
    let _alone = exclusive();
    init();
    let fixture = Fixture::new();
    let served = serve_files(&fixture, &[], None);
    let tcp = std::net::TcpStream::connect(("127.0.0.1", served.port)).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let asker = {
        let (tcp, stop) = (tcp.try_clone().unwrap(), stop.clone());
        tcp.set_write_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        std::thread::spawn(move || {
            let batch = b"GET /x.bin HTTP/1.1\r\nHost: a\r\n\r\n".repeat(2_000);
            let (mut sent, mut at) = (0usize, 0usize);
            while !stop.load(Ordering::Relaxed) {
                // A write that times out is the server not reading: try again, from where the
                // stream stands (a request cut in two would be a malformed one).
                if let Ok(n) = (&tcp).write(&batch[at..]) {
                    sent += n;
                    at = (at + n) % batch.len();
                }
            }
            sent
        })
    };
    let before = vm_rss_kib();
    let mut reader = tcp;
    reader.set_read_timeout(Some(WAIT)).unwrap();
    let mut buffer = vec![0u8; 16 * 1024];
    let mut got = Vec::new();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(6) {
        let n = reader.read(&mut buffer).unwrap();
        assert!(n > 0, "the server closed the connection");
        if got.len() < 64 * 1024 {
            got.extend_from_slice(&buffer[..n]);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let after = vm_rss_kib();
    stop.store(true, Ordering::Relaxed);
    let sent = asker.join().unwrap();
    assert!(got.starts_with(b"HTTP/1.1 200"), "answers came");
    assert!(
        after < before + 4 * 1024,
        "RSS grew by {} KiB while the peer sent {} KiB of requests",
        after.saturating_sub(before),
        sent >> 10
    );
    drop(reader);
    served.destroy();
}

/// Reads an answer in 16 KiB steps with a pause after each (about 1.6 MB/s), to its end.
fn read_slowly(tcp: &mut std::net::TcpStream, want: usize) -> Vec<u8> {
    tcp.set_read_timeout(Some(WAIT)).unwrap();
    let mut got = Vec::new();
    let mut buffer = vec![0u8; 16 * 1024];
    while got.len() < want {
        match tcp.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buffer[..n]),
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    got
}

fn big_answer(body: Vec<u8>) -> Upstream {
    Upstream::answer(move |request| {
        request.set_status(200);
        request.set_body(Some("application/octet-stream"), &body);
    })
}

/// A large firmware answer read slowly arrives whole, with `Connection: close` and with
/// keep-alive: the timers that end a connection wait while the peer keeps taking bytes, instead
/// of starting when the answer was queued (the 2 s linger and a 1 s keep-alive would cut it).
#[test]
fn a_slow_reader_gets_a_large_answer_whole() {
    let _shared = shared();
    init();
    let body = vec![b'x'; 4 << 20];
    let served = start_http(
        &[("http-keepalive-timeout-ms", "1000")],
        Some(big_answer(body.clone())),
    );
    for (request, ends) in [
        (
            "GET /snapshot HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
            true,
        ),
        ("GET /snapshot HTTP/1.1\r\nHost: a\r\n\r\n", false),
    ] {
        let started = Instant::now();
        let mut tcp = std::net::TcpStream::connect(("127.0.0.1", served.port)).unwrap();
        tcp.write_all(request.as_bytes()).unwrap();
        let got = read_slowly(&mut tcp, usize::MAX);
        let head_end = got
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("a head")
            + 4;
        assert!(
            started.elapsed() > Duration::from_secs(2),
            "the read was slow"
        );
        assert_eq!(
            got.len() - head_end,
            body.len(),
            "{request:?}: the body arrived whole (Connection: close: {ends})"
        );
    }
    served.destroy();
}

static SERVER: AtomicPtr<oasisnet::ffi::HttpServer> = AtomicPtr::new(std::ptr::null_mut());

/// A request that stops its server, with an upgrade pipelined behind it: the upgrade is refused
/// (503) and the connection ends, instead of a WebSocket connection that outlives the stop.
#[test]
fn nothing_upgrades_after_a_stop() {
    let _shared = shared();
    init();
    let served = start_http(
        &[],
        Some(Upstream::answer(|request| {
            let stopped = oasisnet::ffi::stopHttpServer(SERVER.load(Ordering::SeqCst));
            request.set_status(200);
            request.set_body(Some("text/plain"), format!("stop: {stopped}").as_bytes());
        })),
    );
    SERVER.store(served.server, Ordering::SeqCst);
    let events = Recorder::new(true);
    assert_eq!(add_service(served.server, "/ws", &[], &events), 0);
    let mut client = Client::connect(served.port);
    let mut bytes = b"GET /stop HTTP/1.1\r\nHost: a\r\n\r\n".to_vec();
    bytes.extend_from_slice(&upgrade_request("/ws", ""));
    client.send(&bytes);
    let first = client.response();
    assert_eq!((first.status, first.text()), (200, "stop: 0".to_string()));
    let second = client.response();
    assert_eq!(second.status, 503, "an upgrade after the stop is refused");
    let mut raw = RawClient {
        stream: client.into_tcp(),
    };
    assert!(raw.sees_eof(), "the connection ends after the refusal");
    assert_eq!(events.count(|s| matches!(s, Seen::Open)), 0, "no onOpen");
    served.destroy();
}

/// A peer that pipelines requests faster than they are answered (and reads the answers) fills
/// every read the server makes: the loop still serves another connection while it goes on,
/// after a turn's reads of the busy one, not once it pauses.
#[test]
fn a_flood_of_requests_on_one_connection_does_not_stall_the_others() {
    use std::sync::atomic::AtomicBool;
    let _alone = exclusive();
    init();
    let answered = Arc::new(Count::default());
    let counted = answered.clone();
    let served = start_http(
        &[],
        Some(Upstream::answer(move |request| {
            // A little work a request, as a device's handler has: slower than the peer asks.
            let start = Instant::now();
            while start.elapsed() < Duration::from_micros(1) {
                std::hint::spin_loop();
            }
            request.set_body(Some("text/plain"), b"ok");
            counted.add();
        })),
    );
    let flood = std::net::TcpStream::connect(("127.0.0.1", served.port)).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let cap = Duration::from_secs(20);
    let asker = {
        let (mut flood, stop) = (flood.try_clone().unwrap(), stop.clone());
        std::thread::spawn(move || {
            let batch = b"GET /busy HTTP/1.1\r\nHost: a\r\n\r\n".repeat(10_000);
            let start = Instant::now();
            while start.elapsed() < cap {
                if stop.load(Ordering::Relaxed) {
                    return true;
                }
                if flood.write_all(&batch).is_err() {
                    return false;
                }
            }
            false
        })
    };
    let drainer = std::thread::spawn(move || {
        let mut buffer = vec![0u8; 1 << 20];
        while matches!((&flood).read(&mut buffer), Ok(n) if n > 0) {}
    });
    answered.wait_for(50_000);
    let before = answered.get();
    let mut other = std::net::TcpStream::connect(("127.0.0.1", served.port)).unwrap();
    other.set_read_timeout(Some(cap * 2)).unwrap();
    other
        .write_all(b"GET /other HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();
    let mut head = [0u8; 12];
    other.read_exact(&mut head).unwrap();
    let meanwhile = answered.get() - before;
    stop.store(true, Ordering::Relaxed);
    let flooding = asker.join().unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");
    assert!(
        flooding,
        "the other connection was answered only once the flood had stopped"
    );
    // What the sockets held and a turn's reads or two (16 of 512 KiB, some 270,000 of these
    // requests): not the flood.
    assert!(
        meanwhile < 1_500_000,
        "{meanwhile} requests of the flood answered while the other connection waited"
    );
    served.destroy();
    drainer.join().unwrap();
}

/// Peers that read part of a big file and then close (unread bytes make the close a reset, as a
/// browser that cancels a download or seeks a video does). The pipe can break while one
/// `sendfile` call is under way: it returns the count of the bytes it moved before, with SIGPIPE
/// raised. Only an EPIPE result had its SIGPIPE taken back, so this one stayed pending and ended
/// the process (SIGPIPE's default action, which a C firmware keeps: `init` restores it here) as
/// soon as the call restored the signal mask: every run of this test died so, within its 200
/// downloads.
#[test]
fn a_peer_that_resets_during_a_file_cannot_raise_sigpipe() {
    let _shared = shared();
    init();
    let fixture = Fixture::new();
    let served = serve_files(&fixture, &[], None);
    let mut chunk = vec![0u8; 64 * 1024];
    for round in 0..200 {
        let mut tcp = std::net::TcpStream::connect(("127.0.0.1", served.port)).unwrap();
        tcp.set_read_timeout(Some(WAIT)).unwrap();
        tcp.write_all(&get("/big.bin")).unwrap();
        // Some of it (the server still sending), then the close.
        let want = [4 << 10, 256 << 10, 1 << 20, 3 << 20, 5 << 20][round % 5];
        let mut got = 0;
        while got < want {
            match tcp.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => got += n,
            }
        }
        drop(tcp);
    }
    // Still alive, and still serving.
    let mut client = Client::connect(served.port);
    assert_eq!(client.get("/t.txt").body, fixture.bytes("t.txt"));
    served.destroy();
}
