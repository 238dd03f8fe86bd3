//! Helpers for tests that drive the C ABI from Rust: a recording delegate, parameter lists,
//! and bounded waits on recorded events.
#![allow(dead_code)]

pub mod counting;
pub mod http;
pub mod http_server;
pub mod rng;

use oasisnet::ffi::*;
use parking_lot::{Condvar, Mutex};
use std::ffi::{CStr, CString, c_void};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const WAIT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    Open,
    Message(ws_message_t, Vec<u8>),
    Error(i32),
    Close(i32, Vec<u8>),
}

/// What happens in a delegate, plus an optional reaction run inside onMessage.
pub struct Recorder {
    pub events: Mutex<Vec<(usize, Seen)>>,
    changed: Condvar,
    pub released: Mutex<bool>,
    pub echo: bool,
}

impl Recorder {
    pub fn new(echo: bool) -> Arc<Recorder> {
        Arc::new(Recorder {
            events: Mutex::new(Vec::new()),
            changed: Condvar::new(),
            released: Mutex::new(false),
            echo,
        })
    }

    fn push(&self, connection: usize, seen: Seen) {
        self.events.lock().push((connection, seen));
        self.changed.notify_all();
    }

    /// Waits until `pred` holds for the recorded events; panics after WAIT.
    pub fn wait_for(
        &self,
        what: &str,
        pred: impl Fn(&[(usize, Seen)]) -> bool,
    ) -> Vec<(usize, Seen)> {
        let deadline = Instant::now() + WAIT;
        let mut events = self.events.lock();
        while !pred(&events) {
            if self.changed.wait_until(&mut events, deadline).timed_out() {
                panic!("timed out waiting for {what}; seen: {:?}", *events);
            }
        }
        events.clone()
    }

    /// Waits until `n` messages were received; panics after WAIT.
    pub fn wait_messages(&self, n: usize) -> Vec<(usize, Seen)> {
        self.wait_for(&format!("{n} messages"), |e| {
            e.iter()
                .filter(|(_, s)| matches!(s, Seen::Message(..)))
                .count()
                >= n
        })
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.events.lock().iter().map(|(_, s)| s.clone()).collect()
    }

    pub fn count(&self, pred: impl Fn(&Seen) -> bool) -> usize {
        self.events.lock().iter().filter(|(_, s)| pred(s)).count()
    }
}

unsafe fn recorder<'a>(user: *mut c_void) -> &'a Recorder {
    unsafe { &*(user as *const Recorder) }
}

unsafe extern "C" fn on_open(user: *mut c_void, event: *mut WsEvent) {
    let r = unsafe { recorder(user) };
    r.push(wsEventConnection(event) as usize, Seen::Open);
}

unsafe extern "C" fn on_message(user: *mut c_void, event: *mut WsEvent) {
    let r = unsafe { recorder(user) };
    let mut data = std::ptr::null();
    let n = unsafe { wsEventData(event, &mut data) };
    let bytes = if n > 0 {
        unsafe { std::slice::from_raw_parts(data, n as usize) }.to_vec()
    } else {
        Vec::new()
    };
    let kind = wsEventMessageType(event);
    let connection = wsEventConnection(event);
    if r.echo {
        match kind {
            ws_message_t::kWsMessageText => {
                unsafe { wsSendTextLength(connection, bytes.as_ptr().cast(), bytes.len()) };
            }
            ws_message_t::kWsMessageBinary => {
                unsafe { wsSendBinary(connection, bytes.as_ptr().cast(), bytes.len()) };
            }
            _ => {}
        }
    }
    r.push(connection as usize, Seen::Message(kind, bytes));
}

unsafe extern "C" fn on_error(user: *mut c_void, event: *mut WsEvent) {
    let r = unsafe { recorder(user) };
    r.push(
        wsEventConnection(event) as usize,
        Seen::Error(wsEventStatusCode(event)),
    );
}

unsafe extern "C" fn on_close(user: *mut c_void, event: *mut WsEvent) {
    let r = unsafe { recorder(user) };
    let mut data = std::ptr::null();
    let n = unsafe { wsEventData(event, &mut data) };
    let reason = if n > 0 {
        unsafe { std::slice::from_raw_parts(data, n as usize) }.to_vec()
    } else {
        Vec::new()
    };
    r.push(
        wsEventConnection(event) as usize,
        Seen::Close(wsEventStatusCode(event), reason),
    );
}

unsafe extern "C" fn release(user: *mut c_void) {
    let r = unsafe { Arc::from_raw(user as *const Recorder) };
    // Set under the events lock that waiters check their condition under: no lost wake-up.
    let _events = r.events.lock();
    *r.released.lock() = true;
    r.changed.notify_all();
}

/// A vtable over `recorder`; the library holds one reference until `release`.
pub fn delegate(recorder: &Arc<Recorder>) -> (WsEventDelegateVTable, *mut c_void) {
    let vtable = WsEventDelegateVTable {
        struct_size: std::mem::size_of::<WsEventDelegateVTable>() as u32,
        onOpen: Some(on_open),
        onMessage: Some(on_message),
        onError: Some(on_error),
        onClose: Some(on_close),
        release: Some(release),
    };
    (vtable, Arc::into_raw(recorder.clone()) as *mut c_void)
}

