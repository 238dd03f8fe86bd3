//! One event-loop thread: a mio poll over the sockets of its tasks, a queue of commands other
//! threads fill (with a waker), and the tasks' deadlines. It sleeps until a socket is ready, a
//! command arrives or the nearest deadline passes: with nothing to do it makes no wake-ups.
//!
//! The loop knows nothing of what its tasks are (listeners, connections): a task is anything
//! that implements [`Task`], and a command is a closure run on the loop's thread. Tasks live in
//! the loop's slab and are named by ids the loop hands out (`slab.rs`).

use super::read_share::ReadLater;
use super::slab::{Ids, Slab, slot_of};
use super::wait::Events;
use crate::error::panic_text;
use crate::log::log;
use mio::{Poll, Registry, Token, Waker};
use parking_lot::Mutex;
use std::any::Any;
use std::cell::Cell;
use std::collections::BTreeSet;
use std::io;
use std::os::fd::AsRawFd;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const WAKER: Token = Token(usize::MAX);

/// Work for a loop, run on its thread with access to its tasks.
pub type Command = Box<dyn FnOnce(&mut Tasks) + Send>;

/// What a task wants after handling something.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    /// The task is done: the loop drops it.
    Finished,
}

/// What the poll reported for a task's socket.
#[derive(Debug, Clone, Copy)]
pub struct Readiness {
    pub readable: bool,
    pub writable: bool,
    /// The peer closed its side or the socket failed: no further readiness edge will come, so
    /// reading must go on to the end.
    pub closed: bool,
}

/// What a task may use of its loop while it handles something.
pub struct Context<'a> {
    pub registry: &'a Registry,
    /// The loop's one receive buffer (a task that takes it out must put it back).
    pub receive_buffer: &'a mut Vec<u8>,
    /// The loop's spare send buffer (empty, or allocated and cleared): a task may use it to
    /// collect what it sends while it handles one event, and give it back cleared.
    pub send_spare: &'a mut Vec<u8>,
    /// The loop itself, for tasks that queue commands to it.
    pub event_loop: &'a Arc<LoopShared>,
    /// The slot of the task being handled.
    slot: usize,
    /// The task placed a successor under its own id: its slot stays reserved for that one.
    handed_over: Cell<bool>,
    /// The task stopped reading before its socket drained: [`Context::read_again_later`].
    read_later: Cell<Option<bool>>,
}

impl Context<'_> {
    /// Adds `task` under `id` (reserved from `target`: [`LoopShared::reserve`]) to the loop
    /// `target` (and starts it there), from a task of this context's loop: on this same loop
    /// the command runs in the current turn, after the events being handled and before the loop
    /// sleeps (no wake-up needed); another loop is woken. A loop that has ended drops the task.
    ///
    /// A task may hand its own id (and socket) over to a successor on this loop: it places the
    /// successor under its id, then finishes; the id stays reserved for the successor.
    pub fn place(&self, target: &Arc<LoopShared>, id: u64, task: Box<dyn Task>) {
        if target.index == self.event_loop.index && slot_of(id) == self.slot {
            self.handed_over.set(true);
        }
        let refused = target.push(Queued::Adopt(id, task));
        if target.index != self.event_loop.index {
            target.wake();
        }
        drop(refused);
    }

    /// The task stopped reading before its socket drained, so that one busy peer does not keep
    /// the loop from its other tasks, timers and commands: the loop calls its `ready` again,
    /// readable (and `closed` as given), in its next turn, which then does not sleep.
    /// Edge-triggered readiness would not report the socket again by itself.
    pub fn read_again_later(&self, closed: bool) {
        self.read_later.set(Some(closed));
    }
}

