//! A request head, parsed with httparse under the server's limits, with what the connection
//! needs to know next: keep-alive, how long the body is, whether it asks for a WebSocket
//! upgrade or a `100 Continue`.
//!
//! [`parse_head`] is stateless: the connection keeps the unparsed bytes and calls it again
//! when more arrive. Its answer depends only on the first `head_max` bytes (and for the
//! request line only on the first `request_line_max + 2` bytes after any leading empty
//! lines), so it is the same however the bytes were cut into reads; the `http_request` fuzz
//! target checks that.
//!
//! Statuses (plan D5, D6):
//! - 414: the request line (without its line end) is longer than `request_line_max`, or no
//!   line end came within it; decided before anything past the limit is looked at.
//! - 431: no complete head within `head_max` bytes (so also any single header that does not
//!   fit), or more than [`HEADERS_MAX`] headers.
//! - 505: a well-formed version other than HTTP/1.0 and HTTP/1.1 (`HTTP/` digit `.` digit).
//!   The HTTP/2 connection preface (`PRI * HTTP/2.0`) is answered the same way: 505, in
//!   HTTP/1.1, which a browser never sees (browsers speak HTTP/2 only over TLS with ALPN).
//! - 400: anything else httparse refuses; an HTTP/1.1 request without `Host`, or any request
//!   with two, or with one that is not `uri-host [":" port]`; a bad or conflicting
//!   `Content-Length`; `Content-Length` with `Transfer-Encoding`.
//! - 501: `Transfer-Encoding` (no chunked request bodies).
//! - 413: a `Content-Length` over `body_max`.

use httparse::{EMPTY_HEADER, Header};

/// At most this many request headers (an httparse array on the stack, 2 KiB); more give 431.
pub const HEADERS_MAX: usize = 64;

/// A server's request limits (config `http-request-line-max`, `http-header-size-max`,
/// `http-request-body-max`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// Longest request line, without its CRLF; longer gives 414.
    pub request_line_max: usize,
    /// Longest request head, request line and blank line included; longer gives 431.
    pub head_max: usize,
    /// Largest `Content-Length` accepted; larger gives 413.
    pub body_max: usize,
}

impl Default for HttpLimits {
    fn default() -> HttpLimits {
        HttpLimits {
            request_line_max: 4096,
            head_max: 8192,
            body_max: 65536,
        }
    }
}

/// How the body of a request is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyLen {
    /// No `Content-Length`: no body.
    None,
    /// `Content-Length` (at most `body_max`, checked).
    Length(u64),
}

impl BodyLen {
    /// The number of body bytes that follow the head.
    pub fn bytes(self) -> u64 {
        match self {
            BodyLen::None => 0,
            BodyLen::Length(n) => n,
        }
    }
}

/// A complete, accepted request head. Every slice points into the buffer given to
/// [`parse_head`].
#[derive(Debug, Clone)]
pub struct RequestHead<'b> {
    pub method: &'b str,
    /// The request target as sent (origin-form, absolute-form, `*` …); see `path::clean_path`.
    pub target: &'b str,
    /// The minor version: 0 (HTTP/1.0) or 1 (HTTP/1.1).
    pub version: u8,
    /// The headers in order; only the first `header_count` are set (see [`Self::headers`]).
    pub headers: [Header<'b>; HEADERS_MAX],
    pub header_count: usize,
    /// Bytes of the head, leading empty lines and the blank line included: the body (or the
    /// next pipelined request) starts here.
    pub head_len: usize,
    /// HTTP/1.1 unless `Connection: close`; HTTP/1.0 only with `Connection: keep-alive`.
    pub keep_alive: bool,
    pub body: BodyLen,
    /// An `Upgrade` header with a `websocket` token (the rest is checked by
    /// `protocol::handshake::upgrade_response_for`).
    pub upgrade_websocket: bool,
    /// `Expect: 100-continue` on HTTP/1.1 (HTTP/1.0 clients do not wait for it).
    pub expect_continue: bool,
    /// The `Host` header's value (required on HTTP/1.1, so `Some` there).
    pub host: Option<&'b [u8]>,
}

impl<'b> RequestHead<'b> {
    pub fn headers(&self) -> &[Header<'b>] {
        &self.headers[..self.header_count]
    }

    /// The value of the first header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&'b [u8]> {
        self.headers()
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    }
}

