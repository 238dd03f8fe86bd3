//! One event-loop thread: a mio poll over its listeners and connections, a command queue other
//! threads fill (with a waker), and deadlines. It sleeps until a socket is ready, a command
//! arrives or the nearest deadline passes: with nothing to do it makes no wake-ups at all.

use super::{ConnectionGroup, Runtime};
use crate::error::panic_text;
use crate::log::log;
use crate::transport::Transport;
use crate::ws::connection::{Connection, Role};
use crate::ws::server::Server;
use crate::ws::session::{Context, Outcome, Session};
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Registry, Token, Waker};
use parking_lot::Mutex;
use std::cell::Cell;
use std::collections::{BTreeSet, HashMap};
use std::io;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Weak};
use std::time::Instant;

const WAKER: Token = Token(usize::MAX);

/// The receive buffer every connection of a loop shares: the size of one read.
const RECEIVE_BUFFER: usize = 64 * 1024;

pub enum Command {
    Listen(Arc<Server>, TcpListener),
    Unlisten {
        server_id: u64,
        done: Option<SyncSender<()>>,
    },
    Adopt(Box<Session>),
    /// Our close frame went out: arm the close deadline.
    CloseStarted(u64),
    /// The application closed a connection still opening.
    Abandon(u64),
    /// The resolver's answer for a client connection: its host's addresses, or why there are
    /// none. Dropped if the connection is gone meanwhile.
    Resolved {
        id: u64,
        answer: Result<Vec<SocketAddr>, String>,
    },
    Shutdown,
}

/// The part of a loop other threads use.
pub struct LoopShared {
    pub index: usize,
    pub registry: Registry,
    waker: Waker,
    queue: Mutex<Queue>,
}

struct Queue {
    commands: Vec<Command>,
    /// The loop has ended: commands queued now are dropped at once (what they carry — a
    /// session, say — is released instead of waiting forever on a loop that will not run).
    closed: bool,
}

thread_local! {
    /// The index of the event loop running on this thread, if any.
    static CURRENT_LOOP: Cell<Option<usize>> = const { Cell::new(None) };
}

/// True on any event-loop thread (inside a callback): the caller must not block on a loop.
pub fn on_loop_thread() -> bool {
    CURRENT_LOOP.with(Cell::get).is_some()
}

impl LoopShared {
    fn is_current(&self) -> bool {
        CURRENT_LOOP.with(Cell::get) == Some(self.index)
    }

    /// Queues a command. From another thread the loop is woken; on the loop's own thread the
    /// command runs before the loop next sleeps.
    pub fn submit(&self, command: Command) {
        self.enqueue(command);
        self.wake();
    }

    /// Queues a command without waking the loop: for a caller holding a lock, who calls
    /// [`LoopShared::wake`] once it is released (waking may log, and a log hook may call into
    /// the library).
    pub fn enqueue(&self, command: Command) {
        let mut queue = self.queue.lock();
        if queue.closed {
            drop(queue);
            log!(
                Debug,
                "event loop {} has ended: command dropped",
                self.index
            );
            drop(command);
            return;
        }
        queue.commands.push(command);
    }

    /// Makes the loop run its queued commands soon.
    pub fn wake(&self) {
        if !self.is_current()
            && let Err(err) = self.waker.wake()
        {
            log!(Error, "cannot wake event loop {}: {err}", self.index);
        }
    }
}

struct Listener {
    server: Arc<Server>,
    socket: TcpListener,
}

pub struct EventLoop {
    shared: Arc<LoopShared>,
    runtime: Weak<Runtime>,
    poll: Poll,
    sessions: HashMap<u64, Box<Session>>,
    listeners: HashMap<u64, Listener>,
    deadlines: BTreeSet<(Instant, u64)>,
    receive_buffer: Vec<u8>,
}

