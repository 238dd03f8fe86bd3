//! The Cargo features (README, "Cargo features"), checked in whichever build this test is
//! compiled for: each part the build holds works, and each part it left out fails the way the
//! function reports any error — NULL or -1, `errno` `ENOSYS`, `oasis_last_error()` and a warning
//! in the log naming the feature, the delegate released before the call returns, no callback.
//! A `wss://` URL or a server's TLS keys in a build without `tls` fail likewise (never a plain
//! connection instead).
//!
//! `cargo test --test features` checks the default build; tests/run-tests.sh also runs it with
//! `--no-default-features --features ...` for each smaller build. Self-contained on purpose:
//! `tests/common` needs TLS, so only
//! its TLS-free `counting.rs` is included.

use oasisnet::ffi::*;
use std::ffi::{CStr, CString, c_char, c_void};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Mutex;

#[path = "common/counting.rs"]
mod counting;
use counting::{COUNTING_VTABLE as WS_DELEGATE, Calls, Counting, WAIT, on_release};

unsafe extern "C" fn answer_hello(_: *mut c_void, request: *mut HttpRequest) {
    let body = b"hello from the features test";
    let kind = CString::new("text/plain").unwrap();
    unsafe { httpResponseSetBody(request, kind.as_ptr(), body.as_ptr().cast(), body.len()) };
}

const HTTP_DELEGATE: HttpUpStreamDelegateVTable = HttpUpStreamDelegateVTable {
    struct_size: std::mem::size_of::<HttpUpStreamDelegateVTable>() as u32,
    onFilter: None,
    onRequest: Some(answer_hello),
    release: Some(on_release),
};

/// Owned C strings for a key-value list.
struct Params {
    _strings: Vec<CString>,
    pairs: Vec<OasisKeyValue>,
}

fn params(list: &[(&str, &str)]) -> Params {
    let strings: Vec<CString> = list
        .iter()
        .flat_map(|(k, v)| [CString::new(*k).unwrap(), CString::new(*v).unwrap()])
        .collect();
    let pairs = strings
        .chunks(2)
        .map(|kv| OasisKeyValue {
            key: kv[0].as_ptr(),
            value: kv[1].as_ptr(),
        })
        .collect();
    Params {
        _strings: strings,
        pairs,
    }
}

/// Every line the library logged, from the firmware's log hook.
static LOGGED: Mutex<Vec<String>> = Mutex::new(Vec::new());

unsafe extern "C" fn keep_line(_: *mut c_void, _level: i32, line: *const c_char) {
    let line = unsafe { CStr::from_ptr(line) }
        .to_string_lossy()
        .into_owned();
    LOGGED.lock().unwrap().push(line);
}

fn init() {
    let p = params(&[("log-level", "info")]);
    assert_eq!(
        unsafe { oasis_initialize(p.pairs.as_ptr(), p.pairs.len()) },
        0
    );
    oasis_log_set_hook(Some(keep_line), std::ptr::null_mut());
}

