//! HTTP dates (`Date`, `Last-Modified`) and the conditional-request checks, with the
//! `httpdate` crate: it writes IMF-fixdate and reads all three formats RFC 9110 allows
//! (IMF-fixdate, RFC 850, asctime), with validation. Turning a clock reading or a file's
//! mtime into an [`HttpDate`] is the caller's part (`files::http_date` does it without
//! panicking on times before 1970 or after 9999).

pub use httpdate::HttpDate;

fn parse(value: &[u8]) -> Option<HttpDate> {
    std::str::from_utf8(value).ok()?.trim().parse().ok()
}

/// Whether a file last modified at `last_modified` must be sent in full for
/// `If-Modified-Since: if_modified_since` (else 304). A date that does not parse counts as
/// modified (RFC 9110 13.1.3: the header is then ignored).
pub fn is_modified_since(if_modified_since: &[u8], last_modified: HttpDate) -> bool {
    parse(if_modified_since).is_none_or(|since| last_modified > since)
}

/// Whether `If-Range: if_range` still names the file last modified at `last_modified`, so
/// that its `Range` applies (else the whole file is sent). Only an exact date matches: we send
/// no entity tags, so any other value is a mismatch (RFC 9110 13.1.5).
pub fn if_range_matches(if_range: &[u8], last_modified: HttpDate) -> bool {
    parse(if_range) == Some(last_modified)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MODIFIED: &str = "Sun, 06 Nov 1994 08:49:37 GMT";

    fn date(text: &str) -> HttpDate {
        text.parse().unwrap()
    }

    #[test]
    fn dates_are_written_as_imf_fixdate() {
        assert_eq!(date(MODIFIED).to_string(), MODIFIED);
    }

    #[test]
    fn if_modified_since_in_every_format() {
        let modified = date(MODIFIED);
        for (header, expected) in [
            (MODIFIED, false),
            ("Sunday, 06-Nov-94 08:49:37 GMT", false),
            ("Sun Nov  6 08:49:37 1994", false),
            ("  Sun, 06 Nov 1994 08:49:37 GMT ", false),
            ("Sun, 06 Nov 1994 08:49:38 GMT", false),
            ("Mon, 07 Nov 1994 00:00:00 GMT", false),
            ("Sun, 06 Nov 1994 08:49:36 GMT", true),
            ("Thu, 01 Jan 1970 00:00:00 GMT", true),
            ("garbage", true),
            ("", true),
            ("Sun, 31 Feb 1994 08:49:37 GMT", true),
            ("Sun, 06 Nov 1994 08:49:37 GMT\u{e9}", true),
        ] {
            assert_eq!(
                is_modified_since(header.as_bytes(), modified),
                expected,
                "{header:?}"
            );
        }
        assert!(is_modified_since(b"\xff", modified));
    }

    #[test]
    fn if_range_matches_the_exact_date_only() {
        let modified = date(MODIFIED);
        assert!(if_range_matches(MODIFIED.as_bytes(), modified));
        assert!(if_range_matches(b"Sun Nov  6 08:49:37 1994", modified));
        assert!(!if_range_matches(
            b"Sun, 06 Nov 1994 08:49:38 GMT",
            modified
        ));
        assert!(!if_range_matches(b"\"an-etag\"", modified));
        assert!(!if_range_matches(b"", modified));
    }
}
