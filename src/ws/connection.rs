//! One WebSocket connection as every thread sees it: its socket, its send buffer and its
//! protocol state ([`Endpoint`]), behind one lock. Sends and closes from any thread frame and
//! write to the socket at once when nothing is waiting (no hand-over to the event loop); what
//! the socket does not take waits in the send buffer and is written by the event loop when the
//! socket drains.

use super::delegate::Delegate;
use super::event::EventKind;
use super::once_text::OnceText;
use crate::config::ConnectionSettings;
use crate::error::{Error, Result};
use crate::log::log;
use crate::protocol::handshake::{header_values, split_target};
use crate::protocol::{
    CloseError, CloseStarted, Endpoint, FrameSink, Outgoing, Role, SendError, State, frame,
};
use crate::runtime::LoopShared;
use crate::transport::Transport;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, OnceLock};
use std::time::Instant;

/// A drained send buffer up to this size is kept as its thread's spare; a larger one is freed,
/// so a big message does not pin memory.
const OUTBOX_KEEP: usize = 16 * 1024;

thread_local! {
    /// One drained send buffer per thread, for the next connection that queues something on
    /// it: a connection owns a send buffer only while bytes wait in it (an idle connection
    /// owns none), yet the event loop's corked replies, one read after another, cost no
    /// allocation.
    static SPARE_OUTBOX: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

/// While corked, the send buffer is written out once it holds this much: replies are batched
/// into large writes without letting a long burst pile up.
const CORK_FLUSH: usize = 128 * 1024;

/// While corked, a payload this large is written at once when nothing waits before it.
const CORK_BYPASS: usize = OUTBOX_KEEP;

/// The socket and what waits to be written to it.
pub struct Writer {
    pub transport: Option<Transport>,
    outbox: Vec<u8>,
    sent: usize,
    /// A write failed: the peer is gone; the event loop reports it.
    pub broken: bool,
    /// Set by the event loop while it hands one read's messages to callbacks: replies collect
    /// in the send buffer and go out with one write afterwards, instead of one per message.
    pub corked: bool,
}

impl Writer {
    /// A writer over `transport` (None: a client not connected yet), with nothing queued.
    pub(crate) fn new(transport: Option<Transport>) -> Writer {
        Writer {
            transport,
            outbox: Vec::new(),
            sent: 0,
            broken: false,
            corked: false,
        }
    }

    pub fn queued(&self) -> usize {
        self.outbox.len() - self.sent
    }

    /// Writes what waits in the send buffer until the socket is full. Returns true when empty.
    pub fn flush(&mut self) -> bool {
        let Some(transport) = self.transport.as_mut() else {
            return true;
        };
        // What the transport still holds (TLS records) goes first.
        match transport.flush_pending() {
            Ok(true) => {}
            Ok(false) => return false,
            Err(_) => self.broken = true,
        }
        while !self.broken && self.sent < self.outbox.len() {
            match transport.write(&self.outbox[self.sent..]) {
                Ok(0) => self.broken = true,
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => self.broken = true,
            }
        }
        if self.broken {
            self.outbox = Vec::new();
            self.sent = 0;
            return true;
        }
        self.sent = 0;
        let drained = std::mem::take(&mut self.outbox);
        if drained.capacity() <= OUTBOX_KEEP {
            give_spare_outbox(drained);
        }
        !transport.has_pending()
    }

    /// What the send buffer holds allocated (for tests: an idle connection holds none).
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.outbox.capacity()
    }

    /// Appends `bytes` to the send buffer, which starts as this thread's spare.
    fn queue(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        if self.outbox.capacity() == 0 {
            self.outbox = SPARE_OUTBOX.take();
        }
        self.outbox.extend_from_slice(bytes);
    }

    /// Queues raw bytes (an HTTP head) and writes them if the socket takes them.
    pub fn write_raw(&mut self, bytes: &[u8]) {
        self.queue(bytes);
        if !self.corked {
            self.flush();
        }
    }

    /// Queues raw bytes given in parts (an HTTP head built from pieces), as one write.
    pub fn write_raw_parts(&mut self, parts: &[&[u8]]) {
        for part in parts {
            self.queue(part);
        }
        if !self.corked {
            self.flush();
        }
    }

    /// Ends a cork: writes what collected meanwhile.
    pub fn uncork(&mut self) {
        self.corked = false;
        if self.queued() > 0 {
            self.flush();
        }
    }
}

