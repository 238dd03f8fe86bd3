//! The logger as firmware uses it: a hook that receives every line, the level filter, and
//! lines whose text is not UTF-8.

mod common;
use common::*;
use oasisnet::ffi::*;

#[test]
fn hook_level_and_any_bytes() {
    capture_logs(); // hook installed, level info
    let tag = c"cam";
    unsafe { oasis_log_message(2, tag.as_ptr(), c"disk almost full".as_ptr()) };
    assert!(logged("[cam] disk almost full"));
    // Bytes that are not UTF-8 still make a line (replaced), never an error.
    let bytes = b"sensor \xff\xfe ok\0";
    unsafe { oasis_log_message(1, tag.as_ptr(), bytes.as_ptr().cast()) };
    assert!(logged("sensor \u{fffd}\u{fffd} ok"));
    // Above the level: dropped.
    assert_eq!(oasis_log_set_level(2), 0);
    unsafe { oasis_log_message(4, tag.as_ptr(), c"debug detail".as_ptr()) };
    assert!(!logged("debug detail"));
    assert_eq!(oasis_log_set_level(9), -1);
    assert_eq!(errno(), libc::EINVAL);
    assert_eq!(oasis_log_get_level(), 2);
}

// ---- a hook that calls the library ------------------------------------------------------------

use std::ffi::{CStr, c_char, c_void};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

static SERVER: AtomicUsize = AtomicUsize::new(0);
static PORT_FROM_HOOK: AtomicI32 = AtomicI32::new(0);
static INIT_FROM_HOOK: AtomicI32 = AtomicI32::new(1);
static SEQUENCE: AtomicUsize = AtomicUsize::new(1);
static HOOK_RETURNED_AT: AtomicUsize = AtomicUsize::new(0);
static SET_HOOK_RETURNED_AT: AtomicUsize = AtomicUsize::new(0);
static INNER_LINE_REACHED_HOOK: AtomicBool = AtomicBool::new(false);
static SWAP_REQUEST: parking_lot::Mutex<Option<mpsc::Sender<()>>> = parking_lot::Mutex::new(None);
static SWAP_DONE: parking_lot::Mutex<Option<mpsc::Receiver<()>>> = parking_lot::Mutex::new(None);

unsafe extern "C" fn calling_hook(_user: *mut c_void, _level: i32, line: *const c_char) {
    let line = unsafe { CStr::from_ptr(line) }.to_string_lossy();
    if line.contains("from inside the hook") {
        INNER_LINE_REACHED_HOOK.store(true, Ordering::SeqCst);
        return;
    }
    if line.contains("initialized with") {
        // Needs the runtime's lock, which initialize held while logging this line.
        INIT_FROM_HOOK.store(
            unsafe { oasis_initialize(std::ptr::null(), 0) },
            Ordering::SeqCst,
        );
    }
    if line.contains("listening on") {
        // Needs the server's lock, which start held while logging this line.
        let server = SERVER.load(Ordering::SeqCst) as *mut WsServer;
        PORT_FROM_HOOK.store(wsServerPort(server), Ordering::SeqCst);
    }
    if line.contains("swap the hook now") {
        // Another thread replaces the hook while this one runs it: its oasis_log_set_hook must
        // return only after this call of the hook has returned.
        let request = SWAP_REQUEST.lock().take().unwrap();
        let entering = SWAP_DONE.lock().take().unwrap();
        request.send(()).unwrap();
        entering.recv_timeout(Duration::from_secs(5)).unwrap();
        // Give the other thread time to get into oasis_log_set_hook (this only makes the
        // overlap likely; the order asserted below holds whatever the timing).
        std::thread::sleep(Duration::from_millis(100));
        unsafe { oasis_log_message(2, c"hook".as_ptr(), c"from inside the hook".as_ptr()) };
        HOOK_RETURNED_AT.store(SEQUENCE.fetch_add(1, Ordering::SeqCst), Ordering::SeqCst);
        return;
    }
    // Logging through the library from inside the hook: goes to stderr, not back in here.
    unsafe { oasis_log_message(2, c"hook".as_ptr(), c"from inside the hook".as_ptr()) };
}

#[test]
fn a_hook_may_call_any_library_function() {
    oasis_log_set_hook(Some(calling_hook), std::ptr::null_mut());
    let p = params(&[("log-level", "info")]);
    assert_eq!(
        unsafe { oasis_initialize(p.pairs.as_ptr(), p.pairs.len()) },
        0
    );
    assert_eq!(
        INIT_FROM_HOOK.load(Ordering::SeqCst),
        0,
        "initialize from the hook"
    );

    let recorder = Recorder::new(false);
    let p = params(&[("port", "0"), ("bind-address", "127.0.0.1")]);
    let (vtable, user) = delegate(&recorder);
    let server = unsafe { createWsServer(p.pairs.as_ptr(), p.pairs.len(), &vtable, user) };
    assert!(!server.is_null());
    SERVER.store(server as usize, Ordering::SeqCst);
    assert_eq!(startWsServer(server), 0);
    let port = wsServerPort(server);
    assert!(port > 0);
    assert_eq!(
        PORT_FROM_HOOK.load(Ordering::SeqCst),
        port,
        "wsServerPort from the hook"
    );

    let (request_tx, request_rx) = mpsc::channel();
    let (entering_tx, entering_rx) = mpsc::channel();
    *SWAP_REQUEST.lock() = Some(request_tx);
    *SWAP_DONE.lock() = Some(entering_rx);
    let swapper = std::thread::spawn(move || {
        request_rx.recv().unwrap();
        entering_tx.send(()).unwrap();
        oasis_log_set_hook(Some(calling_hook), std::ptr::null_mut());
        SET_HOOK_RETURNED_AT.store(SEQUENCE.fetch_add(1, Ordering::SeqCst), Ordering::SeqCst);
    });
    // The hook logs through the library while the swapper waits in oasis_log_set_hook: no
    // deadlock, and the swap returns after the hook.
    unsafe { oasis_log_message(3, c"test".as_ptr(), c"swap the hook now".as_ptr()) };
    swapper.join().unwrap();
    let (hook, swap) = (
        HOOK_RETURNED_AT.load(Ordering::SeqCst),
        SET_HOOK_RETURNED_AT.load(Ordering::SeqCst),
    );
    assert!(
        hook > 0 && swap > hook,
        "oasis_log_set_hook returned while the previous hook still ran (hook {hook}, swap {swap})"
    );
    assert!(
        !INNER_LINE_REACHED_HOOK.load(Ordering::SeqCst),
        "a line logged from inside the hook came back into it"
    );
    assert_eq!(destroyWsServer(server), 0);
    oasis_log_set_hook(None, std::ptr::null_mut());
}
