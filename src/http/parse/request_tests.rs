//! Unit tests of `request.rs`: every status rule, each checked fed at once and in pieces.

use super::*;

const GET: &str = "GET /index.html HTTP/1.1\r\nHost: camera.local\r\nUser-Agent: t\r\n\r\n";

fn limits() -> HttpLimits {
    HttpLimits::default()
}

/// The answer for `buf` as text: "need", "refuse 414" or "complete 52".
fn outcome(buf: &[u8], limits: &HttpLimits) -> String {
    match parse_head(buf, limits) {
        HeadStep::NeedMore => "need".into(),
        HeadStep::Complete(head) => format!("complete {}", head.head_len),
        HeadStep::Refuse(status, _) => format!("refuse {status}"),
    }
}

/// The answer as a connection sees it, fed `step` bytes at a time, checked equal to the
/// answer for the whole buffer.
fn answer(buf: &[u8], limits: &HttpLimits) -> String {
    let whole = outcome(buf, limits);
    let step = if buf.len() < 2000 { 1 } else { 97 };
    let mut fed = "need".to_string();
    let mut end = 0;
    while end < buf.len() && fed == "need" {
        end = (end + step).min(buf.len());
        fed = outcome(&buf[..end], limits);
    }
    assert_eq!(whole, fed, "at once vs. {step} bytes at a time");
    whole
}

fn complete<'b>(buf: &'b [u8], limits: &HttpLimits) -> RequestHead<'b> {
    match parse_head(buf, limits) {
        HeadStep::Complete(head) => head,
        other => panic!("{:?}: {other:?}", String::from_utf8_lossy(buf)),
    }
}

/// GET with `extra` header lines (each ending in CRLF) before the blank line.
fn get_with(extra: &str) -> String {
    GET.replace("\r\n\r\n", &format!("\r\n{extra}\r\n\r\n"))
}

#[test]
fn a_plain_get_is_parsed() {
    let head = complete(GET.as_bytes(), &limits());
    assert_eq!(head.method, "GET");
    assert_eq!(head.target, "/index.html");
    assert_eq!(head.version, 1);
    assert_eq!(head.head_len, GET.len());
    assert_eq!(head.headers().len(), 2);
    assert_eq!(head.header("user-agent"), Some(&b"t"[..]));
    assert_eq!(head.host, Some(&b"camera.local"[..]));
    assert!(head.keep_alive && !head.upgrade_websocket && !head.expect_continue);
    assert_eq!(head.body, BodyLen::None);
    assert_eq!(
        answer(GET.as_bytes(), &limits()),
        format!("complete {}", GET.len())
    );
}

#[test]
fn an_unfinished_head_needs_more() {
    for end in 0..GET.len() {
        assert_eq!(outcome(&GET.as_bytes()[..end], &limits()), "need", "{end}");
    }
}

#[test]
fn pipelined_requests_parse_in_sequence() {
    let second = "HEAD /a.css HTTP/1.1\r\nHost: h\r\n\r\n";
    let both = format!("{GET}{second}GET /x");
    let first = complete(both.as_bytes(), &limits());
    assert_eq!(first.target, "/index.html");
    let rest = &both.as_bytes()[first.head_len..];
    let next = complete(rest, &limits());
    assert_eq!((next.method, next.target), ("HEAD", "/a.css"));
    assert_eq!(outcome(&rest[next.head_len..], &limits()), "need");
}

#[test]
fn empty_lines_before_the_request_are_skipped() {
    let buf = format!("\r\n\n{GET}");
    assert_eq!(
        answer(buf.as_bytes(), &limits()),
        format!("complete {}", buf.len())
    );
}

/// A request line of `len` bytes (without CRLF).
fn line_of(len: usize) -> String {
    let pad = len - "GET / HTTP/1.1".len();
    format!("GET /{} HTTP/1.1", "a".repeat(pad))
}

