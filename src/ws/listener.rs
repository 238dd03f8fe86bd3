//! A server's listening socket: binding it, running it as a task of one event loop (a
//! [`Listener`]), and taking it down again. Every kind of server uses this one accept loop and
//! says only what becomes of each accepted socket (its [`OnAccept`]): a WebSocket server starts
//! a session on it, an HTTP server an HTTP connection.

use crate::error::{Error, Result};
use crate::log::log;
use crate::runtime::{self, Context, Flow, LoopShared, Readiness, Task, oneshot};
use mio::Interest;
use mio::net::{TcpListener, TcpStream};
use parking_lot::Mutex;
use std::any::Any;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// What a server does with each accepted socket, on the listener's loop: typically it builds a
/// task for the socket and places it on a loop ([`Context::place`]). The socket is non-blocking
/// and has `TCP_NODELAY` set (see [`Listener::accept_all`]).
pub type OnAccept = Box<dyn FnMut(TcpStream, SocketAddr, &mut Context) + Send>;

/// Longest wait for an event loop to confirm it stopped listening.
const UNLISTEN_WAIT: Duration = Duration::from_secs(5);

enum State {
    /// Not listening: never started, or stopped (it may start again).
    Idle,
    Running {
        event_loop: Arc<LoopShared>,
        /// The listener's task id on that loop.
        task: u64,
        port: u16,
    },
    /// Shut down for good: it never listens again.
    ShutDown,
}

/// Whether and where a server listens. `id` is the server's, which the logs name.
pub struct ListenState {
    id: u64,
    /// How the logs name the server ("server", "http server"), followed by its id.
    kind: &'static str,
    state: Mutex<State>,
}

impl ListenState {
    pub fn new(id: u64, kind: &'static str) -> ListenState {
        ListenState {
            id,
            kind,
            state: Mutex::new(State::Idle),
        }
    }

    /// Binds `address` and starts accepting on a loop of the runtime; returns the port (the
    /// one picked when `address` has port 0). Fails with `EALREADY` while listening, `EINVAL`
    /// once shut down, `EPERM` without a runtime, or the bind's errno (`EADDRINUSE`, …).
    /// `reopen` undoes the server's last stop (its connections' groups may be joined again): it
    /// runs under the state's lock once the state allows a start, so a shut-down, which ends
    /// the state first and then closes the connections, cannot come between the check and it.
    pub fn start(
        &self,
        address: SocketAddr,
        on_accept: OnAccept,
        reopen: impl FnOnce(),
    ) -> Result<u16> {
        let runtime = runtime::current()?;
        let mut state = self.state.lock();
        match *state {
            State::Running { .. } => {
                return Err(Error::new(libc::EALREADY, "server is already running"));
            }
            State::ShutDown => return Err(Error::invalid("server was destroyed")),
            State::Idle => {}
        }
        reopen();
        let listener = std::net::TcpListener::bind(address)
            .map_err(|e| Error::io(&format!("cannot listen on {address}"), &e))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| Error::io("cannot make the listening socket non-blocking", &e))?;
        let nodelay = set_nodelay(&listener);
        if !set_defer_accept(&listener) {
            log!(
                Debug,
                "{} {}: TCP_DEFER_ACCEPT not set: {}",
                self.kind,
                self.id,
                io::Error::last_os_error()
            );
        }
        let port = listener
            .local_addr()
            .map(|a| a.port())
            .unwrap_or(address.port());
        let event_loop = runtime.pick_loop();
        let task = event_loop.reserve();
        let listener = Listener {
            id: task,
            server: self.id,
            kind: self.kind,
            socket: TcpListener::from_std(listener),
            on_accept,
            nodelay_inherited: if nodelay { None } else { Some(false) },
        };
        // Queued under the lock (a stop cannot overtake it), woken after it (waking may log).
        let refused = event_loop.enqueue(move |tasks| tasks.adopt(task, Box::new(listener)));
        *state = State::Running {
            event_loop: event_loop.clone(),
            task,
            port,
        };
        // Logged (and a refused command dropped) after the lock is released: a log hook may
        // call into the library.
        drop(state);
        drop(refused);
        event_loop.wake();
        log!(
            Info,
            "{} {} listening on {}",
            self.kind,
            self.id,
            SocketAddr::new(address.ip(), port)
        );
        Ok(port)
    }

    /// The port while listening.
    pub fn local_port(&self) -> Option<u16> {
        match *self.state.lock() {
            State::Running { port, .. } => Some(port),
            _ => None,
        }
    }

    /// Stops listening (it may start again). With `wait` (never on a loop thread) it returns
    /// once the loop has dropped the listener, so that no connection is accepted afterwards.
    pub fn stop(&self, wait: bool) {
        self.end(State::Idle, wait);
    }

    /// For good: `start` fails from now on. A listener still running (one a `start` made after
    /// the server's last stop, from a callback or another thread) is stopped as by `stop`.
    pub fn shut_down(&self, wait: bool) {
        self.end(State::ShutDown, wait);
    }

    /// Leaves the state `next` (`Idle` after a stop; `ShutDown` stays) and stops the listener
    /// that was running, if any.
    fn end(&self, next: State, wait: bool) {
        let mut state = self.state.lock();
        let next = match *state {
            State::ShutDown => State::ShutDown,
            _ => next,
        };
        let State::Running {
            event_loop, task, ..
        } = std::mem::replace(&mut *state, next)
        else {
            return;
        };
        drop(state);
        if wait {
            let (done, confirmed) = oneshot::oneshot();
            event_loop.submit(move |tasks| {
                tasks.remove(task);
                done.send(());
            });
            if confirmed.wait(UNLISTEN_WAIT).is_none() {
                log!(
                    Warn,
                    "{} {}: event loop did not confirm it stopped listening",
                    self.kind,
                    self.id
                );
            }
        } else {
            event_loop.submit(move |tasks| {
                tasks.remove(task);
            });
        }
    }
}

