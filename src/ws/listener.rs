//! A listening socket as a task of one event loop, and the start/stop of it that servers share:
//! what a server does with each accepted socket is its own (`on_accept`), so a WebSocket server
//! and an HTTP server use the same accept loop.

use crate::error::{Error, Result};
use crate::log::log;
use crate::runtime::{self, Context, Flow, LoopShared, Readiness, Task};
use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Token};
use parking_lot::Mutex;
use std::any::Any;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::mpsc::sync_channel;
use std::time::{Duration, Instant};

/// What a server does with an accepted socket, on the listening loop's thread.
pub type OnAccept = Box<dyn FnMut(TcpStream, SocketAddr, &mut Context) + Send>;

/// Longest wait for an event loop to confirm it stopped listening.
const UNLISTEN_WAIT: Duration = Duration::from_secs(5);

/// Whether a server listens, and where.
#[derive(Default)]
pub struct Listening {
    state: Mutex<Option<Running>>,
}

struct Running {
    event_loop: Arc<LoopShared>,
    port: u16,
}

impl Listening {
    /// Binds `address` (on the calling thread, so bind errors come back here) and starts
    /// accepting on an event loop under the poll token `id`. Returns the bound port.
    pub fn start(&self, id: u64, address: SocketAddr, on_accept: OnAccept) -> Result<u16> {
        let runtime = runtime::current()?;
        let mut state = self.state.lock();
        if state.is_some() {
            return Err(Error::new(libc::EALREADY, "server is already running"));
        }
        let socket = std::net::TcpListener::bind(address)
            .map_err(|e| Error::io(&format!("cannot listen on {address}"), &e))?;
        socket
            .set_nonblocking(true)
            .map_err(|e| Error::io("cannot make the listening socket non-blocking", &e))?;
        let port = socket
            .local_addr()
            .map(|a| a.port())
            .unwrap_or(address.port());
        let event_loop = runtime.pick_loop();
        let listener = Listener {
            id,
            socket: TcpListener::from_std(socket),
            on_accept,
        };
        // Queued under the lock (a stop cannot overtake it), woken after it (waking may log).
        let refused = event_loop.enqueue(move |tasks| tasks.adopt(id, Box::new(listener)));
        *state = Some(Running {
            event_loop: event_loop.clone(),
            port,
        });
        // A refused command is dropped after the lock is released: what it carries (a server
        // reference) may run application code when it goes.
        drop(state);
        drop(refused);
        event_loop.wake();
        Ok(port)
    }

    pub fn port(&self) -> Option<u16> {
        self.state.lock().as_ref().map(|running| running.port)
    }

    /// Stops accepting (a no-op when not listening). With `wait` (never on a loop thread), it
    /// returns once the loop has dropped the listening socket, so that no connection accepted
    /// meanwhile escapes a close that follows.
    pub fn stop(&self, id: u64, wait: bool) {
        let Some(running) = self.state.lock().take() else {
            return;
        };
        if !wait {
            running
                .event_loop
                .submit(move |tasks| drop(tasks.remove(id)));
            return;
        }
        let (done, confirmed) = sync_channel(1);
        running.event_loop.submit(move |tasks| {
            drop(tasks.remove(id));
            let _ = done.send(());
        });
        if confirmed.recv_timeout(UNLISTEN_WAIT).is_err() {
            log!(
                Warn,
                "server {id}: event loop did not confirm it stopped listening"
            );
        }
    }
}

/// A listening socket on one event loop: hands each accepted socket to its server.
struct Listener {
    id: u64,
    socket: TcpListener,
    on_accept: OnAccept,
}

impl Listener {
    fn accept_all(&mut self, cx: &mut Context) {
        loop {
            match self.socket.accept() {
                Ok((stream, peer)) => (self.on_accept)(stream, peer, cx),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // Out of descriptors or memory: keep the backlog for later rather than spin.
                    log!(Warn, "server {}: accept failed: {e}", self.id);
                    return;
                }
            }
        }
    }
}

impl Task for Listener {
    fn start(&mut self, cx: &mut Context) -> Flow {
        let token = Token(self.id as usize);
        match cx
            .registry
            .register(&mut self.socket, token, Interest::READABLE)
        {
            Ok(()) => Flow::Continue,
            Err(err) => {
                log!(
                    Error,
                    "server {}: cannot watch the listening socket: {err}",
                    self.id
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
