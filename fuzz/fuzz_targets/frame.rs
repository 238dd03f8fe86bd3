//! The frame parser (`parse`, which unmasks in place) on a receive buffer holding one or more
//! frames, as a server (`expect_masked`) or a client sees it, with an arbitrary
//! `payload_max`; close frames' payloads go through `parse_close_payload`.
//!
//! Input: a flag byte (bit 0: expect masked frames; bit 1: payload_max is the next 8 bytes as
//! a u64 LE, else the next byte), payload_max, then the buffer. Frames are parsed one after
//! the other until the buffer ends, a frame is incomplete or one is refused.
//!
//! Invariants, against an independent decoding of each header:
//! - a frame lies inside the buffer: its payload starts right after its header (2, 4 or 10
//!   bytes, plus 4 for a mask) and ends within the buffer;
//! - fin, opcode and length are those of the header; control frames are final and at most 125
//!   bytes; data frames are at most payload_max; masked exactly when expected; reserved bits
//!   and opcodes, and a 64-bit length with its most significant bit set, are refused with 1002,
//!   an oversized data frame (above payload_max, or whose end does not fit in a usize) with
//!   1009;
//! - the payload is unmasked correctly and no byte outside it changes;
//! - every strict prefix of a complete frame is incomplete, and an incomplete frame's
//!   announced length is the header plus the declared payload length;
//! - the frame, re-encoded with `encode_header`, parses to the same frame.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use oasisnet::protocol::close::{self, INVALID_DATA, PROTOCOL_ERROR, TOO_BIG};
use oasisnet::protocol::frame::{self, MAX_HEADER, Opcode, Parse, encode_header};

/// The header as RFC 6455 section 5.2 lays it out, decoded without the library.
struct Header {
    fin: bool,
    rsv: u8,
    opcode: u8,
    mask: Option<[u8; 4]>,
    length: u64,
    len: usize,
}

fn decode(bytes: &[u8]) -> Option<Header> {
    let (&first, rest) = bytes.split_first()?;
    let (&second, rest) = rest.split_first()?;
    let (length, extra) = match second & 0x7f {
        126 => (
            u64::from(u16::from_be_bytes(rest.get(..2)?.try_into().ok()?)),
            2,
        ),
        127 => (u64::from_be_bytes(rest.get(..8)?.try_into().ok()?), 8),
        n => (u64::from(n), 0),
    };
    let mask = if second & 0x80 != 0 {
        Some(rest.get(extra..extra + 4)?.try_into().ok()?)
    } else {
        None
    };
    Some(Header {
        fin: first & 0x80 != 0,
        rsv: first & 0x70,
        opcode: first & 0x0f,
        mask,
        length,
        len: 2 + extra + if mask.is_some() { 4 } else { 0 },
    })
}

fn opcode_number(opcode: Opcode) -> u8 {
    match opcode {
        Opcode::Continuation => 0,
        Opcode::Text => 1,
        Opcode::Binary => 2,
        Opcode::Close => 8,
        Opcode::Ping => 9,
        Opcode::Pong => 10,
    }
}

