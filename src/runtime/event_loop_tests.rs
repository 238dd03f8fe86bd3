//! A loop's tasks by id, driven on the test's thread (the loop is made but not run).

use super::super::slab::{CHUNK, slot_of};
use super::*;

/// A task that does nothing but count what it is lent for.
struct Probe {
    id: u64,
    lent: usize,
}

impl Task for Probe {
    fn start(&mut self, _cx: &mut Context) -> Flow {
        Flow::Continue
    }

    fn ready(&mut self, _cx: &mut Context, _readiness: Readiness) -> Flow {
        Flow::Continue
    }

    fn panicked(&mut self, _cx: &mut Context) -> Flow {
        Flow::Finished
    }

    fn as_any(&mut self) -> &mut dyn Any {
        self
    }

    fn id(&self) -> u64 {
        self.id
    }
}

fn probe(id: u64) -> Box<dyn Task> {
    Box::new(Probe { id, lent: 0 })
}

/// How many times `with` lends task `id` out (0: it found nothing).
fn lend(tasks: &mut Tasks, id: u64) -> usize {
    let mut lent = 0;
    tasks.with::<Probe>(id, |probe, _| {
        probe.lent += 1;
        lent = probe.lent;
        Flow::Continue
    });
    lent
}

#[test]
fn a_stale_id_finds_nothing_once_its_slot_is_reused() {
    let mut tasks = EventLoop::new(0, 64 * 1024).unwrap().tasks;
    let old = tasks.shared.reserve();
    tasks.adopt(old, probe(old));
    assert_eq!(lend(&mut tasks, old), 1);
    tasks.with::<Probe>(old, |_, _| Flow::Finished);
    assert_eq!(lend(&mut tasks, old), 0, "a finished task is gone");

    let new = tasks.shared.reserve();
    assert_eq!(slot_of(new), slot_of(old), "the slot is reused");
    assert_ne!(new, old);
    tasks.adopt(new, probe(new));
    assert_eq!(
        lend(&mut tasks, old),
        0,
        "the old id does not reach the new task"
    );
    assert!(tasks.remove(old).is_none(), "nor removes it");
    assert_eq!(lend(&mut tasks, new), 1, "the new id does");
    assert!(tasks.remove(new).is_some());
    assert_eq!(lend(&mut tasks, new), 0);
}

#[test]
fn a_handed_over_id_stays_reserved_for_the_successor() {
    let mut tasks = EventLoop::new(0, 64 * 1024).unwrap().tasks;
    let id = tasks.shared.reserve();
    tasks.adopt(id, probe(id));
    // The task places its successor under its own id, then finishes.
    tasks.with::<Probe>(id, |_, cx| {
        cx.place(cx.event_loop, id, Box::new(Probe { id, lent: 10 }));
        Flow::Finished
    });
    let other = tasks.shared.reserve();
    assert_ne!(
        slot_of(other),
        slot_of(id),
        "the slot is not handed out meanwhile"
    );
    tasks.run_commands();
    assert_eq!(lend(&mut tasks, id), 11, "the successor has the id");
}

#[test]
fn each_lends_every_task_over_several_chunks() {
    let mut tasks = EventLoop::new(3, 64 * 1024).unwrap().tasks;
    let count = CHUNK * 2 + 5;
    let ids: Vec<u64> = (0..count).map(|_| tasks.shared.reserve()).collect();
    for &id in &ids {
        tasks.adopt(id, probe(id));
    }
    // One in the middle goes: `each` skips its empty slot.
    tasks.remove(ids[CHUNK]).unwrap();
    let mut seen = Vec::new();
    tasks.each::<Probe>(|probe| seen.push(probe.id));
    seen.sort_unstable();
    let mut expected = ids.clone();
    expected.remove(CHUNK);
    assert_eq!(seen, expected);
}

/// The send buffer a task gives back to the loop is kept for the next task's replies up to the
/// size of one read, and freed when larger.
#[test]
fn the_loop_keeps_a_send_buffer_up_to_the_size_of_a_read() {
    let read = 64 * 1024;
    let mut tasks = EventLoop::new(0, read).unwrap().tasks;
    let id = tasks.shared.reserve();
    tasks.adopt(id, probe(id));
    for (given, kept) in [(read, true), (read + 1, false)] {
        tasks.with::<Probe>(id, |_, cx| {
            *cx.send_spare = Vec::with_capacity(given);
            Flow::Continue
        });
        assert_eq!(
            tasks.send_spare.capacity() >= given,
            kept,
            "{given} bytes given back"
        );
    }
}