#[test]
fn a_request_line_at_the_limit_works_one_over_is_414() {
    let limits = limits();
    let at = format!("{}\r\nHost: h\r\n\r\n", line_of(limits.request_line_max));
    assert_eq!(
        answer(at.as_bytes(), &limits),
        format!("complete {}", at.len())
    );
    let over = format!(
        "{}\r\nHost: h\r\n\r\n",
        line_of(limits.request_line_max + 1)
    );
    assert_eq!(answer(over.as_bytes(), &limits), "refuse 414");
    // With a bare LF, the line is one byte longer than it looks.
    let lf = format!("{}\nHost: h\n\n", line_of(limits.request_line_max + 1));
    assert_eq!(answer(lf.as_bytes(), &limits), "refuse 414");
    let lf = format!("{}\nHost: h\n\n", line_of(limits.request_line_max));
    assert_eq!(
        answer(lf.as_bytes(), &limits),
        format!("complete {}", lf.len())
    );
}

#[test]
fn a_long_line_is_414_before_its_end_arrives_and_whatever_follows_it() {
    let limits = limits();
    let mut line = line_of(limits.request_line_max + 10).into_bytes();
    line.truncate(limits.request_line_max + 2);
    assert_eq!(answer(&line, &limits), "refuse 414");
    // Garbage past the limit does not turn it into 400.
    line.extend_from_slice(b"\0 \x01junk\r\n\r\n");
    assert_eq!(answer(&line, &limits), "refuse 414");
    // Garbage within it does.
    line[3] = 0;
    assert_eq!(answer(&line, &limits), "refuse 400");
}

/// A GET whose head is exactly `len` bytes (a long Cookie).
fn head_of(len: usize) -> String {
    let pad = len - GET.len() - "Cookie: \r\n".len();
    get_with(&format!("Cookie: {}", "c".repeat(pad)))
}

#[test]
fn a_head_at_the_limit_works_one_over_is_431() {
    let limits = limits();
    let at = head_of(limits.head_max);
    assert_eq!(
        answer(at.as_bytes(), &limits),
        format!("complete {}", at.len())
    );
    let over = head_of(limits.head_max + 1);
    assert_eq!(answer(over.as_bytes(), &limits), "refuse 431");
    // A single header of 10 KiB.
    let big = get_with(&format!("X-Big: {}", "b".repeat(10 * 1024)));
    assert_eq!(answer(big.as_bytes(), &limits), "refuse 431");
}

#[test]
fn a_fault_past_the_head_limit_is_431_however_the_bytes_arrive() {
    let limits = limits();
    let mut buf = head_of(limits.head_max + 300).into_bytes();
    let end = buf.len() - 4;
    buf.insert(end, 0);
    assert_eq!(answer(&buf, &limits), "refuse 431");
    let (a, _) = buf.split_at(limits.head_max + 100);
    assert_eq!(outcome(a, &limits), "refuse 431");
}

#[test]
fn sixty_four_headers_work_sixty_five_are_431() {
    let headers = |n: usize| {
        (1..n)
            .map(|i| format!("X-{i}: v\r\n"))
            .collect::<String>()
            .trim_end()
            .to_string()
    };
    let ok = get_with(&headers(HEADERS_MAX - 1)); // + Host, User-Agent = 64
    assert_eq!(complete(ok.as_bytes(), &limits()).header_count, HEADERS_MAX);
    let over = get_with(&headers(HEADERS_MAX));
    assert_eq!(answer(over.as_bytes(), &limits()), "refuse 431");
}

#[test]
fn other_http_versions_are_505_and_garbage_is_400() {
    for version in ["HTTP/1.2", "HTTP/2.0", "HTTP/0.9", "HTTP/3.0", "HTTP/9.9"] {
        let buf = GET.replace("HTTP/1.1", version);
        assert_eq!(answer(buf.as_bytes(), &limits()), "refuse 505", "{version}");
    }
    for version in [
        "HTTP/1.x",
        "HTTX/1.1",
        "http/1.1",
        "HTTP/2",
        "HTTP/1",
        "HTTP/12.0",
    ] {
        let buf = GET.replace("HTTP/1.1", version);
        assert_eq!(answer(buf.as_bytes(), &limits()), "refuse 400", "{version}");
    }
    // Not known yet: HTTP/2.0 (505) or HTTP/2x (400).
    assert_eq!(outcome(b"GET / HTTP/2", &limits()), "need");
}