/// A listening socket, as a task of one event loop: accepts connections and hands each to the
/// server's [`OnAccept`].
struct Listener {
    /// Its task id.
    id: u64,
    /// The server's id, for the logs.
    server: u64,
    kind: &'static str,
    socket: TcpListener,
    on_accept: OnAccept,
    /// Whether accepted sockets come with `TCP_NODELAY` from the listening socket (Linux
    /// copies it to them): None until the first accepted socket has been asked.
    nodelay_inherited: Option<bool>,
}

/// How long the kernel may hold a new connection that has sent nothing yet before it hands it
/// to accept anyway (`TCP_DEFER_ACCEPT`, in seconds; the kernel rounds it up to its SYN-ACK
/// retransmission times, the first of them at 1 s).
const DEFER_ACCEPT_SECS: i32 = 1;

/// `TCP_NODELAY` on the listening socket, for the sockets it accepts to inherit; false when it
/// could not be set.
fn set_nodelay(listener: &std::net::TcpListener) -> bool {
    set_tcp_option(listener, libc::TCP_NODELAY, 1)
}

/// `TCP_DEFER_ACCEPT` on the listening socket: a connection becomes acceptable once its first
/// bytes have arrived — a WebSocket client's upgrade request, an HTTP request; both protocols
/// have the client speak first. The loop then wakes once for a new connection, its accept and
/// its request together, instead of once for each: server CPU per connection cycle 39.6 ->
/// 32 us (docs/BENCHMARKS.md). A connection that sends nothing costs the process nothing until
/// the kernel hands it over after [`DEFER_ACCEPT_SECS`]; the handshake timeout starts then.
/// False when it could not be set (the server works as well without it).
fn set_defer_accept(listener: &std::net::TcpListener) -> bool {
    set_tcp_option(listener, libc::TCP_DEFER_ACCEPT, DEFER_ACCEPT_SECS)
}

/// Sets the `IPPROTO_TCP` option `option` of `listener` to `value`; false when it failed.
fn set_tcp_option(listener: &std::net::TcpListener, option: i32, value: i32) -> bool {
    crate::transport::set_int_option(listener, libc::IPPROTO_TCP, option, value)
}

