//! Unmasking (RFC 6455 section 5.3) and the ASCII test of text payloads: the two passes every
//! received byte of a text message goes through, and the first check of text an application
//! sends. Written as plain loops that LLVM turns into good code for the target as it is built:
//!
//! - Where the baseline target has 128-bit vector registers (SSE2 on x86_64, NEON on aarch64):
//!   fixed-size loops over blocks of bytes, which become vector code (a 64-byte block is four
//!   registers).
//! - Elsewhere (armv7-unknown-linux-gnueabihf assumes no NEON): machine words. Byte blocks there
//!   would become byte-at-a-time loops, several times slower than words.
//! - 32-bit ARM compiled for NEON (thumbv7neon-unknown-linux-gnueabihf): words for unmasking,
//!   which LLVM turns into NEON code there, and blocks for the ASCII test. A 64 KiB text message
//!   echoed costs a fifth of the instructions it costs armv7 (docs/BENCHMARKS.md, "ARM").
//! - On x86_64, a payload of 256 bytes or more takes these loops compiled for AVX2 when the
//!   processor has it ([`crate::simd`]: x86_64's baseline is SSE2 only), over blocks twice as
//!   large, which fill 32-byte registers as the baseline's fill 16-byte ones.
//!   An echoed 64 KiB text message then costs the server 9,330 instructions instead of 21,093,
//!   nearly all of them unmasking (docs/BENCHMARKS.md).
//!
//! Unmasking text also says whether every unmasked byte is ASCII: the bytes are in registers
//! anyway, so the test costs one OR per register, and an all-ASCII text frame — the common
//! case — is then known to be valid UTF-8 without a second pass over it.

use crate::simd;
use std::mem::size_of;

/// The baseline target has 128-bit vector registers (see the module's comment).
const VECTORS: bool = cfg!(any(
    all(target_arch = "x86_64", target_feature = "sse2"),
    all(target_arch = "aarch64", target_feature = "neon"),
));

/// The ASCII test takes blocks: where the target has vectors, and on 32-bit ARM compiled for
/// NEON (`arm_neon`, from build.rs), where it takes stretches of them (see [`ascii_test`]).
/// Unmasking there keeps the word loop, which LLVM makes NEON code of: fewer instructions than
/// the blocks (docs/BENCHMARKS.md, "ARM").
const ASCII_BLOCKS: bool = VECTORS || cfg!(arm_neon);

/// Bytes per step of the vector loop: four 16-byte registers, so the loop's own instructions
/// (index, compare, branch) are paid once per 64 bytes. A 32-byte step follows for the rest,
/// so that a 32- to 63-byte payload is not left to words.
const BLOCK: usize = 64;

const WORD: usize = size_of::<usize>();

/// Whether the target folds a vector register into one value in an instruction or two, as the
/// ASCII test of every block does: x86_64 takes a mask of the bytes' top bits, aarch64 the
/// largest lane. 32-bit ARM's NEON has no such instruction, and LLVM leaves that loop a byte at
/// a time there, over 2 instructions a byte (docs/BENCHMARKS.md, "ARM"): the test ORs a stretch of
/// blocks together lane by lane instead, and tests the stretch once.
const FOLDS_CHEAPLY: bool = !cfg!(target_arch = "arm");

/// Bytes the ASCII test ORs together before it tests them where vectors do not fold cheaply:
/// non-ASCII text is found within this many bytes of its first such byte. A multiple of every
/// block.
const STRETCH: usize = 1024;

/// Payloads from this size on take the loops compiled for wider registers where the processor
/// has them ([`crate::simd`]): below it, the baseline loops finish in a few dozen instructions,
/// and the feature check (a load and a test) would be a noticeable part of them.
const WIDE_FROM: usize = 256;

