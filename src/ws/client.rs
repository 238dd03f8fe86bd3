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
use crate::transport::Transport;
use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::fd::AsRawFd;
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
    if url.secure {
        return Err(Error::new(
            libc::EPROTONOSUPPORT,
            "wss:// needs TLS, which this build of oasisnet does not provide yet",
        ));
    }
    if !config.tls_keys.is_empty() {
        log!(
            Info,
            "TLS keys ({}) have no effect on a ws:// URL",
            config.tls_keys.join(", ")
        );
    }
    let addresses = resolve(&url)?;
    let settings = Arc::new(config.connection);
    let handshake = ClientHandshake::new(&url, &settings.protocols);
    let event_loop = runtime.pick_loop();
    let connection = Connection::new(Role::Client, settings, delegate, event_loop, None);
    runtime.clients.add(&connection);
    if timeout_msec > 0 {
        open_blocking(
            &runtime,
            connection,
            handshake,
            addresses,
            Duration::from_millis(timeout_msec as u64),
        )
    } else {
        open_async(&runtime, connection, handshake, addresses)
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
    addresses: Vec<SocketAddr>,
) -> Result<Arc<Connection>> {
    let mut remaining: VecDeque<SocketAddr> = addresses.into();
    while let Some(address) = remaining.pop_front() {
        match mio::net::TcpStream::connect(address) {
            Ok(stream) => {
                connection.io.lock().transport = Some(Transport::plain(stream));
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
    );
    connection.event_loop.submit(Command::Adopt(session));
    Ok(connection)
}

fn open_blocking(
    runtime: &Runtime,
    connection: Arc<Connection>,
    handshake: ClientHandshake,
    addresses: Vec<SocketAddr>,
    timeout: Duration,
) -> Result<Arc<Connection>> {
    let deadline = Instant::now() + timeout;
    match connect_and_upgrade(handshake, &addresses, deadline) {
        Ok((stream, protocol, leftover)) => {
            let peer = stream.peer_addr().ok();
            let stream = mio::net::TcpStream::from_std(stream);
            {
                let mut io = connection.io.lock();
                io.transport = Some(Transport::plain(stream));
                io.state = State::Open;
            }
            if let Some(peer) = peer {
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
            connection.event_loop.submit(Command::Adopt(session));
            if waiting {
                let _ = on_open_done.recv_timeout(ON_OPEN_WAIT);
            }
            Ok(connection)
        }
        Err(err) => {
            // onError is delivered on the event loop, like every callback.
            let session = Session::failed(
                connection.clone(),
                runtime.clients.clone(),
                err.message.clone(),
            );
            connection.event_loop.submit(Command::Adopt(session));
            Err(err)
        }
    }
}

/// Connect (trying each address), send the upgrade request and read the response, all before
/// `deadline`.
fn connect_and_upgrade(
    mut handshake: ClientHandshake,
    addresses: &[SocketAddr],
    deadline: Instant,
) -> Result<(TcpStream, Option<String>, Vec<u8>)> {
    let timed_out = || Error::new(libc::ETIMEDOUT, "timed out opening the connection");
    let mut last_error = None;
    let mut stream = None;
    for address in addresses {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(timed_out());
        }
        match TcpStream::connect_timeout(address, left) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last_error = Some(Error::io(&format!("cannot connect to {address}"), &e)),
        }
    }
    let mut stream = stream.ok_or_else(|| last_error.unwrap_or_else(timed_out))?;
    stream
        .set_nonblocking(true)
        .map_err(|e| Error::io("cannot make the socket non-blocking", &e))?;
    let _ = stream.set_nodelay(true);
    let request = handshake.request().to_vec();
    let mut written = 0;
    while written < request.len() {
        wait_ready(&stream, libc::POLLOUT, deadline)?;
        match stream.write(&request[written..]) {
            Ok(n) => written += n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
                ) => {}
            Err(e) => return Err(Error::io("cannot send the upgrade request", &e)),
        }
    }
    let mut buffer = [0u8; 4096];
    loop {
        wait_ready(&stream, libc::POLLIN, deadline)?;
        match stream.read(&mut buffer) {
            Ok(0) => {
                return Err(Error::new(
                    libc::ECONNRESET,
                    "server closed the connection during the handshake",
                ));
            }
            Ok(n) => match handshake.feed(&buffer[..n])? {
                ClientStep::NeedMore => {}
                ClientStep::Open { protocol, leftover } => return Ok((stream, protocol, leftover)),
            },
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
                ) => {}
            Err(e) => return Err(Error::io("cannot read the upgrade response", &e)),
        }
    }
}

/// Waits until the socket is ready for `events` or the deadline passes (`ETIMEDOUT`).
fn wait_ready(stream: &TcpStream, events: i16, deadline: Instant) -> Result<()> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Error::new(
                libc::ETIMEDOUT,
                "timed out opening the connection",
            ));
        }
        let mut poll_fd = libc::pollfd {
            fd: stream.as_raw_fd(),
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
