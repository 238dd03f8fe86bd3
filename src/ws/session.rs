//! The event-loop side of a connection: the opening handshake, reading frames, reassembling
//! messages, answering pings, the closing handshake, and every callback. Only the owning event
//! loop touches a session, so none of this state is locked.
//!
//! Read path: the loop reads into its one receive buffer; complete frames are unmasked in
//! place and handed to the callback from there. Only a frame cut by the end of a read is kept
//! in the session (`partial`), and only a fragmented message is assembled (`message`); both
//! are empty, and own no memory, while the connection is idle.

use super::client::TlsTarget;
use super::connection::{Connection, Role, State};
use super::event::{Event, EventKind, MessageKind};
use super::frame::{self, FrameInfo, Opcode, PROTOCOL_ERROR, Parse, Violation};
use super::handshake::{ClientHandshake, ClientStep, ServerHandshake, ServerStep};
use crate::log::log;
use crate::runtime::ConnectionGroup;
use crate::transport::Transport;
use crate::transport::tls::tls_failure;
use mio::{Registry, Token};
use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::mpsc::SyncSender;
use std::time::Instant;

/// Buffers that grew past this are released after use.
const KEEP_CAPACITY: usize = 4096;

/// Frames at least this large are read straight into the connection's own buffer.
const LARGE_FRAME: usize = 16 * 1024;

/// How much a direct read asks for beyond the frame in progress: the next frames' bytes too,
/// so a stream of large frames costs about one read per frame.
const DIRECT_READ: usize = 64 * 1024;

const ABNORMAL: u16 = 1006;
const TLS_FAILURE: u16 = 1015;

enum Phase {
    /// Server: waiting for the HTTP upgrade request.
    Accepting(ServerHandshake),
    /// Client: name resolution (off the loop), TCP connect, then the upgrade request and
    /// response.
    Connecting(Box<Connecting>),
    /// Client opened by a blocking `wsOpenConnection`: onOpen is still to be delivered (then the
    /// waiting caller is told), and `leftover` bytes arrived right after the handshake.
    OpenedElsewhere {
        leftover: Vec<u8>,
        opened: Option<SyncSender<()>>,
    },
    /// Client whose blocking `wsOpenConnection` failed: onError is still to be delivered.
    FailedElsewhere {
        code: u16,
        why: String,
    },
    Open,
    /// Closing handshake done and onClose delivered: waiting for the TCP close.
    Lingering,
    Finished,
}

struct Connecting {
    handshake: ClientHandshake,
    request_sent: bool,
    /// The host's addresses are still being looked up: `Command::Resolved` brings them.
    resolving: bool,
    /// Addresses not tried yet.
    remaining: VecDeque<SocketAddr>,
    /// For wss: the TLS configuration and server name, for each address tried.
    tls: Option<TlsTarget>,
}

/// What the loop must do after a session handled something.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Continue,
    Finished,
}

pub struct Session {
    pub connection: Arc<Connection>,
    group: Arc<ConnectionGroup>,
    phase: Phase,
    /// A frame cut by the end of a read: `partial[..partial_filled]` holds its bytes so far.
    /// While large frames flow, reads go straight into this buffer (no copy through the loop's
    /// buffer); it is freed once small frames follow.
    partial: Vec<u8>,
    partial_filled: usize,
    /// The size of the cut frame once its header is known, else 0.
    partial_needed: usize,
    /// The last complete frame was large: keep `partial` for the next one.
    large_frames: bool,
    /// Our FIN is sent (a failed server connection waiting for the peer's).
    write_shut: bool,
    /// Fragments of the message being assembled, and its type.
    message: Vec<u8>,
    message_opcode: Option<Opcode>,
    utf8_valid_upto: usize,
    /// The peer's close code once its close frame arrived.
    close_received: Option<u16>,
    /// The code we failed the connection with (reported by onClose).
    failure: Option<u16>,
    pub deadline: Option<Instant>,
}

/// What a session may use of its event loop while handling an event.
pub struct Context<'a> {
    pub registry: &'a Registry,
    pub receive_buffer: &'a mut Vec<u8>,
}

