//! The sending half and the policy of a connection: its state, the frames it sends (messages,
//! pongs, close frames, keepalive pings), the closing handshake, how a failure ends it, and its
//! timers. Frames go to a [`FrameSink`] the caller provides (the socket, or a test's buffer);
//! time comes in as arguments. The owner keeps it where every sender reaches it — under the
//! connection's lock — so a send from any thread frames and writes at once.

use super::close::{ABNORMAL, NO_STATUS, Violation, close_code_is_sendable, close_payload};
use super::deadline::Deadline;
use super::frame::{EncodedHeader, MAX_HEADER, Opcode};
use super::{Limits, Role};
use std::num::NonZeroU16;
use std::time::Instant;

/// Where outgoing frames go.
pub trait FrameSink {
    /// One frame: `header`, then `payload` — masked with `mask` on the way out when it is given
    /// (the payload itself is the caller's and is not changed).
    fn frame(&mut self, header: &[u8], payload: &[u8], mask: Option<[u8; 4]>);
    /// [`FrameSink::frame`] with the header as encoded: a sink may write its padded bytes at
    /// once, cheaper than a copy of a length known only at run time.
    #[inline(always)]
    fn frame_in(&mut self, header: EncodedHeader, payload: &[u8], mask: Option<[u8; 4]>) {
        self.frame(&header.padded()[..header.size()], payload, mask);
    }
    /// Bytes accepted but not yet written.
    fn queued(&self) -> usize;
    /// How far the peer's TCP has acknowledged what was queued: (acknowledged, the end of
    /// what is queued now), as positions in the byte stream modulo 2^32. None where the sink
    /// cannot tell.
    fn acknowledged(&self) -> Option<(u32, u32)> {
        None
    }
    /// A fresh masking key for a client frame. RFC 6455 section 5.3 wants it unpredictable: the
    /// owner draws it from its random source (a test or a fuzzer may use a fixed one).
    fn mask_key(&mut self) -> [u8; 4];
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// The opening handshake is not done.
    Opening,
    /// Messages flow both ways.
    Open,
    /// Our close frame is out (the application closed, or we failed the connection): nothing
    /// more may be sent; the peer's close frame is awaited.
    Closing,
    /// The closing handshake is over, or the connection ended without one.
    Closed,
}

/// A message the application sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outgoing {
    Text,
    Binary,
    Ping,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// Not open (yet, or any more).
    NotOpen(State),
    /// A ping's payload is limited to 125 bytes.
    PingTooLong(usize),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseError {
    /// A code an endpoint may not send (1005, 1006, 1015, out of range, …).
    CodeNotSendable(i32),
    /// A close reason is limited to 123 bytes.
    ReasonTooLong(usize),
}

/// Who starts a closing handshake ([`Endpoint::close`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseBy {
    /// The application: the close timeout waits for a peer still reading what came before.
    Application,
    /// A stop (of a server, a service, the library), which waits for it a bounded time: the
    /// close timeout is final.
    Stop,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseStarted {
    /// Our close frame is queued; the peer's answer (or the close timeout) ends the connection.
    Started,
    /// Closing or closed already: nothing changed.
    AlreadyClosing,
    /// Still opening: the caller abandons the connection instead.
    StillOpening,
}

/// How the TCP connection ends once the closing handshake is over (RFC 6455 section 7.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpClose {
    /// A server closes TCP first, as soon as its close frame is written.
    WhenFlushed,
    /// We failed the connection: the peer may still be sending, and closing now could reset
    /// the connection before it reads our close frame. Shut our side and wait for its FIN.
    ShutdownWriteThenWait,
    /// A client waits for the server to close TCP.
    WaitForPeer,
}

/// A timer that ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expired {
    /// The opening handshake did not complete in time.
    Handshake,
    /// The peer did not answer our close frame in time, nor is it still reading what we sent
    /// before it: end without a handshake (1006).
    Close,
    /// The peer neither answered a keepalive ping nor sent anything else in time (1006).
    PeerSilent,
    /// The closing handshake is over but the TCP close did not come: drop the socket.
    Linger,
    /// Nothing to do (a keepalive ping went out, traffic moved the ping time, or a peer still
    /// reading what came before our ping or close frame got more time).
    Nothing,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timer {
    Handshake,
    Close,
    /// Keepalive: the ping is due (or, with a ping outstanding, the pong is).
    Keepalive,
    Linger,
}

