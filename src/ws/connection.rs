//! One WebSocket connection as every thread sees it: its socket, its send buffer and its
//! protocol state ([`Endpoint`]), behind one lock. Sends and closes from any thread frame and
//! write to the socket at once when nothing is waiting (no hand-over to the event loop); what
//! the socket does not take waits in the send buffer and is written by the event loop when the
//! socket drains.

use super::delegate::Delegate;
use super::event::EventKind;
use super::group::ConnectionGroup;
use super::peer_opened::PeerAndOpened;
pub use super::writer::Writer;
use crate::config::ConnectionSettings;
use crate::error::{Error, Result};
use crate::log::log;
use crate::protocol::handshake::{header_values, split_target};
use crate::protocol::{
    CloseBy, CloseError, CloseStarted, Endpoint, Outgoing, Role, SendError, State,
};
use crate::runtime::{BiasedGuard, BiasedLock, LoopShared};
use crate::transport::Transport;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Instant;

/// What the lock guards: the protocol state and the socket it writes to.
pub struct Io {
    pub endpoint: Endpoint,
    pub writer: Writer,
}

static NEXT_SERVER_ID: AtomicU64 = AtomicU64::new(1);

/// A fresh server identifier, which the logs name. (Connections and listeners are tasks: their
/// ids come from their loop, `LoopShared::reserve`.)
pub fn next_server_id() -> u64 {
    NEXT_SERVER_ID.fetch_add(1, Ordering::Relaxed)
}

/// What the opening handshake settled, handed to [`Connection::set_opened`] when the
/// connection opens: the agreed subprotocol, the request target (a server connection's from its
/// upgrade request, a client's from its URL) and, for a server connection, the request head.
/// Borrowed: the connection copies what it keeps.
pub struct OpenInfo<'a> {
    pub protocol: Option<&'a str>,
    pub target: &'a str,
    pub head: Option<&'a [u8]>,
}

impl<'a> OpenInfo<'a> {
    /// `head`: the request head as received (a server connection), or None (a client's).
    pub fn new(protocol: Option<&'a str>, target: &'a str, head: Option<&'a [u8]>) -> OpenInfo<'a> {
        OpenInfo {
            protocol,
            target,
            head,
        }
    }
}

/// The request heads of server connections, by the connection's address, while they are kept:
/// during onOpen, or for the connection's life with `websocket-keep-request-headers`. They live
/// apart from the connections because almost every connection drops its head when onOpen
/// returns: a field for it would cost every idle connection memory for nothing. (By address,
/// not id: a head may outlive its connection's task — the application holds the connection —,
/// and a task's id is unique only among the tasks of one runtime.)
static REQUEST_HEADS: LazyLock<Mutex<HashMap<usize, Box<[u8]>>>> = LazyLock::new(Mutex::default);

/// What the connections of one server (or of one WebSocket service of an HTTP server, or one
/// client open) on one event loop share: one pointer in each connection instead of five. The
/// loop is here, not in each connection (8 bytes of every idle connection): a server has one
/// `Common` per loop its connections run on ([`Commons`]).
pub struct Common {
    pub role: Role,
    pub settings: Arc<ConnectionSettings>,
    pub delegate: Arc<Delegate>,
    /// The group the connections belong to while they are live.
    pub group: Arc<ConnectionGroup>,
    /// The event loop that owns the sockets of the connections pointing here.
    pub event_loop: Arc<LoopShared>,
}

impl Common {
    pub fn new(
        role: Role,
        settings: Arc<ConnectionSettings>,
        delegate: Arc<Delegate>,
        group: Arc<ConnectionGroup>,
        event_loop: Arc<LoopShared>,
    ) -> Arc<Common> {
        Arc::new(Common {
            role,
            settings,
            delegate,
            group,
            event_loop,
        })
    }
}

/// What the connections of one server (or of one HTTP server's service path) share — the
/// server's settings and delegate, and a group of their own — and their [`Common`] on each
/// event loop, made when the loop gets its first connection.
pub struct Commons {
    pub settings: Arc<ConnectionSettings>,
    pub delegate: Arc<Delegate>,
    pub group: Arc<ConnectionGroup>,
    on_loops: Mutex<Vec<Arc<Common>>>,
}

/// A server keeps the `Common` of a loop whose connections are all gone (the next one on that
/// loop needs it again) until it has this many: past it, one kept only for loops of a runtime
/// that has ended, after `oasis_finalize` and a new `oasis_initialize`, goes.
const COMMONS_KEPT: usize = 64;

impl Commons {
    pub fn server(settings: ConnectionSettings, delegate: Arc<Delegate>) -> Commons {
        Commons {
            settings: Arc::new(settings),
            delegate,
            group: Arc::new(ConnectionGroup::default()),
            on_loops: Mutex::new(Vec::new()),
        }
    }

