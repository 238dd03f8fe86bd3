//! The hand-over of an accepted socket whose upgrade request another task answered — what an
//! HTTP server does with an upgrade — over real sockets, plain and TLS.
//!
//! The task below reads the request in small reads and stops at the end of the head, as an HTTP
//! connection would: the frames the client sent in the same write are then partly in that last
//! read (the leftover the session is given) and partly still in the socket or, over TLS,
//! decrypted inside the TLS session, where no readiness edge will announce them. Every frame must
//! still be delivered, in order, and the connection must then work as any other.

use super::admission::Admission;
use super::connection::{Common, Connection, OpenInfo, Writer, request_head_kept};
use super::delegate::Delegate;
use super::event::{Event, EventHandler, EventKind};
use super::group::ConnectionGroup;
use super::session::Session;
use crate::config::{ClientTls, ConnectionSettings, ServerTls};
use crate::protocol::handshake::{Accepted, ServerHandshake, ServerStep};
use crate::protocol::{Outgoing, Role};
use crate::runtime::{self, Context, Flow, LoopShared, Readiness, Task};
use crate::transport::tls::tests::test_certs as certs;
use crate::transport::{Transport, tls};
use parking_lot::{Condvar, Mutex};
use std::any::Any;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::sync_channel;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(10);

/// An HTTP connection's part, cut down: read the upgrade request, answer it, hand over.
struct Upgrading {
    id: u64,
    writer: Option<Writer>,
    handshake: ServerHandshake,
    /// Bytes per read.
    chunk: usize,
    peer: SocketAddr,
    settings: Arc<ConnectionSettings>,
    delegate: Arc<Delegate>,
    group: Arc<ConnectionGroup>,
    admission: Option<Admission>,
}

impl Upgrading {
    fn read(&mut self, cx: &mut Context) -> Flow {
        let mut buffer = vec![0u8; self.chunk];
        loop {
            let Some(transport) = self.writer.as_mut().and_then(|w| w.transport.as_mut()) else {
                return Flow::Finished;
            };
            let n = match transport.read(&mut buffer) {
                Ok(0) => return Flow::Finished,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Flow::Continue,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => panic!("read failed during the upgrade: {e}"),
            };
            let mut handshake = std::mem::take(&mut self.handshake);
            let settings = self.settings.clone();
            match handshake.feed(&buffer[..n], &settings.protocols) {
                ServerStep::NeedMore => {}
                ServerStep::Refuse(refused) => panic!("upgrade refused: {}", refused.reason),
                ServerStep::Accept(accepted) => return self.hand_over(cx, accepted),
            }
            self.handshake = handshake;
        }
    }

    /// The documented sequence: 101 into the writer, socket out of this task's registration,
    /// a connection over the same writer and id, a session queued on this loop.
    fn hand_over(&mut self, cx: &mut Context, accepted: Accepted<'_>) -> Flow {
        let mut writer = self.writer.take().expect("handed over once");
        writer.write_raw(&accepted.answer.to_bytes());
        let transport = writer.transport.as_mut().expect("a socket");
        transport.deregister(cx.registry).expect("deregister");
        let common = Common::new(
            Role::Server,
            self.settings.clone(),
            self.delegate.clone(),
            self.group.clone(),
            cx.event_loop.clone(),
        );
        let connection = Connection::with_writer(self.id, common, writer);
        connection.set_peer_address(self.peer);
        connection.set_opened(OpenInfo::new(
            accepted.answer.protocol,
            accepted.target,
            Some(accepted.head),
        ));
        self.group.join();
        let session = Session::upgraded(
            connection,
            accepted.leftover.to_vec(),
            self.admission.take(),
        );
        // On this same loop: runs in this turn, after this task (and its registration) is gone.
        cx.place(cx.event_loop, self.id, session);
        Flow::Finished
    }
}

impl Task for Upgrading {
    fn start(&mut self, cx: &mut Context) -> Flow {
        let token = runtime::token(self.id);
        let transport = self.writer.as_mut().unwrap().transport.as_mut().unwrap();
        transport.register(cx.registry, token).expect("register");
        self.read(cx)
    }