pub struct Endpoint {
    role: Role,
    state: State,
    /// The peer's close code once its close frame arrived. (Codes are never 0: `NonZeroU16`
    /// keeps each of these in 2 bytes, and the endpoint in 24 instead of 32.)
    close_received: Option<NonZeroU16>,
    /// The code we failed the connection with.
    failure: Option<NonZeroU16>,
    /// When the timer of kind `timer` runs out (none: `timer` means nothing).
    timer_at: Deadline,
    timer: Timer,
    /// Keepalive's state and the frame we wait on the peer to answer ([`Watch`]).
    watch: Option<Box<Watch>>,
}

/// A close code as the endpoint keeps it. Codes are never 0 (the reader passes on only codes an
/// endpoint may send, or 1005; failures carry 1002 to 1015); were one 0, it would count as 1006.
fn stored(code: u16) -> NonZeroU16 {
    debug_assert_ne!(code, 0, "a close code of 0");
    NonZeroU16::new(code).unwrap_or(NonZeroU16::new(ABNORMAL).expect("1006"))
}

/// What an endpoint keeps beyond its few bytes, boxed: most connections never need it, and an
/// idle connection's size is what a device with many of them pays. It exists while keepalive
/// is on, and from the start of a closing handshake the application started.
#[derive(Default)]
struct Watch {
    /// When the peer was last heard from: `None` while keepalive is off.
    last_heard: Option<Instant>,
    ping_outstanding: bool,
    /// Our outstanding ping; once the closing handshake started, our close frame.
    awaited: Awaited,
    /// The close timeout is extended for a peer still reading what came before our close frame:
    /// set by the application's close, cleared by a stop's ([`CloseBy`]).
    close_extends: bool,
}

/// A frame we wait on the peer to answer (our ping, our close frame), and how far the peer's
/// TCP has got towards it ([`FrameSink::acknowledged`]). The frame waits behind whatever was
/// queued before it, and cannot be answered before it arrives.
#[derive(Default)]
struct Awaited {
    /// Where the frame ends in the byte stream, and how far the peer's TCP had acknowledged at
    /// the last look (both 0 when the sink cannot tell).
    end: u32,
    acknowledged_at_check: u32,
    /// Other bytes were still on their way to the peer when the frame was queued: its TCP may
    /// get the frame at any time in a timeout, not at its start.
    behind_backlog: bool,
}

impl Awaited {
    /// Whether bytes are on their way to the peer (asked just before a frame is queued).
    fn backlog(sink: &impl FrameSink) -> bool {
        sink.acknowledged().is_some_and(|(acked, end)| acked != end)
    }

    /// The frame just queued, `behind_backlog` as [`Awaited::backlog`] said before it.
    fn queued(sink: &impl FrameSink, behind_backlog: bool) -> Awaited {
        let (acknowledged_at_check, end) = sink.acknowledged().unwrap_or((0, 0));
        Awaited {
            end,
            acknowledged_at_check,
            behind_backlog,
        }
    }

    /// The time for the answer ran out. A peer whose TCP acknowledged more since the last look
    /// is reading, though it sent nothing: it gets another timeout while its TCP has not got the
    /// frame, and, when the frame waited behind other bytes, one more after the timeout in
    /// which its TCP got it (perhaps at its end): a whole timeout to reach it. A timeout in
    /// which it acknowledged nothing, or the one after that, is final.
    fn peer_still_reading(&mut self, sink: &impl FrameSink) -> bool {
        let Some((acknowledged, _)) = sink.acknowledged() else {
            return false;
        };
        // (Positions modulo 2^32: they are compared within a few timeouts' traffic.)
        let before_frame = |at: u32| (self.end.wrapping_sub(at) as i32) > 0;
        let reading = acknowledged != self.acknowledged_at_check;
        let got_it_since = before_frame(self.acknowledged_at_check);
        let another =
            reading && (before_frame(acknowledged) || self.behind_backlog && got_it_since);
        if another {
            self.acknowledged_at_check = acknowledged;
        }
        another
    }
}

