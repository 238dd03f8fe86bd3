//! Drives the protocol core (`Reader` + `Endpoint`) the way a session does, with bytes a fuzzer
//! chose, as a server (`protocol_server`) or as a client (`protocol_client`).
//!
//! Reads go through the loop's-buffer path (`feed`) or straight into the reader
//! (`direct_read_buffer`) as a session's do.
//!
//! Input: a byte of chunking (the stream is fed in pieces of 1..=that many bytes, cycling), a
//! byte of `message_max` (in units of 64 bytes, plus one), a byte of `fragment_max`, then the
//! stream of frames from the peer.
//!
//! Invariants:
//! - what happens does not depend on how the stream is cut into reads (compared with one read);
//! - a message is at most `message_max` bytes, text is UTF-8, control payloads ≤ 125 bytes;
//! - a close code is one an endpoint may send (or 1005), its reason UTF-8; a violation is 1002,
//!   1007 or 1009; nothing is handed out after a close frame or a violation;
//! - every byte the endpoint sends back (pongs, close frames, an echo of each message) is a
//!   well-formed frame stream for the peer's role, which the peer's reader parses back to the
//!   same messages.

use oasisnet::protocol::close::{self, NO_STATUS};
use oasisnet::protocol::{
    Endpoint, FrameSink, Incoming, Limits, MessageKind, Outgoing, Reader, Role, frame,
};
use std::time::{Duration, Instant};

/// The most one read takes: the event loop's default read size (`event-loop-read-size`).
const READ_MAX: usize = 512 * 1024;

#[derive(Default)]
struct Wire(Vec<u8>);

impl FrameSink for Wire {
    fn frame(&mut self, header: &[u8], payload: &[u8], mask: Option<[u8; 4]>) {
        self.0.extend_from_slice(header);
        let start = self.0.len();
        self.0.extend_from_slice(payload);
        if let Some(mask) = mask {
            frame::apply_mask(&mut self.0[start..], mask);
        }
    }
    fn queued(&self) -> usize {
        self.0.len()
    }
    fn mask_key(&mut self) -> [u8; 4] {
        [0x5a, 0x01, 0xc3, 0x77]
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    Message(MessageKind, Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(u16, Vec<u8>),
    Violation(u16),
}

fn limits(message_max: usize, fragment_max: usize) -> Limits {
    Limits {
        message_max,
        fragment_max,
        send_buffer_max: 1 << 20,
        handshake_timeout: Duration::from_secs(10),
        close_timeout: Duration::from_secs(5),
        ping_interval: None,
        pong_timeout: Duration::from_secs(1),
    }
}

/// Feeds `stream` in pieces of the sizes `chunks` gives, as a session would; returns what was
/// handed out and what the endpoint sent.
fn drive(
    role: Role,
    stream: &[u8],
    mut chunks: impl FnMut() -> usize,
    limits: &Limits,
) -> (Vec<Seen>, Vec<u8>) {
    let now = Instant::now();
    let mut reader = Reader::default();
    let mut endpoint = Endpoint::new(role, now, limits);
    endpoint.opened(now, limits);
    let mut wire = Wire::default();
    let mut seen = Vec::new();
    let mut offset = 0;
    'reads: while offset < stream.len() {
        let n = chunks().clamp(1, stream.len() - offset);
        // As a session reads: straight into the reader while large frames flow, else into a
        // buffer of its own that the reader parses in place.
        let mut piece = Vec::new();
        let mut input = match reader.direct_read_buffer(READ_MAX) {
            Some(target) => {
                // (An empty offer would read as the end of the stream.)
                assert!(!target.is_empty(), "a direct read offered nothing");
                let n = n.min(target.len());
                target[..n].copy_from_slice(&stream[offset..offset + n]);
                offset += n;
                reader.direct_filled(n, READ_MAX)
            }
            None => {
                piece.extend_from_slice(&stream[offset..offset + n]);
                offset += n;
                reader.feed(&mut piece)
            }
        };
        while let Some(incoming) = reader.next(&mut input, role, limits) {
            match incoming {
                Incoming::Message { kind, data } => {
                    assert!(data.len() <= limits.message_max, "{} bytes", data.len());
                    if kind == MessageKind::Text {
                        assert!(std::str::from_utf8(data).is_ok(), "text is not UTF-8");
                    }
                    let echo = if kind == MessageKind::Text {
                        Outgoing::Text
                    } else {
                        Outgoing::Binary
                    };
                    endpoint.send(echo, data, limits, &mut wire).unwrap();
                    seen.push(Seen::Message(kind, data.to_vec()));
                }
                Incoming::Ping(data) => {
                    assert!(data.len() <= 125);
                    endpoint.on_ping(data, limits, &mut wire);
                    seen.push(Seen::Ping(data.to_vec()));
                }
                Incoming::Pong(data) => {
                    assert!(data.len() <= 125);
                    seen.push(Seen::Pong(data.to_vec()));
                }
                Incoming::Close { code, reason } => {
                    assert!(
                        code == NO_STATUS || close::close_code_is_sendable(code),
                        "{code}"
                    );
                    assert!(std::str::from_utf8(reason).is_ok());
                    seen.push(Seen::Close(code, reason.to_vec()));
                    endpoint.on_peer_close(code, now, limits, &mut wire);
                    break 'reads;
                }
                Incoming::Violation(violation) => {
                    assert!(
                        matches!(violation.code, 1002 | 1007 | 1009),
                        "{violation:?}"
                    );
                    seen.push(Seen::Violation(violation.code));
                    endpoint.fail(&violation, &mut wire);
                    break 'reads;
                }
            }
        }
    }
    (seen, wire.0)
}

pub fn run(role: Role, data: &[u8]) {
    let [chunk, max, fragment, stream @ ..] = data else {
        return;
    };
    let limits = limits(usize::from(*max) * 64 + 1, usize::from(*fragment));
    let (whole, sent) = drive(role, stream, || usize::MAX, &limits);
    let mut step = 0usize;
    let (cut, sent_cut) = drive(
        role,
        stream,
        || {
            step += 1;
            1 + step % usize::from(*chunk).max(1)
        },
        &limits,
    );
    assert_eq!(whole, cut, "the events depend on how the stream was read");
    assert_eq!(
        sent.len(),
        sent_cut.len(),
        "what was sent depends on the reads"
    );

    // What we sent, read by the peer: well-formed frames with the same messages in them.
    let peer = if role == Role::Server {
        Role::Client
    } else {
        Role::Server
    };
    let mut reader = Reader::default();
    let mut bytes = sent;
    let mut input = reader.feed(&mut bytes);
    let mut echoed = Vec::new();
    let big = limits.message_max.max(126);
    let peer_limits = self::limits(big, 0);
    while let Some(incoming) = reader.next(&mut input, peer, &peer_limits) {
        match incoming {
            Incoming::Message { kind, data } => echoed.push(Seen::Message(kind, data.to_vec())),
            Incoming::Violation(v) => panic!("we sent a frame the peer refuses: {v:?}"),
            Incoming::Close { .. } => break,
            Incoming::Ping(_) | Incoming::Pong(_) => {}
        }
    }
    let messages: Vec<Seen> = whole
        .into_iter()
        .filter(|s| matches!(s, Seen::Message(..)))
        .collect();
    assert_eq!(echoed, messages, "the echo differs from what arrived");
}