/// The documented answer to an HTTP/2 client with prior knowledge.
#[test]
fn the_http2_preface_is_505() {
    let preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    assert_eq!(answer(preface, &limits()), "refuse 505");
}

#[test]
fn garbage_is_400() {
    for buf in [
        &b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03 tls hello\r\n\r\n"[..],
        b"GET /a\0b HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET  / HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET / HTTP/1.1\r\nBad Name: v\r\nHost: h\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: h\r\n folded\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: h\rX\r\n\r\n",
        b"\rGET / HTTP/1.1\r\n\r\n",
        b" / HTTP/1.1\r\n\r\n",
    ] {
        assert_eq!(answer(buf, &limits()), "refuse 400", "{buf:?}");
    }
}

#[test]
fn host_is_required_on_http11_only_and_once() {
    let no_host = b"GET / HTTP/1.1\r\nAccept: */*\r\n\r\n";
    assert_eq!(answer(no_host, &limits()), "refuse 400");
    let head = complete(b"GET / HTTP/1.0\r\n\r\n", &limits());
    assert_eq!(head.host, None);
    let two = get_with("Host: other");
    assert_eq!(answer(two.as_bytes(), &limits()), "refuse 400");
    let empty = b"GET / HTTP/1.1\r\nHost:\r\n\r\n";
    assert_eq!(complete(empty, &limits()).host, Some(&b""[..]));
}

#[test]
fn host_must_be_a_host_and_port() {
    for good in [
        "camera.local",
        "camera.local:8080",
        "192.168.1.10:80",
        "[::1]",
        "[fe80::1%25eth0]:443",
        "xn--bcher-kva.example",
        "a_b-c~d",
        "host%41",
        "camera:",
    ] {
        let request = format!("GET / HTTP/1.1\r\nHost: {good}\r\n\r\n");
        assert_eq!(
            answer(request.as_bytes(), &limits()),
            format!("complete {}", request.len()),
            "{good}"
        );
    }
    for bad in [
        "a b",
        "evil.example/x",
        "user@camera",
        "camera:80x",
        "camera:80:81",
        "[::1",
        "[::1]x",
        "[::1/]",
        "<camera>",
        "host%4",
        "host%zz",
        "caf\u{e9}.example",
    ] {
        let request = format!("GET / HTTP/1.1\r\nHost: {bad}\r\n\r\n");
        assert_eq!(answer(request.as_bytes(), &limits()), "refuse 400", "{bad}");
        let request = format!("GET / HTTP/1.0\r\nHost: {bad}\r\n\r\n");
        assert_eq!(
            answer(request.as_bytes(), &limits()),
            "refuse 400",
            "{bad} (HTTP/1.0)"
        );
    }
}

#[test]
fn keep_alive_follows_the_version_and_connection() {
    let keep = |buf: &str| complete(buf.as_bytes(), &limits()).keep_alive;
    assert!(keep(GET));
    assert!(!keep(&get_with("Connection: close")));
    assert!(!keep(&get_with("Connection: keep-alive, Close")));
    assert!(keep(&get_with("Connection: Upgrade")));
    assert!(!keep("GET / HTTP/1.0\r\n\r\n"));
    assert!(keep("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"));
    assert!(!keep(
        "GET / HTTP/1.0\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n"
    ));
}