impl Endpoint {
    /// A connection whose opening handshake starts now.
    pub fn new(role: Role, now: Instant, limits: &Limits) -> Endpoint {
        Endpoint {
            role,
            state: State::Opening,
            close_received: None,
            failure: None,
            timer_at: Deadline::new(Some(now + limits.handshake_timeout)),
            timer: Timer::Handshake,
            watch: None,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn is_open(&self) -> bool {
        self.state == State::Open
    }

    pub fn role(&self) -> Role {
        self.role
    }

    /// The opening handshake completed.
    pub fn opened(&mut self, now: Instant, limits: &Limits) {
        self.state = State::Open;
        self.timer_at = Deadline::default();
        if let Some(interval) = limits.ping_interval {
            self.watch = Some(Box::new(Watch {
                last_heard: Some(now),
                ..Watch::default()
            }));
            self.set_timer(now + interval, Timer::Keepalive);
        }
    }

    /// Bytes arrived from the peer (only needed while keepalive is on: [`Endpoint::wants_traffic`]).
    pub fn heard(&mut self, now: Instant) {
        if let Some(watch) = self.watch.as_mut()
            && let Some(last_heard) = watch.last_heard.as_mut()
        {
            *last_heard = now;
            watch.ping_outstanding = false;
        }
    }

    /// True when the owner should report received traffic with [`Endpoint::heard`].
    pub fn wants_traffic(&self) -> bool {
        self.watch
            .as_ref()
            .is_some_and(|watch| watch.last_heard.is_some())
    }

    /// Frames and queues a message (fragmented by `limits.fragment_max`; masked by a client).
    pub fn send(
        &mut self,
        kind: Outgoing,
        payload: &[u8],
        limits: &Limits,
        sink: &mut impl FrameSink,
    ) -> Result<(), SendError> {
        if self.state != State::Open {
            return Err(SendError::NotOpen(self.state));
        }
        let opcode = match kind {
            Outgoing::Text => Opcode::Text,
            Outgoing::Binary => Opcode::Binary,
            Outgoing::Ping => {
                if payload.len() > 125 {
                    return Err(SendError::PingTooLong(payload.len()));
                }
                self.write_frame(Opcode::Ping, true, payload, sink);
                return Ok(());
            }
        };
        let fragment = match limits.fragment_max {
            0 => payload.len().max(1),
            size => size,
        };
        if payload.len() <= fragment {
            self.write_frame_inline(opcode, true, payload, sink);
            return Ok(());
        }
        let count = payload.len().div_ceil(fragment);
        for (index, chunk) in payload.chunks(fragment).enumerate() {
            let code = if index == 0 {
                opcode
            } else {
                Opcode::Continuation
            };
            self.write_frame(code, index + 1 == count, chunk, sink);
        }
        Ok(())
    }

    /// The most bytes `payload` takes once framed (for the caller's send-buffer check).
    pub fn framed_len(payload: usize, limits: &Limits) -> usize {
        let fragments = match limits.fragment_max {
            0 => 1,
            size => payload.div_ceil(size).max(1),
        };
        payload + MAX_HEADER * fragments
    }

    /// Starts the closing handshake with `code` and `reason`. Our close frame waits behind what
    /// was sent before it. For the application's close, a peer still reading that when the
    /// close timeout passes is not dropped while its TCP acknowledges more (see
    /// [`Awaited::peer_still_reading`]), so a peer that keeps reading gets all of it. A stop
    /// waits a bounded time, about a close timeout, for its connections to end: its close
    /// timeout is final, also for a closing handshake the application started before, which is
    /// not extended again. (That deadline is never more than a close timeout away: each
    /// extension set it a close timeout from its own time.)
    pub fn close(
        &mut self,
        code: i32,
        reason: &str,
        by: CloseBy,
        now: Instant,
        limits: &Limits,
        sink: &mut impl FrameSink,
    ) -> Result<CloseStarted, CloseError> {
        let code = u16::try_from(code)
            .ok()
            .filter(|c| close_code_is_sendable(*c))
            .ok_or(CloseError::CodeNotSendable(code))?;
        if reason.len() > 123 {
            return Err(CloseError::ReasonTooLong(reason.len()));
        }
        let started = match self.state {
            State::Open => {
                let backlog = (by == CloseBy::Application).then(|| Awaited::backlog(sink));
                self.write_close(Some(code), reason, sink);
                if let Some(backlog) = backlog {
                    let watch = self.watch.get_or_insert_with(Box::default);
                    watch.awaited = Awaited::queued(sink, backlog);
                    watch.close_extends = true;
                }
                self.set_timer(now + limits.close_timeout, Timer::Close);
                CloseStarted::Started
            }
            State::Opening => CloseStarted::StillOpening,
            State::Closing | State::Closed => CloseStarted::AlreadyClosing,
        };
        if by == CloseBy::Stop
            && let Some(watch) = self.watch.as_mut()
        {
            watch.close_extends = false;
        }
        Ok(started)
    }

    /// A ping arrived: answer it, unless the peer does not read what we send (RFC 6455 5.5.3
    /// allows answering only some pings: memory stays bounded by `send_buffer_max`).
    pub fn on_ping(&mut self, payload: &[u8], limits: &Limits, sink: &mut impl FrameSink) {
        if self.state == State::Open && sink.queued() <= limits.send_buffer_max {
            self.write_frame(Opcode::Pong, true, payload, sink);
        }
    }

    /// The peer's close frame arrived: answer it if we have not closed yet. The closing
    /// handshake is then over; returns the code onClose reports (ours if we failed the
    /// connection, else the peer's).
    pub fn on_peer_close(
        &mut self,
        code: u16,
        now: Instant,
        limits: &Limits,
        sink: &mut impl FrameSink,
    ) -> u16 {
        self.close_received = Some(stored(code));
        if self.state == State::Open {
            let echo = (code != NO_STATUS).then_some(code);
            self.write_close(echo, "", sink);
        }
        self.closing_done(now, limits)
    }

    /// Fails the connection (RFC 6455 section 7.1.7): our close frame with the violation's code
    /// goes out now, before anyone is told, so that nothing sent afterwards (a close from
    /// inside onError, say) can replace it. Returns the code, or None when it already failed.
    pub fn fail(&mut self, violation: &Violation, sink: &mut impl FrameSink) -> Option<u16> {
        if self.failure.is_some() {
            return None;
        }
        self.failure = Some(stored(violation.code));
        if self.state == State::Open {
            self.write_close(Some(violation.code), violation.reason, sink);
        }
        Some(violation.code)
    }

    /// After a failure or the peer's close frame: the connection is closed, and the socket
    /// may linger (see [`Endpoint::tcp_close`]) until `close_timeout`. Returns the close code.
    pub fn closing_done(&mut self, now: Instant, limits: &Limits) -> u16 {
        self.state = State::Closed;
        self.set_timer(now + limits.close_timeout, Timer::Linger);
        self.failure
            .or(self.close_received)
            .map_or(ABNORMAL, NonZeroU16::get)
    }

    /// The connection ends without (the rest of) a closing handshake — the socket is gone, or
    /// the peer never answered. Returns the code onClose reports: ours if we failed it, else
    /// 1006.
    pub fn ended(&mut self) -> u16 {
        self.state = State::Closed;
        self.timer_at = Deadline::default();
        self.failure.map_or(ABNORMAL, NonZeroU16::get)
    }

    /// Ends with `code` set as the failure (a TLS failure, an internal error): nothing is sent.
    pub fn ended_with(&mut self, code: u16) -> u16 {
        if self.failure.is_none() {
            self.failure = Some(stored(code));
        }
        self.ended()
    }

    /// True once we failed the connection.
    pub fn failed(&self) -> bool {
        self.failure.is_some()
    }

    pub fn tcp_close(&self) -> TcpClose {
        match (self.role, self.failure) {
            (Role::Server, None) => TcpClose::WhenFlushed,
            (Role::Server, Some(_)) => TcpClose::ShutdownWriteThenWait,
            (Role::Client, _) => TcpClose::WaitForPeer,
        }
    }

    /// When [`Endpoint::on_timeout`] must be called next, if ever.
    pub fn timeout(&self) -> Option<Instant> {
        self.timer_at.get()
    }

    /// [`Endpoint::timeout`] as stored, for a caller that keeps it in 8 bytes too.
    pub fn deadline(&self) -> Deadline {
        self.timer_at
    }

    fn set_timer(&mut self, when: Instant, timer: Timer) {
        self.timer_at = Deadline::new(Some(when));
        self.timer = timer;
    }

    /// Runs the timer that is due at `now` (a timer not yet due does nothing).
    pub fn on_timeout(
        &mut self,
        now: Instant,
        limits: &Limits,
        sink: &mut impl FrameSink,
    ) -> Expired {
        let Some(when) = self.timer_at.get() else {
            return Expired::Nothing;
        };
        if now < when {
            return Expired::Nothing;
        }
        self.timer_at = Deadline::default();
        match self.timer {
            Timer::Handshake => Expired::Handshake,
            Timer::Close => {
                // The peer is still reading what we sent before our close frame.
                let watch = self.watch.as_mut();
                if watch.is_some_and(|w| w.close_extends && w.awaited.peer_still_reading(sink)) {
                    self.set_timer(now + limits.close_timeout, Timer::Close);
                    return Expired::Nothing;
                }
                Expired::Close
            }
            Timer::Linger => Expired::Linger,
            Timer::Keepalive => self.keepalive_due(now, limits, sink),
        }
    }

    fn keepalive_due(
        &mut self,
        now: Instant,
        limits: &Limits,
        sink: &mut impl FrameSink,
    ) -> Expired {
        let Some(interval) = limits.ping_interval else {
            return Expired::Nothing;
        };
        if self.state != State::Open {
            return Expired::Nothing;
        }
        let Some(watch) = self.watch.as_mut() else {
            return Expired::Nothing;
        };
        let Some(last_heard) = watch.last_heard else {
            return Expired::Nothing;
        };
        if watch.ping_outstanding {
            if watch.awaited.peer_still_reading(sink) {
                self.set_timer(now + limits.pong_timeout, Timer::Keepalive);
                return Expired::Nothing;
            }
            return Expired::PeerSilent;
        }
        // Traffic since the timer was set moves the ping (no timer churn per read).
        let ping_at = last_heard + interval;
        if now < ping_at {
            self.set_timer(ping_at, Timer::Keepalive);
            return Expired::Nothing;
        }
        watch.ping_outstanding = true;
        let backlog = Awaited::backlog(sink);
        self.write_frame(Opcode::Ping, true, &[], sink);
        if let Some(watch) = self.watch.as_mut() {
            watch.awaited = Awaited::queued(sink, backlog);
        }
        self.set_timer(now + limits.pong_timeout, Timer::Keepalive);
        Expired::Nothing
    }

    fn write_close(&mut self, code: Option<u16>, reason: &str, sink: &mut impl FrameSink) {
        self.write_frame(
            Opcode::Close,
            true,
            close_payload(code, reason).as_bytes(),
            sink,
        );
        self.state = State::Closing;
    }

    fn write_frame(
        &mut self,
        opcode: Opcode,
        fin: bool,
        payload: &[u8],
        sink: &mut impl FrameSink,
    ) {
        self.write_frame_inline(opcode, fin, payload, sink);
    }

    /// [`Endpoint::write_frame`], inlined where a whole message is sent (most of a send).
    #[inline(always)]
    fn write_frame_inline(
        &mut self,
        opcode: Opcode,
        fin: bool,
        payload: &[u8],
        sink: &mut impl FrameSink,
    ) {
        let mask = (self.role == Role::Client).then(|| sink.mask_key());
        let header = EncodedHeader::new(opcode, fin, payload.len(), mask);
        sink.frame_in(header, payload, mask);
    }
}
