//! An HTTP(S) server: a listening socket on one event loop, its connections spread over all
//! loops as [`HttpConnection`] tasks, the WebSocket services on its paths, and the firmware's
//! upstream delegate.
//!
//! The connection cap (`http-connections-max`) counts every open socket, upgraded ones
//! included: each holds an [`Admission`] until it closes. Over the cap a plain connection gets
//! a short 503 and is closed; a TLS one is closed at once (a handshake would cost more than
//! the answer is worth).

use super::connection::HttpConnection;
use super::parse::request::HttpLimits;
use super::parse::response;
use super::service::WsService;
use super::upstream::Upstream;
use crate::config::{ConnectionSettings, HttpServerConfig};
use crate::error::{Error, Result};
use crate::log::log;
use crate::runtime::{self, Context, LoopShared, on_loop_thread};
use crate::transport::Transport;
use crate::ws::admission::Admission;
use crate::ws::connection::{Writer, next_server_id};
use crate::ws::delegate::Delegate;
use crate::ws::listener::ListenState;
use crate::ws::registry::{self, Stoppable};
use parking_lot::{Condvar, Mutex, RwLock};
use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The request and keep-alive timeouts of a server's connections.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timeouts {
    pub request: Duration,
    pub keepalive: Duration,
}

/// What a server's connection tasks share with it.
pub(crate) struct ServerShared {
    pub id: u64,
    pub limits: HttpLimits,
    pub timeouts: Timeouts,
    /// Canonical; None: no path is a file.
    pub root: Option<PathBuf>,
    pub upstream: Option<Arc<Upstream>>,
    services: RwLock<Vec<Arc<WsService>>>,
    tls: Option<Arc<crate::transport::tls::ServerConfig>>,
    /// Open sockets (HTTP and upgraded), against `connections_max`.
    admitted: Arc<AtomicUsize>,
    connections_max: usize,
    /// Live HTTP connections and their loops, so that a stop can end them: tracked from the
    /// moment they are accepted, so one still on its way to its loop is not missed.
    live: Mutex<HashMap<u64, Arc<LoopShared>>>,
    /// Set while the server stops: nothing new is accepted, started or upgraded (a request
    /// already in hand gets 503), whatever the order in which the loops see the stop.
    stopping: AtomicBool,
    emptied: Condvar,
}

impl ServerShared {
    /// The services as they are now, without holding their lock (stopping waits for callbacks,
    /// which may add a service).
    fn services(&self) -> Vec<Arc<WsService>> {
        self.services.read().clone()
    }

    /// The service on exactly this (decoded, clean) path.
    pub(crate) fn service(&self, path: &str) -> Option<Arc<WsService>> {
        self.services
            .read()
            .iter()
            .find(|s| &*s.path == path)
            .cloned()
    }

    fn track(&self, id: u64, event_loop: &Arc<LoopShared>) {
        self.live.lock().insert(id, event_loop.clone());
    }

    /// The server is stopping: see `stopping`.
    pub(crate) fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    pub(crate) fn untrack(&self, id: u64) {
        let mut live = self.live.lock();
        if live.remove(&id).is_some() && live.is_empty() {
            self.emptied.notify_all();
        }
    }

    /// A new socket: an HTTP connection on a loop, or a refusal over the cap.
    fn accept(self: &Arc<Self>, stream: mio::net::TcpStream, peer: SocketAddr, cx: &mut Context) {
        if self.is_stopping() {
            return;
        }
        let Some(admission) = Admission::try_acquire(&self.admitted, self.connections_max) else {
            self.refuse(stream, peer);
            return;
        };
        let transport = match Transport::accepted(stream, self.tls.as_ref()) {
            Ok(transport) => transport,
            Err(err) => {
                log!(
                    Warn,
                    "http server {}: connection from {peer} dropped: {err}",
                    self.id
                );
                return;
            }
        };
        let target = match runtime::current() {
            Ok(runtime) => runtime.pick_loop(),
            Err(_) => cx.event_loop.clone(),
        };
        let id = target.reserve();
        let task = HttpConnection::new(
            id,
            self.clone(),
            Writer::new(Some(transport)),
            admission,
            peer,
        );
        self.track(id, &target);
        cx.place(&target, id, Box::new(task));
    }

    /// Over the cap: a plain connection is told so (best effort, the socket is new and empty);
    /// a TLS one is just closed.
    fn refuse(&self, stream: mio::net::TcpStream, peer: SocketAddr) {
        log!(
            Warn,
            "http server {}: {} connections open (http-connections-max): {peer} refused",
            self.id,
            self.connections_max
        );
        if self.tls.is_some() {
            return;
        }
        let mut answer = Vec::with_capacity(200);
        super::routing::with_date(|date| {
            response::error(&mut answer, 503, date, false, &[("Retry-After", "1")], true)
        });
        let _ = crate::transport::NoSigPipe(&stream).write(&answer);
        let _ = stream.shutdown(std::net::Shutdown::Write);
    }
}

pub struct HttpServer {
    pub id: u64,
    shared: Arc<ServerShared>,
    bind: SocketAddr,
    listening: ListenState,
    shut_down: AtomicBool,
}

/// Longest wait for HTTP connections to be dropped when a server stops.
const DROP_WAIT: Duration = Duration::from_secs(5);

