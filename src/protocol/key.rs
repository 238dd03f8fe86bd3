//! The opening handshake's keys (RFC 6455 section 4): the client's `Sec-WebSocket-Key`, from a
//! nonce its caller draws, and the `Sec-WebSocket-Accept` both sides derive from it with SHA-1
//! and base64 (the `sha1` crate: the CPU's SHA instructions where it has them). Only base64
//! *encoding* of 16 and 20 bytes is needed, a dozen lines, so it is written here rather than
//! taken from a crate.

use sha1::{Digest, Sha1};

/// The GUID RFC 6455 appends to the key before hashing.
const WEBSOCKET_GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The length of a `Sec-WebSocket-Accept` value: a SHA-1 digest (20 bytes) in base64.
pub const ACCEPT_LEN: usize = 28;

/// `Sec-WebSocket-Accept` for a request's `Sec-WebSocket-Key` (as sent, base64 text), as the
/// ASCII bytes of its base64 text: a fixed size, so a server's answer takes no allocation.
pub fn derive_accept_key(request_key: &[u8]) -> [u8; ACCEPT_LEN] {
    let digest: [u8; 20] = Sha1::new()
        .chain_update(request_key)
        .chain_update(WEBSOCKET_GUID)
        .finalize()
        .into();
    let mut out = [0; ACCEPT_LEN];
    base64_into(&digest, &mut out);
    out
}

/// The `Sec-WebSocket-Key` for a 16-byte nonce: its base64 text.
pub fn encode_key(nonce: [u8; 16]) -> String {
    let mut out = [0; 24];
    base64_into(&nonce, &mut out);
    out.iter().map(|&b| char::from(b)).collect()
}

/// Standard base64 (RFC 4648 section 4) with `=` padding, into `out` of exactly the encoded
/// length (`bytes.len().div_ceil(3) * 4`).
fn base64_into(bytes: &[u8], out: &mut [u8]) {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    debug_assert_eq!(out.len(), bytes.len().div_ceil(3) * 4);
    for (chunk, quad) in bytes.chunks(3).zip(out.chunks_exact_mut(4)) {
        let group = u32::from(chunk[0]) << 16
            | u32::from(*chunk.get(1).unwrap_or(&0)) << 8
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for (i, slot) in quad.iter_mut().enumerate() {
            *slot = if i <= chunk.len() {
                ALPHABET[(group >> (18 - 6 * i) & 0x3F) as usize]
            } else {
                b'='
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of RFC 6455 section 1.3.
    #[test]
    fn rfc_6455_accept_key() {
        assert_eq!(
            &derive_accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    /// Keys whose text plus the GUID ends just before, at and after the SHA-1 padding and
    /// block boundaries (36, 55, 56, 63, 64, 127 and 128 bytes hashed): the accept keys
    /// Python's `hashlib` (OpenSSL) gives for them.
    #[test]
    fn accept_keys_around_the_block_boundaries() {
        let text = b"dGhlIHNhbXBsZSBub25jZQ==".repeat(4);
        for (len, accept) in [
            (0, "Kfh9QIsMVZcl6xEPYxPHzW8SZ8w="),
            (19, "um31HTT7mf0uLEXPSN6Kzfo1YQA="),
            (20, "k9uFUQ3sxsBzo5O0/ylrvYr5zk4="),
            (27, "58gg53r8fsQaz/krerCdMlw3fEc="),
            (28, "98sZqD4qerN0OKnjXXQaXZZzTjg="),
            (91, "WlcQtNF5gUVkG1PF9tyHlaxwks8="),
            (92, "C74LKAdivhRtqzd4LwOZA5Hz9HA="),
        ] {
            let key = &text[..len];
            assert_eq!(
                &derive_accept_key(key),
                accept.as_bytes(),
                "key of {len} bytes"
            );
        }
    }

    /// The test vectors of RFC 4648 section 10, and all three padding cases at other lengths.
    #[test]
    fn rfc_4648_vectors() {
        for (input, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), encoded);
        }
        assert_eq!(base64(&[0xFB, 0xFF, 0xBF]), "+/+/");
    }

    fn base64(bytes: &[u8]) -> String {
        let mut out = vec![0; bytes.len().div_ceil(3) * 4];
        base64_into(bytes, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_key_is_its_nonce_in_base64() {
        let key = encode_key(*b"the sample nonce");
        assert_eq!(key, "dGhlIHNhbXBsZSBub25jZQ==", "RFC 6455 section 1.3");
    }
}
