//! The opening handshake (RFC 6455 section 4) on both sides, parsed with httparse.
//!
//! Both halves are byte-fed state machines: they are given whatever arrived and answer "need
//! more", "done" (with any bytes that followed the HTTP head) or a refusal. The same code serves
//! the event loop and a caller blocked in `wsOpenConnection`; [`upgrade_response`] answers a
//! request some other code (an HTTP server) has already parsed.

/// Largest HTTP head accepted; a larger one is refused (431 on a server).
const HEAD_MAX: usize = 8192;
const HEADERS_MAX: usize = 32;

fn header_has_token(value: &[u8], token: &str) -> bool {
    // Most requests send the token alone (`Upgrade: websocket`, `Connection: Upgrade`).
    value.eq_ignore_ascii_case(token.as_bytes())
        || value
            .split(|b| *b == b',')
            .any(|part| part.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
}

fn split_tokens(value: &[u8]) -> impl Iterator<Item = &str> {
    value
        .split(|b| *b == b',')
        .filter_map(|part| std::str::from_utf8(part.trim_ascii()).ok())
        .filter(|s| !s.is_empty())
}

/// The `101` answer to an upgrade request: the fixed head, the `Sec-WebSocket-Accept` value
/// and the agreed subprotocol. Kept as its parts (no allocation); [`Answer::parts`] gives the
/// bytes to write one after the other.
#[derive(Debug, Clone, Copy)]
pub struct Answer<'p> {
    accept: [u8; super::key::ACCEPT_LEN],
    /// The agreed subprotocol (one of the server's list).
    pub protocol: Option<&'p str>,
}

impl Answer<'_> {
    /// The response, in the order it is written: status line and headers up to the accept
    /// value, the value, the subprotocol header (empty without one), and the end of the head.
    pub fn parts(&self) -> [&[u8]; 5] {
        let (name, protocol): (&[u8], &[u8]) = match self.protocol {
            Some(protocol) => (b"\r\nSec-WebSocket-Protocol: ", protocol.as_bytes()),
            None => (b"", b""),
        };
        [
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ",
            &self.accept,
            name,
            protocol,
            b"\r\n\r\n",
        ]
    }

    /// The whole response in one buffer.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.parts().concat()
    }
}

/// What a server answers and what follows a successful upgrade, borrowed from the bytes fed
/// and the server's subprotocol list: the connection copies only what it keeps.
pub struct Accepted<'a> {
    pub answer: Answer<'a>,
    /// The request target as sent (path and query, e.g. `/chat?room=1`).
    pub target: &'a str,
    /// The request head as received, up to and including its empty line (without `leftover`).
    pub head: &'a [u8],
    /// Bytes received after the request head (a client may send frames right away).
    pub leftover: &'a [u8],
}

/// A refused upgrade: the HTTP response to send before closing, and why (for the log).
pub struct Refused {
    pub response: Vec<u8>,
    pub reason: String,
}

pub enum ServerStep<'a> {
    NeedMore,
    Accept(Accepted<'a>),
    Refuse(Refused),
}

/// A server's half. It holds bytes only while a request head is incomplete: a head that
/// arrives in one read is parsed where it lies and never copied.
#[derive(Default)]
pub struct ServerHandshake {
    head: Vec<u8>,
}

fn refuse(status: &str, reason: impl Into<String>, extra_header: &str) -> ServerStep<'static> {
    ServerStep::Refuse(refusal(status, reason, extra_header))
}

