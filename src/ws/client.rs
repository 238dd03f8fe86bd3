//! Opening client connections: parse the URL, resolve, then either drive connect + handshake on
//! the caller's thread (`timeout_msec > 0`, which also works from inside a callback) or hand a
//! connecting socket to an event loop (`timeout_msec <= 0`).

use super::connection::{Connection, Role, State};
use super::delegate::Delegate;
use super::handshake::{ClientHandshake, ClientStep};
use super::session::Session;
use super::url::{self, WsUrl};
use crate::config::ClientConfig;
use crate::error::{Error, Result};
use crate::log::log;
use crate::runtime::{self, Command, Runtime, on_loop_thread};
use crate::transport::{Transport, tls};
use rustls::pki_types::ServerName;
use std::collections::VecDeque;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::sync::mpsc::sync_channel;
use std::time::{Duration, Instant};

/// Longest wait for onOpen to finish after a blocking open (a callback that blocks longer only
/// delays the return).
const ON_OPEN_WAIT: Duration = Duration::from_secs(5);

pub fn open(
    url: &str,
    config: ClientConfig,
    delegate: Arc<Delegate>,
    timeout_msec: i32,
) -> Result<Arc<Connection>> {
    let runtime = runtime::current()?;
    let url = url::parse(url)?;
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
    let addresses = resolve(&url)?;
    let settings = Arc::new(config.connection);
    let handshake = ClientHandshake::new(&url, &settings.protocols);
    let event_loop = runtime.pick_loop();
    let connection = Connection::new(Role::Client, settings, delegate, event_loop, None);
    runtime.clients.add(&connection);
    let target = Target { addresses, tls };
    if timeout_msec > 0 {
        open_blocking(
            &runtime,
            connection,
            handshake,
            target,
            Duration::from_millis(timeout_msec as u64),
        )
    } else {
        open_async(&runtime, connection, handshake, target)
    }
}

/// Where a client connects: the resolved addresses and, for wss, the TLS configuration and the
/// name the server's certificate must carry.
pub struct Target {
    pub addresses: Vec<SocketAddr>,
    pub tls: Option<TlsTarget>,
}

pub type TlsTarget = (Arc<rustls::ClientConfig>, ServerName<'static>);

/// The error a failed transport operation means for the caller: a TLS failure keeps its own
/// errno and sentence.
pub fn transport_error(context: &str, err: &std::io::Error) -> Error {
    match tls::tls_failure(err) {
        Some(failure) => Error::new(failure.errno, failure.what.clone()),
        None => Error::io(context, err),
    }
}

fn resolve(url: &WsUrl) -> Result<Vec<SocketAddr>> {
    let addresses: Vec<SocketAddr> = (url.host.as_str(), url.port)
        .to_socket_addrs()
        .map_err(|e| {
            Error::new(
                libc::EHOSTUNREACH,
                format!("cannot resolve '{}': {e}", url.host),
            )
        })?
        .collect();
    if addresses.is_empty() {
        return Err(Error::new(
            libc::EHOSTUNREACH,
            format!("'{}' has no address", url.host),
        ));
    }
    Ok(addresses)
}

fn open_async(
    runtime: &Runtime,
    connection: Arc<Connection>,
    handshake: ClientHandshake,
    target: Target,
) -> Result<Arc<Connection>> {
    let mut remaining: VecDeque<SocketAddr> = target.addresses.into();
    while let Some(address) = remaining.pop_front() {
        match mio::net::TcpStream::connect(address) {
            Ok(stream) => {
                connection.io.lock().transport =
                    Some(Transport::connected(stream, target.tls.as_ref())?);
                break;
            }
            Err(e) => log!(Debug, "connect to {address} failed at once: {e}"),
        }
    }
    // With no socket the session reports onError as soon as the loop starts it.
    let session = Session::connecting(
        connection.clone(),
        runtime.clients.clone(),
        handshake,
        remaining,
        target.tls,
    );
    connection.event_loop.submit(Command::Adopt(session));
    Ok(connection)
}

fn open_blocking(
    runtime: &Runtime,
    connection: Arc<Connection>,
    handshake: ClientHandshake,
    target: Target,
    timeout: Duration,
) -> Result<Arc<Connection>> {
    let deadline = Instant::now() + timeout;
    match connect_and_upgrade(handshake, &target, deadline) {
        Ok((transport, protocol, leftover)) => {
            if let Ok(peer) = transport.peer_addr() {
                connection.set_peer_address(peer);
            }
            connection.set_protocol(protocol);
            // Outside a callback, return only after onOpen has run, as the original SDK's
            // samples expect ("connected" after "Open"). Inside one, the loop cannot run it yet.
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
                connection.event_loop.submit(Command::Adopt(session));
            }
            if waiting {
                let _ = on_open_done.recv_timeout(ON_OPEN_WAIT);
            }
            Ok(connection)
        }
        Err(failure) => {
            // onError is delivered on the event loop, like every callback.
            let session = Session::failed(
                connection.clone(),
                runtime.clients.clone(),
                failure.code,
                failure.error.message.clone(),
            );
            connection.event_loop.submit(Command::Adopt(session));
            Err(failure.error)
        }
    }
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

/// Connect (trying each address), run TLS when asked, send the upgrade request and read the
/// response, all before `deadline`.
fn connect_and_upgrade(
    mut handshake: ClientHandshake,
    target: &Target,
    deadline: Instant,
) -> std::result::Result<(Transport, Option<String>, Vec<u8>), OpenFailure> {
    let timed_out = || Error::new(libc::ETIMEDOUT, "timed out opening the connection");
    let mut last_error = None;
    let mut stream = None;
    for address in &target.addresses {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(timed_out().into());
        }
        match TcpStream::connect_timeout(address, left) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last_error = Some(Error::io(&format!("cannot connect to {address}"), &e)),
        }
    }
    let stream = stream.ok_or_else(|| last_error.unwrap_or_else(timed_out))?;
    stream
        .set_nonblocking(true)
        .map_err(|e| Error::io("cannot make the socket non-blocking", &e))?;
    let mut transport =
        Transport::connected(mio::net::TcpStream::from_std(stream), target.tls.as_ref())?;
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
            return Err(Error::new(
                libc::ETIMEDOUT,
                "timed out opening the connection",
            ));
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
