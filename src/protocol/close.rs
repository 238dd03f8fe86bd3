//! Close codes and close frames (RFC 6455 sections 5.5.1 and 7.4): the one place the codes the
//! library uses are named, which codes may be sent, and what a close payload must look like.

pub const NORMAL: u16 = 1000;
pub const GOING_AWAY: u16 = 1001;
pub const PROTOCOL_ERROR: u16 = 1002;
/// In a close event: the peer's close frame carried no code. Never sent.
pub const NO_STATUS: u16 = 1005;
/// In a close or error event: the connection ended without a closing handshake. Never sent.
pub const ABNORMAL: u16 = 1006;
pub const INVALID_DATA: u16 = 1007;
pub const TOO_BIG: u16 = 1009;
pub const INTERNAL_ERROR: u16 = 1011;
/// In an error event: the TLS handshake failed. Never sent.
pub const TLS_FAILURE: u16 = 1015;

/// Why a connection must be failed, as a close code plus a log-worthy reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub code: u16,
    pub reason: &'static str,
}

pub fn violation(code: u16, reason: &'static str) -> Violation {
    Violation { code, reason }
}

/// Checks that a close frame's payload is well formed: returns the code (1005 when absent).
pub fn parse_close_payload(payload: &[u8]) -> Result<(u16, &str), Violation> {
    match payload.len() {
        0 => Ok((NO_STATUS, "")),
        1 => Err(violation(
            PROTOCOL_ERROR,
            "close frame with a 1-byte payload",
        )),
        _ => {
            let code = u16::from_be_bytes([payload[0], payload[1]]);
            if !close_code_is_sendable(code) {
                return Err(violation(PROTOCOL_ERROR, "invalid close code"));
            }
            let reason = std::str::from_utf8(&payload[2..])
                .map_err(|_| violation(INVALID_DATA, "close reason is not UTF-8"))?;
            Ok((code, reason))
        }
    }
}

/// Codes a close frame may carry (RFC 6455 section 7.4 and the IANA registry).
/// 1012-1014 were registered after RFC 6455 (1014: a gateway's bad upstream answer, which a
/// proxy may send); 1004 is reserved, 1005, 1006 and 1015 are only for reporting; 1016-2999 are
/// for future versions of the protocol; 3000-3999 are registered and 4000-4999 private.
pub fn close_code_is_sendable(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// The payload of a close frame we send, on the stack: a control frame carries at most 125
/// bytes, the code and up to 123 bytes of reason.
pub struct ClosePayload {
    bytes: [u8; 125],
    len: usize,
}

impl ClosePayload {
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// The payload of a close frame we send: the code (if any) and the reason (callers check its
/// length; a longer one is cut at a character boundary within 123 bytes).
pub fn close_payload(code: Option<u16>, reason: &str) -> ClosePayload {
    let mut payload = ClosePayload {
        bytes: [0; 125],
        len: 0,
    };
    if let Some(code) = code {
        debug_assert!(
            reason.len() <= 123,
            "close reason of {} bytes",
            reason.len()
        );
        let mut cut = reason.len().min(123);
        while !reason.is_char_boundary(cut) {
            cut -= 1;
        }
        payload.bytes[..2].copy_from_slice(&code.to_be_bytes());
        payload.bytes[2..2 + cut].copy_from_slice(&reason.as_bytes()[..cut]);
        payload.len = 2 + cut;
    }
    payload
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_payload_rules() {
        assert_eq!(parse_close_payload(&[]).unwrap().0, 1005);
        assert!(parse_close_payload(&[3]).is_err());
        assert!(parse_close_payload(&1005u16.to_be_bytes()).is_err());
        assert_eq!(parse_close_payload(&4001u16.to_be_bytes()).unwrap().0, 4001);
        let mut bad = 1000u16.to_be_bytes().to_vec();
        bad.push(0xff);
        assert_eq!(parse_close_payload(&bad).unwrap_err().code, INVALID_DATA);
        assert_eq!(close_payload(None, "").as_bytes(), b"");
        assert_eq!(close_payload(Some(1001), "bye").as_bytes(), b"\x03\xe9bye");
        let longest = "ü".repeat(61) + "x";
        let payload = close_payload(Some(4000), &longest);
        assert_eq!(payload.as_bytes().len(), 125);
        assert_eq!(
            parse_close_payload(payload.as_bytes()).unwrap(),
            (4000, &*longest)
        );
    }

    /// The codes Autobahn's case 7.9 expects to be refused and 7.7 to be accepted, and the edges.
    #[test]
    fn sendable_codes() {
        for code in [
            1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999,
            4000, 4999,
        ] {
            assert!(close_code_is_sendable(code), "{code}");
        }
        for code in [
            0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
        ] {
            assert!(!close_code_is_sendable(code), "{code}");
        }
    }
}