fn refusal(status: &str, reason: impl Into<String>, extra_header: &str) -> Refused {
    // A 426 names the protocol to switch to (RFC 7231 section 6.5.15), and a sender of
    // `Upgrade` lists it in `Connection` (RFC 7230 section 6.7); every refusal closes.
    let (upgrade, connection) = if status.starts_with("426") {
        ("Upgrade: websocket\r\n", "Upgrade, close")
    } else {
        ("", "close")
    };
    let body = format!("{status}\n");
    Refused {
        response: format!(
            "HTTP/1.1 {status}\r\n{upgrade}{extra_header}Content-Type: text/plain\r\nContent-Length: {}\r\nConnection: {connection}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
        reason: reason.into(),
    }
}

impl ServerHandshake {
    /// Feeds received bytes; `accepted_protocols` is the server's list in preference order.
    /// What an acceptance borrows lives in `data` when the head came whole with it, else in
    /// this handshake.
    pub fn feed<'a>(
        &'a mut self,
        data: &'a [u8],
        accepted_protocols: &'a [String],
    ) -> ServerStep<'a> {
        if self.head.is_empty() {
            let step = parse_request(data, accepted_protocols);
            // Kept unless accepted: more bytes extend an incomplete head, and a refused one
            // stays refused however much follows.
            if !matches!(step, ServerStep::Accept(_)) {
                self.head.extend_from_slice(data);
            }
            return step;
        }
        self.head.extend_from_slice(data);
        parse_request(&self.head, accepted_protocols)
    }
}

/// The outcome for everything received so far, `bytes`.
fn parse_request<'a>(bytes: &'a [u8], accepted_protocols: &'a [String]) -> ServerStep<'a> {
    let mut headers = [httparse::EMPTY_HEADER; HEADERS_MAX];
    let mut request = httparse::Request::new(&mut headers);
    // Only the first HEAD_MAX bytes are ever parsed: the outcome of a head over the limit
    // (431), and of a fault past it, must not depend on how the bytes arrived.
    let window = &bytes[..bytes.len().min(HEAD_MAX)];
    let head_len = match request.parse(window) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if bytes.len() >= HEAD_MAX => {
            return refuse(
                "431 Request Header Fields Too Large",
                "request head too large",
                "",
            );
        }
        Ok(httparse::Status::Partial) => return ServerStep::NeedMore,
        Err(httparse::Error::TooManyHeaders) => {
            return refuse(
                "431 Request Header Fields Too Large",
                "too many request headers",
                "",
            );
        }
        Err(err) => {
            return refuse(
                "400 Bad Request",
                format!("malformed HTTP request: {err}"),
                "",
            );
        }
    };
    let answer = match upgrade_answer(
        request.method.unwrap_or(""),
        request.version.unwrap_or(u8::MAX),
        request.headers,
        accepted_protocols,
    ) {
        Ok(answer) => answer,
        Err(refused) => return ServerStep::Refuse(refused),
    };
    ServerStep::Accept(Accepted {
        answer,
        target: request.path.unwrap_or_default(),
        head: &bytes[..head_len],
        leftover: &bytes[head_len..],
    })
}

/// The answer to an upgrade request that has been parsed: the `101` response and the agreed
/// subprotocol (the first of `accepted_protocols`, in the server's order, that the client
/// offers), or the refusal to send instead.
pub fn upgrade_response(
    request: &httparse::Request<'_, '_>,
    accepted_protocols: &[String],
) -> Result<(Vec<u8>, Option<String>), Refused> {
    upgrade_response_for(
        request.method.unwrap_or(""),
        request.version.unwrap_or(u8::MAX),
        request.headers,
        accepted_protocols,
    )
}

/// [`upgrade_response`] for a request head kept as its parts (the HTTP server's parsed head):
/// the method, the minor version (1 for HTTP/1.1) and the headers.
pub fn upgrade_response_for(
    method: &str,
    version: u8,
    headers: &[httparse::Header<'_>],
    accepted_protocols: &[String],
) -> Result<(Vec<u8>, Option<String>), Refused> {
    let answer = upgrade_answer(method, version, headers, accepted_protocols)?;
    Ok((answer.to_bytes(), answer.protocol.map(str::to_string)))
}

/// The headers an upgrade request, or a server's `101` answer to one, is checked by, found in
/// one pass. `Upgrade` and `Connection` are lists that may be split over several lines (RFC
/// 7230 section 3.2.2), so every line counts. Headers that must come once are counted: in a
/// request `Host`, `Sec-WebSocket-Key` and `Sec-WebSocket-Version` (RFC 7230 section 5.4, RFC
/// 6455 sections 4.2.1, 11.3.1 and 11.3.5); in an answer `Sec-WebSocket-Accept` and
/// `Sec-WebSocket-Protocol` (section 11.3), and any `Sec-WebSocket-Extensions` line names an
/// extension the client did not offer (it offers none).
#[derive(Default)]
struct HandshakeHeaders<'h> {
    /// Some `Upgrade` line lists `websocket`.
    upgrade: bool,
    /// Some `Connection` line lists `upgrade`.
    connection: bool,
    hosts: u8,
    versions: u8,
    keys: u8,
    /// The last line's value (empty without one): with more than one line it is refused.
    version: &'h [u8],
    key: &'h [u8],
    accepts: u8,
    accept: &'h [u8],
    protocols: u8,
    /// The last `Sec-WebSocket-Protocol` line's value (an answer has at most one).
    protocol: Option<&'h [u8]>,
    extensions: bool,
}