    /// The `Common` of this server's connections on `event_loop`.
    pub fn on(&self, event_loop: &Arc<LoopShared>) -> Arc<Common> {
        let mut on_loops = self.on_loops.lock();
        if let Some(common) = on_loops
            .iter()
            .find(|common| Arc::ptr_eq(&common.event_loop, event_loop))
        {
            return common.clone();
        }
        if on_loops.len() >= COMMONS_KEPT {
            on_loops.retain(|common| Arc::strong_count(common) > 1);
        }
        let common = Common::new(
            Role::Server,
            self.settings.clone(),
            self.delegate.clone(),
            self.group.clone(),
            event_loop.clone(),
        );
        on_loops.push(common.clone());
        common
    }
}

pub struct Connection {
    pub id: u64,
    /// What it shares with the other connections of its server on its event loop; the loop too.
    pub common: Arc<Common>,
    /// The endpoint and the writer, locked together: taken by the loop's thread without an
    /// atomic while no other thread has locked them (see `runtime::BiasedLock`).
    io: BiasedLock<Io>,
    /// The peer's address and the agreed subprotocol and request target, each set once: the
    /// latter when the connection opens, as `"{protocol}\n{target}"` (a subprotocol is an HTTP
    /// token: never a `\n`), the usual case — no subprotocol, target `/` — as empty. Both in
    /// one word, and in the usual case no allocation (`peer_opened.rs`).
    known: PeerAndOpened,
    user_data: AtomicUsize,
    /// The handle an API layer gave this connection (0 until it needs one): the C surface
    /// publishes each connection once and compares handles with it.
    pub api_handle: AtomicUsize,
}

impl Connection {
    /// A connection whose task the loop of `common` will adopt: its id is reserved there now (a
    /// session must take it there: [`Context::place`], [`Tasks::adopt`]).
    ///
    /// [`Context::place`]: crate::runtime::Context::place
    /// [`Tasks::adopt`]: crate::runtime::Tasks::adopt
    pub fn new(common: Arc<Common>, transport: Option<Transport>) -> Arc<Connection> {
        let writer = Writer::new(transport);
        let id = common.event_loop.reserve();
        Connection::with_writer(id, common, writer)
    }

    /// A connection over a socket some other task has used already (an HTTP connection that
    /// upgraded): `writer` keeps what it still has queued (the 101 response, say), and `id`
    /// (reserved from the loop of `common`) may be the one that task had, handed over to this
    /// connection's session, so the poll token stays the same.
    pub fn with_writer(id: u64, common: Arc<Common>, writer: Writer) -> Arc<Connection> {
        let endpoint = Endpoint::new(common.role, Instant::now(), &common.settings.limits);
        Arc::new(Connection {
            id,
            common,
            io: BiasedLock::new(Io { endpoint, writer }),
            known: PeerAndOpened::new(),
            user_data: AtomicUsize::new(0),
            api_handle: AtomicUsize::new(0),
        })
    }

    /// The endpoint and the writer, locked: from any thread, cheapest on the connection's loop.
    #[inline]
    pub fn io(&self) -> BiasedGuard<'_, Io> {
        // SAFETY: the lock's owner is the connection's loop's thread (biased in
        // `bias_to_loop`), and only that thread is the loop's current one.
        unsafe { self.io.lock(self.common.event_loop.is_current()) }
    }

