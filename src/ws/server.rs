//! A WebSocket server: a listening socket on one event loop (a [`Listener`] task), its
//! connections spread over all loops, and one delegate for all of them.

use super::connection::Connection;
use super::delegate::Delegate;
use super::group::ConnectionGroup;
use super::session::Session;
use crate::config::{ConnectionSettings, ServerConfig};
use crate::error::{Error, Result};
use crate::log::log;
use crate::protocol::Role;
use crate::runtime::{self, Context, Flow, LoopShared, Readiness, Runtime, Task, on_loop_thread};
use crate::transport::Transport;
use mio::net::TcpListener;
use mio::{Interest, Token};
use parking_lot::Mutex;
use std::any::Any;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::mpsc::sync_channel;
use std::time::{Duration, Instant};

enum ServerState {
    Created,
    Running {
        event_loop: Arc<LoopShared>,
        port: u16,
    },
    Stopped,
    ShutDown,
}

pub struct Server {
    pub id: u64,
    config: ServerConfig,
    /// The TLS configuration of a wss server, built (and its files checked) at creation.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    pub settings: Arc<ConnectionSettings>,
    pub delegate: Arc<Delegate>,
    pub group: Arc<ConnectionGroup>,
    state: Mutex<ServerState>,
}

/// Longest wait for an event loop to confirm it stopped listening.
const UNLISTEN_WAIT: Duration = Duration::from_secs(5);

impl Server {
    pub fn create(config: ServerConfig, delegate: Arc<Delegate>) -> Result<Arc<Server>> {
        let runtime = runtime::current()?;
        let tls = config
            .tls
            .as_ref()
            .map(crate::transport::tls::server_config)
            .transpose()?;
        let server = Arc::new(Server {
            id: super::connection::next_id(),
            tls,
            settings: Arc::new(config.connection.clone()),
            config,
            delegate,
            group: Arc::new(ConnectionGroup::default()),
            state: Mutex::new(ServerState::Created),
        });
        super::registry::add_server(&server);
        let _ = runtime;
        Ok(server)
    }

    pub fn start(self: &Arc<Self>) -> Result<()> {
        let runtime = runtime::current()?;
        let mut state = self.state.lock();
        match *state {
            ServerState::Running { .. } => {
                return Err(Error::new(libc::EALREADY, "server is already running"));
            }
            ServerState::ShutDown => return Err(Error::invalid("server was destroyed")),
            ServerState::Created | ServerState::Stopped => {}
        }
        let address = SocketAddr::new(self.config.bind_address, self.config.port);
        let listener = std::net::TcpListener::bind(address)
            .map_err(|e| Error::io(&format!("cannot listen on {address}"), &e))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| Error::io("cannot make the listening socket non-blocking", &e))?;
        let port = listener
            .local_addr()
            .map(|a| a.port())
            .unwrap_or(self.config.port);
        let event_loop = runtime.pick_loop();
        let listener = Listener {
            server: self.clone(),
            socket: TcpListener::from_std(listener),
            runtime: runtime.clone(),
        };
        let id = self.id;
        // Queued under the lock (a stop cannot overtake it), woken after it (waking may log).
        let refused = event_loop.enqueue(move |tasks| tasks.adopt(id, Box::new(listener)));
        *state = ServerState::Running {
            event_loop: event_loop.clone(),
            port,
        };
        // Logged (and a refused command dropped) after the lock is released: a log hook may
        // call into the library.
        drop(state);
        drop(refused);
        event_loop.wake();
        log!(
            Info,
            "server {} listening on {}",
            self.id,
            SocketAddr::new(self.config.bind_address, port)
        );
        Ok(())
    }

    pub fn local_port(&self) -> Option<u16> {
        match *self.state.lock() {
            ServerState::Running { port, .. } => Some(port),
            _ => None,
        }
    }

    /// Stops listening and starts closing every connection with 1001; returns at once.
    pub fn begin_stop(&self) {
        // Waits for the listener to go (never called on a loop thread): a connection accepted
        // meanwhile would escape the close below.
        self.stop_listening(!on_loop_thread());
        self.group.close_all(1001, "server stopping");
    }

    /// Stops listening and closes every connection with 1001, waiting (outside callbacks)
    /// until their onClose callbacks have run.
    pub fn stop(&self) -> Result<()> {
        self.stop_listening(!on_loop_thread());
        self.group.close_all(1001, "server stopping");
        if !on_loop_thread() {
            let deadline =
                Instant::now() + self.settings.limits.close_timeout + Duration::from_secs(1);
            if !self.group.wait_empty(deadline) {
                log!(
                    Warn,
                    "server {}: some connections did not finish closing in time",
                    self.id
                );
            }
        }
        Ok(())
    }

    fn stop_listening(&self, wait: bool) {
        let mut state = self.state.lock();
        let ServerState::Running { event_loop, .. } =
            std::mem::replace(&mut *state, ServerState::Stopped)
        else {
            return;
        };
        drop(state);
        let id = self.id;
        if wait {
            let (done, confirmed) = sync_channel(1);
            event_loop.submit(move |tasks| {
                tasks.remove(id);
                let _ = done.send(());
            });
            if confirmed.recv_timeout(UNLISTEN_WAIT).is_err() {
                log!(
                    Warn,
                    "server {}: event loop did not confirm it stopped listening",
                    self.id
                );
            }
        } else {
            event_loop.submit(move |tasks| {
                tasks.remove(id);
            });
        }
    }

    /// Stop, then switch the delegate off for good.
    pub fn shutdown(&self) -> Result<()> {
        self.stop()?;
        self.deactivate();
        Ok(())
    }

    pub fn deactivate(&self) {
        *self.state.lock() = ServerState::ShutDown;
        self.delegate.deactivate();
    }
}

