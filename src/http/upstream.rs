//! The firmware's part of an HTTP server: a filter that sees every request before routing, and
//! the answer to a request that matched no WebSocket service and no file. The core knows
//! nothing of C: `src/ffi` implements [`UpstreamHandler`] for a C delegate.

use super::parse::response;
use crate::error::{Error, Result};
use crate::log::log;
use crate::ws::delegate::Gate;
use std::net::SocketAddr;

/// One request as the firmware sees it, with the answer it builds. Borrowed for one call.
pub struct Exchange<'a> {
    pub method: &'a str,
    /// Percent-decoded and cleaned ("/a b/c" for "/a%20b/./c").
    pub path: &'a str,
    /// As sent, without the '?' (empty when there is none).
    pub query: &'a str,
    pub headers: &'a [httparse::Header<'a>],
    pub body: &'a [u8],
    pub peer: SocketAddr,
    pub response: Response,
}

impl Exchange<'_> {
    /// The first header of that name (compared without regard to case).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    }
}

/// What goes back: a status, headers, a content type and a body. It starts as 404 with no body,
/// so a handler that sets nothing answers "not found"; one that sets a body or a header but no
/// status answers 200.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
    /// Set by the handler (any setter called): an answer that is ours to send.
    pub touched: bool,
    /// The handler chose the status itself.
    status_set: bool,
}

impl Default for Response {
    fn default() -> Self {
        Response {
            status: 404,
            headers: Vec::new(),
            content_type: None,
            body: Vec::new(),
            touched: false,
            status_set: false,
        }
    }
}

impl Response {
    pub fn set_status(&mut self, status: i32) -> Result<()> {
        if !(200..=599).contains(&status) {
            return Err(Error::invalid(format!(
                "status {status} is not a final HTTP status (200..599)"
            )));
        }
        self.status = status as u16;
        self.status_set = true;
        self.touched = true;
        Ok(())
    }

    /// Adds a header; a name that is not an HTTP token, a value with CR, LF or NUL, or a header
    /// the server writes itself (Content-Length, Transfer-Encoding, Connection, Date,
    /// Content-Type) gives `EINVAL`, and nothing reaches the wire.
    pub fn add_header(&mut self, name: &str, value: &str) -> Result<()> {
        if !response::is_token(name) {
            return Err(Error::invalid(format!(
                "header name {name:?} is not an HTTP token"
            )));
        }
        if response::is_reserved(name) || name.eq_ignore_ascii_case("content-type") {
            return Err(Error::invalid(format!(
                "header {name} is written by the server (use httpResponseSetBody for the content type)"
            )));
        }
        if !response::is_field_value(value.as_bytes()) {
            return Err(Error::invalid(format!(
                "the value of header {name} holds CR, LF, NUL or another control character"
            )));
        }
        self.headers.push((name.to_string(), value.to_string()));
        self.answered();
        Ok(())
    }

    /// Something was set: without a status of its own, the answer is 200.
    fn answered(&mut self) {
        self.touched = true;
        if !self.status_set {
            self.status = 200;
        }
    }

    pub fn set_body(&mut self, content_type: Option<&str>, body: &[u8]) -> Result<()> {
        if let Some(kind) = content_type
            && !response::is_field_value(kind.as_bytes())
        {
            return Err(Error::invalid(
                "the content type holds CR, LF, NUL or another control character",
            ));
        }
        self.content_type = content_type.map(str::to_string);
        self.body = body.to_vec();
        self.answered();
        Ok(())
    }
}

/// Receives requests, on the event-loop thread of their connection.
pub trait UpstreamHandler: Send + Sync {
    /// True when the firmware has a filter (else every request passes without a call).
    fn has_filter(&self) -> bool;
    /// 0 lets the request through; a status (401, 403, ...) refuses it, with the headers added
    /// to `exchange.response`. None: the filter could not be called.
    fn filter(&self, exchange: &mut Exchange<'_>) -> Option<i32>;
    /// True when the firmware answers requests (else unrouted requests get 404 at once).
    fn has_request(&self) -> bool;
    fn request(&self, exchange: &mut Exchange<'_>);
}

/// The firmware's handler behind the gate that keeps it from running once the server is
/// destroyed (and lets destroy wait for calls that are running).
pub struct Upstream {
    handler: Box<dyn UpstreamHandler>,
    gate: Gate,
}

impl Upstream {
    pub fn new(handler: Box<dyn UpstreamHandler>) -> Upstream {
        Upstream {
            handler,
            gate: Gate::default(),
        }
    }

    /// The filter's verdict: 0 to go on, else the status to refuse with. A filter that could
    /// not run (the server is being destroyed) lets nothing through (503); a verdict that is
    /// neither 0 nor 300..599 (304 excluded) refuses with 500, since the filter meant to refuse.
    pub fn filter(&self, exchange: &mut Exchange<'_>) -> u16 {
        if !self.handler.has_filter() {
            return 0;
        }
        match self.gate.run(|| self.handler.filter(exchange)).flatten() {
            None => 503,
            Some(0) => 0,
            // 3xx too: a filter may send the browser to a login page (with a Location header).
            Some(status @ 300..=599) if status != 304 => status as u16,
            Some(other) => {
                log!(
                    Warn,
                    "the request filter returned {other}, not 0 or 300..599: refused with 500"
                );
                500
            }
        }
    }

    pub fn answers_requests(&self) -> bool {
        self.handler.has_request()
    }

    pub fn request(&self, exchange: &mut Exchange<'_>) {
        if self.handler.has_request() {
            self.gate.run(|| self.handler.request(exchange));
        }
    }

    pub fn deactivate(&self) {
        self.gate.deactivate();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_that_would_break_the_framing_are_refused() {
        let mut response = Response::default();
        assert!(response.add_header("X-Ok", "fine").is_ok());
        for (name, value) in [
            ("Bad Name", "v"),
            ("", "v"),
            ("X-Injected", "a\r\nSet-Cookie: x"),
            ("X-Nul", "a\0b"),
            ("Content-Length", "5"),
            ("transfer-encoding", "chunked"),
            ("Connection", "close"),
        ] {
            assert_eq!(
                response.add_header(name, value).unwrap_err().errno,
                libc::EINVAL,
                "{name:?}: {value:?}"
            );
        }
        assert_eq!(response.headers, vec![("X-Ok".into(), "fine".into())]);
    }

    #[test]
    fn only_final_statuses_are_taken() {
        let mut response = Response::default();
        for bad in [0, 100, 199, 600, -1] {
            assert!(response.set_status(bad).is_err(), "{bad}");
        }
        assert!(!response.touched);
        response.set_status(201).unwrap();
        assert_eq!((response.status, response.touched), (201, true));
    }

    #[test]
    fn an_answer_without_a_status_is_200_and_nothing_set_is_404() {
        assert_eq!(Response::default().status, 404);
        let mut body_only = Response::default();
        body_only.set_body(Some("text/plain"), b"hi").unwrap();
        assert_eq!(body_only.status, 200);
        let mut header_only = Response::default();
        header_only.add_header("X-A", "b").unwrap();
        assert_eq!(header_only.status, 200);
        let mut chosen = Response::default();
        chosen.set_status(404).unwrap();
        chosen.set_body(None, b"gone").unwrap();
        assert_eq!(chosen.status, 404, "a status set first is kept");
        let mut later = Response::default();
        later.set_body(None, b"made").unwrap();
        later.set_status(201).unwrap();
        assert_eq!(later.status, 201, "a status set afterwards wins");
    }
}
