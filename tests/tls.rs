//! wss: TLS servers and clients of this library against each other, every key type, every
//! documented TLS key, mutual TLS, and every handshake failure with its errno, log line and
//! 1015. Certificates come from tests/scripts/make-certs.sh.

mod common;
use common::*;
use oasisnet::ffi::*;
use std::io::Read;

fn tls_server(
    events: &std::sync::Arc<Recorder>,
    chain: &str,
    key: &str,
    extra: &[(&str, &str)],
) -> (*mut WsServer, u16) {
    let (chain, key) = (cert(chain), cert(key));
    let mut list = vec![
        ("cert-file-path", chain.as_str()),
        ("pkey-file-path", key.as_str()),
    ];
    list.extend_from_slice(extra);
    start_server(events, &list)
}

fn create_fails(list: &[(&str, &str)], errno_expected: i32, says: &str) {
    let recorder = Recorder::new(false);
    let mut all = vec![("port", "0")];
    all.extend_from_slice(list);
    let p = params(&all);
    let (vtable, user) = delegate(&recorder);
    let server = unsafe { createWsServer(p.pairs.as_ptr(), p.pairs.len(), &vtable, user) };
    assert!(server.is_null(), "createWsServer should fail for {list:?}");
    assert_eq!(errno(), errno_expected, "{}", last_error());
    assert!(
        last_error().contains(says),
        "last error '{}' should say '{says}'",
        last_error()
    );
    assert!(logged(says), "a log line says '{says}'");
}

#[test]
fn wss_roundtrip_for_every_key_type() {
    init();
    capture_logs();
    let root = cert("RootCA.pem");
    for (chain, key) in [
        ("fullchain.pem", "privkey.pem"),
        ("fullchain.pem", "privkey_pkcs1.pem"),
        ("ec_fullchain.pem", "ec_pkey.pem"),
        ("ec_fullchain.pem", "ec_pkey_pkcs8.pem"),
        ("ec384_fullchain.pem", "ec384_pkey.pem"),
        ("ed25519_fullchain.pem", "ed25519_pkey.pem"),
    ] {
        let server_events = Recorder::new(true);
        let (server, port) = tls_server(&server_events, chain, key, &[]);
        for host in ["localhost", "127.0.0.1"] {
            let client_events = Recorder::new(false);
            let client = open(
                &format!("wss://{host}:{port}/"),
                &client_events,
                &[("ca-certs-file-path", &root)],
                5000,
            );
            assert!(!client.is_null(), "{chain} via {host}: {}", last_error());
            assert_eq!(send_text(client, "over tls"), 0);
            client_events.wait_for("echo", |e| {
                e.iter().any(|(_, s)| matches!(s, Seen::Message(..)))
            });
            assert_eq!(wsCloseConnection(client), 0);
            client_events.wait_for("onClose", |e| e.iter().any(|(_, s)| is_close(s)));
            assert!(
                matches!(client_events.seen().last(), Some(Seen::Close(1000, _))),
                "{chain}: {:?}",
                client_events.seen()
            );
            wsConnectionRelease(client);
        }
        destroyWsServer(server);
    }
    oasis_finalize();
}

#[test]
fn bad_certificate_and_key_files_fail_at_creation() {
    init();
    capture_logs();
    let (chain, ec_chain) = (cert("fullchain.pem"), cert("ec_fullchain.pem"));
    let (dsa_chain, dsa_key) = (cert("dsa_fullchain.pem"), cert("dsa_pkey.pem"));
    create_fails(
        &[("cert-file-path", &dsa_chain), ("pkey-file-path", &dsa_key)],
        libc::ENOTSUP,
        "DSA",
    );
    create_fails(
        &[
            ("cert-file-path", &chain),
            ("pkey-file-path", &cert("encrypted_pkey.pem")),
        ],
        libc::ENOTSUP,
        "encrypted",
    );
    create_fails(
        &[
            ("cert-file-path", &ec_chain),
            ("pkey-file-path", &cert("privkey.pem")),
        ],
        libc::EINVAL,
        "does not match",
    );
    let empty = certs().join("empty.pem");
    std::fs::write(&empty, "\n").unwrap();
    let empty = empty.to_string_lossy().into_owned();
    create_fails(
        &[
            ("cert-file-path", &empty),
            ("pkey-file-path", &cert("privkey.pem")),
        ],
        libc::EINVAL,
        "is empty",
    );
    create_fails(
        &[
            ("cert-file-path", "/nonexistent/chain.pem"),
            ("pkey-file-path", &cert("privkey.pem")),
        ],
        libc::ENOENT,
        "/nonexistent/chain.pem",
    );
    create_fails(
        &[("cert-file-path", &chain)],
        libc::EINVAL,
        "needs 'pkey-file-path'",
    );
    create_fails(
        &[
            ("cert-file-path", &chain),
            ("pkey-file-path", &cert("privkey.pem")),
            ("ca-certs-file-path", &cert("RootCA.pem")),
            ("tls-certificate-request-authority-names", "No Such CA"),
        ],
        libc::EINVAL,
        "No Such CA",
    );
    // The same checks guard a client's own certificate.
    let events = Recorder::new(false);
    let client = open(
        "wss://localhost:1/",
        &events,
        &[("cert-file-path", &dsa_chain), ("pkey-file-path", &dsa_key)],
        2000,
    );
    assert!(client.is_null());
    assert_eq!(errno(), libc::ENOTSUP, "{}", last_error());
    assert!(last_error().contains("DSA"));
    oasis_finalize();
}