/// XORs `data` with the 4-byte mask, starting at the mask's first byte.
pub fn apply_mask(data: &mut [u8], mask: [u8; 4]) {
    let len = data.len();
    if wide(
        len,
        #[inline(always)]
        || unmask_double::<false>(data, mask),
    )
    .is_none()
    {
        unmask::<VECTORS, false>(data, mask);
    }
}

/// [`apply_mask`], and whether every byte it produced is ASCII.
pub fn unmask_ascii(data: &mut [u8], mask: [u8; 4]) -> bool {
    let len = data.len();
    match wide(
        len,
        #[inline(always)]
        || unmask_double::<true>(data, mask),
    ) {
        Some(ascii) => ascii,
        None => unmask::<VECTORS, true>(data, mask),
    }
}

/// Whether every byte of `data` is ASCII (text that arrives unmasked, on a client, and text
/// an application sends). Stops at the first step that is not, so non-ASCII text pays little
/// for being tested.
pub fn is_ascii(data: &[u8]) -> bool {
    wide(
        data.len(),
        #[inline(always)]
        || ascii_test_double(data),
    )
    .unwrap_or_else(|| ascii_test::<ASCII_BLOCKS, { BLOCK / 2 }>(data))
}

/// Runs `work` (one of the loops with double blocks, below, in an `#[inline(always)]` closure)
/// compiled for wider registers, for a payload of `len` bytes: `None` below [`WIDE_FROM`] or
/// where the processor has none.
#[inline(always)]
fn wide<R>(len: usize, work: impl FnOnce() -> R) -> Option<R> {
    if len < WIDE_FROM {
        return None;
    }
    simd::with_avx2(work)
}

/// The loops below with blocks twice the baseline's, for wider registers (which they fill as
/// the baseline's blocks fill 16-byte ones). The tests also run them as baseline code, so on
/// any processor.
#[inline(always)]
fn unmask_double<const ASCII: bool>(data: &mut [u8], mask: [u8; 4]) -> bool {
    let (ascii, rest) = blocks::<{ 2 * BLOCK }, ASCII>(data, mask);
    ascii & unmask::<true, ASCII>(rest, mask)
}

/// [`ascii_test`] with blocks twice the baseline's (see [`unmask_double`]).
#[inline(always)]
fn ascii_test_double(data: &[u8]) -> bool {
    ascii_test::<true, BLOCK>(data)
}

/// [`is_ascii`] with blocks of `N` bytes (`V`) or with words only.
#[inline(always)]
fn ascii_test<const V: bool, const N: usize>(data: &[u8]) -> bool {
    let rest = match (V, FOLDS_CHEAPLY) {
        (false, _) => data,
        (true, true) => {
            let mut blocks = data.chunks_exact(N);
            for block in &mut blocks {
                let block: &[u8; N] = block.try_into().expect("a whole block");
                if block.iter().fold(0, |seen, byte| seen | byte) & 0x80 != 0 {
                    return false;
                }
            }
            blocks.remainder()
        }
        (true, false) => match ascii_stretches::<N>(data) {
            Some(rest) => rest,
            None => return false,
        },
    };
    ascii_words(rest)
}

/// The blocks of [`ascii_test`] where a vector does not fold cheaply into one value: each
/// stretch's blocks are ORed together lane by lane, and the stretch is tested once. Returns the
/// bytes after the last whole block, or `None` when a byte is not ASCII.
#[inline(always)]
fn ascii_stretches<const N: usize>(data: &[u8]) -> Option<&[u8]> {
    // (Otherwise the bytes after the last whole block of every stretch but the last go untested.)
    const { assert!(STRETCH.is_multiple_of(N), "a stretch is whole blocks") };
    let mut rest: &[u8] = &[];
    for stretch in data.chunks(STRETCH) {
        let (ascii, after) = ascii_blocks::<N>(stretch);
        if !ascii {
            return None;
        }
        rest = after;
    }
    Some(rest)
}

