//! The HTTP server's keys and the services' keys: every default, a valid value, every kind of
//! bad value with its errno, root-dir against the file system, and the TLS keys' checks
//! compared with a WebSocket server's.

use super::super::{ConnectionSettings, KEYS, Scope, ServerConfig};
use super::*;
use std::sync::atomic::{AtomicUsize, Ordering};

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// An HTTP server's settings from `list` plus `port=0`.
fn http(list: &[(&str, &str)]) -> Result<HttpServerConfig> {
    let mut all = vec![("port", "0")];
    all.extend_from_slice(list);
    HttpServerConfig::parse(&pairs(&all))
}

fn service(list: &[(&str, &str)]) -> Result<ConnectionSettings> {
    ConnectionSettings::parse_service(&pairs(list))
}

/// A fresh folder under the system's temp dir, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Scratch {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("oasis-config-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `text` must be refused for `key` with EINVAL and a message that names both.
fn assert_refused(result: Result<impl std::fmt::Debug>, key: &str, text: &str) {
    let err = result.expect_err(&format!("{key}={text:?} should be refused"));
    assert_eq!(err.errno, libc::EINVAL, "{key}={text:?}: {}", err.message);
    assert!(
        err.message.contains(&format!("'{key}'")) && err.message.contains(&format!("'{text}'")),
        "{}",
        err.message
    );
}

#[test]
fn http_defaults_come_from_the_table() {
    let config = http(&[]).unwrap();
    assert_eq!(config.port, 0);
    assert_eq!(config.bind_address, IpAddr::from([0, 0, 0, 0]));
    assert_eq!(config.root_dir, None);
    assert!(config.tls.is_none());
    let expected = HttpSettings {
        connections_max: 256,
        request_timeout: Duration::from_millis(10_000),
        keepalive_timeout: Duration::from_millis(15_000),
        request_line_max: 4096,
        header_size_max: 8192,
        request_body_max: 65536,
    };
    assert_eq!(config.http, expected);
    assert_eq!(HttpSettings::default(), expected);
}

#[test]
fn http_keys_take_their_values() {
    let config = http(&[
        ("port", "8080"),
        ("bind-address", "::1"),
        ("http-connections-max", "4"),
        ("http-request-timeout-ms", "300"),
        ("http-keepalive-timeout-ms", "1"),
        ("http-request-line-max", "64"),
        ("http-header-size-max", "65536"),
        ("http-request-body-max", "0"),
    ])
    .unwrap();
    assert_eq!(config.port, 8080, "the last port given wins");
    assert_eq!(config.bind_address, "::1".parse::<IpAddr>().unwrap());
    let limits = &config.http;
    assert_eq!(limits.connections_max, 4);
    assert_eq!(limits.request_timeout, Duration::from_millis(300));
    assert_eq!(limits.keepalive_timeout, Duration::from_millis(1));
    assert_eq!(limits.request_line_max, 64);
    assert_eq!(limits.header_size_max, 65536);
    assert_eq!(limits.request_body_max, 0);
    // The other ends of the ranges.
    let config = http(&[
        ("http-connections-max", "65535"),
        ("http-request-timeout-ms", "3600000"),
        ("http-request-line-max", "8192"),
        ("http-header-size-max", "8192"),
        ("http-request-body-max", "16777216"),
    ])
    .unwrap();
    assert_eq!(config.http.connections_max, 65535);
    assert_eq!(config.http.request_timeout, Duration::from_secs(3600));
    assert_eq!(config.http.request_line_max, 8192);
    assert_eq!(config.http.header_size_max, 8192);
    assert_eq!(config.http.request_body_max, 16 << 20);
    let config = http(&[
        ("http-request-line-max", "1024"),
        ("http-header-size-max", "1024"),
    ])
    .unwrap();
    assert_eq!(config.http.header_size_max, 1024);
    // The request line is part of the head: a head limit below the line's is refused.
    let err = http(&[
        ("http-request-line-max", "4096"),
        ("http-header-size-max", "1024"),
    ])
    .unwrap_err();
    assert_eq!(err.errno, libc::EINVAL);
    assert!(
        err.message.contains("http-header-size-max"),
        "{}",
        err.message
    );
}