/// A server's listening socket, as a task of one event loop: accepts connections and places
/// each on a loop, round-robin.
struct Listener {
    server: Arc<Server>,
    socket: TcpListener,
    runtime: Arc<Runtime>,
}

impl Listener {
    fn accept_all(&mut self, cx: &mut Context) {
        loop {
            let (stream, peer) = match self.socket.accept() {
                Ok(accepted) => accepted,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // Out of descriptors or memory: keep the backlog for later rather than spin.
                    log!(Warn, "server {}: accept failed: {e}", self.server.id);
                    return;
                }
            };
            let transport = match Transport::accepted(stream, self.server.tls.as_ref()) {
                Ok(transport) => transport,
                Err(err) => {
                    log!(
                        Warn,
                        "server {}: connection from {peer} dropped: {err}",
                        self.server.id
                    );
                    continue;
                }
            };
            let target = self.runtime.pick_loop();
            let connection = Connection::new(
                Role::Server,
                self.server.settings.clone(),
                self.server.delegate.clone(),
                target.clone(),
                Some(transport),
            );
            connection.set_peer_address(peer);
            self.server.group.add(&connection);
            let id = connection.id;
            let session = Session::accepted(connection, self.server.group.clone());
            if target.index == cx.event_loop.index {
                // This loop runs it after the current turn's events (no wake needed).
                drop(target.enqueue(move |tasks| tasks.adopt(id, session)));
            } else {
                target.submit(move |tasks| tasks.adopt(id, session));
            }
        }
    }
}

impl Task for Listener {
    fn start(&mut self, cx: &mut Context) -> Flow {
        let token = Token(self.server.id as usize);
        match cx
            .registry
            .register(&mut self.socket, token, Interest::READABLE)
        {
            Ok(()) => Flow::Continue,
            Err(err) => {
                log!(
                    Error,
                    "server {}: cannot watch the listening socket: {err}",
                    self.server.id
                );
                Flow::Finished
            }
        }
    }

    fn ready(&mut self, cx: &mut Context, _readiness: Readiness) -> Flow {
        self.accept_all(cx);
        Flow::Continue
    }

    fn timeout(&mut self, _cx: &mut Context, _now: Instant) -> Flow {
        Flow::Continue
    }

    fn deadline(&self) -> Option<Instant> {
        None
    }

    fn panicked(&mut self, _cx: &mut Context) -> Flow {
        // A listener has no state to distrust: it goes on accepting.
        Flow::Continue
    }

    fn shutdown(&mut self, cx: &mut Context) {
        let _ = cx.registry.deregister(&mut self.socket);
    }

    fn as_any(&mut self) -> &mut dyn Any {
        self
    }
}
