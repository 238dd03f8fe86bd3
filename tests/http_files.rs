//! The HTTP server's files: index and folders, content types, HEAD, Last-Modified and
//! If-Modified-Since, ranges, big files streamed (byte-exact, and without the process growing by
//! the file's size), no way out of the root (traversal, escapes, symlinks), 405 and 404.

mod common;
use common::http::*;
use common::http_server::*;
use common::*;
use oasisnet::ffi::*;
use std::time::{Duration, SystemTime};

#[test]
fn the_root_gives_index_html() {
    let _process = shared();
    init();
    let fixture = Fixture::new();
    let served = serve_files(&fixture, &[], None);
    let index = fixture.bytes("index.html");
    let response = fetch(served.port, &get("/"));
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(
        response.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(
        response.header("content-length"),
        Some(index.len().to_string().as_str())
    );
    assert_eq!(response.body, index);
    served.destroy();
}

#[test]
fn folders_give_their_index_or_a_redirect_or_404() {
    let _process = shared();
    init();
    let fixture = Fixture::new();
    let served = serve_files(&fixture, &[], None);
    let mut client = Client::connect(served.port);
    let sub = client.get("/sub/");
    assert_eq!(sub.status, 200, "{sub:?}");
    assert_eq!(sub.body, fixture.bytes("sub/index.html"));
    assert_eq!(sub.header("content-type"), Some("text/html; charset=utf-8"));
    let moved = client.get("/sub");
    assert_eq!(moved.status, 301, "{moved:?}");
    assert_eq!(moved.header("location"), Some("/sub/"));
    // No listings: a folder without index.html is not found.
    let listed = client.get("/sub2/");
    assert_eq!(listed.status, 404, "{listed:?}");
    assert!(!listed.text().contains("x.txt"), "{listed:?}");
    let spaced = client.get("/a%20b.txt");
    assert_eq!(spaced.status, 200, "{spaced:?}");
    assert_eq!(spaced.body, fixture.bytes("a b.txt"));
    // All of it on one keep-alive connection.
    assert_eq!(client.get("/sub2/x.txt").body, fixture.bytes("sub2/x.txt"));
    served.destroy();
}

#[test]
fn every_extension_has_its_content_type_whatever_its_case() {
    let _process = shared();
    init();
    let fixture = Fixture::new();
    let served = serve_files(&fixture, &[], None);
    let mut client = Client::connect(served.port);
    for (name, kind) in TYPED_FILES {
        let response = client.get(&format!("/{}", name.replace(' ', "%20")));
        assert_eq!(response.status, 200, "{name}: {response:?}");
        assert_eq!(response.header("content-type"), Some(*kind), "{name}");
        assert_eq!(
            response.header("x-content-type-options"),
            Some("nosniff"),
            "{name}"
        );
        assert_eq!(response.body, fixture.bytes(name), "{name}");
    }
    served.destroy();
}

#[test]
fn head_gives_the_headers_of_get_and_no_body() {
    let _process = shared();
    init();
    let fixture = Fixture::new();
    let served = serve_files(&fixture, &[], None);
    let mut client = Client::connect(served.port);
    let full = client.get("/index.html");
    client.send(&request("HEAD", "/index.html", &[], b""));
    let head = client.head_response();
    assert_eq!(head.status, 200, "{head:?}");
    for name in [
        "content-type",
        "content-length",
        "last-modified",
        "accept-ranges",
    ] {
        assert_eq!(head.header(name), full.header(name), "{name}");
    }
    // Had the server sent the body, this response would start with it and not parse.
    let next = client.get("/t.txt");
    assert_eq!(next.status, 200, "{next:?}");
    assert_eq!(next.body, fixture.bytes("t.txt"));
    served.destroy();
}

#[test]
fn last_modified_is_the_mtime_and_if_modified_since_gives_304() {
    let _process = shared();
    init();
    let fixture = Fixture::new();
    // 1994-11-06 08:49:37 UTC: the example date of RFC 9110, in all three of its formats.
    let mtime = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777);
    std::fs::File::options()
        .write(true)
        .open(fixture.root.join("t.txt"))
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    let served = serve_files(&fixture, &[], None);
    let mut client = Client::connect(served.port);

    let plain = client.get("/t.txt");
    assert_eq!(
        plain.header("last-modified"),
        Some("Sun, 06 Nov 1994 08:49:37 GMT")
    );
    // A file the fixture just wrote: its own mtime, whole seconds.
    let index_mtime = std::fs::metadata(fixture.root.join("index.html"))
        .unwrap()
        .modified()
        .unwrap();
    let index = client.get("/index.html");
    assert_eq!(
        index.header("last-modified"),
        Some(httpdate::fmt_http_date(index_mtime).as_str())
    );

    for (since, status) in [
        ("Sun, 06 Nov 1994 08:49:37 GMT", 304),  // equal
        ("Sun, 06 Nov 1994 08:49:38 GMT", 304),  // later
        ("Mon, 07 Nov 2044 00:00:00 GMT", 304),  // much later
        ("Sun, 06 Nov 1994 08:49:36 GMT", 200),  // earlier
        ("yesterday", 200),                      // garbage
        ("Sunday, 06-Nov-94 08:49:37 GMT", 304), // RFC 850
        ("Sun Nov  6 08:49:37 1994", 304),       // asctime
    ] {
        let response = client.exchange(&request(
            "GET",
            "/t.txt",
            &[("If-Modified-Since", since)],
            b"",
        ));
        assert_eq!(response.status, status, "If-Modified-Since: {since}");
        if status == 304 {
            // The reader took no body for 304: the next response must parse (checked next loop).
            assert_eq!(
                response.header("last-modified"),
                Some("Sun, 06 Nov 1994 08:49:37 GMT")
            );
        } else {
            assert_eq!(response.body, fixture.bytes("t.txt"), "{since}");
        }
    }
    assert_eq!(client.get("/a.css").body, fixture.bytes("a.css"));
    served.destroy();
}

