//! Unmasking (RFC 6455 section 5.3) and the ASCII test of text payloads, the two passes every
//! received byte of a text message goes through. Both are written as fixed-size loops over
//! 32-byte blocks of plain arrays, which LLVM turns into vector code of the baseline target
//! (two SSE2 registers a block on x86_64, NEON on aarch64; 32-bit words where there is no
//! vector unit, as on armv7-unknown-linux-gnueabihf) with no `unsafe` and no target features.
//!
//! Unmasking text also says whether every unmasked byte is ASCII: the bytes are in registers
//! anyway, so the test costs one OR per register, and an all-ASCII text frame — the common
//! case — is then known to be valid UTF-8 without a second pass over it.

/// Bytes handled per step. 32 rather than 16: the loop's own overhead (index, compare, branch)
/// is paid half as often, and both halves are independent.
const BLOCK: usize = 32;

/// XORs `data` with the 4-byte mask, starting at the mask's first byte.
pub fn apply_mask(data: &mut [u8], mask: [u8; 4]) {
    unmask::<false>(data, mask);
}

/// [`apply_mask`], and whether every byte it produced is ASCII.
pub fn unmask_ascii(data: &mut [u8], mask: [u8; 4]) -> bool {
    unmask::<true>(data, mask)
}

/// Whether every byte of `data` is ASCII (for text that arrives unmasked, on a client). Stops
/// at the first block that is not, so non-ASCII text pays little for being tested.
pub fn is_ascii(data: &[u8]) -> bool {
    let mut blocks = data.chunks_exact(BLOCK);
    for block in &mut blocks {
        let block: &[u8; BLOCK] = block.try_into().expect("a whole block");
        let mut seen = 0;
        for byte in block {
            seen |= byte;
        }
        if seen & 0x80 != 0 {
            return false;
        }
    }
    blocks.remainder().iter().fold(0, |seen, byte| seen | byte) & 0x80 == 0
}

/// One loop for both uses, so that masking without the test pays nothing for it (`ASCII` is a
/// constant: the ORs are compiled out).
#[inline(always)]
fn unmask<const ASCII: bool>(data: &mut [u8], mask: [u8; 4]) -> bool {
    // Every block and word starts at a multiple of 4 bytes, so the mask repeats at the same
    // phase in each.
    let mut wide = [0u8; BLOCK];
    for quad in wide.chunks_exact_mut(4) {
        quad.copy_from_slice(&mask);
    }
    // One accumulator per byte of the block: every step is independent of its neighbours,
    // which is what lets the loop become vector code.
    let mut seen = [0u8; BLOCK];
    let mut blocks = data.chunks_exact_mut(BLOCK);
    for block in &mut blocks {
        let block: &mut [u8; BLOCK] = block.try_into().expect("a whole block");
        for i in 0..BLOCK {
            block[i] ^= wide[i];
            seen[i] |= block[i];
        }
    }
    // The tail (under 32 bytes): eight bytes at a time, then bytes.
    let word = u64::from_ne_bytes(wide[..8].try_into().expect("8 bytes"));
    let mut seen_tail = 0;
    let mut words = blocks.into_remainder().chunks_exact_mut(8);
    for lane in &mut words {
        let unmasked = u64::from_ne_bytes((&*lane).try_into().expect("8 bytes")) ^ word;
        lane.copy_from_slice(&unmasked.to_ne_bytes());
        seen_tail |= unmasked;
    }
    for (i, byte) in words.into_remainder().iter_mut().enumerate() {
        *byte ^= mask[i % 4];
        seen_tail |= u64::from(*byte);
    }
    let seen = seen.iter().fold(0, |all, byte| all | byte);
    ASCII && seen & 0x80 == 0 && seen_tail & 0x8080_8080_8080_8080 == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

    /// The byte-at-a-time definition the block loops must match.
    fn reference(data: &[u8], mask: [u8; 4]) -> Vec<u8> {
        data.iter()
            .enumerate()
            .map(|(i, b)| b ^ mask[i % 4])
            .collect()
    }

    /// Every length up to three blocks and past, at every alignment of the start in memory:
    /// the same bytes as the definition, and masking twice gives the original back.
    #[test]
    fn masks_like_the_definition_at_any_length_and_alignment() {
        let original: Vec<u8> = (0..200u32).map(|i| (i * 37 + 11) as u8).collect();
        for offset in 0..BLOCK {
            for len in 0..(original.len() - offset) {
                let source = &original[offset..offset + len];
                let mut buffer = original.clone();
                apply_mask(&mut buffer[offset..offset + len], MASK);
                assert_eq!(buffer[offset..offset + len], reference(source, MASK));
                assert_eq!(buffer[..offset], original[..offset], "before the payload");
                assert_eq!(buffer[offset + len..], original[offset + len..], "after it");
                let mut again = buffer.clone();
                let _ = unmask_ascii(&mut again[offset..offset + len], MASK);
                assert_eq!(again, original, "offset {offset}, length {len}");
            }
        }
    }

    /// One byte with its top bit set, anywhere (in a block, in the 8-byte tail, in the last
    /// bytes), at any alignment: the frame is not ASCII; without it, it is.
    #[test]
    fn one_non_ascii_byte_anywhere_is_seen() {
        for offset in [0, 1, 3, 5, 17] {
            for len in [
                0, 1, 3, 4, 7, 8, 9, 31, 32, 33, 39, 40, 41, 63, 64, 65, 100, 257,
            ] {
                let text: Vec<u8> = (0..len).map(|i| b' ' + (i % 95) as u8).collect();
                let mut wire = vec![0xAA; offset];
                wire.extend(reference(&text, MASK));
                assert!(unmask_ascii(&mut wire[offset..], MASK), "len {len}");
                assert_eq!(wire[offset..], text);
                assert!(is_ascii(&text));
                for at in 0..len {
                    for high in [0x80, 0xC3, 0xFF] {
                        let mut text = text.clone();
                        text[at] = high;
                        let mut wire = vec![0xAA; offset];
                        wire.extend(reference(&text, MASK));
                        assert!(
                            !unmask_ascii(&mut wire[offset..], MASK),
                            "{high:#x} at {at} of {len}, offset {offset}"
                        );
                        assert_eq!(wire[offset..], text);
                        assert!(!is_ascii(&text), "{high:#x} at {at} of {len}");
                        assert!(!is_ascii(&text[at..]) && is_ascii(&text[..at]));
                    }
                }
            }
        }
    }

    /// Bytes that are ASCII on the wire but not once unmasked, and the reverse: the test is of
    /// the unmasked text.
    #[test]
    fn the_test_is_of_the_unmasked_bytes() {
        let mut wire = reference(b"plain ascii text, longer than one block of 32", [0x80; 4]);
        assert!(!is_ascii(&wire));
        assert!(unmask_ascii(&mut wire, [0x80; 4]));
        let mut wire = vec![b'a'; 70];
        assert!(!unmask_ascii(&mut wire, [0, 0, 0x80, 0]));
    }
}