    /// As [`Connection::io`], for a task of an event loop, which names the loop running it (its
    /// `cx.event_loop`): a comparison of two addresses instead of a thread-local lookup.
    #[inline]
    pub fn io_on(&self, running: &LoopShared) -> BiasedGuard<'_, Io> {
        debug_assert!(running.is_current());
        let on_own_loop = std::ptr::eq(running, Arc::as_ptr(&self.common.event_loop));
        // SAFETY: as in `io`: a task's context exists only on its loop's thread.
        unsafe { self.io.lock(on_own_loop) }
    }

    /// Biases the connection's lock to its loop's thread, which from now on takes it without
    /// an atomic operation until another thread locks it: once its session starts on the loop.
    /// (Before, the connection is made and locked on whatever thread accepted or opened it.)
    pub fn bias_to_loop(&self, running: &LoopShared) {
        if std::ptr::eq(running, Arc::as_ptr(&self.common.event_loop)) {
            // SAFETY: the loop's thread (a task's context exists only there) is the only one
            // that passes `on_owner_thread`.
            unsafe { self.io.lock(true).bias() };
        }
    }

    /// Whether its loop's thread takes the connection's lock without an atomic operation.
    #[cfg(test)]
    pub fn io_is_biased(&self) -> bool {
        self.io.is_biased()
    }

    /// The event loop that owns this connection's socket.
    #[inline]
    pub fn event_loop(&self) -> &Arc<LoopShared> {
        &self.common.event_loop
    }

    pub fn send(&self, kind: Outgoing, payload: &[u8]) -> Result<()> {
        let limits = &self.common.settings.limits;
        let mut io = self.io();
        let Io { endpoint, writer } = &mut *io;
        // (A connection that is not open is refused by the endpoint.)
        if endpoint.is_open() && writer.broken {
            return Err(reset());
        }
        // Backpressure (only while bytes wait: a message may always start an empty buffer).
        if writer.queued() > 0 && endpoint.is_open() {
            let framed = Endpoint::framed_len(payload.len(), limits);
            // Room for this message: what may wait before it.
            let cap = limits.send_buffer_max.saturating_sub(framed);
            writer.flush_corked_past(cap);
            if writer.queued() > cap {
                return Err(send_buffer_full(writer.queued(), limits.send_buffer_max));
            }
        }
        endpoint
            .send(kind, payload, limits, writer)
            .map_err(not_sent)
    }

    /// Starts the closing handshake for the application. `status` must be a code an endpoint
    /// may send. What was sent before reaches a peer that keeps reading it ([`Endpoint::close`]).
    pub fn close(&self, status: i32, reason: &str) -> Result<()> {
        self.start_close(status, reason, CloseBy::Application)
    }

    /// Starts the closing handshake for a stop, which waits about a close timeout for it: the
    /// close timeout is final, also for a close the application started before
    /// ([`CloseBy::Stop`]).
    pub fn close_for_stop(&self, status: i32, reason: &str) -> Result<()> {
        self.start_close(status, reason, CloseBy::Stop)
    }

    fn start_close(&self, status: i32, reason: &str, by: CloseBy) -> Result<()> {
        let started = {
            let mut io = self.io();
            let Io { endpoint, writer } = &mut *io;
            let limits = &self.common.settings.limits;
            endpoint.close(status, reason, by, Instant::now(), limits, writer)
        };
        match started {
            Err(CloseError::CodeNotSendable(code)) => Err(Error::invalid(format!(
                "status code {code} may not be sent in a close frame"
            ))),
            Err(CloseError::ReasonTooLong(length)) => Err(Error::invalid(format!(
                "close reason of {length} bytes exceeds 123"
            ))),
            Ok(CloseStarted::Started) => {
                // The loop re-reads the connection's timers (the close timeout starts now).
                let id = self.id;
                self.event_loop()
                    .submit(move |tasks| super::session::timers_changed(tasks, id));
                Ok(())
            }
            Ok(CloseStarted::StillOpening) => {
                log!(
                    Debug,
                    "connection {} closed while opening: abandoned",
                    self.id
                );
                let id = self.id;
                self.event_loop()
                    .submit(move |tasks| super::session::abandon(tasks, id));
                Ok(())
            }
            Ok(CloseStarted::AlreadyClosing) => Ok(()),
        }
    }

    pub fn is_open(&self) -> bool {
        self.io().endpoint.is_open()
    }

    pub fn peer_address(&self) -> Option<SocketAddr> {
        self.known.peer()
    }

    pub fn set_peer_address(&self, address: SocketAddr) {
        self.known.set_peer(address);
    }

    /// The agreed subprotocol and the request target, once the connection opened.
    fn opened(&self) -> Option<(&str, &str)> {
        match self.known.opened()? {
            "" => Some(("", "/")),
            text => text.split_once('\n'),
        }
    }

    pub fn protocol(&self) -> Option<String> {
        let (protocol, _) = self.opened()?;
        (!protocol.is_empty()).then(|| protocol.to_string())
    }

    /// Records what the opening handshake settled (once; a second call changes nothing).
    pub fn set_opened(&self, info: OpenInfo<'_>) {
        let protocol = info.protocol.unwrap_or_default();
        debug_assert!(!protocol.contains('\n'), "a subprotocol is a token");
        let text = if protocol.is_empty() && info.target == "/" {
            String::new()
        } else {
            format!("{protocol}\n{}", info.target)
        };
        if !self.known.set_opened(&text) {
            return;
        }
        if let Some(head) = info.head
            && self.keeps_request_head()
        {
            REQUEST_HEADS.lock().insert(self.key(), head.into());
        }
    }

    /// Whether the request head is kept at all: only while someone can read it — an onOpen
    /// callback, or anyone for the connection's life with `websocket-keep-request-headers`.
    /// (Without either, nothing reaches the connection before onOpen would have returned.)
    fn keeps_request_head(&self) -> bool {
        self.common.role == Role::Server
            && (self.common.settings.keep_request_headers
                || self.common.delegate.handles(EventKind::Open))
    }

    /// The request target (path and query, as sent); None until the connection opened.
    pub fn request_target(&self) -> Option<&str> {
        self.opened().map(|(_, target)| target)
    }

    /// The target's path, as sent (not percent-decoded); empty until the connection opened.
    pub fn request_path(&self) -> &str {
        split_target(self.request_target().unwrap_or_default()).0
    }

    /// The target's query without the `?`; empty when there is none.
    pub fn request_query(&self) -> &str {
        split_target(self.request_target().unwrap_or_default()).1
    }

    /// The value of request header `name` (any case); several lines of that name are joined
    /// with ", ". Fails with `ENOENT` when the request had no such header, and with `ENODATA`
    /// when the head is not kept: a client connection, a server connection before it opened,
    /// or after its onOpen returned (unless `websocket-keep-request-headers`).
    pub fn request_header(&self, name: &str) -> Result<Vec<u8>> {
        let gone = || {
            Error::new(
                libc::ENODATA,
                "the request head is kept during onOpen only (see websocket-keep-request-headers)",
            )
        };
        let value = {
            let heads = REQUEST_HEADS.lock();
            let Some(head) = heads.get(&self.key()) else {
                drop(heads);
                return Err(gone());
            };
            let mut value: Option<Vec<u8>> = None;
            for part in header_values(head, name) {
                match &mut value {
                    Some(value) => {
                        value.extend_from_slice(b", ");
                        value.extend_from_slice(part);
                    }
                    None => value = Some(part.to_vec()),
                }
            }
            value
        };
        value.ok_or_else(|| Error::new(libc::ENOENT, format!("the request has no '{name}' header")))
    }

    /// onOpen has returned: the request head goes, unless the settings keep it.
    pub fn on_open_returned(&self) {
        if self.common.settings.keep_request_headers {
            return;
        }
        self.forget_request_head();
    }

    /// One word the application keeps on the connection (the library never reads it).
    pub fn set_user_data(&self, data: usize) {
        self.user_data.store(data, Ordering::Relaxed);
    }

    pub fn user_data(&self) -> usize {
        self.user_data.load(Ordering::Relaxed)
    }

    fn forget_request_head(&self) {
        if self.known.opened().is_some() && self.keeps_request_head() {
            REQUEST_HEADS.lock().remove(&self.key());
        }
    }

    /// The connection's key among the request heads: its address, unique while it lives.
    fn key(&self) -> usize {
        std::ptr::from_ref(self).addr()
    }
}