#[test]
fn single_ranges_give_206_and_the_exact_bytes() {
    let _process = shared();
    init();
    let fixture = Fixture::new();
    let served = serve_files(&fixture, &[], None);
    let bytes = fixture.bytes("x.bin");
    let n = bytes.len();
    let mut client = Client::connect(served.port);
    let ranged = |client: &mut Client, spec: &str, extra: Option<(&str, &str)>| {
        let mut headers = vec![("Range", spec)];
        headers.extend(extra);
        client.exchange(&request("GET", "/x.bin", &headers, b""))
    };
    for (spec, start, end) in [
        ("bytes=0-99", 0, 99),
        ("bytes=100-", 100, n - 1),
        ("bytes=-100", n - 100, n - 1),
        ("bytes=4000-9999", 4000, n - 1),
    ] {
        let response = ranged(&mut client, spec, None);
        assert_eq!(response.status, 206, "{spec}: {response:?}");
        assert_eq!(
            response.header("content-range"),
            Some(format!("bytes {start}-{end}/{n}").as_str()),
            "{spec}"
        );
        assert_eq!(response.body, &bytes[start..=end], "{spec}");
    }
    let past = ranged(&mut client, &format!("bytes={n}-"), None);
    assert_eq!(past.status, 416, "{past:?}");
    assert_eq!(
        past.header("content-range"),
        Some(format!("bytes */{n}").as_str())
    );
    // Several ranges or junk: the whole file (RFC 9110 lets a server ignore Range).
    for spec in ["bytes=0-1,5-6", "bytes=abc", "lines=1-2", "bytes=5-1"] {
        let response = ranged(&mut client, spec, None);
        assert_eq!(response.status, 200, "{spec}: {response:?}");
        assert_eq!(response.body, bytes, "{spec}");
    }
    // If-Range: the current Last-Modified keeps the range, anything else gives the whole file.
    let last_modified = client
        .get("/x.bin")
        .header("last-modified")
        .unwrap()
        .to_string();
    let kept = ranged(&mut client, "bytes=0-9", Some(("If-Range", &last_modified)));
    assert_eq!((kept.status, kept.body.as_slice()), (206, &bytes[..10]));
    let stale = ranged(
        &mut client,
        "bytes=0-9",
        Some(("If-Range", "Sun, 06 Nov 1994 08:49:37 GMT")),
    );
    assert_eq!(stale.status, 200, "{stale:?}");
    assert_eq!(stale.body, bytes);
    served.destroy();
}

