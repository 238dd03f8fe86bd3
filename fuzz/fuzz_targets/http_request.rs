//! HTTP request heads as the server's connection sees them: a stream of pipelined requests,
//! fed in fuzzer-chosen chunks, each head parsed by `parse_head` from the unparsed bytes and
//! its body skipped, until a refusal, a head that ends the connection (no keep-alive, an
//! upgrade) or the end of the input.
//!
//! Input: a control byte (low 3 bits: number of cut points; bits 3-4: the limits, see
//! `LIMITS`), the cut points (u16 LE each), then the bytes a client sent.
//!
//! Invariants:
//! - what the connection sees (each head, each refusal) is the same whether the bytes arrive
//!   at once or in chunks;
//! - a complete head lies within the bytes received and within the limits: `head_len` at most
//!   `head_max`, a request line of at most `request_line_max` bytes, at most 64 headers, a body
//!   of at most `body_max`; it ends with a blank line; HTTP/1.1 has a Host; keep-alive follows
//!   the version and `Connection`;
//! - a refusal is one of the documented statuses (400, 413, 414, 431, 501, 505) with a reason,
//!   and its error answer is a complete response with a matching `Content-Length`;
//! - bytes left waiting for a head are fewer than `head_max`.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use oasisnet::http::parse::request::{HEADERS_MAX, HeadStep, HttpLimits, RequestHead, parse_head};
use oasisnet::http::parse::response;

/// Limits picked by bits 3-4 of the control byte: the defaults, and small ones so that every
/// limit is reached by short inputs.
const LIMITS: [HttpLimits; 4] = [
    HttpLimits {
        request_line_max: 4096,
        head_max: 8192,
        body_max: 65536,
    },
    HttpLimits {
        request_line_max: 64,
        head_max: 1024,
        body_max: 0,
    },
    HttpLimits {
        request_line_max: 100,
        head_max: 300,
        body_max: 1000,
    },
    HttpLimits {
        request_line_max: 8192,
        head_max: 1024,
        body_max: 16,
    },
];

/// Stop after this many requests (a stream of tiny requests would otherwise be slow).
const REQUESTS_MAX: usize = 32;

#[derive(Debug, PartialEq)]
enum Seen {
    Head {
        method: String,
        target: String,
        version: u8,
        headers: Vec<(String, Vec<u8>)>,
        head_len: usize,
        keep_alive: bool,
        body: u64,
        upgrade_websocket: bool,
        expect_continue: bool,
        host: Option<Vec<u8>>,
    },
    Refuse(u16),
}

fn within(outer: &[u8], inner: &[u8]) -> bool {
    let (start, end) = (
        outer.as_ptr() as usize,
        outer.as_ptr() as usize + outer.len(),
    );
    let at = inner.as_ptr() as usize;
    inner.is_empty() || (start <= at && at + inner.len() <= end)
}

fn check_head(head: &RequestHead<'_>, input: &[u8], limits: &HttpLimits) {
    let text = String::from_utf8_lossy(&input[..head.head_len.min(input.len())]);
    assert!(head.head_len <= input.len(), "{text:?}");
    assert!(
        head.head_len <= limits.head_max,
        "head of {} bytes",
        head.head_len
    );
    let bytes = &input[..head.head_len];
    assert!(
        bytes.ends_with(b"\n\r\n") || bytes.ends_with(b"\n\n"),
        "no blank line at the end: {text:?}"
    );
    assert!(within(bytes, head.method.as_bytes()), "{text:?}");
    assert!(within(bytes, head.target.as_bytes()), "{text:?}");
    assert!(head.header_count <= HEADERS_MAX);
    for header in head.headers() {
        assert!(within(bytes, header.name.as_bytes()) && within(bytes, header.value));
    }
    assert!(head.version <= 1, "version {}", head.version);
    // The request line: after any empty lines, up to its LF, without a CR before it.
    let mut start = 0;
    while bytes[start] == b'\r' || bytes[start] == b'\n' {
        start += 1;
    }
    let end = start + bytes[start..].iter().position(|&b| b == b'\n').unwrap();
    let line = bytes[start..end]
        .strip_suffix(b"\r")
        .unwrap_or(&bytes[start..end]);
    assert!(
        line.len() <= limits.request_line_max,
        "a request line of {} bytes",
        line.len()
    );
    assert!(head.body.bytes() <= limits.body_max as u64);
    if head.version == 1 {
        assert!(head.host.is_some(), "HTTP/1.1 without Host: {text:?}");
    }
    if head.header("Connection").is_none() {
        assert_eq!(head.keep_alive, head.version == 1, "{text:?}");
    }
    if head.header("Content-Length").is_none() {
        assert_eq!(head.body.bytes(), 0);
    }
    assert!(head.header("Transfer-Encoding").is_none(), "{text:?}");
}

