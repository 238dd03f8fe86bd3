//! Every failed `wsOpenConnection` that was given a delegate says so through it: exactly one
//! onError (never onOpen, never onClose), then `release(user)` exactly once — whatever failed,
//! in blocking and non-blocking mode. Only a NULL delegate, a NULL url and a call before
//! `oasis_initialize` fail without a callback.

mod common;
use common::counting::{COUNTING_VTABLE, Calls, Counting};
use common::*;
use oasisnet::ffi::*;
use std::ffi::CString;
use std::io::{Read, Write};
use std::net::TcpListener;

/// Opens `url` (raw bytes: it may be invalid UTF-8) with a counting delegate; returns the
/// handle, `errno` right after the call, and the delegate.
fn open_counting(
    url: &[u8],
    extra: &[(&str, &str)],
    timeout_msec: i32,
) -> (*mut WsConnection, i32, &'static Counting) {
    let calls = Counting::new();
    let url = CString::new(url).unwrap();
    let p = params(extra);
    // Cleared, so that a value left by an earlier call cannot pass for this call's.
    unsafe { *libc::__errno_location() = 0 };
    let connection = unsafe {
        wsOpenConnection(
            url.as_ptr(),
            p.pairs.as_ptr(),
            p.pairs.len(),
            &COUNTING_VTABLE,
            calls.user(),
            timeout_msec,
        )
    };
    (connection, errno(), calls)
}

/// A TCP server that answers whatever it is sent (an upgrade request, or a TLS ClientHello)
/// with `HTTP/1.1 400 Bad Request` and closes.
fn bad_request_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut received = Vec::new();
            let mut buffer = [0u8; 4096];
            // Until the end of an HTTP head, or the first bytes of anything that is not HTTP.
            while !received.ends_with(b"\r\n\r\n") && received.first() != Some(&0x16) {
                match stream.read(&mut buffer) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => received.extend_from_slice(&buffer[..n]),
                }
            }
            let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
        }
    });
    port
}

/// A port nobody listens on.
fn refusing_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// How a failure shows when the open returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Returns {
    /// NULL with this errno, in either mode: found before anything was sent.
    NullAtOnce(i32),
    /// Blocking: NULL with this errno. Non-blocking: the connection (the loop finds the failure).
    NullWhenBlocking(i32),
}

struct Case {
    what: &'static str,
    url: Vec<u8>,
    parameters: Vec<(&'static str, &'static str)>,
    returns: Returns,
    /// onError's status code.
    code: i32,
}

fn cases(silent_port: u16) -> Vec<Case> {
    let refused = refusing_port();
    let bad_request = bad_request_server();
    // A label over 63 bytes cannot be put into a DNS query: the lookup fails locally, with or
    // without a name server, so the case is the same on every machine.
    let unresolvable = format!("ws://{}.test/", "a".repeat(70));
    let ws = |port: u16| format!("ws://127.0.0.1:{port}/").into_bytes();
    let wss = |port: u16| format!("wss://127.0.0.1:{port}/").into_bytes();
    vec![
        Case {
            what: "malformed URL",
            url: b"http://127.0.0.1/".to_vec(),
            parameters: vec![],
            returns: Returns::NullAtOnce(libc::EINVAL),
            code: 1006,
        },
        Case {
            what: "URL that is not UTF-8",
            url: b"ws://\xff\xfe.example/".to_vec(),
            parameters: vec![],
            returns: Returns::NullAtOnce(libc::EINVAL),
            code: 1006,
        },
        Case {
            what: "bad parameter value",
            url: ws(refused),
            parameters: vec![("websocket-fragment-size-max", "lots")],
            returns: Returns::NullAtOnce(libc::EINVAL),
            code: 1006,
        },
        Case {
            what: "missing ca-certs file",
            url: wss(bad_request),
            parameters: vec![("ca-certs-file-path", "/nonexistent/oasisnet-ca.pem")],
            returns: Returns::NullAtOnce(libc::ENOENT),
            code: 1006,
        },
        Case {
            what: "missing client certificate file",
            url: wss(bad_request),
            parameters: vec![
                ("cert-file-path", "/nonexistent/oasisnet-cert.pem"),
                ("pkey-file-path", "/nonexistent/oasisnet-key.pem"),
            ],
            returns: Returns::NullAtOnce(libc::ENOENT),
            code: 1006,
        },
        Case {
            what: "name that does not resolve",
            url: unresolvable.into_bytes(),
            parameters: vec![],
            returns: Returns::NullWhenBlocking(libc::EHOSTUNREACH),
            code: 1006,
        },
        Case {
            what: "refused port",
            url: ws(refused),
            parameters: vec![],
            returns: Returns::NullWhenBlocking(libc::ECONNREFUSED),
            code: 1006,
        },
        Case {
            what: "handshake refused (HTTP 400)",
            url: ws(bad_request),
            parameters: vec![],
            returns: Returns::NullWhenBlocking(libc::EPROTO),
            code: 1006,
        },
        Case {
            what: "handshake never answered",
            url: ws(silent_port),
            parameters: vec![("handshake-timeout-ms", "300")],
            returns: Returns::NullWhenBlocking(libc::ETIMEDOUT),
            code: 1006,
        },
        Case {
            what: "TLS failure (wss to a plain HTTP server)",
            url: wss(bad_request),
            parameters: vec![("tls-disable-certificate-validation", "true")],
            returns: Returns::NullWhenBlocking(libc::EPROTO),
            code: 1015,
        },
    ]
}