fn check_close(payload: &[u8]) {
    match close::parse_close_payload(payload) {
        Ok((code, reason)) => {
            if payload.is_empty() {
                assert_eq!((code, reason), (1005, ""));
            } else {
                assert_eq!(code, u16::from_be_bytes([payload[0], payload[1]]));
                assert!(
                    close::close_code_is_sendable(code),
                    "accepted close code {code}"
                );
                assert_eq!(reason.as_bytes(), &payload[2..]);
            }
        }
        Err(violation) => assert!(
            violation.code == PROTOCOL_ERROR || violation.code == INVALID_DATA,
            "{violation:?}"
        ),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let expect_masked = flags & 1 != 0;
    let (payload_max, buffer) = if flags & 2 != 0 {
        let Some((max, buffer)) = rest.split_first_chunk::<8>() else {
            return;
        };
        (u64::from_le_bytes(*max) as usize, buffer)
    } else {
        let Some((max, buffer)) = rest.split_first() else {
            return;
        };
        (usize::from(*max), buffer)
    };
    let original = buffer.to_vec();
    let mut buffer = buffer.to_vec();

    let mut offset = 0;
    while offset < buffer.len() {
        let before = buffer.clone();
        let at = &original[offset..];
        let header = decode(at);
        match frame::parse(&mut buffer[offset..], expect_masked, payload_max) {
            Err(violation) => {
                assert_eq!(buffer, before, "a refused frame changed the buffer");
                let header = header.expect("refused a frame whose header is incomplete");
                match violation.code {
                    TOO_BIG => assert!(
                        header.opcode <= 2
                            && header.length >> 63 == 0
                            && (header.length > payload_max as u64
                                || u128::from(header.length) + header.len as u128
                                    > usize::MAX as u128),
                        "{violation:?}"
                    ),
                    PROTOCOL_ERROR => assert!(
                        header.rsv != 0
                            || !matches!(header.opcode, 0 | 1 | 2 | 8 | 9 | 10)
                            || header.mask.is_some() != expect_masked
                            || header.length >> 63 != 0
                            || (header.opcode >= 8 && (!header.fin || header.length > 125)),
                        "{violation:?} for a valid header"
                    ),
                    code => panic!("close code {code} for a frame violation"),
                }
                return;
            }
            Ok(Parse::Incomplete { frame_len }) => {
                assert_eq!(buffer, before, "an incomplete frame changed the buffer");
                match frame_len {
                    None => assert!(header.is_none(), "complete header, but no frame length"),
                    Some(len) => {
                        let header = header.expect("a frame length without a complete header");
                        assert_eq!(header.length >> 63, 0, "a length with its top bit accepted");
                        assert_eq!(len as u64, header.len as u64 + header.length);
                        assert!(
                            len > at.len(),
                            "frame of {len} bytes reported incomplete in {} bytes",
                            at.len()
                        );
                    }
                }
                return;
            }
            Ok(Parse::Frame(info)) => {
                let header = header.expect("a frame without a complete header");
                let end = info.payload_start + info.payload_len;
                assert_eq!(info.payload_start, header.len);
                assert!(
                    end <= at.len(),
                    "payload {}..{end} outside the {} bytes",
                    info.payload_start,
                    at.len()
                );
                assert_eq!(info.payload_len as u64, header.length);
                assert_eq!(
                    (info.fin, opcode_number(info.opcode), header.rsv),
                    (header.fin, header.opcode, 0)
                );
                assert_eq!(header.mask.is_some(), expect_masked);
                if info.opcode.is_control() {
                    assert!(info.fin && info.payload_len <= 125, "{info:?}");
                } else {
                    assert!(
                        info.payload_len <= payload_max,
                        "{info:?} above payload_max {payload_max}"
                    );
                }
                // Only the payload changed, and it is the original unmasked.
                let payload = &buffer[offset + info.payload_start..offset + end];
                for (i, (&got, &sent)) in
                    payload.iter().zip(&at[info.payload_start..end]).enumerate()
                {
                    let mask = header.mask.map_or(0, |m| m[i % 4]);
                    assert_eq!(got, sent ^ mask, "payload byte {i} unmasked wrongly");
                }
                // The ASCII flag is exact for text and continuation frames, off otherwise.
                let text = matches!(info.opcode, Opcode::Text | Opcode::Continuation);
                assert_eq!(info.ascii, text && payload.is_ascii(), "{info:?}");
                assert_eq!(
                    buffer[..offset + info.payload_start],
                    before[..offset + info.payload_start]
                );
                assert_eq!(buffer[offset + end..], before[offset + end..]);

                // Every strict prefix is incomplete (checked on a few lengths).
                for cut in [
                    0,
                    1,
                    info.payload_start.saturating_sub(1),
                    info.payload_start,
                    end.saturating_sub(1),
                    end / 2,
                ] {
                    if cut < end {
                        let mut prefix = at[..cut].to_vec();
                        match frame::parse(&mut prefix, expect_masked, payload_max) {
                            Ok(Parse::Incomplete { .. }) => {}
                            Ok(Parse::Frame(_)) => panic!(
                                "a {cut}-byte prefix of a {end}-byte frame parsed as a frame"
                            ),
                            Err(v) => {
                                panic!("a {cut}-byte prefix of a valid frame was refused: {v:?}")
                            }
                        }
                    }
                }

                // Re-encoded (shortest length form, same mask), it parses to the same frame.
                let mut head = [0; MAX_HEADER];
                let n = encode_header(
                    &mut head,
                    info.opcode,
                    info.fin,
                    info.payload_len,
                    header.mask,
                );
                let mut again = head[..n].to_vec();
                again.extend_from_slice(&at[info.payload_start..end]);
                match frame::parse(&mut again, expect_masked, payload_max) {
                    Ok(Parse::Frame(re)) => {
                        assert_eq!(
                            (re.fin, re.opcode, re.payload_len, re.payload_start),
                            (info.fin, info.opcode, info.payload_len, n)
                        );
                        assert_eq!(&again[n..], payload);
                    }
                    Ok(Parse::Incomplete { .. }) => panic!("re-encoded {info:?} is incomplete"),
                    Err(v) => panic!("re-encoded {info:?} is refused: {v:?}"),
                }

                if info.opcode == Opcode::Close {
                    check_close(payload);
                }
                offset += end;
            }
        }
    }
});
