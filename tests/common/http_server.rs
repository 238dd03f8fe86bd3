//! The HTTP server's test fixtures: the folder the file tests serve, a started server whose
//! upstream delegate is made of Rust closures, WebSocket services and raw upgrades on a path,
//! and the process-wide state some tests measure.

use super::http::*;
use super::*;
use oasisnet::ffi::*;
use std::ffi::{CString, c_char, c_void};
use std::path::{Path, PathBuf};
use std::sync::Arc;

// ---- the fixture folder ---------------------------------------------------------------------

/// Written in `secret.txt` beside the root (and in the folder outside it): it must never come
/// back in an answer.
pub const MARKER: &str = "SECRET-MARKER-beside-the-root";

/// The files of the fixture with the content type each must be served with.
pub const TYPED_FILES: &[(&str, &str)] = &[
    ("index.html", "text/html; charset=utf-8"),
    ("a.css", "text/css; charset=utf-8"),
    ("app.js", "text/javascript; charset=utf-8"),
    ("m.mjs", "text/javascript; charset=utf-8"),
    ("d.json", "application/json"),
    ("i.svg", "image/svg+xml"),
    ("p.png", "image/png"),
    ("j.jpg", "image/jpeg"),
    ("k.jpeg", "image/jpeg"),
    ("f.ico", "image/x-icon"),
    ("w.wasm", "application/wasm"),
    ("t.txt", "text/plain; charset=utf-8"),
    ("x.bin", "application/octet-stream"),
    ("noext", "application/octet-stream"),
    ("UPPER.PNG", "image/png"),
    ("a b.txt", "text/plain; charset=utf-8"),
];

pub const BIG_LEN: usize = 8 << 20;
pub const X_BIN_LEN: usize = 4096;

/// Deterministic bytes that differ at every offset's neighbourhood, so a misplaced chunk shows.
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A temporary folder: `root/` (served) with the files above, `sub/index.html`, `sub2/x.txt`,
/// `big.bin` (8 MiB), `in_link -> t.txt`, `out_link -> ../secret.txt`, `out_dir -> ../outside`
/// (absolute); beside it `secret.txt` and `outside/inner.txt`, both holding MARKER.
pub struct Fixture {
    _dir: tempfile::TempDir,
    pub root: PathBuf,
}

impl Fixture {
    pub fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().to_path_buf();
        let root = base.join("root");
        let write = |path: &Path, bytes: &[u8]| std::fs::write(path, bytes).unwrap();
        for sub in ["root/sub", "root/sub2", "outside"] {
            std::fs::create_dir_all(base.join(sub)).unwrap();
        }
        write(&base.join("secret.txt"), MARKER.as_bytes());
        write(&base.join("outside/inner.txt"), MARKER.as_bytes());
        for (name, _) in TYPED_FILES {
            let body = if *name == "x.bin" {
                pattern(X_BIN_LEN, 7)
            } else {
                format!("{name}: the contents of a test file\n").into_bytes()
            };
            write(&root.join(name), &body);
        }
        write(&root.join("sub/index.html"), b"<p>the index of sub</p>\n");
        write(&root.join("sub2/x.txt"), b"sub2 has no index\n");
        write(&root.join("big.bin"), &pattern(BIG_LEN, 99));
        std::os::unix::fs::symlink("t.txt", root.join("in_link")).unwrap();
        std::os::unix::fs::symlink("../secret.txt", root.join("out_link")).unwrap();
        std::os::unix::fs::symlink(base.join("outside"), root.join("out_dir")).unwrap();
        Fixture { _dir: dir, root }
    }

    pub fn root_dir(&self) -> String {
        self.root.to_string_lossy().into_owned()
    }

    /// A file's bytes as on disk.
    pub fn bytes(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.root.join(name)).unwrap()
    }
}

// ---- a started server and its upstream delegate ---------------------------------------------

/// A request as the upstream callbacks see it; valid during that callback only.
pub struct Request(pub *mut HttpRequest);

/// Runs an snprintf-style getter, growing the buffer once if needed. None on -1.
pub fn c_text(call: impl Fn(*mut c_char, usize) -> i32) -> Option<String> {
    let mut buffer = vec![0u8; 256];
    let n = call(buffer.as_mut_ptr().cast(), buffer.len());
    if n < 0 {
        return None;
    }
    let n = n as usize;
    if n >= buffer.len() {
        buffer = vec![0u8; n + 1];
        assert_eq!(call(buffer.as_mut_ptr().cast(), buffer.len()), n as i32);
    }
    assert_eq!(buffer[n], 0, "NUL-terminated");
    Some(String::from_utf8_lossy(&buffer[..n]).into_owned())
}

