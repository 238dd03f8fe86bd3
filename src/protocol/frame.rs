//! Frame parsing and encoding on borrowed buffers (RFC 6455 section 5.2). Parsing works in
//! place: a complete frame inside the receive buffer is unmasked where it lies and handed on as a
//! slice, so no payload is copied. The header codec is written here rather than taken from a
//! WebSocket crate: it is a few dozen lines, and the crates that carry one bring an HTTP stack,
//! base64 and error machinery with it (tens of KiB of flash), none of which the core uses.

use super::close::{PROTOCOL_ERROR, TOO_BIG, Violation, violation};
use super::mask;
pub use super::mask::apply_mask;

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

    /// The 4-bit code on the wire.
    fn code(self) -> u8 {
        match self {
            Opcode::Continuation => 0x0,
            Opcode::Text => 0x1,
            Opcode::Binary => 0x2,
            Opcode::Close => 0x8,
            Opcode::Ping => 0x9,
            Opcode::Pong => 0xA,
        }
    }

    /// The opcode for a 4-bit code; `None` for the reserved ones (0x3-0x7, 0xB-0xF).
    fn from_code(code: u8) -> Option<Opcode> {
        Some(match code {
            0x0 => Opcode::Continuation,
            0x1 => Opcode::Text,
            0x2 => Opcode::Binary,
            0x8 => Opcode::Close,
            0x9 => Opcode::Ping,
            0xA => Opcode::Pong,
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
    /// The payload of a text or continuation frame is all ASCII, hence valid UTF-8 (tested
    /// while unmasking it). Always false for the other opcodes, whose payload is not tested.
    pub ascii: bool,
}

#[derive(Debug)]
pub enum Parse {
    /// More bytes are needed; `frame_len` is the whole frame's size once the header is known.
    Incomplete { frame_len: Option<usize> },
    /// A whole frame, its payload unmasked in place.
    Frame(FrameInfo),
}

/// Parses the frame at the start of `buffer`. `expect_masked` is true on a server (clients must
/// mask) and false on a client (servers must not). `payload_max` bounds a single frame's payload
/// before any of it is buffered.
#[inline]
pub fn parse(
    buffer: &mut [u8],
    expect_masked: bool,
    payload_max: usize,
) -> Result<Parse, Violation> {
    let Some(header) = Header::read(buffer) else {
        return Ok(Parse::Incomplete { frame_len: None });
    };
    let (header_len, length) = (header.len, header.payload_len);
    if header.rsv != 0 {
        return Err(violation(
            PROTOCOL_ERROR,
            "reserved bits set without a negotiated extension",
        ));
    }
    let opcode =
        Opcode::from_code(header.opcode).ok_or(violation(PROTOCOL_ERROR, "reserved opcode"))?;
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
    // RFC 6455 5.2: the most significant bit of a 64-bit length MUST be 0.
    if length >> 63 != 0 {
        return Err(violation(
            PROTOCOL_ERROR,
            "64-bit payload length with its most significant bit set",
        ));
    }
    if opcode.is_control() && (!header.fin || length > 125) {
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
    // Text may arrive in continuation frames too; testing a binary message's continuations
    // costs one OR per 16 bytes, cheaper than asking the reader what the message is.
    let text = matches!(opcode, Opcode::Text | Opcode::Continuation);
    let payload = &mut buffer[header_len..frame_len];
    let ascii = match header.mask {
        Some(key) if text => mask::unmask_ascii(payload, key),
        Some(key) => {
            mask::apply_mask(payload, key);
            false
        }
        None => text && mask::is_ascii(payload),
    };
    Ok(Parse::Frame(FrameInfo {
        fin: header.fin,
        opcode,
        payload_start: header_len,
        payload_len,
        ascii,
    }))
}

/// The frame a server receives most, taken apart in a few instructions: whole (FIN set), text
/// or binary, no reserved bits, masked, a 7- or 16-bit length of at most `payload_max`, complete
/// in `buffer`. Its payload is unmasked in place; returned are its opcode, where the payload
/// lies and whether it is all ASCII (text only, as [`FrameInfo::ascii`]). Anything else (None,
/// nothing touched) is for [`parse`]: a frame this takes passes every check `parse` makes, and
/// `parse` would report it the same.
#[inline(always)]
pub fn parse_whole_message(
    buffer: &mut [u8],
    payload_max: usize,
) -> Option<(Opcode, std::ops::Range<usize>, bool)> {
    let [first, second, ..] = *buffer else {
        return None;
    };
    let opcode = match first {
        0x81 => Opcode::Text,
        0x82 => Opcode::Binary,
        _ => return None,
    };
    let (start, len) = match second {
        0xFE => match buffer.get(2..4) {
            Some(&[high, low]) => (8, usize::from(u16::from_be_bytes([high, low]))),
            _ => return None,
        },
        0x80..=0xFD => (6, usize::from(second & 0x7F)),
        // Unmasked, or a 64-bit length.
        _ => return None,
    };
    if len > payload_max || buffer.len() < start + len {
        return None;
    }
    let key = [
        buffer[start - 4],
        buffer[start - 3],
        buffer[start - 2],
        buffer[start - 1],
    ];
    let payload = &mut buffer[start..start + len];
    let ascii = match opcode {
        Opcode::Text => mask::unmask_ascii(payload, key),
        _ => {
            mask::apply_mask(payload, key);
            false
        }
    };
    Some((opcode, start..start + len, ascii))
}

/// The fields of a frame header as they are on the wire, before any check.
struct Header {
    fin: bool,
    /// The three reserved bits (RSV1-3), in place.
    rsv: u8,
    opcode: u8,
    payload_len: u64,
    mask: Option<[u8; 4]>,
    /// The header's own length: 2 to 14 bytes.
    len: usize,
}

impl Header {
    /// The header at the start of `bytes`; `None` while it is incomplete.
    fn read(bytes: &[u8]) -> Option<Header> {
        let (&first, rest) = bytes.split_first()?;
        let (&second, rest) = rest.split_first()?;
        let (payload_len, rest) = match second & 0x7F {
            126 => {
                let (len, rest) = rest.split_first_chunk::<2>()?;
                (u64::from(u16::from_be_bytes(*len)), rest)
            }
            127 => {
                let (len, rest) = rest.split_first_chunk::<8>()?;
                (u64::from_be_bytes(*len), rest)
            }
            short => (u64::from(short), rest),
        };
        let (mask, rest) = if second & 0x80 != 0 {
            let (mask, rest) = rest.split_first_chunk::<4>()?;
            (Some(*mask), rest)
        } else {
            (None, rest)
        };
        Some(Header {
            fin: first & 0x80 != 0,
            rsv: first & 0x70,
            opcode: first & 0x0F,
            payload_len,
            mask,
            len: bytes.len() - rest.len(),
        })
    }
}

/// The largest header: 2 bytes, 8 bytes of length, 4 bytes of mask.
pub const MAX_HEADER: usize = 14;

/// An [`EncodedHeader`]'s bytes with zeros after them: written to the send buffer whole.
pub const HEADER_PADDED: usize = 16;

/// A frame header as it goes on the wire, kept as a number: its bytes are the low
/// [`EncodedHeader::size`] bytes of a little-endian `u128`. As a number it stays in registers
/// until it is written where it goes, at once. Written to memory byte by byte and then copied
/// as whole words, it would stall the copy: a processor cannot forward several small stores to
/// one larger load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncodedHeader {
    word: u128,
    size: usize,
}

impl EncodedHeader {
    #[inline(always)]
    pub fn new(opcode: Opcode, fin: bool, payload_len: usize, mask: Option<[u8; 4]>) -> Self {
        let first = u128::from(u8::from(fin) << 7 | opcode.code());
        let mask_bit: u128 = if mask.is_some() { 0x80 } else { 0 };
        // (`from_le_bytes(to_be_bytes)`: the length's bytes in network order, wherever they
        // land in the little-endian word.)
        let (mut word, mut size) = match payload_len {
            0..=125 => (first | (mask_bit | payload_len as u128) << 8, 2),
            126..=0xFFFF => {
                let length = u16::from_le_bytes((payload_len as u16).to_be_bytes());
                (first | (mask_bit | 126) << 8 | u128::from(length) << 16, 4)
            }
            _ => {
                let length = u64::from_le_bytes((payload_len as u64).to_be_bytes());
                (first | (mask_bit | 127) << 8 | u128::from(length) << 16, 10)
            }
        };
        if let Some(mask) = mask {
            word |= u128::from(u32::from_le_bytes(mask)) << (8 * size);
            size += 4;
        }
        EncodedHeader { word, size }
    }

    /// How many bytes the header has (2 to [`MAX_HEADER`]).
    #[inline(always)]
    pub fn size(&self) -> usize {
        self.size
    }

    /// The header's bytes, then zeros.
    #[inline(always)]
    pub fn padded(&self) -> [u8; HEADER_PADDED] {
        self.word.to_le_bytes()
    }
}

/// Encodes a frame header into `out`, returning its length.
pub fn encode_header(
    out: &mut [u8; MAX_HEADER],
    opcode: Opcode,
    fin: bool,
    payload_len: usize,
    mask: Option<[u8; 4]>,
) -> usize {
    let header = EncodedHeader::new(opcode, fin, payload_len, mask);
    out.copy_from_slice(&header.padded()[..MAX_HEADER]);
    header.size()
}

#[cfg(test)]
mod tests {
    use super::*;

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

    /// A masked client frame: `first` (FIN, RSV, opcode), then a length in the form `form`
    /// (7, 16 or 64 bits) and the payload masked with a fixed key.
    fn client_frame(first: u8, form: u8, payload: &[u8]) -> Vec<u8> {
        let key = [0x37, 0xfa, 0x21, 0x3d];
        let mut frame = vec![first];
        match form {
            7 => frame.push(0x80 | payload.len() as u8),
            16 => {
                frame.push(0x80 | 126);
                frame.extend((payload.len() as u16).to_be_bytes());
            }
            _ => {
                frame.push(0x80 | 127);
                frame.extend((payload.len() as u64).to_be_bytes());
            }
        }
        frame.extend(key);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        frame
    }

    /// The short path takes exactly the whole masked text and binary frames with a 7- or
    /// 16-bit length within the budget, and says of them what `parse` says; every other frame
    /// it leaves untouched for `parse`.
    #[test]
    fn the_short_path_agrees_with_parse() {
        let text = b"hello, world".as_slice();
        let long = vec![b'x'; 300];
        let cases: Vec<(Vec<u8>, bool)> = vec![
            (client_frame(0x81, 7, text), true),
            (client_frame(0x81, 7, b""), true),
            (client_frame(0x81, 7, "h\u{e9}llo".as_bytes()), true),
            (client_frame(0x82, 7, &[0xff, 0x80, 0]), true),
            (client_frame(0x81, 16, &long), true),
            // A 16-bit length where 7 bits would do: RFC 6455 asks for the shortest form, and
            // `parse` takes it as it is; so does the short path.
            (client_frame(0x82, 16, text), true),
            (client_frame(0x81, 64, text), false),
            (client_frame(0x01, 7, text), false),
            (client_frame(0x80, 7, text), false),
            (client_frame(0xC1, 7, text), false),
            (client_frame(0x89, 7, text), false),
            (client_frame(0x88, 7, &[3, 232]), false),
            (client_frame(0x83, 7, text), false),
            ([0x81, 0x05, b'h', b'e', b'l', b'l', b'o'].to_vec(), false),
        ];
        for (frame, short) in cases {
            for cut in [frame.len(), frame.len() - 1, 2, 1, 0] {
                let mut fast = frame[..cut].to_vec();
                let mut slow = fast.clone();
                let whole = cut == frame.len();
                let taken = parse_whole_message(&mut fast, 1 << 20);
                assert_eq!(taken.is_some(), short && whole, "{frame:02x?} cut at {cut}");
                let parsed = parse(&mut slow, true, 1 << 20);
                match taken {
                    Some((opcode, payload, ascii)) => {
                        assert_eq!(fast, slow, "both unmask alike: {frame:02x?}");
                        let Ok(Parse::Frame(info)) = parsed else {
                            panic!("parse refused what the short path took: {frame:02x?}");
                        };
                        assert!(info.fin);
                        assert_eq!(
                            (opcode, payload.start, payload.len(), ascii),
                            (
                                info.opcode,
                                info.payload_start,
                                info.payload_len,
                                info.ascii
                            )
                        );
                    }
                    // Untouched: still masked, for `parse` to take.
                    None => assert_eq!(&fast[..], &frame[..cut]),
                }
            }
        }
        // Over the budget: left to `parse`, which refuses it.
        let mut frame = client_frame(0x81, 16, &long);
        assert!(parse_whole_message(&mut frame, 299).is_none());
        assert!(parse(&mut frame, true, 299).is_err());
    }

    /// The examples of RFC 6455 section 5.7, byte for byte.
    #[test]
    fn rfc_6455_examples() {
        let mut out = [0; MAX_HEADER];
        let n = encode_header(&mut out, Opcode::Text, true, 5, None);
        assert_eq!(out[..n], [0x81, 0x05]);
        let n = encode_header(
            &mut out,
            Opcode::Text,
            true,
            5,
            Some([0x37, 0xfa, 0x21, 0x3d]),
        );
        assert_eq!(out[..n], [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d]);
        let n = encode_header(&mut out, Opcode::Text, false, 3, None);
        assert_eq!(out[..n], [0x01, 0x03]);
        let n = encode_header(&mut out, Opcode::Continuation, true, 2, None);
        assert_eq!(out[..n], [0x80, 0x02]);
        let n = encode_header(&mut out, Opcode::Ping, true, 5, None);
        assert_eq!(out[..n], [0x89, 0x05]);
        let n = encode_header(&mut out, Opcode::Binary, true, 256, None);
        assert_eq!(out[..n], [0x82, 0x7E, 0x01, 0x00]);
        let n = encode_header(&mut out, Opcode::Binary, true, 65536, None);
        assert_eq!(out[..n], [0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0]);

        let mut masked_hello = [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        match parse(&mut masked_hello, true, 125).unwrap() {
            Parse::Frame(info) => {
                assert!(info.fin);
                assert_eq!(info.opcode, Opcode::Text);
                let payload = &masked_hello[info.payload_start..][..info.payload_len];
                assert_eq!(payload, b"Hello");
            }
            Parse::Incomplete { .. } => panic!("complete frame"),
        }
    }

    /// An encoded header's padding is zeros, and masked 16- and 64-bit lengths come out byte
    /// for byte as RFC 6455 section 5.2 lays them out.
    #[test]
    fn encoded_headers_byte_for_byte() {
        let mask = Some([0xA1, 0xB2, 0xC3, 0xD4]);
        let header = EncodedHeader::new(Opcode::Binary, true, 0x1234, mask);
        let padded = header.padded();
        assert_eq!(
            padded[..header.size()],
            [0x82, 0xFE, 0x12, 0x34, 0xA1, 0xB2, 0xC3, 0xD4]
        );
        assert!(padded[header.size()..].iter().all(|&b| b == 0));
        let header = EncodedHeader::new(Opcode::Text, false, 0x0102_0304, mask);
        let padded = header.padded();
        assert_eq!(
            padded[..header.size()],
            [0x01, 0xFF, 0, 0, 0, 0, 1, 2, 3, 4, 0xA1, 0xB2, 0xC3, 0xD4]
        );
        assert!(padded[header.size()..].iter().all(|&b| b == 0));
        for len in [0, 125, 126, 0xFFFF, 0x1_0000] {
            let header = EncodedHeader::new(Opcode::Ping, true, len, None);
            assert!(header.padded()[header.size()..].iter().all(|&b| b == 0));
        }
    }

    /// Every length crosses the 7-bit, 16-bit and 64-bit encodings at their edges, and every
    /// prefix of a header is incomplete, never an error.
    #[test]
    fn lengths_at_the_encoding_edges_and_partial_headers() {
        for len in [0, 1, 125, 126, 127, 0xFFFF, 0x1_0000, 70_000] {
            for mask in [None, Some([1, 2, 3, 4])] {
                let mut out = [0; MAX_HEADER];
                let n = encode_header(&mut out, Opcode::Binary, true, len, mask);
                let header = Header::read(&out[..n]).expect("whole header");
                assert_eq!(
                    (header.payload_len, header.len, header.mask),
                    (len as u64, n, mask)
                );
                for cut in 0..n {
                    assert!(Header::read(&out[..cut]).is_none(), "{len} cut at {cut}");
                    let mut prefix = out[..cut].to_vec();
                    assert!(matches!(
                        parse(&mut prefix, mask.is_some(), 1 << 20),
                        Ok(Parse::Incomplete { frame_len: None })
                    ));
                }
            }
        }
    }

    #[test]
    fn reserved_opcodes_and_bits_are_protocol_errors() {
        for code in (0x3..=0x7).chain(0xB..=0xF) {
            let mut frame = [0x80 | code, 0x80, 0, 0, 0, 0];
            let err = parse(&mut frame, true, 100).err().unwrap();
            assert_eq!(err.code, PROTOCOL_ERROR, "opcode {code:#x}");
        }
        for rsv in [0x40, 0x20, 0x10] {
            let mut frame = [0x81 | rsv, 0x80, 0, 0, 0, 0];
            let err = parse(&mut frame, true, 100).err().unwrap();
            assert_eq!(err.code, PROTOCOL_ERROR, "rsv {rsv:#x}");
        }
    }

    #[test]
    fn oversized_frame_is_1009_before_payload_arrives() {
        let mut out = [0; MAX_HEADER];
        let n = encode_header(&mut out, Opcode::Text, true, 1 << 30, Some([0; 4]));
        let err = parse(&mut out[..n], true, 1 << 20).err().unwrap();
        assert_eq!(err.code, TOO_BIG);
    }

    /// RFC 6455 5.2: a 64-bit length with its most significant bit set is a protocol error
    /// (1002), whatever the budget.
    #[test]
    fn length_with_top_bit_set_is_a_protocol_error() {
        for masked in [false, true] {
            let mut frame = vec![0x82, if masked { 0xff } else { 0x7f }];
            frame.extend((1u64 << 63).to_be_bytes());
            if masked {
                frame.extend([1, 2, 3, 4]);
            }
            for payload_max in [usize::MAX, 1 << 20] {
                let err = parse(&mut frame, masked, payload_max).err().unwrap();
                assert_eq!(err.code, PROTOCOL_ERROR, "masked {masked}");
            }
        }
    }

    /// Found by the `frame` fuzz target: a 64-bit length near the largest with payload_max
    /// close to usize::MAX overflowed `header_len + payload_len` (a panic with overflow
    /// checks; without them a "complete" frame whose payload ended before it started). The
    /// largest legal length must be merely incomplete, its end computed without overflow.
    #[test]
    fn largest_legal_length_is_incomplete_whatever_payload_max() {
        for masked in [false, true] {
            let mut frame = vec![0x82, if masked { 0xff } else { 0x7f }];
            frame.extend((u64::MAX >> 1).to_be_bytes());
            if masked {
                frame.extend([1, 2, 3, 4]);
            }
            let header_len = frame.len();
            for payload_max in [usize::MAX, usize::MAX - 13, usize::MAX - 14] {
                match parse(&mut frame, masked, payload_max) {
                    Ok(Parse::Incomplete { frame_len }) if usize::BITS == 64 => {
                        assert_eq!(frame_len, Some((usize::MAX >> 1) + header_len));
                    }
                    // Where usize is narrower, such a frame cannot be held at all.
                    Err(err) if usize::BITS < 64 => assert_eq!(err.code, TOO_BIG),
                    other => panic!("masked {masked}, payload_max {payload_max}: {other:?}"),
                }
            }
        }
    }
}
