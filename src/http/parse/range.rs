//! A `Range` request header (RFC 9110 section 14.2) against a file of known length. One
//! range only: several ranges would need a `multipart/byteranges` answer, and RFC 9110 lets a
//! server ignore `Range`, so several ranges, or anything malformed, get the full file.

/// What to send for a `Range` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeAnswer {
    /// 200 with the whole file (no range, several, or not understood).
    Full,
    /// 206 with `Content-Range: bytes start-end_inclusive/len`.
    Partial { start: u64, end_inclusive: u64 },
    /// 416 with `Content-Range: bytes */len`.
    Unsatisfiable,
}

/// `bytes=a-b`, `bytes=a-` or `bytes=-n` (suffix), against `len` bytes. A start at or past
/// the end is unsatisfiable, as is a suffix of 0; an end past the file is cut to it; a suffix
/// longer than the file is the whole file. On an empty file a suffix gets `Full` (a 206 of no
/// bytes cannot be written).
pub fn range(header: &[u8], len: u64) -> RangeAnswer {
    let header = header.trim_ascii();
    let Some(unit) = header.get(..6) else {
        return RangeAnswer::Full;
    };
    if !unit.eq_ignore_ascii_case(b"bytes=") {
        return RangeAnswer::Full;
    }
    let spec = header[6..].trim_ascii();
    if spec.contains(&b',') {
        return RangeAnswer::Full;
    }
    let Some(dash) = spec.iter().position(|&b| b == b'-') else {
        return RangeAnswer::Full;
    };
    let (first, last) = (&spec[..dash], &spec[dash + 1..]);
    match (number(first), number(last)) {
        // A suffix: the last n bytes.
        (None, Some(n)) if first.is_empty() => {
            if n == 0 {
                RangeAnswer::Unsatisfiable
            } else if len == 0 {
                RangeAnswer::Full
            } else {
                RangeAnswer::Partial {
                    start: len.saturating_sub(n),
                    end_inclusive: len - 1,
                }
            }
        }
        (Some(start), None) if last.is_empty() => from(start, len.saturating_sub(1), len),
        (Some(start), Some(end)) if start <= end => {
            from(start, end.min(len.saturating_sub(1)), len)
        }
        _ => RangeAnswer::Full,
    }
}

/// `start..=end` of `len` bytes, with `end` already cut to the file (valid when start < len).
fn from(start: u64, end: u64, len: u64) -> RangeAnswer {
    if start >= len {
        RangeAnswer::Unsatisfiable
    } else {
        RangeAnswer::Partial {
            start,
            end_inclusive: end,
        }
    }
}

/// `1*DIGIT`; too large for u64 saturates (past any file's end).
fn number(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(digits.iter().fold(0u64, |n, &d| {
        n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partial(start: u64, end_inclusive: u64) -> RangeAnswer {
        RangeAnswer::Partial {
            start,
            end_inclusive,
        }
    }

    #[test]
    fn single_ranges() {
        let len = 1000;
        for (header, answer) in [
            ("bytes=0-99", partial(0, 99)),
            ("bytes=100-", partial(100, 999)),
            ("bytes=-100", partial(900, 999)),
            ("bytes=0-0", partial(0, 0)),
            ("bytes=999-", partial(999, 999)),
            ("bytes=990-5000", partial(990, 999)),
            ("bytes=-5000", partial(0, 999)),
            ("bytes=0-99999999999999999999999", partial(0, 999)),
            ("Bytes=5-9", partial(5, 9)),
            (" bytes= 5-9 ", partial(5, 9)),
        ] {
            assert_eq!(range(header.as_bytes(), len), answer, "{header}");
        }
    }

    #[test]
    fn past_the_end_is_unsatisfiable() {
        for header in [
            "bytes=1000-",
            "bytes=1000-2000",
            "bytes=5000-6000",
            "bytes=-0",
            "bytes=99999999999999999999999-",
        ] {
            assert_eq!(
                range(header.as_bytes(), 1000),
                RangeAnswer::Unsatisfiable,
                "{header}"
            );
        }
        assert_eq!(range(b"bytes=0-", 0), RangeAnswer::Unsatisfiable);
        assert_eq!(range(b"bytes=-5", 0), RangeAnswer::Full);
    }

    #[test]
    fn several_ranges_and_junk_get_the_whole_file() {
        for header in [
            "bytes=0-1,5-6",
            "bytes=0-1, 5-6",
            "bytes=0-99,",
            "bytes=9-5",
            "bytes=",
            "bytes=-",
            "bytes=a-b",
            "bytes=1-2-3",
            "bytes=+1-2",
            "bytes=0x1-2",
            "bytes 0-1",
            "items=0-1",
            "",
            "bytes",
            "bytes=1 - 2",
            "bytes=\u{e9}-1",
        ] {
            assert_eq!(
                range(header.as_bytes(), 1000),
                RangeAnswer::Full,
                "{header:?}"
            );
        }
    }
}