/// Something a loop drives: a listener, a connection.
pub trait Task: Send + 'static {
    /// The task was just added to the loop (register its socket here).
    fn start(&mut self, cx: &mut Context) -> Flow;
    fn ready(&mut self, cx: &mut Context, readiness: Readiness) -> Flow;
    /// The deadline the task last reported has passed. (A task without timers reports none,
    /// so it is never called.)
    fn timeout(&mut self, _cx: &mut Context, _now: Instant) -> Flow {
        Flow::Continue
    }
    /// When [`Task::timeout`] is due, if ever (asked after every call into the task).
    fn deadline(&self) -> Option<Instant> {
        None
    }
    /// A panic escaped while the task handled something: end it as cleanly as its state allows.
    fn panicked(&mut self, cx: &mut Context) -> Flow;
    /// The loop is ending: the task goes with it (what it owns is dropped with it).
    fn shutdown(&mut self, _cx: &mut Context) {}
    fn as_any(&mut self) -> &mut dyn Any;
    /// The id the task was adopted under (which the loop checks commands' ids against).
    fn id(&self) -> u64;
}

/// The poll token of the task `id`: its slot in the loop's slab.
pub fn token(id: u64) -> mio::Token {
    mio::Token(slot_of(id))
}

/// The part of a loop other threads use.
pub struct LoopShared {
    pub index: usize,
    waker: Waker,
    queue: Mutex<Queue>,
    /// Set once a command is queued (under the queue's lock): the loop's turn takes the lock
    /// only when something is there.
    queued: AtomicBool,
    ids: Ids,
    /// The `pthread_self` of the loop's thread while it runs, else 0 (no thread's id). Only
    /// the loop's thread stores its own id, so only that thread can read it back as its own.
    thread: AtomicUsize,
}

struct Queue {
    commands: Vec<Queued>,
    /// The loop has ended: commands queued now are dropped at once (what they carry — a
    /// connection, say — is released instead of waiting forever on a loop that will not run).
    closed: bool,
}

/// What waits in a loop's queue: a command, or a task to adopt — the most frequent command
/// (every accepted connection), kept without a closure boxed around it.
enum Queued {
    Run(Command),
    Adopt(u64, Box<dyn Task>),
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
    /// An id for a task to be adopted by this loop ([`Context::place`], [`Tasks::adopt`]):
    /// from any thread, before the task exists. The id must reach the loop with its task (a
    /// reserved id is taken back only when its task is gone).
    pub fn reserve(&self) -> u64 {
        self.ids.reserve()
    }

    /// True when called on this loop's own thread: a comparison of thread ids, cheaper than a
    /// thread-local lookup in a shared library (`pthread_self` reads the thread pointer).
    #[inline]
    pub fn is_current(&self) -> bool {
        // SAFETY: pthread_self has no preconditions.
        let this_thread = unsafe { libc::pthread_self() } as usize;
        this_thread == self.thread.load(Ordering::Relaxed)
    }

    /// Queues a command. From another thread the loop is woken; on the loop's own thread the
    /// command runs before the loop next sleeps. On a loop that has ended, the command is
    /// dropped (what it carries — a connection, say — is released now).
    pub fn submit(&self, command: impl FnOnce(&mut Tasks) + Send + 'static) {
        drop(self.enqueue(command));
        self.wake();
    }

    /// Queues a command without waking the loop: for a caller holding a lock, who calls
    /// [`LoopShared::wake`] once it is released (waking may log, and a log hook may call into
    /// the library). A loop that has ended refuses the command and gives it back: the caller
    /// drops it after releasing its lock, since dropping what it carries (a connection, so a
    /// delegate) may run application code.
    #[must_use = "a refused command must be dropped after the caller's lock is released"]
    pub fn enqueue(&self, command: impl FnOnce(&mut Tasks) + Send + 'static) -> Option<Command> {
        match self.push(Queued::Run(Box::new(command)))? {
            Queued::Run(command) => Some(command),
            Queued::Adopt(..) => unreachable!("a command comes back as pushed"),
        }
    }

    /// Queues `queued`, or gives it back when the loop has ended.
    fn push(&self, queued: Queued) -> Option<Queued> {
        let mut queue = self.queue.lock();
        if queue.closed {
            return Some(queued);
        }
        queue.commands.push(queued);
        self.queued.store(true, Ordering::SeqCst);
        None
    }

    /// Makes the loop run its queued commands soon.
    pub fn wake(&self) {
        if self.queue.lock().closed {
            log!(
                Debug,
                "event loop {} has ended: command dropped",
                self.index
            );
            return;
        }
        if !self.is_current()
            && let Err(err) = self.waker.wake()
        {
            log!(Error, "cannot wake event loop {}: {err}", self.index);
        }
    }
}