/// [`is_ascii`] a machine word at a time, then the last bytes.
#[inline(always)]
fn ascii_words(rest: &[u8]) -> bool {
    // Four words a step, ORed together and tested once, as `words` unmasks them: a test and a
    // branch per word took armv7 (no NEON) 1.5 instructions a byte, the step 0.8
    // (docs/BENCHMARKS.md, "ARM").
    let word = |bytes: &[u8]| usize::from_ne_bytes(bytes.try_into().expect("a word"));
    let mut steps = rest.chunks_exact(4 * WORD);
    for step in &mut steps {
        let seen = word(&step[..WORD])
            | word(&step[WORD..2 * WORD])
            | word(&step[2 * WORD..3 * WORD])
            | word(&step[3 * WORD..]);
        if seen & high_bits() != 0 {
            return false;
        }
    }
    let mut words = steps.remainder().chunks_exact(WORD);
    for bytes in &mut words {
        if word(bytes) & high_bits() != 0 {
            return false;
        }
    }
    words.remainder().iter().all(u8::is_ascii)
}

/// One path for both uses, so that masking without the test pays nothing for it (`ASCII` is a
/// constant: the ORs are compiled out). `V`: with blocks, else with words only.
#[inline(always)]
fn unmask<const V: bool, const ASCII: bool>(data: &mut [u8], mask: [u8; 4]) -> bool {
    if !V {
        return words::<ASCII>(data, mask);
    }
    let (ascii, rest) = blocks::<BLOCK, ASCII>(data, mask);
    let (ascii_half, rest) = blocks::<{ BLOCK / 2 }, ASCII>(rest, mask);
    ascii & ascii_half & words::<ASCII>(rest, mask)
}

/// Unmasks the whole `N`-byte blocks at the start of `data`; returns whether they are ASCII and
/// the bytes after them. Every block starts at a multiple of 4 bytes, so the mask is at the
/// same phase in each.
#[inline(always)]
fn blocks<const N: usize, const ASCII: bool>(data: &mut [u8], mask: [u8; 4]) -> (bool, &mut [u8]) {
    if data.len() < N {
        // Nothing to do, and nothing to sum up afterwards (a small payload's common case).
        return (true, data);
    }
    let mut wide = [0u8; N];
    for quad in wide.chunks_exact_mut(4) {
        quad.copy_from_slice(&mask);
    }
    // One accumulator per byte of the block: every step is independent of its neighbours,
    // which is what lets the loop become vector code.
    let mut seen = [0u8; N];
    let mut blocks = data.chunks_exact_mut(N);
    for block in &mut blocks {
        let block: &mut [u8; N] = block.try_into().expect("a whole block");
        for i in 0..N {
            block[i] ^= wide[i];
            if ASCII {
                seen[i] |= block[i];
            }
        }
    }
    let ascii = !ASCII || seen.iter().fold(0, |all, byte| all | byte) & 0x80 == 0;
    (ascii, blocks.into_remainder())
}

/// Unmasks `data` a machine word at a time, then the last bytes; returns whether it is ASCII.
#[inline(always)]
fn words<const ASCII: bool>(data: &mut [u8], mask: [u8; 4]) -> bool {
    // The mask repeated across the word (a word is 4 or 8 bytes): one multiply, where building
    // it byte by byte takes a dozen shifts and ORs.
    let wide = (u32::from_ne_bytes(mask) as usize).wrapping_mul(usize::MAX / u32::MAX as usize);
    let mut seen = 0;
    // Four words a step: the loop's own instructions are then a small part of each step.
    let mut steps = data.chunks_exact_mut(4 * WORD);
    for step in &mut steps {
        for word in step.chunks_exact_mut(WORD) {
            let unmasked = usize::from_ne_bytes((&*word).try_into().expect("a word")) ^ wide;
            word.copy_from_slice(&unmasked.to_ne_bytes());
            seen |= unmasked;
        }
    }
    let mut words = steps.into_remainder().chunks_exact_mut(WORD);
    for word in &mut words {
        let unmasked = usize::from_ne_bytes((&*word).try_into().expect("a word")) ^ wide;
        word.copy_from_slice(&unmasked.to_ne_bytes());
        seen |= unmasked;
    }
    let mut seen_bytes = 0;
    for (i, byte) in words.into_remainder().iter_mut().enumerate() {
        *byte ^= mask[i % 4];
        seen_bytes |= *byte;
    }
    !ASCII || (seen & high_bits() == 0 && seen_bytes & 0x80 == 0)
}

