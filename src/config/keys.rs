//! The one table of parameter keys. Each entry gives a key's value type (which is also how its
//! value is parsed and checked), its default (applied by the same parser, so the documented
//! default is the default), its doc line, and what it sets for each object it applies to.
//! `docs/PARAMETERS.md` is generated from it (`cargo test --test docs` checks it is current).

use super::{ClientConfig, ConnectionSettings, HttpServerDraft, RuntimeConfig, ServerDraft};
use crate::log::LogLevel;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

/// What a key's value must look like; parsing and the docs' type column both come from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    Integer {
        min: u64,
        max: u64,
    },
    Bytes {
        min: u64,
        max: u64,
    },
    Millis {
        min: u64,
        max: u64,
    },
    Bool,
    Path,
    /// Several paths separated by newlines (the SDK's format for ca-certs-file-path).
    PathList,
    /// Names separated by newlines.
    NameList,
    /// Subprotocol names (HTTP tokens) separated by commas or spaces.
    Protocols,
    Address,
    LogLevel,
}

/// A parsed value, of the shape its key's [`ValueKind`] gives.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Number(u64),
    Bool(bool),
    Path(PathBuf),
    Paths(Vec<PathBuf>),
    Names(Vec<String>),
    Address(IpAddr),
    Level(LogLevel),
}

impl Value {
    pub fn number(&self) -> u64 {
        match self {
            Value::Number(n) => *n,
            other => unreachable!("a number key holds {other:?}"),
        }
    }

    pub fn flag(&self) -> bool {
        matches!(self, Value::Bool(true))
    }

    pub fn path(&self) -> PathBuf {
        match self {
            Value::Path(path) => path.clone(),
            other => unreachable!("a path key holds {other:?}"),
        }
    }

    pub fn paths(&self) -> Vec<PathBuf> {
        match self {
            Value::Paths(paths) => paths.clone(),
            other => unreachable!("a path-list key holds {other:?}"),
        }
    }

    pub fn names(&self) -> Vec<String> {
        match self {
            Value::Names(names) => names.clone(),
            other => unreachable!("a name-list key holds {other:?}"),
        }
    }

    pub fn millis(&self) -> Duration {
        Duration::from_millis(self.number())
    }

    pub fn size(&self) -> usize {
        usize::try_from(self.number()).unwrap_or(usize::MAX)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Initialize,
    /// createWsServer.
    Server,
    Client,
    /// createHttpServer.
    HttpServer,
    /// createHttpWsService: one WebSocket path of an HTTP server.
    Service,
}

impl Scope {
    pub const ALL: [Scope; 5] = [
        Scope::Initialize,
        Scope::Server,
        Scope::Client,
        Scope::HttpServer,
        Scope::Service,
    ];

    pub fn noun(self) -> &'static str {
        match self {
            Scope::Initialize => "oasis_initialize",
            Scope::Server => "a server",
            Scope::Client => "a client connection",
            Scope::HttpServer => "an HTTP server",
            Scope::Service => "a WebSocket service",
        }
    }
}

pub type Setter<T> = fn(&mut T, &Value);

pub struct KeyInfo {
    pub name: &'static str,
    pub kind: ValueKind,
    /// The default value, written as a user would write it (parsed with `kind`), or None.
    pub default: Option<&'static str>,
    /// How the docs describe the default: a gloss after the value, or the whole text when there
    /// is no default value ("required", "none", …).
    pub default_note: &'static str,
    pub effect: &'static str,
    pub initialize: Option<Setter<RuntimeConfig>>,
    pub server: Option<Setter<ServerDraft>>,
    pub client: Option<Setter<ClientConfig>>,
    pub http_server: Option<Setter<HttpServerDraft>>,
    pub service: Option<Setter<ConnectionSettings>>,
    /// A TLS key: on a `ws://` URL it has no effect, and the client says so.
    pub tls: bool,
}

impl KeyInfo {
    pub fn applies_to(&self, scope: Scope) -> bool {
        match scope {
            Scope::Initialize => self.initialize.is_some(),
            Scope::Server => self.server.is_some(),
            Scope::Client => self.client.is_some(),
            Scope::HttpServer => self.http_server.is_some(),
            Scope::Service => self.service.is_some(),
        }
    }

    pub fn scopes(&self) -> Vec<Scope> {
        Scope::ALL
            .into_iter()
            .filter(|scope| self.applies_to(*scope))
            .collect()
    }