/// A blocking wss open that must fail: NULL, the errno, the sentence, onError 1015.
fn open_fails(url: &str, extra: &[(&str, &str)], errno_expected: i32, says: &str) {
    let events = Recorder::new(false);
    let connection = open(url, &events, extra, 5000);
    assert!(connection.is_null(), "{url} {extra:?} should fail");
    assert_eq!(errno(), errno_expected, "{}", last_error());
    assert!(
        last_error().contains(says),
        "last error '{}' should say '{says}'",
        last_error()
    );
    events.wait_for("onError 1015", |e| {
        e.iter().any(|(_, s)| *s == Seen::Error(1015))
    });
    assert!(logged(says), "a log line says '{says}'");
}

#[test]
fn client_side_handshake_failures() {
    init();
    capture_logs();
    let root = cert("RootCA.pem");
    let other = cert("OtherCA.pem");
    let trust_root = [("ca-certs-file-path", root.as_str())];
    let server_events = Recorder::new(true);
    let (good, good_port) = tls_server(&server_events, "fullchain.pem", "privkey.pem", &[]);
    open_fails(
        &format!("wss://localhost:{good_port}"),
        &[("ca-certs-file-path", &other)],
        libc::EKEYREJECTED,
        "unknown CA",
    );
    for (chain, key, errno_expected, says) in [
        (
            "expired_fullchain.pem",
            "expired_pkey.pem",
            libc::EKEYEXPIRED,
            "expired",
        ),
        (
            "future_fullchain.pem",
            "future_pkey.pem",
            libc::EKEYEXPIRED,
            "not valid yet",
        ),
        (
            "wrongname_fullchain.pem",
            "wrongname_pkey.pem",
            libc::EKEYREJECTED,
            "name mismatch",
        ),
    ] {
        let events = Recorder::new(true);
        let (server, port) = tls_server(&events, chain, key, &[]);
        open_fails(
            &format!("wss://localhost:{port}"),
            &trust_root,
            errno_expected,
            says,
        );
        // With validation off the same server is accepted, with a warning.
        let accepting = Recorder::new(false);
        let c = open(
            &format!("wss://localhost:{port}"),
            &accepting,
            &[("tls-disable-certificate-validation", "1")],
            5000,
        );
        assert!(!c.is_null(), "{}", last_error());
        assert!(logged("certificate validation is off"));
        wsConnectionRelease(c);
        destroyWsServer(server);
    }
    // Protocol mismatch: wss to a plain ws server.
    let plain_events = Recorder::new(true);
    let (plain, plain_port) = start_server(&plain_events, &[]);
    open_fails(
        &format!("wss://127.0.0.1:{plain_port}"),
        &trust_root,
        libc::EPROTO,
        "TLS",
    );
    // The TLS server kept serving through all of it.
    let fine = Recorder::new(false);
    let c = open(
        &format!("wss://localhost:{good_port}"),
        &fine,
        &trust_root,
        5000,
    );
    assert!(!c.is_null(), "{}", last_error());
    wsConnectionRelease(c);
    destroyWsServer(plain);
    destroyWsServer(good);
    oasis_finalize();
}

