//! A set of live connections that can be closed together and waited for: one per server,
//! and one for all client connections of the runtime.
//!
//! The group keeps no entry per connection, only how many it has: a member's session, on its
//! event loop, knows that it belongs (its connection points to the group through
//! [`super::connection::Common`]), so closing every member is one command per loop that walks
//! the loop's own tasks. A set of weak pointers cost every idle connection about 15 bytes.

use super::session::{Phase, Session};
use crate::log::log;
use crate::runtime::{self, Tasks};
use parking_lot::{Condvar, Mutex};
use std::sync::Arc;
use std::time::Instant;

#[derive(Default)]
pub struct ConnectionGroup {
    /// Members: sessions that joined and have not left.
    live: Mutex<usize>,
    emptied: Condvar,
    /// Set by [`ConnectionGroup::close_all`] until [`ConnectionGroup::reopen`]: a member whose
    /// session reaches its loop after the close walked that loop closes itself as it starts.
    closing: Mutex<Option<(i32, Arc<str>)>>,
}

impl ConnectionGroup {
    /// A session joins (it leaves once, through [`ConnectionGroup::leave`]).
    pub fn join(&self) {
        *self.live.lock() += 1;
    }

    pub fn leave(&self) {
        let mut live = self.live.lock();
        *live = live.checked_sub(1).unwrap_or_else(|| {
            log!(Error, "a connection left its group twice");
            0
        });
        if *live == 0 {
            self.emptied.notify_all();
        }
    }

    /// Connections joining from now on are no longer closed as they start (a stopped server
    /// started again).
    pub fn reopen(&self) {
        *self.closing.lock() = None;
    }

    /// The close a member starting now must begin, if the group is being closed.
    pub fn closing(&self) -> Option<(i32, Arc<str>)> {
        self.closing.lock().clone()
    }

    /// Starts the closing handshake on every member (members still opening are abandoned),
    /// each on its own loop: the command walks the loop's tasks. Returns at once.
    pub fn close_all(self: &Arc<Self>, code: i32, reason: &str) {
        let reason: Arc<str> = reason.into();
        *self.closing.lock() = Some((code, reason.clone()));
        for event_loop in runtime::loops() {
            let group = self.clone();
            let reason = reason.clone();
            event_loop.submit(move |tasks| group.close_members(tasks, code, &reason));
        }
    }

    /// On a loop: closes the members this loop runs.
    fn close_members(self: &Arc<Self>, tasks: &mut Tasks, code: i32, reason: &str) {
        let mut members = Vec::new();
        tasks.each::<Session>(|session| {
            if session.is_member() && Arc::ptr_eq(&session.connection.common.group, self) {
                members.push(session.connection.clone());
            }
        });
        // Closed once the walk is over: a close queues commands to this loop.
        for connection in members {
            let _ = connection.close_for_stop(code, reason);
        }
    }

    /// Waits until every member is gone or `deadline` passes; true when empty.
    pub fn wait_empty(&self, deadline: Instant) -> bool {
        let mut live = self.live.lock();
        while *live > 0 {
            if self.emptied.wait_until(&mut live, deadline).timed_out() {
                return *live == 0;
            }
        }
        true
    }
}

/// A session's membership of its connection's group.
impl Session {
    /// True while the session counts in its connection's group: from its start (the code that
    /// makes a session joins it) until onClose has run or it ends.
    pub(super) fn is_member(&self) -> bool {
        !matches!(
            self.phase,
            Phase::Lingering { left: true, .. } | Phase::Finished
        )
    }

    /// Leaves the connection's group, once.
    pub(super) fn leave_group(&mut self) {
        if !self.is_member() {
            return;
        }
        self.connection.common.group.leave();
        match &mut self.phase {
            Phase::Lingering { left, .. } => *left = true,
            phase => *phase = Phase::Finished,
        }
    }

    /// Closes a session that starts while its group is being closed (it joined after the close
    /// walked its loop's tasks), as the close would have.
    pub(super) fn close_if_group_closing(&self) {
        if let Some((code, reason)) = self.connection.common.group.closing() {
            let _ = self.connection.close_for_stop(code, &reason);
        }
    }
}