#[test]
fn http_keys_refuse_bad_values() {
    let cases: &[(&str, &[&str])] = &[
        ("port", &["65536", "-1", "http", ""]),
        ("bind-address", &["localhost", "1.2.3", ""]),
        (
            "http-connections-max",
            &["0", "65536", "-1", "ten", "", "1.5"],
        ),
        ("http-request-timeout-ms", &["0", "3600001", "-5", "1s"]),
        ("http-keepalive-timeout-ms", &["0", "3600001", "x"]),
        ("http-request-line-max", &["63", "8193", "0", "4k"]),
        ("http-header-size-max", &["1023", "65537", ""]),
        ("http-request-body-max", &["16777217", "-1", "64KiB"]),
        ("root-dir", &["", "   "]),
        ("cert-file-path", &[""]),
        ("ca-certs-file-path", &["", "\n \n"]),
        ("tls-certificate-request-authority-names", &["\n"]),
    ];
    for (key, texts) in cases {
        for text in *texts {
            assert_refused(http(&[(key, text)]), key, text);
        }
    }
}

#[test]
fn http_server_needs_a_port() {
    let err = HttpServerConfig::parse(&pairs(&[("root-dir", "/")])).unwrap_err();
    assert_eq!(err.errno, libc::EINVAL);
    assert!(
        err.message.contains("'port' is required"),
        "{}",
        err.message
    );
}

#[test]
fn root_dir_is_checked_and_made_canonical() {
    let scratch = Scratch::new();
    let www = scratch.0.join("www");
    std::fs::create_dir(&www).unwrap();
    std::fs::write(www.join("index.html"), "hi").unwrap();
    // Given through a symlink and a "." segment, it comes back as the folder itself.
    std::os::unix::fs::symlink(&www, scratch.0.join("link")).unwrap();
    let given = scratch.0.join("link/./");
    let config = http(&[("root-dir", given.to_str().unwrap())]).unwrap();
    let canonical = std::fs::canonicalize(&www).unwrap();
    assert_eq!(config.root_dir.as_deref(), Some(canonical.as_path()));

    let missing = scratch.0.join("nope");
    let err = http(&[("root-dir", missing.to_str().unwrap())]).unwrap_err();
    assert_eq!(err.errno, libc::ENOENT, "{}", err.message);
    assert!(
        err.message.contains("root-dir") && err.message.contains(missing.to_str().unwrap()),
        "{}",
        err.message
    );

    let file = www.join("index.html");
    let err = http(&[("root-dir", file.to_str().unwrap())]).unwrap_err();
    assert_eq!(err.errno, libc::ENOTDIR, "{}", err.message);
    assert!(err.message.contains("not a directory"), "{}", err.message);
    // A symlink to a file is not a folder either.
    std::os::unix::fs::symlink(&file, scratch.0.join("file-link")).unwrap();
    let err = http(&[("root-dir", scratch.0.join("file-link").to_str().unwrap())]).unwrap_err();
    assert_eq!(err.errno, libc::ENOTDIR, "{}", err.message);
    // A dangling symlink is a missing folder.
    std::os::unix::fs::symlink(&missing, scratch.0.join("dangling")).unwrap();
    let err = http(&[("root-dir", scratch.0.join("dangling").to_str().unwrap())]).unwrap_err();
    assert_eq!(err.errno, libc::ENOENT, "{}", err.message);
}

