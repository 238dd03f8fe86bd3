//! The UTF-8 check of received text that is not all ASCII (all-ASCII text is recognised while
//! it is unmasked, [`super::mask`]). One place, so the reader says what it needs to know and
//! not how it is found out.

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
    match std::str::from_utf8(text) {
        Ok(_) => Utf8::Valid,
        Err(err) if err.error_len().is_some() => Utf8::Invalid,
        Err(err) => Utf8::Incomplete(err.valid_up_to()),
    }
}

/// Whether `text` is whole, valid UTF-8 (a message in one frame).
pub fn is_valid(text: &[u8]) -> bool {
    check(text) == Utf8::Valid
}
