//! The HTTP server's protocol rules and limits: keep-alive and HTTP/1.0, pipelining however the
//! bytes are cut, the request line and head limits (414, 431) whatever the chunking, slow
//! requests (408 at the deadline, silent closes), malformed requests (400, 505), bodies (413,
//! 501, 400, 100-continue), the connection cap (503) and the Date header.

mod common;
use common::http::*;
use common::http_server::*;
use common::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

/// The answer ended the connection: EOF (or a reset) follows it, with nothing more.
fn assert_closed_after(client: &mut Client, what: &str) {
    let end = client.end();
    assert!(
        end.is_silent_close(),
        "{what}: the server did not close: {end:?}"
    );
}

#[test]
fn keep_alive_connection_close_and_http_1_0() {
    let _process = shared();
    init();
    let fixture = Fixture::new();
    let served = serve_files(&fixture, &[], None);
    let mut client = Client::connect(served.port);
    for name in ["t.txt", "a.css", "d.json"] {
        assert_eq!(client.get(&format!("/{name}")).body, fixture.bytes(name));
    }
    let last = client.exchange(&request("GET", "/t.txt", &[("Connection", "close")], b""));
    assert_eq!(last.status, 200);
    assert_eq!(
        last.header("connection").map(str::to_ascii_lowercase),
        Some("close".into())
    );
    assert_closed_after(&mut client, "Connection: close");

    let mut old = Client::connect(served.port);
    let response = old.exchange(b"GET /t.txt HTTP/1.0\r\n\r\n");
    assert_eq!(
        (response.status, response.body),
        (200, fixture.bytes("t.txt"))
    );
    assert_closed_after(&mut old, "HTTP/1.0");

    let mut kept = Client::connect(served.port);
    for _ in 0..2 {
        let response = kept.exchange(b"GET /t.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        assert_eq!(
            (response.status, response.body),
            (200, fixture.bytes("t.txt"))
        );
    }
    served.destroy();
}

/// Five mixed requests: GET, HEAD, a range, a miss and GET again.
fn five_requests() -> Vec<u8> {
    [
        get("/t.txt"),
        request("HEAD", "/a.css", &[], b""),
        request("GET", "/x.bin", &[("Range", "bytes=10-19")], b""),
        get("/missing"),
        get("/index.html"),
    ]
    .concat()
}

/// Reads the answers to those of `five_requests` in `which` (0-based).
fn read_five(client: &mut Client, fixture: &Fixture, which: std::ops::Range<usize>) {
    for i in which {
        match i {
            0 => assert_eq!(client.response().body, fixture.bytes("t.txt")),
            1 => {
                let head = client.head_response();
                assert_eq!(head.status, 200);
                assert_eq!(head.header("content-type"), Some("text/css; charset=utf-8"));
            }
            2 => {
                let range = client.response();
                assert_eq!(range.status, 206, "{range:?}");
                assert_eq!(range.body, &fixture.bytes("x.bin")[10..20]);
            }
            3 => assert_eq!(client.response().status, 404),
            _ => assert_eq!(client.response().body, fixture.bytes("index.html")),
        }
    }
}

#[test]
fn pipelined_requests_are_answered_in_order_however_they_arrive() {
    let _process = shared();
    init();
    let fixture = Fixture::new();
    let served = serve_files(&fixture, &[], None);
    let all = five_requests();

    let mut client = Client::connect(served.port);
    client.send(&all);
    read_five(&mut client, &fixture, 0..5);

    // Cut inside the third request's headers: the first two are answered, and the server waits.
    let cut = all.windows(9).position(|w| w == b"Range: by").unwrap() + 4;
    let mut client = Client::connect(served.port);
    client.send(&all[..cut]);
    read_five(&mut client, &fixture, 0..2);
    client.send(&all[cut..]);
    read_five(&mut client, &fixture, 2..5);

    let mut client = Client::connect(served.port);
    client.send_bytewise(&all);
    read_five(&mut client, &fixture, 0..5);

    // A request waiting behind a file that streams.
    let mut client = Client::connect(served.port);
    client.send(&[get("/big.bin"), get("/t.txt")].concat());
    assert!(client.response().body == fixture.bytes("big.bin"));
    assert_eq!(client.response().body, fixture.bytes("t.txt"));
    assert_eq!(client.get("/a.css").body, fixture.bytes("a.css"));
    served.destroy();
}

