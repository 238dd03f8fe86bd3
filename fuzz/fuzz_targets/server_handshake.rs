//! The opening handshake as a server sees it: a request, fed in fuzzer-chosen chunks.
//!
//! Input: a control byte (low 3 bits: number of cut points; bits 3-4: the server's subprotocol
//! list), the cut points (u16 LE each), then the bytes a client sent.
//!
//! Invariants:
//! - the outcome (need more / accepted / refused, the response, the chosen subprotocol and the
//!   bytes after the head) is the same whether the bytes arrive at once or in chunks;
//! - an accepted request has exactly one Host, one Sec-WebSocket-Key (the base64 encoding of
//!   16 bytes) and one Sec-WebSocket-Version (13), and lists `websocket` on some Upgrade line and
//!   `upgrade` on some Connection line; it yields `HTTP/1.1 101 Switching Protocols` with
//!   Upgrade, Connection and a Sec-WebSocket-Accept of 28 base64 characters derived from the
//!   request's key, a subprotocol only when the server accepts it and the client offered it,
//!   and a head of at most 8192 bytes (the documented limit); the head it keeps is exactly the
//!   input before the leftover, the target is the request line's, and its header lookup finds
//!   the key;
//! - a refused request yields a complete 4xx response with a matching Content-Length and
//!   `Connection: close` (a 426: `Upgrade: websocket` and `Connection: Upgrade, close`), and a
//!   reason.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use oasisnet::protocol::handshake::{self, ServerHandshake, ServerStep};

/// The largest request head the server accepts (handshake.rs HEAD_MAX).
const HEAD_MAX: usize = 8192;

#[derive(Debug, PartialEq)]
enum Outcome {
    NeedMore,
    Accept {
        response: Vec<u8>,
        protocol: Option<String>,
        target: String,
        head: Vec<u8>,
        leftover: Vec<u8>,
    },
    Refuse {
        response: Vec<u8>,
    },
}

fn run(pieces: &[&[u8]], protocols: &[String]) -> Outcome {
    let mut handshake = ServerHandshake::default();
    for (i, piece) in pieces.iter().enumerate() {
        match handshake.feed(piece, protocols) {
            ServerStep::NeedMore => {}
            ServerStep::Accept(accepted) => {
                // What the server has not been fed yet follows the head as well.
                let mut leftover = accepted.leftover.to_vec();
                for rest in &pieces[i + 1..] {
                    leftover.extend_from_slice(rest);
                }
                return Outcome::Accept {
                    response: accepted.answer.to_bytes(),
                    protocol: accepted.answer.protocol.map(str::to_string),
                    target: accepted.target.to_string(),
                    head: accepted.head.to_vec(),
                    leftover,
                };
            }
            ServerStep::Refuse(refused) => {
                assert!(!refused.reason.is_empty(), "a refusal without a reason");
                return Outcome::Refuse {
                    response: refused.response,
                };
            }
        }
    }
    Outcome::NeedMore
}

/// The values of every header line `name` (case-insensitive) in a request head, in order.
fn header_lines<'a>(head: &'a [u8], name: &str) -> Vec<&'a [u8]> {
    head.split(|b| *b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
        .skip_while(|line| line.is_empty())
        .skip(1)
        .take_while(|line| !line.is_empty())
        .filter_map(|line| {
            let colon = line.iter().position(|b| *b == b':')?;
            line[..colon]
                .eq_ignore_ascii_case(name.as_bytes())
                .then(|| line[colon + 1..].trim_ascii())
        })
        .collect()
}