/// What to do with the bytes received so far.
#[derive(Debug)]
// The head lives on the caller's stack for one request; boxing it would allocate per request.
#[allow(clippy::large_enum_variant)]
pub enum HeadStep<'b> {
    /// No complete head yet, and nothing wrong so far.
    NeedMore,
    Complete(RequestHead<'b>),
    /// Answer with this status (and a short reason for the log), then close the connection.
    Refuse(u16, &'static str),
}

/// Parses the request head at the start of `buf` (everything unparsed so far). See the
/// module doc for the statuses. A `Complete` head's `head_len` is at most `head_max`; its body
/// is not looked at.
pub fn parse_head<'b>(buf: &'b [u8], limits: &HttpLimits) -> HeadStep<'b> {
    // Only the first head_max bytes are ever parsed: a head over the limit, or a fault past
    // it, gets the same answer in one read or in many (as the WebSocket handshake does).
    let window = &buf[..buf.len().min(limits.head_max)];
    let start = empty_lines(window);
    // The request line is judged on its first request_line_max + 2 bytes (room for CRLF).
    let cap = start
        .saturating_add(limits.request_line_max)
        .saturating_add(2);
    let scan = &window[..window.len().min(cap)];
    let too_long = match scan[start..].iter().position(|&b| b == b'\n') {
        Some(at) => {
            let end = start + at;
            let cr = usize::from(end > start && scan[end - 1] == b'\r');
            end - start - cr > limits.request_line_max
        }
        None => scan.len() == cap,
    };
    if too_long {
        // A fault within those bytes is still reported as such (400/505), so that the answer
        // does not change when more bytes of the same line arrive.
        let mut no_headers = [EMPTY_HEADER; 0];
        return match httparse::Request::new(&mut no_headers).parse(scan) {
            // (No header slots: the scan ends at the request line's end at the latest.)
            Err(httparse::Error::TooManyHeaders) | Ok(_) => TOO_LONG,
            Err(err) => fault(err, scan, start).unwrap_or(TOO_LONG),
        };
    }

    let mut headers = [EMPTY_HEADER; HEADERS_MAX];
    let mut request = httparse::Request::new(&mut headers);
    let head_len = match request.parse(window) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return partial(buf, limits),
        Err(err) => return fault(err, window, start).unwrap_or_else(|| partial(buf, limits)),
    };
    let (Some(method), Some(target), Some(version)) =
        (request.method, request.path, request.version)
    else {
        return HeadStep::Refuse(400, "malformed request line");
    };
    let header_count = request.headers.len();
    finish(
        RequestHead {
            method,
            target,
            version,
            headers,
            header_count,
            head_len,
            keep_alive: false,
            body: BodyLen::None,
            upgrade_websocket: false,
            expect_continue: false,
            host: None,
        },
        limits,
    )
}

const TOO_LONG: HeadStep<'static> = HeadStep::Refuse(414, "request line too long");

/// No complete head yet: wait, unless the window is full.
fn partial<'b>(buf: &[u8], limits: &HttpLimits) -> HeadStep<'b> {
    if buf.len() >= limits.head_max {
        HeadStep::Refuse(431, "request head too large")
    } else {
        HeadStep::NeedMore
    }
}

/// Where the request line starts: httparse skips empty lines (CRLF or LF) before it.
fn empty_lines(buf: &[u8]) -> usize {
    let mut at = 0;
    loop {
        match &buf[at..] {
            [b'\r', b'\n', ..] => at += 2,
            [b'\n', ..] => at += 1,
            _ => return at,
        }
    }
}

/// The answer to an httparse error in `parsed` (request line at `start`); None when a version
/// is still arriving whose class (505 or 400) is not known yet.
fn fault<'b>(err: httparse::Error, parsed: &[u8], start: usize) -> Option<HeadStep<'b>> {
    match err {
        httparse::Error::TooManyHeaders => {
            Some(HeadStep::Refuse(431, "more than 64 request headers"))
        }
        httparse::Error::Version => version_fault(parsed, start),
        _ => Some(HeadStep::Refuse(400, "malformed request head")),
    }
}

/// httparse accepts only HTTP/1.0 and HTTP/1.1. A version of the form `HTTP/d.d` gets 505;
/// anything else in its place is garbage (400). httparse refuses a version at its first wrong
/// byte, so a prefix of `HTTP/d.d` means "wait".
fn version_fault<'b>(parsed: &[u8], start: usize) -> Option<HeadStep<'b>> {
    // httparse got past the method and the target, each followed by one space.
    let line = &parsed[start..];
    let method_end = line.iter().position(|&b| b == b' ')?;
    let target_len = line[method_end + 1..].iter().position(|&b| b == b' ')?;
    let version = &line[method_end + target_len + 2..];
    let version = &version[..version.len().min(8)];
    let fits = version.iter().enumerate().all(|(i, &b)| match i {
        0..=4 => b == b"HTTP/"[i],
        5 | 7 => b.is_ascii_digit(),
        _ => b == b'.',
    });
    match (fits, version.len()) {
        (true, 8) => Some(HeadStep::Refuse(505, "HTTP version not supported")),
        (true, _) => None,
        (false, _) => Some(HeadStep::Refuse(400, "malformed HTTP version")),
    }
}