#[test]
fn tls_keys_are_checked_as_a_websocket_server_checks_them() {
    let cases: &[&[(&str, &str)]] = &[
        &[("cert-file-path", "/c.pem")],
        &[("pkey-file-path", "/k.pem")],
        &[
            ("cert-file-path", "/c.pem"),
            ("pkey-file-path", "/k.pem"),
            ("tls-certificate-request-authority-names", "Some CA"),
        ],
        &[
            ("cert-file-path", "/c.pem"),
            ("ca-certs-file-path", "/ca.pem"),
        ],
    ];
    for list in cases {
        let ws = ServerConfig::parse(&pairs(&[&[("port", "0")], *list].concat())).unwrap_err();
        let http = http(list).unwrap_err();
        assert_eq!(http, ws, "{list:?}");
        assert_eq!(http.errno, libc::EINVAL);
    }
    let list = [
        ("cert-file-path", "/c.pem"),
        ("pkey-file-path", "/k.pem"),
        ("ca-certs-file-path", "/ca1.pem\n/ca2.pem"),
        (
            "tls-certificate-request-authority-names",
            "One CA\nOther CA",
        ),
    ];
    let tls = http(&list).unwrap().tls.expect("a TLS server");
    let ws = ServerConfig::parse(&pairs(&[&[("port", "0")], &list[..]].concat()))
        .unwrap()
        .tls
        .unwrap();
    assert_eq!(tls.cert_file, PathBuf::from("/c.pem"));
    assert_eq!(tls.key_file, PathBuf::from("/k.pem"));
    assert_eq!(tls.ca_files, ws.ca_files);
    assert_eq!(tls.ca_files.len(), 2);
    assert_eq!(tls.authority_names, vec!["One CA", "Other CA"]);
    // CA keys without a certificate: not a TLS server (logged), as for a WebSocket server.
    assert!(
        http(&[("ca-certs-file-path", "/ca.pem")])
            .unwrap()
            .tls
            .is_none()
    );
}

#[test]
fn unknown_and_websocket_keys_are_ignored_by_an_http_server() {
    // Even with a value that would be refused: the key is not parsed at all.
    let config = http(&[
        ("no-such-key", "1"),
        ("websocket-message-size-max", "not a size"),
        ("handshake-timeout-ms", "1"),
        ("event-loop-threads", "4"),
        ("tls-use-sni", "0"),
    ])
    .unwrap();
    assert_eq!(config.http, HttpSettings::default());
}

#[test]
fn service_defaults_are_the_documented_ones() {
    let settings = service(&[]).unwrap();
    let documented = ConnectionSettings::default();
    assert_eq!(settings.limits, documented.limits);
    assert!(settings.protocols.is_empty());
    assert!(!settings.keep_request_headers);
    assert_eq!(settings.limits.message_max, 16 << 20);
    assert_eq!(
        settings.limits.handshake_timeout,
        Duration::from_millis(10_000)
    );
}

#[test]
fn service_keys_take_their_values() {
    let settings = service(&[
        ("websocket-protocols", "chat, v2.chat"),
        ("websocket-fragment-size-max", "4096"),
        ("websocket-message-size-max", "1000"),
        ("send-buffer-size-max", "2000"),
        ("close-timeout-ms", "300"),
        ("websocket-ping-interval-ms", "1500"),
        ("websocket-pong-timeout-ms", "700"),
        ("websocket-keep-request-headers", "yes"),
    ])
    .unwrap();
    assert_eq!(settings.protocols, vec!["chat", "v2.chat"]);
    let limits = &settings.limits;
    assert_eq!(limits.fragment_max, 4096);
    assert_eq!(limits.message_max, 1000);
    assert_eq!(limits.send_buffer_max, 2000);
    assert_eq!(limits.close_timeout, Duration::from_millis(300));
    assert_eq!(limits.ping_interval, Some(Duration::from_millis(1500)));
    assert_eq!(limits.pong_timeout, Duration::from_millis(700));
    assert!(settings.keep_request_headers);
    let off = service(&[
        ("websocket-ping-interval-ms", "0"),
        ("websocket-keep-request-headers", "off"),
    ])
    .unwrap();
    assert_eq!(off.limits.ping_interval, None);
    assert!(!off.keep_request_headers);
}