impl Request {
    pub fn method(&self) -> String {
        c_text(|b, c| unsafe { httpRequestMethod(self.0, b, c) }).unwrap_or_default()
    }
    pub fn path(&self) -> String {
        c_text(|b, c| unsafe { httpRequestPath(self.0, b, c) }).unwrap_or_default()
    }
    pub fn query(&self) -> String {
        c_text(|b, c| unsafe { httpRequestQuery(self.0, b, c) }).unwrap_or_default()
    }
    pub fn peer(&self) -> String {
        c_text(|b, c| unsafe { httpRequestPeerAddress(self.0, b, c) }).unwrap_or_default()
    }
    /// None when absent (ENOENT) or on any other failure.
    pub fn header(&self, name: &str) -> Option<String> {
        let name = CString::new(name).unwrap();
        c_text(|b, c| unsafe { httpRequestHeader(self.0, name.as_ptr(), b, c) })
    }
    pub fn body(&self) -> Vec<u8> {
        let mut data = std::ptr::null();
        let n = unsafe { httpRequestBody(self.0, &mut data) };
        if n <= 0 {
            return Vec::new();
        }
        unsafe { std::slice::from_raw_parts(data, n as usize) }.to_vec()
    }
    pub fn set_status(&self, status: i32) -> i32 {
        httpResponseSetStatus(self.0, status)
    }
    pub fn add_header(&self, name: &str, value: &str) -> i32 {
        let (name, value) = (CString::new(name).unwrap(), CString::new(value).unwrap());
        unsafe { httpResponseAddHeader(self.0, name.as_ptr(), value.as_ptr()) }
    }
    pub fn set_body(&self, content_type: Option<&str>, body: &[u8]) -> i32 {
        let kind = content_type.map(|k| CString::new(k).unwrap());
        let kind = kind.as_ref().map_or(std::ptr::null(), |k| k.as_ptr());
        unsafe { httpResponseSetBody(self.0, kind, body.as_ptr().cast(), body.len()) }
    }
}

type FilterFn = dyn Fn(&Request) -> i32 + Send + Sync;
type AnswerFn = dyn Fn(&Request) + Send + Sync;

/// The firmware's part: either callback may be absent (then the vtable's slot is NULL).
#[derive(Default)]
pub struct Upstream {
    pub filter: Option<Box<FilterFn>>,
    pub on_request: Option<Box<AnswerFn>>,
}

impl Upstream {
    pub fn answer(f: impl Fn(&Request) + Send + Sync + 'static) -> Upstream {
        Upstream {
            filter: None,
            on_request: Some(Box::new(f)),
        }
    }

    pub fn with_filter(mut self, f: impl Fn(&Request) -> i32 + Send + Sync + 'static) -> Upstream {
        self.filter = Some(Box::new(f));
        self
    }
}

/// A count with a bounded wait, for `release` calls.
#[derive(Default)]
pub struct Count {
    value: parking_lot::Mutex<usize>,
    changed: parking_lot::Condvar,
}

impl Count {
    pub fn add(&self) {
        *self.value.lock() += 1;
        self.changed.notify_all();
    }
    pub fn get(&self) -> usize {
        *self.value.lock()
    }
    /// Waits until the count reaches `n`; panics after WAIT.
    pub fn wait_for(&self, n: usize) {
        let deadline = std::time::Instant::now() + WAIT;
        let mut value = self.value.lock();
        while *value < n {
            if self.changed.wait_until(&mut value, deadline).timed_out() {
                panic!("timed out waiting for a count of {n} (it is {})", *value);
            }
        }
    }
}

/// Panics inside callbacks: caught there (unwinding into C would abort), reported by
/// `Served::destroy`.
static CALLBACK_PANICS: parking_lot::Mutex<Vec<String>> = parking_lot::Mutex::new(Vec::new());

struct Boxed {
    upstream: Upstream,
    released: Arc<Count>,
}

fn guarded<T>(fallback: T, f: impl FnOnce() -> T) -> T {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|payload| {
        let text = payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        CALLBACK_PANICS.lock().push(text);
        fallback
    })
}

unsafe extern "C" fn on_filter(user: *mut c_void, request: *mut HttpRequest) -> i32 {
    let boxed = unsafe { &*(user as *const Boxed) };
    guarded(500, || {
        (boxed.upstream.filter.as_ref().unwrap())(&Request(request))
    })
}

unsafe extern "C" fn on_request(user: *mut c_void, request: *mut HttpRequest) {
    let boxed = unsafe { &*(user as *const Boxed) };
    guarded((), || {
        (boxed.upstream.on_request.as_ref().unwrap())(&Request(request))
    })
}

unsafe extern "C" fn on_release(user: *mut c_void) {
    let boxed = unsafe { Box::from_raw(user as *mut Boxed) };
    boxed.released.add();
}

