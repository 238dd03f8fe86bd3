//! The protocol core driven with byte slices, as a fuzzer or another event loop would drive it.

use super::close::{INVALID_DATA, PROTOCOL_ERROR, TOO_BIG};
use super::frame::{self, MAX_HEADER, Opcode};
use super::*;
use std::time::{Duration, Instant};

mod direct_reads;
mod keepalive;
use direct_reads::READ_MAX;

fn limits() -> Limits {
    Limits {
        message_max: 1 << 20,
        fragment_max: 0,
        send_buffer_max: 1 << 20,
        handshake_timeout: Duration::from_secs(10),
        close_timeout: Duration::from_secs(5),
        ping_interval: None,
        pong_timeout: Duration::from_secs(1),
    }
}

/// Frames as they would go on the wire (masks applied).
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

/// A frame as a client would send it (masked).
fn client_frame(opcode: Opcode, fin: bool, payload: &[u8]) -> Vec<u8> {
    let mut header = [0; MAX_HEADER];
    let mask = [7, 1, 9, 3];
    let n = frame::encode_header(&mut header, opcode, fin, payload.len(), Some(mask));
    let mut out = header[..n].to_vec();
    let start = out.len();
    out.extend_from_slice(payload);
    frame::apply_mask(&mut out[start..], mask);
    out
}

/// A frame as it reaches `role`: masked from a client, plain from a server.
fn frame_to(role: Role, opcode: Opcode, fin: bool, payload: &[u8]) -> Vec<u8> {
    if role == Role::Server {
        return client_frame(opcode, fin, payload);
    }
    let mut header = [0; MAX_HEADER];
    let n = frame::encode_header(&mut header, opcode, fin, payload.len(), None);
    [&header[..n], payload].concat()
}

/// Everything a server reader makes of `bytes`, fed in chunks of `chunk` bytes.
fn receive_all(reader: &mut Reader, bytes: &[u8], chunk: usize) -> Vec<String> {
    receive_at(Role::Server, reader, bytes, chunk)
}

/// Everything a reader of `role` makes of `bytes`, fed in chunks of `chunk` bytes.
fn receive_at(role: Role, reader: &mut Reader, bytes: &[u8], chunk: usize) -> Vec<String> {
    let mut seen = Vec::new();
    for piece in bytes.chunks(chunk.max(1)) {
        let mut piece = piece.to_vec();
        let mut input = reader.feed(&mut piece);
        while let Some(event) = reader.next(&mut input, role, &limits()) {
            seen.push(match event {
                Incoming::Message { kind, data } => {
                    format!("{kind:?} {}", String::from_utf8_lossy(data))
                }
                Incoming::Ping(data) => format!("ping {}", data.len()),
                Incoming::Pong(data) => format!("pong {}", data.len()),
                Incoming::Close { code, reason } => {
                    format!("close {code} {}", String::from_utf8_lossy(reason))
                }
                Incoming::Violation(v) => format!("violation {}", v.code),
            });
        }
    }
    seen
}

#[test]
fn messages_survive_any_chunking() {
    let mut stream = client_frame(Opcode::Text, true, b"hello");
    stream.extend(client_frame(
        Opcode::Text,
        false,
        "h\u{e9}".as_bytes()[..2].as_ref(),
    ));
    // The UTF-8 sequence of 'é' is cut between the two fragments.
    stream.extend(client_frame(Opcode::Ping, true, b"p"));
    stream.extend(client_frame(
        Opcode::Continuation,
        true,
        &"h\u{e9}".as_bytes()[2..],
    ));
    stream.extend(client_frame(Opcode::Binary, true, &[0u8; 70_000]));
    stream.extend(client_frame(
        Opcode::Close,
        true,
        &[0x03, 0xe8, b'b', b'y', b'e'],
    ));
    let expected = {
        let mut reader = Reader::default();
        receive_all(&mut reader, &stream, stream.len())
    };
    assert_eq!(expected.len(), 5, "{expected:?}");
    assert_eq!(expected[0], "Text hello");
    assert_eq!(expected[1], "ping 1");
    assert_eq!(expected[2], "Text h\u{e9}");
    assert!(expected[3].starts_with("Binary "));
    assert_eq!(expected[4], "close 1000 bye");
    for chunk in [1, 2, 3, 7, 100, 4096, 65536] {
        let mut reader = Reader::default();
        assert_eq!(
            receive_all(&mut reader, &stream, chunk),
            expected,
            "chunk {chunk}"
        );
        assert_eq!(
            reader.buffered(),
            0,
            "an idle reader keeps no buffer (chunk {chunk})"
        );
    }
}

