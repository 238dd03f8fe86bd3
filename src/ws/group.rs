//! A set of live connections that can be closed together and waited for: one per server,
//! and one for all client connections of the runtime.

use super::connection::Connection;
use parking_lot::{Condvar, Mutex};
use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Instant;

#[derive(Default)]
pub struct ConnectionGroup {
    live: Mutex<HashMap<u64, Weak<Connection>>>,
    emptied: Condvar,
}

impl ConnectionGroup {
    pub fn add(&self, connection: &Arc<Connection>) {
        self.live
            .lock()
            .insert(connection.id, Arc::downgrade(connection));
    }

    pub fn remove(&self, id: u64) {
        let mut live = self.live.lock();
        live.remove(&id);
        if live.is_empty() {
            self.emptied.notify_all();
        }
    }

    /// Starts the closing handshake on every member (members still opening are abandoned).
    pub fn close_all(&self, code: i32, reason: &str) {
        let members: Vec<Arc<Connection>> = self
            .live
            .lock()
            .values()
            .filter_map(Weak::upgrade)
            .collect();
        for connection in members {
            let _ = connection.close(code, reason);
        }
    }

    /// Waits until every member is gone or `deadline` passes; true when empty. (A member whose
    /// connection no longer exists counts as gone.)
    pub fn wait_empty(&self, deadline: Instant) -> bool {
        let mut live = self.live.lock();
        live.retain(|_, member| member.strong_count() > 0);
        while !live.is_empty() {
            if self.emptied.wait_until(&mut live, deadline).timed_out() {
                return live.is_empty();
            }
        }
        true
    }
}