#[test]
fn a_big_file_arrives_byte_exact_over_tcp_and_tls() {
    let _process = shared();
    init();
    let fixture = Fixture::new();
    let expected = fixture.bytes("big.bin");
    assert_eq!(expected.len(), BIG_LEN);
    for tls in [false, true] {
        let (chain, key) = (cert("fullchain.pem"), cert("privkey.pem"));
        let keys = [
            ("cert-file-path", chain.as_str()),
            ("pkey-file-path", key.as_str()),
        ];
        let served = serve_files(&fixture, if tls { &keys[..] } else { &[] }, None);
        let mut client = if tls {
            Client::connect_tls(served.port)
        } else {
            Client::connect(served.port)
        };
        let response = client.get("/big.bin");
        assert_eq!(response.status, 200, "tls={tls}");
        assert!(response.body == expected, "tls={tls}: the body differs");
        // The connection is still in step.
        assert_eq!(client.get("/t.txt").body, fixture.bytes("t.txt"));
        served.destroy();
    }
}

#[test]
fn a_slow_reader_of_a_64_mib_file_does_not_grow_the_process() {
    // Alone in the process: its memory is what this test measures.
    let _process = exclusive();
    init();
    let fixture = Fixture::new();
    let sparse = std::fs::File::create(fixture.root.join("sparse.bin")).unwrap();
    sparse.set_len(64 << 20).unwrap();
    drop(sparse);
    over_tcp_and_tls(&fixture, |tls, connect| {
        // Warm up: TLS sessions, buffers and the loop's first allocations are not the file.
        for _ in 0..2 {
            assert_eq!(connect().get("/big.bin").status, 200);
        }
        let mut client = connect();
        let mut chunk = vec![0u8; 64 * 1024];
        let before = vm_rss_kib();
        client.send(&get("/sparse.bin"));
        // The head first, then the body, pausing every MiB: the point of the test, since a
        // server that read the file whole, or queued it, would hold it meanwhile.
        let mut head = Vec::new();
        let body_start = loop {
            let n = read_some(&mut client, &mut chunk);
            head.extend_from_slice(&chunk[..n]);
            if let Some(at) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
        };
        assert!(head.starts_with(b"HTTP/1.1 200"), "tls={tls}");
        assert!(head[body_start..].iter().all(|&b| b == 0));
        let (mut received, mut peak, mut next_pause) = (head.len() - body_start, before, 1 << 20);
        while received < 64 << 20 {
            let want = chunk.len().min((64 << 20) - received);
            let n = read_some(&mut client, &mut chunk[..want]);
            assert!(chunk[..n].iter().all(|&b| b == 0), "tls={tls}: not zeros");
            received += n;
            if received >= next_pause {
                next_pause += 1 << 20;
                peak = peak.max(vm_rss_kib());
                std::thread::sleep(Duration::from_millis(15));
            }
        }
        let grown = peak.saturating_sub(before);
        assert!(
            grown < 2048,
            "tls={tls}: the process grew by {grown} KiB while streaming 64 MiB"
        );
        // Nothing beyond the file, and the connection is still in step.
        assert_eq!(client.get("/t.txt").body, fixture.bytes("t.txt"));
    });
}

/// Serves `fixture` over plain TCP, then over TLS (the test certificate), and runs `check` on
/// each server: with whether it is the TLS one, and a way to connect to it.
fn over_tcp_and_tls(fixture: &Fixture, mut check: impl FnMut(bool, &dyn Fn() -> Client)) {
    for tls in [false, true] {
        let (chain, key) = (cert("fullchain.pem"), cert("privkey.pem"));
        let keys = [
            ("cert-file-path", chain.as_str()),
            ("pkey-file-path", key.as_str()),
        ];
        let served = serve_files(fixture, if tls { &keys[..] } else { &[] }, None);
        let connect = || {
            if tls {
                Client::connect_tls(served.port)
            } else {
                Client::connect(served.port)
            }
        };
        check(tls, &connect);
        served.destroy();
    }
}

/// Reads at least one byte through the client's own stream (plain or TLS).
fn read_some(client: &mut Client, chunk: &mut [u8]) -> usize {
    let n = client.read_raw(chunk);
    assert!(n > 0, "the server closed mid-file");
    n
}