impl HttpServer {
    pub fn create(
        config: HttpServerConfig,
        upstream: Option<Arc<Upstream>>,
    ) -> Result<Arc<HttpServer>> {
        runtime::current()?;
        let tls = config
            .tls
            .as_ref()
            .map(crate::transport::tls::server_config)
            .transpose()?;
        let http = &config.http;
        let id = next_server_id();
        let server = Arc::new(HttpServer {
            id,
            shared: Arc::new(ServerShared {
                id,
                limits: HttpLimits {
                    request_line_max: http.request_line_max,
                    head_max: http.header_size_max,
                    body_max: http.request_body_max,
                },
                timeouts: Timeouts {
                    request: http.request_timeout,
                    keepalive: http.keepalive_timeout,
                },
                root: config.root_dir.clone(),
                upstream,
                services: RwLock::new(Vec::new()),
                tls,
                admitted: Arc::new(AtomicUsize::new(0)),
                connections_max: http.connections_max,
                live: Mutex::new(HashMap::new()),
                emptied: Condvar::new(),
                stopping: AtomicBool::new(false),
            }),
            bind: SocketAddr::new(config.bind_address, config.port),
            listening: ListenState::new(id, "http server"),
            shut_down: AtomicBool::new(false),
        });
        registry::add_server(&server);
        Ok(server)
    }

    /// Adds a WebSocket service at `path`; `EEXIST` when the path has one.
    pub fn add_service(
        &self,
        path: &str,
        settings: ConnectionSettings,
        delegate: Arc<Delegate>,
    ) -> Result<()> {
        if self.shut_down.load(Ordering::Acquire) {
            return Err(Error::invalid("server was destroyed"));
        }
        let service = WsService::new(path, settings, delegate)?;
        let mut services = self.shared.services.write();
        if services.iter().any(|s| s.path == service.path) {
            return Err(Error::new(
                libc::EEXIST,
                format!("path {path} has a service already"),
            ));
        }
        services.push(Arc::new(service));
        Ok(())
    }

    pub fn start(self: &Arc<Self>) -> Result<()> {
        if self.shut_down.load(Ordering::Acquire) {
            return Err(Error::invalid("server was destroyed"));
        }
        // Undone only when the start may go on (see `ListenState::start`).
        let reopen = || {
            self.shared.stopping.store(false, Ordering::SeqCst);
            for service in self.shared.services() {
                service.common.group.reopen();
            }
        };
        let shared = self.shared.clone();
        self.listening.start(
            self.bind,
            Box::new(move |stream, peer, cx| shared.accept(stream, peer, cx)),
            reopen,
        )?;
        Ok(())
    }

    pub fn local_port(&self) -> Option<u16> {
        self.listening.local_port()
    }

    /// Stops listening, drops the HTTP connections and starts closing the WebSocket ones with
    /// 1001; returns at once.
    pub fn begin_stop(&self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        self.listening.stop(!on_loop_thread());
        let live: Vec<(u64, Arc<LoopShared>)> = self
            .shared
            .live
            .lock()
            .iter()
            .map(|(id, l)| (*id, l.clone()))
            .collect();
        for (id, event_loop) in live {
            event_loop.submit(move |tasks| {
                tasks.with::<HttpConnection>(id, |connection, cx| connection.close_now(cx))
            });
        }
        let services = self.shared.services();
        for service in services {
            service.common.group.close_all(1001, "server stopping");
        }
    }

    /// Stops as [`HttpServer::begin_stop`], then (outside callbacks) waits until the HTTP
    /// connections are gone and every WebSocket connection's onClose has run.
    pub fn stop(&self) -> Result<()> {
        self.begin_stop();
        if !on_loop_thread() {
            let deadline = Instant::now() + self.close_timeout() + Duration::from_secs(1);
            if !self.wait_empty(deadline) {
                log!(
                    Warn,
                    "http server {}: some connections did not finish closing in time",
                    self.id
                );
            }
        }
        Ok(())
    }

    /// Stop, then switch every delegate off for good.
    pub fn shutdown(&self) -> Result<()> {
        // Listening ends for good first: a start made while the stop waits for the connections
        // to close (from a callback, or another thread) fails, one made just before is undone.
        self.shut_down.store(true, Ordering::Release);
        self.listening.shut_down(!on_loop_thread());
        self.stop()?;
        self.deactivate();
        Ok(())
    }

    fn close_timeout(&self) -> Duration {
        let services = self.shared.services();
        services
            .iter()
            .map(|s| s.common.settings.limits.close_timeout)
            .max()
            .unwrap_or_default()
    }

    fn wait_empty(&self, deadline: Instant) -> bool {
        {
            let drop_deadline = deadline.min(Instant::now() + DROP_WAIT);
            let mut live = self.shared.live.lock();
            while !live.is_empty() {
                if self
                    .shared
                    .emptied
                    .wait_until(&mut live, drop_deadline)
                    .timed_out()
                {
                    break;
                }
            }
        }
        let services = self.shared.services();
        services.iter().all(|s| s.common.group.wait_empty(deadline))
            && self.shared.live.lock().is_empty()
    }

    fn deactivate(&self) {
        self.shut_down.store(true, Ordering::Release);
        self.listening.shut_down(false);
        if let Some(upstream) = &self.shared.upstream {
            upstream.deactivate();
        }
        // Without the services' lock: deactivating waits for running callbacks, which may
        // themselves add a service.
        let services = self.shared.services();
        for service in services {
            service.common.delegate.deactivate();
        }
    }
}

impl Stoppable for HttpServer {
    fn begin_stop(&self) {
        HttpServer::begin_stop(self);
    }

    fn wait_empty(&self, deadline: Instant) -> bool {
        HttpServer::wait_empty(self, deadline)
    }

    fn close_timeout(&self) -> Duration {
        HttpServer::close_timeout(self)
    }

    fn deactivate(&self) {
        HttpServer::deactivate(self);
    }
}
