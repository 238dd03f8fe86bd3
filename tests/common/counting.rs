//! A C delegate that counts its callbacks, `release` included (a second release would show as 2
//! instead of freeing anything twice). Shared by tests that must build without TLS (features.rs
//! includes this file alone, not `common`), so it names nothing but the C API.

use oasisnet::ffi::{WsEvent, WsEventDelegateVTable, wsEventStatusCode};
use std::ffi::c_void;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// How long a test waits for a callback.
pub const WAIT: Duration = Duration::from_secs(10);

/// What a delegate saw: onOpen, onError codes, onClose count, release count.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Calls {
    pub opens: usize,
    pub errors: Vec<i32>,
    pub closes: usize,
    pub releases: usize,
}

#[derive(Default)]
pub struct Counting {
    calls: Mutex<Calls>,
    changed: Condvar,
}

impl Counting {
    /// Leaked: a delegate may be called until its release, which the test waits for.
    pub fn new() -> &'static Counting {
        Box::leak(Box::default())
    }

    /// The `user` pointer to pass with [`COUNTING_VTABLE`].
    pub fn user(&'static self) -> *mut c_void {
        self as *const Counting as *mut c_void
    }

    fn record(&self, change: impl FnOnce(&mut Calls)) {
        change(&mut self.calls.lock().unwrap());
        self.changed.notify_all();
    }

    pub fn calls(&self) -> Calls {
        self.calls.lock().unwrap().clone()
    }

    /// The calls once `done` holds; panics after WAIT.
    pub fn wait(&self, what: &str, done: impl Fn(&Calls) -> bool) -> Calls {
        let deadline = Instant::now() + WAIT;
        let mut calls = self.calls.lock().unwrap();
        while !done(&calls) {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "timed out waiting for {what}: {calls:?}");
            calls = self.changed.wait_timeout(calls, left).unwrap().0;
        }
        calls.clone()
    }
}

unsafe fn counting<'a>(user: *mut c_void) -> &'a Counting {
    unsafe { &*(user as *const Counting) }
}

unsafe extern "C" fn on_open(user: *mut c_void, _: *mut WsEvent) {
    unsafe { counting(user) }.record(|c| c.opens += 1);
}

unsafe extern "C" fn on_error(user: *mut c_void, event: *mut WsEvent) {
    let code = wsEventStatusCode(event);
    unsafe { counting(user) }.record(|c| c.errors.push(code));
}

unsafe extern "C" fn on_close(user: *mut c_void, _: *mut WsEvent) {
    unsafe { counting(user) }.record(|c| c.closes += 1);
}

/// Also the release of other delegates (the HTTP one) that pass a `Counting` as `user`.
pub unsafe extern "C" fn on_release(user: *mut c_void) {
    unsafe { counting(user) }.record(|c| c.releases += 1);
}

pub const COUNTING_VTABLE: WsEventDelegateVTable = WsEventDelegateVTable {
    struct_size: std::mem::size_of::<WsEventDelegateVTable>() as u32,
    onOpen: Some(on_open),
    onMessage: None,
    onError: Some(on_error),
    onClose: Some(on_close),
    release: Some(on_release),
};
