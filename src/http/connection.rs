//! One HTTP connection on an event loop: it reads requests (several may come in one read:
//! pipelining), answers them in order — a WebSocket service, a file, the firmware's
//! `onRequest`, else 404 — and hands the socket to the WebSocket layer when a service accepts
//! an upgrade.
//!
//! Timers: a request must arrive whole within `http-request-timeout-ms` of its first byte (408
//! otherwise; the timer is not reset per byte, so a trickle cannot hold the connection), an idle
//! keep-alive connection is closed after `http-keepalive-timeout-ms`, and a file that the peer
//! stops reading is dropped after `http-request-timeout-ms` without progress.
//!
//! Memory: an idle keep-alive connection holds no buffer — `input` keeps only an unfinished
//! request or pipelined ones waiting behind a response, and is freed once drained.

use super::files::{self, Resolved};
use super::parse::path::{CleanPath, clean_path};
use super::parse::range::{RangeAnswer, range};
use super::parse::request::{HeadStep, RequestHead, parse_head};
use super::parse::{mime, response};
use super::server::ServerShared;
use super::stream::{FileStream, Pump};
use super::upstream::{Exchange, Response};
use crate::log::log;
use crate::runtime::{Context, Flow, Readiness, Task};
use crate::ws::admission::Admission;
use crate::ws::connection::Writer;
use std::any::Any;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// After an answer that ends the connection, how long the peer may take to read it and close:
/// closing a socket with unread input sends a reset, which can destroy the answer in flight.
const LINGER: Duration = Duration::from_secs(2);

enum State {
    /// Between requests (keep-alive), since then.
    Idle(Instant),
    /// Part of a request has arrived; the first byte came then.
    Request(Instant),
    /// A file is going out; reading waits until it is done.
    Streaming(Box<FileStream>),
    /// The last answer is queued; the socket closes once it is out.
    Closing(Instant),
    /// The last answer is out and our side is shut: waiting for the peer's close.
    Draining(Instant),
}

pub(crate) struct HttpConnection {
    id: u64,
    server: Arc<ServerShared>,
    writer: Writer,
    input: Vec<u8>,
    state: State,
    /// The request being streamed keeps the connection alive afterwards.
    keep_alive: bool,
    /// A `100 Continue` went out for the request waiting for its body.
    continue_sent: bool,
    /// The peer ended its side: answer what is here, then close.
    peer_done: bool,
    /// The count of the server's connection cap this connection holds (it follows the socket
    /// into the WebSocket layer after an upgrade).
    admission: Option<Admission>,
    peer: SocketAddr,
}

/// What routing did with a request.
enum Routed {
    Answered,
    Streaming(Box<FileStream>),
    /// The socket now belongs to the WebSocket layer.
    HandedOver,
}

impl HttpConnection {
    pub(crate) fn new(
        id: u64,
        server: Arc<ServerShared>,
        writer: Writer,
        admission: Admission,
        peer: SocketAddr,
    ) -> HttpConnection {
        HttpConnection {
            id,
            server,
            writer,
            input: Vec::new(),
            // A connection that sends nothing is closed at the request timeout, silently.
            state: State::Request(Instant::now()),
            keep_alive: true,
            continue_sent: false,
            peer_done: false,
            admission: Some(admission),
            peer,
        }
    }

    /// Closes at once (the server stops).
    pub(crate) fn close_now(&mut self, cx: &mut Context) -> Flow {
        self.finish(cx)
    }

    /// Reads everything the socket holds and answers what is complete.
    fn on_readable(&mut self, cx: &mut Context, to_the_end: bool) -> Flow {
        let mut buffer = std::mem::take(cx.receive_buffer);
        let flow = self.read_loop(cx, &mut buffer, to_the_end);
        if cx.receive_buffer.is_empty() {
            *cx.receive_buffer = buffer;
        }
        flow
    }