#[test]
fn violations_carry_their_close_codes() {
    let cases: Vec<(Vec<u8>, u16)> = vec![
        (client_frame(Opcode::Text, true, &[0xff]), INVALID_DATA),
        (
            {
                let mut f = client_frame(Opcode::Text, true, b"x");
                f[0] |= 0x40; // RSV1
                f
            },
            PROTOCOL_ERROR,
        ),
        (
            client_frame(Opcode::Continuation, true, b"x"),
            PROTOCOL_ERROR,
        ),
        (client_frame(Opcode::Close, true, &[0x03]), PROTOCOL_ERROR),
        (
            client_frame(Opcode::Binary, true, &vec![0; (1 << 20) + 1]),
            TOO_BIG,
        ),
    ];
    for (bytes, code) in cases {
        let mut reader = Reader::default();
        let seen = receive_all(&mut reader, &bytes, bytes.len());
        assert_eq!(seen, vec![format!("violation {code}")]);
    }
    // An unmasked frame from a client.
    let mut header = [0; MAX_HEADER];
    let n = frame::encode_header(&mut header, Opcode::Text, true, 1, None);
    let mut bytes = header[..n].to_vec();
    bytes.push(b'x');
    let mut reader = Reader::default();
    assert_eq!(
        receive_all(&mut reader, &bytes, 64),
        vec![format!("violation {PROTOCOL_ERROR}")]
    );
}

/// Text is checked whole or across fragments, masked (at a server) or not (at a client), however
/// the reads cut it: ASCII known while unmasking, sequences split between fragments, invalid
/// bytes anywhere in a frame, and a message failed as soon as a fragment cannot be UTF-8.
#[test]
fn text_is_checked_across_fragments_and_reads() {
    let ascii: Vec<u8> = (0..70).map(|i| b'a' + (i % 26) as u8).collect();
    let sun = "\u{65e5}".as_bytes(); // three bytes: E6 97 A5
    let joined = |parts: &[&[u8]]| parts.concat();
    let text = |bytes: &[u8]| format!("Text {}", std::str::from_utf8(bytes).unwrap());
    let bad = format!("violation {INVALID_DATA}");
    // The fragments as (opcode, fin, payload), and what the reader reports.
    type Case = (Vec<(Opcode, bool, Vec<u8>)>, Vec<String>);
    let mut cases: Vec<Case> = vec![
        (
            vec![(Opcode::Text, true, ascii.clone())],
            vec![text(&ascii)],
        ),
        // A sequence cut between fragments, completed by the next one.
        (
            vec![
                (Opcode::Text, false, joined(&[&ascii, &sun[..1]])),
                (Opcode::Continuation, false, sun[1..2].to_vec()),
                (Opcode::Continuation, true, joined(&[&sun[2..], &ascii])),
            ],
            vec![text(&joined(&[&ascii, sun, &ascii]))],
        ),
        // An all-ASCII fragment after a cut sequence does not complete it.
        (
            vec![
                (Opcode::Text, false, joined(&[&ascii, &sun[..2]])),
                (Opcode::Continuation, true, ascii.clone()),
            ],
            vec![bad.clone()],
        ),
        // ASCII fragments after whole characters.
        (
            vec![
                (Opcode::Text, false, sun.to_vec()),
                (Opcode::Continuation, false, ascii.clone()),
                (Opcode::Continuation, true, ascii[..3].to_vec()),
            ],
            vec![text(&joined(&[sun, &ascii, &ascii[..3]]))],
        ),
        // The message ends inside a sequence.
        (
            vec![
                (Opcode::Text, false, ascii.clone()),
                (Opcode::Continuation, true, joined(&[&ascii, &sun[..2]])),
            ],
            vec![bad.clone()],
        ),
        // Failed at the bad fragment, before the message's last one has come.
        (
            vec![
                (Opcode::Text, false, ascii.clone()),
                (Opcode::Continuation, false, joined(&[&ascii[..5], &[0xFF]])),
            ],
            vec![bad.clone()],
        ),
        // A binary message is not text, whatever its bytes.
        (
            vec![
                (Opcode::Binary, false, vec![0xFF, 0xC3]),
                (Opcode::Continuation, true, vec![b'a', 0x80]),
            ],
            vec!["Binary \u{fffd}\u{fffd}a\u{fffd}".to_string()],
        ),
    ];
    // One invalid byte, or one whole character, at every place of a one-frame message.
    for at in 0..ascii.len() {
        let mut invalid = ascii.clone();
        invalid[at] = 0xFF;
        cases.push((vec![(Opcode::Text, true, invalid)], vec![bad.clone()]));
        let mut cut = ascii.clone();
        cut[at] = sun[0];
        cases.push((vec![(Opcode::Text, true, cut)], vec![bad.clone()]));
        let valid = joined(&[&ascii[..at], sun, &ascii[at..]]);
        cases.push((
            vec![(Opcode::Text, true, valid.clone())],
            vec![text(&valid)],
        ));
    }
    for (fragments, expected) in &cases {
        for role in [Role::Server, Role::Client] {
            let stream: Vec<u8> = fragments
                .iter()
                .flat_map(|(opcode, fin, payload)| frame_to(role, *opcode, *fin, payload))
                .collect();
            for chunk in [1, 3, 7, 64, stream.len()] {
                let seen = receive_at(role, &mut Reader::default(), &stream, chunk);
                assert_eq!(&seen, expected, "{role:?}, reads of {chunk}: {fragments:?}");
            }
        }
    }
}