fn clear_errno() {
    unsafe { *libc::__errno_location() = 0 };
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn last_error() -> String {
    unsafe { CStr::from_ptr(oasis_last_error()) }
        .to_string_lossy()
        .into_owned()
}

/// What a call of a left-out part must have done: `ENOSYS`, the feature named in the last error
/// and in a log line of `function`.
fn assert_not_built(function: &str, feature: &str) {
    let errno = errno();
    let error = last_error();
    let sentence = format!("oasisnet was built without the `{feature}` feature");
    assert_eq!(errno, libc::ENOSYS, "{function}: {error}");
    assert!(
        error.starts_with(&format!("{function}: ")) && error.contains(&sentence),
        "{function}: last error {error:?} does not name the `{feature}` feature"
    );
    let logged = LOGGED.lock().unwrap();
    assert!(
        logged
            .iter()
            .any(|line| line.contains(function) && line.contains(&sentence)),
        "no log line says {sentence:?} for {function}: {logged:?}"
    );
}

fn open(
    url: &str,
    extra: &[(&str, &str)],
    timeout_ms: i32,
) -> (*mut WsConnection, &'static Counting) {
    let calls = Counting::new();
    let p = params(extra);
    let url = CString::new(url).unwrap();
    clear_errno();
    let connection = unsafe {
        wsOpenConnection(
            url.as_ptr(),
            p.pairs.as_ptr(),
            p.pairs.len(),
            &WS_DELEGATE,
            calls.user(),
            timeout_ms,
        )
    };
    (connection, calls)
}

/// A server's parameters: an ephemeral port on 127.0.0.1, then `extra`.
fn server_params(extra: &[(&str, &str)]) -> Params {
    let mut list = vec![("port", "0"), ("bind-address", "127.0.0.1")];
    list.extend_from_slice(extra);
    params(&list)
}

fn create_ws_server(extra: &[(&str, &str)]) -> (*mut WsServer, &'static Counting) {
    let calls = Counting::new();
    let p = server_params(extra);
    clear_errno();
    let server =
        unsafe { createWsServer(p.pairs.as_ptr(), p.pairs.len(), &WS_DELEGATE, calls.user()) };
    (server, calls)
}

fn create_http_server(extra: &[(&str, &str)]) -> (*mut HttpServer, &'static Counting) {
    let calls = Counting::new();
    let p = server_params(extra);
    clear_errno();
    let server = unsafe {
        createHttpServer(
            p.pairs.as_ptr(),
            p.pairs.len(),
            &HTTP_DELEGATE,
            calls.user(),
        )
    };
    (server, calls)
}

/// A failed call that took a delegate: released before the call returned, nothing else called.
fn assert_released_only(calls: &Counting) {
    assert_eq!(
        calls.calls(),
        Calls {
            releases: 1,
            ..Calls::default()
        }
    );
}

/// Sends `request` to 127.0.0.1:`port` and reads the answer until the head is complete (and
/// `body_needle`, when given, has arrived).
fn exchange(port: u16, request: &str, body_needle: Option<&str>) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&answer).into_owned();
        if text.contains("\r\n\r\n") && body_needle.is_none_or(|needle| text.contains(needle)) {
            return text;
        }
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => panic!("the answer ended early: {text:?}"),
            Ok(n) => answer.extend_from_slice(&buffer[..n]),
        }
    }
}

/// A port nothing listens on (the kernel gave it out, then it was closed).
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn the_websocket_server_is_there_or_says_which_feature_is_missing() {
    init();
    let (server, calls) = create_ws_server(&[]);
    if cfg!(feature = "server") {
        assert!(!server.is_null(), "createWsServer: {}", last_error());
        assert_eq!(startWsServer(server), 0, "startWsServer: {}", last_error());
        let port = wsServerPort(server) as u16;
        let answer = exchange(
            port,
            "GET /chat HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Version: 13\r\n\r\n",
            None,
        );
        // The key of RFC 6455 section 1.3, with its accept value.
        assert!(answer.starts_with("HTTP/1.1 101 "), "{answer:?}");
        assert!(
            answer.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
            "{answer:?}"
        );
        calls.wait("onOpen", |c| c.opens == 1);
        assert_eq!(destroyWsServer(server), 0);
        calls.wait("the release", |c| c.releases == 1);
    } else {
        assert!(server.is_null());
        assert_not_built("createWsServer", "server");
        assert_released_only(calls);
        // No handle can exist: the others fail as for a handle that is not live.
        assert_eq!(startWsServer(std::ptr::null_mut()), -1);
        assert_eq!(errno(), libc::EINVAL);
    }
}