impl EventLoop {
    pub fn new(index: usize) -> io::Result<EventLoop> {
        let poll = Poll::new()?;
        let waker = Waker::new(poll.registry(), WAKER)?;
        let shared = Arc::new(LoopShared {
            index,
            registry: poll.registry().try_clone()?,
            waker,
            queue: Mutex::new(Queue {
                commands: Vec::new(),
                closed: false,
            }),
        });
        Ok(EventLoop {
            shared,
            runtime: Weak::new(),
            poll,
            sessions: HashMap::new(),
            listeners: HashMap::new(),
            deadlines: BTreeSet::new(),
            receive_buffer: Vec::new(),
        })
    }

    pub fn shared(&self) -> Arc<LoopShared> {
        self.shared.clone()
    }

    pub fn run(mut self, runtime: Weak<Runtime>) {
        self.runtime = runtime;
        CURRENT_LOOP.with(|c| c.set(Some(self.shared.index)));
        self.receive_buffer = vec![0; RECEIVE_BUFFER];
        let mut events = Events::with_capacity(256);
        let mut running = true;
        while running {
            // The last line of defence: a panic outside any connection's handling (accepting,
            // a command) is logged and the loop goes on serving its other connections.
            match std::panic::catch_unwind(AssertUnwindSafe(|| self.turn(&mut events))) {
                Ok(go_on) => running = go_on,
                Err(panic) => {
                    log!(
                        Error,
                        "event loop {}: internal error: {}",
                        self.shared.index,
                        panic_text(&*panic)
                    );
                    self.restore_receive_buffer();
                }
            }
        }
        self.shutdown();
    }

    /// One wait for readiness, commands or a deadline, and the work it brings; false once the
    /// loop is to end.
    fn turn(&mut self, events: &mut Events) -> bool {
        let timeout = self
            .deadlines
            .first()
            .map(|(when, _)| when.saturating_duration_since(Instant::now()));
        if let Err(err) = self.poll.poll(events, timeout) {
            if err.kind() != io::ErrorKind::Interrupted {
                log!(
                    Error,
                    "event loop {}: poll failed: {err}",
                    self.shared.index
                );
            }
            return true;
        }
        for event in events.iter() {
            let id = event.token().0 as u64;
            if event.token() == WAKER {
                continue;
            }
            if self.listeners.contains_key(&id) {
                self.accept(id);
                continue;
            }
            let peer_closed = event.is_read_closed() || event.is_error();
            let (readable, writable) =
                (event.is_readable(), event.is_writable() || event.is_error());
            self.with_session(id, |session, ctx| {
                session.on_ready(ctx, readable, writable, peer_closed)
            });
        }
        self.expire_deadlines();
        self.run_commands()
    }

    /// A panic may have unwound while a session had the receive buffer taken out.
    fn restore_receive_buffer(&mut self) {
        if self.receive_buffer.len() != RECEIVE_BUFFER {
            self.receive_buffer = vec![0; RECEIVE_BUFFER];
        }
    }

    /// Runs `f` on a session, then keeps the deadline set in step and drops finished sessions.
    fn with_session(&mut self, id: u64, f: impl FnOnce(&mut Session, &mut Context) -> Outcome) {
        let Some(mut session) = self.sessions.remove(&id) else {
            return;
        };
        let before = session.deadline;
        let mut ctx = Context {
            registry: self.poll.registry(),
            receive_buffer: &mut self.receive_buffer,
        };
        // A panic while handling one connection fails that connection (1011) and nothing else:
        // the loop and its other connections go on.
        let outcome = match std::panic::catch_unwind(AssertUnwindSafe(|| f(&mut session, &mut ctx)))
        {
            Ok(outcome) => outcome,
            Err(panic) => {
                log!(
                    Error,
                    "connection {id}: internal error: {}; closing it with 1011",
                    panic_text(&*panic)
                );
                self.restore_receive_buffer();
                std::panic::catch_unwind(AssertUnwindSafe(|| session.on_internal_error()))
                    .unwrap_or(Outcome::Finished)
            }
        };
        if let Some(when) = before {
            self.deadlines.remove(&(when, id));
        }
        if outcome == Outcome::Finished {
            return;
        }
        if let Some(when) = session.deadline {
            self.deadlines.insert((when, id));
        }
        self.sessions.insert(id, session);
    }