impl Listener {
    /// Accepts every waiting connection. Each gets `TCP_NODELAY` (small frames go out at once,
    /// not held back by Nagle's algorithm): inherited from the listening socket where the
    /// system does that — checked on the first accepted socket —, else set on each one (a
    /// system call per connection saved where it is inherited).
    fn accept_all(&mut self, cx: &mut Context) {
        loop {
            match self.socket.accept() {
                Ok((stream, peer)) => {
                    if self.nodelay_inherited != Some(true) {
                        let inherited =
                            self.nodelay_inherited.is_none() && stream.nodelay().unwrap_or(false);
                        if !inherited {
                            let _ = stream.set_nodelay(true);
                        }
                        self.nodelay_inherited = Some(inherited);
                    }
                    (self.on_accept)(stream, peer, cx)
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // Out of descriptors or memory: keep the backlog for later rather than spin.
                    log!(Warn, "{} {}: accept failed: {e}", self.kind, self.server);
                    return;
                }
            }
        }
    }
}

impl Task for Listener {
    fn start(&mut self, cx: &mut Context) -> Flow {
        let token = runtime::token(self.id);
        match cx
            .registry
            .register(&mut self.socket, token, Interest::READABLE)
        {
            Ok(()) => Flow::Continue,
            Err(err) => {
                log!(
                    Error,
                    "{} {}: cannot watch the listening socket: {err}",
                    self.kind,
                    self.server
                );
                Flow::Finished
            }
        }
    }

    fn ready(&mut self, cx: &mut Context, _readiness: Readiness) -> Flow {
        self.accept_all(cx);
        Flow::Continue
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

    fn id(&self) -> u64 {
        self.id
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::{Receiver, channel};

    /// Runs `test` with a runtime and a listener on 127.0.0.1 whose accepted sockets go through
    /// `look` (what it returns arrives on the receiver), given the listener's port.
    fn with_listener<T: Send + 'static>(
        look: impl Fn(&TcpStream, SocketAddr) -> T + Send + 'static,
        test: impl FnOnce(u16, Receiver<T>),
    ) {
        let _serial = super::super::tests::RUNTIME.lock();
        runtime::initialize(1, 64 * 1024, None).unwrap();
        let (seen, accepted) = channel();
        let listen = ListenState::new(super::super::connection::next_server_id(), "test server");
        let on_accept: OnAccept = Box::new(move |stream, peer, _| {
            let _ = seen.send(look(&stream, peer));
        });
        let port = listen
            .start("127.0.0.1:0".parse().unwrap(), on_accept, || {})
            .unwrap();
        test(port, accepted);
        listen.stop(true);
        super::super::registry::finalize().unwrap();
    }

    /// Every accepted socket has `TCP_NODELAY`: the first one (which tells whether the listening
    /// socket passed it on) and those after it.
    #[test]
    fn accepted_sockets_have_nodelay() {
        with_listener(
            |stream, _| stream.nodelay().ok(),
            |port, nodelay| {
                // Each sends a byte: the listener takes a connection once its first bytes
                // arrived.
                let clients: Vec<std::net::TcpStream> = (0..3)
                    .map(|_| {
                        let mut client = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
                        std::io::Write::write_all(&mut client, b"G").unwrap();
                        client
                    })
                    .collect();
                for client in 0..clients.len() {
                    let answer = nodelay.recv_timeout(Duration::from_secs(10)).unwrap();
                    assert_eq!(answer, Some(true), "accepted socket {client}");
                }
            },
        );
    }

    /// A connection is handed over once its first bytes have arrived (`TCP_DEFER_ACCEPT`): one
    /// that connected earlier and sent nothing comes after one that sent its request.
    #[test]
    fn a_connection_is_accepted_once_it_has_spoken() {
        with_listener(
            |_, peer| peer,
            |port, accepted| {
                let silent = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
                let mut speaking = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
                std::io::Write::write_all(&mut speaking, b"GET / HTTP/1.1\r\n").unwrap();
                let first = accepted.recv_timeout(Duration::from_secs(10)).unwrap();
                assert_eq!(
                    first,
                    speaking.local_addr().unwrap(),
                    "the first accepted connection"
                );
                // The silent one is handed over as well, once the kernel stops holding it.
                let second = accepted.recv_timeout(Duration::from_secs(30)).unwrap();
                assert_eq!(second, silent.local_addr().unwrap());
            },
        );
    }
}
