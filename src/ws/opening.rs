//! How a session opens on its loop: a server connection reads the upgrade request and answers
//! it; a client connection connects (to each address in turn, once the resolver answered),
//! sends its request and checks the response; a client opened on the caller's thread only has
//! its onOpen (or onError) delivered.

use super::admission::Admission;
use super::connection::{Connection, OpenInfo};
use super::event::{EventKind, MessageKind};
use super::session::{Phase, Session};
use crate::log::log;
use crate::protocol::Reader;
use crate::protocol::handshake::{ClientHandshake, ClientStep, ServerHandshake, ServerStep};
use crate::runtime::{self, Context, Flow, Readiness, oneshot};
use crate::transport::Transport;
use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

/// For wss: the TLS configuration and the name the server's certificate must carry.
pub type TlsTarget = crate::transport::tls::ClientTarget;

pub(super) struct Connecting {
    handshake: ClientHandshake,
    request_sent: bool,
    /// The host's addresses are still being looked up: [`resolved`] brings them.
    resolving: bool,
    /// Addresses not tried yet.
    remaining: VecDeque<SocketAddr>,
    /// For wss: the TLS configuration and server name, for each address tried.
    tls: Option<TlsTarget>,
}

/// A command: the resolver's answer for client connection `id` — its host's addresses, or why
/// there are none. (Dropped if the connection is gone meanwhile.)
#[cfg(feature = "client")]
pub fn resolved(
    tasks: &mut crate::runtime::Tasks,
    id: u64,
    answer: Result<Vec<SocketAddr>, String>,
) {
    tasks.with::<Session>(id, |session, cx| session.on_resolved(cx, answer));
}

impl Session {
    /// An accepted socket, before its upgrade request.
    pub fn accepted(connection: Arc<Connection>) -> Box<Session> {
        Session::new(connection, Phase::Accepting(None))
    }

    /// A client to open on the loop: it connects to `addresses` in turn when started, or, with
    /// `None`, waits for them from the resolver. `handshake-timeout-ms` bounds the whole open.
    pub fn connecting(
        connection: Arc<Connection>,
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
        Session::new(connection, Phase::Connecting(Box::new(connecting)))
    }

    /// A client opened by the caller's thread; `leftover` arrived right after the handshake;
    /// `opened` is signalled once onOpen has returned.
    pub fn opened(
        connection: Arc<Connection>,
        leftover: Vec<u8>,
        opened: Option<oneshot::Sender<()>>,
    ) -> Box<Session> {
        Session::new(
            connection,
            Phase::OpenedElsewhere(Box::new(super::session::OpenedElsewhere {
                leftover,
                opened,
            })),
        )
    }

    /// A server connection whose upgrade another task answered (an HTTP connection): that task
    /// wrote the 101 response into the connection's writer, took the socket out of its poll set
    /// ([`Transport::deregister`]) and recorded the handshake ([`Connection::set_opened`]). The
    /// connection is open from now on. Once adopted by the loop of `connection.event_loop()`, the
    /// session registers the socket again under the connection's id, delivers onOpen, feeds
    /// `leftover` (frames that arrived with the request) and reads what the socket or the TLS
    /// session already holds (no readiness edge would announce it). `admission` is held until
    /// the socket closes.
    pub fn upgraded(
        connection: Arc<Connection>,
        leftover: Vec<u8>,
        admission: Option<Admission>,
    ) -> Box<Session> {
        connection
            .io()
            .endpoint
            .opened(Instant::now(), &connection.common.settings.limits);
        let mut session = Session::new(
            connection,
            Phase::OpenedElsewhere(Box::new(super::session::OpenedElsewhere {
                leftover,
                opened: None,
            })),
        );
        session.admission = admission;
        session
    }

    /// A client whose open failed before the loop got it: onError with `code` and `why`.
    pub fn failed(connection: Arc<Connection>, code: u16, why: String) -> Box<Session> {
        Session::new(connection, Phase::FailedElsewhere(Box::new((code, why))))
    }

