//! Frame parsing and encoding on borrowed buffers (RFC 6455 section 5), built on tungstenite's
//! frame header codec. Parsing works in place: a complete frame inside the receive buffer is
//! unmasked where it lies and handed on as a slice, so no payload is copied.

use super::close::{PROTOCOL_ERROR, TOO_BIG, Violation, violation};
use std::io::Cursor;
use tungstenite::protocol::frame::FrameHeader;
use tungstenite::protocol::frame::coding::{Control, Data, OpCode};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opcode {
    Continuation,
    Text,
    Binary,
    Close,
    Ping,
    Pong,
}

impl Opcode {
    pub fn is_control(self) -> bool {
        matches!(self, Opcode::Close | Opcode::Ping | Opcode::Pong)
    }

    fn to_tungstenite(self) -> OpCode {
        match self {
            Opcode::Continuation => OpCode::Data(Data::Continue),
            Opcode::Text => OpCode::Data(Data::Text),
            Opcode::Binary => OpCode::Data(Data::Binary),
            Opcode::Close => OpCode::Control(Control::Close),
            Opcode::Ping => OpCode::Control(Control::Ping),
            Opcode::Pong => OpCode::Control(Control::Pong),
        }
    }

    fn from_tungstenite(code: OpCode) -> Option<Opcode> {
        Some(match code {
            OpCode::Data(Data::Continue) => Opcode::Continuation,
            OpCode::Data(Data::Text) => Opcode::Text,
            OpCode::Data(Data::Binary) => Opcode::Binary,
            OpCode::Control(Control::Close) => Opcode::Close,
            OpCode::Control(Control::Ping) => Opcode::Ping,
            OpCode::Control(Control::Pong) => Opcode::Pong,
            _ => return None,
        })
    }
}

/// A parsed frame header and where its payload lies in the buffer.
#[derive(Debug, Clone, Copy)]
pub struct FrameInfo {
    pub fin: bool,
    pub opcode: Opcode,
    pub payload_start: usize,
    pub payload_len: usize,
}

pub enum Parse {
    /// More bytes are needed; `frame_len` is the whole frame's size once the header is known.
    Incomplete { frame_len: Option<usize> },
    /// A whole frame, its payload unmasked in place.
    Frame(FrameInfo),
}

/// Parses the frame at the start of `buffer`. `expect_masked` is true on a server (clients must
/// mask) and false on a client (servers must not). `payload_max` bounds a single frame's payload
/// before any of it is buffered.
pub fn parse(
    buffer: &mut [u8],
    expect_masked: bool,
    payload_max: usize,
) -> Result<Parse, Violation> {
    let mut cursor = Cursor::new(&buffer[..]);
    let (header, length) = match FrameHeader::parse(&mut cursor) {
        Ok(Some(parsed)) => parsed,
        Ok(None) => return Ok(Parse::Incomplete { frame_len: None }),
        Err(_) => return Err(violation(PROTOCOL_ERROR, "reserved opcode")),
    };
    let header_len = cursor.position() as usize;
    if header.rsv1 || header.rsv2 || header.rsv3 {
        return Err(violation(
            PROTOCOL_ERROR,
            "reserved bits set without a negotiated extension",
        ));
    }
    let opcode = Opcode::from_tungstenite(header.opcode)
        .ok_or(violation(PROTOCOL_ERROR, "reserved opcode"))?;
    if header.mask.is_some() != expect_masked {
        return Err(violation(
            PROTOCOL_ERROR,
            if expect_masked {
                "unmasked frame from a client"
            } else {
                "masked frame from a server"
            },
        ));
    }
    if opcode.is_control() && (!header.is_final || length > 125) {
        return Err(violation(
            PROTOCOL_ERROR,
            "fragmented or oversized control frame",
        ));
    }
    // Control frames are bounded (125 bytes) above; the message budget is for data frames. A
    // frame whose end does not fit in a usize is too big whatever the budget (the sum used to
    // overflow when payload_max was close to usize::MAX).
    let frame_len = usize::try_from(length)
        .ok()
        .and_then(|len| len.checked_add(header_len));
    let frame_len = match frame_len {
        Some(frame_len) if opcode.is_control() || length <= payload_max as u64 => frame_len,
        _ => {
            return Err(violation(
                TOO_BIG,
                "frame larger than websocket-message-size-max",
            ));
        }
    };
    let payload_len = frame_len - header_len;
    if buffer.len() < frame_len {
        return Ok(Parse::Incomplete {
            frame_len: Some(frame_len),
        });
    }
    if let Some(mask) = header.mask {
        apply_mask(&mut buffer[header_len..frame_len], mask);
    }
    Ok(Parse::Frame(FrameInfo {
        fin: header.is_final,
        opcode,
        payload_start: header_len,
        payload_len,
    }))
}

