//! The one table of parameter keys: name, where it applies, type, default and effect.
//! `docs/PARAMETERS.md` is generated from it (`cargo test --test docs` checks it is current).

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

pub struct KeyInfo {
    pub name: &'static str,
    pub scopes: &'static [Scope],
    pub value_type: &'static str,
    pub default: &'static str,
    pub effect: &'static str,
}

use Scope::*;

pub const KEYS: &[KeyInfo] = &[
    KeyInfo {
        name: "event-loop-threads",
        scopes: &[Initialize],
        value_type: "integer 1..64",
        default: "1",
        effect: "Number of event-loop threads. Callbacks run on them; accepted and opened connections are spread over them round-robin.",
    },
    KeyInfo {
        name: "log-level",
        scopes: &[Initialize],
        value_type: "off|error|warn|info|debug|trace or 0..5",
        default: "warn",
        effect: "Lines at or below this level are written (to stderr, or to the hook set with oasis_log_set_hook).",
    },
    KeyInfo {
        name: "offs-disable",
        scopes: &[Initialize],
        value_type: "boolean",
        default: "-",
        effect: "Accepted for compatibility with the Oasis SDK samples; it has no effect here.",
    },
    KeyInfo {
        name: "port",
        scopes: &[Server],
        value_type: "integer 0..65535",
        default: "required",
        effect: "TCP port to listen on; 0 picks a free port (read it back with wsServerPort).",
    },
    KeyInfo {
        name: "bind-address",
        scopes: &[Server],
        value_type: "IPv4 or IPv6 address",
        default: "0.0.0.0",
        effect: "Local address to listen on, e.g. 127.0.0.1, ::1 or :: (IPv6, and IPv4 where the system maps it).",
    },
    KeyInfo {
        name: "websocket-protocols",
        scopes: &[Server, Client],
        value_type: "comma-separated tokens",
        default: "none",
        effect: "Server: the subprotocols it accepts, in order of preference (the first one the client also offers is chosen). Client: the subprotocols it offers. The agreed one is read with wsConnectionProtocol.",
    },
    KeyInfo {
        name: "websocket-fragment-size-max",
        scopes: &[Server, Client],
        value_type: "bytes",
        default: "0 (never fragment)",
        effect: "Outgoing messages larger than this are sent as fragments of at most this many payload bytes.",
    },
    KeyInfo {
        name: "websocket-message-size-max",
        scopes: &[Server, Client],
        value_type: "bytes",
        default: "16777216 (16 MiB)",
        effect: "Largest incoming message after reassembly; a larger one gives onError and onClose with 1009.",
    },
    KeyInfo {
        name: "send-buffer-size-max",
        scopes: &[Server, Client],
        value_type: "bytes",
        default: "1048576 (1 MiB)",
        effect: "Bytes that may wait unsent per connection. A send that would go beyond it fails with -1/EAGAIN (a message is always accepted when nothing is waiting).",
    },
    KeyInfo {
        name: "handshake-timeout-ms",
        scopes: &[Server, Client],
        value_type: "milliseconds 1..3600000",
        default: "10000",
        effect: "Time allowed from TCP accept/connect to a completed opening handshake. Server: the socket is dropped. Client without a wsOpenConnection timeout: onError 1006.",
    },
    KeyInfo {
        name: "close-timeout-ms",
        scopes: &[Server, Client],
        value_type: "milliseconds 1..3600000",
        default: "5000",
        effect: "Time allowed for the peer to answer a close frame (and to drain what was queued before it); then the connection is dropped and onClose reports 1006.",
    },
    KeyInfo {
        name: "cert-file-path",
        scopes: &[Server, Client],
        value_type: "path",
        default: "none",
        effect: "TLS certificate chain (PEM). TLS is not in this build yet: on a server it fails createWsServer with ENOTSUP.",
    },
    KeyInfo {
        name: "pkey-file-path",
        scopes: &[Server, Client],
        value_type: "path",
        default: "none",
        effect: "TLS private key (PEM). TLS is not in this build yet: on a server it fails createWsServer with ENOTSUP.",
    },
    KeyInfo {
        name: "ca-certs-file-path",
        scopes: &[Server, Client],
        value_type: "paths separated by newlines",
        default: "none",
        effect: "TLS trust anchors. Used only with TLS (not in this build yet); ignored for ws://.",
    },
    KeyInfo {
        name: "tls-certificate-request-authority-names",
        scopes: &[Server],
        value_type: "text",
        default: "none",
        effect: "Mutual TLS client authorities. Used only with TLS (not in this build yet).",
    },
    KeyInfo {
        name: "tls-disable-certificate-validation",
        scopes: &[Client],
        value_type: "boolean",
        default: "0",
        effect: "Accept any server certificate. Used only with wss:// (not in this build yet); ignored for ws://.",
    },
    KeyInfo {
        name: "tls-use-sni",
        scopes: &[Client],
        value_type: "boolean",
        default: "1",
        effect: "Send the host name as SNI. Used only with wss:// (not in this build yet); ignored for ws://.",
    },
];