/// A task that asks to be read again after each of its next `left` readiness calls, and keeps
/// the `closed` flag of each call; with a socket, its readiness is reported by the loop too.
struct Greedy {
    id: u64,
    left: usize,
    calls: Vec<bool>,
    socket: Option<mio::net::UnixStream>,
}

impl Task for Greedy {
    fn start(&mut self, cx: &mut Context) -> Flow {
        if let Some(socket) = self.socket.as_mut() {
            let interest = mio::Interest::READABLE;
            cx.registry
                .register(socket, token(self.id), interest)
                .unwrap();
        }
        Flow::Continue
    }

    fn ready(&mut self, cx: &mut Context, readiness: Readiness) -> Flow {
        self.calls.push(readiness.closed);
        if self.left > 0 {
            self.left -= 1;
            cx.read_again_later(readiness.closed);
        }
        Flow::Continue
    }

    fn panicked(&mut self, _cx: &mut Context) -> Flow {
        Flow::Finished
    }

    fn as_any(&mut self) -> &mut dyn Any {
        self
    }

    fn id(&self) -> u64 {
        self.id
    }
}

fn greedy(tasks: &mut Tasks, left: usize) -> u64 {
    greedy_on(tasks, left, None)
}

fn greedy_on(tasks: &mut Tasks, left: usize, socket: Option<mio::net::UnixStream>) -> u64 {
    let id = tasks.shared.reserve();
    tasks.adopt(
        id,
        Box::new(Greedy {
            id,
            left,
            calls: Vec::new(),
            socket,
        }),
    );
    id
}

/// Its readiness calls so far (`closed` of each).
fn calls(tasks: &mut Tasks, id: u64) -> Vec<bool> {
    let mut calls = Vec::new();
    tasks.with::<Greedy>(id, |task, _| {
        calls = task.calls.clone();
        Flow::Continue
    });
    calls
}

const CLOSED: Readiness = Readiness {
    readable: true,
    writable: false,
    closed: true,
};

/// A task that stopped reading before its socket drained is called again, readable and with
/// the peer's close as it was, in each next turn for as long as it asks (those turns do not
/// sleep: nothing else is ready here); a task gone by its turn is not called, nor the task
/// that took its slot.
#[test]
fn a_task_that_stopped_reading_is_called_again_next_turn_while_it_is_there() {
    let mut event_loop = EventLoop::new(0, 64 * 1024).unwrap();
    let mut events = Events::with_capacity(8);
    let id = greedy(&mut event_loop.tasks, 2);
    event_loop
        .tasks
        .with::<Greedy>(id, |task, cx| task.ready(cx, CLOSED));
    event_loop.turn(&mut events);
    event_loop.turn(&mut events);
    assert_eq!(calls(&mut event_loop.tasks, id), [true, true, true]);
    assert!(
        event_loop.tasks.read_later.is_empty(),
        "it asked only twice"
    );

    let gone = greedy(&mut event_loop.tasks, 1);
    event_loop
        .tasks
        .with::<Greedy>(gone, |task, cx| task.ready(cx, CLOSED));
    event_loop.tasks.with::<Greedy>(gone, |_, _| Flow::Finished);
    let successor = greedy(&mut event_loop.tasks, 0);
    assert_eq!(slot_of(successor), slot_of(gone), "the slot is reused");
    event_loop.turn(&mut events);
    assert!(calls(&mut event_loop.tasks, successor).is_empty());
}

/// A task that asked to be read again, and in the next turn is read on its readiness (an edge
/// of a socket its peer keeps full) and asks again, is called once in that turn, not a second
/// time from the list, and is listed once: one call a turn, however many turns it goes on.
#[test]
fn a_task_read_on_its_readiness_is_not_read_again_in_the_same_turn() {
    use std::io::Write;
    let mut event_loop = EventLoop::new(0, 64 * 1024).unwrap();
    let mut events = Events::with_capacity(8);
    let (ours, mut peer) = mio::net::UnixStream::pair().unwrap();
    let id = greedy_on(&mut event_loop.tasks, usize::MAX, Some(ours));
    for turn in 1..=5 {
        // A byte more, never read: a new edge in each turn.
        peer.write_all(b"x").unwrap();
        event_loop.turn(&mut events);
        assert_eq!(calls(&mut event_loop.tasks, id).len(), turn, "turn {turn}");
    }
}
