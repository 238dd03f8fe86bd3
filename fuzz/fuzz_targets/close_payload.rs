//! Close-frame payloads (`parse_close_payload`): the input is the (unmasked) payload.
//!
//! Invariants, against RFC 6455 sections 5.5.1 and 7.4 written out independently:
//! - an empty payload is "no code" (1005, empty reason); a 1-byte payload is refused with 1002;
//! - otherwise the code is the first two bytes (big-endian) and is accepted exactly when it
//!   may be sent: 1000-1003, 1007-1014 or 3000-4999 (a bad code is 1002);
//! - the reason is the rest, accepted exactly when it is UTF-8 (else 1007), returned verbatim;
//! - `close_code_is_sendable` agrees with the same list for every code.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oasisnet::protocol::close::{self, INVALID_DATA, PROTOCOL_ERROR};

fn sendable(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

fuzz_target!(|data: &[u8]| {
    let result = close::parse_close_payload(data);
    match data {
        [] => assert_eq!(result, Ok((1005, ""))),
        [_] => assert_eq!(result.map_err(|v| v.code), Err(PROTOCOL_ERROR)),
        [high, low, reason @ ..] => {
            let code = u16::from_be_bytes([*high, *low]);
            assert_eq!(
                close::close_code_is_sendable(code),
                sendable(code),
                "code {code}"
            );
            match (sendable(code), std::str::from_utf8(reason)) {
                (false, _) => assert_eq!(
                    result.map_err(|v| v.code),
                    Err(PROTOCOL_ERROR),
                    "code {code}"
                ),
                (true, Err(_)) => assert_eq!(result.map_err(|v| v.code), Err(INVALID_DATA)),
                (true, Ok(text)) => assert_eq!(result, Ok((code, text))),
            }
        }
    }
});
