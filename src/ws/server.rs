//! A WebSocket server: a listening socket on one event loop (see `listener.rs`), its
//! connections spread over all loops, and one delegate for all of them.

use super::connection::{Commons, Connection};
use super::delegate::Delegate;
use super::listener::{ListenState, OnAccept};
use super::registry::Stoppable;
use super::session::Session;
use crate::config::ServerConfig;
use crate::error::Result;
use crate::log::log;
use crate::runtime::{self, Context, Runtime, on_loop_thread};
use crate::transport::{Transport, tls};
use mio::net::TcpStream;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct Server {
    pub id: u64,
    config: ServerConfig,
    /// The TLS configuration of a wss server, built (and its files checked) at creation.
    pub tls: Option<Arc<tls::ServerConfig>>,
    /// The settings, delegate and group every connection points to.
    pub common: Commons,
    listen: ListenState,
}

impl Server {
    pub fn create(config: ServerConfig, delegate: Arc<Delegate>) -> Result<Arc<Server>> {
        let runtime = runtime::current()?;
        let tls = config.tls.as_ref().map(tls::server_config).transpose()?;
        let id = super::connection::next_server_id();
        let common = Commons::server(config.connection.clone(), delegate);
        let server = Arc::new(Server {
            id,
            tls,
            config,
            common,
            listen: ListenState::new(id, "server"),
        });
        super::registry::add_server(&server);
        let _ = runtime;
        Ok(server)
    }

    pub fn start(self: &Arc<Self>) -> Result<()> {
        let runtime = runtime::current()?;
        let address = SocketAddr::new(self.config.bind_address, self.config.port);
        let server = self.clone();
        let on_accept: OnAccept = Box::new(move |stream, peer, cx| {
            server.accept(stream, peer, cx, &runtime);
        });
        // The group is reopened only when the start may go on: a server shut down (whose stop
        // may still be closing its connections) fails and leaves it closing.
        self.listen
            .start(address, on_accept, || self.common.group.reopen())?;
        Ok(())
    }

    /// A connection came in: a session waits for its upgrade request on a loop, round-robin.
    fn accept(&self, stream: TcpStream, peer: SocketAddr, cx: &mut Context, runtime: &Runtime) {
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
        let connection = Connection::new(self.common.on(&target), Some(transport));
        connection.set_peer_address(peer);
        self.common.group.join();
        let id = connection.id;
        cx.place(&target, id, Session::accepted(connection));
    }

    pub fn local_port(&self) -> Option<u16> {
        self.listen.local_port()
    }

    /// Stops listening and starts closing every connection with 1001; returns at once.
    pub fn begin_stop(&self) {
        // Waits for the listener to go (never called on a loop thread): a connection accepted
        // meanwhile would escape the close below.
        self.listen.stop(!on_loop_thread());
        self.common.group.close_all(1001, "server stopping");
    }

    /// Stops listening and closes every connection with 1001, waiting (outside callbacks)
    /// until their onClose callbacks have run.
    pub fn stop(&self) -> Result<()> {
        self.listen.stop(!on_loop_thread());
        self.common.group.close_all(1001, "server stopping");
        if !on_loop_thread() {
            let deadline =
                Instant::now() + self.common.settings.limits.close_timeout + Duration::from_secs(1);
            if !self.common.group.wait_empty(deadline) {
                log!(
                    Warn,
                    "server {}: some connections did not finish closing in time",
                    self.id
                );
            }
        }
        Ok(())
    }

    /// Stop, then switch the delegate off for good. Listening ends for good first: a start
    /// made while the stop waits for the connections to close (from one of their callbacks, or
    /// from another thread) fails, and one made just before is undone here.
    pub fn shutdown(&self) -> Result<()> {
        self.listen.shut_down(!on_loop_thread());
        self.stop()?;
        self.deactivate();
        Ok(())
    }

    pub fn deactivate(&self) {
        self.listen.shut_down(false);
        self.common.delegate.deactivate();
    }
}

impl Stoppable for Server {
    fn begin_stop(&self) {
        Server::begin_stop(self);
    }

    fn wait_empty(&self, deadline: Instant) -> bool {
        self.common.group.wait_empty(deadline)
    }

    fn close_timeout(&self) -> Duration {
        self.common.settings.limits.close_timeout
    }

    fn deactivate(&self) {
        Server::deactivate(self);
    }
}