    fn read_loop(&mut self, cx: &mut Context, buffer: &mut [u8], to_the_end: bool) -> Flow {
        loop {
            if matches!(self.state, State::Streaming(_) | State::Closing(_)) {
                // Pipelined requests wait in the socket until the answer before them is out.
                return Flow::Continue;
            }
            let Some(transport) = self.writer.transport.as_mut() else {
                return Flow::Finished;
            };
            let (result, at_end) = (transport.read(buffer), transport.at_end());
            match result {
                Ok(0) => {
                    self.peer_done = true;
                    return self.after_input(cx);
                }
                Ok(n) => {
                    if let State::Draining(_) = self.state {
                        continue; // discarded: the connection is ending
                    }
                    self.input.extend_from_slice(&buffer[..n]);
                    let flow = self.after_input(cx);
                    if flow == Flow::Finished {
                        return flow;
                    }
                    if n < buffer.len() && !to_the_end && !at_end {
                        return Flow::Continue;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Flow::Continue,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    log!(Debug, "http connection {}: read failed: {e}", self.id);
                    return self.finish(cx);
                }
            }
        }
    }

    /// Answers the complete requests in `input`, then writes and checks the socket.
    fn after_input(&mut self, cx: &mut Context) -> Flow {
        self.writer.corked = true;
        match self.answer_requests(cx) {
            Flow::Finished => return Flow::Finished,
            Flow::Continue => {}
        }
        if self.peer_done && matches!(self.state, State::Idle(_) | State::Request(_)) {
            // Nothing more will come: a partial request can never complete.
            self.state = State::Closing(Instant::now());
        }
        self.writer.uncork();
        self.progress(cx)
    }

    /// Parses and answers requests until one is incomplete, streams, or ends the connection.
    fn answer_requests(&mut self, cx: &mut Context) -> Flow {
        let input = std::mem::take(&mut self.input);
        let mut used = 0;
        let limits = self.server.limits;
        while matches!(self.state, State::Idle(_) | State::Request(_)) && used < input.len() {
            let rest = &input[used..];
            let head = match parse_head(rest, &limits) {
                HeadStep::NeedMore => break,
                HeadStep::Refuse(status, why) => {
                    log!(Debug, "http connection {}: {status}: {why}", self.id);
                    self.error_answer(status, why, false);
                    used = input.len();
                    break;
                }
                HeadStep::Complete(head) => head,
            };
            let total = head.head_len + head.body_len();
            if rest.len() < total {
                if head.expect_continue && !self.continue_sent {
                    self.writer.write_raw(b"HTTP/1.1 100 Continue\r\n\r\n");
                    self.continue_sent = true;
                }
                break;
            }
            self.continue_sent = false;
            let body = &rest[head.head_len..total];
            let routed = self.route(cx, &head, body, &input[used + total..]);
            used += total;
            match routed {
                Routed::HandedOver => return Flow::Finished,
                Routed::Streaming(stream) => self.state = State::Streaming(stream),
                Routed::Answered if !self.keep_alive => {
                    self.state = State::Closing(Instant::now());
                }
                Routed::Answered => self.state = State::Idle(Instant::now()),
            }
        }
        let now = Instant::now();
        if used < input.len() {
            self.input = input[used..].to_vec();
            if let State::Idle(_) = self.state {
                self.state = State::Request(now);
            }
        }
        Flow::Continue
    }

    /// Routes one complete request: the filter, then a WebSocket service, a file, the
    /// firmware's `onRequest`, else 404. `after` is what arrived behind the request (for an
    /// upgrade: the first frames).
    fn route(
        &mut self,
        cx: &mut Context,
        head: &RequestHead<'_>,
        body: &[u8],
        after: &[u8],
    ) -> Routed {
        self.keep_alive = head.keep_alive;
        if head.version == 1 && !head.has_host {
            self.error_answer(400, "HTTP/1.1 request without Host", head.is_head());
            return Routed::Answered;
        }
        let (path, query) = match clean_path(head.target) {
            (CleanPath::Ok { decoded, trailing_slash }, query) => {
                ((decoded, trailing_slash), query.unwrap_or(""))
            }
            (CleanPath::Bad(why), _) => {
                self.error_answer(400, why, head.is_head());
                return Routed::Answered;
            }
        };
        let (path, trailing_slash) = path;
        let server = self.server.clone();
        if let Some(upstream) = &server.upstream {
            let mut exchange = self.exchange(head, &path, query, body);
            let refusal = upstream.filter(&mut exchange);
            if refusal != 0 {
                if head.upgrade_websocket {
                    self.keep_alive = false;
                }
                let mut response = exchange.response;
                response.status = refusal;
                self.firmware_answer(head, response);
                return Routed::Answered;
            }
        }
        if let Some(service) = server.service(&path) {
            if head.upgrade_websocket {
                return self.upgrade(cx, head, &service, &path, query, after);
            }
            if head.method == "GET" {
                self.fixed_answer(
                    head,
                    426,
                    &[("Upgrade", "websocket")],
                    "this path is a WebSocket service: upgrade to websocket",
                );
            } else {
                self.fixed_answer(head, 405, &[("Allow", "GET")], "use GET with an upgrade");
            }
            return Routed::Answered;
        }
        if head.upgrade_websocket {
            self.keep_alive = false;
            self.fixed_answer(head, 404, &[], "no WebSocket service on this path");
            return Routed::Answered;
        }
        if let Some(root) = &server.root {
            match files::resolve(root, &path, trailing_slash) {
                Resolved::File { file, meta, path: file_path } => {
                    if !head.is_get_or_head() {
                        self.fixed_answer(head, 405, &[("Allow", "GET, HEAD")], "method not allowed");
                        return Routed::Answered;
                    }
                    return self.file_answer(head, file, &meta, &file_path);
                }
                Resolved::Redirect(location) => {
                    let location = match query {
                        "" => location,
                        query => format!("{location}?{query}"),
                    };
                    self.fixed_answer(head, 301, &[("Location", &location)], "moved");
                    return Routed::Answered;
                }
                Resolved::NotFound => {}
            }
        }
        if let Some(upstream) = server.upstream.as_ref().filter(|u| u.answers_requests()) {
            let mut exchange = self.exchange(head, &path, query, body);
            upstream.request(&mut exchange);
            self.firmware_answer(head, exchange.response);
            return Routed::Answered;
        }
        self.fixed_answer(head, 404, &[], "not found");
        Routed::Answered
    }

    fn exchange<'a>(
        &self,
        head: &'a RequestHead<'a>,
        path: &'a str,
        query: &'a str,
        body: &'a [u8],
    ) -> Exchange<'a> {
        Exchange {
            method: head.method,
            path,
            query,
            headers: head.headers(),
            body,
            peer: self.peer,
            response: Response::default(),
        }
    }

    /// A file: 200 (or 206 for a range), 304 when the peer's copy is current, 416 for a range
    /// past the end; the body streams from the file (HEAD: none).
    fn file_answer(
        &mut self,
        head: &RequestHead<'_>,
        file: std::fs::File,
        meta: &std::fs::Metadata,
        path: &std::path::Path,
    ) -> Routed {
        let length = meta.len();
        let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
        let last_modified = httpdate::fmt_http_date(modified);
        if let Some(since) = head.header("if-modified-since")
            && response::not_modified_since(since, modified)
        {
            let extra = [("Last-Modified", last_modified.as_str())];
            self.head_only(head, 304, &extra, None, None);
            return Routed::Answered;
        }
        let mut wanted = RangeAnswer::Full;
        if let Some(spec) = head.header("range") {
            let range_applies = head
                .header("if-range")
                .is_none_or(|tag| tag == last_modified.as_bytes());
            if range_applies {
                wanted = range(spec, length);
            }
        }
        let content_type = mime::content_type(&path.to_string_lossy());
        let (status, start, count, content_range) = match wanted {
            RangeAnswer::Full => (200, 0, length, None),
            RangeAnswer::Partial { start, end_inclusive } => (
                206,
                start,
                end_inclusive - start + 1,
                Some(format!("bytes {start}-{end_inclusive}/{length}")),
            ),
            RangeAnswer::Unsatisfiable => {
                let unsatisfied = format!("bytes */{length}");
                self.fixed_answer(
                    head,
                    416,
                    &[("Content-Range", &unsatisfied)],
                    "range not satisfiable",
                );
                return Routed::Answered;
            }
        };
        let mut extra = vec![
            ("Last-Modified", last_modified.as_str()),
            ("Accept-Ranges", "bytes"),
        ];
        if let Some(content_range) = &content_range {
            extra.push(("Content-Range", content_range.as_str()));
        }
        self.head_only(head, status, &extra, Some(content_type), Some(count));
        if head.is_head() || count == 0 {
            return Routed::Answered;
        }
        Routed::Streaming(Box::new(FileStream::new(file, start, count)))
    }

    /// The firmware's answer (filter refusal or onRequest): its status, headers and body.
    fn firmware_answer(&mut self, head: &RequestHead<'_>, answer: Response) {
        let extra: Vec<(&str, &str)> = answer
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let content_type = answer
            .content_type
            .as_deref()
            .or((!answer.body.is_empty()).then_some("application/octet-stream"));
        self.head_only(
            head,
            answer.status,
            &extra,
            content_type,
            Some(answer.body.len() as u64),
        );
        if !head.is_head() && !response::forbids_body(answer.status) {
            self.writer.write_raw(&answer.body);
        }
    }

    /// A short answer of the server's own, with a text body saying why.
    fn fixed_answer(
        &mut self,
        head: &RequestHead<'_>,
        status: u16,
        extra: &[(&str, &str)],
        why: &str,
    ) {
        let body = format!("{status} {}: {why}\n", response::reason(status));
        self.head_only(
            head,
            status,
            extra,
            Some("text/plain; charset=utf-8"),
            Some(body.len() as u64),
        );
        if !head.is_head() {
            self.writer.write_raw(body.as_bytes());
        }
    }

    /// A refusal before a request could be read whole (400, 408, 413, 414, 431, 501, 505):
    /// the connection ends after it.
    fn error_answer(&mut self, status: u16, why: &str, is_head: bool) {
        self.keep_alive = false;
        let mut out = Vec::with_capacity(256);
        let body = format!("{status} {}: {why}\n", response::reason(status));
        response::write_head(
            &mut out,
            status,
            false,
            &[],
            Some("text/plain; charset=utf-8"),
            Some(body.len() as u64),
        );
        if !is_head {
            out.extend_from_slice(body.as_bytes());
        }
        self.writer.write_raw(&out);
        self.state = State::Closing(Instant::now());
    }

    fn head_only(
        &mut self,
        head: &RequestHead<'_>,
        status: u16,
        extra: &[(&str, &str)],
        content_type: Option<&str>,
        length: Option<u64>,
    ) {
        let _ = head;
        let mut out = Vec::with_capacity(256);
        response::write_head(
            &mut out,
            status,
            self.keep_alive,
            extra,
            content_type,
            length,
        );
        self.writer.write_raw(&out);
    }

    /// Writes what waits and moves the connection along: streams, ends a closing connection
    /// once its answer is out, re-arms reading after a stream.
    fn progress(&mut self, cx: &mut Context) -> Flow {
        loop {
            if let State::Streaming(stream) = &mut self.state {
                match stream.pump(&mut self.writer) {
                    Pump::Blocked => return self.check_broken(cx),
                    Pump::Failed => return self.finish(cx),
                    Pump::Done => {
                        self.state = if self.keep_alive {
                            State::Idle(Instant::now())
                        } else {
                            State::Closing(Instant::now())
                        };
                        // Pipelined requests waited for this: answer them, then read on (the
                        // socket is edge-triggered, and reading stopped while streaming).
                        if !self.input.is_empty() || !self.peer_done {
                            self.writer.corked = true;
                            if self.answer_requests(cx) == Flow::Finished {
                                return Flow::Finished;
                            }
                            self.writer.uncork();
                            if !matches!(self.state, State::Streaming(_)) && !self.peer_done {
                                return match self.on_readable(cx, false) {
                                    Flow::Finished => Flow::Finished,
                                    Flow::Continue => self.check_broken(cx),
                                };
                            }
                        }
                        continue;
                    }
                }
            }
            break;
        }
        let empty = self.writer.flush();
        if self.writer.broken {
            return self.finish(cx);
        }
        if let State::Closing(_) = self.state
            && empty
        {
            if self.peer_done {
                return self.finish(cx);
            }
            if let Some(transport) = self.writer.transport.as_mut() {
                transport.shutdown_write();
            }
            self.state = State::Draining(Instant::now());
        }
        Flow::Continue
    }

    fn check_broken(&mut self, cx: &mut Context) -> Flow {
        if self.writer.broken {
            return self.finish(cx);
        }
        Flow::Continue
    }

    /// A WebSocket service accepts the upgrade: its 101 goes out, and the socket, with the
    /// frames that came behind the request, moves to the WebSocket layer on this loop.
    fn upgrade(
        &mut self,
        cx: &mut Context,
        head: &RequestHead<'_>,
        service: &Arc<super::service::WsService>,
        path: &str,
        query: &str,
        after: &[u8],
    ) -> Routed {
        let _ = (cx, head, service, path, query, after);
        todo!("hand-over")
    }

    /// Ends the connection now.
    fn finish(&mut self, cx: &mut Context) -> Flow {
        if let Some(transport) = self.writer.transport.as_mut() {
            let _ = transport.deregister(cx.registry);
            transport.close();
        }
        self.writer.transport = None;
        Flow::Finished
    }
}

