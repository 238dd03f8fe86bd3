//! SHA-1, the one hash the WebSocket handshake needs (`Sec-WebSocket-Accept`, once per
//! connection). On x86_64 processors with the SHA extensions (AMD since Zen, Intel since Ice
//! Lake and Goldmont) each 64-byte block goes through those instructions: about 120
//! instructions a block, where the portable code (`sha1_smol`, used everywhere else) takes
//! about 1400. A leaf of the crate: it knows nothing of the library around it.

/// The digest of `parts`, one after the other.
pub fn digest(parts: &[&[u8]]) -> [u8; 20] {
    #[cfg(target_arch = "x86_64")]
    if x86::available() {
        // SAFETY: `available` checked that the CPU has the extensions `compress` is built for.
        return digest_blocks(parts, |state, block| unsafe { x86::compress(state, block) });
    }
    portable(parts)
}

fn portable(parts: &[&[u8]]) -> [u8; 20] {
    let mut sha1 = sha1_smol::Sha1::new();
    for part in parts {
        sha1.update(part);
    }
    sha1.digest().bytes()
}

/// The Merkle–Damgård frame of SHA-1 (FIPS 180-4 section 5.1.1: `0x80`, zeros, the bit length)
/// around a block function.
#[cfg(target_arch = "x86_64")]
fn digest_blocks(parts: &[&[u8]], mut compress: impl FnMut(&mut [u32; 5], &[u8; 64])) -> [u8; 20] {
    let mut state: [u32; 5] = [
        0x6745_2301,
        0xEFCD_AB89,
        0x98BA_DCFE,
        0x1032_5476,
        0xC3D2_E1F0,
    ];
    let mut block = [0u8; 64];
    let mut filled = 0;
    let mut total: u64 = 0;
    for part in parts {
        total += part.len() as u64;
        let mut rest = *part;
        while !rest.is_empty() {
            let take = (64 - filled).min(rest.len());
            block[filled..filled + take].copy_from_slice(&rest[..take]);
            filled += take;
            rest = &rest[take..];
            if filled == 64 {
                compress(&mut state, &block);
                filled = 0;
            }
        }
    }
    block[filled] = 0x80;
    block[filled + 1..].fill(0);
    if filled >= 56 {
        compress(&mut state, &block);
        block = [0; 64];
    }
    block[56..].copy_from_slice(&(total * 8).to_be_bytes());
    compress(&mut state, &block);
    let mut out = [0u8; 20];
    for (bytes, word) in out.chunks_exact_mut(4).zip(state) {
        bytes.copy_from_slice(&word.to_be_bytes());
    }
    out
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    pub fn available() -> bool {
        std::arch::is_x86_feature_detected!("sha")
            && std::arch::is_x86_feature_detected!("sse4.1")
            && std::arch::is_x86_feature_detected!("ssse3")
    }

    /// Four rounds of group `g` (rounds 4g to 4g+3) and the message schedule they feed:
    /// `$e` takes this group's words `$m`, `$next` keeps ABCD for the next group; the later
    /// words are advanced with `$m` (`$m1`, `$m2`, `$m3`: the words of groups g+1, g+2, g+3).
    macro_rules! group {
        ($abcd:ident, $e:ident, $next:ident, $m:ident, $m1:ident, $m2:ident, $m3:ident, $f:literal) => {
            $e = _mm_sha1nexte_epu32($e, $m);
            $next = $abcd;
            $m1 = _mm_sha1msg2_epu32($m1, $m);
            $abcd = _mm_sha1rnds4_epu32::<$f>($abcd, $e);
            $m3 = _mm_sha1msg1_epu32($m3, $m);
            $m2 = _mm_xor_si128($m2, $m);
        };
    }

    /// One block (the SHA extensions' standard sequence, as in Intel's white paper "New
    /// Instructions Supporting the Secure Hash Algorithm on Intel Architecture Processors").
    ///
    /// # Safety
    /// The CPU has the SHA, SSSE3 and SSE4.1 extensions ([`available`]).
    #[target_feature(enable = "sha,ssse3,sse4.1")]
    pub unsafe fn compress(state: &mut [u32; 5], block: &[u8; 64]) {
        // Each 16 bytes byte-swapped as a whole: the four big-endian words, the first in the
        // highest lane, as the instructions take them.
        let swap = _mm_set_epi64x(0x0001_0203_0405_0607, 0x0809_0a0b_0c0d_0e0f);
        let words = block.as_ptr().cast::<__m128i>();
        // SAFETY: `block` is 64 readable bytes, four unaligned 16-byte loads.
        let (mut m0, mut m1, mut m2, mut m3) = unsafe {
            (
                _mm_shuffle_epi8(_mm_loadu_si128(words), swap),
                _mm_shuffle_epi8(_mm_loadu_si128(words.add(1)), swap),
                _mm_shuffle_epi8(_mm_loadu_si128(words.add(2)), swap),
                _mm_shuffle_epi8(_mm_loadu_si128(words.add(3)), swap),
            )
        };
        let mut abcd = _mm_set_epi32(
            state[0] as i32,
            state[1] as i32,
            state[2] as i32,
            state[3] as i32,
        );
        let mut e0 = _mm_set_epi32(state[4] as i32, 0, 0, 0);
        let (abcd_before, e_before) = (abcd, e0);

        // Rounds 0-11: the first words enter the schedule.
        e0 = _mm_add_epi32(e0, m0);
        let mut e1 = abcd;
        abcd = _mm_sha1rnds4_epu32::<0>(abcd, e0);
        e1 = _mm_sha1nexte_epu32(e1, m1);
        e0 = abcd;
        abcd = _mm_sha1rnds4_epu32::<0>(abcd, e1);
        m0 = _mm_sha1msg1_epu32(m0, m1);
        e0 = _mm_sha1nexte_epu32(e0, m2);
        e1 = abcd;
        abcd = _mm_sha1rnds4_epu32::<0>(abcd, e0);
        m1 = _mm_sha1msg1_epu32(m1, m2);
        m0 = _mm_xor_si128(m0, m2);
        // Rounds 12-67, four at a time; the function changes every 20 rounds.
        group!(abcd, e1, e0, m3, m0, m1, m2, 0);
        group!(abcd, e0, e1, m0, m1, m2, m3, 0);
        group!(abcd, e1, e0, m1, m2, m3, m0, 1);
        group!(abcd, e0, e1, m2, m3, m0, m1, 1);
        group!(abcd, e1, e0, m3, m0, m1, m2, 1);
        group!(abcd, e0, e1, m0, m1, m2, m3, 1);
        group!(abcd, e1, e0, m1, m2, m3, m0, 1);
        group!(abcd, e0, e1, m2, m3, m0, m1, 2);
        group!(abcd, e1, e0, m3, m0, m1, m2, 2);
        group!(abcd, e0, e1, m0, m1, m2, m3, 2);
        group!(abcd, e1, e0, m1, m2, m3, m0, 2);
        group!(abcd, e0, e1, m2, m3, m0, m1, 2);
        group!(abcd, e1, e0, m3, m0, m1, m2, 3);
        group!(abcd, e0, e1, m0, m1, m2, m3, 3);
        // Rounds 68-79: only the words still to come are scheduled.
        e1 = _mm_sha1nexte_epu32(e1, m1);
        e0 = abcd;
        m2 = _mm_sha1msg2_epu32(m2, m1);
        abcd = _mm_sha1rnds4_epu32::<3>(abcd, e1);
        m3 = _mm_xor_si128(m3, m1);
        e0 = _mm_sha1nexte_epu32(e0, m2);
        e1 = abcd;
        m3 = _mm_sha1msg2_epu32(m3, m2);
        abcd = _mm_sha1rnds4_epu32::<3>(abcd, e0);
        e1 = _mm_sha1nexte_epu32(e1, m3);
        e0 = abcd;
        abcd = _mm_sha1rnds4_epu32::<3>(abcd, e1);

        e0 = _mm_sha1nexte_epu32(e0, e_before);
        abcd = _mm_add_epi32(abcd, abcd_before);
        state[0] = _mm_extract_epi32::<3>(abcd) as u32;
        state[1] = _mm_extract_epi32::<2>(abcd) as u32;
        state[2] = _mm_extract_epi32::<1>(abcd) as u32;
        state[3] = _mm_extract_epi32::<0>(abcd) as u32;
        state[4] = _mm_extract_epi32::<3>(e0) as u32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// FIPS 180-2 appendix A, and the empty message.
    #[test]
    fn known_digests() {
        let hex = |d: [u8; 20]| d.iter().map(|b| format!("{b:02x}")).collect::<String>();
        assert_eq!(
            hex(digest(&[b"abc"])),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(
            hex(digest(&[
                b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
            ])),
            "84983e441c3bd26ebaae4aa1f95129e5e54670f1"
        );
        assert_eq!(hex(digest(&[])), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    }

    /// The block function in use (the SHA extensions where this machine has them) and the
    /// framing agree with the portable code at every length around the block boundaries, for
    /// any split of the message into parts.
    #[test]
    fn agrees_with_the_portable_code() {
        let message: Vec<u8> = (0..300u32).map(|i| (i * 7 + i / 3) as u8).collect();
        for len in (0..200).chain([255, 256, 257, 300]) {
            let whole = &message[..len];
            let expected = portable(&[whole]);
            assert_eq!(digest(&[whole]), expected, "length {len}");
            let (a, b) = whole.split_at(len / 3);
            assert_eq!(digest(&[a, &[], b]), expected, "length {len} in parts");
            #[cfg(target_arch = "x86_64")]
            if x86::available() {
                // SAFETY: as in `digest`.
                let hw = digest_blocks(&[a, b], |s, block| unsafe { x86::compress(s, block) });
                assert_eq!(hw, expected, "length {len}, SHA extensions");
            }
        }
    }
}