/// XORs `data` with the 4-byte mask, eight bytes at a time.
pub fn apply_mask(data: &mut [u8], mask: [u8; 4]) {
    let wide = u64::from_ne_bytes([
        mask[0], mask[1], mask[2], mask[3], mask[0], mask[1], mask[2], mask[3],
    ]);
    let mut chunks = data.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let word = u64::from_ne_bytes((&*chunk).try_into().expect("8-byte chunk")) ^ wide;
        chunk.copy_from_slice(&word.to_ne_bytes());
    }
    for (i, byte) in chunks.into_remainder().iter_mut().enumerate() {
        *byte ^= mask[i & 3];
    }
}

/// The largest header: 2 bytes, 8 bytes of length, 4 bytes of mask.
pub const MAX_HEADER: usize = 14;

/// Encodes a frame header into `out`, returning its length.
pub fn encode_header(
    out: &mut [u8; MAX_HEADER],
    opcode: Opcode,
    fin: bool,
    payload_len: usize,
    mask: Option<[u8; 4]>,
) -> usize {
    let header = FrameHeader {
        is_final: fin,
        rsv1: false,
        rsv2: false,
        rsv3: false,
        opcode: opcode.to_tungstenite(),
        mask,
    };
    let mut cursor = Cursor::new(&mut out[..]);
    header
        .format(payload_len as u64, &mut cursor)
        .expect("a header always fits in 14 bytes");
    cursor.position() as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_roundtrip_all_lengths() {
        for len in 0..40 {
            let original: Vec<u8> = (0..len as u8).collect();
            let mut data = original.clone();
            apply_mask(&mut data, [1, 2, 3, 4]);
            for (i, b) in data.iter().enumerate() {
                assert_eq!(*b, original[i] ^ [1, 2, 3, 4][i % 4]);
            }
            apply_mask(&mut data, [1, 2, 3, 4]);
            assert_eq!(data, original);
        }
    }

    #[test]
    fn header_roundtrip() {
        let mut out = [0; MAX_HEADER];
        let n = encode_header(&mut out, Opcode::Binary, true, 70_000, Some([9, 9, 9, 9]));
        let mut frame = out[..n].to_vec();
        frame.resize(n + 70_000, 9);
        match parse(&mut frame, true, 1 << 20).unwrap() {
            Parse::Frame(info) => {
                assert_eq!(info.payload_len, 70_000);
                assert_eq!(info.opcode, Opcode::Binary);
                assert!(frame[n..].iter().all(|b| *b == 0));
            }
            Parse::Incomplete { .. } => panic!("complete frame"),
        }
    }

    #[test]
    fn oversized_frame_is_1009_before_payload_arrives() {
        let mut out = [0; MAX_HEADER];
        let n = encode_header(&mut out, Opcode::Text, true, 1 << 30, Some([0; 4]));
        let err = parse(&mut out[..n], true, 1 << 20).err().unwrap();
        assert_eq!(err.code, TOO_BIG);
    }

    /// Found by the `frame` fuzz target: a 64-bit length near u64::MAX with payload_max close to
    /// usize::MAX overflowed `header_len + payload_len` (a panic with overflow checks; without
    /// them a "complete" frame whose payload ended before it started).
    #[test]
    fn length_near_u64_max_is_too_big_whatever_payload_max() {
        for masked in [false, true] {
            let mut frame = vec![0x82, if masked { 0xff } else { 0x7f }];
            frame.extend([0xff; 8]);
            if masked {
                frame.extend([1, 2, 3, 4]);
            }
            for payload_max in [usize::MAX, usize::MAX - 13, usize::MAX - 14] {
                let err = parse(&mut frame, masked, payload_max).err().unwrap();
                assert_eq!(
                    err.code, TOO_BIG,
                    "masked {masked}, payload_max {payload_max}"
                );
            }
        }
        // The longest frame whose end still fits is merely incomplete.
        let mut frame = vec![0x82, 0x7f];
        frame.extend((u64::MAX - 10).to_be_bytes());
        match parse(&mut frame, false, usize::MAX).unwrap() {
            Parse::Incomplete { frame_len } => assert_eq!(frame_len, Some(usize::MAX)),
            Parse::Frame(info) => panic!("{info:?}"),
        }
    }
}