impl Session {
    fn new(connection: Arc<Connection>, group: Arc<ConnectionGroup>, phase: Phase) -> Box<Session> {
        let deadline = match phase {
            Phase::Accepting(_) | Phase::Connecting(_) => {
                Some(Instant::now() + connection.settings.handshake_timeout)
            }
            _ => None,
        };
        Box::new(Session {
            connection,
            group,
            phase,
            partial: Vec::new(),
            partial_filled: 0,
            partial_needed: 0,
            large_frames: false,
            write_shut: false,
            message: Vec::new(),
            message_opcode: None,
            utf8_valid_upto: 0,
            close_received: None,
            failure: None,
            deadline,
        })
    }

    /// An accepted socket, before its upgrade request.
    pub fn accepted(connection: Arc<Connection>, group: Arc<ConnectionGroup>) -> Box<Session> {
        Self::new(
            connection,
            group,
            Phase::Accepting(ServerHandshake::default()),
        )
    }

    /// A client to open on the loop: it connects to `addresses` in turn when started, or, with
    /// `None`, waits for them from the resolver (`on_resolved`). `handshake-timeout-ms` bounds
    /// the whole open.
    pub fn connecting(
        connection: Arc<Connection>,
        group: Arc<ConnectionGroup>,
        handshake: ClientHandshake,
        addresses: Option<Vec<SocketAddr>>,
        tls: Option<TlsTarget>,
    ) -> Box<Session> {
        let connecting = Connecting {
            handshake,
            request_sent: false,
            resolving: addresses.is_none(),
            remaining: addresses.unwrap_or_default().into(),
            tls,
        };
        Self::new(connection, group, Phase::Connecting(Box::new(connecting)))
    }

    /// A client opened by the caller's thread; `leftover` arrived right after the handshake;
    /// `opened` is signalled once onOpen has returned.
    pub fn opened(
        connection: Arc<Connection>,
        group: Arc<ConnectionGroup>,
        leftover: Vec<u8>,
        opened: Option<SyncSender<()>>,
    ) -> Box<Session> {
        Self::new(
            connection,
            group,
            Phase::OpenedElsewhere { leftover, opened },
        )
    }

    /// A client whose blocking open failed on the caller's thread.
    pub fn failed(
        connection: Arc<Connection>,
        group: Arc<ConnectionGroup>,
        code: u16,
        why: String,
    ) -> Box<Session> {
        Self::new(connection, group, Phase::FailedElsewhere { code, why })
    }

    pub fn id(&self) -> u64 {
        self.connection.id
    }

    /// Registers the socket with the loop and runs what must happen first.
    pub fn start(&mut self, ctx: &mut Context) -> Outcome {
        if let Phase::FailedElsewhere { code, why } = &self.phase {
            let code = *code;
            let why = why.clone();
            return self.fail_before_open_with(code, &why);
        }
        if let Phase::Connecting(connecting) = &self.phase {
            // The loop makes the connect itself: to a literal address now, to a host name's
            // addresses when the resolver's answer comes.
            if connecting.resolving {
                return Outcome::Continue;
            }
            return self.connect_next(ctx, "no address to connect to".into());
        }
        let token = Token(self.connection.id as usize);
        let registered = {
            let mut io = self.connection.io.lock();
            match io.transport.as_mut() {
                Some(transport) => transport.register(ctx.registry, token),
                None => Err(io::Error::new(io::ErrorKind::NotConnected, "no socket")),
            }
        };
        if let Err(err) = registered {
            log!(
                Warn,
                "connection {}: cannot watch the socket: {err}",
                self.id()
            );
            return self.fail_before_open(&format!("cannot watch the socket: {err}"));
        }
        if let Phase::OpenedElsewhere { leftover, opened } = &mut self.phase {
            let mut leftover = std::mem::take(leftover);
            let opened = opened.take();
            self.phase = Phase::Open;
            self.emit(EventKind::Open, MessageKind::None, 0, &[]);
            if let Some(opened) = opened {
                let _ = opened.send(());
            }
            if !leftover.is_empty() && self.on_frames(&mut leftover) == Outcome::Finished {
                return Outcome::Finished;
            }
            // The opening thread may have left bytes in the socket, or decrypted ones inside
            // the TLS session, that no readiness edge will announce: read them now.
            return self.read_all(ctx, false);
        }
        Outcome::Continue
    }

