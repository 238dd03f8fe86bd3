//! A WebSocket server: a listening socket on one event loop (`listener.rs`), its
//! connections spread over all loops, and one delegate for all of them.

use super::connection::Connection;
use super::delegate::Delegate;
use super::group::ConnectionGroup;
use super::listener::Listening;
use super::registry::Stoppable;
use super::session::Session;
use crate::config::{ConnectionSettings, ServerConfig};
use crate::error::{Error, Result};
use crate::log::log;
use crate::protocol::Role;
use crate::runtime::{self, Context, Runtime, on_loop_thread};
use crate::transport::Transport;
use mio::net::TcpStream;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

pub struct Server {
    pub id: u64,
    config: ServerConfig,
    /// The TLS configuration of a wss server, built (and its files checked) at creation.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    pub settings: Arc<ConnectionSettings>,
    pub delegate: Arc<Delegate>,
    pub group: Arc<ConnectionGroup>,
    listening: Listening,
    /// Shut down for good: it cannot be started again.
    shut_down: AtomicBool,
}

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
            listening: Listening::default(),
            shut_down: AtomicBool::new(false),
        });
        super::registry::add(Arc::downgrade(&server) as _);
        let _ = runtime;
        Ok(server)
    }

    pub fn start(self: &Arc<Self>) -> Result<()> {
        if self.shut_down.load(Ordering::Acquire) {
            return Err(Error::invalid("server was destroyed"));
        }
        let address = SocketAddr::new(self.config.bind_address, self.config.port);
        let server = self.clone();
        let runtime = runtime::current()?;
        let port = self.listening.start(
            self.id,
            address,
            Box::new(move |stream, peer, cx| server.accept(&runtime, stream, peer, cx)),
        )?;
        log!(
            Info,
            "server {} listening on {}",
            self.id,
            SocketAddr::new(self.config.bind_address, port)
        );
        Ok(())
    }

    pub fn local_port(&self) -> Option<u16> {
        self.listening.port()
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
        self.listening.stop(self.id, wait);
    }

    /// Stop, then switch the delegate off for good.
    pub fn shutdown(&self) -> Result<()> {
        self.stop()?;
        self.deactivate();
        Ok(())
    }

    pub fn deactivate(&self) {
        self.shut_down.store(true, Ordering::Release);
        self.delegate.deactivate();
    }

    /// An accepted socket: a session on a loop, round-robin.
    fn accept(&self, runtime: &Runtime, stream: TcpStream, peer: SocketAddr, cx: &mut Context) {
        let transport = match Transport::accepted(stream, self.tls.as_ref()) {
            Ok(transport) => transport,
            Err(err) => {
                log!(
                    Warn,
                    "server {}: connection from {peer} dropped: {err}",
                    self.id
                );
                return;
            }
        };
        let target = runtime.pick_loop();
        let connection = Connection::new(
            Role::Server,
            self.settings.clone(),
            self.delegate.clone(),
            target.clone(),
            Some(transport),
        );
        connection.set_peer_address(peer);
        self.group.add(&connection);
        let id = connection.id;
        let session = Session::accepted(connection, self.group.clone());
        if target.index == cx.event_loop.index {
            // This loop runs it after the current turn's events (no wake needed).
            drop(target.enqueue(move |tasks| tasks.adopt(id, session)));
        } else {
            target.submit(move |tasks| tasks.adopt(id, session));
        }
    }
}

impl Stoppable for Server {
    fn begin_stop(&self) {
        Server::begin_stop(self);
    }

    fn wait_empty(&self, deadline: Instant) -> bool {
        self.group.wait_empty(deadline)
    }

    fn close_timeout(&self) -> Duration {
        self.settings.limits.close_timeout
    }

    fn deactivate(&self) {
        Server::deactivate(self);
    }
}