/// Owned C strings for a key-value list.
pub struct Params {
    _strings: Vec<CString>,
    pub pairs: Vec<OasisKeyValue>,
}

pub fn params(list: &[(&str, &str)]) -> Params {
    let mut strings = Vec::new();
    let mut pairs = Vec::new();
    for (k, v) in list {
        let k = CString::new(*k).unwrap();
        let v = CString::new(*v).unwrap();
        pairs.push(OasisKeyValue {
            key: k.as_ptr(),
            value: v.as_ptr(),
        });
        strings.push(k);
        strings.push(v);
    }
    Params {
        _strings: strings,
        pairs,
    }
}

pub fn init() {
    // Firmware is C: SIGPIPE keeps its default action (terminate). Rust test binaries ignore it,
    // which would hide a write that raises it; restore the default so such a write kills the test.
    // SAFETY: setting a signal's disposition to its default.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let p = params(&[("log-level", "info")]);
    assert_eq!(
        unsafe { oasis_initialize(p.pairs.as_ptr(), p.pairs.len()) },
        0
    );
}

pub fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

pub fn last_error() -> String {
    unsafe { CStr::from_ptr(oasis_last_error()) }
        .to_string_lossy()
        .into_owned()
}

/// A started server on 127.0.0.1 with an ephemeral port; returns (handle, port).
pub fn start_server(recorder: &Arc<Recorder>, extra: &[(&str, &str)]) -> (*mut WsServer, u16) {
    let (vtable, user) = delegate(recorder);
    start_server_with(&vtable, user, extra)
}

/// Creates and starts a server on 127.0.0.1 and a free port, with `vtable`, `user` and the
/// `extra` parameters: (server, port).
pub fn start_server_with(
    vtable: &WsEventDelegateVTable,
    user: *mut c_void,
    extra: &[(&str, &str)],
) -> (*mut WsServer, u16) {
    let mut list = vec![("port", "0"), ("bind-address", "127.0.0.1")];
    list.extend_from_slice(extra);
    let p = params(&list);
    let server = unsafe { createWsServer(p.pairs.as_ptr(), p.pairs.len(), vtable, user) };
    assert!(!server.is_null(), "createWsServer: {}", last_error());
    assert_eq!(startWsServer(server), 0, "startWsServer: {}", last_error());
    let port = wsServerPort(server);
    assert!(port > 0);
    (server, port as u16)
}

/// A delegate table with `on_open` and `on_message` and no other callback.
pub fn message_vtable(
    on_open: WsEventCallback,
    on_message: WsEventCallback,
) -> WsEventDelegateVTable {
    WsEventDelegateVTable {
        struct_size: std::mem::size_of::<WsEventDelegateVTable>() as u32,
        onOpen: on_open,
        onMessage: on_message,
        onError: None,
        onClose: None,
        release: None,
    }
}

pub fn open(
    url: &str,
    recorder: &Arc<Recorder>,
    extra: &[(&str, &str)],
    timeout_ms: i32,
) -> *mut WsConnection {
    let p = params(extra);
    let (vtable, user) = delegate(recorder);
    let url = CString::new(url).unwrap();
    unsafe {
        wsOpenConnection(
            url.as_ptr(),
            p.pairs.as_ptr(),
            p.pairs.len(),
            &vtable,
            user,
            timeout_ms,
        )
    }
}

pub fn send_text(connection: *mut WsConnection, text: &str) -> i32 {
    unsafe { wsSendTextLength(connection, text.as_ptr().cast(), text.len()) }
}

pub fn is_close(s: &Seen) -> bool {
    matches!(s, Seen::Close(..))
}

/// A hand-driven client socket, for sending what a well-behaved library never would: over
/// plain TCP, or over TLS (`connect_tls`).
pub struct RawClient<S = std::net::TcpStream> {
    pub stream: S,
}

/// Asks for a receive buffer of `bytes` on `socket` (the kernel doubles it, and stops tuning
/// it).
pub fn set_receive_buffer(socket: &std::net::TcpStream, bytes: i32) {
    use std::os::fd::AsRawFd;
    // SAFETY: a valid descriptor, and a pointer to an int of the size given.
    let set = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&raw const bytes).cast(),
            size_of::<i32>() as libc::socklen_t,
        )
    };
    assert_eq!(set, 0, "setsockopt SO_RCVBUF");
}