    /// Handles readiness of the socket. `peer_closed` (the peer's FIN or an error was reported)
    /// means reading must go on to the end: no further readiness edge will come.
    pub fn on_ready(
        &mut self,
        ctx: &mut Context,
        readable: bool,
        writable: bool,
        peer_closed: bool,
    ) -> Outcome {
        if let Phase::Connecting(_) = self.phase {
            return self.on_connecting(ctx, readable || peer_closed);
        }
        if writable && self.flush_and_check() == Outcome::Finished {
            return Outcome::Finished;
        }
        if readable || peer_closed {
            return self.read_all(ctx, peer_closed);
        }
        Outcome::Continue
    }

    /// Writes what is waiting; finishes the server side's TCP close once a lingering session
    /// has flushed its close frame.
    fn flush_and_check(&mut self) -> Outcome {
        let mut io = self.connection.io.lock();
        let empty = io.flush();
        let broken = io.broken;
        let lingering_server =
            matches!(self.phase, Phase::Lingering) && self.connection.role == Role::Server;
        if empty && lingering_server && self.failure.is_some() && !self.write_shut {
            // We failed the connection: the peer may still be sending, and closing now could
            // reset the connection before it reads our close frame. Send FIN and wait for its.
            if let Some(transport) = io.transport.as_mut() {
                transport.shutdown_write();
            }
            self.write_shut = true;
        }
        drop(io);
        if broken {
            return self.on_transport_gone("write failed");
        }
        if empty && lingering_server && self.failure.is_none() {
            // Both close frames exchanged and ours is out: the server closes TCP first.
            return self.finish();
        }
        Outcome::Continue
    }

