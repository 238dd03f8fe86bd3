//! Opening client connections, by the rules the Oasis document gives `wsOpenConnection`.
//!
//! Every open that was handed a delegate ends in exactly one onOpen or onError, whatever failed:
//! the URL, a parameter, a certificate file, the name, the connect, TLS or the handshake. A
//! failure found on the caller's thread is also returned at once (NULL and `errno`), and the
//! loop is handed a failed session that delivers onError, so that callback runs on an
//! event-loop thread like every other one. Only a call before `oasis_initialize` fails without
//! a callback: there is no loop to report on. (The FFI layer refuses NULL pointers before any
//! of this.)
//!
//! `timeout_msec > 0` opens on the caller's thread (which also works from inside a callback) in
//! the document's two phases: up to `timeout_msec` to reach the server — name resolution and
//! TCP connect, each address in turn —, then up to `timeout_msec` again, counted from the
//! connect, for TLS and the opening handshake. `timeout_msec <= 0` returns at once: the loop
//! connects and runs the handshake, `handshake-timeout-ms` bounding the whole open. In both
//! modes a host name is looked up by `transport::resolver`, so no `getaddrinfo` ever blocks the
//! caller beyond its timeout, nor an event loop at all.

use super::connection::{Connection, Role, State};
use super::delegate::Delegate;
use super::handshake::{ClientHandshake, ClientStep};
use super::session::Session;
use super::url::{self, WsUrl};
use crate::config::{ClientConfig, ConnectionSettings};
use crate::error::{Error, Result};
use crate::log::log;
use crate::runtime::{self, Command, Runtime, on_loop_thread};
use crate::transport::{Transport, resolver, tls};
use rustls::pki_types::ServerName;
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::mpsc::{RecvTimeoutError, sync_channel};
use std::time::{Duration, Instant};

/// Longest wait for onOpen to finish after a blocking open (a callback that blocks longer only
/// delays the return).
const ON_OPEN_WAIT: Duration = Duration::from_secs(5);

/// Opens a client connection. `url` and `parameters` are the caller's arguments as the FFI
/// layer read them (`parameters` fails when the C array itself is unreadable): checking them is
/// part of the open, so their failures reach the delegate too.
pub fn open(
    url: &[u8],
    parameters: Result<Vec<(String, String)>>,
    delegate: Arc<Delegate>,
    timeout_msec: i32,
) -> Result<Arc<Connection>> {
    let started = Instant::now();
    let runtime = runtime::current()?;
    let request = match OpenRequest::check(url, parameters) {
        Ok(request) => request,
        Err(error) => {
            let connection =
                new_connection(&runtime, Arc::new(ConnectionSettings::default()), delegate);
            return Err(report_failure(&runtime, &connection, error.into()));
        }
    };
    let OpenRequest { url, settings, tls } = request;
    let handshake = ClientHandshake::new(&url, &settings.protocols);
    let connection = new_connection(&runtime, Arc::new(settings), delegate);
    if timeout_msec > 0 {
        let timeout = Duration::from_millis(timeout_msec as u64);
        match connect_and_upgrade(&url, tls.as_ref(), handshake, started, timeout) {
            Ok(opened) => Ok(hand_over(&runtime, connection, opened)),
            Err(failure) => Err(report_failure(&runtime, &connection, failure)),
        }
    } else {
        Ok(open_async(&runtime, connection, handshake, &url, tls))
    }
}

/// An open's arguments, checked.
struct OpenRequest {
    url: WsUrl,
    settings: ConnectionSettings,
    tls: Option<TlsTarget>,
}

impl OpenRequest {
    fn check(url: &[u8], parameters: Result<Vec<(String, String)>>) -> Result<OpenRequest> {
        let url = std::str::from_utf8(url).map_err(|_| Error::invalid("url is not valid UTF-8"))?;
        let url = url::parse(url)?;
        let config = ClientConfig::parse(&parameters?)?;
        let tls = if url.secure {
            let tls_config = tls::client_config(&config.tls)?;
            if config.tls.disable_certificate_validation {
                log!(
                    Warn,
                    "wss://{}: certificate validation is off (tls-disable-certificate-validation)",
                    url.host_header()
                );
            }
            Some((tls_config, tls::server_name(&url.host)?))
        } else {
            if !config.tls_keys.is_empty() {
                log!(
                    Info,
                    "TLS keys ({}) have no effect on a ws:// URL",
                    config.tls_keys.join(", ")
                );
            }
            None
        };
        Ok(OpenRequest {
            url,
            settings: config.connection,
            tls,
        })
    }
}

fn new_connection(
    runtime: &Runtime,
    settings: Arc<ConnectionSettings>,
    delegate: Arc<Delegate>,
) -> Arc<Connection> {
    let connection = Connection::new(Role::Client, settings, delegate, runtime.pick_loop(), None);
    runtime.clients.add(&connection);
    connection
}