#[test]
fn a_request_line_over_the_limit_gives_414() {
    let _process = shared();
    init();
    let fixture = Fixture::new();
    let served = serve_files(&fixture, &[("http-request-line-max", "256")], None);
    // "GET /aaa…a HTTP/1.1": the line without its CRLF is `len` bytes.
    let line = |len: usize| format!("GET /{} HTTP/1.1", "a".repeat(len - 14));
    assert_eq!(line(256).len(), 256);
    let at_limit = format!("{}\r\nHost: test\r\n\r\n", line(256));
    let response = fetch(served.port, at_limit.as_bytes());
    assert_eq!(
        response.status, 404,
        "a line at the limit is served: {response:?}"
    );
    let over = format!("{}\r\nHost: test\r\n\r\n", line(257));
    for bytewise in [false, true] {
        let mut client = Client::connect(served.port);
        if bytewise {
            client.send_bytewise(over.as_bytes());
        } else {
            client.send(over.as_bytes());
        }
        let response = client.response();
        assert_eq!(response.status, 414, "bytewise={bytewise}: {response:?}");
        assert_closed_after(&mut client, "414");
    }
    served.destroy();
}

#[test]
fn heads_over_the_limits_give_431_however_they_are_split() {
    let _process = shared();
    init();
    let fixture = Fixture::new();
    let served = serve_files(&fixture, &[], None);
    let with_headers = |headers: Vec<String>| {
        let mut head = "GET /t.txt HTTP/1.1\r\nHost: test\r\n".to_string();
        for h in headers {
            head.push_str(&h);
            head.push_str("\r\n");
        }
        head.push_str("\r\n");
        head.into_bytes()
    };
    let pad = "p".repeat(300);
    let large = with_headers((0..30).map(|i| format!("X-Pad-{i}: {pad}")).collect());
    let many = with_headers((0..64).map(|i| format!("X-H-{i}: v")).collect());
    let one_big = with_headers(vec![format!("X-Big: {}", "b".repeat(10 * 1024))]);
    // Host plus 63 more: exactly the 64 headers allowed.
    let most = with_headers((0..63).map(|i| format!("X-H-{i}: v")).collect());
    assert!(large.len() > 8192 && many.len() < 8192 && most.len() < 8192);
    let response = fetch(served.port, &most);
    assert_eq!(response.status, 200, "64 headers are allowed: {response:?}");
    for (what, head) in [
        ("a 9 KiB head", &large),
        ("65 headers", &many),
        ("one 10 KiB header", &one_big),
    ] {
        for bytewise in [false, true] {
            let mut client = Client::connect(served.port);
            if bytewise {
                client.send_bytewise(head);
            } else {
                client.send(head);
            }
            let response = client.response();
            assert_eq!(response.status, 431, "{what}, bytewise={bytewise}");
            assert_closed_after(&mut client, what);
        }
    }
    served.destroy();
}

/// Asserts that `elapsed` lies in the window a 300 ms deadline allows.
fn near_deadline(elapsed: Duration, what: &str) {
    assert!(
        elapsed >= Duration::from_millis(300) && elapsed <= Duration::from_millis(1500),
        "{what} after {elapsed:?}, not within 300 ms..1.5 s"
    );
}