#[test]
fn content_length_frames_the_body() {
    let body = |extra: &str| {
        let buf = get_with(extra);
        match parse_head(buf.as_bytes(), &limits()) {
            HeadStep::Complete(head) => Ok(head.body),
            HeadStep::Refuse(status, _) => Err(status),
            HeadStep::NeedMore => panic!("need more"),
        }
    };
    assert_eq!(body("Content-Length: 10"), Ok(BodyLen::Length(10)));
    assert_eq!(body("Content-Length: 0"), Ok(BodyLen::Length(0)));
    assert_eq!(body("Content-Length:  007 "), Ok(BodyLen::Length(7)));
    assert_eq!(
        body("Content-Length: 5\r\ncontent-length: 5"),
        Ok(BodyLen::Length(5))
    );
    assert_eq!(body("Content-Length: 5, 5"), Ok(BodyLen::Length(5)));
    assert_eq!(body("Content-Length: 65536"), Ok(BodyLen::Length(65536)));
    assert_eq!(body("Content-Length: 65537"), Err(413));
    assert_eq!(body("Content-Length: 99999999999999999999999"), Err(413));
    for bad in ["", "abc", "-1", "+5", "5 5", "0x10", "5,", "1.0"] {
        assert_eq!(body(&format!("Content-Length: {bad}")), Err(400), "{bad:?}");
    }
    assert_eq!(body("Content-Length: 5\r\nContent-Length: 6"), Err(400));
    assert_eq!(body("Content-Length: 5, 6"), Err(400));
    assert_eq!(body("Transfer-Encoding: chunked"), Err(501));
    assert_eq!(body("Transfer-Encoding: gzip, chunked"), Err(501));
    assert_eq!(
        body("Transfer-Encoding: chunked\r\nContent-Length: 5"),
        Err(400)
    );
    assert_eq!(
        body("Content-Length: 5\r\nTransfer-Encoding: chunked"),
        Err(400)
    );
    let tight = HttpLimits {
        body_max: 0,
        ..limits()
    };
    let buf = get_with("Content-Length: 1");
    assert_eq!(answer(buf.as_bytes(), &tight), "refuse 413");
}

#[test]
fn upgrade_and_expect_are_seen() {
    let head = get_with("Upgrade: WebSocket\r\nConnection: Upgrade");
    assert!(complete(head.as_bytes(), &limits()).upgrade_websocket);
    let head = get_with("Upgrade: h2c");
    assert!(!complete(head.as_bytes(), &limits()).upgrade_websocket);
    let head = get_with("Expect: 100-Continue\r\nContent-Length: 3");
    assert!(complete(head.as_bytes(), &limits()).expect_continue);
    let head = "POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n";
    assert!(!complete(head.as_bytes(), &limits()).expect_continue);
}

/// The head carries what the WebSocket handshake needs to answer an upgrade.
#[test]
fn an_upgrade_head_can_be_answered_by_the_handshake() {
    let request = "GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: chat\r\nSec-WebSocket-Version: 13\r\n\r\n";
    let head = complete(request.as_bytes(), &limits());
    let protocols = ["chat".to_string()];
    let answer = crate::protocol::handshake::upgrade_response_for(
        head.method,
        head.version,
        head.headers(),
        &protocols,
    );
    let (response, protocol) = answer.ok().expect("accepted");
    assert!(response.starts_with(b"HTTP/1.1 101"));
    assert_eq!(protocol.as_deref(), Some("chat"));
}

#[test]
fn tiny_limits_hold_too() {
    let tiny = HttpLimits {
        request_line_max: 10,
        head_max: 40,
        body_max: 5,
    };
    assert_eq!(answer(b"GET /a HTTP/1.0\r\n\r\n", &tiny), "refuse 414");
    assert_eq!(answer(b"GET / HTTP/1.0\r\n\r\n", &tiny), "refuse 414");
    assert_eq!(
        answer(
            b"GET / HTTP/1.0\r\n\r\n",
            &HttpLimits {
                request_line_max: 14,
                ..tiny
            }
        ),
        "complete 18"
    );
    let long_head = b"GET / HTTP/1.0\r\nX: 0123456789012345678901\r\n\r\n";
    let fits_line = HttpLimits {
        request_line_max: 14,
        ..tiny
    };
    assert_eq!(answer(long_head, &fits_line), "refuse 431");
    // A head limit below the request line limit: the head limit decides.
    let small_head = HttpLimits {
        request_line_max: 100,
        head_max: 12,
        body_max: 0,
    };
    assert_eq!(
        answer(b"GET /abcdefghijkl HTTP/1.0\r\n\r\n", &small_head),
        "refuse 431"
    );
}
