//! The event-loop side of a connection: it reads the socket, hands the bytes to the protocol
//! core (`protocol::Reader` for what arrives, `protocol::Endpoint` under the connection's lock
//! for what that calls for), turns what happened into callbacks, and ends the socket when the
//! core says so. The opening phases (a server's upgrade request, a client's connect and
//! handshake) are in `opening.rs`.
//!
//! Only the owning event loop touches a session, so none of its state is locked; the lock is
//! taken around each call into the endpoint and released before any callback runs.

use super::admission::Admission;
use super::connection::{Connection, Io};
use super::dispatch::{Control, deliver_messages, emit_to};
use super::event::{EventKind, MessageKind};
use super::opening::Connecting;
use super::spare_buffer::{direct_read_buffer, keep_spare};
use crate::log::log;
use crate::protocol::close::{self, Violation, violation};
use crate::protocol::handshake::ServerHandshake;
use crate::protocol::{Deadline, Expired, Input, Reader, TcpClose};
use crate::runtime::{Context, Flow, ReadShare, Readiness, Task, Tasks, oneshot};
use crate::transport::tls::tls_failure;
use std::any::Any;
use std::io;
use std::sync::Arc;
use std::time::Instant;

pub(super) enum Phase {
    /// Open: what arrives goes through the reader. (It lives in the phase: only an open
    /// connection reads frames, and the phase's tag fits in the reader's spare bytes, so the
    /// session is 16 bytes smaller than with the two side by side. First, as the variant every
    /// read tests for.)
    Open(Reader),
    /// Server: waiting for the HTTP upgrade request (the part of it read so far, if any).
    Accepting(Option<Box<ServerHandshake>>),
    /// Client: name resolution (off the loop), TCP connect, then the upgrade request and
    /// response.
    Connecting(Box<Connecting>),
    /// Client opened by a blocking `wsOpenConnection`: onOpen is still to be delivered (then the
    /// waiting caller is told), and bytes arrived right after the handshake. (Boxed, as the
    /// rare phases are: the phase is part of every connection's size.)
    OpenedElsewhere(Box<OpenedElsewhere>),
    /// Client whose open failed before the loop got it: onError (code, why) still to deliver.
    FailedElsewhere(Box<(u16, String)>),
    /// Closing handshake over (or failed) and onClose delivered: waiting for the TCP close.
    /// `write_shut`: our FIN is sent (a failed server connection waiting for the peer's). (Kept
    /// here rather than in the session, where it would cost every connection a word.)
    /// `left`: the session has left its connection's group (after onClose).
    Lingering {
        write_shut: bool,
        left: bool,
    },
    Finished,
}

pub(super) struct OpenedElsewhere {
    pub(super) leftover: Vec<u8>,
    pub(super) opened: Option<oneshot::Sender<()>>,
}

pub struct Session {
    pub(super) connection: Arc<Connection>,
    pub(super) phase: Phase,
    /// The endpoint's next timer, as last read (the loop asks for it without a lock).
    deadline: Deadline,
    /// A place under an HTTP server's connection cap, given back when the session (so the
    /// socket) goes.
    pub(super) admission: Option<Admission>,
}

/// A command: the connection's timers changed on another thread (a close started).
pub fn timers_changed(tasks: &mut Tasks, id: u64) {
    tasks.with::<Session>(id, |session, _| {
        session.refresh_deadline();
        Flow::Continue
    });
}

/// A command: the application closed a connection that was still opening.
pub fn abandon(tasks: &mut Tasks, id: u64) {
    tasks.with::<Session>(id, |session, _| session.cancel_opening());
}

impl Session {
    pub(super) fn new(connection: Arc<Connection>, phase: Phase) -> Box<Session> {
        let mut session = Box::new(Session {
            connection,
            phase,
            deadline: Deadline::default(),
            admission: None,
        });
        session.refresh_deadline();
        session
    }

    pub fn id(&self) -> u64 {
        self.connection.id
    }

    /// Reads the endpoint's next timer (after anything that may have changed it).
    pub(super) fn refresh_deadline(&mut self) {
        self.deadline = self.connection.io().endpoint.deadline();
    }

