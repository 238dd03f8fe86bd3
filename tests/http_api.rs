//! The firmware's part of the HTTP server and its C API: onRequest answers and what it sees,
//! header injection refused, the filter in front of files, onRequest and upgrades, the routing
//! order, a NULL delegate, createHttpWsService's errors and the HttpServer handle rules.

mod common;
use common::http::*;
use common::http_server::*;
use common::*;
use oasisnet::ffi::*;
use parking_lot::Mutex;
use std::ffi::CString;
use std::sync::Arc;

/// What a callback saw of one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Saw {
    method: String,
    path: String,
    query: String,
    probe: Option<String>,
    body: Vec<u8>,
    peer: String,
    absent_errno: i32,
}

fn saw(request: &Request) -> Saw {
    let absent = request.header("X-Not-Sent");
    Saw {
        method: request.method(),
        path: request.path(),
        query: request.query(),
        probe: request.header("x-probe"),
        body: request.body(),
        peer: request.peer(),
        absent_errno: if absent.is_none() { errno() } else { 0 },
    }
}

#[test]
fn on_request_answers_and_sees_the_whole_request() {
    let _process = shared();
    init();
    let log = Arc::new(Mutex::new(Vec::<Saw>::new()));
    let seen = log.clone();
    let served = start_http(
        &[],
        Some(Upstream::answer(move |request| {
            seen.lock().push(saw(request));
            assert_eq!(request.set_status(201), 0);
            assert_eq!(request.add_header("X-Answer", "yes"), 0);
            assert_eq!(request.add_header("Set-Cookie", "a=1"), 0);
            assert_eq!(request.add_header("Set-Cookie", "b=2"), 0);
            assert_eq!(
                request.set_body(Some("application/json"), b"{\"ok\":true}"),
                0
            );
        })),
    );
    let mut client = Client::connect(served.port);
    let response = client.exchange(&request(
        "POST",
        "/api/a%20b/./c?x=1&y=%20",
        &[("X-Probe", "7")],
        b"payload",
    ));
    assert_eq!(response.status, 201, "{response:?}");
    assert_eq!(response.header("x-answer"), Some("yes"));
    assert_eq!(response.all("set-cookie"), vec!["a=1", "b=2"]);
    assert_eq!(response.header("content-type"), Some("application/json"));
    assert_eq!(response.body, b"{\"ok\":true}");
    let first = log.lock()[0].clone();
    assert_eq!(
        first,
        Saw {
            method: "POST".into(),
            path: "/api/a b/c".into(),
            query: "x=1&y=%20".into(),
            probe: Some("7".into()),
            body: b"payload".to_vec(),
            peer: first.peer.clone(),
            absent_errno: libc::ENOENT,
        }
    );
    assert!(first.peer.starts_with("127.0.0.1:"), "{}", first.peer);

    // HEAD: the same head, no body (the next response parses only if none was sent).
    client.send(&request("HEAD", "/api/x", &[], b""));
    let head = client.head_response();
    assert_eq!(head.status, 201);
    assert_eq!(head.header("content-length"), Some("11"));
    assert_eq!(head.header("content-type"), Some("application/json"));
    assert_eq!(client.get("/api/y").body, b"{\"ok\":true}");
    assert_eq!(log.lock()[1].method, "HEAD");
    served.destroy();
}

