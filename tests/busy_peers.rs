//! A peer that keeps its socket full — it sends faster than the server's callbacks handle its
//! messages, so every read the server makes comes back full — has its share of each turn of
//! the event loop, not all of it: the server still answers its pings, and still serves the
//! other connections of the loop, while the stream goes on.

mod common;
use common::*;
use oasisnet::ffi::*;
use std::ffi::c_void;
use std::io::Write;
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Messages the server's callback handled, and a signal for waiting on the count.
static HANDLED: parking_lot::Mutex<usize> = parking_lot::Mutex::new(0);
static HANDLED_MORE: parking_lot::Condvar = parking_lot::Condvar::new();
/// Messages the callback had handled when it echoed the last "echo" message.
static HANDLED_BEFORE_ECHO: AtomicUsize = AtomicUsize::new(0);

/// A streamer gives up after this long (then the test fails: the server did not do what it
/// waits for while the stream went on).
const STREAM_CAP: Duration = Duration::from_secs(20);

/// The messages a streamer writes before its ping.
const PING_AFTER: usize = 200_000;

/// The most messages of a stream the server may handle while an answer waits: what the
/// sockets held before the ping (some MB) and a turn's reads or two, with room to spare. A loop that stays in one connection's read until the
/// stream pauses handles millions (it took the peer stopping, 9 to 18 million, when this test
/// was written).
const MOST_HANDLED_MEANWHILE: usize = 2_000_000;

/// The most messages of a stream the server may handle while another connection's request
/// waits. A turn of the streaming connection ends after 16 reads, or once 2 ms passed since its
/// second read began, and it is read once a turn (docs/DESIGN-NOTES.md). A full read here is
/// 512 KiB, 13,797 of these messages, which take the callback 14 ms at least: so a turn reads
/// it twice, and the request waits for the rest of one such turn and at most one more (three
/// reads, 41,391 messages, in most runs). The bound is ten reads: the test thread may be held
/// between counting and sending on a loaded machine. (16 reads a turn, read twice a turn,
/// made it 385,000 in a test.)
const MOST_HANDLED_WHILE_ANOTHER_WAITS: usize = 10 * 13_797;

/// About a microsecond of work a message, as a real callback has: slower than the peer sends.
/// A message that starts with "echo" is echoed instead.
unsafe extern "C" fn slow_handler(_user: *mut c_void, event: *mut WsEvent) {
    let mut data = std::ptr::null();
    let n = unsafe { wsEventData(event, &mut data) };
    if n >= 4 && unsafe { std::slice::from_raw_parts(data, 4) } == b"echo" {
        HANDLED_BEFORE_ECHO.store(*HANDLED.lock(), Ordering::SeqCst);
        unsafe { wsSendBinary(wsEventConnection(event), data.cast(), n as usize) };
        return;
    }
    let start = Instant::now();
    while start.elapsed() < Duration::from_micros(1) {
        std::hint::spin_loop();
    }
    *HANDLED.lock() += 1;
    HANDLED_MORE.notify_all();
}

/// Waits until the server has handled `count` messages in all (the stream is under way).
fn wait_until_handled(count: usize) {
    let deadline = Instant::now() + WAIT;
    let mut handled = HANDLED.lock();
    while *handled < count {
        let timed_out = HANDLED_MORE.wait_until(&mut handled, deadline).timed_out();
        assert!(!timed_out, "only {} messages handled", *handled);
    }
}

/// Writes 32-byte binary messages on `stream` until `stop` (true) or [`STREAM_CAP`] (false);
/// `ping`, if given, goes out once that many messages were written: (count, payload).
fn stream(
    mut stream: TcpStream,
    stop: Arc<AtomicBool>,
    mut ping: Option<(usize, Vec<u8>)>,
) -> JoinHandle<bool> {
    std::thread::spawn(move || {
        let one = client_frame(0x82, &[b'x'; 32]);
        let chunk = one.repeat(8192);
        let start = Instant::now();
        let mut written = 0;
        while start.elapsed() < STREAM_CAP {
            if stop.load(Ordering::Relaxed) {
                return true;
            }
            if stream.write_all(&chunk).is_err() {
                return false;
            }
            written += 8192;
            if let Some((_, payload)) = ping.take_if(|(after, _)| written >= *after) {
                stream.write_all(&client_frame(0x89, &payload)).unwrap();
            }
        }
        false
    })
}

fn server() -> (*mut WsServer, u16) {
    *HANDLED.lock() = 0;
    let vtable = message_vtable(None, Some(slow_handler));
    start_server_with(&vtable, std::ptr::null_mut(), &[])
}

#[test]
fn a_ping_in_the_middle_of_a_stream_is_answered_while_the_stream_goes_on() {
    init();
    let (server, port) = server();
    let mut peer = RawClient::connect(port);
    peer.stream.set_read_timeout(Some(STREAM_CAP * 2)).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let ping = Some((PING_AFTER, b"still there?".to_vec()));
    let streamer = stream(peer.stream.try_clone().unwrap(), stop.clone(), ping);
    // (Only "echo" messages are answered: the first frame back is the pong.)
    let pong = peer.read_frame();
    let handled = *HANDLED.lock();
    stop.store(true, Ordering::Relaxed);
    let streaming = streamer.join().unwrap();
    assert_eq!(pong, Some((0x8a, b"still there?".to_vec())));
    assert!(streaming, "the pong came only once the stream had stopped");
    // What was in the sockets before the ping, and a turn's reads or two: not the stream.
    assert!(
        handled < PING_AFTER + MOST_HANDLED_MEANWHILE,
        "{} messages handled after the ping, before its pong",
        handled - PING_AFTER
    );
    drop(peer);
    destroyWsServer(server);
    oasis_finalize();
}

#[test]
fn a_stream_on_one_connection_does_not_stall_the_others() {
    init();
    let (server, port) = server();
    let busy = RawClient::connect(port);
    let mut other = RawClient::connect(port);
    other.stream.set_read_timeout(Some(STREAM_CAP * 2)).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let streamer = stream(busy.stream.try_clone().unwrap(), stop.clone(), None);
    wait_until_handled(100_000);
    let before = *HANDLED.lock();
    other.send_frame(0x82, b"echo from another connection");
    let echo = other.read_frame();
    // (Counted by the callback: the test thread may wake well after the echo went out.)
    let meanwhile = HANDLED_BEFORE_ECHO
        .load(Ordering::SeqCst)
        .saturating_sub(before);
    stop.store(true, Ordering::Relaxed);
    let streaming = streamer.join().unwrap();
    assert_eq!(echo, Some((0x82, b"echo from another connection".to_vec())));
    assert!(
        streaming,
        "the other connection was answered only once the stream had stopped"
    );
    assert!(
        meanwhile < MOST_HANDLED_WHILE_ANOTHER_WAITS,
        "{meanwhile} messages of the stream handled while the other connection waited"
    );
    drop(busy);
    destroyWsServer(server);
    oasis_finalize();
}