/// ORs the whole `N`-byte blocks at the start of `data` together lane by lane (vector code on
/// every target with vectors); returns whether they are ASCII and the bytes after them.
#[inline(always)]
fn ascii_blocks<const N: usize>(data: &[u8]) -> (bool, &[u8]) {
    let mut seen = [0u8; N];
    let mut blocks = data.chunks_exact(N);
    for block in &mut blocks {
        let block: &[u8; N] = block.try_into().expect("a whole block");
        for i in 0..N {
            seen[i] |= block[i];
        }
    }
    let ascii = seen.iter().fold(0, |all, byte| all | byte) & 0x80 == 0;
    (ascii, blocks.remainder())
}

/// The top bit of every byte of a word.
const fn high_bits() -> usize {
    usize::from_ne_bytes([0x80; WORD])
}

#[cfg(test)]
mod tests {
    use super::*;

    const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

    /// Every way: blocks of bytes, words only, blocks twice as large (what runs with wider
    /// registers, run here as the baseline, so on any processor), and the public function,
    /// which takes the wider registers where the processor has them. All four
    /// unmask alike; returns what each said about ASCII.
    fn unmask_every_way(data: &mut [u8], mask: [u8; 4]) -> [bool; 4] {
        let run = |way: fn(&mut [u8], [u8; 4]) -> bool| {
            let mut copy = data.to_vec();
            let ascii = way(&mut copy, mask);
            (copy, ascii)
        };
        let (words, with_words) = run(unmask::<false, true>);
        let (double, with_double) = run(unmask_double::<true>);
        let (public, with_public) = run(unmask_ascii);
        let with_blocks = unmask::<true, true>(data, mask);
        for (way, bytes) in [
            ("words", words),
            ("double blocks", double),
            ("unmask_ascii", public),
        ] {
            assert_eq!(*data, bytes[..], "blocks and {way} unmask alike");
        }
        [with_blocks, with_words, with_double, with_public]
    }

    /// [`unmask_every_way`] for the ASCII test alone, and with the stretches of targets whose
    /// vectors do not fold cheaply (run here whatever this target is).
    fn is_ascii_every_way(data: &[u8]) -> [bool; 4] {
        let stretches = ascii_stretches::<{ BLOCK / 2 }>(data).is_some_and(ascii_words);
        let ways = [
            ascii_test::<true, { BLOCK / 2 }>(data),
            ascii_test::<false, { BLOCK / 2 }>(data),
            ascii_test_double(data),
            is_ascii(data),
        ];
        assert_eq!(stretches, ways[0], "stretches and blocks test alike");
        ways
    }

    /// The byte-at-a-time definition the block and word loops must match.
    fn reference(data: &[u8], mask: [u8; 4]) -> Vec<u8> {
        data.iter()
            .enumerate()
            .map(|(i, b)| b ^ mask[i % 4])
            .collect()
    }

    /// Every length up to five blocks (two and a half of the double ones), at every alignment
    /// of the start in memory: the same bytes as the definition, nothing touched around them,
    /// and masking twice gives the original back.
    #[test]
    fn masks_like_the_definition_at_any_length_and_alignment() {
        let original: Vec<u8> = (0..330u32).map(|i| (i * 37 + 11) as u8).collect();
        for offset in 0..BLOCK {
            for len in 0..(original.len() - offset) {
                let source = &original[offset..offset + len];
                let mut buffer = original.clone();
                apply_mask(&mut buffer[offset..offset + len], MASK);
                assert_eq!(buffer[offset..offset + len], reference(source, MASK));
                assert_eq!(buffer[..offset], original[..offset], "before the payload");
                assert_eq!(buffer[offset + len..], original[offset + len..], "after it");
                let _ = unmask_every_way(&mut buffer[offset..offset + len], MASK);
                assert_eq!(buffer, original, "offset {offset}, length {len}");
            }
        }
    }

