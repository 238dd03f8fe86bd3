//! The opening handshake as a client sees it: the server's response, fed in fuzzer-chosen
//! chunks, to a client that sent its request for ws://example.com:9000/chat?x=1 (resource
//! `/chat?x=1`, Host `example.com:9000`).
//!
//! Input: a control byte (low 3 bits: number of cut points; bits 3-4: the client's subprotocol
//! list), the cut points (u16 LE each), then the bytes the server sent. The client's key is
//! random, so every occurrence of the RFC 6455 sample accept value
//! `s3pPLMBiTxaQ9kYGzzhZRbK+xOo=` in the input is replaced by the accept value of this client's
//! key (same length): the seeds use it, so the fuzzer reaches the accepting path.
//!
//! Invariants:
//! - the request is a well-formed upgrade request for the URL (key of 24 base64 characters,
//!   version 13, the subprotocols offered);
//! - the outcome (need more / open with subprotocol and following bytes / refusal) is the same
//!   whether the bytes arrive at once or in chunks;
//! - an open connection saw this key's Sec-WebSocket-Accept, a subprotocol it offered (or
//!   none), and a head of at most 8192 bytes; a refusal gives a reason (the caller reports it
//!   as EPROTO).
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use oasisnet::protocol::handshake::{ClientHandshake, ClientStep};

const HEAD_MAX: usize = 8192;
const SAMPLE_ACCEPT: &[u8] = b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

#[derive(Debug, PartialEq)]
enum Outcome {
    NeedMore,
    Open {
        protocol: Option<String>,
        leftover: Vec<u8>,
    },
    Refused {
        message: String,
    },
}

/// `bytes` with every `from` replaced by `to` (accept values: 28 bytes each).
fn swap(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    let mut i = 0;
    while i + from.len() <= out.len() {
        if &out[i..i + from.len()] == from {
            out[i..i + from.len()].copy_from_slice(to);
            i += from.len();
        } else {
            i += 1;
        }
    }
    out
}

/// `bytes` with this handshake's accept value put back to the sample one, so that the outcomes
/// of two handshakes (two random keys) compare equal.
fn restore(bytes: &[u8], accept: &[u8]) -> Vec<u8> {
    swap(bytes, accept, SAMPLE_ACCEPT)
}

/// Runs the handshake on `pieces`; the outcome is given with the sample accept value in place
/// of this handshake's own (see `restore`).
fn run(handshake: &mut ClientHandshake, pieces: &[&[u8]], accept: &[u8]) -> Outcome {
    for (i, piece) in pieces.iter().enumerate() {
        match handshake.feed(piece) {
            Ok(ClientStep::NeedMore) => {}
            Ok(ClientStep::Open {
                protocol,
                mut leftover,
            }) => {
                for rest in &pieces[i + 1..] {
                    leftover.extend_from_slice(rest);
                }
                return Outcome::Open {
                    protocol: protocol.map(|p| {
                        String::from_utf8(restore(p.as_bytes(), accept)).expect("ASCII swap")
                    }),
                    leftover: restore(&leftover, accept),
                };
            }
            Err(refused) => {
                return Outcome::Refused {
                    message: String::from_utf8(restore(refused.0.as_bytes(), accept))
                        .expect("ASCII swap"),
                };
            }
        }
    }
    Outcome::NeedMore
}

fn check_request(request: &[u8], protocols: &[String]) -> Vec<u8> {
    let text = String::from_utf8_lossy(request);
    assert!(
        request.starts_with(b"GET /chat?x=1 HTTP/1.1\r\n"),
        "{text:?}"
    );
    assert!(request.ends_with(b"\r\n\r\n"), "{text:?}");
    assert_eq!(
        common::header_value(request, "Host"),
        Some(&b"example.com:9000"[..]),
        "{text:?}"
    );
    assert_eq!(
        common::header_value(request, "Upgrade"),
        Some(&b"websocket"[..]),
        "{text:?}"
    );
    assert_eq!(
        common::header_value(request, "Sec-WebSocket-Version"),
        Some(&b"13"[..]),
        "{text:?}"
    );
    let key = common::header_value(request, "Sec-WebSocket-Key").expect("no key");
    assert!(
        key.len() == 24
            && key.ends_with(b"==")
            && key[..22]
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/'),
        "{text:?}"
    );
    match common::header_value(request, "Sec-WebSocket-Protocol") {
        None => assert!(protocols.is_empty(), "{text:?}"),
        Some(offered) => assert_eq!(offered, protocols.join(", ").as_bytes(), "{text:?}"),
    }
    tungstenite::handshake::derive_accept_key(key).into_bytes()
}

/// 16 random bytes from the standard library's per-process hash keys (no RNG crate needed).
fn random_nonce() -> [u8; 16] {
    use std::hash::{BuildHasher, Hasher};
    let half = || {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u8(0);
        hasher.finish().to_ne_bytes()
    };
    let mut nonce = [0; 16];
    nonce[..8].copy_from_slice(&half());
    nonce[8..].copy_from_slice(&half());
    nonce
}

fuzz_target!(|data: &[u8]| {
    let Some(input) = common::split(data) else {
        return;
    };
    let protocols = common::protocols(input.control);
    // What the client layer passes for ws://example.com:9000/chat?x=1.
    let (resource, host) = ("/chat?x=1", "example.com:9000");
    // The same key for both, so that both must accept (or refuse) the same response; random, as
    // a client's is, so that no input can carry the real accept value (the harness swaps a
    // sample value for it, and maps it back in the outcome).
    let nonce = random_nonce();
    let mut whole_handshake = ClientHandshake::new(resource, host, &protocols, nonce);
    let mut chunked_handshake = ClientHandshake::new(resource, host, &protocols, nonce);
    let whole_accept = check_request(whole_handshake.request(), &protocols);
    let chunked_accept = check_request(chunked_handshake.request(), &protocols);

    let whole_response = swap(input.payload, SAMPLE_ACCEPT, &whole_accept);
    let chunked_response = swap(input.payload, SAMPLE_ACCEPT, &chunked_accept);

    let whole = run(&mut whole_handshake, &[&whole_response], &whole_accept);
    let chunked = run(
        &mut chunked_handshake,
        &common::chunks(&chunked_response, &input.cuts),
        &chunked_accept,
    );
    assert_eq!(
        whole, chunked,
        "fed at once vs. in pieces cut at {:?}",
        input.cuts
    );

    match whole {
        Outcome::NeedMore => assert!(
            whole_response.len() <= HEAD_MAX,
            "{} bytes without a complete head and no refusal",
            whole_response.len()
        ),
        Outcome::Open { protocol, leftover } => {
            // (The outcome carries the input's own bytes: the sample accept value.)
            assert!(input.payload.ends_with(&leftover));
            let head = &whole_response[..whole_response.len() - leftover.len()];
            assert!(
                head.len() <= HEAD_MAX,
                "accepted a response head of {} bytes (limit {HEAD_MAX})",
                head.len()
            );
            assert!(
                head.windows(whole_accept.len()).any(|w| w == whole_accept),
                "open without this key's Sec-WebSocket-Accept"
            );
            if let Some(chosen) = protocol {
                assert!(
                    protocols.contains(&chosen),
                    "open with {chosen:?}, which was not offered"
                );
            }
        }
        Outcome::Refused { message } => {
            assert!(
                message.starts_with("WebSocket handshake refused: "),
                "{message}"
            );
        }
    }
});