#[test]
fn async_wss_open_reports_success_and_failure_through_callbacks() {
    init();
    let server_events = Recorder::new(true);
    let (server, port) = tls_server(&server_events, "ec_fullchain.pem", "ec_pkey.pem", &[]);
    let ok = Recorder::new(false);
    let good = open(
        &format!("wss://localhost:{port}"),
        &ok,
        &[("ca-certs-file-path", &cert("RootCA.pem"))],
        0,
    );
    assert!(!good.is_null());
    ok.wait_for("onOpen", |e| e.iter().any(|(_, s)| *s == Seen::Open));
    let bad = Recorder::new(false);
    let refused = open(
        &format!("wss://localhost:{port}"),
        &bad,
        &[("ca-certs-file-path", &cert("OtherCA.pem"))],
        0,
    );
    assert!(!refused.is_null());
    bad.wait_for("onError 1015", |e| {
        e.iter().any(|(_, s)| *s == Seen::Error(1015))
    });
    assert_eq!(bad.count(is_close), 0);
    wsConnectionRelease(good);
    wsConnectionRelease(refused);
    destroyWsServer(server);
    oasis_finalize();
}

#[test]
fn mutual_tls_with_named_authorities() {
    init();
    capture_logs();
    let root = cert("RootCA.pem");
    let both = format!("{root}\n{}", cert("OtherCA.pem"));
    let server_events = Recorder::new(true);
    let (server, port) = tls_server(
        &server_events,
        "fullchain.pem",
        "privkey.pem",
        &[
            ("ca-certs-file-path", &both),
            (
                "tls-certificate-request-authority-names",
                "Oasis Test Root CA",
            ),
        ],
    );
    let url = format!("wss://localhost:{port}");
    let (client_chain, client_key) = (cert("client_fullchain.pem"), cert("client_privkey.pem"));
    let authorised = Recorder::new(false);
    let c = open(
        &url,
        &authorised,
        &[
            ("ca-certs-file-path", &root),
            ("cert-file-path", &client_chain),
            ("pkey-file-path", &client_key),
        ],
        5000,
    );
    assert!(!c.is_null(), "authorised client: {}", last_error());
    assert_eq!(send_text(c, "let me in"), 0);
    authorised.wait_for("echo", |e| {
        e.iter().any(|(_, s)| matches!(s, Seen::Message(..)))
    });
    wsConnectionRelease(c);

    let server_errors = |n: usize| {
        server_events.wait_for("server onError 1015", |e| {
            e.iter().filter(|(_, s)| *s == Seen::Error(1015)).count() >= n
        })
    };
    // No certificate at all.
    open_fails(
        &url,
        &[("ca-certs-file-path", &root)],
        libc::EACCES,
        "certificate",
    );
    server_errors(1);
    assert!(logged("client certificate missing"));
    // A certificate from the other CA: it chains to ca-certs-file-path, but that authority is not named.
    let (other_chain, other_key) = (
        cert("other_client_fullchain.pem"),
        cert("other_client_privkey.pem"),
    );
    open_fails(
        &url,
        &[
            ("ca-certs-file-path", &root),
            ("cert-file-path", &other_chain),
            ("pkey-file-path", &other_key),
        ],
        libc::EACCES,
        "refused our certificate",
    );
    server_errors(2);
    assert!(logged("not in tls-certificate-request-authority-names"));
    destroyWsServer(server);

    // A server that trusts only the root CA refuses the other CA's client as unknown.
    let strict_events = Recorder::new(true);
    let (strict, strict_port) = tls_server(
        &strict_events,
        "fullchain.pem",
        "privkey.pem",
        &[
            ("ca-certs-file-path", &root),
            (
                "tls-certificate-request-authority-names",
                "Oasis Test Root CA",
            ),
        ],
    );
    open_fails(
        &format!("wss://localhost:{strict_port}"),
        &[
            ("ca-certs-file-path", &root),
            ("cert-file-path", &other_chain),
            ("pkey-file-path", &other_key),
        ],
        libc::EKEYREJECTED,
        "unknown CA",
    );
    strict_events.wait_for("server onError 1015", |e| {
        e.iter().any(|(_, s)| *s == Seen::Error(1015))
    });
    assert!(logged("client certificate is not signed by a trusted CA"));
    destroyWsServer(strict);
    oasis_finalize();
}