    fn read_all(&mut self, ctx: &mut Context, to_the_end: bool) -> Outcome {
        let mut buffer = std::mem::take(ctx.receive_buffer);
        let outcome = loop {
            let direct = matches!(self.phase, Phase::Open)
                && (self.large_frames || self.partial_needed >= LARGE_FRAME);
            let (result, space, at_end) = {
                let mut io = self.connection.io.lock();
                io.corked = true;
                let Some(transport) = io.transport.as_mut() else {
                    break Outcome::Continue;
                };
                let (result, space) = if direct {
                    let want = self.partial_needed.max(self.partial_filled) + DIRECT_READ;
                    if self.partial.len() < want {
                        self.partial.resize(want, 0);
                    }
                    let target = &mut self.partial[self.partial_filled..];
                    (transport.read(target), target.len())
                } else {
                    (transport.read(&mut buffer), buffer.len())
                };
                (result, space, transport.at_end())
            };
            match result {
                Ok(0) => break self.on_transport_gone("peer closed the TCP connection"),
                Ok(n) => {
                    let outcome = if direct {
                        self.partial_filled += n;
                        self.parse_partial()
                    } else {
                        self.on_bytes(&mut buffer[..n])
                    };
                    if outcome == Outcome::Finished {
                        break Outcome::Finished;
                    }
                    // A short read drained the socket: the next arrival raises a new edge
                    // (saves a read that would only say EAGAIN).
                    // (Unless the stream already ended with these bytes: then the next read
                    // reports the end, and no edge would come for it.)
                    if n < space && !to_the_end && !at_end {
                        break Outcome::Continue;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break Outcome::Continue,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => break self.on_read_error(&e),
            }
        };
        *ctx.receive_buffer = buffer;
        if outcome == Outcome::Finished {
            return outcome;
        }
        let broken = {
            let mut io = self.connection.io.lock();
            io.uncork();
            io.broken
        };
        if broken {
            return self.on_transport_gone("write failed");
        }
        outcome
    }

    fn on_bytes(&mut self, data: &mut [u8]) -> Outcome {
        match &mut self.phase {
            Phase::Accepting(handshake) => {
                let step = handshake.feed(data, &self.connection.settings.protocols);
                self.on_server_handshake(step)
            }
            Phase::Open => self.on_frames(data),
            // After the closing handshake, whatever still arrives is dropped.
            Phase::Lingering | Phase::Finished => Outcome::Continue,
            Phase::Connecting(_)
            | Phase::OpenedElsewhere { .. }
            | Phase::FailedElsewhere { .. } => Outcome::Continue,
        }
    }

    fn on_server_handshake(&mut self, step: ServerStep) -> Outcome {
        match step {
            ServerStep::NeedMore => Outcome::Continue,
            ServerStep::Refuse(refused) => {
                log!(
                    Info,
                    "connection {}: upgrade refused: {}",
                    self.id(),
                    refused.reason
                );
                self.connection.io.lock().write_raw(&refused.response);
                self.finish()
            }
            ServerStep::Accept(accepted) => {
                {
                    let mut io = self.connection.io.lock();
                    io.write_raw(&accepted.response);
                    io.state = State::Open;
                }
                self.connection.set_protocol(accepted.protocol);
                self.phase = Phase::Open;
                self.deadline = None;
                self.emit(EventKind::Open, MessageKind::None, 0, &[]);
                let mut leftover = accepted.leftover;
                if leftover.is_empty() {
                    Outcome::Continue
                } else {
                    self.on_frames(&mut leftover)
                }
            }
        }
    }

    fn on_connecting(&mut self, ctx: &mut Context, readable: bool) -> Outcome {
        let Phase::Connecting(connecting) = &mut self.phase else {
            return Outcome::Continue;
        };
        if !connecting.request_sent {
            let mut io = self.connection.io.lock();
            let Some(transport) = io.transport.as_mut() else {
                return Outcome::Continue;
            };
            let failure = match transport.take_error() {
                Ok(Some(err)) | Err(err) => Some(err),
                Ok(None) => match transport.peer_addr() {
                    Ok(peer) => {
                        self.connection.set_peer_address(peer);
                        None
                    }
                    Err(err) if err.kind() == io::ErrorKind::NotConnected => {
                        return Outcome::Continue;
                    }
                    Err(err) => Some(err),
                },
            };
            if let Some(err) = failure {
                // Dropping the failed socket closes it, which also takes it out of the poll set.
                io.transport = None;
                drop(io);
                return self.connect_next(ctx, format!("connect failed: {err}"));
            }
            io.write_raw(connecting.handshake.request());
            connecting.request_sent = true;
        }
        if !readable {
            return Outcome::Continue;
        }
        let mut buffer = std::mem::take(ctx.receive_buffer);
        let outcome = loop {
            let result = {
                let mut io = self.connection.io.lock();
                io.transport.as_mut().map(|t| t.read(&mut buffer))
            };
            let Phase::Connecting(connecting) = &mut self.phase else {
                break Outcome::Continue;
            };
            match result {
                None => break Outcome::Continue,
                Some(Ok(0)) => {
                    break self
                        .fail_before_open("server closed the connection during the handshake");
                }
                Some(Ok(n)) => match connecting.handshake.feed(&buffer[..n]) {
                    Ok(ClientStep::NeedMore) => continue,
                    Ok(ClientStep::Open {
                        protocol,
                        mut leftover,
                    }) => {
                        self.connection.set_protocol(protocol);
                        self.connection.io.lock().state = State::Open;
                        self.phase = Phase::Open;
                        self.deadline = None;
                        self.emit(EventKind::Open, MessageKind::None, 0, &[]);
                        *ctx.receive_buffer = std::mem::take(&mut buffer);
                        if !leftover.is_empty()
                            && self.on_frames(&mut leftover) == Outcome::Finished
                        {
                            return Outcome::Finished;
                        }
                        // Go on reading to the end: the socket (or the TLS session) may hold
                        // more than this read took, and no new edge would announce it.
                        return self.read_all(ctx, false);
                    }
                    Err(err) => break self.fail_before_open(&err.message),
                },
                Some(Err(e)) if e.kind() == io::ErrorKind::WouldBlock => break Outcome::Continue,
                Some(Err(e)) if e.kind() == io::ErrorKind::Interrupted => continue,
                Some(Err(e)) => break self.on_read_error(&e),
            }
        };
        *ctx.receive_buffer = buffer;
        outcome
    }

    /// The resolver's answer for a client still resolving: connect to the addresses in turn.
    /// (An answer for a session that is gone, timed out say, never gets here.)
    pub fn on_resolved(
        &mut self,
        ctx: &mut Context,
        answer: Result<Vec<SocketAddr>, String>,
    ) -> Outcome {
        let Phase::Connecting(connecting) = &mut self.phase else {
            return Outcome::Continue;
        };
        if !connecting.resolving {
            return Outcome::Continue;
        }
        connecting.resolving = false;
        match answer {
            Ok(addresses) => {
                connecting.remaining = addresses.into();
                self.connect_next(ctx, "the host name has no address".into())
            }
            Err(why) => self.fail_before_open(&why),
        }
    }

    /// Starts a non-blocking connect to the next address not tried yet. When none is left:
    /// onError with the last address's failure, or `why_not` if there was none to try.
    fn connect_next(&mut self, ctx: &mut Context, why_not: String) -> Outcome {
        let Phase::Connecting(connecting) = &mut self.phase else {
            return Outcome::Continue;
        };
        let mut why_not = why_not;
        let token = Token(self.connection.id as usize);
        while let Some(next) = connecting.remaining.pop_front() {
            let started = mio::net::TcpStream::connect(next)
                .map_err(|e| format!("connect to {next} failed: {e}"))
                .and_then(|stream| {
                    Transport::connected(stream, connecting.tls.as_ref()).map_err(|e| e.message)
                })
                .and_then(|mut transport| {
                    transport
                        .register(ctx.registry, token)
                        .map(|()| transport)
                        .map_err(|e| format!("cannot watch the socket: {e}"))
                });
            match started {
                Ok(transport) => {
                    self.connection.io.lock().transport = Some(transport);
                    return Outcome::Continue;
                }
                Err(why) => {
                    log!(Debug, "connection {}: {why}", self.connection.id);
                    why_not = why;
                }
            }
        }
        self.fail_before_open(&why_not)
    }

    /// Parses frames from newly read bytes, continuing a frame cut by the previous read.
    fn on_frames(&mut self, data: &mut [u8]) -> Outcome {
        if self.partial_filled > 0 {
            self.append_partial(data);
            return self.parse_partial();
        }
        let (consumed, outcome, needed) = self.parse_frames(data);
        if outcome == Outcome::Continue && consumed < data.len() {
            self.partial_needed = needed;
            self.append_partial(&data[consumed..]);
        }
        outcome
    }

    fn append_partial(&mut self, data: &[u8]) {
        let end = self.partial_filled + data.len();
        if self.partial.len() < end {
            self.partial.resize(end.max(self.partial_needed), 0);
        }
        self.partial[self.partial_filled..end].copy_from_slice(data);
        self.partial_filled = end;
    }

    /// Parses what `partial` holds; keeps the unfinished rest at its start.
    fn parse_partial(&mut self) -> Outcome {
        let mut partial = std::mem::take(&mut self.partial);
        let filled = self.partial_filled;
        let (consumed, outcome, needed) = self.parse_frames(&mut partial[..filled]);
        if outcome == Outcome::Finished {
            return outcome;
        }
        partial.copy_within(consumed..filled, 0);
        self.partial_filled = filled - consumed;
        self.partial_needed = needed;
        let idle = self.partial_filled == 0 && !self.large_frames;
        if !(idle && partial.len() > KEEP_CAPACITY) {
            self.partial = partial;
        }
        outcome
    }

    /// Handles every complete frame in `buffer`; returns how many bytes were used, and the size
    /// of the frame cut at the end once its header is known (else 0).
    fn parse_frames(&mut self, buffer: &mut [u8]) -> (usize, Outcome, usize) {
        let expect_masked = self.connection.role == Role::Server;
        let mut offset = 0;
        while offset < buffer.len() {
            let room = self
                .connection
                .settings
                .message_size_max
                .saturating_sub(self.message.len());
            match frame::parse(&mut buffer[offset..], expect_masked, room) {
                // Once failed, only the peer's close frame matters; a second violation ends parsing.
                Err(_) if self.failure.is_some() => return (buffer.len(), Outcome::Continue, 0),
                Err(violation) => return (buffer.len(), self.fail(violation), 0),
                Ok(Parse::Incomplete { frame_len }) => {
                    return (offset, Outcome::Continue, frame_len.unwrap_or(0));
                }
                Ok(Parse::Frame(info)) => {
                    let start = offset + info.payload_start;
                    offset = start + info.payload_len;
                    self.large_frames = info.payload_len >= LARGE_FRAME;
                    let outcome = self.on_frame(info, &buffer[start..offset]);
                    if outcome == Outcome::Finished || !matches!(self.phase, Phase::Open) {
                        return (buffer.len(), outcome, 0);
                    }
                }
            }
        }
        (offset, Outcome::Continue, 0)
    }

    fn on_frame(&mut self, info: FrameInfo, payload: &[u8]) -> Outcome {
        if self.failure.is_some() && info.opcode != Opcode::Close {
            return Outcome::Continue;
        }
        match info.opcode {
            Opcode::Text | Opcode::Binary => {
                if self.message_opcode.is_some() {
                    return self.fail(frame::violation(
                        PROTOCOL_ERROR,
                        "new message inside a fragmented one",
                    ));
                }
                if info.fin {
                    if info.opcode == Opcode::Text && std::str::from_utf8(payload).is_err() {
                        return self.fail(frame::violation(
                            frame::INVALID_DATA,
                            "text message is not UTF-8",
                        ));
                    }
                    self.deliver(info.opcode, payload);
                    return Outcome::Continue;
                }
                self.message_opcode = Some(info.opcode);
                self.append_fragment(payload)
            }
            Opcode::Continuation => {
                let Some(opcode) = self.message_opcode else {
                    return self.fail(frame::violation(
                        PROTOCOL_ERROR,
                        "continuation without a message",
                    ));
                };
                let outcome = self.append_fragment(payload);
                // A failed fragment has started the closing (the phase moved on): parsing
                // stops there, and the session lives on to finish it.
                if outcome == Outcome::Finished || !matches!(self.phase, Phase::Open) {
                    return outcome;
                }
                if info.fin {
                    if opcode == Opcode::Text && self.utf8_valid_upto != self.message.len() {
                        return self.fail(frame::violation(
                            frame::INVALID_DATA,
                            "text message ends inside a UTF-8 sequence",
                        ));
                    }
                    let message = std::mem::take(&mut self.message);
                    self.message_opcode = None;
                    self.utf8_valid_upto = 0;
                    self.deliver(opcode, &message);
                    if message.capacity() <= KEEP_CAPACITY {
                        self.message = message;
                        self.message.clear();
                    }
                }
                Outcome::Continue
            }
            Opcode::Ping => {
                {
                    let mut io = self.connection.io.lock();
                    // A peer that pings without reading gets no more pongs once the send buffer
                    // is full (RFC 6455 5.5.3 allows answering only some pings): memory stays
                    // bounded by send-buffer-size-max.
                    if io.state == State::Open
                        && io.queued() <= self.connection.settings.send_buffer_max
                    {
                        io.write_frame(self.connection.role, Opcode::Pong, true, payload);
                    }
                }
                self.emit(EventKind::Message, MessageKind::Ping, 0, payload);
                Outcome::Continue
            }
            Opcode::Pong => {
                self.emit(EventKind::Message, MessageKind::Pong, 0, payload);
                Outcome::Continue
            }
            Opcode::Close => match frame::parse_close_payload(payload) {
                Err(violation) => self.fail(violation),
                Ok((code, _reason)) => self.on_close_frame(code, payload),
            },
        }
    }

    fn append_fragment(&mut self, payload: &[u8]) -> Outcome {
        if self.message.len() + payload.len() > self.connection.settings.message_size_max {
            return self.fail(frame::violation(
                frame::TOO_BIG,
                "message larger than websocket-message-size-max",
            ));
        }
        self.message.extend_from_slice(payload);
        if self.message_opcode == Some(Opcode::Text) {
            // Check as fragments arrive, so invalid text fails fast; an incomplete sequence at
            // the end may still be completed by the next fragment.
            match std::str::from_utf8(&self.message[self.utf8_valid_upto..]) {
                Ok(_) => self.utf8_valid_upto = self.message.len(),
                Err(err) if err.error_len().is_some() => {
                    return self.fail(frame::violation(
                        frame::INVALID_DATA,
                        "text message is not UTF-8",
                    ));
                }
                Err(err) => self.utf8_valid_upto += err.valid_up_to(),
            }
        }
        Outcome::Continue
    }

    /// Hands a whole message to onMessage. Messages that arrive after our own close frame are
    /// still delivered: the peer may have sent them before it saw our close (RFC 6455 section
    /// 1.4 discards data only after the peer's close frame).
    fn deliver(&self, opcode: Opcode, payload: &[u8]) {
        #[cfg(test)]
        if payload == super::tests::PANIC_TRIGGER {
            panic!("a panic injected by a test");
        }
        let message_type = if opcode == Opcode::Text {
            MessageKind::Text
        } else {
            MessageKind::Binary
        };
        self.emit(EventKind::Message, message_type, 0, payload);
    }

    /// The peer's close frame: answer it if we have not closed yet; the handshake is then done.
    fn on_close_frame(&mut self, code: u16, payload: &[u8]) -> Outcome {
        self.close_received = Some(code);
        {
            let mut io = self.connection.io.lock();
            if io.state == State::Open {
                let echo = if code == 1005 { None } else { Some(code) };
                io.write_close(self.connection.role, echo, "");
            }
        }
        let reason = payload.get(2..).unwrap_or_default();
        self.closing_handshake_done(reason)
    }

    /// Both close frames are exchanged: report onClose, then wait (bounded) for the TCP close.
    /// The server closes TCP first (RFC 6455 section 7.1.1); a client waits for it.
    fn closing_handshake_done(&mut self, reason: &[u8]) -> Outcome {
        let code = self.failure.or(self.close_received).unwrap_or(ABNORMAL);
        self.phase = Phase::Lingering;
        self.deadline = Some(Instant::now() + self.connection.settings.close_timeout);
        self.release_message_memory();
        self.emit(EventKind::Close, MessageKind::None, code, reason);
        // Done as far as the application is concerned: stopWsServer and finalize need not wait
        // for the TCP close that follows.
        self.group.remove(self.connection.id);
        self.flush_and_check()
    }

    /// Fails the connection (RFC 6455 section 7.1.7): our close frame with the code, onError
    /// with it, onClose with it, then the TCP close without waiting for the peer's answer.
    /// The close frame goes out first, so that inside onError the connection already reports
    /// itself closed and a `wsCloseConnection` there cannot replace the failure's code.
    fn fail(&mut self, violation: Violation) -> Outcome {
        if self.failure.is_some() {
            return Outcome::Continue;
        }
        log!(
            Info,
            "connection {}: closing with {}: {}",
            self.id(),
            violation.code,
            violation.reason
        );
        self.failure = Some(violation.code);
        {
            let mut io = self.connection.io.lock();
            if io.state == State::Open {
                io.write_close(self.connection.role, Some(violation.code), violation.reason);
            }
        }
        self.emit(
            EventKind::Error,
            MessageKind::None,
            violation.code,
            violation.reason.as_bytes(),
        );
        self.closing_handshake_done(violation.reason.as_bytes())
    }

    fn release_message_memory(&mut self) {
        self.message = Vec::new();
        self.message_opcode = None;
        self.utf8_valid_upto = 0;
    }

    /// The user (or a server stop) sent our close frame: start the close timer.
    pub fn on_close_started(&mut self) {
        if matches!(self.phase, Phase::Open) {
            self.deadline = Some(Instant::now() + self.connection.settings.close_timeout);
        }
    }

    /// The socket ended (EOF, reset, or write failure).
    fn on_transport_gone(&mut self, why: &str) -> Outcome {
        match self.phase {
            Phase::Open => {
                log!(
                    Debug,
                    "connection {}: {why} without a closing handshake",
                    self.id()
                );
                self.close_without_handshake()
            }
            Phase::Connecting(_)
            | Phase::OpenedElsewhere { .. }
            | Phase::FailedElsewhere { .. } => self.fail_before_open(why),
            _ => self.finish(),
        }
    }

    /// The deadline passed: a handshake that never completed, or a peer that never answered.
    pub fn on_timeout(&mut self) -> Outcome {
        self.deadline = None;
        match self.phase {
            Phase::Accepting(_) => {
                log!(
                    Info,
                    "connection {}: no upgrade request within handshake-timeout-ms",
                    self.id()
                );
                self.finish()
            }
            Phase::Connecting(_) => {
                self.fail_before_open("opening handshake timed out (handshake-timeout-ms)")
            }
            Phase::Open => {
                log!(
                    Info,
                    "connection {}: peer did not complete the closing handshake in time",
                    self.id()
                );
                self.close_without_handshake()
            }
            _ => self.finish(),
        }
    }

    /// The application closed a connection that was still opening. If the handshake completed
    /// before this command ran (onOpen was delivered), close it properly instead.
    pub fn cancel_opening(&mut self) -> Outcome {
        if matches!(self.phase, Phase::Open) {
            let _ = self.connection.close(1000, "");
            self.on_close_started();
            return Outcome::Continue;
        }
        self.abandon()
    }

    /// Stopped by finalize (the loop is ending): nothing waits for the peer any more.
    pub fn abandon(&mut self) -> Outcome {
        match self.phase {
            Phase::Connecting(_)
            | Phase::OpenedElsewhere { .. }
            | Phase::FailedElsewhere { .. } => {
                self.fail_before_open("connection abandoned before it opened")
            }
            Phase::Open => self.close_without_handshake(),
            _ => self.finish(),
        }
    }

    /// An open connection ends without a (complete) closing handshake: onClose with the code we
    /// failed it with, else 1006.
    fn close_without_handshake(&mut self) -> Outcome {
        let code = self.failure.unwrap_or(ABNORMAL);
        self.mark_closed();
        self.emit(EventKind::Close, MessageKind::None, code, &[]);
        self.finish()
    }

    /// A client that never opened: onError 1006 (no onClose), then gone.
    fn fail_before_open(&mut self, why: &str) -> Outcome {
        self.fail_before_open_with(ABNORMAL, why)
    }

    /// A connection that never opened: onError with `code` (no onClose), then gone.
    fn fail_before_open_with(&mut self, code: u16, why: &str) -> Outcome {
        log!(Warn, "connection {}: could not open: {why}", self.id());
        // A blocking open marks the connection open before the loop adopts it: if adopting
        // fails, onError must still see it closed.
        self.mark_closed();
        self.emit(EventKind::Error, MessageKind::None, code, why.as_bytes());
        self.finish()
    }

    /// A read failed. A TLS failure is reported with 1015 (to a server's delegate too: the
    /// handshake failed before the connection opened); anything else ends the connection.
    fn on_read_error(&mut self, err: &io::Error) -> Outcome {
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
                self.emit(
                    EventKind::Error,
                    MessageKind::None,
                    TLS_FAILURE,
                    what.as_bytes(),
                );
                self.finish()
            }
            Phase::Open => {
                log!(Warn, "connection {}: {what}", self.id());
                self.failure = Some(TLS_FAILURE);
                self.mark_closed();
                self.emit(
                    EventKind::Error,
                    MessageKind::None,
                    TLS_FAILURE,
                    what.as_bytes(),
                );
                self.emit(EventKind::Close, MessageKind::None, TLS_FAILURE, &[]);
                self.finish()
            }
            _ => self.finish(),
        }
    }