#[test]
fn header_injection_and_bad_answers_are_refused_before_the_wire() {
    let _process = shared();
    init();
    let results = Arc::new(Mutex::new(Vec::<(String, i32, i32)>::new()));
    let record = results.clone();
    let served = start_http(
        &[],
        Some(Upstream::answer(move |request| {
            let push = |what: &str, rc: i32| record.lock().push((what.into(), rc, errno()));
            for (name, value) in [
                ("X-Injected", "a\r\nSet-Cookie: evil=1"),
                ("X-Lf", "a\nSet-Cookie: evil=2"),
                ("X-Cr", "a\rb"),
                ("Bad Name", "v"),
                ("Bad:Name", "v"),
                ("", "v"),
                ("Content-Length", "5"),
                ("transfer-encoding", "chunked"),
                ("Connection", "close"),
                ("Date", "Thu, 01 Jan 1970 00:00:00 GMT"),
                ("Content-Type", "text/html"),
            ] {
                push(name, request.add_header(name, value));
            }
            push("status 100", request.set_status(100));
            push("status 600", request.set_status(600));
            push(
                "type with CRLF",
                request.set_body(Some("text/plain\r\nX-Evil: 1"), b"x"),
            );
            assert_eq!(request.set_status(200), 0);
            assert_eq!(request.set_body(Some("text/plain"), b"fine"), 0);
        })),
    );
    let mut client = Client::connect(served.port);
    let response = client.get("/anything");
    for (what, rc, err) in results.lock().iter() {
        assert_eq!((*rc, *err), (-1, libc::EINVAL), "{what}");
    }
    assert_eq!(results.lock().len(), 14);
    assert_eq!(
        (response.status, response.body.as_slice()),
        (200, &b"fine"[..])
    );
    assert_eq!(response.header("content-type"), Some("text/plain"));
    assert_eq!(response.all("content-length"), vec!["4"]);
    for absent in [
        "set-cookie",
        "x-injected",
        "x-lf",
        "x-cr",
        "x-evil",
        "transfer-encoding",
    ] {
        assert!(response.header(absent).is_none(), "{absent}: {response:?}");
    }
    assert_eq!(response.all("date").len(), 1);
    assert!(response.header("bad name").is_none() && response.header("bad").is_none());
    // Still in step on the same connection.
    assert_eq!(client.get("/again").status, 200);
    served.destroy();
}

#[test]
fn the_filter_guards_files_answers_and_upgrades() {
    let _process = shared();
    init();
    let fixture = Fixture::new();
    let log = Arc::new(Mutex::new(Vec::<Saw>::new()));
    let seen = log.clone();
    let upstream = Upstream::answer(|request| {
        request.set_status(200);
        request.set_body(Some("text/plain"), b"api");
    })
    .with_filter(move |request| {
        seen.lock().push(saw(request));
        if request.header("authorization").as_deref() == Some("Bearer good") {
            return 0;
        }
        if request.path().starts_with("/forbidden") {
            return 403;
        }
        assert_eq!(
            request.add_header("WWW-Authenticate", "Bearer realm=\"cam\""),
            0
        );
        401
    });
    let served = serve_files(&fixture, &[], Some(upstream));
    let events = Recorder::new(true);
    assert_eq!(add_service(served.server, "/ws", &[], &events), 0);
    let auth = [("Authorization", "Bearer good")];

    // Refused: a file, an onRequest path, a miss (before 404), a service path (before 426).
    for target in ["/t.txt", "/api", "/missing", "/ws"] {
        let response = fetch(served.port, &get(target));
        assert_eq!(response.status, 401, "{target}: {response:?}");
        assert_eq!(
            response.header("www-authenticate"),
            Some("Bearer realm=\"cam\""),
            "{target}"
        );
        assert!(!response.text().contains("contents of a test file"));
    }
    assert_eq!(fetch(served.port, &get("/forbidden/x")).status, 403);
    // A refused upgrade: the refusal, then the connection ends, and no onOpen.
    let mut refused = Client::connect(served.port);
    let response = refused.exchange(&upgrade_request("/ws", ""));
    assert_eq!(response.status, 401, "{response:?}");
    let end = refused.end();
    assert!(end.is_silent_close(), "{end:?}");

    // Let through: each route answers as without a filter.
    let pass = |target: &str| fetch(served.port, &request("GET", target, &auth, b""));
    assert_eq!(pass("/t.txt").body, fixture.bytes("t.txt"));
    assert_eq!(pass("/api").body, b"api");
    assert_eq!(pass("/ws").status, 426);
    let mut upgraded = Client::connect(served.port);
    let response = upgraded.exchange(&upgrade_request("/ws", "Authorization: Bearer good\r\n"));
    assert_eq!(response.status, 101, "{response:?}");
    let mut ws = RawClient {
        stream: upgraded.into_tcp(),
    };
    ws.send_frame(0x81, b"after the filter");
    assert_eq!(ws.read_frame(), Some((0x81, b"after the filter".to_vec())));
    assert_eq!(
        events.count(|s| *s == Seen::Open),
        1,
        "only the upgrade let through opened: {:?}",
        events.seen()
    );

    // What the filter saw.
    log.lock().clear();
    fetch(
        served.port,
        &request("DELETE", "/t.txt?q=1&r", &[("X-Probe", "probe value")], b""),
    );
    let first = log.lock()[0].clone();
    assert_eq!(
        (
            first.method.as_str(),
            first.path.as_str(),
            first.query.as_str()
        ),
        ("DELETE", "/t.txt", "q=1&r")
    );
    assert_eq!(first.probe.as_deref(), Some("probe value"));
    drop(ws);
    served.destroy();
}