#[test]
fn endpoint_sends_closes_and_fails_in_the_documented_order() {
    let now = Instant::now();
    let limits = limits();
    let mut server = Endpoint::new(Role::Server, now, &limits);
    let mut wire = Wire::default();
    assert_eq!(
        server.send(Outgoing::Text, b"x", &limits, &mut wire),
        Err(SendError::NotOpen(State::Opening))
    );
    server.opened(now, &limits);
    server
        .send(Outgoing::Text, b"hi", &limits, &mut wire)
        .unwrap();
    assert_eq!(wire.0, b"\x81\x02hi");
    // A failure's close frame goes out before anything else can.
    let violation = close::violation(INVALID_DATA, "bad text");
    assert_eq!(server.fail(&violation, &mut wire), Some(INVALID_DATA));
    assert_eq!(server.state(), State::Closing);
    assert_eq!(
        server.close(1000, "", CloseBy::Application, now, &limits, &mut wire),
        Ok(CloseStarted::AlreadyClosing)
    );
    assert_eq!(&wire.0[4..8], &[0x88, 10, 0x03, 0xef]);
    assert_eq!(server.closing_done(now, &limits), INVALID_DATA);
    assert_eq!(server.tcp_close(), TcpClose::ShutdownWriteThenWait);
    assert_eq!(
        server.close(999, "", CloseBy::Application, now, &limits, &mut wire),
        Err(CloseError::CodeNotSendable(999))
    );
}

