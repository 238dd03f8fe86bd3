//! Response heads, written into the connection's outgoing buffer, and the small fixed error
//! answers. Always `HTTP/1.1` on the status line (RFC 9110 2.5: a server sends its own
//! version, also to an HTTP/1.0 client). The server writes `Date`, `Content-Length` and
//! `Connection` itself; [`is_reserved`] names them so that headers from elsewhere (the
//! firmware's) cannot repeat them, and [`is_token`]/[`is_field_value`] keep CR/LF out.

use std::fmt;

/// The interim answer to `Expect: 100-continue`.
pub const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// Content type of the error answers' bodies.
pub const TEXT_PLAIN: &str = "text/plain; charset=utf-8";

/// `write!` into a `Vec<u8>` without `std::io` (this module does no I/O).
struct Out<'a>(&'a mut Vec<u8>);

impl fmt::Write for Out<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

fn put(out: &mut Vec<u8>, args: fmt::Arguments<'_>) {
    // Writing into a Vec cannot fail.
    let _ = fmt::write(&mut Out(out), args);
}

/// The reason phrase of `status` (RFC 9110 section 15); "" for a code it does not name, which
/// a status line allows.
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        203 => "Non-Authoritative Information",
        204 => "No Content",
        205 => "Reset Content",
        206 => "Partial Content",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        421 => "Misdirected Request",
        422 => "Unprocessable Content",
        426 => "Upgrade Required",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

/// Appends a response head to `out`: the status line, `Date: date` (an IMF-fixdate, see
/// `date::HttpDate`), `headers` in order, `Content-Length` when given (leave it out for 1xx,
/// 204 and 304), `Connection: keep-alive` or `close` (with `Upgrade, ` before it when `headers`
/// has an `Upgrade`), and the blank line. `headers` must be
/// valid ([`is_token`], [`is_field_value`]) and not [`is_reserved`].
pub fn head(
    out: &mut Vec<u8>,
    status: u16,
    date: &str,
    content_length: Option<u64>,
    keep_alive: bool,
    headers: &[(&str, &str)],
) {
    debug_assert!(headers.iter().all(|(name, value)| is_token(name)
        && is_field_value(value.as_bytes())
        && !is_reserved(name)));
    put(
        out,
        format_args!("HTTP/1.1 {status} {}\r\nDate: {date}\r\n", reason(status)),
    );
    for (name, value) in headers {
        put(out, format_args!("{name}: {value}\r\n"));
    }
    if let Some(length) = content_length {
        put(out, format_args!("Content-Length: {length}\r\n"));
    }
    // An `Upgrade` header needs the `upgrade` connection option beside it (RFC 9110 7.8).
    let upgrade = headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("Upgrade"));
    let connection = match (upgrade, keep_alive) {
        (false, true) => "keep-alive",
        (false, false) => "close",
        (true, true) => "Upgrade, keep-alive",
        (true, false) => "Upgrade, close",
    };
    put(out, format_args!("Connection: {connection}\r\n\r\n"));
}

/// Appends a small error answer (400, 404, 405, 408, 413, 414, 426, 431, 501, 503, 505 …): the
/// head with `headers` (e.g. `Allow`, `Upgrade`, `Retry-After`) and a `text/plain` body
/// "404 Not Found\n", which is left out (its length still announced) when `with_body` is false,
/// the answer to a HEAD request.
pub fn error(
    out: &mut Vec<u8>,
    status: u16,
    date: &str,
    keep_alive: bool,
    headers: &[(&str, &str)],
    with_body: bool,
) {
    let mut all: Vec<(&str, &str)> = Vec::with_capacity(headers.len() + 2);
    all.push(("Content-Type", TEXT_PLAIN));
    all.push(("X-Content-Type-Options", "nosniff"));
    all.extend_from_slice(headers);
    let body = format!("{status} {}\n", reason(status));
    head(out, status, date, Some(body.len() as u64), keep_alive, &all);
    if with_body {
        out.extend_from_slice(body.as_bytes());
    }
}

/// Whether `name` is a header name: a non-empty token (RFC 9110 5.6.2).
pub fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Whether `value` may be a header value: visible characters, spaces, tabs and bytes from
/// 0x80 up; no CR, LF, NUL or other control characters (RFC 9110 5.5).
pub fn is_field_value(value: &[u8]) -> bool {
    value
        .iter()
        .all(|&b| b == b'\t' || b == b' ' || b.is_ascii_graphic() || b >= 0x80)
}