#[test]
fn nothing_outside_the_root_is_reachable() {
    let _process = shared();
    init();
    let fixture = Fixture::new();
    let served = serve_files(&fixture, &[], None);
    let bad_targets: &[&[u8]] = &[
        b"/../secret.txt",
        b"/sub/../../secret.txt",
        b"/%2e%2e/secret.txt",
        b"/%2E%2E/secret.txt",
        b"/.%2e/secret.txt",
        b"/%2e./secret.txt",
        b"/..%2fsecret.txt",
        b"/sub%2f..%2f..%2fsecret.txt",
        b"/%2fetc/passwd",
        b"/..\\secret.txt",
        b"/%5c..%5csecret.txt",
        b"/%00",
        b"/index.html%00.txt",
        b"/t\x00.txt",
        b"/%zz",
        b"/%2",
        b"/%c0%ae%c0%ae/secret.txt",
        b"http://x/../secret.txt",
    ];
    for target in bad_targets {
        let mut raw = b"GET ".to_vec();
        raw.extend_from_slice(target);
        raw.extend_from_slice(b" HTTP/1.1\r\nHost: test\r\n\r\n");
        let response = fetch(served.port, &raw);
        let shown = String::from_utf8_lossy(target);
        assert_eq!(response.status, 400, "{shown}: {response:?}");
        assert!(!response.text().contains(MARKER), "{shown}");
    }
    for target in [
        "/out_link",
        "/out_dir/inner.txt",
        "/out_dir/",
        "//etc/passwd",
    ] {
        let response = fetch(served.port, &get(target));
        assert_eq!(response.status, 404, "{target}: {response:?}");
        assert!(!response.text().contains(MARKER), "{target}");
    }
    let inside = fetch(served.port, &get("/in_link"));
    assert_eq!(inside.status, 200, "{inside:?}");
    assert_eq!(inside.body, fixture.bytes("t.txt"));
    // The absolute form is reduced to its path.
    let absolute = fetch(served.port, &get("http://test/t.txt"));
    assert_eq!(absolute.body, fixture.bytes("t.txt"));
    served.destroy();
}

#[test]
fn other_methods_on_a_file_give_405_and_the_connection_goes_on() {
    let _process = shared();
    init();
    let fixture = Fixture::new();
    let served = serve_files(&fixture, &[], None);
    let mut client = Client::connect(served.port);
    for method in ["POST", "PUT", "DELETE"] {
        for body in [&b""[..], b"name=value&x=1"] {
            let response = client.exchange(&request(method, "/index.html", &[], body));
            assert_eq!(response.status, 405, "{method}: {response:?}");
            assert_eq!(response.header("allow"), Some("GET, HEAD"), "{method}");
            // The body was read and dropped: the next request on the connection parses.
            let next = client.get("/t.txt");
            assert_eq!(next.body, fixture.bytes("t.txt"), "after {method}");
        }
    }
    served.destroy();
}

#[test]
fn a_missing_file_is_404_with_or_without_a_silent_on_request() {
    let _process = shared();
    init();
    let fixture = Fixture::new();
    let bare = serve_files(&fixture, &[], None);
    let calls = std::sync::Arc::new(Count::default());
    let counted = calls.clone();
    let silent = serve_files(
        &fixture,
        &[],
        Some(Upstream::answer(move |_| counted.add())),
    );
    for (port, what) in [
        (bare.port, "no delegate"),
        (silent.port, "silent onRequest"),
    ] {
        let mut client = Client::connect(port);
        let response = client.get("/missing.txt");
        assert_eq!(response.status, 404, "{what}: {response:?}");
        let deep = client.get("/sub/missing/deeper.html");
        assert_eq!(deep.status, 404, "{what}: {deep:?}");
    }
    assert_eq!(calls.get(), 2, "onRequest saw both misses");
    bare.destroy();
    silent.destroy();
}

#[test]
fn root_dir_must_be_an_existing_folder() {
    let _process = shared();
    init();
    let fixture = Fixture::new();
    for (root, expected) in [
        (fixture.root.join("nope"), libc::ENOENT),
        (fixture.root.join("t.txt"), libc::ENOTDIR),
    ] {
        let root = root.to_string_lossy().into_owned();
        let p = params(&[("port", "0"), ("root-dir", &root)]);
        let server = unsafe {
            createHttpServer(
                p.pairs.as_ptr(),
                p.pairs.len(),
                std::ptr::null(),
                std::ptr::null_mut(),
            )
        };
        assert!(server.is_null(), "{root}");
        assert_eq!(errno(), expected, "{root}: {}", last_error());
    }
}

