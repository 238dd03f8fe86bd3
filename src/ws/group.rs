//! A set of live connections that can be closed together and waited for: one per server,
//! and one for all client connections of the runtime.

use super::connection::Connection;
use parking_lot::{Condvar, Mutex};
use std::borrow::Borrow;
use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::mem::ManuallyDrop;
use std::sync::{Arc, Weak};
use std::time::Instant;

/// A member: a `Weak` to its connection, kept as the raw pointer it is
/// (`Weak::into_raw`) so that the set can find it by the connection's address. A set of these
/// costs a member 8 bytes (a map from id to `Weak` took 16); the `Weak` it stands for keeps the
/// address from being reused while the member is in the set.
struct Member(*const Connection);

// SAFETY: a member is a `Weak<Connection>`, which is Send and Sync (Connection is).
unsafe impl Send for Member {}
unsafe impl Sync for Member {}

impl Member {
    fn new(connection: &Arc<Connection>) -> Member {
        Member(Weak::into_raw(Arc::downgrade(connection)))
    }

    /// The `Weak` this member owns, lent.
    fn weak(&self) -> ManuallyDrop<Weak<Connection>> {
        // SAFETY: the pointer came from `Weak::into_raw` and its count is still ours (given
        // back only in `drop`); ManuallyDrop keeps this copy from releasing it.
        ManuallyDrop::new(unsafe { Weak::from_raw(self.0) })
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        // SAFETY: as in `weak`; this gives the member's weak count back, once.
        drop(unsafe { Weak::from_raw(self.0) });
    }
}

impl PartialEq for Member {
    fn eq(&self, other: &Member) -> bool {
        std::ptr::eq(self.0, other.0)
    }
}

impl Eq for Member {}

impl Hash for Member {
    /// As the pointer hashes: the set is searched with `Arc::as_ptr` of a connection.
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl Borrow<*const Connection> for Member {
    fn borrow(&self) -> &*const Connection {
        &self.0
    }
}

/// Hashes a member's address (made by the allocator, chosen by no peer) with one
/// multiplication, folded so that the low bits the table indexes by vary although addresses
/// are aligned; the default SipHash, built to resist chosen keys, cost several times more on
/// every connection's join and leave.
#[derive(Default)]
struct AddressHasher(u64);

impl Hasher for AddressHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.write_u64(self.0.rotate_left(8) ^ u64::from(byte));
        }
    }

    fn write_u64(&mut self, word: u64) {
        let product = u128::from(word ^ self.0) * 0x9e37_79b9_7f4a_7c15;
        self.0 = product as u64 ^ (product >> 64) as u64;
    }

    fn write_usize(&mut self, word: usize) {
        self.write_u64(word as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[derive(Default)]
pub struct ConnectionGroup {
    live: Mutex<HashSet<Member, BuildHasherDefault<AddressHasher>>>,
    emptied: Condvar,
}

impl ConnectionGroup {
    pub fn add(&self, connection: &Arc<Connection>) {
        self.live.lock().insert(Member::new(connection));
    }

    pub fn remove(&self, connection: &Arc<Connection>) {
        let mut live = self.live.lock();
        live.remove(&Arc::as_ptr(connection));
        if live.is_empty() {
            self.emptied.notify_all();
        }
    }

    /// Starts the closing handshake on every member (members still opening are abandoned).
    pub fn close_all(&self, code: i32, reason: &str) {
        let members: Vec<Arc<Connection>> = self
            .live
            .lock()
            .iter()
            .filter_map(|member| member.weak().upgrade())
            .collect();
        for connection in members {
            let _ = connection.close(code, reason);
        }
    }

    /// Waits until every member is gone or `deadline` passes; true when empty. (A member whose
    /// connection no longer exists counts as gone.)
    pub fn wait_empty(&self, deadline: Instant) -> bool {
        let mut live = self.live.lock();
        live.retain(|member| member.weak().strong_count() > 0);
        while !live.is_empty() {
            if self.emptied.wait_until(&mut live, deadline).timed_out() {
                return live.is_empty();
            }
        }
        true
    }
}