/// The headers the server writes itself and nobody else may add.
pub fn is_reserved(name: &str) -> bool {
    ["Content-Length", "Transfer-Encoding", "Connection", "Date"]
        .iter()
        .any(|reserved| reserved.eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DATE: &str = "Sun, 06 Nov 1994 08:49:37 GMT";

    /// Parses what was written back (with httparse): status, headers, body.
    fn read(bytes: &[u8]) -> (u16, Vec<(String, String)>, Vec<u8>) {
        let mut headers = [httparse::EMPTY_HEADER; 16];
        let mut response = httparse::Response::new(&mut headers);
        let httparse::Status::Complete(len) = response.parse(bytes).unwrap() else {
            panic!("incomplete: {:?}", String::from_utf8_lossy(bytes));
        };
        let headers = response
            .headers
            .iter()
            .map(|h| {
                let value = String::from_utf8(h.value.to_vec()).unwrap();
                (h.name.to_string(), value)
            })
            .collect();
        (response.code.unwrap(), headers, bytes[len..].to_vec())
    }

    fn value<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn a_head_has_status_date_length_connection_and_the_headers_in_order() {
        let mut out = Vec::new();
        let headers = [("Content-Type", "text/html"), ("Accept-Ranges", "bytes")];
        head(&mut out, 200, DATE, Some(1234), true, &headers);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 200 OK\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\nContent-Type: text/html\r\nAccept-Ranges: bytes\r\nContent-Length: 1234\r\nConnection: keep-alive\r\n\r\n"
        );
        let mut out = b"before".to_vec();
        head(&mut out, 304, DATE, None, false, &[]);
        let (status, headers, body) = read(&out[6..]);
        assert_eq!(status, 304);
        assert_eq!(value(&headers, "Connection"), Some("close"));
        assert_eq!(value(&headers, "Content-Length"), None);
        assert!(body.is_empty());
        assert!(out.starts_with(b"beforeHTTP/1.1 304 Not Modified\r\n"));
    }

    #[test]
    fn error_answers_are_complete_with_a_short_text_body() {
        for status in [400, 404, 405, 408, 413, 414, 416, 426, 431, 501, 503, 505] {
            let mut out = Vec::new();
            error(&mut out, status, DATE, false, &[], true);
            let (code, headers, body) = read(&out);
            assert_eq!(code, status);
            let text = String::from_utf8(body.clone()).unwrap();
            assert_eq!(text, format!("{status} {}\n", reason(status)));
            assert!(!reason(status).is_empty());
            let length = value(&headers, "Content-Length").unwrap();
            assert_eq!(length, body.len().to_string());
            assert_eq!(value(&headers, "Content-Type"), Some(TEXT_PLAIN));
            assert_eq!(value(&headers, "Date"), Some(DATE));
            assert_eq!(value(&headers, "Connection"), Some("close"));
        }
    }

    #[test]
    fn error_answers_carry_their_extra_headers_and_skip_the_body_for_head() {
        let mut out = Vec::new();
        error(&mut out, 405, DATE, true, &[("Allow", "GET, HEAD")], false);
        let (code, headers, body) = read(&out);
        assert_eq!(code, 405);
        assert_eq!(value(&headers, "Allow"), Some("GET, HEAD"));
        assert_eq!(value(&headers, "Connection"), Some("keep-alive"));
        assert_eq!(value(&headers, "Content-Length"), Some("23"));
        assert!(body.is_empty());
    }

    #[test]
    fn unknown_codes_have_an_empty_reason() {
        let mut out = Vec::new();
        head(&mut out, 299, DATE, Some(0), true, &[]);
        assert!(out.starts_with(b"HTTP/1.1 299 \r\n"));
        assert_eq!(read(&out).0, 299);
        assert_eq!(CONTINUE, b"HTTP/1.1 100 Continue\r\n\r\n");
    }

    #[test]
    fn header_checks() {
        for name in ["X-Thing", "a", "WWW-Authenticate", "x!#$%&'*+-.^_`|~9"] {
            assert!(is_token(name), "{name}");
        }
        for name in ["", "X Thing", "X:", "X\r\n", "\u{e9}", "(x)", "a/b"] {
            assert!(!is_token(name), "{name:?}");
        }
        assert!(is_field_value(
            b"Basic realm=\"cam\", charset=\"UTF-8\"\t \x80\xff"
        ));
        assert!(is_field_value(b""));
        for value in [
            &b"a\r\nSet-Cookie: x"[..],
            b"a\nb",
            b"a\rb",
            b"a\0b",
            b"\x7f",
            b"\x1b",
        ] {
            assert!(!is_field_value(value), "{value:?}");
        }
        for name in ["content-length", "Transfer-Encoding", "CONNECTION", "date"] {
            assert!(is_reserved(name), "{name}");
        }
        assert!(!is_reserved("Content-Type"));
    }
}