    /// Everything the socket holds now. `to_the_end`: the peer closed its side (or the socket
    /// failed), so no further readiness edge will come — read until the end.
    pub(super) fn read_all(&mut self, cx: &mut Context, to_the_end: bool) -> Flow {
        let flow = self.read_loop(cx, to_the_end);
        if flow == Flow::Finished {
            // The connection ended inside the read's cork: its send buffer (often the loop's,
            // lent for the read) goes back to the loop rather than stay with a closed socket.
            let mut io = self.connection.io_on(cx.event_loop);
            io.writer.end_cork_into(cx.send_spare);
            return flow;
        }
        let broken = {
            let mut io = self.connection.io_on(cx.event_loop);
            io.writer.uncork_into(cx.send_spare);
            // The timers may have changed (a close frame arrived, keepalive): read them here,
            // under the lock this read already takes.
            self.deadline = io.endpoint.deadline();
            io.writer.broken
        };
        if broken {
            return self.on_transport_gone("write failed");
        }
        flow
    }

    fn read_loop(&mut self, cx: &mut Context, to_the_end: bool) -> Flow {
        let buffer = cx.receive_buffer.as_mut_slice();
        // (The loop's buffer is as large as one read may be.)
        let read_max = buffer.len();
        // A flush between reads that left bytes waiting found the socket full: no more until
        // the writable edge (one write a read that could only say EAGAIN).
        let (mut share, mut socket_full) = (ReadShare::default(), false);
        while share.another() {
            // An open connection's reader of large frames has them read straight into its own
            // buffer.
            let direct = matches!(&self.phase, Phase::Open(reader) if reader.wants_direct_read());
            let (result, space, at_end) = {
                let mut io = self.connection.io_on(cx.event_loop);
                io.writer.cork_with(cx.send_spare);
                // The replies to the reads before go out before the next: a peer that keeps
                // the socket full must not hold a pong, a close or a small reply back.
                if share.reads() > 1 && !socket_full && io.writer.queued() > 0 {
                    socket_full = !io.writer.flush();
                }
                let Some(transport) = io.writer.transport.as_mut() else {
                    return Flow::Continue;
                };
                let target = match direct {
                    true => direct_read_buffer(&mut self.phase, read_max),
                    false => None,
                };
                // (Some exactly when `direct`: the reader wants a direct read.)
                let target = target.unwrap_or(&mut *buffer);
                let (result, space, at_end) =
                    (transport.read(target), target.len(), transport.at_end());
                // Keepalive counts bytes heard, not readiness.
                if matches!(result, Ok(n) if n > 0) && io.endpoint.wants_traffic() {
                    io.endpoint.heard(Instant::now());
                }
                (result, space, at_end)
            };
            match result {
                Ok(0) => return self.on_transport_gone("peer closed the TCP connection"),
                Ok(n) => {
                    let flow = match direct {
                        true => self.on_direct_read(n, read_max),
                        false => self.on_bytes(&mut buffer[..n]),
                    };
                    if flow == Flow::Finished {
                        return flow;
                    }
                    // A short read drained the socket: the next arrival raises a new edge
                    // (saves a read that would only say EAGAIN) — unless the stream already
                    // ended with these bytes: then the next read reports the end, and no edge
                    // would come for it.
                    if n < space && !to_the_end && !at_end {
                        keep_spare(&mut self.phase);
                        return Flow::Continue;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // Drained: a buffer kept for large frames is not kept while idle.
                    keep_spare(&mut self.phase);
                    return Flow::Continue;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return self.on_read_error(&e),
            }
        }
        // A peer that fills every read has had its share of this turn: the loop comes back to
        // it after the other connections' events, its timers and commands.
        cx.read_again_later(to_the_end);
        Flow::Continue
    }

    /// `n` bytes were read straight into the reader's buffer; `read_max`, the most a read may
    /// take. (Not inlined, as `direct_read_buffer`: only large frames come this way.)
    #[inline(never)]
    fn on_direct_read(&mut self, n: usize, read_max: usize) -> Flow {
        let Phase::Open(reader) = &mut self.phase else {
            return Flow::Continue;
        };
        let input = reader.direct_filled(n, read_max);
        self.on_input(input)
    }

    fn on_bytes(&mut self, data: &mut [u8]) -> Flow {
        if let Phase::Open(reader) = &mut self.phase {
            let input = reader.feed(data);
            return self.on_input(input);
        }
        match self.phase {
            Phase::Accepting(_) => self.on_upgrade_request(data),
            // After the closing handshake, whatever still arrives is dropped.
            _ => Flow::Continue,
        }
    }

    /// Hands everything in `input` to the application, frame by frame, while the connection is
    /// open. (Leaving the open phase drops the reader, and what it held.)
    pub(super) fn on_input(&mut self, mut input: Input<'_>) -> Flow {
        let mut flow = Flow::Continue;
        // Messages are handed over where they lie (see `deliver_messages`); a control frame is
        // copied out (at most 125 bytes), so that handling it may use the whole session.
        while let Phase::Open(reader) = &mut self.phase {
            let Some(control) = deliver_messages(&self.connection, reader, &mut input) else {
                break;
            };
            flow = self.on_control(control);
            if flow == Flow::Finished {
                break;
            }
        }
        flow
    }

    /// Feeds bytes that arrived with the opening handshake.
    pub(super) fn on_leftover(&mut self, mut leftover: Vec<u8>) -> Flow {
        let Phase::Open(reader) = &mut self.phase else {
            return Flow::Continue;
        };
        if leftover.is_empty() {
            return Flow::Continue;
        }
        let input = reader.feed(&mut leftover);
        self.on_input(input)
    }

    fn on_control(&mut self, control: Control) -> Flow {
        let limits = &self.connection.common.settings.limits;
        match control {
            Control::Ping(data) => {
                {
                    let mut io = self.connection.io();
                    let Io { endpoint, writer } = &mut *io;
                    // (A pong is skipped only for a peer that does not read.)
                    writer.flush_corked_past(limits.send_buffer_max);
                    endpoint.on_ping(data.bytes(), limits, writer);
                }
                self.emit(EventKind::Message, MessageKind::Ping, 0, data.bytes());
                Flow::Continue
            }
            Control::Pong(data) => {
                self.emit(EventKind::Message, MessageKind::Pong, 0, data.bytes());
                Flow::Continue
            }
            Control::Close { code, reason } => {
                let code = {
                    let mut io = self.connection.io();
                    let Io { endpoint, writer } = &mut *io;
                    endpoint.on_peer_close(code, Instant::now(), limits, writer)
                };
                self.closing_done(code, reason.bytes())
            }
            Control::Violation(violation) => self.fail(violation),
        }
    }

    /// Fails the connection (RFC 6455 section 7.1.7): the endpoint sends our close frame with
    /// the code first — so inside onError the connection already reports itself closed and a
    /// close from there cannot replace the code —, then onError, then onClose; the TCP close
    /// follows as the endpoint's policy says.
    fn fail(&mut self, violation: Violation) -> Flow {
        let code = {
            let mut io = self.connection.io();
            let Io { endpoint, writer } = &mut *io;
            endpoint.fail(&violation, writer)
        };
        let Some(code) = code else {
            return Flow::Continue;
        };
        log!(
            Info,
            "connection {}: closing with {code}: {}",
            self.id(),
            violation.reason
        );
        self.emit(
            EventKind::Error,
            MessageKind::None,
            code,
            violation.reason.as_bytes(),
        );
        let code = {
            let mut io = self.connection.io();
            io.endpoint
                .closing_done(Instant::now(), &self.connection.common.settings.limits)
        };
        self.closing_done(code, violation.reason.as_bytes())
    }

    /// The closing handshake is over (or the connection failed): onClose, then wait (bounded)
    /// for the TCP close as the endpoint's policy says.
    fn closing_done(&mut self, code: u16, reason: &[u8]) -> Flow {
        self.phase = Phase::Lingering {
            write_shut: false,
            left: false,
        };
        if self.connection.common.delegate.handles(EventKind::Close) {
            self.emit(EventKind::Close, MessageKind::None, code, reason);
        }
        // Done as far as the application is concerned: stopWsServer and finalize need not wait
        // for the TCP close that follows.
        self.leave_group();
        self.flush_and_check()
    }

    /// Writes what is waiting; once a lingering connection's close frame is out, ends TCP as
    /// the endpoint's policy says.
    pub(super) fn flush_and_check(&mut self) -> Flow {
        let lingering = matches!(self.phase, Phase::Lingering { .. });
        let (empty, broken, policy, timeout) = {
            let mut io = self.connection.io();
            let empty = io.writer.flush();
            let policy = io.endpoint.tcp_close();
            if empty
                && policy == TcpClose::ShutdownWriteThenWait
                && let Phase::Lingering { write_shut, .. } = &mut self.phase
                && !*write_shut
            {
                if let Some(transport) = io.writer.transport.as_mut() {
                    transport.shutdown_write();
                }
                *write_shut = true;
            }
            (empty, io.writer.broken, policy, io.endpoint.deadline())
        };
        if broken {
            return self.on_transport_gone("write failed");
        }
        if empty && lingering && policy == TcpClose::WhenFlushed {
            return self.finish();
        }
        self.deadline = timeout;
        Flow::Continue
    }

    /// The socket ended (EOF, reset, or a failed write).
    pub(super) fn on_transport_gone(&mut self, why: &str) -> Flow {
        match self.phase {
            Phase::Open(_) => {
                log!(
                    Debug,
                    "connection {}: {why} without a closing handshake",
                    self.id()
                );
                self.close_without_handshake()
            }
            Phase::Connecting(_) | Phase::OpenedElsewhere(_) | Phase::FailedElsewhere(_) => {
                self.fail_before_open(why)
            }
            _ => self.finish(),
        }
    }

    /// An open connection ends without a (complete) closing handshake: onClose with the code we
    /// failed it with, else 1006. The endpoint reports closed before onClose runs.
    fn close_without_handshake(&mut self) -> Flow {
        let code = self.connection.io().endpoint.ended();
        self.emit(EventKind::Close, MessageKind::None, code, &[]);
        self.finish()
    }

    /// A connection that never opened: onError 1006 (no onClose), then gone.
    pub(super) fn fail_before_open(&mut self, why: &str) -> Flow {
        self.fail_before_open_with(close::ABNORMAL, why)
    }

    /// A connection that never opened: onError with `code` (no onClose), then gone. (A blocking
    /// open marks the connection open before the loop adopts it: onError still sees it closed.)
    pub(super) fn fail_before_open_with(&mut self, code: u16, why: &str) -> Flow {
        log!(Warn, "connection {}: could not open: {why}", self.id());
        self.connection.io().endpoint.ended();
        self.emit(EventKind::Error, MessageKind::None, code, why.as_bytes());
        self.finish()
    }

    /// A read failed. A TLS failure is reported with 1015 (to a server's delegate too: the
    /// handshake failed before the connection opened); anything else ends the connection.
    pub(super) fn on_read_error(&mut self, err: &io::Error) -> Flow {
        let Some(failure) = tls_failure(err) else {
            return self.on_transport_gone(&format!("read failed: {err}"));
        };
        let what = failure.what.clone();
        match self.phase {
            Phase::Accepting(_) | Phase::Connecting(_) => {
                let peer = self
                    .connection
                    .peer_address()
                    .map(|a| a.to_string())
                    .unwrap_or_default();
                log!(Warn, "connection {} {peer}: {what}", self.id());
                self.connection.io().endpoint.ended();
                self.emit(
                    EventKind::Error,
                    MessageKind::None,
                    close::TLS_FAILURE,
                    what.as_bytes(),
                );
                self.finish()
            }
            Phase::Open(_) => {
                log!(Warn, "connection {}: {what}", self.id());
                let code = self.connection.io().endpoint.ended_with(close::TLS_FAILURE);
                self.emit(EventKind::Error, MessageKind::None, code, what.as_bytes());
                self.emit(EventKind::Close, MessageKind::None, code, &[]);
                self.finish()
            }
            _ => self.finish(),
        }
    }

    /// The application closed a connection that was still opening. If the handshake completed
    /// before this command ran (onOpen was delivered), close it properly instead.
    fn cancel_opening(&mut self) -> Flow {
        if matches!(self.phase, Phase::Open(_)) {
            let _ = self.connection.close(close::NORMAL.into(), "");
            self.refresh_deadline();
            return Flow::Continue;
        }
        self.abandon()
    }

    /// Stopped by finalize (the loop is ending): nothing waits for the peer any more.
    fn abandon(&mut self) -> Flow {
        match self.phase {
            Phase::Connecting(_) | Phase::OpenedElsewhere(_) | Phase::FailedElsewhere(_) => {
                self.fail_before_open("connection abandoned before it opened")
            }
            Phase::Open(_) => self.close_without_handshake(),
            _ => self.finish(),
        }
    }

    /// Closes the socket and forgets the connection, without callbacks.
    pub(super) fn finish(&mut self) -> Flow {
        {
            let mut io = self.connection.io();
            io.writer.flush();
            if let Some(transport) = io.writer.transport.as_mut() {
                transport.close();
            }
            // Closing the socket also removes it from the poll set (no descriptor is shared).
            io.writer.transport = None;
            io.endpoint.ended();
        }
        // (A lingering connection left its group when its closing handshake ended.)
        self.leave_group();
        self.phase = Phase::Finished;
        self.deadline = Deadline::default();
        Flow::Finished
    }

    pub(super) fn emit(&self, kind: EventKind, message: MessageKind, status: u16, data: &[u8]) {
        emit_to(&self.connection, kind, message, status, data);
    }
}

impl Drop for Session {
    /// A session dropped without finishing (its loop had ended, say) still leaves its group, so
    /// that nothing waits for it.
    fn drop(&mut self) {
        self.leave_group();
    }
}

impl Task for Session {
    fn start(&mut self, cx: &mut Context) -> Flow {
        self.connection.bias_to_loop(cx.event_loop);
        let flow = self.start_opening(cx);
        self.refresh_deadline();
        if flow == Flow::Continue {
            self.close_if_group_closing();
        }
        flow
    }

    fn ready(&mut self, cx: &mut Context, readiness: Readiness) -> Flow {
        // read_all and flush_and_check read the endpoint's timers under the lock they take.
        if let Phase::Connecting(_) = self.phase {
            let flow = self.on_connecting(cx, readiness);
            if flow == Flow::Continue {
                self.refresh_deadline();
            }
            return flow;
        }
        let readable = readiness.readable || readiness.closed;
        // An open connection's read ends with the uncork, which writes what waits: a writable
        // edge that comes with a read (every read does, edge-triggered) needs no flush first.
        if readiness.writable
            && !(readable && matches!(self.phase, Phase::Open(_)))
            && self.flush_and_check() == Flow::Finished
        {
            return Flow::Finished;
        }
        if readable {
            return self.read_all(cx, readiness.closed);
        }
        Flow::Continue
    }

    fn timeout(&mut self, _cx: &mut Context, now: Instant) -> Flow {
        let expired = {
            let mut io = self.connection.io();
            let Io { endpoint, writer } = &mut *io;
            endpoint.on_timeout(now, &self.connection.common.settings.limits, writer)
        };
        let flow = match expired {
            Expired::Handshake => match self.phase {
                Phase::Accepting(_) => {
                    log!(
                        Info,
                        "connection {}: no upgrade request within handshake-timeout-ms",
                        self.id()
                    );
                    self.finish()
                }
                _ => self.fail_before_open("opening handshake timed out (handshake-timeout-ms)"),
            },
            Expired::Close => {
                log!(
                    Info,
                    "connection {}: peer did not complete the closing handshake in time",
                    self.id()
                );
                self.close_without_handshake()
            }
            Expired::PeerSilent => {
                log!(
                    Info,
                    "connection {}: peer silent past websocket-pong-timeout-ms",
                    self.id()
                );
                self.close_without_handshake()
            }
            Expired::Linger => self.finish(),
            Expired::Nothing => Flow::Continue,
        };
        if flow == Flow::Continue {
            self.refresh_deadline();
        }
        flow
    }

    fn deadline(&self) -> Option<Instant> {
        self.deadline.get()
    }

    /// The library failed while handling this connection: end it with 1011 — onError and
    /// onClose for an open connection, onError for a client still opening, nothing for a
    /// server connection the application never saw — without trusting the rest of its state.
    fn panicked(&mut self, _cx: &mut Context) -> Flow {
        match self.phase {
            Phase::Open(_) if !self.connection.io().endpoint.failed() => {
                self.fail(violation(close::INTERNAL_ERROR, "internal error"));
                self.finish()
            }
            // Failed already (the panic came from its onError): onClose is still owed.
            Phase::Open(_) => self.close_without_handshake(),
            // The panic may have come from onClose, before the group was left: finish leaves it.
            Phase::Lingering { .. } | Phase::Finished | Phase::Accepting(_) => self.finish(),
            _ => self.fail_before_open_with(close::INTERNAL_ERROR, "internal error"),
        }
    }

    fn shutdown(&mut self, _cx: &mut Context) {
        self.abandon();
    }

    fn as_any(&mut self) -> &mut dyn Any {
        self
    }

    fn id(&self) -> u64 {
        self.connection.id
    }
}