    fn expire_deadlines(&mut self) {
        let now = Instant::now();
        while let Some(&(when, id)) = self.deadlines.first() {
            if when > now {
                break;
            }
            self.deadlines.pop_first();
            if let Some(session) = self.sessions.get_mut(&id) {
                session.deadline = None;
            }
            self.with_session(id, |session, _| session.on_timeout());
        }
    }

    /// Runs queued commands (including ones queued by callbacks meanwhile); false on shutdown.
    fn run_commands(&mut self) -> bool {
        loop {
            let commands = std::mem::take(&mut self.shared.queue.lock().commands);
            if commands.is_empty() {
                return true;
            }
            for command in commands {
                match command {
                    Command::Listen(server, mut socket) => {
                        let id = server.id;
                        match self.poll.registry().register(
                            &mut socket,
                            Token(id as usize),
                            Interest::READABLE,
                        ) {
                            Ok(()) => {
                                self.listeners.insert(id, Listener { server, socket });
                            }
                            Err(err) => log!(
                                Error,
                                "server {id}: cannot watch the listening socket: {err}"
                            ),
                        }
                    }
                    Command::Unlisten { server_id, done } => {
                        if let Some(mut listener) = self.listeners.remove(&server_id) {
                            let _ = self.poll.registry().deregister(&mut listener.socket);
                        }
                        if let Some(done) = done {
                            let _ = done.send(());
                        }
                    }
                    Command::Adopt(session) => self.adopt(session),
                    Command::CloseStarted(id) => self.with_session(id, |session, _| {
                        session.on_close_started();
                        Outcome::Continue
                    }),
                    Command::Abandon(id) => {
                        self.with_session(id, |session, _| session.cancel_opening())
                    }
                    Command::Resolved { id, answer } => {
                        self.with_session(id, |session, ctx| session.on_resolved(ctx, answer))
                    }
                    Command::Shutdown => return false,
                }
            }
        }
    }

    fn adopt(&mut self, session: Box<Session>) {
        let id = session.id();
        self.sessions.insert(id, session);
        self.with_session(id, |session, ctx| session.start(ctx));
    }

    fn accept(&mut self, listener_id: u64) {
        let Some(runtime) = self.runtime.upgrade() else {
            return;
        };
        loop {
            let Some(listener) = self.listeners.get(&listener_id) else {
                return;
            };
            let (stream, peer) = match listener.socket.accept() {
                Ok(accepted) => accepted,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // Out of descriptors or memory: keep the backlog for later rather than spin.
                    log!(Warn, "server {listener_id}: accept failed: {e}");
                    return;
                }
            };
            let server = listener.server.clone();
            let transport = match Transport::accepted(stream, server.tls.as_ref()) {
                Ok(transport) => transport,
                Err(err) => {
                    log!(
                        Warn,
                        "server {listener_id}: connection from {peer} dropped: {err}"
                    );
                    continue;
                }
            };
            let target = runtime.pick_loop();
            let connection = Connection::new(
                Role::Server,
                server.settings.clone(),
                server.delegate.clone(),
                target.clone(),
                Some(transport),
            );
            connection.set_peer_address(peer);
            let group: Arc<ConnectionGroup> = server.group.clone();
            group.add(&connection);
            let session = Session::accepted(connection, group);
            if target.index == self.shared.index {
                self.adopt(session);
            } else {
                target.submit(Command::Adopt(session));
            }
        }
    }

    /// Drops what is left when the runtime stops: open connections get onClose 1006.
    fn shutdown(&mut self) {
        let ids: Vec<u64> = self.sessions.keys().copied().collect();
        for id in ids {
            self.with_session(id, |session, _| session.abandon());
        }
        for (_, mut listener) in self.listeners.drain() {
            let _ = self.poll.registry().deregister(&mut listener.socket);
        }
        self.deadlines.clear();
        // Whatever is still queued, or comes later, is dropped (outside the lock: dropping a
        // session may release a delegate, which runs application code).
        let left = {
            let mut queue = self.shared.queue.lock();
            queue.closed = true;
            std::mem::take(&mut queue.commands)
        };
        drop(left);
        CURRENT_LOOP.with(|c| c.set(None));
    }
}
