//! One WebSocket connection as every thread sees it: its socket, its send buffer and its state,
//! behind one lock. Sends and closes from any thread write to the socket directly when nothing
//! is waiting (no hand-over to the event loop); what the socket does not take waits in the send
//! buffer and is written by the event loop when the socket drains.

use super::delegate::Delegate;
use super::frame::{self, MAX_HEADER, Opcode};
use crate::config::ConnectionSettings;
use crate::error::{Error, Result};
use crate::log::log;
use crate::runtime::{Command, LoopShared};
use crate::transport::Transport;
use parking_lot::Mutex;
use std::ffi::c_void;
use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Server,
    Client,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutgoingKind {
    Text,
    Binary,
    Ping,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Opening handshake in progress.
    Opening,
    /// Messages flow both ways.
    Open,
    /// Our close frame is queued or sent: nothing more may be sent.
    Closing,
    /// The socket is gone.
    Closed,
}

/// Send buffers larger than this are freed once drained, so a big message does not pin memory.
const OUTBOX_KEEP: usize = 16 * 1024;

/// While corked, the send buffer is written out once it holds this much: replies are batched
/// into large writes without letting a long burst pile up.
const CORK_FLUSH: usize = 128 * 1024;

pub struct Io {
    pub transport: Option<Transport>,
    pub state: State,
    outbox: Vec<u8>,
    sent: usize,
    /// A write failed: the peer is gone; the event loop reports it.
    pub broken: bool,
    /// Set by the event loop while it hands one read's messages to callbacks: replies collect
    /// in the send buffer and go out with one write afterwards, instead of one per message.
    pub corked: bool,
}