impl<'h> HandshakeHeaders<'h> {
    fn find(headers: &[httparse::Header<'h>]) -> HandshakeHeaders<'h> {
        let mut found = HandshakeHeaders::default();
        for header in headers {
            let name = header.name.as_bytes();
            // The length first: most headers are passed over without a comparison. The counts
            // cannot overflow: a head parsed here, or by the HTTP server, has at most 64 headers.
            match name.len() {
                4 if name.eq_ignore_ascii_case(b"Host") => found.hosts += 1,
                7 if name.eq_ignore_ascii_case(b"Upgrade") => {
                    found.upgrade = found.upgrade || header_has_token(header.value, "websocket");
                }
                10 if name.eq_ignore_ascii_case(b"Connection") => {
                    found.connection =
                        found.connection || header_has_token(header.value, "upgrade");
                }
                17 if name.eq_ignore_ascii_case(b"Sec-WebSocket-Key") => {
                    found.keys += 1;
                    found.key = header.value;
                }
                21 if name.eq_ignore_ascii_case(b"Sec-WebSocket-Version") => {
                    found.versions += 1;
                    found.version = header.value;
                }
                20 if name.eq_ignore_ascii_case(b"Sec-WebSocket-Accept") => {
                    found.accepts += 1;
                    found.accept = header.value;
                }
                22 if name.eq_ignore_ascii_case(b"Sec-WebSocket-Protocol") => {
                    found.protocols += 1;
                    found.protocol = Some(header.value);
                }
                24 if name.eq_ignore_ascii_case(b"Sec-WebSocket-Extensions") => {
                    found.extensions = true;
                }
                _ => {}
            }
        }
        found
    }

    /// The header that must come once and came more often, if any.
    fn repeated(&self) -> Option<&'static str> {
        if self.hosts > 1 {
            Some("Host")
        } else if self.keys > 1 {
            Some("Sec-WebSocket-Key")
        } else if self.versions > 1 {
            Some("Sec-WebSocket-Version")
        } else {
            None
        }
    }
}

/// Which bytes are in the base64 alphabet (RFC 4648 section 4): a table, so the key's check
/// is a load per character on every connection's path.
static BASE64_ALPHABET: [bool; 256] = {
    let mut table = [false; 256];
    let mut byte = 0;
    while byte < 256 {
        let b = byte as u8;
        table[byte] = b.is_ascii_alphanumeric() || b == b'+' || b == b'/';
        byte += 1;
    }
    table
};

/// Whether `key` is the base64 encoding of 16 bytes (RFC 6455 section 4.2.1 item 5): 22
/// characters of the base64 alphabet, then `==`. The 22nd character carries the last 2 bits
/// of the 16th byte and 4 bits past the data, which must be zero: it is one of `A`, `Q`, `g`,
/// `w`.
fn is_websocket_key(key: &[u8]) -> bool {
    let Ok::<&[u8; 24], _>(key) = key.try_into() else {
        return false;
    };
    let (digits, padding) = key.split_at(22);
    // Without a branch per character: the length is fixed, so this unrolls.
    let alphabet = digits[..21]
        .iter()
        .fold(true, |ok, b| ok & BASE64_ALPHABET[usize::from(*b)]);
    alphabet && matches!(digits[21], b'A' | b'Q' | b'g' | b'w') && padding == b"=="
}

/// The checks of RFC 6455 section 4.2.1 and the answer, or the refusal.
fn upgrade_answer<'p>(
    method: &str,
    version: u8,
    headers: &[httparse::Header<'_>],
    accepted_protocols: &'p [String],
) -> Result<Answer<'p>, Refused> {
    if method != "GET" {
        return Err(refusal(
            "405 Method Not Allowed",
            "not a GET request",
            "Allow: GET\r\n",
        ));
    }
    if version != 1 {
        return Err(refusal("400 Bad Request", "not HTTP/1.1", ""));
    }
    let found = HandshakeHeaders::find(headers);
    if found.hosts == 0 {
        return Err(refusal("400 Bad Request", "no Host header", ""));
    }
    if let Some(name) = found.repeated() {
        return Err(refusal(
            "400 Bad Request",
            format!("more than one {name} header"),
            "",
        ));
    }
    if !found.upgrade {
        return Err(refusal(
            "426 Upgrade Required",
            "no 'Upgrade: websocket' header",
            "",
        ));
    }
    if !found.connection {
        return Err(refusal(
            "400 Bad Request",
            "no 'Connection: Upgrade' header",
            "",
        ));
    }
    // No version line leaves the value empty: also refused with the version to send.
    if found.version.trim_ascii() != b"13" {
        return Err(refusal(
            "426 Upgrade Required",
            "unsupported Sec-WebSocket-Version",
            "Sec-WebSocket-Version: 13\r\n",
        ));
    }
    if found.keys == 0 {
        return Err(refusal(
            "400 Bad Request",
            "no Sec-WebSocket-Key header",
            "",
        ));
    }
    let key = found.key.trim_ascii();
    if !is_websocket_key(key) {
        return Err(refusal(
            "400 Bad Request",
            "Sec-WebSocket-Key is not the base64 encoding of 16 bytes",
            "",
        ));
    }
    // The server's preference order decides; the client's offer may span several lines.
    let offered = |protocol: &str| {
        headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case("Sec-WebSocket-Protocol"))
            .flat_map(|h| split_tokens(h.value))
            .any(|token| token == protocol)
    };
    let protocol = accepted_protocols
        .iter()
        .find(|p| offered(p))
        .map(String::as_str);
    Ok(Answer {
        accept: super::key::derive_accept_key(key),
        protocol,
    })
}