/// Opens every failing case in one mode and checks what the caller and the delegate saw.
fn every_failure_reaches_the_delegate(timeout_msec: i32) {
    init();
    let blocking = timeout_msec > 0;
    // Accepts (the kernel's backlog does) but never answers the upgrade request.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let mut delegates = Vec::new();
    for case in cases(silent_port) {
        let (connection, errno, calls) = open_counting(&case.url, &case.parameters, timeout_msec);
        let expected_null = match case.returns {
            Returns::NullAtOnce(errno) => Some(errno),
            Returns::NullWhenBlocking(errno) if blocking => Some(errno),
            Returns::NullWhenBlocking(_) => None,
        };
        match expected_null {
            Some(expected) => {
                assert!(connection.is_null(), "{}: expected NULL", case.what);
                assert_eq!(errno, expected, "{}: errno ({})", case.what, last_error());
            }
            None => {
                assert!(!connection.is_null(), "{}: {}", case.what, last_error());
                // The caller's reference only: the outcome still reaches the delegate.
                assert_eq!(wsConnectionRelease(connection), 0);
            }
        }
        let seen = calls.wait(&format!("{}: the release", case.what), |c| c.releases > 0);
        let expected = Calls {
            errors: vec![case.code],
            releases: 1,
            ..Calls::default()
        };
        assert_eq!(seen, expected, "{}", case.what);
        delegates.push((case.what, calls));
    }
    drop(silent);
    assert_eq!(oasis_finalize(), 0);
    // Nothing more arrived later (finalize has stopped every loop).
    for (what, calls) in delegates {
        assert_eq!(calls.calls().errors.len(), 1, "{what}");
        assert_eq!(calls.calls().releases, 1, "{what}");
    }
}

#[test]
fn every_blocking_failure_reaches_the_delegate() {
    every_failure_reaches_the_delegate(1000);
}

#[test]
fn every_non_blocking_failure_reaches_the_delegate() {
    every_failure_reaches_the_delegate(0);
}

#[test]
fn only_null_arguments_and_no_runtime_fail_without_a_callback() {
    // Before oasis_initialize: EPERM, no callback; the delegate is released at once.
    assert_eq!(oasis_finalize(), 0);
    for timeout in [1000, 0] {
        let (connection, errno, calls) = open_counting(b"ws://127.0.0.1:9/", &[], timeout);
        assert!(connection.is_null());
        assert_eq!(errno, libc::EPERM, "{}", last_error());
        assert_eq!(
            calls.calls(),
            Calls {
                releases: 1,
                ..Calls::default()
            }
        );
    }
    init();
    for timeout in [1000, 0] {
        // NULL url: EINVAL, no callback, the delegate released at once.
        let calls = Counting::new();
        unsafe { *libc::__errno_location() = 0 };
        let connection = unsafe {
            wsOpenConnection(
                std::ptr::null(),
                std::ptr::null(),
                0,
                &COUNTING_VTABLE,
                calls.user(),
                timeout,
            )
        };
        assert!(connection.is_null());
        assert_eq!(errno(), libc::EINVAL);
        assert_eq!(
            calls.calls(),
            Calls {
                releases: 1,
                ..Calls::default()
            }
        );
        // NULL delegate: EINVAL; there is nothing to call.
        let url = CString::new("ws://127.0.0.1:9/").unwrap();
        unsafe { *libc::__errno_location() = 0 };
        let connection = unsafe {
            wsOpenConnection(
                url.as_ptr(),
                std::ptr::null(),
                0,
                std::ptr::null(),
                std::ptr::null_mut(),
                timeout,
            )
        };
        assert!(connection.is_null());
        assert_eq!(errno(), libc::EINVAL);
    }
    assert_eq!(oasis_finalize(), 0);
}