// The errors of `Connection::send`, made out of the way of the sends that succeed.

#[cold]
fn reset() -> Error {
    Error::new(libc::ECONNRESET, "connection was reset by the peer")
}

#[cold]
fn send_buffer_full(queued: usize, max: usize) -> Error {
    Error::new(
        libc::EAGAIN,
        format!("send buffer full ({queued} bytes waiting, send-buffer-size-max {max})"),
    )
}

#[cold]
fn not_sent(err: SendError) -> Error {
    match err {
        SendError::NotOpen(State::Opening) => Error::not_connected("connection is not open yet"),
        SendError::NotOpen(State::Closing) => Error::not_connected("connection is closing"),
        SendError::NotOpen(_) => Error::not_connected("connection is closed"),
        SendError::PingTooLong(length) => Error::new(
            libc::EMSGSIZE,
            format!("ping payload of {length} bytes exceeds 125"),
        ),
    }
}

/// True while a request head is kept for the connection at `address` (for tests: nothing may
/// outlive its connection).
#[cfg(test)]
pub(crate) fn request_head_kept(address: usize) -> bool {
    REQUEST_HEADS.lock().contains_key(&address)
}

impl Drop for Connection {
    /// A head kept for the connection's life (or one whose onOpen never returned) goes with it.
    fn drop(&mut self) {
        self.forget_request_head();
    }
}