/// The ClientHello a client sends to a bare TCP listener.
fn client_hello(url_host: &str, sni: &str) -> Vec<u8> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let events = Recorder::new(false);
    let url = format!("wss://{url_host}:{port}");
    let extra = [
        ("tls-disable-certificate-validation", "1"),
        ("tls-use-sni", sni),
    ];
    let connection = open(&url, &events, &extra, 0);
    assert!(!connection.is_null());
    let (mut socket, _) = listener.accept().unwrap();
    socket.set_read_timeout(Some(WAIT)).unwrap();
    let mut hello = vec![0u8; 4096];
    let n = socket.read(&mut hello).unwrap();
    hello.truncate(n);
    drop(socket);
    wsConnectionRelease(connection);
    hello
}

#[test]
fn sni_carries_the_host_name_only_when_asked_and_never_an_address() {
    init();
    let has = |hello: &[u8], name: &[u8]| hello.windows(name.len()).any(|w| w == name);
    assert!(
        has(&client_hello("localhost", "1"), b"localhost"),
        "SNI sent by default"
    );
    assert!(
        !has(&client_hello("localhost", "0"), b"localhost"),
        "tls-use-sni=0 sends none"
    );
    assert!(
        !has(&client_hello("127.0.0.1", "1"), b"127.0.0.1"),
        "an IP address is never sent as SNI"
    );
    oasis_finalize();
}

#[test]
fn bursts_are_echoed_over_tls_both_ways() {
    init();
    // 1000 messages of 4 KiB sent at once by one side and echoed by the other: every read of a
    // TLS stream must drain the socket like a plain one, or echoes stall.
    for client_sends in [true, false] {
        let big_buffer = [("send-buffer-size-max", "67108864")];
        let server_events = Recorder::new(client_sends);
        let (server, port) =
            tls_server(&server_events, "fullchain.pem", "privkey.pem", &big_buffer);
        let client_events = Recorder::new(!client_sends);
        let root = cert("RootCA.pem");
        let client = open(
            &format!("wss://localhost:{port}"),
            &client_events,
            &[("ca-certs-file-path", &root), big_buffer[0]],
            5000,
        );
        assert!(!client.is_null(), "{}", last_error());
        let (sender, echoes) = if client_sends {
            (client, &client_events)
        } else {
            let opened = server_events
                .wait_for("server onOpen", |e| e.iter().any(|(_, s)| *s == Seen::Open));
            (opened[0].0 as *mut WsConnection, &server_events)
        };
        let text = "x".repeat(4096);
        for _ in 0..1000 {
            assert_eq!(send_text(sender, &text), 0, "{}", last_error());
        }
        echoes.wait_messages(1000);
        wsConnectionRelease(client);
        destroyWsServer(server);
    }
    oasis_finalize();
}

unsafe extern "C" fn greet_on_open(_user: *mut std::ffi::c_void, event: *mut WsEvent) {
    // Upgrade response and this message leave together (one write, one TLS record), larger
    // than the opening thread's 4 KiB reads: the tail stays behind in the socket or the TLS
    // session when the connection changes hands.
    let payload = [7u8; 4000];
    assert_eq!(
        unsafe {
            wsSendBinary(
                wsEventConnection(event),
                payload.as_ptr().cast(),
                payload.len(),
            )
        },
        0
    );
}

#[test]
fn messages_sent_with_the_handshake_reach_a_blocking_client() {
    init();
    // The server sends a message from onOpen, so it travels with the upgrade response: bytes
    // the opening thread read or decrypted beyond the response must not be stranded.
    let vtable = WsEventDelegateVTable {
        struct_size: std::mem::size_of::<WsEventDelegateVTable>() as u32,
        onOpen: Some(greet_on_open),
        onMessage: None,
        onError: None,
        onClose: None,
        release: None,
    };
    for tls in [true, false] {
        let (chain, key) = (cert("fullchain.pem"), cert("privkey.pem"));
        let mut list = vec![("port", "0"), ("bind-address", "127.0.0.1")];
        if tls {
            list.extend([
                ("cert-file-path", chain.as_str()),
                ("pkey-file-path", key.as_str()),
            ]);
        }
        let p = params(&list);
        let server = unsafe {
            createWsServer(
                p.pairs.as_ptr(),
                p.pairs.len(),
                &vtable,
                std::ptr::null_mut(),
            )
        };
        assert_eq!(startWsServer(server), 0);
        let scheme = if tls { "wss" } else { "ws" };
        let events = Recorder::new(false);
        let client = open(
            &format!("{scheme}://localhost:{}", wsServerPort(server)),
            &events,
            &[("ca-certs-file-path", &cert("RootCA.pem"))],
            5000,
        );
        assert!(!client.is_null(), "{}", last_error());
        events.wait_for("the greeting", |e| {
            e.iter()
                .any(|(_, s)| matches!(s, Seen::Message(_, d) if d.len() == 4000))
        });
        wsConnectionRelease(client);
        destroyWsServer(server);
    }
    oasis_finalize();
}