    /// The docs' type column.
    pub fn value_type(&self) -> String {
        match self.kind {
            ValueKind::Integer { min, max } => format!("integer {min}..{max}"),
            // The range is shown when it is narrower than "any size" (1 or 0 .. i32::MAX).
            ValueKind::Bytes { min, max } if max < i32::MAX as u64 => {
                format!("bytes {min}..{max}")
            }
            ValueKind::Bytes { .. } => "bytes".into(),
            ValueKind::Millis { min, max } => format!("milliseconds {min}..{max}"),
            ValueKind::Bool => "boolean (1/0, true/false, yes/no, on/off)".into(),
            ValueKind::Path => "path".into(),
            ValueKind::PathList => "paths separated by newlines".into(),
            ValueKind::NameList => "common names separated by newlines".into(),
            ValueKind::Protocols => "comma-separated tokens".into(),
            ValueKind::Address => "IPv4 or IPv6 address".into(),
            ValueKind::LogLevel => "off|error|warn|info|debug|trace or 0..5".into(),
        }
    }

    /// The docs' default column.
    pub fn default_text(&self) -> String {
        match (self.default, self.default_note) {
            (Some(value), "") => value.to_string(),
            (Some(value), note) => format!("{value} ({note})"),
            (None, note) => note.to_string(),
        }
    }
}

/// A key every connection understands, for servers and clients alike.
/// (The connections of a WebSocket server, a client, and of the services of an HTTP server.)
macro_rules! connection_setters {
    ($apply:expr) => {
        (
            Some(|draft: &mut ServerDraft, value: &Value| $apply(&mut draft.connection, value)),
            Some(|config: &mut ClientConfig, value: &Value| $apply(&mut config.connection, value)),
            Some(|settings: &mut ConnectionSettings, value: &Value| $apply(settings, value)),
        )
    };
}

type ConnectionSetters = (
    Option<Setter<ServerDraft>>,
    Option<Setter<ClientConfig>>,
    Option<Setter<ConnectionSettings>>,
);

/// For the keys that mean nothing once an HTTP server has upgraded the connection.
const fn not_for_services(setters: ConnectionSetters) -> ConnectionSetters {
    (setters.0, setters.1, None)
}

const fn connection_key(
    name: &'static str,
    kind: ValueKind,
    default: Option<&'static str>,
    default_note: &'static str,
    effect: &'static str,
    setters: ConnectionSetters,
) -> KeyInfo {
    KeyInfo {
        name,
        kind,
        default,
        default_note,
        effect,
        server: setters.0,
        client: setters.1,
        service: setters.2,
        ..UNSET
    }
}

/// What a key leaves out: the objects it does not apply to, and the TLS mark.
const UNSET: KeyInfo = KeyInfo {
    name: "",
    kind: ValueKind::Bool,
    default: None,
    default_note: "",
    effect: "",
    initialize: None,
    server: None,
    client: None,
    http_server: None,
    service: None,
    tls: false,
};

const SIZE: ValueKind = ValueKind::Bytes {
    min: 1,
    max: i32::MAX as u64,
};
const TIMEOUT: ValueKind = ValueKind::Millis {
    min: 1,
    max: 3_600_000,
};

