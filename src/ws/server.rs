//! A WebSocket server: a listening socket on one event loop, its connections spread over all
//! loops, and one delegate for all of them.

use super::delegate::Delegate;
use crate::config::{ConnectionSettings, ServerConfig};
use crate::error::{Error, Result};
use crate::log::log;
use crate::runtime::{self, Command, ConnectionGroup, LoopShared, Runtime, on_loop_thread};
use parking_lot::Mutex;
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
        runtime.register_server(&server);
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
        // Queued under the lock (a stop cannot overtake it), woken after it (waking may log).
        event_loop.enqueue(Command::Listen(
            self.clone(),
            mio::net::TcpListener::from_std(listener),
        ));
        *state = ServerState::Running {
            event_loop: event_loop.clone(),
            port,
        };
        // Logged after the lock is released: a log hook may call into the library.
        drop(state);
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
    pub fn begin_stop(&self, _runtime: &Runtime) {
        self.stop_listening(false);
        self.group.close_all(1001, "server stopping");
    }

    /// Stops listening and closes every connection with 1001, waiting (outside callbacks)
    /// until their onClose callbacks have run.
    pub fn stop(&self) -> Result<()> {
        self.stop_listening(!on_loop_thread());
        self.group.close_all(1001, "server stopping");
        if !on_loop_thread() {
            let deadline = Instant::now() + self.settings.close_timeout + Duration::from_secs(1);
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
        if wait {
            let (done, confirmed) = sync_channel(1);
            event_loop.submit(Command::Unlisten {
                server_id: self.id,
                done: Some(done),
            });
            if confirmed.recv_timeout(UNLISTEN_WAIT).is_err() {
                log!(
                    Warn,
                    "server {}: event loop did not confirm it stopped listening",
                    self.id
                );
            }
        } else {
            event_loop.submit(Command::Unlisten {
                server_id: self.id,
                done: None,
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
