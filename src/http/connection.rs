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
use super::parse::{date, mime, response};
use super::server::ServerShared;
use super::service::WsService;
use super::stream::{FileStream, Pump};
use super::upstream::{Exchange, Response};
use crate::log::log;
use crate::protocol::Role;
use crate::protocol::handshake::upgrade_response_for;
use crate::runtime::{Context, Flow, Readiness, Task};
use crate::ws::admission::Admission;
use crate::ws::connection::{Connection, OpenInfo, Writer};
use crate::ws::session::Session;
use std::any::Any;
use std::cell::RefCell;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

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
                    self.error_answer(status, false);
                    used = input.len();
                    break;
                }
                HeadStep::Complete(head) => head,
            };
            let total = head.head_len + head.body.bytes() as usize;
            if rest.len() < total {
                if head.expect_continue && !self.continue_sent {
                    self.writer.write_raw(response::CONTINUE);
                    self.continue_sent = true;
                }
                break;
            }
            self.continue_sent = false;
            let body = &rest[head.head_len..total];
            let raw_head = &rest[..head.head_len];
            let routed = self.route(cx, &head, raw_head, body, &input[used + total..]);
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
        raw_head: &[u8],
        body: &[u8],
        after: &[u8],
    ) -> Routed {
        self.keep_alive = head.keep_alive;
        let is_head = head.method == "HEAD";
        if head.version == 1 && head.host.is_none() {
            log!(
                Debug,
                "http connection {}: HTTP/1.1 request without Host",
                self.id
            );
            self.error_answer(400, is_head);
            return Routed::Answered;
        }
        let (path, query) = match clean_path(head.target) {
            (
                CleanPath::Ok {
                    decoded,
                    trailing_slash,
                },
                query,
            ) => ((decoded, trailing_slash), query.unwrap_or("")),
            (CleanPath::Bad(why), _) => {
                log!(Debug, "http connection {}: 400: {why}", self.id);
                self.error_answer(400, is_head);
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
                return self.upgrade(cx, head, raw_head, &service, after);
            }
            if head.method == "GET" {
                self.fixed_answer(is_head, 426, &[("Upgrade", "websocket")]);
            } else {
                self.fixed_answer(is_head, 405, &[("Allow", "GET")]);
            }
            return Routed::Answered;
        }
        if head.upgrade_websocket {
            self.keep_alive = false;
            self.fixed_answer(is_head, 404, &[]);
            return Routed::Answered;
        }
        if let Some(root) = &server.root {
            match files::resolve(root, &path, trailing_slash) {
                Resolved::File {
                    file,
                    meta,
                    path: served,
                } => {
                    if head.method != "GET" && !is_head {
                        self.fixed_answer(is_head, 405, &[("Allow", "GET, HEAD")]);
                        return Routed::Answered;
                    }
                    // The content type follows the name asked for (a link is served under
                    // the link's name); a folder's follows its index file.
                    let name = if trailing_slash {
                        served.to_string_lossy()
                    } else {
                        path.as_str().into()
                    };
                    return self.file_answer(head, file, &meta, &name);
                }
                Resolved::Redirect(location) => {
                    let location = match query {
                        "" => location,
                        query => format!("{location}?{query}"),
                    };
                    self.fixed_answer(is_head, 301, &[("Location", &location)]);
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
        self.fixed_answer(is_head, 404, &[]);
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
        name: &str,
    ) -> Routed {
        let is_head = head.method == "HEAD";
        let length = meta.len();
        let modified = files::last_modified(meta);
        let last_modified = modified.to_string();
        if let Some(since) = head.header("if-modified-since")
            && !date::is_modified_since(since, modified)
        {
            self.send_head(304, &[("Last-Modified", &last_modified)], None);
            return Routed::Answered;
        }
        let wanted = match head.header("range") {
            Some(spec)
                if head
                    .header("if-range")
                    .is_none_or(|tag| date::if_range_matches(tag, modified)) =>
            {
                range(spec, length)
            }
            _ => RangeAnswer::Full,
        };
        let (status, start, count, content_range) = match wanted {
            RangeAnswer::Full => (200, 0, length, None),
            RangeAnswer::Partial {
                start,
                end_inclusive,
            } => (
                206,
                start,
                end_inclusive - start + 1,
                Some(format!("bytes {start}-{end_inclusive}/{length}")),
            ),
            RangeAnswer::Unsatisfiable => {
                let unsatisfied = format!("bytes */{length}");
                self.fixed_answer(is_head, 416, &[("Content-Range", &unsatisfied)]);
                return Routed::Answered;
            }
        };
        let mut extra = vec![
            ("Content-Type", mime::content_type(name)),
            ("Last-Modified", last_modified.as_str()),
            ("Accept-Ranges", "bytes"),
            ("X-Content-Type-Options", "nosniff"),
        ];
        if let Some(content_range) = &content_range {
            extra.push(("Content-Range", content_range.as_str()));
        }
        self.send_head(status, &extra, Some(count));
        if is_head || count == 0 {
            return Routed::Answered;
        }
        Routed::Streaming(Box::new(FileStream::new(file, start, count)))
    }

    /// The firmware's answer (filter refusal or onRequest): its status, headers and body.
    fn firmware_answer(&mut self, head: &RequestHead<'_>, answer: Response) {
        let no_body = matches!(answer.status, 100..=199 | 204 | 304);
        let content_type = answer
            .content_type
            .as_deref()
            .or((!answer.body.is_empty()).then_some(mime::DEFAULT));
        let mut extra: Vec<(&str, &str)> = Vec::with_capacity(answer.headers.len() + 1);
        if let Some(content_type) = content_type.filter(|_| !no_body) {
            extra.push(("Content-Type", content_type));
        }
        extra.extend(answer.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())));
        let length = (!no_body).then_some(answer.body.len() as u64);
        self.send_head(answer.status, &extra, length);
        if head.method != "HEAD" && !no_body {
            self.writer.write_raw(&answer.body);
        }
    }

    /// A short answer of the server's own, with a text body naming the status.
    fn fixed_answer(&mut self, is_head: bool, status: u16, extra: &[(&str, &str)]) {
        let mut out = Vec::with_capacity(256);
        with_date(|date| response::error(&mut out, status, date, self.keep_alive, extra, !is_head));
        self.writer.write_raw(&out);
    }

    /// A refusal of a request that could not be read whole, or must not be answered further
    /// (400, 408, 413, 414, 431, 501, 505): the connection ends after it.
    fn error_answer(&mut self, status: u16, is_head: bool) {
        self.keep_alive = false;
        self.fixed_answer(is_head, status, &[]);
        self.state = State::Closing(Instant::now());
    }

    fn send_head(&mut self, status: u16, extra: &[(&str, &str)], length: Option<u64>) {
        let mut out = Vec::with_capacity(256);
        with_date(|date| response::head(&mut out, status, date, length, self.keep_alive, extra));
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

    /// A WebSocket service answers the upgrade. Accepted: the 101 goes out (behind the
    /// answers to earlier pipelined requests, in the same send buffer), and the socket, with
    /// the frames that came behind the request, moves to the WebSocket layer on this loop,
    /// under this connection's id. Refused: the handshake's answer, then the connection ends.
    fn upgrade(
        &mut self,
        cx: &mut Context,
        head: &RequestHead<'_>,
        raw_head: &[u8],
        service: &Arc<WsService>,
        after: &[u8],
    ) -> Routed {
        let answer = upgrade_response_for(
            head.method,
            head.version,
            head.headers(),
            &service.settings.protocols,
        );
        let (response, protocol) = match answer {
            Ok(accepted) => accepted,
            Err(refused) => {
                log!(
                    Debug,
                    "http connection {}: upgrade refused: {}",
                    self.id,
                    refused.reason
                );
                self.keep_alive = false;
                self.writer.write_raw(&refused.response);
                self.state = State::Closing(Instant::now());
                return Routed::Answered;
            }
        };
        let mut writer = std::mem::replace(&mut self.writer, Writer::new(None));
        writer.corked = false;
        writer.write_raw(&response);
        if let Some(transport) = writer.transport.as_mut()
            && let Err(err) = transport.deregister(cx.registry)
        {
            log!(
                Warn,
                "http connection {}: cannot hand the socket over: {err}",
                self.id
            );
            return Routed::HandedOver;
        }
        let connection = Connection::with_writer(
            self.id,
            Role::Server,
            service.settings.clone(),
            service.delegate.clone(),
            cx.event_loop.clone(),
            writer,
        );
        connection.set_peer_address(self.peer);
        connection.set_opened(OpenInfo::new(
            protocol,
            head.target.to_string(),
            Some(raw_head.to_vec()),
        ));
        service.group.add(&connection);
        let session = Session::upgraded(
            connection,
            service.group.clone(),
            after.to_vec(),
            self.admission.take(),
        );
        let id = self.id;
        // Runs in this same turn, once this task (and its registration) is gone.
        drop(cx.event_loop.enqueue(move |tasks| tasks.adopt(id, session)));
        Routed::HandedOver
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
            log!(
                Warn,
                "http connection {}: cannot watch the socket: {err}",
                self.id
            );
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
                self.error_answer(408, false);
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

thread_local! {
    /// The `Date` header's text, made once per second per thread.
    static DATE: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
}

pub(crate) fn with_date<R>(f: impl FnOnce(&str) -> R) -> R {
    let now = SystemTime::now();
    let second = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    DATE.with(|cached| {
        let mut cached = cached.borrow_mut();
        if cached.0 != second {
            *cached = (second, files::http_date(now).to_string());
        }
        f(&cached.1)
    })
}
