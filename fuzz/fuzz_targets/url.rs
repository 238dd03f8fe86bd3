//! Client URLs: `ws://` / `wss://`, a host name, IPv4 address or `[IPv6]` address, an optional
//! port, path and query. Input: the URL as text (invalid UTF-8 replaced by U+FFFD).
//!
//! Invariants:
//! - a refusal is EINVAL;
//! - an accepted URL has a non-empty host (an IPv6 address exactly when it contains ':'), a
//!   port from 1 to 65535 (80/443 when none was given), a resource starting with '/', and no
//!   spaces, control characters or '#' anywhere;
//! - it re-parses from its own parts, with the port written out and with the Host header form
//!   (default port left out), to the same URL.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oasisnet::ws::url::{self, WsUrl};
use std::net::Ipv6Addr;

fn check(input: &str, parsed: &WsUrl) {
    assert!(!parsed.host.is_empty(), "{input:?} -> {parsed:?}");
    assert!(parsed.port >= 1, "{input:?} -> {parsed:?}");
    assert!(parsed.resource.starts_with('/'), "{input:?} -> {parsed:?}");
    for part in [&parsed.host, &parsed.resource] {
        assert!(
            !part
                .bytes()
                .any(|b| b.is_ascii_control() || b == b' ' || b == b'#'),
            "{input:?} -> {parsed:?}"
        );
    }
    if parsed.host.contains(':') {
        assert!(
            parsed.host.parse::<Ipv6Addr>().is_ok(),
            "{input:?} -> {parsed:?}"
        );
    } else {
        assert!(
            parsed
                .host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_'),
            "{input:?} -> {parsed:?}"
        );
    }
    let scheme = if parsed.secure { "wss" } else { "ws" };
    let host = if parsed.host.contains(':') {
        format!("[{}]", parsed.host)
    } else {
        parsed.host.clone()
    };
    for again in [
        format!("{scheme}://{host}:{}{}", parsed.port, parsed.resource),
        format!("{scheme}://{}{}", parsed.host_header(), parsed.resource),
    ] {
        match url::parse(&again) {
            Ok(reparsed) => assert_eq!(&reparsed, parsed, "{input:?} re-parsed as {again:?}"),
            Err(err) => panic!(
                "{input:?} -> {parsed:?}, but {again:?} is refused: {}",
                err.message
            ),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let input = String::from_utf8_lossy(data);
    match url::parse(&input) {
        Ok(parsed) => check(&input, &parsed),
        Err(err) => assert_eq!(err.errno, libc::EINVAL, "{input:?}: {}", err.message),
    }
});