    /// Added to the loop: registers the socket and runs what must happen first.
    pub(super) fn start_opening(&mut self, cx: &mut Context) -> Flow {
        if let Phase::FailedElsewhere(failed) = &self.phase {
            let (code, why) = (failed.0, failed.1.clone());
            return self.fail_before_open_with(code, &why);
        }
        if let Phase::Connecting(connecting) = &self.phase {
            // The loop makes the connect itself: to a literal address now, to a host name's
            // addresses when the resolver's answer comes.
            if connecting.resolving {
                return Flow::Continue;
            }
            return self.connect_next(cx, "no address to connect to".into());
        }
        let token = runtime::token(self.connection.id);
        let registered = {
            let mut io = self.connection.io();
            match io.writer.transport.as_mut() {
                Some(transport) => transport.register(cx.registry, token),
                None => Err(io::Error::new(io::ErrorKind::NotConnected, "no socket")),
            }
        };
        if let Err(err) = registered {
            return self.fail_before_open(&format!("cannot watch the socket: {err}"));
        }
        if let Phase::OpenedElsewhere(elsewhere) = &mut self.phase {
            let leftover = std::mem::take(&mut elsewhere.leftover);
            let opened = elsewhere.opened.take();
            self.phase = Phase::Open(Reader::default());
            self.emit(EventKind::Open, MessageKind::None, 0, &[]);
            self.connection.on_open_returned();
            if let Some(opened) = opened {
                opened.send(());
            }
            if self.on_leftover(leftover) == Flow::Finished {
                return Flow::Finished;
            }
            // The opening thread may have left bytes in the socket, or decrypted ones inside
            // the TLS session, that no readiness edge will announce: read them now.
            return self.read_all(cx, false);
        }
        Flow::Continue
    }

    /// Server: bytes of the upgrade request. A request that arrives whole is answered from
    /// the read buffer; only an incomplete one is copied (into a handshake kept in the phase).
    pub(super) fn on_upgrade_request(&mut self, data: &[u8]) -> Flow {
        let Phase::Accepting(buffered) = &mut self.phase else {
            return Flow::Continue;
        };
        let connection = &self.connection;
        let mut fresh = ServerHandshake::default();
        let handshake = buffered.as_deref_mut().unwrap_or(&mut fresh);
        let leftover = match handshake.feed(data, &connection.common.settings.protocols) {
            ServerStep::NeedMore => None,
            ServerStep::Refuse(refused) => {
                log!(
                    Info,
                    "connection {}: upgrade refused: {}",
                    connection.id,
                    refused.reason
                );
                connection.io().writer.write_raw(&refused.response);
                return self.finish();
            }
            ServerStep::Accept(accepted) => {
                {
                    let mut io = connection.io();
                    io.writer.write_raw_parts(&accepted.answer.parts());
                    io.endpoint
                        .opened(Instant::now(), &connection.common.settings.limits);
                }
                connection.set_opened(OpenInfo::new(
                    accepted.answer.protocol,
                    accepted.target,
                    Some(accepted.head),
                ));
                // Frames that came with the request (rare): the reader unmasks them in place.
                Some(accepted.leftover.to_vec())
            }
        };
        let Some(leftover) = leftover else {
            if buffered.is_none() {
                *buffered = Some(Box::new(fresh));
            }
            return Flow::Continue;
        };
        self.phase = Phase::Open(Reader::default());
        if self.connection.common.delegate.handles(EventKind::Open) {
            self.emit(EventKind::Open, MessageKind::None, 0, &[]);
        }
        self.connection.on_open_returned();
        self.on_leftover(leftover)
    }