#[test]
fn service_keys_refuse_bad_values() {
    let cases: &[(&str, &[&str])] = &[
        ("websocket-protocols", &["a/b", "chat;v1"]),
        ("websocket-fragment-size-max", &["-1", "2147483648"]),
        ("websocket-message-size-max", &["0", "big"]),
        ("send-buffer-size-max", &["0", "2147483648"]),
        ("close-timeout-ms", &["0", "3600001"]),
        ("websocket-ping-interval-ms", &["3600001", "-1"]),
        ("websocket-pong-timeout-ms", &["0", ""]),
        ("websocket-keep-request-headers", &["2", "maybe", ""]),
    ];
    for (key, texts) in cases {
        for text in *texts {
            assert_refused(service(&[(key, text)]), key, text);
        }
    }
}

#[test]
fn a_service_ignores_its_servers_keys_and_the_handshake_timeout() {
    // Ignored (and logged), never parsed: a bad value does not fail the call.
    let settings = service(&[
        ("port", "80"),
        ("bind-address", "nowhere"),
        ("cert-file-path", "/c.pem"),
        ("root-dir", "/nonexistent"),
        ("http-connections-max", "0"),
        ("handshake-timeout-ms", "1"),
        ("no-such-key", "1"),
    ])
    .unwrap();
    assert_eq!(
        settings.limits.handshake_timeout,
        Duration::from_millis(10_000)
    );
    assert!(
        super::super::ignored_because(Scope::Service, key("handshake-timeout-ms"))
            .contains("http-request-timeout-ms")
    );
    assert!(
        super::super::ignored_because(Scope::Service, key("port")).contains("createHttpServer")
    );
    assert!(
        super::super::ignored_because(Scope::HttpServer, key("websocket-protocols"))
            .contains("createHttpWsService")
    );
}

#[test]
fn keep_request_headers_is_a_websocket_server_key_too() {
    let parse =
        |list: &[(&str, &str)]| ServerConfig::parse(&pairs(&[&[("port", "0")], list].concat()));
    assert!(!parse(&[]).unwrap().connection.keep_request_headers);
    assert!(
        parse(&[("websocket-keep-request-headers", "1")])
            .unwrap()
            .connection
            .keep_request_headers
    );
    assert_refused(
        parse(&[("websocket-keep-request-headers", "10")]),
        "websocket-keep-request-headers",
        "10",
    );
}

fn key(name: &str) -> &'static KeyInfo {
    KEYS.iter().find(|key| key.name == name).unwrap()
}

/// Which keys each new object takes, so that a key cannot slip into or out of one unnoticed.
#[test]
fn each_object_takes_the_documented_keys() {
    let names = |scope: Scope| -> Vec<&str> {
        KEYS.iter()
            .filter(|key| key.applies_to(scope))
            .map(|key| key.name)
            .collect()
    };
    let tls = [
        "cert-file-path",
        "pkey-file-path",
        "ca-certs-file-path",
        "tls-certificate-request-authority-names",
    ];
    let mut http_server = vec!["port", "bind-address"];
    http_server.extend(tls);
    http_server.extend([
        "root-dir",
        "http-connections-max",
        "http-request-timeout-ms",
        "http-keepalive-timeout-ms",
        "http-request-line-max",
        "http-header-size-max",
        "http-request-body-max",
    ]);
    assert_eq!(names(Scope::HttpServer), http_server);
    let websocket = [
        "websocket-protocols",
        "websocket-fragment-size-max",
        "websocket-message-size-max",
        "send-buffer-size-max",
        "close-timeout-ms",
        "websocket-ping-interval-ms",
        "websocket-pong-timeout-ms",
        "websocket-keep-request-headers",
    ];
    assert_eq!(names(Scope::Service), websocket);
    for name in websocket {
        assert!(key(name).applies_to(Scope::Server), "{name}");
    }
    assert!(key("handshake-timeout-ms").applies_to(Scope::Server));
    assert!(!key("websocket-keep-request-headers").applies_to(Scope::Client));
    assert_eq!(
        key("root-dir").scopes(),
        vec![Scope::HttpServer],
        "root-dir is for HTTP servers only"
    );
}
