//! The blocking half of `wsOpenConnection` (`timeout_msec > 0`), on the caller's thread, in
//! the document's two phases: up to `timeout_msec` to reach the server — name resolution and
//! TCP connect, each address in turn —, then up to `timeout_msec` again, counted from the
//! connect, for TLS and the opening handshake.

use super::client::{OpenFailure, Opened, literal_address, transport_failure};
use super::opening::TlsTarget;
use super::url::WsUrl;
use crate::error::{Error, Result};
use crate::protocol::handshake::{ClientHandshake, ClientStep};
use crate::runtime::oneshot;
use crate::transport::{Transport, resolver};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

fn timed_out(what: &str) -> Error {
    Error::new(libc::ETIMEDOUT, format!("timed out {what}"))
}

/// The blocking open in the document's two phases: reach the server within `timeout` of
/// `started`, then complete TLS and the opening handshake within `timeout` of the connect.
pub(super) fn connect_and_upgrade(
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
    let (sender, answer) = oneshot::oneshot();
    resolver::lookup(&url.host, url.port, deadline, move |answer| {
        sender.send(answer);
    });
    let left = deadline.saturating_duration_since(Instant::now());
    match answer.wait(left) {
        Some(Ok(addresses)) if !addresses.is_empty() => Ok(addresses),
        Some(Ok(_)) => Err(Error::new(
            libc::EHOSTUNREACH,
            format!("'{}' has no address", url.host),
        )),
        Some(Err(e)) => Err(Error::new(
            libc::EHOSTUNREACH,
            format!("cannot resolve '{}': {e}", url.host),
        )),
        // Or the resolver dropped the lookup, its deadline having passed in the queue.
        None => Err(timed_out(&format!("resolving '{}'", url.host))),
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
            Ok(n) => match handshake
                .feed(&buffer[..n])
                .map_err(|refused| Error::new(libc::EPROTO, refused.0))?
            {
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