/// For wss: the TLS configuration and the name the server's certificate must carry.
pub type TlsTarget = (Arc<rustls::ClientConfig>, ServerName<'static>);

/// The error a failed transport operation means for the caller: a TLS failure keeps its own
/// errno and sentence.
pub fn transport_error(context: &str, err: &std::io::Error) -> Error {
    match tls::tls_failure(err) {
        Some(failure) => Error::new(failure.errno, failure.what.clone()),
        None => Error::io(context, err),
    }
}

/// The address of a host given as an IP literal, which needs no lookup.
fn literal_address(url: &WsUrl) -> Option<SocketAddr> {
    let ip: IpAddr = url.host.parse().ok()?;
    Some(SocketAddr::new(ip, url.port))
}

/// Returns at once; the loop opens the connection and reports through onOpen or onError. A
/// host name is resolved off the loop and its addresses handed to the loop as a command.
fn open_async(
    runtime: &Runtime,
    connection: Arc<Connection>,
    handshake: ClientHandshake,
    url: &WsUrl,
    tls: Option<TlsTarget>,
) -> Arc<Connection> {
    let literal = literal_address(url);
    let session = Session::connecting(
        connection.clone(),
        runtime.clients.clone(),
        handshake,
        literal.map(|address| vec![address]),
        tls,
    );
    connection.event_loop.submit(Command::Adopt(session));
    if literal.is_none() {
        // The session gives up at the same time (handshake-timeout-ms); an answer after that
        // would find no session, so the resolver need not even deliver it.
        let deadline = Instant::now() + connection.settings.handshake_timeout;
        // Weak: a lookup outliving the runtime must not keep its loop alive.
        let event_loop = Arc::downgrade(&connection.event_loop);
        let id = connection.id;
        let host = url.host.clone();
        resolver::lookup(&url.host, url.port, deadline, move |answer| {
            if let Some(event_loop) = event_loop.upgrade() {
                let answer = answer.map_err(|e| format!("cannot resolve '{host}': {e}"));
                event_loop.submit(Command::Resolved { id, answer });
            }
        });
    }
    connection
}

/// A connection a blocking open completed: the socket, the negotiated subprotocol, and bytes
/// that arrived right after the handshake.
type Opened = (Transport, Option<String>, Vec<u8>);

/// Hands a connection opened on the caller's thread to its loop, which delivers onOpen.
fn hand_over(runtime: &Runtime, connection: Arc<Connection>, opened: Opened) -> Arc<Connection> {
    let (transport, protocol, leftover) = opened;
    if let Ok(peer) = transport.peer_addr() {
        connection.set_peer_address(peer);
    }
    connection.set_protocol(protocol);
    // Outside a callback, return only after onOpen has run, as the original SDK's samples
    // expect ("connected" after "Open"). Inside one, the loop cannot run it yet.
    let (opened, on_open_done) = sync_channel(1);
    let waiting = !on_loop_thread();
    let session = Session::opened(
        connection.clone(),
        runtime.clients.clone(),
        leftover,
        waiting.then_some(opened),
    );
    {
        // Open and handed over under the connection's lock: a close from another thread
        // (finalize, say) then queues its command after the hand-over, never before it.
        let mut io = connection.io.lock();
        io.transport = Some(transport);
        io.state = State::Open;
        connection.event_loop.enqueue(Command::Adopt(session));
    }
    connection.event_loop.wake();
    if waiting {
        let _ = on_open_done.recv_timeout(ON_OPEN_WAIT);
    }
    connection
}

/// Hands the loop a session that delivers onError for a failed open, and returns the error for
/// the caller. The delegate's `release` follows once the connection is gone.
fn report_failure(runtime: &Runtime, connection: &Arc<Connection>, failure: OpenFailure) -> Error {
    let session = Session::failed(
        connection.clone(),
        runtime.clients.clone(),
        failure.code,
        failure.error.message.clone(),
    );
    connection.event_loop.submit(Command::Adopt(session));
    failure.error
}

/// A failed open: the error for the caller and the status code for onError.
struct OpenFailure {
    error: Error,
    code: u16,
}

impl From<Error> for OpenFailure {
    fn from(error: Error) -> Self {
        OpenFailure {
            error,
            code: ABNORMAL_CLOSURE,
        }
    }
}

const ABNORMAL_CLOSURE: u16 = 1006;
pub const TLS_HANDSHAKE_FAILURE: u16 = 1015;

/// A failed transport operation: a TLS failure keeps its errno and sentence and means 1015.
fn transport_failure(context: &str, err: &std::io::Error) -> OpenFailure {
    OpenFailure {
        error: transport_error(context, err),
        code: if tls::tls_failure(err).is_some() {
            TLS_HANDSHAKE_FAILURE
        } else {
            ABNORMAL_CLOSURE
        },
    }
}

fn timed_out(what: &str) -> Error {
    Error::new(libc::ETIMEDOUT, format!("timed out {what}"))
}

/// The blocking open in the document's two phases: reach the server within `timeout` of
/// `started`, then complete TLS and the opening handshake within `timeout` of the connect.
fn connect_and_upgrade(
    url: &WsUrl,
    tls: Option<&TlsTarget>,
    handshake: ClientHandshake,
    started: Instant,
    timeout: Duration,
) -> std::result::Result<Opened, OpenFailure> {
    let connect_deadline = started + timeout;
    let addresses = match literal_address(url) {
        Some(address) => vec![address],
        None => resolve_before(url, connect_deadline)?,
    };
    let stream = connect_before(&addresses, connect_deadline)?;
    let handshake_deadline = Instant::now() + timeout;
    upgrade_before(stream, tls, handshake, handshake_deadline)
}

/// Looks the host name up on a resolver thread, waiting for the answer until `deadline`.
fn resolve_before(url: &WsUrl, deadline: Instant) -> Result<Vec<SocketAddr>> {
    let (sender, answer) = sync_channel(1);
    resolver::lookup(&url.host, url.port, deadline, move |answer| {
        let _ = sender.send(answer);
    });
    let left = deadline.saturating_duration_since(Instant::now());
    match answer.recv_timeout(left) {
        Ok(Ok(addresses)) if !addresses.is_empty() => Ok(addresses),
        Ok(Ok(_)) => Err(Error::new(
            libc::EHOSTUNREACH,
            format!("'{}' has no address", url.host),
        )),
        Ok(Err(e)) => Err(Error::new(
            libc::EHOSTUNREACH,
            format!("cannot resolve '{}': {e}", url.host),
        )),
        // Disconnected: the resolver dropped the lookup, its deadline having passed in the queue.
        Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {
            Err(timed_out(&format!("resolving '{}'", url.host)))
        }
    }
}

/// Connects to the first address that answers before `deadline`.
fn connect_before(addresses: &[SocketAddr], deadline: Instant) -> Result<TcpStream> {
    let mut last_error = None;
    for address in addresses {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(timed_out("connecting to the server"));
        }
        match TcpStream::connect_timeout(address, left) {
            Ok(stream) => return Ok(stream),
            Err(e) => last_error = Some(Error::io(&format!("cannot connect to {address}"), &e)),
        }
    }
    Err(last_error.unwrap_or_else(|| timed_out("connecting to the server")))
}