/// A loop's tasks, as commands see them.
pub struct Tasks {
    shared: Arc<LoopShared>,
    poll: Poll,
    tasks: Slab<Box<dyn Task>>,
    /// Each task's deadline, with its slot.
    deadlines: BTreeSet<(Instant, usize)>,
    receive_buffer: Vec<u8>,
    /// The size of one read: the receive buffer's length.
    receive_buffer_size: usize,
    /// A send buffer, lent to a task for the replies to one read and given back drained: kept
    /// no larger than one read (`receive_buffer_size`, after each task's turn).
    send_spare: Vec<u8>,
    /// An empty queue buffer, kept for [`Tasks::run_commands`].
    spare_queue: Vec<Queued>,
    /// The tasks to call again, readable, next turn ([`Context::read_again_later`]).
    read_later: ReadLater,
    running: bool,
}

impl Tasks {
    /// Adds a task under `id` (reserved from this loop) and starts it.
    pub fn adopt(&mut self, id: u64, task: Box<dyn Task>) {
        debug_assert_eq!(task.id(), id, "a task is adopted under its own id");
        let slot = slot_of(id);
        let deadline = task.deadline();
        if let Err(task) = self.tasks.insert(slot, task) {
            // Only a task adopted twice, or under an id not reserved for it, gets here.
            log!(Error, "task {id}: its slot is taken: dropped");
            drop(task);
            return;
        }
        // The deadline set holds every task's current deadline, also one a task has before it
        // starts (a connection's handshake timeout): `drive` only records changes.
        if let Some(when) = deadline {
            self.deadlines.insert((when, slot));
        }
        self.drive(slot, |task, cx| task.start(cx));
    }

    /// Runs `f` on the task `id` if it is of type `T` and still there.
    pub fn with<T: Task>(&mut self, id: u64, f: impl FnOnce(&mut T, &mut Context) -> Flow) {
        let Some(slot) = self.find(id) else {
            return;
        };
        self.drive(slot, |task, cx| match task.as_any().downcast_mut::<T>() {
            Some(task) => f(task, cx),
            None => Flow::Continue,
        });
    }

    /// Lends every task of type `T` to `f`, in no particular order. (A task is not driven: `f`
    /// only looks, or queues work.)
    pub fn each<T: Task>(&mut self, mut f: impl FnMut(&mut T)) {
        for task in self.tasks.values_mut() {
            if let Some(task) = task.as_any().downcast_mut::<T>() {
                f(task);
            }
        }
    }

    /// Removes task `id` without another call into it (its owner ends it another way).
    pub fn remove(&mut self, id: u64) -> Option<Box<dyn Task>> {
        let slot = self.find(id)?;
        let task = self.tasks.take(slot)?;
        if let Some(when) = task.deadline() {
            self.deadlines.remove(&(when, slot));
        }
        self.shared.ids.release(id);
        Some(task)
    }

    /// Ends the loop after the commands queued so far.
    pub fn stop(&mut self) {
        self.running = false;
    }

    /// The slot of task `id` while that very task is there: not once it is gone, even if
    /// another task has its slot now.
    fn find(&mut self, id: u64) -> Option<usize> {
        let slot = slot_of(id);
        let task = self.tasks.get_mut(slot)?;
        (task.id() == id).then_some(slot)
    }