impl FrameSink for Writer {
    /// A server frame goes out as header + payload in one vectored write, straight from the
    /// caller's buffer; a client frame is masked into the send buffer.
    fn frame(&mut self, header: &[u8], payload: &[u8], mask: Option<[u8; 4]>) {
        if self.broken || self.transport.is_none() {
            return;
        }
        if let Some(mask) = mask {
            self.queue(header);
            let start = self.outbox.len();
            self.queue(payload);
            frame::apply_mask(&mut self.outbox[start..], mask);
            if !self.corked || self.queued() >= CORK_FLUSH {
                self.flush();
            }
            return;
        }
        let mut written = 0;
        // TLS copies into records anyway: the frame goes through the send buffer, and out now.
        let through_buffer = self.transport.as_ref().is_some_and(Transport::is_tls);
        // Under the cork too, a large payload is written at once rather than copied: the copy
        // (and a send buffer grown past what is kept) costs more than the write it saves.
        let now = !self.corked || payload.len() >= CORK_BYPASS;
        if self.queued() == 0 && now && !through_buffer {
            let transport = self.transport.as_mut().expect("checked above");
            loop {
                match transport.write_vectored(&[IoSlice::new(header), IoSlice::new(payload)]) {
                    Ok(count) => {
                        written = count;
                        break;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(_) => {
                        self.broken = true;
                        return;
                    }
                }
            }
        }
        let n = header.len();
        if written < n {
            self.queue(&header[written..]);
            self.queue(payload);
        } else {
            self.queue(&payload[written - n..]);
        }
        if (through_buffer && !self.corked) || (self.corked && self.queued() >= CORK_FLUSH) {
            self.flush();
        }
    }

    fn queued(&self) -> usize {
        Writer::queued(self)
    }

    fn mask_key(&mut self) -> [u8; 4] {
        mask_key()
    }
}

/// A client frame's masking key (RFC 6455 section 5.3: from a strong source of entropy).
#[cfg(feature = "client")]
fn mask_key() -> [u8; 4] {
    rand::random()
}

/// Only a client masks, and without the `client` feature no client connection exists.
#[cfg(not(feature = "client"))]
fn mask_key() -> [u8; 4] {
    unreachable!("a frame to mask in a build without the `client` feature")
}

/// Keeps a drained send buffer as this thread's spare, or frees it when the spare is larger.
fn give_spare_outbox(mut buffer: Vec<u8>) {
    buffer.clear();
    let spare = SPARE_OUTBOX.take();
    SPARE_OUTBOX.set(if buffer.capacity() > spare.capacity() {
        buffer
    } else {
        spare
    });
}

/// What the lock guards: the protocol state and the socket it writes to.
pub struct Io {
    pub endpoint: Endpoint,
    pub writer: Writer,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A fresh identifier, shared by connections and listeners (it is also their poll token).
pub fn next_id() -> u64 {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
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

/// The request heads of server connections, by connection id, while they are kept: during
/// onOpen, or for the connection's life with `websocket-keep-request-headers`. They live apart
/// from the connections because almost every connection drops its head when onOpen returns: a
/// field for it would cost every idle connection memory for nothing.
static REQUEST_HEADS: LazyLock<Mutex<HashMap<u64, Box<[u8]>>>> = LazyLock::new(Mutex::default);

pub struct Connection {
    pub id: u64,
    pub role: Role,
    pub settings: Arc<ConnectionSettings>,
    pub delegate: Arc<Delegate>,
    /// The event loop that owns this connection's socket.
    pub event_loop: Arc<LoopShared>,
    pub io: Mutex<Io>,
    peer: OnceLock<SocketAddr>,
    /// The agreed subprotocol and the request target, set once when the connection opens, in
    /// one allocation: `"{protocol}\n{target}"` (a subprotocol is an HTTP token: never a `\n`).
    /// The usual case — no subprotocol, target `/` — is stored as empty: no allocation.
    opened: OnceText,
    user_data: AtomicUsize,
    /// The handle an API layer gave this connection (0 until it needs one): the C surface
    /// publishes each connection once and compares handles with it.
    pub api_handle: AtomicUsize,
}

impl Connection {
    pub fn new(
        role: Role,
        settings: Arc<ConnectionSettings>,
        delegate: Arc<Delegate>,
        event_loop: Arc<LoopShared>,
        transport: Option<Transport>,
    ) -> Arc<Connection> {
        let writer = Writer::new(transport);
        Connection::with_writer(next_id(), role, settings, delegate, event_loop, writer)
    }

    /// A connection over a socket some other task has used already (an HTTP connection that
    /// upgraded): `writer` keeps what it still has queued (the 101 response, say), and `id`
    /// (from [`next_id`]) may be the one that task had, so the poll token stays the same.
    pub fn with_writer(
        id: u64,
        role: Role,
        settings: Arc<ConnectionSettings>,
        delegate: Arc<Delegate>,
        event_loop: Arc<LoopShared>,
        writer: Writer,
    ) -> Arc<Connection> {
        let endpoint = Endpoint::new(role, Instant::now(), &settings.limits);
        Arc::new(Connection {
            id,
            role,
            settings,
            delegate,
            event_loop,
            io: Mutex::new(Io { endpoint, writer }),
            peer: OnceLock::new(),
            opened: OnceText::new(),
            user_data: AtomicUsize::new(0),
            api_handle: AtomicUsize::new(0),
        })
    }

    pub fn send(&self, kind: Outgoing, payload: &[u8]) -> Result<()> {
        let limits = &self.settings.limits;
        let mut io = self.io.lock();
        let Io { endpoint, writer } = &mut *io;
        if endpoint.state() == State::Open && writer.broken {
            return Err(Error::new(
                libc::ECONNRESET,
                "connection was reset by the peer",
            ));
        }
        let framed = Endpoint::framed_len(payload.len(), limits);
        let over_cap = |writer: &Writer| {
            writer.queued() > 0 && writer.queued() + framed > limits.send_buffer_max
        };
        // Replies collected under the cork are not backpressure: write them out first.
        if endpoint.is_open() && over_cap(writer) && writer.corked {
            writer.flush();
        }
        if endpoint.is_open() && over_cap(writer) {
            let queued = writer.queued();
            return Err(Error::new(
                libc::EAGAIN,
                format!(
                    "send buffer full ({queued} bytes waiting, send-buffer-size-max {})",
                    limits.send_buffer_max
                ),
            ));
        }
        endpoint
            .send(kind, payload, limits, writer)
            .map_err(|err| match err {
                SendError::NotOpen(State::Opening) => {
                    Error::not_connected("connection is not open yet")
                }
                SendError::NotOpen(State::Closing) => Error::not_connected("connection is closing"),
                SendError::NotOpen(_) => Error::not_connected("connection is closed"),
                SendError::PingTooLong(length) => Error::new(
                    libc::EMSGSIZE,
                    format!("ping payload of {length} bytes exceeds 125"),
                ),
            })
    }

    /// Starts the closing handshake. `status` must be a code an endpoint may send.
    pub fn close(&self, status: i32, reason: &str) -> Result<()> {
        let started = {
            let mut io = self.io.lock();
            let Io { endpoint, writer } = &mut *io;
            endpoint.close(
                status,
                reason,
                Instant::now(),
                &self.settings.limits,
                writer,
            )
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
                self.event_loop
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
                self.event_loop
                    .submit(move |tasks| super::session::abandon(tasks, id));
                Ok(())
            }
            Ok(CloseStarted::AlreadyClosing) => Ok(()),
        }
    }

    pub fn is_open(&self) -> bool {
        self.io.lock().endpoint.is_open()
    }

    pub fn peer_address(&self) -> Option<SocketAddr> {
        self.peer.get().copied()
    }

    pub fn set_peer_address(&self, address: SocketAddr) {
        let _ = self.peer.set(address);
    }

    /// The agreed subprotocol and the request target, once the connection opened.
    fn opened(&self) -> Option<(&str, &str)> {
        match self.opened.get()? {
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
        if !self.opened.set(&text) {
            return;
        }
        if let Some(head) = info.head
            && self.keeps_request_head()
        {
            REQUEST_HEADS.lock().insert(self.id, head.into());
        }
    }

    /// Whether the request head is kept at all: only while someone can read it — an onOpen
    /// callback, or anyone for the connection's life with `websocket-keep-request-headers`.
    /// (Without either, nothing reaches the connection before onOpen would have returned.)
    fn keeps_request_head(&self) -> bool {
        self.role == Role::Server
            && (self.settings.keep_request_headers || self.delegate.handles(EventKind::Open))
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
            let Some(head) = heads.get(&self.id) else {
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
        if self.settings.keep_request_headers {
            return;
        }
        self.forget_request_head();
    }

    fn forget_request_head(&self) {
        if self.opened.get().is_some() && self.keeps_request_head() {
            REQUEST_HEADS.lock().remove(&self.id);
        }
    }

    /// One word the application keeps on the connection (the library never reads it).
    pub fn set_user_data(&self, data: usize) {
        self.user_data.store(data, Ordering::Relaxed);
    }

    pub fn user_data(&self) -> usize {
        self.user_data.load(Ordering::Relaxed)
    }
}

/// True while connection `id`'s request head is kept (for tests: nothing may outlive its
/// connection).
#[cfg(test)]
pub(crate) fn request_head_kept(id: u64) -> bool {
    REQUEST_HEADS.lock().contains_key(&id)
}

impl Drop for Connection {
    /// A head kept for the connection's life (or one whose onOpen never returned) goes with it.
    fn drop(&mut self) {
        self.forget_request_head();
    }
}
