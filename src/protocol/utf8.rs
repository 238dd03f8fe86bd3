//! The UTF-8 check of text that is not all ASCII: received text (all-ASCII text is recognised
//! while it is unmasked, [`super::mask`]), and text an application sends that is neither ASCII
//! nor the message it answers.
//!
//! `simdutf8` checks 64 bytes a step with NEON on aarch64, and with AVX2 or SSE4.2 on x86_64
//! (picked at run time); elsewhere, armv7 without NEON among them, it is std's check. On
//! mostly multi-byte text that is about 0.8 instructions a byte on x86_64 instead of std's 11
//! (docs/BENCHMARKS.md), for about 1 KiB of aarch64 flash and none on armv7. Its `compat` API
//! tells, as std does, where valid text ends and whether what follows may still be completed,
//! which the check of a message that arrives in fragments needs.

/// What a check of text found.
#[derive(Debug, PartialEq, Eq)]
pub enum Utf8 {
    Valid,
    /// Valid up to here; the rest is the start of a sequence that more bytes may complete.
    Incomplete(usize),
    /// Not UTF-8, whatever follows.
    Invalid,
}

/// Checks `text`, which may end inside a sequence (a fragment of a message).
pub fn check(text: &[u8]) -> Utf8 {
    match simdutf8::compat::from_utf8(text) {
        Ok(_) => Utf8::Valid,
        Err(err) if err.error_len().is_some() => Utf8::Invalid,
        Err(err) => Utf8::Incomplete(err.valid_up_to()),
    }
}

/// Whether `text` is whole, valid UTF-8 (a message in one frame).
pub fn is_valid(text: &[u8]) -> bool {
    check(text) == Utf8::Valid
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Agrees with std on every cut of text mixing one- to four-byte characters, past the
    /// 64-byte steps, with an invalid byte put in at every place.
    #[test]
    fn agrees_with_std_on_cuts_and_invalid_bytes() {
        let text = "ascii é 日本語 \u{1F600} ünïcödé ✓ ".repeat(5);
        let text = text.as_bytes();
        let std_says = |bytes: &[u8]| match std::str::from_utf8(bytes) {
            Ok(_) => Utf8::Valid,
            Err(err) if err.error_len().is_some() => Utf8::Invalid,
            Err(err) => Utf8::Incomplete(err.valid_up_to()),
        };
        for start in 0..8 {
            for end in start..text.len() {
                let cut = &text[start..end];
                assert_eq!(check(cut), std_says(cut), "{start}..{end}");
            }
        }
        for at in 0..text.len() {
            for bad in [0x80, 0xC0, 0xF5, 0xFF] {
                let mut broken = text.to_vec();
                broken[at] = bad;
                assert_eq!(check(&broken), std_says(&broken), "{bad:#x} at {at}");
                assert_eq!(is_valid(&broken), std_says(&broken) == Utf8::Valid);
            }
        }
        // What is not UTF-8 though each byte may start or continue a sequence: a surrogate, an
        // overlong form, a code point past U+10FFFF; at each place of a long text.
        for wrong in [
            &b"\xED\xA0\x80"[..],
            b"\xC0\xAF",
            b"\xE0\x80\xAF",
            b"\xF4\x90\x80\x80",
        ] {
            for at in [0, 1, 30, 63, 64, 65, 100] {
                let broken = [&text[..at], wrong, &text[at..]].concat();
                if std::str::from_utf8(&text[..at]).is_ok() {
                    assert_eq!(check(&broken), Utf8::Invalid, "{wrong:x?} at {at}");
                }
                assert_eq!(check(&broken), std_says(&broken), "{wrong:x?} at {at}");
            }
        }
    }
}
