//! Helpers shared by the fuzz targets (each target includes this module with `mod common;`).

#![allow(dead_code)]

/// Splits a fuzz input into a control byte, up to seven cut points and the payload bytes.
///
/// Layout: byte 0 is the control byte; its low three bits give the number `n` of cut points,
/// which follow as `n` little-endian u16 values; everything after them is the payload. The
/// cut points are taken modulo `payload.len() + 1` and sorted, so any value is valid. Returns
/// None when the input is too short for its own header.
pub struct Split<'a> {
    pub control: u8,
    pub payload: &'a [u8],
    pub cuts: Vec<usize>,
}

pub fn split(data: &[u8]) -> Option<Split<'_>> {
    let (&control, rest) = data.split_first()?;
    let n = usize::from(control & 7);
    if rest.len() < 2 * n {
        return None;
    }
    let (cut_bytes, payload) = rest.split_at(2 * n);
    let mut cuts: Vec<usize> = cut_bytes
        .chunks_exact(2)
        .map(|c| usize::from(u16::from_le_bytes([c[0], c[1]])) % (payload.len() + 1))
        .collect();
    cuts.sort_unstable();
    Some(Split {
        control,
        payload,
        cuts,
    })
}

/// The payload cut at `cuts` (sorted offsets); empty pieces are kept, as a read of 0 new
/// bytes is a case the parsers must handle too.
pub fn chunks<'a>(payload: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut pieces = Vec::with_capacity(cuts.len() + 1);
    let mut start = 0;
    for &cut in cuts {
        pieces.push(&payload[start..cut]);
        start = cut;
    }
    pieces.push(&payload[start..]);
    pieces
}

/// The subprotocol lists the handshake targets use, picked by bits 3-4 of the control byte.
pub fn protocols(control: u8) -> Vec<String> {
    let names: &[&str] = match (control >> 3) & 3 {
        0 => &[],
        1 => &["chat"],
        2 => &["superchat", "chat"],
        _ => &["v1.oasis", "chat", "mqtt"],
    };
    names.iter().map(|s| s.to_string()).collect()
}

/// Whether `text` is 28 characters of standard base64 encoding 20 bytes (a SHA-1 digest), the
/// form of every Sec-WebSocket-Accept value.
pub fn is_accept_value(text: &[u8]) -> bool {
    text.len() == 28
        && text[..27]
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/')
        && text[27] == b'='
}

/// The value of the first header `name` (case-insensitive) in an HTTP head we produced.
pub fn header_value<'a>(head: &'a [u8], name: &str) -> Option<&'a [u8]> {
    let mut lines = head
        .split(|b| *b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
        // httparse skips empty lines before the request or status line.
        .skip_while(|line| line.is_empty());
    lines.next(); // the request or status line
    for line in lines {
        if line.is_empty() {
            break;
        }
        let colon = line.iter().position(|b| *b == b':')?;
        if line[..colon].eq_ignore_ascii_case(name.as_bytes()) {
            return Some(line[colon + 1..].trim_ascii());
        }
    }
    None
}

/// Silences the library's log (unknown keys and the like are logged at warn level to stderr,
/// which would slow the fuzzer down and flood its output).
pub fn quiet() {
    oasisnet::log::set_level(oasisnet::log::LogLevel::Off);
}

pub mod protocol;
