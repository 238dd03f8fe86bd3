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

use super::parse::request::{HeadStep, parse_head};
use super::parse::response;
use super::server::ServerShared;
use super::stream::{FileStream, Pump};
use crate::log::log;
use crate::runtime::{Context, Flow, ReadShare, Readiness, Task};
use crate::ws::admission::Admission;
use crate::ws::connection::Writer;
use std::any::Any;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// After the last answer is out and our side is shut, how long the peer may take to close:
/// closing a socket with unread input sends a reset, which can destroy the answer in flight.
const LINGER: Duration = Duration::from_secs(2);

/// Answers waiting in the send buffer beyond this stop the reading (and the answering of
/// pipelined requests) until they are all out: a client that sends requests and never reads the
/// answers, or reads them slowly, cannot make the buffer or the input grow without bound.
const OUTPUT_PAUSE: usize = 64 * 1024;

pub(super) enum State {
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
    pub(super) id: u64,
    pub(super) server: Arc<ServerShared>,
    pub(super) writer: Writer,
    input: Vec<u8>,
    pub(super) state: State,
    /// The request being streamed keeps the connection alive afterwards.
    pub(super) keep_alive: bool,
    /// A `100 Continue` went out for the request waiting for its body.
    continue_sent: bool,
    /// The peer ended its side: answer what is here, then close.
    peer_done: bool,
    /// Reading stopped while a file or a backlog of answers went out and must start again: the
    /// socket is edge-triggered, and requests that arrived meanwhile raised their edge already.
    must_read: bool,
    /// Answering stopped because answers piled up unread (see `OUTPUT_PAUSE`).
    output_paused: bool,
    /// The last time the peer took bytes of what waits in the send buffer: answers that sit
    /// unread are given up after the request timeout without progress, not cut off by a timer
    /// that started when they were queued.
    output_progress: Instant,
    /// The count of the server's connection cap this connection holds (it follows the socket
    /// into the WebSocket layer after an upgrade).
    pub(super) admission: Option<Admission>,
    pub(super) peer: SocketAddr,
}

/// What routing did with a request.
pub(super) enum Routed {
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
            must_read: false,
            output_paused: false,
            output_progress: Instant::now(),
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
        let mut share = ReadShare::default();
        while share.another() {
            self.must_read = false;
            if matches!(self.state, State::Streaming(_) | State::Closing(_)) {
                // Pipelined requests wait in the socket until the answer before them is out.
                return Flow::Continue;
            }
            // Paused, reading waits until the answers are all out (`progress` resumes it), not
            // just until they are under the pause: a peer that takes a little of them at a time
            // would otherwise have each of its reads let in a socketful of requests that there
            // is no room to answer, and `input` would grow without bound.
            if self.output_paused || self.writer.queued() > OUTPUT_PAUSE {
                self.output_paused = true;
                return Flow::Continue;
            }
            let Some(transport) = self.writer.transport.as_mut() else {
                return Flow::Finished;
            };
            let (result, at_end) = (transport.read(buffer), transport.at_end());
            match result {
                Ok(0) if matches!(self.state, State::Draining(_)) => return self.finish(cx),
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
                    if n < buffer.len() && !to_the_end && !at_end && !self.must_read {
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
        // A peer that fills every read has had its share of this turn (a connection that
        // discards what it reads while it ends, too): the loop comes back to it after the
        // others.
        cx.read_again_later(to_the_end);
        Flow::Continue
    }

    /// Answers the complete requests in `input`, then writes and checks the socket.
    fn after_input(&mut self, cx: &mut Context) -> Flow {
        if self.writer.queued() == 0 {
            self.output_progress = Instant::now();
        }
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
            if self.writer.queued() > OUTPUT_PAUSE {
                self.output_paused = true;
                break;
            }
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
        let mut input = input;
        if used > 0 {
            input.drain(..used);
        }
        if input.is_empty() {
            // Freed: an idle keep-alive connection holds no input buffer.
            input = Vec::new();
        } else if let State::Idle(_) = self.state {
            self.state = State::Request(Instant::now());
        }
        self.input = input;
        Flow::Continue
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
                        // Pipelined requests waited for this: answer them, then read on.
                        if self.resume(cx) == Flow::Finished {
                            return Flow::Finished;
                        }
                        continue;
                    }
                }
            }
            break;
        }
        let before = self.writer.queued();
        let empty = self.writer.flush();
        if self.writer.broken {
            return self.finish(cx);
        }
        if self.writer.queued() < before {
            self.output_progress = Instant::now();
        }
        if empty
            && before > 0
            && let State::Idle(since) | State::Request(since) = &mut self.state
        {
            // The keep-alive and request waits start once the answers are out.
            *since = Instant::now();
        }
        if empty && self.output_paused {
            self.output_paused = false;
            if self.resume(cx) == Flow::Finished {
                return Flow::Finished;
            }
            return self.progress(cx);
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

    /// Answers wait in the send buffer (outside a file stream, which keeps its own progress):
    /// the peer must keep taking them.
    fn answers_wait(&self) -> bool {
        !matches!(self.state, State::Streaming(_) | State::Draining(_)) && self.writer.queued() > 0
    }

    /// Answers what waited in `input` behind a file or a backlog of answers, and has reading
    /// start again (the socket is edge-triggered, and reading stopped meanwhile).
    fn resume(&mut self, cx: &mut Context) -> Flow {
        self.writer.corked = true;
        if self.answer_requests(cx) == Flow::Finished {
            return Flow::Finished;
        }
        self.writer.uncork();
        if !matches!(self.state, State::Streaming(_)) && !self.peer_done {
            self.must_read = true;
        }
        Flow::Continue
    }

    fn check_broken(&mut self, cx: &mut Context) -> Flow {
        if self.writer.broken {
            return self.finish(cx);
        }
        Flow::Continue
    }

    /// Ends the connection now.
    pub(super) fn finish(&mut self, cx: &mut Context) -> Flow {
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
        let token = crate::runtime::token(self.id);
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
        if self.server.is_stopping() {
            return self.finish(cx);
        }
        // Bytes may already wait (edge-triggered: no edge would come for them).
        self.on_readable(cx, false)
    }

    fn ready(&mut self, cx: &mut Context, readiness: Readiness) -> Flow {
        if readiness.writable && self.progress(cx) == Flow::Finished {
            return Flow::Finished;
        }
        if readiness.readable || readiness.closed || self.must_read {
            return self.on_readable(cx, readiness.closed);
        }
        Flow::Continue
    }

    fn timeout(&mut self, cx: &mut Context, now: Instant) -> Flow {
        if self.answers_wait() {
            log!(
                Debug,
                "http connection {}: the peer stopped reading the answers",
                self.id
            );
            return self.finish(cx);
        }
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
        if self.answers_wait() {
            return Some(self.output_progress + config.request);
        }
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

    fn id(&self) -> u64 {
        self.id
    }
}

impl Drop for HttpConnection {
    fn drop(&mut self) {
        self.server.untrack(self.id);
    }
}