fn check_refusal(status: u16, reason: &str) {
    assert!(
        [400, 413, 414, 431, 501, 505].contains(&status),
        "refused with {status} ({reason})"
    );
    assert!(!reason.is_empty());
    let mut answer = Vec::new();
    response::error(
        &mut answer,
        status,
        "Sun, 06 Nov 1994 08:49:37 GMT",
        false,
        &[],
        true,
    );
    let mut headers = [httparse::EMPTY_HEADER; 16];
    let mut parsed = httparse::Response::new(&mut headers);
    let Ok(httparse::Status::Complete(len)) = parsed.parse(&answer) else {
        panic!("the {status} answer does not parse: {answer:?}");
    };
    assert_eq!(parsed.code, Some(status));
    let length = common::header_value(&answer, "Content-Length").expect("Content-Length");
    assert_eq!(length, (answer.len() - len).to_string().as_bytes());
}

/// Runs a connection's reading over `pieces`: what it saw.
fn run(pieces: &[&[u8]], limits: &HttpLimits) -> Vec<Seen> {
    let mut input: Vec<u8> = Vec::new();
    let mut body_left = 0u64;
    let mut seen = Vec::new();
    for piece in pieces {
        input.extend_from_slice(piece);
        loop {
            let skip = body_left.min(input.len() as u64);
            input.drain(..skip as usize);
            body_left -= skip;
            if body_left > 0 {
                break;
            }
            match parse_head(&input, limits) {
                HeadStep::NeedMore => {
                    assert!(
                        input.len() < limits.head_max,
                        "{} bytes and no answer",
                        input.len()
                    );
                    break;
                }
                HeadStep::Refuse(status, reason) => {
                    check_refusal(status, reason);
                    seen.push(Seen::Refuse(status));
                    return seen;
                }
                HeadStep::Complete(head) => {
                    check_head(&head, &input, limits);
                    let ends = !head.keep_alive || head.upgrade_websocket;
                    seen.push(Seen::Head {
                        method: head.method.to_string(),
                        target: head.target.to_string(),
                        version: head.version,
                        headers: head
                            .headers()
                            .iter()
                            .map(|h| (h.name.to_string(), h.value.to_vec()))
                            .collect(),
                        head_len: head.head_len,
                        keep_alive: head.keep_alive,
                        body: head.body.bytes(),
                        upgrade_websocket: head.upgrade_websocket,
                        expect_continue: head.expect_continue,
                        host: head.host.map(<[u8]>::to_vec),
                    });
                    body_left = head.body.bytes();
                    let head_len = head.head_len;
                    input.drain(..head_len);
                    if ends || seen.len() >= REQUESTS_MAX {
                        return seen;
                    }
                }
            }
        }
    }
    seen
}

fuzz_target!(|data: &[u8]| {
    let Some(input) = common::split(data) else {
        return;
    };
    let limits = &LIMITS[usize::from((input.control >> 3) & 3)];
    let whole = run(&[input.payload], limits);
    let pieces = common::chunks(input.payload, &input.cuts);
    let chunked = run(&pieces, limits);
    assert_eq!(
        whole,
        chunked,
        "fed at once vs. in pieces of {:?}",
        pieces.iter().map(|p| p.len()).collect::<Vec<_>>()
    );
});