#[test]
fn services_beat_files_and_files_beat_on_request() {
    let _process = shared();
    init();
    let fixture = Fixture::new();
    let calls = Arc::new(Count::default());
    let counted = calls.clone();
    let kept = Arc::new(Mutex::new(0usize));
    let keep = kept.clone();
    let upstream = Upstream::answer(move |request| {
        counted.add();
        *keep.lock() = request.0 as usize;
        request.set_status(200);
        request.set_body(Some("text/plain"), b"from onRequest");
    });
    let served = serve_files(&fixture, &[], Some(upstream));
    let events = Recorder::new(true);
    assert_eq!(add_service(served.server, "/t.txt", &[], &events), 0);
    // The service's path shadows the file of the same name.
    assert_eq!(fetch(served.port, &get("/t.txt")).status, 426);
    drop(ws_connect(served.port, "/t.txt"));
    // A file is served without asking onRequest.
    assert_eq!(
        fetch(served.port, &get("/a.css")).body,
        fixture.bytes("a.css")
    );
    assert_eq!(calls.get(), 0);
    assert_eq!(fetch(served.port, &get("/nothing")).body, b"from onRequest");
    assert_eq!(calls.get(), 1);

    // The request handle went stale when its callback returned.
    let stale = *kept.lock() as *mut HttpRequest;
    assert!(!stale.is_null());
    assert_eq!(httpResponseSetStatus(stale, 200), -1);
    assert_eq!(errno(), libc::EBADF, "{}", last_error());
    let mut buffer = [0 as std::ffi::c_char; 16];
    assert_eq!(
        unsafe { httpRequestMethod(stale, buffer.as_mut_ptr(), buffer.len()) },
        -1
    );
    assert_eq!(errno(), libc::EBADF);
    assert_eq!(httpResponseSetStatus(std::ptr::null_mut(), 200), -1);
    assert_eq!(errno(), libc::EINVAL);
    served.destroy();
}

#[test]
fn without_a_delegate_there_are_files_and_404() {
    let _process = shared();
    init();
    let fixture = Fixture::new();
    let served = serve_files(&fixture, &[], None);
    assert_eq!(
        fetch(served.port, &get("/t.txt")).body,
        fixture.bytes("t.txt")
    );
    for raw in [
        get("/nothing"),
        request("POST", "/nothing", &[], b"body"),
        upgrade_request("/nothing", ""),
    ] {
        let response = fetch(served.port, &raw);
        assert_eq!(response.status, 404, "{response:?}");
    }
    // No root either: everything is 404.
    let bare = start_http(&[], None);
    assert_eq!(fetch(bare.port, &get("/t.txt")).status, 404);
    assert_eq!(fetch(bare.port, &get("/")).status, 404);
    bare.destroy();
    served.destroy();
}