/// Whether some line `name` lists `token` (comma-separated, any case).
fn lists_token(head: &[u8], name: &str, token: &str) -> bool {
    header_lines(head, name).iter().any(|value| {
        value
            .split(|b| *b == b',')
            .any(|part| part.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
    })
}

/// Whether `key` decodes from base64 to exactly 16 bytes, with no bits set past them.
fn is_16_bytes_in_base64(key: &[u8]) -> bool {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let Some(digits) = key.strip_suffix(b"==") else {
        return false;
    };
    let values: Option<Vec<usize>> = digits
        .iter()
        .map(|b| ALPHABET.iter().position(|a| a == b))
        .collect();
    // 22 digits carry 132 bits: the 128 of 16 bytes and 4 that must be zero.
    values.is_some_and(|v| v.len() == 22 && v[21] & 0xF == 0)
}

fn check_accepted(
    request: &[u8],
    response: &[u8],
    protocol: &Option<String>,
    leftover: &[u8],
    protocols: &[String],
) {
    let text = String::from_utf8_lossy(response);
    assert!(
        response.starts_with(b"HTTP/1.1 101 Switching Protocols\r\n")
            && response.ends_with(b"\r\n\r\n"),
        "accepted, but the response is {text:?}"
    );
    assert_eq!(
        common::header_value(response, "Upgrade"),
        Some(&b"websocket"[..]),
        "{text:?}"
    );
    assert_eq!(
        common::header_value(response, "Connection"),
        Some(&b"Upgrade"[..]),
        "{text:?}"
    );
    let accept =
        common::header_value(response, "Sec-WebSocket-Accept").expect("no Sec-WebSocket-Accept");
    assert!(
        common::is_accept_value(accept),
        "Sec-WebSocket-Accept {:?}",
        String::from_utf8_lossy(accept)
    );

    assert!(
        request.ends_with(leftover),
        "the leftover is not the end of the input"
    );
    let head = &request[..request.len() - leftover.len()];
    assert!(
        head.len() <= HEAD_MAX,
        "accepted a request head of {} bytes (limit {HEAD_MAX})",
        head.len()
    );
    for name in ["Host", "Sec-WebSocket-Key", "Sec-WebSocket-Version"] {
        let lines = header_lines(head, name).len();
        assert_eq!(lines, 1, "accepted with {lines} {name} lines");
    }
    assert_eq!(
        header_lines(head, "Sec-WebSocket-Version"),
        [b"13"],
        "accepted another version"
    );
    assert!(
        lists_token(head, "Upgrade", "websocket"),
        "no Upgrade: websocket"
    );
    assert!(
        lists_token(head, "Connection", "upgrade"),
        "no Connection: Upgrade"
    );
    let key = common::header_value(head, "Sec-WebSocket-Key")
        .expect("accepted without a Sec-WebSocket-Key");
    assert!(
        is_16_bytes_in_base64(key),
        "accepted the key {:?}",
        String::from_utf8_lossy(key)
    );
    assert_eq!(
        accept,
        tungstenite::handshake::derive_accept_key(key).as_bytes(),
        "Sec-WebSocket-Accept does not belong to the request's key"
    );

    match protocol {
        Some(chosen) => {
            assert!(
                protocols.contains(chosen),
                "chose {chosen:?}, which the server does not accept"
            );
            assert_eq!(
                common::header_value(response, "Sec-WebSocket-Protocol"),
                Some(chosen.as_bytes())
            );
            let offered = String::from_utf8_lossy(head).to_ascii_lowercase();
            assert!(
                offered.contains(&chosen.to_ascii_lowercase()),
                "chose {chosen:?}, which the client did not offer"
            );
        }
        None => assert!(
            common::header_value(response, "Sec-WebSocket-Protocol").is_none(),
            "{text:?}"
        ),
    }
}

/// What the connection keeps of the request: the head before the leftover, the target of its
/// request line, and a header lookup that finds what httparse found.
fn check_kept(request: &[u8], target: &str, head: &[u8], leftover: &[u8]) {
    assert_eq!(
        head,
        &request[..request.len() - leftover.len()],
        "the kept head is not the input before the leftover"
    );
    // httparse skips empty lines before the request line.
    let line = head
        .split(|b| *b == b'\n')
        .find(|line| !line.is_empty() && *line != b"\r")
        .expect("a request line");
    let line = String::from_utf8_lossy(line);
    assert!(
        line.contains(&format!(" {target} ")),
        "target {target:?} is not in the request line {line:?}"
    );
    let (path, query) = handshake::split_target(target);
    assert!(
        target.starts_with(path) || !target.starts_with('/'),
        "{target:?}"
    );
    assert!(target.ends_with(query), "{target:?}");
    assert_eq!(
        handshake::header_values(head, "sec-websocket-key").next(),
        common::header_value(head, "Sec-WebSocket-Key"),
        "the connection's header lookup disagrees with the parser's"
    );
}

fn check_refused(response: &[u8]) {
    let text = String::from_utf8_lossy(response);
    assert!(
        response.starts_with(b"HTTP/1.1 4") && response.len() > 12,
        "refused with {text:?}"
    );
    let status: u16 = std::str::from_utf8(&response[9..12])
        .ok()
        .and_then(|s| s.parse().ok())
        .expect("status code");
    assert!((400..500).contains(&status), "{text:?}");
    assert_eq!(response[12], b' ', "{text:?}");
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("no end of head")
        + 4;
    let body = &response[split..];
    let length = common::header_value(response, "Content-Length").expect("no Content-Length");
    assert_eq!(length, body.len().to_string().as_bytes(), "{text:?}");
    // A 426 names the protocol to upgrade to, and so lists Upgrade in Connection.
    let (upgrade, connection): (Option<&[u8]>, &[u8]) = if status == 426 {
        (Some(b"websocket"), b"Upgrade, close")
    } else {
        (None, b"close")
    };
    assert_eq!(
        common::header_value(response, "Upgrade"),
        upgrade,
        "{text:?}"
    );
    assert_eq!(
        common::header_value(response, "Connection"),
        Some(connection),
        "{text:?}"
    );
    if status == 405 {
        assert_eq!(
            common::header_value(response, "Allow"),
            Some(&b"GET"[..]),
            "{text:?}"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let Some(input) = common::split(data) else {
        return;
    };
    let protocols = common::protocols(input.control);
    let request = input.payload;

    let whole = run(&[request], &protocols);
    let pieces = common::chunks(request, &input.cuts);
    let chunked = run(&pieces, &protocols);
    assert_eq!(
        whole,
        chunked,
        "fed at once vs. in pieces of {:?}",
        pieces.iter().map(|p| p.len()).collect::<Vec<_>>()
    );

    match &whole {
        Outcome::NeedMore => {
            assert!(
                request.len() <= HEAD_MAX,
                "{} bytes without a complete head and no refusal",
                request.len()
            );
        }
        Outcome::Accept {
            response,
            protocol,
            target,
            head,
            leftover,
        } => {
            check_accepted(request, response, protocol, leftover, &protocols);
            check_kept(request, target, head, leftover);
        }
        Outcome::Refuse { response } => check_refused(response),
    }
});