    /// Client: the socket of a connect in progress became ready. When the peer closed its side
    /// (or the socket failed), no further readiness edge will come.
    pub(super) fn on_connecting(&mut self, cx: &mut Context, readiness: Readiness) -> Flow {
        let Phase::Connecting(connecting) = &mut self.phase else {
            return Flow::Continue;
        };
        if !connecting.request_sent {
            let mut io = self.connection.io();
            let Some(transport) = io.writer.transport.as_mut() else {
                return Flow::Continue;
            };
            let failure = match transport.take_error() {
                Ok(Some(err)) | Err(err) => Some(err),
                Ok(None) => match transport.peer_addr() {
                    Ok(peer) => {
                        self.connection.set_peer_address(peer);
                        None
                    }
                    Err(err) if err.kind() == io::ErrorKind::NotConnected => {
                        return Flow::Continue;
                    }
                    Err(err) => Some(err),
                },
            };
            if let Some(err) = failure {
                // Dropping the failed socket closes it, which also takes it out of the poll set.
                io.writer.transport = None;
                drop(io);
                return self.connect_next(cx, format!("connect failed: {err}"));
            }
            io.writer.write_raw(connecting.handshake.request());
            connecting.request_sent = true;
        }
        if !(readiness.readable || readiness.closed) {
            return Flow::Continue;
        }
        let mut buffer = std::mem::take(cx.receive_buffer);
        let flow = self.read_upgrade_response(&mut buffer);
        *cx.receive_buffer = buffer;
        match flow {
            // Go on reading: the socket (or the TLS session) may hold more than the handshake's
            // read took, and no new edge would announce it. When this edge brought the peer's
            // FIN, read to the end: a short read then does not mean that nothing more will come.
            Some(Flow::Continue) if matches!(self.phase, Phase::Open(_)) => {
                self.read_all(cx, readiness.closed)
            }
            Some(flow) => flow,
            None => Flow::Continue,
        }
    }

    /// Reads until the upgrade response is complete (then the connection is open) or the
    /// socket has nothing more; None when it simply needs more bytes.
    fn read_upgrade_response(&mut self, buffer: &mut [u8]) -> Option<Flow> {
        loop {
            let result = {
                let mut io = self.connection.io();
                io.writer.transport.as_mut().map(|t| t.read(buffer))
            };
            let Phase::Connecting(connecting) = &mut self.phase else {
                return None;
            };
            match result? {
                Ok(0) => {
                    return Some(
                        self.fail_before_open("server closed the connection during the handshake"),
                    );
                }
                Ok(n) => match connecting.handshake.feed(&buffer[..n]) {
                    Ok(ClientStep::NeedMore) => continue,
                    Ok(ClientStep::Open { protocol, leftover }) => {
                        self.connection.set_opened(OpenInfo::new(
                            protocol.as_deref(),
                            connecting.handshake.target(),
                            None,
                        ));
                        self.connection
                            .io()
                            .endpoint
                            .opened(Instant::now(), &self.connection.common.settings.limits);
                        self.phase = Phase::Open(Reader::default());
                        self.emit(EventKind::Open, MessageKind::None, 0, &[]);
                        return Some(self.on_leftover(leftover));
                    }
                    Err(refused) => return Some(self.fail_before_open(&refused.0)),
                },
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Some(self.on_read_error(&e)),
            }
        }
    }

    /// The resolver's answer for a client still resolving: connect to the addresses in turn.
    #[cfg(feature = "client")]
    fn on_resolved(&mut self, cx: &mut Context, answer: Result<Vec<SocketAddr>, String>) -> Flow {
        let Phase::Connecting(connecting) = &mut self.phase else {
            return Flow::Continue;
        };
        if !connecting.resolving {
            return Flow::Continue;
        }
        connecting.resolving = false;
        match answer {
            Ok(addresses) => {
                connecting.remaining = addresses.into();
                self.connect_next(cx, "the host name has no address".into())
            }
            Err(why) => self.fail_before_open(&why),
        }
    }

    /// Starts a non-blocking connect to the next address not tried yet. When none is left:
    /// onError with the last address's failure, or `why_not` if there was none to try.
    fn connect_next(&mut self, cx: &mut Context, why_not: String) -> Flow {
        let Phase::Connecting(connecting) = &mut self.phase else {
            return Flow::Continue;
        };
        let mut why_not = why_not;
        let token = runtime::token(self.connection.id);
        while let Some(next) = connecting.remaining.pop_front() {
            let started = mio::net::TcpStream::connect(next)
                .map_err(|e| format!("connect to {next} failed: {e}"))
                .and_then(|stream| {
                    Transport::connected(stream, connecting.tls.as_ref()).map_err(|e| e.message)
                })
                .and_then(|mut transport| {
                    transport
                        .register(cx.registry, token)
                        .map(|()| transport)
                        .map_err(|e| format!("cannot watch the socket: {e}"))
                });
            match started {
                Ok(transport) => {
                    self.connection.io().writer.transport = Some(transport);
                    return Flow::Continue;
                }
                Err(why) => {
                    log!(Debug, "connection {}: {why}", self.connection.id);
                    why_not = why;
                }
            }
        }
        self.fail_before_open(&why_not)
    }
}