#[test]
fn the_websocket_client_is_there_or_says_which_feature_is_missing() {
    init();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (connection, calls) = open(&format!("ws://127.0.0.1:{port}/check?x=1"), &[], 0);
    if cfg!(feature = "client") {
        assert!(!connection.is_null(), "wsOpenConnection: {}", last_error());
        // The client's upgrade request arrives; the peer then goes away without answering.
        let (mut peer, _) = listener.accept().unwrap();
        peer.set_read_timeout(Some(WAIT)).unwrap();
        let mut head = Vec::new();
        let mut buffer = [0u8; 1024];
        while !head.ends_with(b"\r\n\r\n") {
            let n = peer.read(&mut buffer).unwrap();
            assert!(n > 0, "the request ended early: {head:?}");
            head.extend_from_slice(&buffer[..n]);
        }
        let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
        assert!(head.starts_with("get /check?x=1 http/1.1\r\n"), "{head}");
        assert!(head.contains("\r\nupgrade: websocket\r\n"), "{head}");
        assert!(head.contains("\r\nsec-websocket-key: "), "{head}");
        drop(peer);
        calls.wait("onError", |c| c.errors == [1006]);
        assert_eq!(wsConnectionRelease(connection), 0);
        calls.wait("the release", |c| c.releases == 1);
    } else {
        assert!(connection.is_null());
        assert_not_built("wsOpenConnection", "client");
        assert_released_only(calls);
    }
}

#[test]
fn the_http_server_is_there_or_says_which_feature_is_missing() {
    init();
    let (server, calls) = create_http_server(&[]);
    if cfg!(feature = "http") {
        assert!(!server.is_null(), "createHttpServer: {}", last_error());
        assert_eq!(
            startHttpServer(server),
            0,
            "startHttpServer: {}",
            last_error()
        );
        let port = httpServerPort(server) as u16;
        let answer = exchange(
            port,
            "GET /hello HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
            Some("hello from the features test"),
        );
        assert!(answer.starts_with("HTTP/1.1 200 "), "{answer:?}");
        assert_eq!(destroyHttpServer(server), 0);
        calls.wait("the release", |c| c.releases == 1);
    } else {
        assert!(server.is_null());
        assert_not_built("createHttpServer", "http");
        assert_released_only(calls);
    }
}

/// TLS keys that would make a TLS server. The files need not exist: with TLS they are read
/// when the server is created (`ENOENT`); without, nothing is read.
const SERVER_TLS: [(&str, &str); 2] = [
    ("cert-file-path", "/nonexistent/fullchain.pem"),
    ("pkey-file-path", "/nonexistent/privkey.pem"),
];

#[test]
fn tls_is_there_or_its_use_says_which_feature_is_missing() {
    init();
    let tls = cfg!(feature = "tls");
    if cfg!(feature = "client") {
        // A blocking and a non-blocking open, both refused before anything is sent.
        for timeout in [2000, 0] {
            let (connection, calls) =
                open(&format!("wss://127.0.0.1:{}/", closed_port()), &[], timeout);
            if tls {
                // With TLS the open goes ahead, and finds nobody listening.
                if connection.is_null() {
                    assert_ne!(errno(), libc::ENOSYS, "{}", last_error());
                } else {
                    assert_eq!(wsConnectionRelease(connection), 0);
                }
            } else {
                assert!(connection.is_null());
                assert_not_built("wsOpenConnection", "tls");
                assert!(last_error().contains("wss://"), "{}", last_error());
            }
            // Either way the open ends in onError, as every failed open does.
            let seen = calls.wait("onError and the release", |c| c.releases == 1);
            assert_eq!(seen.errors, [1006], "{seen:?}");
            assert_eq!((seen.opens, seen.closes), (0, 0), "{seen:?}");
        }
    }
    if cfg!(feature = "server") {
        let (server, calls) = create_ws_server(&SERVER_TLS);
        assert!(server.is_null());
        if tls {
            assert_eq!(errno(), libc::ENOENT, "{}", last_error());
        } else {
            assert_not_built("createWsServer", "tls");
            assert!(last_error().contains("cert-file-path"), "{}", last_error());
        }
        assert_released_only(calls);
    }
    if cfg!(feature = "http") {
        let (server, calls) = create_http_server(&SERVER_TLS);
        assert!(server.is_null());
        if tls {
            assert_eq!(errno(), libc::ENOENT, "{}", last_error());
        } else {
            assert_not_built("createHttpServer", "tls");
        }
        assert_released_only(calls);
    }
}