/// Reads the head of the answer to `request` and the first `want` bytes of its body (fewer if
/// the connection ends first).
fn head_and_prefix(client: &mut Client, request: &[u8], want: usize) -> (String, Vec<u8>) {
    client.send(request);
    let mut got = Vec::new();
    let mut buffer = vec![0u8; 64 * 1024];
    let mut head_end = None;
    while head_end.is_none_or(|end| got.len() < end + want) {
        let n = client.read_raw(&mut buffer);
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buffer[..n]);
        if head_end.is_none() {
            head_end = got
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .map(|at| at + 4);
        }
    }
    let end = head_end.expect("a response head");
    let head = String::from_utf8_lossy(&got[..end]).into_owned();
    let mut body = got.split_off(end);
    body.truncate(want);
    (head, body)
}

/// A sparse file of 4 GiB + 64 KiB, its bytes read from 2 GiB and from 4 GiB on, and its start:
/// offsets and lengths past 2^31 and 2^32 reach the file and the socket whole, also where
/// `usize` and `off_t` are 32 bits (armv7 gnueabihf, where `sendfile` and an `off_t` cast stop at
/// 2 GiB, and a TLS stream cast what was left of the file to `usize`: 0 once 4 GiB were left).
#[test]
fn files_past_2_and_4_gib_are_served_from_the_right_offsets() {
    use std::os::unix::fs::FileExt;
    let _process = shared();
    init();
    let fixture = Fixture::new();
    const GIB: u64 = 1 << 30;
    let len = 4 * GIB + 65536;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(fixture.root.join("huge.bin"))
        .unwrap();
    file.set_len(len).unwrap();
    // (Sparse: the file takes a few blocks, not 4 GiB. Where the folder's file system has no
    // sparse files, the test says so and stops rather than fill the disk.)
    use std::os::unix::fs::MetadataExt;
    let stored = file.metadata().unwrap().blocks() * 512;
    if stored > 16 << 20 {
        eprintln!("skipped: the temporary folder's file system stores the sparse file whole");
        return;
    }
    let marks = [2 * GIB - 2048, 4 * GIB - 2048, len - 4096];
    for (i, &at) in marks.iter().enumerate() {
        file.write_all_at(&pattern(4096, i as u64), at).unwrap();
    }
    let expected = |start: u64, count: usize| {
        let mut bytes = vec![0u8; count];
        file.read_exact_at(&mut bytes, start).unwrap();
        bytes
    };
    over_tcp_and_tls(&fixture, |tls, connect| {
        for (start, end) in [
            (2 * GIB - 32768, 2 * GIB + 32767),
            (4 * GIB - 2048, len - 1),
        ] {
            let spec = format!("bytes={start}-{end}");
            let count = (end - start + 1) as usize;
            let mut client = connect();
            let (head, body) = head_and_prefix(
                &mut client,
                &request("GET", "/huge.bin", &[("Range", &spec)], b""),
                count,
            );
            assert!(head.starts_with("HTTP/1.1 206"), "tls={tls} {spec}: {head}");
            assert!(
                head.contains(&format!("Content-Range: bytes {start}-{end}/{len}\r\n")),
                "tls={tls} {spec}: {head}"
            );
            assert_eq!(body.len(), count, "tls={tls} {spec}: the body was cut");
            assert!(
                body == expected(start, count),
                "tls={tls} {spec}: the body differs"
            );
        }
        // The whole file: its first 256 KiB (the rest would take too long) go out as any file's.
        let mut client = connect();
        let (head, body) = head_and_prefix(&mut client, &get("/huge.bin"), 256 * 1024);
        assert!(head.starts_with("HTTP/1.1 200"), "tls={tls}: {head}");
        assert!(
            head.contains(&format!("Content-Length: {len}\r\n")),
            "tls={tls}: {head}"
        );
        assert_eq!(body.len(), 256 * 1024, "tls={tls}: the body was cut");
    });
}