/// A client that upgrades (over TLS when asked); dropping what it returns makes it vanish: its
/// socket is closed with no closing handshake, as when the peer's process dies.
fn upgrade_raw(port: u16, tls: bool) -> Box<dyn std::any::Any> {
    upgrade_raw_with(port, tls, rustls::DEFAULT_VERSIONS)
}

fn upgrade_raw_with(
    port: u16,
    tls: bool,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Box<dyn std::any::Any> {
    use std::io::Write;
    let request = "GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    let tcp = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.set_read_timeout(Some(WAIT)).unwrap();
    let mut head = [0u8; 12];
    if tls {
        use rustls::pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        for ca in rustls::pki_types::CertificateDer::pem_file_iter(cert("RootCA.pem")).unwrap() {
            roots.add(ca.unwrap()).unwrap();
        }
        let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        let session = rustls::ClientConnection::new(
            std::sync::Arc::new(config),
            "localhost".try_into().unwrap(),
        )
        .unwrap();
        let mut stream = rustls::StreamOwned::new(session, tcp);
        stream.write_all(request.as_bytes()).unwrap();
        stream.read_exact(&mut head).unwrap();
        assert_eq!(&head, b"HTTP/1.1 101");
        Box::new(stream)
    } else {
        let mut stream = tcp;
        stream.write_all(request.as_bytes()).unwrap();
        stream.read_exact(&mut head).unwrap();
        assert_eq!(&head, b"HTTP/1.1 101");
        Box::new(stream)
    }
}

#[test]
fn sending_to_a_vanished_peer_fails_cleanly_without_sigpipe() {
    init(); // SIGPIPE back to its default action: a write that raised it would kill this test.
    for tls in [false, true] {
        let server_events = Recorder::new(false);
        let (server, port) = if tls {
            tls_server(&server_events, "fullchain.pem", "privkey.pem", &[])
        } else {
            start_server(&server_events, &[])
        };
        let peer = upgrade_raw(port, tls);
        let server_side = server_events
            .wait_for("server onOpen", |e| e.iter().any(|(_, s)| *s == Seen::Open))[0]
            .0 as *mut WsConnection;
        assert_eq!(wsConnectionRetain(server_side), 0);
        drop(peer);
        let payload = vec![1u8; 16 * 1024];
        let mut failed = false;
        for _ in 0..10_000 {
            if unsafe { wsSendBinary(server_side, payload.as_ptr().cast(), payload.len()) } != 0 {
                failed = true;
                break;
            }
        }
        assert!(failed, "sends to a vanished peer must start failing");
        assert!(
            [libc::ENOTCONN, libc::ECONNRESET, libc::EAGAIN].contains(&errno()),
            "{}",
            last_error()
        );
        server_events.wait_for("onClose 1006", |e| {
            e.iter().any(|(_, s)| matches!(s, Seen::Close(1006, _)))
        });
        wsConnectionRelease(server_side);
        destroyWsServer(server);
    }
    oasis_finalize();
}

#[test]
fn tls_1_2_and_1_3_clients_are_both_served() {
    init();
    for (chain, key) in [
        ("fullchain.pem", "privkey.pem"),
        ("ec_fullchain.pem", "ec_pkey.pem"),
    ] {
        let events = Recorder::new(true);
        let (server, port) = tls_server(&events, chain, key, &[]);
        for versions in [
            &[&rustls::version::TLS12][..],
            &[&rustls::version::TLS13][..],
        ] {
            let opened = events.count(|s| *s == Seen::Open);
            let peer = upgrade_raw_with(port, true, versions);
            events.wait_for("server onOpen", |e| {
                e.iter().filter(|(_, s)| *s == Seen::Open).count() > opened
            });
            drop(peer);
        }
        destroyWsServer(server);
    }
    oasis_finalize();
}