/// Runs TLS when asked, sends the upgrade request and reads the response, all before
/// `deadline`.
fn upgrade_before(
    stream: TcpStream,
    tls: Option<&TlsTarget>,
    mut handshake: ClientHandshake,
    deadline: Instant,
) -> std::result::Result<Opened, OpenFailure> {
    stream
        .set_nonblocking(true)
        .map_err(|e| Error::io("cannot make the socket non-blocking", &e))?;
    let mut transport = Transport::connected(mio::net::TcpStream::from_std(stream), tls)?;
    let request = handshake.request().to_vec();
    let mut written = 0;
    while written < request.len() {
        match transport.write(&request[written..]) {
            Ok(n) => written += n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
                ) =>
            {
                wait_ready(&transport, libc::POLLOUT, deadline)?
            }
            Err(e) => return Err(transport_failure("cannot send the upgrade request", &e)),
        }
    }
    let mut buffer = [0u8; 4096];
    loop {
        // TLS records that did not fit into the socket go out before we wait for the answer.
        if transport.has_pending() {
            match transport.flush_pending() {
                Ok(true) => {}
                Ok(false) => {
                    wait_ready(&transport, libc::POLLOUT, deadline)?;
                    continue;
                }
                Err(e) => return Err(transport_failure("cannot send", &e)),
            }
        }
        match transport.read(&mut buffer) {
            Ok(0) => {
                return Err(Error::new(
                    libc::ECONNRESET,
                    "server closed the connection during the handshake",
                )
                .into());
            }
            Ok(n) => match handshake.feed(&buffer[..n])? {
                ClientStep::NeedMore => {}
                ClientStep::Open { protocol, leftover } => {
                    return Ok((transport, protocol, leftover));
                }
            },
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
                ) =>
            {
                wait_ready(&transport, libc::POLLIN, deadline)?
            }
            Err(e) => return Err(transport_failure("cannot read the upgrade response", &e)),
        }
    }
}

/// Waits until the socket is ready for `events` or the deadline passes (`ETIMEDOUT`).
fn wait_ready(transport: &Transport, events: i16, deadline: Instant) -> Result<()> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(timed_out("completing the opening handshake"));
        }
        let mut poll_fd = libc::pollfd {
            fd: transport.raw_fd(),
            events,
            revents: 0,
        };
        let millis = left.as_millis().clamp(1, i32::MAX as u128) as i32;
        // SAFETY: one valid pollfd for the duration of the call.
        let ready = unsafe { libc::poll(&mut poll_fd, 1, millis) };
        if ready > 0 {
            return Ok(());
        }
        if ready < 0 {
            let err = std::io::Error::last_os_error();
            if err.kind() != std::io::ErrorKind::Interrupted {
                return Err(Error::io("poll failed", &err));
            }
        }
    }
}
