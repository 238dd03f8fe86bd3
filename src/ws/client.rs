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

use super::client_blocking::connect_and_upgrade;
use super::connection::{Common, Connection, OpenInfo};
use super::delegate::Delegate;
use super::opening::{self, TlsTarget};
use super::registry::CLIENTS;
use super::session::Session;
use super::url::{self, WsUrl};
use crate::config::{ClientConfig, ConnectionSettings};
use crate::error::{Error, Result};
use crate::log::log;
use crate::protocol::Role;
use crate::protocol::close::{ABNORMAL, TLS_FAILURE};
use crate::protocol::handshake::ClientHandshake;
use crate::runtime::{self, Runtime, on_loop_thread, oneshot};
use crate::transport::{Transport, resolver, tls};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
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
            return Err(report_failure(&connection, error.into()));
        }
    };
    let OpenRequest { url, settings, tls } = request;
    let handshake = ClientHandshake::new(
        &url.resource,
        &url.host_header(),
        &settings.protocols,
        rand::random(),
    );
    let connection = new_connection(&runtime, Arc::new(settings), delegate);
    if timeout_msec > 0 {
        let timeout = Duration::from_millis(timeout_msec as u64);
        match connect_and_upgrade(&url, tls.as_ref(), handshake, started, timeout) {
            Ok(opened) => Ok(hand_over(connection, opened, url.resource)),
            Err(failure) => Err(report_failure(&connection, failure)),
        }
    } else {
        Ok(open_async(connection, handshake, &url, tls))
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
            let target = tls::client_target(&config.tls, &url.host)?;
            if config.tls.disable_certificate_validation {
                log!(
                    Warn,
                    "wss://{}: certificate validation is off (tls-disable-certificate-validation)",
                    url.host_header()
                );
            }
            Some(target)
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
    let common = Common::new(
        Role::Client,
        settings,
        delegate,
        CLIENTS.clone(),
        runtime.pick_loop(),
    );
    let connection = Connection::new(common, None);
    CLIENTS.join();
    connection
}

/// The error a failed transport operation means for the caller: a TLS failure keeps its own
/// errno and sentence.
pub fn transport_error(context: &str, err: &std::io::Error) -> Error {
    match tls::tls_failure(err) {
        Some(failure) => Error::new(failure.errno, failure.what.clone()),
        None => Error::io(context, err),
    }
}

/// The address of a host given as an IP literal, which needs no lookup.
pub(super) fn literal_address(url: &WsUrl) -> Option<SocketAddr> {
    let ip: IpAddr = url.host.parse().ok()?;
    Some(SocketAddr::new(ip, url.port))
}

/// Returns at once; the loop opens the connection and reports through onOpen or onError. A
/// host name is resolved off the loop and its addresses handed to the loop as a command.
fn open_async(
    connection: Arc<Connection>,
    handshake: ClientHandshake,
    url: &WsUrl,
    tls: Option<TlsTarget>,
) -> Arc<Connection> {
    let literal = literal_address(url);
    let session = Session::connecting(
        connection.clone(),
        handshake,
        literal.map(|address| vec![address]),
        tls,
    );
    let id = connection.id;
    connection
        .event_loop()
        .submit(move |tasks| tasks.adopt(id, session));
    if literal.is_none() {
        // The session gives up at the same time (handshake-timeout-ms); an answer after that
        // would find no session, so the resolver need not even deliver it.
        let deadline = Instant::now() + connection.common.settings.limits.handshake_timeout;
        // Weak: a lookup outliving the runtime must not keep its loop alive.
        let event_loop = Arc::downgrade(connection.event_loop());
        let id = connection.id;
        let host = url.host.clone();
        resolver::lookup(&url.host, url.port, deadline, move |answer| {
            if let Some(event_loop) = event_loop.upgrade() {
                let answer = answer.map_err(|e| format!("cannot resolve '{host}': {e}"));
                event_loop.submit(move |tasks| opening::resolved(tasks, id, answer));
            }
        });
    }
    connection
}

/// A connection a blocking open completed: the socket, the negotiated subprotocol, and bytes
/// that arrived right after the handshake.
pub(super) type Opened = (Transport, Option<String>, Vec<u8>);

/// Hands a connection opened on the caller's thread to its loop, which delivers onOpen.
/// `target`: the path and query the request asked for.
fn hand_over(connection: Arc<Connection>, opened: Opened, target: String) -> Arc<Connection> {
    let (transport, protocol, leftover) = opened;
    if let Ok(peer) = transport.peer_addr() {
        connection.set_peer_address(peer);
    }
    connection.set_opened(OpenInfo::new(protocol.as_deref(), &target, None));
    // Outside a callback, return only after onOpen has run, as the original SDK's samples
    // expect ("connected" after "Open"). Inside one, the loop cannot run it yet.
    let (opened, on_open_done) = oneshot::oneshot();
    let waiting = !on_loop_thread();
    let session = Session::opened(connection.clone(), leftover, waiting.then_some(opened));
    let refused = {
        // Open and handed over under the connection's lock: a close from another thread
        // (finalize, say) then queues its command after the hand-over, never before it.
        let mut io = connection.io();
        io.writer.transport = Some(transport);
        io.endpoint
            .opened(Instant::now(), &connection.common.settings.limits);
        let id = connection.id;
        connection
            .event_loop()
            .enqueue(move |tasks| tasks.adopt(id, session))
    };
    // (A loop that ended meanwhile gives the session back: dropped here, outside the lock.)
    drop(refused);
    connection.event_loop().wake();
    if waiting {
        let _ = on_open_done.wait(ON_OPEN_WAIT);
    }
    connection
}

/// Hands the loop a session that delivers onError for a failed open, and returns the error for
/// the caller. The delegate's `release` follows once the connection is gone.
fn report_failure(connection: &Arc<Connection>, failure: OpenFailure) -> Error {
    let session = Session::failed(
        connection.clone(),
        failure.code,
        failure.error.message.clone(),
    );
    let id = connection.id;
    connection
        .event_loop()
        .submit(move |tasks| tasks.adopt(id, session));
    failure.error
}

/// A failed open: the error for the caller and the status code for onError.
pub(super) struct OpenFailure {
    error: Error,
    code: u16,
}

impl From<Error> for OpenFailure {
    fn from(error: Error) -> Self {
        OpenFailure {
            error,
            code: ABNORMAL,
        }
    }
}

/// A failed transport operation: a TLS failure keeps its errno and sentence and means 1015.
pub(super) fn transport_failure(context: &str, err: &std::io::Error) -> OpenFailure {
    OpenFailure {
        error: transport_error(context, err),
        code: if tls::tls_failure(err).is_some() {
            TLS_FAILURE
        } else {
            ABNORMAL
        },
    }
}
