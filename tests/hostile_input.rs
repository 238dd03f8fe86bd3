//! Random and mutated input for every parser of untrusted bytes: frames, the HTTP upgrade in
//! both directions, URLs and parameter maps. Each must answer (an error is fine) without a
//! panic. Deterministic: a fixed-seed generator, so a failure reproduces.

use oasisnet::config::{ClientConfig, ServerConfig};
use oasisnet::protocol::handshake::{ClientHandshake, ServerHandshake};
use oasisnet::protocol::{close, frame};
use oasisnet::ws::url;

#[path = "common/rng.rs"]
mod rng;
use rng::Rng;

const ROUNDS: usize = 20_000;

#[test]
fn frames() {
    let mut rng = Rng(0x5eed_0001);
    let valid = [
        0x81u8,
        0x85,
        1,
        2,
        3,
        4,
        b'h' ^ 1,
        b'e' ^ 2,
        b'l' ^ 3,
        b'l' ^ 4,
        b'o' ^ 1,
    ];
    for round in 0..ROUNDS {
        let mut data = if round % 2 == 0 {
            rng.bytes(64)
        } else {
            rng.mutate(&valid)
        };
        for masked in [true, false] {
            let _ = frame::parse(&mut data, masked, 1 << 16);
        }
        let _ = close::parse_close_payload(&data);
    }
}

#[test]
fn upgrade_requests_and_responses() {
    let mut rng = Rng(0x5eed_0002);
    let request = b"GET /chat?x=1 HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: a, b\r\nSec-WebSocket-Version: 13\r\n\r\n";
    let response = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: x\r\n\r\n";
    let protocols = vec!["b".to_string()];
    let target = url::parse("ws://h/").unwrap();
    for round in 0..ROUNDS {
        let input = if round % 3 == 0 {
            rng.bytes(300)
        } else {
            rng.mutate(request)
        };
        // Fed whole and in random pieces.
        let mut whole = ServerHandshake::default();
        let _ = whole.feed(&input, &protocols);
        let mut pieces = ServerHandshake::default();
        for chunk in input.chunks(1 + rng.below(16)) {
            if !matches!(
                pieces.feed(chunk, &protocols),
                oasisnet::protocol::handshake::ServerStep::NeedMore
            ) {
                break;
            }
        }
        let mut client =
            ClientHandshake::new(&target.resource, &target.host_header(), &protocols, [3; 16]);
        let _ = client.feed(&rng.mutate(response));
    }
    // A head that never ends is refused once it passes the limit, not buffered forever.
    let mut endless = ServerHandshake::default();
    let refused = (0..100).any(|_| {
        matches!(
            endless.feed(&[b'a'; 1024], &protocols),
            oasisnet::protocol::handshake::ServerStep::Refuse(_)
        )
    });
    assert!(refused);
}

#[test]
fn urls_and_parameters() {
    let mut rng = Rng(0x5eed_0003);
    let seeds: [&[u8]; 3] = [
        b"ws://[::1]:8080/path?q=1",
        b"wss://example.com:443/",
        b"ws://10.0.0.1:1",
    ];
    for round in 0..ROUNDS {
        let bytes = rng.mutate(seeds[round % seeds.len()]);
        let text = String::from_utf8_lossy(&bytes);
        let _ = url::parse(&text);
        let key = [
            "port",
            "bind-address",
            "websocket-protocols",
            "websocket-fragment-size-max",
            "close-timeout-ms",
        ][round % 5];
        let value = String::from_utf8_lossy(&rng.bytes(12)).into_owned();
        let pairs = vec![(key.to_string(), value)];
        let _ = ServerConfig::parse(&pairs);
        let _ = ClientConfig::parse(&pairs);
    }
}