#[test]
fn create_http_ws_service_refuses_bad_calls_and_releases_their_delegates() {
    let _process = shared();
    init();
    let served = create_http(&[], None);
    let first = Recorder::new(false);
    assert_eq!(add_service(served.server, "/ws", &[], &first), 0);
    let refuse = |server: *mut HttpServer, path: &str, extra: &[(&str, &str)], expected: i32| {
        let recorder = Recorder::new(false);
        assert_eq!(add_service(server, path, extra, &recorder), -1, "{path:?}");
        assert_eq!(errno(), expected, "{path:?}: {}", last_error());
        assert!(!last_error().is_empty());
        assert!(
            *recorder.released.lock(),
            "{path:?}: the delegate was not released"
        );
    };
    refuse(std::ptr::null_mut(), "/ws2", &[], libc::EINVAL);
    for path in ["", "ws", "/ws?x=1", "/w#x", "/w%20s", "/a/../b"] {
        refuse(served.server, path, &[], libc::EINVAL);
    }
    refuse(served.server, "/ws", &[], libc::EEXIST);
    refuse(
        served.server,
        "/sized",
        &[("websocket-message-size-max", "lots")],
        libc::EINVAL,
    );
    // NULL path and NULL delegate.
    let recorder = Recorder::new(false);
    let (vtable, user) = delegate(&recorder);
    let rc = unsafe {
        createHttpWsService(
            served.server,
            std::ptr::null(),
            std::ptr::null(),
            0,
            &vtable,
            user,
        )
    };
    assert_eq!((rc, errno()), (-1, libc::EINVAL));
    let path = CString::new("/nodelegate").unwrap();
    let rc = unsafe {
        createHttpWsService(
            served.server,
            path.as_ptr(),
            std::ptr::null(),
            0,
            std::ptr::null(),
            std::ptr::null_mut(),
        )
    };
    assert_eq!((rc, errno()), (-1, libc::EINVAL));
    let stale = served.server;
    served.destroy();
    refuse(stale, "/late", &[], libc::EBADF);
    first.wait_for("the service delegate released", |_| *first.released.lock());
}

#[test]
fn stale_foreign_and_null_http_server_handles() {
    let _process = shared();
    init();
    let foreign = 0x1234_5678usize as *mut HttpServer;
    let calls: [(&str, extern "C" fn(*mut HttpServer) -> i32); 7] = [
        ("httpServerPort", httpServerPort),
        ("startHttpServer", startHttpServer),
        ("stopHttpServer", stopHttpServer),
        ("httpServerShutdown", httpServerShutdown),
        ("httpServerRetain", httpServerRetain),
        ("httpServerRelease", httpServerRelease),
        ("destroyHttpServer", destroyHttpServer),
    ];
    for (name, call) in calls {
        assert_eq!(
            (call(foreign), errno()),
            (-1, libc::EBADF),
            "{name} foreign"
        );
    }
    assert_eq!(destroyHttpServer(std::ptr::null_mut()), 0);
    assert_eq!(httpServerRelease(std::ptr::null_mut()), 0);
    for (name, call) in &calls[..5] {
        assert_eq!(
            (call(std::ptr::null_mut()), errno()),
            (-1, libc::EINVAL),
            "{name}(NULL)"
        );
    }

    let served = create_http(&[], None);
    assert_eq!(
        (httpServerPort(served.server), errno()),
        (-1, libc::ENOTCONN)
    );
    assert_eq!(startHttpServer(served.server), 0);
    assert_eq!(
        (startHttpServer(served.server), errno()),
        (-1, libc::EALREADY)
    );
    // A retained handle outlives destroy, shut down for good.
    assert_eq!(httpServerRetain(served.server), 0);
    assert_eq!(destroyHttpServer(served.server), 0);
    assert_eq!(
        (httpServerPort(served.server), errno()),
        (-1, libc::ENOTCONN)
    );
    assert_eq!(
        (startHttpServer(served.server), errno()),
        (-1, libc::EINVAL)
    );
    assert_eq!(httpServerRelease(served.server), 0);
    for (name, call) in calls {
        assert_eq!(
            (call(served.server), errno()),
            (-1, libc::EBADF),
            "{name} stale"
        );
    }
    let again = start_http(&[], None);
    assert_ne!(again.server, served.server);
    assert_eq!((httpServerPort(served.server), errno()), (-1, libc::EBADF));
    assert_eq!(httpServerPort(again.server), i32::from(again.port));
    again.destroy();
}