/// The vtable for `upstream` and its user pointer (owned by the library until `release`),
/// plus the count of `release` calls.
pub fn upstream_vtable(
    upstream: Upstream,
) -> (HttpUpStreamDelegateVTable, *mut c_void, Arc<Count>) {
    let released = Arc::new(Count::default());
    let vtable = HttpUpStreamDelegateVTable {
        struct_size: std::mem::size_of::<HttpUpStreamDelegateVTable>() as u32,
        onFilter: upstream
            .filter
            .is_some()
            .then_some(on_filter as unsafe extern "C" fn(_, _) -> _),
        onRequest: upstream
            .on_request
            .is_some()
            .then_some(on_request as unsafe extern "C" fn(_, _)),
        release: Some(on_release),
    };
    let user = Box::into_raw(Box::new(Boxed {
        upstream,
        released: released.clone(),
    }));
    (vtable, user.cast(), released)
}

pub struct Served {
    pub server: *mut HttpServer,
    pub port: u16,
    /// `release` calls of the upstream delegate (stays 0 without one).
    pub released: Arc<Count>,
}

impl Served {
    /// destroyHttpServer; checks that no callback panicked.
    pub fn destroy(self) {
        assert_eq!(destroyHttpServer(self.server), 0, "{}", last_error());
        let panics = CALLBACK_PANICS.lock().clone();
        assert!(panics.is_empty(), "callbacks panicked: {panics:?}");
    }
}

/// Creates an HTTP server (port 0 on 127.0.0.1 unless `extra` says otherwise), without starting
/// it.
pub fn create_http(extra: &[(&str, &str)], upstream: Option<Upstream>) -> Served {
    let mut list = vec![("port", "0"), ("bind-address", "127.0.0.1")];
    list.extend_from_slice(extra);
    let p = params(&list);
    let (server, released) = match upstream {
        Some(upstream) => {
            let (vtable, user, released) = upstream_vtable(upstream);
            let server =
                unsafe { createHttpServer(p.pairs.as_ptr(), p.pairs.len(), &vtable, user) };
            (server, released)
        }
        None => {
            let server = unsafe {
                createHttpServer(
                    p.pairs.as_ptr(),
                    p.pairs.len(),
                    std::ptr::null(),
                    std::ptr::null_mut(),
                )
            };
            (server, Arc::new(Count::default()))
        }
    };
    assert!(!server.is_null(), "createHttpServer: {}", last_error());
    Served {
        server,
        port: 0,
        released,
    }
}

/// A started HTTP server; see `create_http`.
pub fn start_http(extra: &[(&str, &str)], upstream: Option<Upstream>) -> Served {
    let mut served = create_http(extra, upstream);
    assert_eq!(
        startHttpServer(served.server),
        0,
        "startHttpServer: {}",
        last_error()
    );
    let port = httpServerPort(served.server);
    assert!(port > 0, "httpServerPort: {}", last_error());
    served.port = port as u16;
    served
}

/// An HTTP server serving `fixture`, with more parameters.
pub fn serve_files(
    fixture: &Fixture,
    extra: &[(&str, &str)],
    upstream: Option<Upstream>,
) -> Served {
    let root = fixture.root_dir();
    let mut list = vec![("root-dir", root.as_str())];
    list.extend_from_slice(extra);
    start_http(&list, upstream)
}

/// createHttpWsService with a recording delegate; returns its result (errno on -1).
pub fn add_service(
    server: *mut HttpServer,
    path: &str,
    extra: &[(&str, &str)],
    recorder: &Arc<Recorder>,
) -> i32 {
    let p = params(extra);
    let (vtable, user) = delegate(recorder);
    let path = CString::new(path).unwrap();
    unsafe {
        createHttpWsService(
            server,
            path.as_ptr(),
            p.pairs.as_ptr(),
            p.pairs.len(),
            &vtable,
            user,
        )
    }
}

/// An upgrade request for `target`, with more header lines (each ending in CRLF).
pub fn upgrade_request(target: &str, extra: &str) -> Vec<u8> {
    format!(
        "GET {target} HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
    .into_bytes()
}

/// Upgrades a raw client to `target`; panics unless the answer is 101. Bytes the server sent
/// behind the 101 head are lost, so use it where the server speaks only when spoken to.
pub fn ws_connect(port: u16, target: &str) -> RawClient {
    let mut client = Client::connect(port);
    let response = client.exchange(&upgrade_request(target, ""));
    assert_eq!(response.status, 101, "{response:?}");
    RawClient {
        stream: client.into_tcp(),
    }
}

// ---- process state ---------------------------------------------------------------------------

/// The resident set of this process (the server runs in it), in KiB.
pub fn vm_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .expect("a VmRSS line");
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Tests that measure the whole process (its memory) or end the library (oasis_finalize) hold
/// this exclusively; every other test of their binary holds it shared, so that nothing else runs
/// meanwhile when the tests run on several threads.
static PROCESS: parking_lot::RwLock<()> = parking_lot::RwLock::new(());

pub fn shared() -> parking_lot::RwLockReadGuard<'static, ()> {
    PROCESS.read()
}

pub fn exclusive() -> parking_lot::RwLockWriteGuard<'static, ()> {
    PROCESS.write()
}