#[test]
fn a_client_masks_and_fragments() {
    let now = Instant::now();
    let mut limits = limits();
    limits.fragment_max = 4;
    let mut client = Endpoint::new(Role::Client, now, &limits);
    client.opened(now, &limits);
    let mut wire = Wire::default();
    client
        .send(Outgoing::Text, b"fragmented", &limits, &mut wire)
        .unwrap();
    // A server reader sees one message.
    let mut reader = Reader::default();
    let mut input = reader.feed(&mut wire.0);
    match reader.next(&mut input, Role::Server, &limits) {
        Some(Incoming::Message { kind, data }) => {
            assert_eq!(kind, MessageKind::Text);
            assert_eq!(data, b"fragmented");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn pongs_stop_when_the_peer_does_not_read() {
    let now = Instant::now();
    let mut limits = limits();
    limits.send_buffer_max = 10;
    let mut server = Endpoint::new(Role::Server, now, &limits);
    server.opened(now, &limits);
    let mut wire = Wire::default();
    for _ in 0..10 {
        server.on_ping(b"abcd", &limits, &mut wire);
    }
    assert!(wire.0.len() <= 10 + 6, "{} bytes queued", wire.0.len());
}

/// A small deterministic generator, so that a failure names its seed.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n.max(1)
    }
}

/// Any mix of small, large (direct-read), fragmented and control frames, read in any mix of
/// chunk sizes through the loop's buffer or straight into the reader's: the same events, and
/// no buffer kept once the socket is drained.
#[test]
fn random_streams_read_in_random_pieces() {
    let mut limits = limits();
    limits.message_max = 1 << 22;
    for seed in 0..200u64 {
        let mut rng = Lcg(seed * 7919 + 1);
        let mut stream = Vec::new();
        for _ in 0..(5 + rng.below(30)) {
            let size = match rng.below(3) {
                0 => rng.below(130) as usize,
                1 => rng.below(20_000) as usize,
                _ => LARGE_FRAME + rng.below(80_000) as usize,
            };
            let payload: Vec<u8> = (0..size).map(|i| b'a' + (i % 26) as u8).collect();
            if rng.below(3) == 0 && size > 3 {
                let cut = 1 + rng.below(size as u64 - 2) as usize;
                stream.extend(client_frame(Opcode::Binary, false, &payload[..cut]));
                stream.extend(client_frame(Opcode::Pong, true, b"pp"));
                stream.extend(client_frame(Opcode::Continuation, true, &payload[cut..]));
            } else {
                stream.extend(client_frame(Opcode::Text, true, &payload));
            }
        }
        let expected = receive_all(&mut Reader::default(), &stream, stream.len());
        let max_chunk = [1u64, 7, 100, 3000, 70_000, 200_000][rng.below(6) as usize];
        let mut reader = Reader::default();
        let mut seen = Vec::new();
        let mut fed = 0;
        while fed < stream.len() {
            let n = (1 + rng.below(max_chunk) as usize).min(stream.len() - fed);
            let mut chunk = Vec::new();
            let mut input = match reader.direct_read_buffer(READ_MAX) {
                Some(target) => {
                    let n = n.min(target.len());
                    target[..n].copy_from_slice(&stream[fed..fed + n]);
                    fed += n;
                    reader.direct_filled(n, READ_MAX)
                }
                None => {
                    chunk.extend_from_slice(&stream[fed..fed + n]);
                    fed += n;
                    reader.feed(&mut chunk)
                }
            };
            while let Some(event) = reader.next(&mut input, Role::Server, &limits) {
                seen.push(match event {
                    Incoming::Message { kind, data } => {
                        format!("{kind:?} {}", String::from_utf8_lossy(data))
                    }
                    Incoming::Pong(data) => format!("pong {}", data.len()),
                    other => format!("{other:?}"),
                });
            }
        }
        assert_eq!(seen, expected, "seed {seed}, pieces of at most {max_chunk}");
        let _ = reader.release_if_idle();
        assert_eq!(reader.buffered(), 0, "seed {seed}: buffer kept while idle");
    }
}

/// A deadline kept in 8 bytes reads back as the very instant stored (the loop removes a
/// deadline by it), also one well before the first stored.
#[test]
fn a_deadline_reads_back_as_stored_to_the_nanosecond() {
    assert_eq!(Deadline::new(None).get(), None);
    assert_eq!(Deadline::default().get(), None);
    let now = Instant::now();
    for later in [0, 1, 999, 1_000_000_007, 86_400 * 1_000_000_000] {
        let when = now + Duration::from_nanos(later);
        assert_eq!(Deadline::new(Some(when)).get(), Some(when));
    }
    if let Some(day_before) = now.checked_sub(Duration::from_secs(86_400)) {
        assert_eq!(Deadline::new(Some(day_before)).get(), Some(day_before));
    }
    // Before the origin (2^31 s before the first instant stored): it has passed, and still
    // reads as passed.
    if let Some(long_ago) = now.checked_sub(Duration::from_secs(1 << 32)) {
        let read = Deadline::new(Some(long_ago)).get().unwrap();
        assert!(read <= now && read >= long_ago);
    }
}