/// The comma-separated elements of a header value, trimmed (empty ones kept).
fn elements(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value.split(|&b| b == b',').map(<[u8]>::trim_ascii)
}

fn has_token(value: &[u8], token: &str) -> bool {
    elements(value).any(|e| e.eq_ignore_ascii_case(token.as_bytes()))
}

/// `1*DIGIT`; a value too large for u64 saturates (it is over any limit anyway).
fn content_length(element: &[u8]) -> Option<u64> {
    if element.is_empty() || !element.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(element.iter().fold(0u64, |n, &d| {
        n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    }))
}

/// `uri-host [ ":" port ]` (RFC 9112 3.2, RFC 3986 3.2.2), or empty: an IP literal in
/// brackets, or a reg-name (an IPv4 address is one too) of unreserved characters,
/// sub-delimiters and %-escapes; a port of digits. Anything else gets 400 (RFC 9112 3.2), so
/// that what the firmware reads as the Host is a host.
fn is_host(value: &[u8]) -> bool {
    let value = value.trim_ascii();
    let unreserved_or_sub_delim =
        |b: &u8| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=".contains(b);
    let (host, port) = match value.strip_prefix(b"[") {
        Some(literal) => {
            let Some(end) = literal.iter().position(|&b| b == b']') else {
                return false;
            };
            // IPv6 (with a zone's %25) or IPvFuture: checked for its characters only.
            if !literal[..end]
                .iter()
                .all(|b| unreserved_or_sub_delim(b) || matches!(b, b':' | b'%'))
            {
                return false;
            }
            match &literal[end + 1..] {
                [] => (&[][..], None),
                [b':', port @ ..] => (&[][..], Some(port)),
                _ => return false,
            }
        }
        None => match value.iter().position(|&b| b == b':') {
            Some(colon) => (&value[..colon], Some(&value[colon + 1..])),
            None => (value, None),
        },
    };
    let mut at = 0;
    while at < host.len() {
        if host[at] == b'%' {
            match host.get(at + 1..at + 3) {
                Some(pair) if pair.iter().all(u8::is_ascii_hexdigit) => at += 3,
                _ => return false,
            }
        } else if unreserved_or_sub_delim(&host[at]) {
            at += 1;
        } else {
            return false;
        }
    }
    port.is_none_or(|port| port.iter().all(u8::is_ascii_digit))
}

/// The header-level rules on a head httparse accepted.
fn finish<'b>(mut head: RequestHead<'b>, limits: &HttpLimits) -> HeadStep<'b> {
    let mut close = false;
    let mut keep_alive = false;
    let mut hosts = 0;
    let mut transfer_encoding = false;
    let mut length: Option<u64> = None;
    for header in &head.headers[..head.header_count] {
        let value = header.value;
        let is = |name: &str| header.name.eq_ignore_ascii_case(name);
        if is("Connection") {
            close |= has_token(value, "close");
            keep_alive |= has_token(value, "keep-alive");
        } else if is("Upgrade") {
            head.upgrade_websocket |= has_token(value, "websocket");
        } else if is("Expect") {
            head.expect_continue |= value.trim_ascii().eq_ignore_ascii_case(b"100-continue");
        } else if is("Host") {
            if !is_host(value) {
                return HeadStep::Refuse(400, "bad Host");
            }
            hosts += 1;
            head.host = Some(value);
        } else if is("Transfer-Encoding") {
            transfer_encoding = true;
        } else if is("Content-Length") {
            // Repeats of one value (as headers or as a list) are allowed (RFC 9110 8.6).
            for element in elements(value) {
                match (content_length(element), length) {
                    (None, _) => return HeadStep::Refuse(400, "bad Content-Length"),
                    (Some(n), Some(before)) if n != before => {
                        return HeadStep::Refuse(400, "conflicting Content-Length values");
                    }
                    (Some(n), _) => length = Some(n),
                }
            }
        }
    }
    if head.version == 1 && hosts == 0 {
        return HeadStep::Refuse(400, "HTTP/1.1 request without Host");
    }
    if hosts > 1 {
        return HeadStep::Refuse(400, "more than one Host header");
    }
    if transfer_encoding && length.is_some() {
        return HeadStep::Refuse(400, "both Content-Length and Transfer-Encoding");
    }
    if transfer_encoding {
        return HeadStep::Refuse(501, "Transfer-Encoding is not supported");
    }
    if let Some(n) = length {
        if n > u64::try_from(limits.body_max).unwrap_or(u64::MAX) {
            return HeadStep::Refuse(413, "request body too large");
        }
        head.body = BodyLen::Length(n);
    }
    head.keep_alive = !close && (head.version == 1 || keep_alive);
    head.expect_continue &= head.version == 1;
    HeadStep::Complete(head)
}

#[cfg(test)]
#[path = "request_tests.rs"]
mod tests;