    /// Runs `f` on the task in `slot`, then keeps the deadline set in step and drops a finished
    /// task (its id goes back to the loop's free ids, unless it was handed over). A panic while
    /// handling one task ends that task (`Task::panicked`) and nothing else.
    ///
    /// The task stays in the slab meanwhile (one lookup per event): nothing `f` can reach looks
    /// tasks up, since commands only queue and run after it. An event finds its task by its
    /// token (the slot) alone: an event left from a task gone from that slot can only be
    /// spurious readiness, which a task handles as any other (mio allows for it).
    fn drive(&mut self, slot: usize, f: impl FnOnce(&mut dyn Task, &mut Context) -> Flow) {
        let Some(task) = self.tasks.get_mut(slot) else {
            return;
        };
        let before = task.deadline();
        let mut cx = Context {
            registry: self.poll.registry(),
            receive_buffer: &mut self.receive_buffer,
            send_spare: &mut self.send_spare,
            event_loop: &self.shared,
            slot,
            handed_over: Cell::new(false),
            read_later: Cell::new(None),
        };
        let flow = match std::panic::catch_unwind(AssertUnwindSafe(|| f(&mut **task, &mut cx))) {
            Ok(flow) => flow,
            Err(panic) => {
                log!(
                    Error,
                    "task {}: internal error: {}",
                    task.id(),
                    panic_text(&*panic)
                );
                restore_receive_buffer(cx.receive_buffer, self.receive_buffer_size);
                std::panic::catch_unwind(AssertUnwindSafe(|| task.panicked(&mut cx)))
                    .unwrap_or(Flow::Finished)
            }
        };
        let handed_over = cx.handed_over.get();
        if let Some(closed) = cx.read_later.get()
            && flow == Flow::Continue
        {
            self.read_later.list(task.id(), closed);
        }
        // The loop keeps no larger a send buffer than it reads at once: replies that grew one
        // beyond (large ones, over TLS) do not pin it.
        if self.send_spare.capacity() > self.receive_buffer_size {
            self.send_spare = Vec::new();
        }
        let after = match flow {
            Flow::Continue => task.deadline(),
            Flow::Finished => None,
        };
        if before != after {
            if let Some(when) = before {
                self.deadlines.remove(&(when, slot));
            }
            if let Some(when) = after {
                self.deadlines.insert((when, slot));
            }
        }
        if flow == Flow::Finished
            && let Some(task) = self.tasks.take(slot)
        {
            let id = task.id();
            drop(task);
            if !handed_over {
                self.shared.ids.release(id);
            }
        }
    }

    fn expire_deadlines(&mut self) {
        // No timer anywhere (connections without keepalive): no clock read per turn.
        if self.deadlines.is_empty() {
            return;
        }
        let now = Instant::now();
        while let Some(&(when, slot)) = self.deadlines.first() {
            if when > now {
                break;
            }
            self.drive(slot, |task, cx| task.timeout(cx, now));
            // A task that kept the same deadline through its timeout is not called again for it.
            if self.deadlines.first() == Some(&(when, slot)) {
                self.deadlines.pop_first();
            }
        }
    }

    /// Calls each task of `ids` as readable, if it is still there (not one that took its slot)
    /// and was not read on its readiness in this turn already; keeps the emptied list.
    #[cold]
    #[inline(never)]
    fn read_again(&mut self, mut ids: Vec<(u64, bool)>) {
        for (id, closed) in ids.drain(..) {
            if self.read_later.holds(id, closed) {
                continue;
            }
            let readiness = Readiness {
                readable: true,
                writable: false,
                closed,
            };
            if let Some(slot) = self.find(id) {
                self.drive(slot, |task, cx| task.ready(cx, readiness));
            }
        }
        self.read_later.give_back(ids);
    }

    /// Runs queued commands (including ones queued meanwhile). The queue's buffer and
    /// `spare_queue` change places each round, so that queueing allocates nothing once both
    /// have grown.
    fn run_commands(&mut self) {
        // A command queued by another thread after this check also wakes the loop (the wake
        // follows the flag), so the next turn sees it.
        while self.shared.queued.load(Ordering::SeqCst) {
            self.shared.queued.store(false, Ordering::SeqCst);
            let mut commands = std::mem::take(&mut self.spare_queue);
            std::mem::swap(&mut commands, &mut self.shared.queue.lock().commands);
            for queued in commands.drain(..) {
                match queued {
                    Queued::Run(command) => command(self),
                    Queued::Adopt(id, task) => self.adopt(id, task),
                }
            }
            self.spare_queue = commands;
        }
    }
}

/// A panic may have unwound while a task had the receive buffer taken out.
fn restore_receive_buffer(buffer: &mut Vec<u8>, size: usize) {
    if buffer.len() != size {
        *buffer = vec![0; size];
    }
}

pub struct EventLoop {
    tasks: Tasks,
}