/// The path of a request target (`/a/b?x=1` → `/a/b`), as sent (not percent-decoded), and its
/// query without the `?` (empty when there is none). An absolute-form target
/// (`http://host/a?x=1`) gives the path after its authority (`/` when it has none).
pub fn split_target(target: &str) -> (&str, &str) {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    if path.starts_with('/') {
        return (path, query);
    }
    let Some((_, after_scheme)) = path.split_once("://") else {
        return (path, query);
    };
    match after_scheme.find('/') {
        Some(at) => (&after_scheme[at..], query),
        None => ("/", query),
    }
}

/// The values of the header lines called `name` (any case) in an HTTP head that has been
/// parsed already, in order, with surrounding blanks removed. The request line (and any empty
/// lines before it, which httparse allows) is skipped; the scan ends at the empty line.
pub fn header_values<'h>(head: &'h [u8], name: &str) -> impl Iterator<Item = &'h [u8]> {
    head.split(|b| *b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
        .skip_while(|line| line.is_empty())
        .skip(1)
        .take_while(|line| !line.is_empty())
        .filter_map(move |line| {
            let colon = line.iter().position(|b| *b == b':')?;
            line[..colon]
                .eq_ignore_ascii_case(name.as_bytes())
                .then(|| line[colon + 1..].trim_ascii())
        })
}

/// The client half: the request to send, then the response check.
pub struct ClientHandshake {
    request: Vec<u8>,
    accept_key: [u8; super::key::ACCEPT_LEN],
    offered: Vec<String>,
    head: Vec<u8>,
}

/// Why a client does not accept the server's answer (the caller reports it as `EPROTO`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeRefused(pub String);

pub enum ClientStep {
    NeedMore,
    /// Upgraded: the agreed protocol and the bytes that followed the response head.
    Open {
        protocol: Option<String>,
        leftover: Vec<u8>,
    },
}

