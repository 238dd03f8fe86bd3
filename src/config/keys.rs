//! The one table of parameter keys. Each entry gives a key's value type (which is also how its
//! value is parsed and checked), its default (applied by the same parser, so the documented
//! default is the default), its doc line, and what it sets for each object it applies to.
//! `docs/PARAMETERS.md` is generated from it (`cargo test --test docs` checks it is current).

use super::{ClientConfig, ConnectionSettings, RuntimeConfig, ServerDraft};
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
    Server,
    Client,
}

impl Scope {
    pub fn noun(self) -> &'static str {
        match self {
            Scope::Initialize => "oasis_initialize",
            Scope::Server => "a server",
            Scope::Client => "a client connection",
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
    /// A TLS key: on a `ws://` URL it has no effect, and the client says so.
    pub tls: bool,
}

impl KeyInfo {
    pub fn applies_to(&self, scope: Scope) -> bool {
        match scope {
            Scope::Initialize => self.initialize.is_some(),
            Scope::Server => self.server.is_some(),
            Scope::Client => self.client.is_some(),
        }
    }

    pub fn scopes(&self) -> Vec<Scope> {
        [Scope::Initialize, Scope::Server, Scope::Client]
            .into_iter()
            .filter(|scope| self.applies_to(*scope))
            .collect()
    }

    /// The docs' type column.
    pub fn value_type(&self) -> String {
        match self.kind {
            ValueKind::Integer { min, max } => format!("integer {min}..{max}"),
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
macro_rules! connection_setters {
    ($apply:expr) => {
        (
            Some(|draft: &mut ServerDraft, value: &Value| $apply(&mut draft.connection, value)),
            Some(|config: &mut ClientConfig, value: &Value| $apply(&mut config.connection, value)),
        )
    };
}

const fn connection_key(
    name: &'static str,
    kind: ValueKind,
    default: Option<&'static str>,
    default_note: &'static str,
    effect: &'static str,
    setters: (Option<Setter<ServerDraft>>, Option<Setter<ClientConfig>>),
) -> KeyInfo {
    KeyInfo {
        name,
        kind,
        default,
        default_note,
        effect,
        initialize: None,
        server: setters.0,
        client: setters.1,
        tls: false,
    }
}

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
        server: None,
        client: None,
        tls: false,
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
        server: None,
        client: None,
        tls: false,
    },
    KeyInfo {
        name: "offs-disable",
        kind: ValueKind::Bool,
        default: None,
        default_note: "-",
        effect: "Accepted for compatibility with the Oasis SDK samples; it has no effect here.",
        initialize: Some(|_, _| {}),
        server: None,
        client: None,
        tls: false,
    },
    KeyInfo {
        name: "port",
        kind: ValueKind::Integer { min: 0, max: 65535 },
        default: None,
        default_note: "required",
        effect: "TCP port to listen on; 0 picks a free port (read it back with wsServerPort).",
        initialize: None,
        server: Some(|draft, value| draft.port = u16::try_from(value.number()).ok()),
        client: None,
        tls: false,
    },
    KeyInfo {
        name: "bind-address",
        kind: ValueKind::Address,
        default: Some("0.0.0.0"),
        default_note: "",
        effect: "Local address to listen on, e.g. 127.0.0.1, ::1 or :: (IPv6, and IPv4 where the system maps it).",
        initialize: None,
        server: Some(|draft, value| {
            if let Value::Address(address) = value {
                draft.bind_address = *address;
            }
        }),
        client: None,
        tls: false,
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
        "Server: time allowed from TCP accept to a completed opening handshake; then the socket is dropped. Client opened with timeout_msec <= 0: time allowed for the whole open (name resolution, TCP connect, TLS, opening handshake); then onError 1006. (A blocking open is bounded by its timeout_msec instead.)",
        connection_setters!(|settings: &mut ConnectionSettings, value: &Value| settings
            .limits
            .handshake_timeout =
            value.millis()),
    ),
    connection_key(
        "close-timeout-ms",
        TIMEOUT,
        Some("5000"),
        "",
        "Time allowed for the peer to answer a close frame (and to drain what was queued before it); then the connection is dropped and onClose reports 1006.",
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
        "Keepalive: how long after its ping the peer has to answer (or send anything); past it the connection ends with onClose 1006. A peer that vanished without closing TCP is detected within websocket-ping-interval-ms + this.",
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
        initialize: None,
        server: Some(|draft, value| draft.connection.keep_request_headers = value.flag()),
        client: None,
        tls: false,
    },
    KeyInfo {
        name: "cert-file-path",
        kind: ValueKind::Path,
        default: None,
        default_note: "none",
        effect: "Own certificate chain (PEM, leaf first). Server: with pkey-file-path, the server serves wss:// only. Client: the client certificate for mutual TLS. Read when the server is created / the connection opened: a missing, empty or broken file fails that call.",
        initialize: None,
        server: Some(|draft, value| draft.cert_file = Some(value.path())),
        client: Some(|config, value| config.tls.cert_file = Some(value.path())),
        tls: true,
    },
    KeyInfo {
        name: "pkey-file-path",
        kind: ValueKind::Path,
        default: None,
        default_note: "none",
        effect: "The private key of cert-file-path (PEM): RSA (PKCS#1 or PKCS#8), ECDSA P-256/P-384 (SEC1 or PKCS#8) or Ed25519 (PKCS#8). A DSA or encrypted key fails with ENOTSUP, a key that does not match the certificate with EINVAL.",
        initialize: None,
        server: Some(|draft, value| draft.key_file = Some(value.path())),
        client: Some(|config, value| config.tls.key_file = Some(value.path())),
        tls: true,
    },
    KeyInfo {
        name: "ca-certs-file-path",
        kind: ValueKind::PathList,
        default: None,
        default_note: "client: /etc/ssl/certs/ca-certificates.crt; server: none",
        effect: "PEM files of CA certificates (each may hold several). Client: the trust anchors for the server's certificate. Server: the CAs client certificates must chain to; client certificates are then requested (optional unless tls-certificate-request-authority-names is set).",
        initialize: None,
        server: Some(|draft, value| draft.tls.ca_files = value.paths()),
        client: Some(|config, value| config.tls.ca_files = value.paths()),
        tls: true,
    },
    KeyInfo {
        name: "tls-certificate-request-authority-names",
        kind: ValueKind::NameList,
        default: None,
        default_note: "none",
        effect: "Makes client certificates mandatory: only clients whose certificate was issued by one of these authorities get in. Each name is the subject Common Name (CN) of a certificate in ca-certs-file-path; their subjects are listed in the CertificateRequest. A name no CA certificate carries fails createWsServer.",
        initialize: None,
        server: Some(|draft, value| draft.tls.authority_names = value.names()),
        client: None,
        tls: true,
    },
    KeyInfo {
        name: "tls-disable-certificate-validation",
        kind: ValueKind::Bool,
        default: Some("0"),
        default_note: "",
        effect: "Accept any server certificate (expired, self-signed, other name); a warning is logged for each such connection. Handshake signatures are still checked.",
        initialize: None,
        server: None,
        client: Some(|config, value| config.tls.disable_certificate_validation = value.flag()),
        tls: true,
    },
    KeyInfo {
        name: "tls-use-sni",
        kind: ValueKind::Bool,
        default: Some("1"),
        default_note: "",
        effect: "Send the URL's host name as SNI. An IP address is never sent. The server certificate is checked against the URL's host either way.",
        initialize: None,
        server: None,
        client: Some(|config, value| config.tls.use_sni = value.flag()),
        tls: true,
    },
];