    /// One byte with its top bit set, anywhere (in a 64- or 32-byte block, in a word, in the
    /// last bytes), at any alignment: the text is not ASCII; without it, it is.
    #[test]
    fn one_non_ascii_byte_anywhere_is_seen() {
        for offset in [0, 1, 3, 5, 17] {
            for len in [
                0, 1, 3, 4, 7, 8, 9, 31, 32, 33, 39, 40, 41, 63, 64, 65, 95, 96, 100, 127, 128,
                129, 257, 300,
            ] {
                let text: Vec<u8> = (0..len).map(|i| b' ' + (i % 95) as u8).collect();
                let mut wire = vec![0xAA; offset];
                wire.extend(reference(&text, MASK));
                assert_eq!(unmask_every_way(&mut wire[offset..], MASK), [true; 4]);
                assert_eq!(wire[offset..], text);
                assert_eq!(is_ascii_every_way(&text), [true; 4]);
                for at in 0..len {
                    for high in [0x80, 0xC3, 0xFF] {
                        let mut text = text.clone();
                        text[at] = high;
                        let mut wire = vec![0xAA; offset];
                        wire.extend(reference(&text, MASK));
                        assert_eq!(
                            unmask_every_way(&mut wire[offset..], MASK),
                            [false; 4],
                            "{high:#x} at {at} of {len}, offset {offset}"
                        );
                        assert_eq!(wire[offset..], text);
                        assert_eq!(is_ascii_every_way(&text), [false; 4], "{high:#x} at {at}");
                        assert_eq!(is_ascii_every_way(&text[at..]), [false; 4]);
                        assert_eq!(is_ascii_every_way(&text[..at]), [true; 4]);
                    }
                }
            }
        }
    }

    /// Text longer than one stretch of the ASCII test: a byte with its top bit set in any
    /// stretch, at its edges and in the bytes after the last whole block, is seen.
    #[test]
    fn one_non_ascii_byte_in_any_stretch_is_seen() {
        for len in [
            STRETCH - 1,
            STRETCH,
            STRETCH + 1,
            2 * STRETCH + 33,
            3 * STRETCH + 5,
        ] {
            let text: Vec<u8> = (0..len).map(|i| b' ' + (i % 95) as u8).collect();
            assert_eq!(is_ascii_every_way(&text), [true; 4], "length {len}");
            let edges = (1..=3).flat_map(|k| [k * STRETCH - 1, k * STRETCH, k * STRETCH + 1]);
            for at in edges.chain([0, 700, len - 1]).filter(|&at| at < len) {
                let mut text = text.clone();
                text[at] = 0xC3;
                assert_eq!(is_ascii_every_way(&text), [false; 4], "at {at} of {len}");
            }
        }
    }

    /// Bytes that are ASCII on the wire but not once unmasked, and the reverse: the test is of
    /// the unmasked text.
    #[test]
    fn the_test_is_of_the_unmasked_bytes() {
        let text = b"plain ascii text, longer than one block of sixty-four bytes, isn't it";
        let mut wire = reference(text, [0x80; 4]);
        assert_eq!(is_ascii_every_way(&wire), [false; 4]);
        assert_eq!(unmask_every_way(&mut wire, [0x80; 4]), [true; 4]);
        let mut wire = vec![b'a'; 70];
        assert_eq!(unmask_every_way(&mut wire, [0, 0, 0x80, 0]), [false; 4]);
    }
}