impl ClientHandshake {
    /// `resource` is the path and query of the request line, `host` the `Host` header's value,
    /// `nonce` 16 unpredictable bytes (the caller's random source: the core has none) that
    /// become the `Sec-WebSocket-Key`.
    pub fn new(
        resource: &str,
        host: &str,
        protocols: &[String],
        nonce: [u8; 16],
    ) -> ClientHandshake {
        let key = super::key::encode_key(nonce);
        let mut request = format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n",
            resource, host
        );
        if !protocols.is_empty() {
            request.push_str(&format!(
                "Sec-WebSocket-Protocol: {}\r\n",
                protocols.join(", ")
            ));
        }
        request.push_str("\r\n");
        ClientHandshake {
            request: request.into_bytes(),
            accept_key: super::key::derive_accept_key(key.as_bytes()),
            offered: protocols.to_vec(),
            head: Vec::new(),
        }
    }

    pub fn request(&self) -> &[u8] {
        &self.request
    }

    /// The request target (path and query) this handshake asks for.
    pub fn target(&self) -> &str {
        let line = self
            .request
            .split(|b| *b == b'\r')
            .next()
            .unwrap_or_default();
        std::str::from_utf8(line)
            .ok()
            .and_then(|line| line.strip_prefix("GET "))
            .and_then(|rest| rest.strip_suffix(" HTTP/1.1"))
            .unwrap_or_default()
    }

    /// Feeds received bytes. An error says why the server's answer is not an upgrade.
    pub fn feed(&mut self, data: &[u8]) -> Result<ClientStep, HandshakeRefused> {
        self.head.extend_from_slice(data);
        let mut headers = [httparse::EMPTY_HEADER; HEADERS_MAX];
        let mut response = httparse::Response::new(&mut headers);
        let refused = |why: String| HandshakeRefused(format!("WebSocket handshake refused: {why}"));
        // As on the server: only the first HEAD_MAX bytes are parsed, so the outcome does not
        // depend on how the bytes arrived.
        let window = &self.head[..self.head.len().min(HEAD_MAX)];
        let head_len = match response.parse(window) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) if self.head.len() >= HEAD_MAX => {
                return Err(refused("response head too large".into()));
            }
            Ok(httparse::Status::Partial) => return Ok(ClientStep::NeedMore),
            Err(err) => return Err(refused(format!("malformed HTTP response: {err}"))),
        };
        if response.code != Some(101) {
            return Err(refused(format!(
                "server answered {} {}",
                response.code.unwrap_or(0),
                response.reason.unwrap_or("")
            )));
        }
        let found = HandshakeHeaders::find(response.headers);
        if !found.upgrade {
            return Err(refused("no 'Upgrade: websocket' in the response".into()));
        }
        if !found.connection {
            return Err(refused("no 'Connection: Upgrade' in the response".into()));
        }
        // Both may come once only (RFC 6455 section 11.3): a second line is refused, not
        // passed over, whatever the first said.
        if found.accepts > 1 {
            return Err(refused("more than one Sec-WebSocket-Accept".into()));
        }
        if found.accept.trim_ascii() != &self.accept_key[..] {
            return Err(refused("wrong Sec-WebSocket-Accept".into()));
        }
        if found.protocols > 1 {
            return Err(refused("more than one Sec-WebSocket-Protocol".into()));
        }
        let protocol = match found.protocol {
            None => None,
            Some(value) => {
                let chosen = std::str::from_utf8(value.trim_ascii()).unwrap_or_default();
                if !self.offered.iter().any(|p| p == chosen) {
                    return Err(refused(format!(
                        "server chose subprotocol '{chosen}' that was not offered"
                    )));
                }
                Some(chosen.to_string())
            }
        };
        if found.extensions {
            return Err(refused(
                "server enabled an extension that was not offered".into(),
            ));
        }
        let leftover = self.head[head_len..].to_vec();
        self.head = Vec::new();
        Ok(ClientStep::Open { protocol, leftover })
    }
}

#[cfg(test)]
#[path = "handshake_tests.rs"]
mod tests;