impl Io {
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
        if self.outbox.capacity() > OUTBOX_KEEP {
            self.outbox = Vec::new();
        } else {
            self.outbox.clear();
        }
        self.sent = 0;
        !transport.has_pending()
    }

    /// Queues raw bytes (an HTTP head) and writes them if the socket takes them.
    pub fn write_raw(&mut self, bytes: &[u8]) {
        self.outbox.extend_from_slice(bytes);
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

    /// Writes one frame. A server frame goes out as header + payload in one vectored write,
    /// straight from the caller's buffer; a client frame is masked into the send buffer.
    pub fn write_frame(&mut self, role: Role, opcode: Opcode, fin: bool, payload: &[u8]) {
        if self.broken || self.transport.is_none() {
            return;
        }
        let mut header = [0u8; MAX_HEADER];
        if role == Role::Client {
            let mask: [u8; 4] = rand::random();
            let n = frame::encode_header(&mut header, opcode, fin, payload.len(), Some(mask));
            self.outbox.extend_from_slice(&header[..n]);
            let start = self.outbox.len();
            self.outbox.extend_from_slice(payload);
            frame::apply_mask(&mut self.outbox[start..], mask);
            if !self.corked || self.queued() >= CORK_FLUSH {
                self.flush();
            }
            return;
        }
        let n = frame::encode_header(&mut header, opcode, fin, payload.len(), None);
        let mut written = 0;
        // TLS copies into records anyway: the frame goes through the send buffer, and out now.
        let through_buffer = self.transport.as_ref().is_some_and(Transport::is_tls);
        if self.queued() == 0 && !self.corked && !through_buffer {
            let transport = self.transport.as_mut().expect("checked above");
            loop {
                match transport.write_vectored(&[IoSlice::new(&header[..n]), IoSlice::new(payload)])
                {
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
        if written < n {
            self.outbox.extend_from_slice(&header[written..n]);
            self.outbox.extend_from_slice(payload);
        } else {
            self.outbox.extend_from_slice(&payload[written - n..]);
        }
        if (through_buffer && !self.corked) || (self.corked && self.queued() >= CORK_FLUSH) {
            self.flush();
        }
    }

    /// Queues our close frame and moves to `Closing`.
    pub fn write_close(&mut self, role: Role, code: Option<u16>, reason: &str) {
        let mut payload = Vec::with_capacity(2 + reason.len());
        if let Some(code) = code {
            payload.extend_from_slice(&code.to_be_bytes());
            payload.extend_from_slice(reason.as_bytes());
        }
        self.write_frame(role, Opcode::Close, true, &payload);
        self.state = State::Closing;
    }
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A fresh identifier, shared by connections and listeners (it is also their poll token).
pub fn next_id() -> u64 {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

pub struct Connection {
    pub id: u64,
    pub role: Role,
    pub settings: Arc<ConnectionSettings>,
    pub delegate: Arc<Delegate>,
    /// The event loop that owns this connection's socket.
    pub event_loop: Arc<LoopShared>,
    pub io: Mutex<Io>,
    peer: OnceLock<SocketAddr>,
    protocol: OnceLock<String>,
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
        Arc::new(Connection {
            id: next_id(),
            role,
            settings,
            delegate,
            event_loop,
            io: Mutex::new(Io {
                transport,
                state: State::Opening,
                outbox: Vec::new(),
                sent: 0,
                broken: false,
                corked: false,
            }),
            peer: OnceLock::new(),
            protocol: OnceLock::new(),
            user_data: AtomicUsize::new(0),
            api_handle: AtomicUsize::new(0),
        })
    }

    pub fn send(&self, kind: OutgoingKind, payload: &[u8]) -> Result<()> {
        let opcode = match kind {
            OutgoingKind::Text => Opcode::Text,
            OutgoingKind::Binary => Opcode::Binary,
            OutgoingKind::Ping => Opcode::Ping,
        };
        if kind == OutgoingKind::Ping && payload.len() > 125 {
            return Err(Error::new(
                libc::EMSGSIZE,
                format!("ping payload of {} bytes exceeds 125", payload.len()),
            ));
        }
        let fragment = match self.settings.fragment_size_max {
            0 => payload.len().max(1),
            _ if kind == OutgoingKind::Ping => payload.len().max(1),
            size => size,
        };
        let mut io = self.io.lock();
        match io.state {
            State::Open => {}
            State::Opening => return Err(Error::not_connected("connection is not open yet")),
            State::Closing => return Err(Error::not_connected("connection is closing")),
            State::Closed => return Err(Error::not_connected("connection is closed")),
        }
        if io.broken {
            return Err(Error::new(
                libc::ECONNRESET,
                "connection was reset by the peer",
            ));
        }
        let framed = payload.len() + MAX_HEADER * payload.len().div_ceil(fragment).max(1);
        let over_cap =
            |io: &Io| io.queued() > 0 && io.queued() + framed > self.settings.send_buffer_max;
        // Replies collected under the cork are not backpressure: write them out first.
        if over_cap(&io) && io.corked {
            io.flush();
        }
        if over_cap(&io) {
            let queued = io.queued();
            return Err(Error::new(
                libc::EAGAIN,
                format!(
                    "send buffer full ({queued} bytes waiting, send-buffer-size-max {})",
                    self.settings.send_buffer_max
                ),
            ));
        }
        if payload.len() <= fragment {
            io.write_frame(self.role, opcode, true, payload);
        } else {
            let count = payload.len().div_ceil(fragment);
            for (index, chunk) in payload.chunks(fragment).enumerate() {
                let code = if index == 0 {
                    opcode
                } else {
                    Opcode::Continuation
                };
                io.write_frame(self.role, code, index + 1 == count, chunk);
            }
        }
        Ok(())
    }

    /// Starts the closing handshake. `status` must be a code an endpoint may send.
    pub fn close(&self, status: i32, reason: &str) -> Result<()> {
        let code = u16::try_from(status)
            .ok()
            .filter(|c| frame::close_code_is_sendable(*c))
            .ok_or_else(|| {
                Error::invalid(format!(
                    "status code {status} may not be sent in a close frame"
                ))
            })?;
        if reason.len() > 123 {
            return Err(Error::invalid(format!(
                "close reason of {} bytes exceeds 123",
                reason.len()
            )));
        }
        let mut io = self.io.lock();
        match io.state {
            State::Open => {
                io.write_close(self.role, Some(code), reason);
                drop(io);
                self.event_loop.submit(Command::CloseStarted(self.id));
            }
            State::Opening => {
                drop(io);
                log!(
                    Debug,
                    "connection {} closed while opening: abandoned",
                    self.id
                );
                self.event_loop.submit(Command::Abandon(self.id));
            }
            State::Closing | State::Closed => {}
        }
        Ok(())
    }

    pub fn is_open(&self) -> bool {
        self.io.lock().state == State::Open
    }

    pub fn peer_address(&self) -> Option<SocketAddr> {
        self.peer.get().copied()
    }

    pub fn set_peer_address(&self, address: SocketAddr) {
        let _ = self.peer.set(address);
    }

    pub fn protocol(&self) -> Option<String> {
        self.protocol.get().cloned()
    }

    pub fn set_protocol(&self, protocol: Option<String>) {
        if let Some(protocol) = protocol {
            let _ = self.protocol.set(protocol);
        }
    }

    pub fn set_user_data(&self, data: *mut c_void) {
        self.user_data.store(data as usize, Ordering::Relaxed);
    }

    pub fn user_data(&self) -> *mut c_void {
        self.user_data.load(Ordering::Relaxed) as *mut c_void
    }
}