#[test]
fn slow_requests_get_408_at_the_deadline_and_idle_ones_a_silent_close() {
    let _process = shared();
    init();
    let fixture = Fixture::new();
    let served = serve_files(
        &fixture,
        &[
            ("http-request-timeout-ms", "300"),
            ("http-keepalive-timeout-ms", "300"),
        ],
        None,
    );
    // A head that never ends. (The clock starts before connecting: the server's starts later.)
    let started = Instant::now();
    let mut client = Client::connect(served.port);
    client.send(b"GET /t.txt HTTP/1.1\r\nHost: te");
    let response = client.response();
    near_deadline(started.elapsed(), "408");
    assert_eq!(response.status, 408, "{response:?}");
    assert_closed_after(&mut client, "408");

    // One byte every 100 ms: the deadline counts from the first byte, not the last.
    let started = Instant::now();
    let mut client = Client::connect(served.port);
    let mut trickle = client.tcp.try_clone().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = stop.clone();
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        let head = format!(
            "GET /t.txt HTTP/1.1\r\nHost: test\r\nX-Slow: {}",
            "s".repeat(100)
        );
        for byte in head.bytes() {
            if stopped.load(Ordering::SeqCst) || trickle.write_all(&[byte]).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    let response = client.response();
    near_deadline(started.elapsed(), "408 to a trickle");
    assert_eq!(response.status, 408, "{response:?}");
    stop.store(true, Ordering::SeqCst);
    writer.join().unwrap();

    // Nothing at all: closed at the request timeout, without an answer.
    let started = Instant::now();
    let mut client = Client::connect(served.port);
    let end = client.end();
    near_deadline(started.elapsed(), "the close of a silent connection");
    assert!(end.is_silent_close(), "{end:?}");

    // Idle after an answer: closed at the keep-alive timeout, without an answer.
    let mut client = Client::connect(served.port);
    let started = Instant::now();
    assert_eq!(client.get("/t.txt").status, 200);
    let end = client.end();
    near_deadline(
        started.elapsed(),
        "the close of an idle keep-alive connection",
    );
    assert!(end.is_silent_close(), "{end:?}");
    served.destroy();
}

#[test]
fn malformed_requests_get_400_or_505_and_a_close() {
    let _process = shared();
    init();
    let fixture = Fixture::new();
    let served = serve_files(&fixture, &[], None);
    for (raw, statuses) in [
        (&b"HELLO\r\n\r\n"[..], &[400][..]),
        (b"GET /t.txt HTTP/1.1 extra\r\nHost: test\r\n\r\n", &[400]),
        (
            b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\r\n\r\n",
            &[400],
        ),
        (b"GET /t.txt HTTP/1.2\r\nHost: test\r\n\r\n", &[505]),
        (b"GET /t.txt HTTP/2.0\r\nHost: test\r\n\r\n", &[505]),
        (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", &[400, 505]),
        (b"GET /t.txt HTTP/1.1\r\n\r\n", &[400]),
        // A Host that is not uri-host [":" port] (RFC 9112 3.2: 400).
        (b"GET /t.txt HTTP/1.1\r\nHost: a b\r\n\r\n", &[400]),
        (
            b"GET /t.txt HTTP/1.1\r\nHost: evil.example/x?y\r\n\r\n",
            &[400],
        ),
        (b"GET /t.txt HTTP/1.1\r\nHost: user@camera\r\n\r\n", &[400]),
        (b"GET /t.txt HTTP/1.1\r\nHost: camera:80x\r\n\r\n", &[400]),
        (b"GET /t.txt HTTP/1.0\r\nHost: <camera>\r\n\r\n", &[400]),
    ] {
        let shown = String::from_utf8_lossy(raw);
        let mut client = Client::connect(served.port);
        client.send(raw);
        let response = client.response();
        assert!(
            statuses.contains(&response.status),
            "{shown:?}: {response:?}"
        );
        assert!(!response.text().contains("contents of a test file"));
        assert_closed_after(&mut client, &shown);
    }
    served.destroy();
}

#[test]
fn request_bodies_reach_on_request_within_their_limits() {
    let _process = shared();
    init();
    let bodies = Arc::new(parking_lot::Mutex::new(Vec::<Vec<u8>>::new()));
    let seen = bodies.clone();
    let echo = Upstream::answer(move |request| {
        let body = request.body();
        seen.lock().push(body.clone());
        request.set_status(200);
        request.set_body(Some("application/octet-stream"), &body);
    });
    let served = start_http(&[("http-request-body-max", "1024")], Some(echo));
    let kib = pattern(1024, 3);
    let mut client = Client::connect(served.port);
    let response = client.exchange(&request("POST", "/echo", &[], &kib));
    assert_eq!((response.status, &response.body), (200, &kib));
    assert_eq!(bodies.lock().as_slice(), std::slice::from_ref(&kib));

    let refused: [(&[u8], u16); 4] = [
        (&request("POST", "/echo", &[], &pattern(1025, 4)), 413),
        (
            b"POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            501,
        ),
        (
            b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\nhello",
            400,
        ),
        (
            b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
            400,
        ),
    ];
    for (raw, status) in refused {
        let mut client = Client::connect(served.port);
        client.send(raw);
        let response = client.response();
        assert_eq!(response.status, status, "{response:?}");
        assert_closed_after(&mut client, &format!("{status}"));
    }
    assert_eq!(bodies.lock().len(), 1, "no refused body reached onRequest");

    // Expect: 100-continue: the interim answer comes before the body is sent.
    let mut client = Client::connect(served.port);
    client.send(
        b"PUT /echo HTTP/1.1\r\nHost: test\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n",
    );
    let interim = client.response();
    assert_eq!(interim.status, 100, "{interim:?}");
    client.send(b"hello");
    let response = client.response();
    assert_eq!(
        (response.status, response.body.as_slice()),
        (200, &b"hello"[..])
    );
    served.destroy();
}

/// Connects and sends `request` until the answer is not 503 (a freed slot is noticed by the
/// server when it reads the other connection's end, a moment after the client closed it).
fn admitted(port: u16, request: &[u8]) -> (Client, Response) {
    let deadline = Instant::now() + WAIT;
    loop {
        let mut client = Client::connect(port);
        let response = client.exchange(request);
        if response.status != 503 {
            return (client, response);
        }
        assert!(Instant::now() < deadline, "still 503 after {WAIT:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn assert_refused_with_503(port: u16) {
    let mut client = Client::connect(port);
    let response = client
        .try_response(false)
        .expect("a 503 without even sending a request");
    assert_eq!(response.status, 503, "{response:?}");
    assert_eq!(response.header("retry-after"), Some("1"));
    assert_eq!(
        response.header("connection").map(str::to_ascii_lowercase),
        Some("close".into())
    );
    assert_closed_after(&mut client, "503");
}

#[test]
fn the_connection_cap_counts_http_and_upgraded_connections() {
    let _process = shared();
    init();
    let fixture = Fixture::new();
    let served = serve_files(&fixture, &[("http-connections-max", "4")], None);
    let events = Recorder::new(true);
    assert_eq!(add_service(served.server, "/ws", &[], &events), 0);

    let mut idle: Vec<Client> = (0..4)
        .map(|_| {
            let mut client = Client::connect(served.port);
            assert_eq!(client.get("/t.txt").status, 200);
            client
        })
        .collect();
    assert_refused_with_503(served.port);
    // The four were kept meanwhile (a server that had dropped one would have room).
    for client in &mut idle {
        assert_eq!(client.get("/a.css").status, 200);
    }
    drop(idle.pop());
    let (fourth, response) = admitted(served.port, &get("/t.txt"));
    assert_eq!(response.status, 200);
    drop(fourth);
    drop(idle);

    // Upgraded connections keep their slot.
    let mut upgraded: Vec<RawClient> = (0..4)
        .map(|_| {
            let (client, response) = admitted(served.port, &upgrade_request("/ws", ""));
            assert_eq!(response.status, 101, "{response:?}");
            RawClient {
                stream: client.into_tcp(),
            }
        })
        .collect();
    events.wait_for("four onOpen", |e| {
        e.iter().filter(|(_, s)| *s == Seen::Open).count() == 4
    });
    assert_refused_with_503(served.port);
    let mut closing = upgraded.pop().unwrap();
    closing.send_frame(0x88, &1000u16.to_be_bytes());
    assert_eq!(closing.read_close_code(), Some(1000));
    events.wait_for("onClose", |e| e.iter().any(|(_, s)| is_close(s)));
    drop(closing);
    let (_, response) = admitted(served.port, &get("/t.txt"));
    assert_eq!(response.status, 200);
    drop(upgraded);
    served.destroy();
}

#[test]
fn over_the_cap_a_tls_connection_is_just_closed() {
    let _process = shared();
    init();
    let fixture = Fixture::new();
    let (chain, key) = (cert("fullchain.pem"), cert("privkey.pem"));
    let served = serve_files(
        &fixture,
        &[
            ("http-connections-max", "2"),
            ("cert-file-path", &chain),
            ("pkey-file-path", &key),
        ],
        None,
    );
    let mut held: Vec<Client> = (0..2)
        .map(|_| {
            let mut client = Client::connect_tls(served.port);
            assert_eq!(client.get("/t.txt").status, 200);
            client
        })
        .collect();
    let mut over = Client::connect_tls(served.port);
    if over.try_send(&get("/t.txt")).is_ok() {
        let answer = over.try_response(false);
        assert!(
            matches!(answer, Err(End::Eof(_)) | Err(End::Reset(_))),
            "over the cap: {answer:?}"
        );
    }
    for client in &mut held {
        assert_eq!(
            client.get("/a.css").status,
            200,
            "a held connection was dropped"
        );
    }
    drop(held.pop());
    let deadline = Instant::now() + WAIT;
    loop {
        let mut client = Client::connect_tls(served.port);
        if client.try_send(&get("/t.txt")).is_ok()
            && let Ok(response) = client.try_response(false)
        {
            assert_eq!(response.status, 200);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no TLS connection served after a slot freed"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    served.destroy();
}

#[test]
fn every_answer_has_a_current_date() {
    let _process = shared();
    init();
    let fixture = Fixture::new();
    let served = serve_files(&fixture, &[], None);
    for raw in [get("/t.txt"), get("/missing"), b"HELLO\r\n\r\n".to_vec()] {
        let response = fetch(served.port, &raw);
        let date = response.header("date").expect("a Date header");
        let date = httpdate::parse_http_date(date).expect("an HTTP date");
        let now = SystemTime::now();
        let skew = now.duration_since(date).unwrap_or_else(|e| e.duration());
        assert!(skew < Duration::from_secs(5), "Date is {skew:?} off");
    }
    served.destroy();
}