    /// The library failed while handling this connection (a panic caught by the event loop):
    /// end it with 1011 — onError and onClose for an open connection, onError for one still
    /// opening — without trusting the rest of its state.
    pub fn on_internal_error(&mut self) -> Outcome {
        const INTERNAL_ERROR: u16 = 1011;
        match self.phase {
            Phase::Open if self.failure.is_none() => {
                self.fail(frame::violation(INTERNAL_ERROR, "internal error"));
                self.finish()
            }
            Phase::Open => self.close_without_handshake(),
            // A server connection the application never saw opened gets no callback.
            Phase::Lingering | Phase::Finished | Phase::Accepting(_) => self.finish(),
            _ => self.fail_before_open_with(INTERNAL_ERROR, "internal error"),
        }
    }

    /// From now on the connection reports itself closed (`wsConnectionIsOpen` 0, sends fail
    /// with `ENOTCONN`): set before onError/onClose tell the application it ended.
    fn mark_closed(&self) {
        self.connection.io.lock().state = State::Closed;
    }

    /// Closes the socket and forgets the connection, without callbacks.
    pub fn finish(&mut self) -> Outcome {
        {
            let mut io = self.connection.io.lock();
            io.flush();
            if let Some(transport) = io.transport.as_mut() {
                transport.close();
            }
            // Closing the socket also removes it from the poll set (no descriptor is shared).
            io.transport = None;
            io.state = State::Closed;
        }
        self.phase = Phase::Finished;
        self.deadline = None;
        self.partial = Vec::new();
        self.partial_filled = 0;
        self.release_message_memory();
        self.group.remove(self.connection.id);
        Outcome::Finished
    }

    fn emit(&self, kind: EventKind, message: MessageKind, status: u16, data: &[u8]) {
        self.connection.delegate.invoke(&Event {
            kind,
            message,
            status,
            data,
            connection: &self.connection,
        });
    }
}