pub const KEYS: &[KeyInfo] = &[
    KeyInfo {
        name: "event-loop-threads",
        kind: ValueKind::Integer { min: 1, max: 64 },
        default: Some("1"),
        default_note: "",
        effect: "Number of event-loop threads. Callbacks run on them; accepted and opened connections are spread over them round-robin.",
        initialize: Some(|config, value| config.event_loop_threads = value.size()),
        ..UNSET
    },
    KeyInfo {
        name: "event-loop-read-size",
        kind: ValueKind::Bytes {
            min: 4096,
            max: 16 * 1024 * 1024,
        },
        default: Some("524288"),
        default_note: "512 KiB",
        effect: "Bytes one read on an event loop may take, into a buffer each event-loop thread allocates once and its connections share. Larger reads take a stream of large messages in fewer system calls; the buffer's pages become resident only as reads reach them, and then stay. Frames of 16 KiB and more are read into a buffer of their connection's own: 64 KiB at a time, more while reads come back full (up to this size, when it is larger), or as much as that buffer already has room for (a spare one from the loop, or one grown for a larger frame); the buffer grows no larger than this size, or than the frame in progress when that is larger. The loop also keeps the send buffer that one read's replies grew, up to this size, for the next read's replies.",
        initialize: Some(|config, value| config.receive_buffer_size = value.size()),
        ..UNSET
    },
    KeyInfo {
        name: "log-level",
        kind: ValueKind::LogLevel,
        default: None,
        default_note: "the current level (warn at start)",
        effect: "Lines at or below this level are written (to stderr, or to the hook set with oasis_log_set_hook).",
        initialize: Some(|config, value| {
            if let Value::Level(level) = value {
                config.log_level = Some(*level);
            }
        }),
        ..UNSET
    },
    KeyInfo {
        name: "offs-disable",
        kind: ValueKind::Bool,
        default: None,
        default_note: "-",
        effect: "Accepted for compatibility with the Oasis SDK samples; it has no effect here.",
        initialize: Some(|_, _| {}),
        ..UNSET
    },
    KeyInfo {
        name: "port",
        kind: ValueKind::Integer { min: 0, max: 65535 },
        default: None,
        default_note: "required",
        effect: "TCP port to listen on; 0 picks a free port (read it back with wsServerPort or httpServerPort).",
        server: Some(|draft, value| draft.port = u16::try_from(value.number()).ok()),
        http_server: Some(|draft, value| draft.port = u16::try_from(value.number()).ok()),
        ..UNSET
    },
    KeyInfo {
        name: "bind-address",
        kind: ValueKind::Address,
        default: Some("0.0.0.0"),
        default_note: "",
        effect: "Local address to listen on, e.g. 127.0.0.1, ::1 or :: (IPv6, and IPv4 where the system maps it).",
        server: Some(|draft, value| {
            if let Value::Address(address) = value {
                draft.bind_address = *address;
            }
        }),
        http_server: Some(|draft, value| {
            if let Value::Address(address) = value {
                draft.bind_address = *address;
            }
        }),
        ..UNSET
    },
    connection_key(
        "websocket-protocols",
        ValueKind::Protocols,
        None,
        "none",
        "Server: the subprotocols it accepts, in order of preference (the first one the client also offers is chosen). Client: the subprotocols it offers. The agreed one is read with wsConnectionProtocol.",
        connection_setters!(|settings: &mut ConnectionSettings, value: &Value| settings
            .protocols =
            value.names()),
    ),
    connection_key(
        "websocket-fragment-size-max",
        ValueKind::Bytes {
            min: 0,
            max: i32::MAX as u64,
        },
        Some("0"),
        "never fragment",
        "Outgoing messages larger than this are sent as fragments of at most this many payload bytes.",
        connection_setters!(|settings: &mut ConnectionSettings, value: &Value| settings
            .limits
            .fragment_max =
            value.size()),
    ),
    connection_key(
        "websocket-message-size-max",
        SIZE,
        Some("16777216"),
        "16 MiB",
        "Largest incoming message after reassembly; a larger one gives onError and onClose with 1009.",
        connection_setters!(|settings: &mut ConnectionSettings, value: &Value| settings
            .limits
            .message_max =
            value.size()),
    ),
    connection_key(
        "send-buffer-size-max",
        SIZE,
        Some("1048576"),
        "1 MiB",
        "Bytes that may wait unsent per connection. A send that would go beyond it fails with -1/EAGAIN (a message is always accepted when nothing is waiting).",
        connection_setters!(|settings: &mut ConnectionSettings, value: &Value| settings
            .limits
            .send_buffer_max =
            value.size()),
    ),
    connection_key(
        "handshake-timeout-ms",
        TIMEOUT,
        Some("10000"),
        "",
        "Server: time allowed from TCP accept to a completed opening handshake; then the socket is dropped. (The server accepts a connection once its first bytes arrive, or after about a second without any: TCP_DEFER_ACCEPT.) Client opened with timeout_msec <= 0: time allowed for the whole open (name resolution, TCP connect, TLS, opening handshake); then onError 1006. (A blocking open is bounded by its timeout_msec instead.) Not for a service of an HTTP server, whose http-request-timeout-ms bounds the upgrade request.",
        not_for_services(connection_setters!(
            |settings: &mut ConnectionSettings, value: &Value| settings.limits.handshake_timeout =
                value.millis()
        )),
    ),
    connection_key(
        "close-timeout-ms",
        TIMEOUT,
        Some("5000"),
        "",
        "Time allowed for the peer to answer a close frame (and to drain what was queued before it); then the connection is dropped and onClose reports 1006. A peer still reading what was queued before the close frame is not dropped: while its TCP acknowledges more of it, each timeout is followed by another, and one more follows the timeout in which its TCP got the close frame. A peer that stopped reading counts as reading while its TCP still takes bytes into its receive buffer. A stop (of a server or HTTP server, oasis_finalize) extends no close: it waits this long plus 1 s for its connections (oasis_finalize: the largest server's, at least 5 s).",
        connection_setters!(|settings: &mut ConnectionSettings, value: &Value| settings
            .limits
            .close_timeout =
            value.millis()),
    ),
    connection_key(
        "websocket-ping-interval-ms",
        ValueKind::Millis {
            min: 0,
            max: 3_600_000,
        },
        Some("0"),
        "off",
        "Keepalive: after this long without hearing from the peer, send a ping. 0 turns keepalive off (then an idle connection costs no wake-ups).",
        connection_setters!(|settings: &mut ConnectionSettings, value: &Value| settings
            .limits
            .ping_interval =
            (value.number() > 0).then(|| value.millis())),
    ),
    connection_key(
        "websocket-pong-timeout-ms",
        TIMEOUT,
        Some("10000"),
        "",
        "Keepalive: how long after its ping the peer has to answer (or send anything); past it the connection ends with onClose 1006. A peer that vanished without closing TCP is detected within websocket-ping-interval-ms + this. A ping queued behind other bytes does not count against a peer still reading them: while the peer's TCP acknowledges more of what comes before the ping, each timeout is followed by another, and one more follows the timeout in which its TCP got the ping.",
        connection_setters!(|settings: &mut ConnectionSettings, value: &Value| settings
            .limits
            .pong_timeout =
            value.millis()),
    ),
    KeyInfo {
        name: "websocket-keep-request-headers",
        kind: ValueKind::Bool,
        default: Some("0"),
        default_note: "",
        effect: "Keep each connection's upgrade request head for the connection's life, so that wsConnectionRequestHeader answers after onOpen too. Otherwise the head is dropped when onOpen returns (it costs memory on every connection) and the call fails with ENODATA afterwards; wsConnectionRequestPath and wsConnectionRequestQuery answer either way.",
        server: Some(|draft, value| draft.connection.keep_request_headers = value.flag()),
        service: Some(|settings, value| settings.keep_request_headers = value.flag()),
        ..UNSET
    },
    KeyInfo {
        name: "cert-file-path",
        kind: ValueKind::Path,
        default: None,
        default_note: "none",
        effect: "Own certificate chain (PEM, leaf first). Server: with pkey-file-path, the server serves wss:// only (an HTTP server https:// and wss:// only). Client: the client certificate for mutual TLS. Read when the server is created / the connection opened: a missing, empty or broken file fails that call.",
        server: Some(|draft, value| draft.tls.cert_file = Some(value.path())),
        http_server: Some(|draft, value| draft.tls.cert_file = Some(value.path())),
        client: Some(|config, value| config.tls.cert_file = Some(value.path())),
        tls: true,
        ..UNSET
    },
    KeyInfo {
        name: "pkey-file-path",
        kind: ValueKind::Path,
        default: None,
        default_note: "none",
        effect: "The private key of cert-file-path (PEM): RSA (PKCS#1 or PKCS#8), ECDSA P-256/P-384 (SEC1 or PKCS#8) or Ed25519 (PKCS#8). A DSA or encrypted key fails with ENOTSUP, a key that does not match the certificate with EINVAL.",
        server: Some(|draft, value| draft.tls.key_file = Some(value.path())),
        http_server: Some(|draft, value| draft.tls.key_file = Some(value.path())),
        client: Some(|config, value| config.tls.key_file = Some(value.path())),
        tls: true,
        ..UNSET
    },
    KeyInfo {
        name: "ca-certs-file-path",
        kind: ValueKind::PathList,
        default: None,
        default_note: "client: /etc/ssl/certs/ca-certificates.crt; server: none",
        effect: "PEM files of CA certificates (each may hold several). Client: the trust anchors for the server's certificate. Server: the CAs client certificates must chain to; client certificates are then requested (optional unless tls-certificate-request-authority-names is set).",
        server: Some(|draft, value| draft.tls.ca_files = value.paths()),
        http_server: Some(|draft, value| draft.tls.ca_files = value.paths()),
        client: Some(|config, value| config.tls.ca_files = value.paths()),
        tls: true,
        ..UNSET
    },
    KeyInfo {
        name: "tls-certificate-request-authority-names",
        kind: ValueKind::NameList,
        default: None,
        default_note: "none",
        effect: "Makes client certificates mandatory: only clients whose certificate was issued by one of these authorities get in. Each name is the subject Common Name (CN) of a certificate in ca-certs-file-path; their subjects are listed in the CertificateRequest. A name no CA certificate carries fails createWsServer (createHttpServer).",
        server: Some(|draft, value| draft.tls.authority_names = value.names()),
        http_server: Some(|draft, value| draft.tls.authority_names = value.names()),
        tls: true,
        ..UNSET
    },
    KeyInfo {
        name: "tls-disable-certificate-validation",
        kind: ValueKind::Bool,
        default: Some("0"),
        default_note: "",
        effect: "Accept any server certificate (expired, self-signed, other name); a warning is logged for each such connection. Handshake signatures are still checked.",
        client: Some(|config, value| config.tls.disable_certificate_validation = value.flag()),
        tls: true,
        ..UNSET
    },
    KeyInfo {
        name: "tls-use-sni",
        kind: ValueKind::Bool,
        default: Some("1"),
        default_note: "",
        effect: "Send the URL's host name as SNI. An IP address is never sent. The server certificate is checked against the URL's host either way.",
        client: Some(|config, value| config.tls.use_sni = value.flag()),
        tls: true,
        ..UNSET
    },
    KeyInfo {
        name: "root-dir",
        kind: ValueKind::Path,
        default: None,
        default_note: "none",
        effect: "Folder whose files the HTTP server serves to GET and HEAD (a folder's index.html for the folder). It must exist when createHttpServer is called (else ENOENT, or ENOTDIR for a file) and is resolved once then; no request reaches outside it, not even through a symlink. Without it no path is a file: requests go to the services and onRequest, or get 404.",
        http_server: Some(|draft, value| draft.root_dir = Some(value.path())),
        ..UNSET
    },
    KeyInfo {
        name: "http-connections-max",
        kind: ValueKind::Integer { min: 1, max: 65535 },
        default: Some("256"),
        default_note: "",
        effect: "Connections the HTTP server holds at once, upgraded WebSocket connections included. One more is answered 503 (plain) or just closed (TLS).",
        http_server: Some(|draft, value| draft.http.connections_max = value.size()),
        ..UNSET
    },
    KeyInfo {
        name: "http-request-timeout-ms",
        kind: TIMEOUT,
        default: Some("10000"),
        default_note: "",
        effect: "A request's head and body must arrive within this from their first byte, else 408 and the connection is closed. A new connection that sends nothing is closed silently after this (counted from its accept, which comes about a second after the connect when nothing arrives: TCP_DEFER_ACCEPT).",
        http_server: Some(|draft, value| draft.http.request_timeout = value.millis()),
        ..UNSET
    },
    KeyInfo {
        name: "http-keepalive-timeout-ms",
        kind: TIMEOUT,
        default: Some("15000"),
        default_note: "",
        effect: "A keep-alive connection idle between requests for this long is closed.",
        http_server: Some(|draft, value| draft.http.keepalive_timeout = value.millis()),
        ..UNSET
    },
    KeyInfo {
        name: "http-request-line-max",
        kind: ValueKind::Bytes { min: 64, max: 8192 },
        default: Some("4096"),
        default_note: "",
        effect: "Longest request line (method, target and version); a longer one gets 414.",
        http_server: Some(|draft, value| draft.http.request_line_max = value.size()),
        ..UNSET
    },
    KeyInfo {
        name: "http-header-size-max",
        kind: ValueKind::Bytes {
            min: 1024,
            max: 65536,
        },
        default: Some("8192"),
        default_note: "",
        effect: "Largest request head (request line and headers); a larger one, or one with more than 64 headers, gets 431.",
        http_server: Some(|draft, value| draft.http.header_size_max = value.size()),
        ..UNSET
    },
    KeyInfo {
        name: "http-request-body-max",
        kind: ValueKind::Bytes {
            min: 0,
            max: 16 << 20,
        },
        default: Some("65536"),
        default_note: "64 KiB",
        effect: "Largest request body (given by Content-Length); a larger one gets 413. 0 refuses every body.",
        http_server: Some(|draft, value| draft.http.request_body_max = value.size()),
        ..UNSET
    },
];