impl Task for HttpConnection {
    fn start(&mut self, cx: &mut Context) -> Flow {
        let token = mio::Token(self.id as usize);
        let registered = match self.writer.transport.as_mut() {
            Some(transport) => transport.register(cx.registry, token),
            None => return Flow::Finished,
        };
        if let Err(err) = registered {
            log!(Warn, "http connection {}: cannot watch the socket: {err}", self.id);
            return Flow::Finished;
        }
        self.server.track(self.id, cx.event_loop);
        // Bytes may already wait (edge-triggered: no edge would come for them).
        self.on_readable(cx, false)
    }

    fn ready(&mut self, cx: &mut Context, readiness: Readiness) -> Flow {
        if readiness.writable && self.progress(cx) == Flow::Finished {
            return Flow::Finished;
        }
        if readiness.readable || readiness.closed {
            return self.on_readable(cx, readiness.closed);
        }
        Flow::Continue
    }

    fn timeout(&mut self, cx: &mut Context, now: Instant) -> Flow {
        match self.state {
            State::Request(_) if self.input.is_empty() => self.finish(cx),
            State::Request(_) => {
                log!(Debug, "http connection {}: request timed out", self.id);
                self.error_answer(408, "the request did not arrive in time", false);
                self.input = Vec::new();
                self.progress(cx)
            }
            State::Streaming(_) => {
                log!(
                    Debug,
                    "http connection {}: the peer stopped reading the answer",
                    self.id
                );
                self.finish(cx)
            }
            State::Idle(_) | State::Closing(_) | State::Draining(_) => {
                let _ = now;
                self.finish(cx)
            }
        }
    }

    fn deadline(&self) -> Option<Instant> {
        let config = &self.server.timeouts;
        Some(match &self.state {
            State::Idle(since) => *since + config.keepalive,
            State::Request(since) => *since + config.request,
            State::Streaming(stream) => stream.last_progress + config.request,
            State::Closing(since) | State::Draining(since) => *since + LINGER,
        })
    }

    fn panicked(&mut self, cx: &mut Context) -> Flow {
        self.finish(cx)
    }

    fn shutdown(&mut self, cx: &mut Context) {
        let _ = self.finish(cx);
    }

    fn as_any(&mut self) -> &mut dyn Any {
        self
    }
}

impl Drop for HttpConnection {
    fn drop(&mut self) {
        self.server.untrack(self.id);
    }
}