    fn ready(&mut self, cx: &mut Context, readiness: Readiness) -> Flow {
        if readiness.writable {
            self.writer.as_mut().unwrap().flush();
        }
        self.read(cx)
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

/// Path, query, Host header, and a missing header's errno, as read inside onOpen.
type RequestSeen = (String, String, Vec<u8>, i32);

/// Echoes messages; records events, and in onOpen what the connection says of its request.
#[derive(Default)]
struct Recorder {
    seen: Mutex<Vec<(EventKind, Vec<u8>)>>,
    in_open: Mutex<Option<RequestSeen>>,
    connection: Mutex<Option<Arc<Connection>>>,
    changed: Condvar,
}

impl EventHandler for Arc<Recorder> {
    fn handle(&self, event: &Event<'_>) {
        let connection = event.connection;
        if event.kind == EventKind::Open {
            *self.in_open.lock() = Some((
                connection.request_path().to_string(),
                connection.request_query().to_string(),
                connection.request_header("HOST").unwrap_or_default(),
                connection
                    .request_header("x-none")
                    .err()
                    .map_or(0, |e| e.errno),
            ));
            *self.connection.lock() = Some(connection.clone());
        }
        if event.kind == EventKind::Message {
            connection.send(Outgoing::Text, event.data).unwrap();
        }
        self.seen.lock().push((event.kind, event.data.to_vec()));
        self.changed.notify_all();
    }
}

impl Recorder {
    fn wait_for(&self, what: &str, done: impl Fn(&[(EventKind, Vec<u8>)]) -> bool) {
        let deadline = Instant::now() + WAIT;
        let mut seen = self.seen.lock();
        while !done(&seen) {
            if self.changed.wait_until(&mut seen, deadline).timed_out() {
                panic!("timed out waiting for {what}; seen {seen:?}");
            }
        }
    }
}

trait Stream: Read + Write {}
impl<T: Read + Write> Stream for T {}

fn masked_text(text: &[u8]) -> Vec<u8> {
    assert!(text.len() < 126);
    let mask = [7u8, 1, 9, 3];
    let mut frame = vec![0x81, 0x80 | text.len() as u8];
    frame.extend_from_slice(&mask);
    frame.extend(text.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    frame
}

/// Reads one small server frame: (opcode, payload).
fn read_frame(stream: &mut dyn Stream) -> (u8, Vec<u8>) {
    let mut head = [0u8; 2];
    stream.read_exact(&mut head).unwrap();
    let mut payload = vec![0u8; usize::from(head[1] & 0x7f)];
    stream.read_exact(&mut payload).unwrap();
    (head[0] & 0x0f, payload)
}

/// Runs `f` on the loop and waits for it: everything the loop was doing when this was called
/// (the drive that finished a session, say) is over when it returns.
fn on_loop(event_loop: &LoopShared, f: impl FnOnce() + Send + 'static) {
    let (done, finished) = sync_channel(1);
    event_loop.submit(move |_| {
        f();
        let _ = done.send(());
    });
    finished
        .recv_timeout(WAIT)
        .expect("the loop ran the command");
}

/// One hand-over: the request and three frames in one write, read by the upgrading task
/// `chunk` bytes at a time; then echo, then a closing handshake. `keep`: the settings keep the
/// request head after onOpen.
fn hand_over_once(tls_config: Option<&Arc<rustls::ServerConfig>>, chunk: usize, keep: bool) {
    let what = format!("tls {}, reads of {chunk}", tls_config.is_some());
    let settings = ConnectionSettings {
        keep_request_headers: keep,
        ..ConnectionSettings::default()
    };
    let recorder = Arc::new(Recorder::default());
    let delegate = Arc::new(Delegate::new(Box::new(recorder.clone())));
    let group = Arc::new(ConnectionGroup::default());
    let cap = Arc::new(AtomicUsize::new(0));
    let admission = Admission::try_acquire(&cap, 1).unwrap();

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let plain = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    plain.set_read_timeout(Some(WAIT)).unwrap();
    let (accepted, peer) = listener.accept().unwrap();
    accepted.set_nonblocking(true).unwrap();
    accepted.set_nodelay(true).unwrap();
    let transport =
        Transport::accepted(mio::net::TcpStream::from_std(accepted), tls_config).unwrap();
    let event_loop = runtime::current().unwrap().pick_loop();
    let id = event_loop.reserve();
    let task = Upgrading {
        id,
        writer: Some(Writer::new(Some(transport))),
        handshake: ServerHandshake::default(),
        chunk,
        peer,
        settings: Arc::new(settings),
        delegate,
        group: group.clone(),
        admission: Some(admission),
    };
    event_loop.submit(move |tasks| tasks.adopt(id, Box::new(task)));

    let mut client: Box<dyn Stream> = match tls_config {
        None => Box::new(plain),
        Some(_) => {
            let config = tls::client_config(&ClientTls {
                ca_files: vec![certs().join("RootCA.pem")],
                ..ClientTls::default()
            })
            .unwrap();
            let name = tls::server_name("localhost").unwrap();
            let session = rustls::ClientConnection::new(config, name).unwrap();
            Box::new(rustls::StreamOwned::new(session, plain))
        }
    };
    let mut bytes = b"GET /hand/over?x=1&y HTTP/1.1\r\nHost: example.test:8080\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n".to_vec();
    let texts: [&[u8]; 3] = [b"one", b"two: a little longer", b"three"];
    for text in texts {
        bytes.extend_from_slice(&masked_text(text));
    }
    client.write_all(&bytes).unwrap();
    client.flush().unwrap();

    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        client.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101 "), "{what}: {head:?}");
    for text in texts {
        assert_eq!(read_frame(&mut *client), (0x1, text.to_vec()), "{what}");
    }
    client.write_all(&masked_text(b"after")).unwrap();
    client.flush().unwrap();
    assert_eq!(read_frame(&mut *client), (0x1, b"after".to_vec()), "{what}");

    let in_open = recorder.in_open.lock().clone().unwrap();
    assert_eq!(
        in_open,
        (
            "/hand/over".to_string(),
            "x=1&y".to_string(),
            b"example.test:8080".to_vec(),
            libc::ENOENT
        ),
        "{what}: the request as seen in onOpen"
    );
    let connection = recorder.connection.lock().clone().unwrap();
    assert_eq!(
        connection.id, id,
        "{what}: the id (poll token) carried over"
    );
    assert_eq!(connection.peer_address(), Some(peer));
    match keep {
        false => assert_eq!(
            connection.request_header("host").unwrap_err().errno,
            libc::ENODATA,
            "{what}: the head is dropped after onOpen"
        ),
        true => assert_eq!(
            connection.request_header("host").unwrap(),
            b"example.test:8080",
            "{what}: the head is kept"
        ),
    }
    assert_eq!(
        connection.request_path(),
        "/hand/over",
        "{what}: the path stays"
    );
    assert_eq!(cap.load(Ordering::Acquire), 1, "{what}: the place is taken");

    // The client closes; the server answers and ends TCP.
    let mut close = vec![0x88, 0x82, 0, 0, 0, 0];
    close.extend_from_slice(&1000u16.to_be_bytes());
    client.write_all(&close).unwrap();
    client.flush().unwrap();
    let (opcode, payload) = read_frame(&mut *client);
    assert_eq!((opcode, &payload[..]), (0x8, &1000u16.to_be_bytes()[..]));
    let mut rest = Vec::new();
    let _ = client.read_to_end(&mut rest);
    assert!(rest.is_empty(), "{what}: nothing after the close frame");
    recorder.wait_for("onClose", |seen| {
        seen.iter().any(|(kind, _)| *kind == EventKind::Close)
    });
    let kinds: Vec<EventKind> = recorder.seen.lock().iter().map(|(k, _)| *k).collect();
    assert_eq!(kinds.first(), Some(&EventKind::Open), "{what}: {kinds:?}");
    assert_eq!(
        kinds.iter().filter(|k| **k == EventKind::Message).count(),
        4
    );
    // The socket is closed; once the loop is past the drive that closed it, the session (and
    // its admission) is gone.
    on_loop(&event_loop, || {});
    assert_eq!(
        cap.load(Ordering::Acquire),
        0,
        "{what}: the place is given back"
    );
    assert!(
        group.wait_empty(Instant::now()),
        "{what}: the group is empty"
    );
    // The last references go: a kept head goes with the connection.
    let address = Arc::as_ptr(&connection).addr();
    drop(connection);
    recorder.connection.lock().take();
    assert!(
        !request_head_kept(address),
        "{what}: the head outlived its connection"
    );
}

#[test]
fn an_upgraded_socket_delivers_the_frames_that_came_with_the_request() {
    let _serial = super::tests::RUNTIME.lock();
    runtime::initialize(1, 64 * 1024, None).unwrap();
    for chunk in [16, 100, 64 * 1024] {
        hand_over_once(None, chunk, chunk == 100);
    }
    super::registry::finalize().unwrap();
}

#[test]
fn an_upgraded_tls_socket_delivers_what_the_tls_session_already_decrypted() {
    let _serial = super::tests::RUNTIME.lock();
    runtime::initialize(1, 64 * 1024, None).unwrap();
    let dir = certs();
    let config = tls::server_config(&ServerTls {
        cert_file: dir.join("fullchain.pem"),
        key_file: dir.join("privkey.pem"),
        ..ServerTls::default()
    })
    .unwrap();
    for chunk in [16, 100, 64 * 1024] {
        hand_over_once(Some(&config), chunk, false);
    }
    super::registry::finalize().unwrap();
}