impl EventLoop {
    /// `receive_buffer_size`: the bytes one read may take (the loop's one receive buffer, shared
    /// by its tasks; allocated zeroed, so its pages become resident only as reads reach them).
    pub fn new(index: usize, receive_buffer_size: usize) -> io::Result<EventLoop> {
        let poll = Poll::new()?;
        let waker = Waker::new(poll.registry(), WAKER)?;
        let shared = Arc::new(LoopShared {
            index,
            waker,
            queue: Mutex::new(Queue {
                commands: Vec::new(),
                closed: false,
            }),
            queued: AtomicBool::new(false),
            ids: Ids::new(index),
            thread: AtomicUsize::new(0),
        });
        Ok(EventLoop {
            tasks: Tasks {
                shared,
                poll,
                tasks: Slab::new(),
                deadlines: BTreeSet::new(),
                receive_buffer: Vec::new(),
                receive_buffer_size,
                send_spare: Vec::new(),
                spare_queue: Vec::new(),
                read_later: ReadLater::default(),
                running: true,
            },
        })
    }

    pub fn shared(&self) -> Arc<LoopShared> {
        self.tasks.shared.clone()
    }

    pub fn run(mut self) {
        CURRENT_LOOP.with(|c| c.set(Some(self.tasks.shared.index)));
        // SAFETY: pthread_self has no preconditions.
        let this_thread = unsafe { libc::pthread_self() } as usize;
        self.tasks
            .shared
            .thread
            .store(this_thread, Ordering::Relaxed);
        self.tasks.receive_buffer = vec![0; self.tasks.receive_buffer_size];
        let mut events = Events::with_capacity(256);
        while self.tasks.running {
            // The last line of defence: a panic outside any task's handling (a command) is
            // logged and the loop goes on serving its tasks.
            if let Err(panic) =
                std::panic::catch_unwind(AssertUnwindSafe(|| self.turn(&mut events)))
            {
                log!(
                    Error,
                    "event loop {}: internal error: {}",
                    self.tasks.shared.index,
                    panic_text(&*panic)
                );
                restore_receive_buffer(
                    &mut self.tasks.receive_buffer,
                    self.tasks.receive_buffer_size,
                );
            }
        }
        self.shutdown();
    }

    /// One wait for readiness, commands or a deadline, and the work it brings.
    fn turn(&mut self, events: &mut Events) {
        let tasks = &mut self.tasks;
        // Tasks that stopped reading last turn are read again in this one, which does not sleep.
        let read_now = tasks.read_later.take();
        let timeout = match read_now {
            Some(_) => Some(Duration::ZERO),
            None => tasks
                .deadlines
                .first()
                .map(|(when, _)| when.saturating_duration_since(Instant::now())),
        };
        if let Err(err) = events.wait(tasks.poll.as_raw_fd(), timeout) {
            if err.kind() != io::ErrorKind::Interrupted {
                log!(
                    Error,
                    "event loop {}: poll failed: {err}",
                    tasks.shared.index
                );
            }
            return;
        }
        for event in events.iter() {
            if event.token == WAKER.0 {
                continue;
            }
            let readiness = Readiness {
                readable: event.is_readable(),
                writable: event.is_writable() || event.is_error(),
                closed: event.is_read_closed() || event.is_error(),
            };
            tasks.drive(event.token, |task, cx| task.ready(cx, readiness));
        }
        if let Some(read_now) = read_now {
            tasks.read_again(read_now);
        }
        tasks.expire_deadlines();
        tasks.run_commands();
    }

    /// Ends what is left when the runtime stops.
    fn shutdown(&mut self) {
        for slot in self.tasks.tasks.slots() {
            self.tasks.drive(slot, |task, cx| {
                task.shutdown(cx);
                Flow::Finished
            });
        }
        self.tasks.deadlines.clear();
        // Whatever is still queued, or comes later, is dropped (outside the lock: dropping a
        // connection may release a delegate, which runs application code).
        let left = {
            let mut queue = self.tasks.shared.queue.lock();
            queue.closed = true;
            std::mem::take(&mut queue.commands)
        };
        drop(left);
        CURRENT_LOOP.with(|c| c.set(None));
        // (A thread made later may get this one's id: it must not pass for the loop.)
        self.tasks.shared.thread.store(0, Ordering::Relaxed);
    }
}

#[cfg(test)]
#[path = "event_loop_tests.rs"]
mod tests;