/// A TLS client over `tcp`, verifying the server's certificate for "localhost" against
/// RootCA.pem; the handshake happens with the first write.
pub fn tls_client(
    tcp: std::net::TcpStream,
) -> rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for ca in rustls::pki_types::CertificateDer::pem_file_iter(cert("RootCA.pem")).unwrap() {
        roots.add(ca.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let session =
        rustls::ClientConnection::new(Arc::new(config), "localhost".try_into().unwrap()).unwrap();
    rustls::StreamOwned::new(session, tcp)
}

impl RawClient {
    /// Asks for a receive buffer of `bytes` (see [`set_receive_buffer`]).
    pub fn set_receive_buffer(&self, bytes: i32) {
        set_receive_buffer(&self.stream, bytes);
    }

    /// Connects and completes the upgrade; panics if the server does not answer 101.
    pub fn connect(port: u16) -> RawClient {
        let stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        RawClient::upgrade(stream)
    }
}

impl RawClient<rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream>> {
    /// As [`RawClient::connect`], over TLS ([`tls_client`]).
    pub fn connect_tls(port: u16) -> Self {
        let tcp = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        tcp.set_read_timeout(Some(WAIT)).unwrap();
        RawClient::upgrade(tls_client(tcp))
    }
}

impl<S: std::io::Read + std::io::Write> RawClient<S> {
    /// Completes the upgrade on a connected stream; panics if the server does not answer 101.
    pub fn upgrade(mut stream: S) -> RawClient<S> {
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
            .unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            assert_eq!(
                stream.read(&mut byte).unwrap(),
                1,
                "server closed during handshake"
            );
            head.push(byte[0]);
        }
        assert!(
            head.starts_with(b"HTTP/1.1 101"),
            "{}",
            String::from_utf8_lossy(&head)
        );
        RawClient { stream }
    }

    /// Sends one masked frame with the given first byte (FIN/RSV/opcode).
    pub fn send_frame(&mut self, first: u8, payload: &[u8]) {
        let frame = client_frame(first, payload);
        self.stream.write_all(&frame).unwrap();
    }

    /// Reads one unmasked server frame: (first byte, payload). None on EOF.
    pub fn read_frame(&mut self) -> Option<(u8, Vec<u8>)> {
        let mut head = [0u8; 2];
        self.stream.read_exact(&mut head).ok()?;
        let mut len = (head[1] & 0x7f) as usize;
        if len == 126 {
            let mut b = [0u8; 2];
            self.stream.read_exact(&mut b).ok()?;
            len = u16::from_be_bytes(b) as usize;
        } else if len == 127 {
            let mut b = [0u8; 8];
            self.stream.read_exact(&mut b).ok()?;
            len = u64::from_be_bytes(b) as usize;
        }
        let mut payload = vec![0u8; len];
        self.stream.read_exact(&mut payload).ok()?;
        Some((head[0], payload))
    }

    /// Reads frames until a close frame; returns its code (None when EOF came first).
    pub fn read_close_code(&mut self) -> Option<u16> {
        loop {
            let (first, payload) = self.read_frame()?;
            if first & 0x0f == 0x8 {
                return Some(if payload.len() >= 2 {
                    u16::from_be_bytes([payload[0], payload[1]])
                } else {
                    1005
                });
            }
        }
    }

    /// True when the server closes the TCP connection (EOF) within WAIT.
    pub fn sees_eof(&mut self) -> bool {
        let mut buf = [0u8; 4096];
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
                Err(_) => return false,
            }
        }
    }
}

/// Test certificates (tests/scripts/make-certs.sh), made once per build directory.
pub fn certs() -> std::path::PathBuf {
    static DIR: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("certs");
        if !dir.join("client_privkey.pem").exists() {
            // Made aside and renamed into place, so parallel test processes never see half a set.
            let scratch = dir.with_extension(format!("tmp{}", std::process::id()));
            let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/scripts/make-certs.sh");
            let status = std::process::Command::new("bash")
                .arg(script)
                .arg(&scratch)
                .stdout(std::process::Stdio::null())
                .status()
                .unwrap();
            assert!(status.success(), "make-certs.sh failed");
            if std::fs::rename(&scratch, &dir).is_err() {
                let _ = std::fs::remove_dir_all(&scratch);
            }
        }
        dir
    })
    .clone()
}

pub fn cert(name: &str) -> String {
    certs().join(name).to_string_lossy().into_owned()
}

static LOG_LINES: parking_lot::Mutex<Vec<String>> = parking_lot::Mutex::new(Vec::new());

unsafe extern "C" fn capture_log(_user: *mut c_void, _level: i32, line: *const std::ffi::c_char) {
    LOG_LINES.lock().push(
        unsafe { CStr::from_ptr(line) }
            .to_string_lossy()
            .into_owned(),
    );
}

/// Sends the library's log lines (info and up) to a list the test can search.
pub fn capture_logs() {
    oasis_log_set_hook(Some(capture_log), std::ptr::null_mut());
    oasis_log_set_level(3);
}

pub fn logged(fragment: &str) -> bool {
    LOG_LINES.lock().iter().any(|line| line.contains(fragment))
}

/// A masked client frame with the given first byte (FIN/RSV/opcode).
pub fn client_frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x37u8, 0xfa, 0x21, 0x3d];
    let mut frame = vec![first];
    match payload.len() {
        n if n < 126 => frame.push(0x80 | n as u8),
        n if n < 65536 => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    frame
}
