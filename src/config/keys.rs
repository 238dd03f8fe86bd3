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
        effect: "Server: time allowed from TCP accept to a completed opening handshake; then the socket is dropped. Client opened with timeout_msec <= 0: time allowed for the whole open (name resolution, TCP connect, TLS, opening handshake); then onError 1006. (A blocking open is bounded by its timeout_msec instead.)",
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
        effect: "Own certificate chain (PEM, leaf first). Server: with pkey-file-path, the server serves wss:// only. Client: the client certificate for mutual TLS. Read when the server is created / the connection opened: a missing, empty or broken file fails that call.",
    },
    KeyInfo {
        name: "pkey-file-path",
        scopes: &[Server, Client],
        value_type: "path",
        default: "none",
        effect: "The private key of cert-file-path (PEM): RSA (PKCS#1 or PKCS#8), ECDSA P-256/P-384 (SEC1 or PKCS#8) or Ed25519 (PKCS#8). A DSA or encrypted key fails with ENOTSUP, a key that does not match the certificate with EINVAL.",
    },
    KeyInfo {
        name: "ca-certs-file-path",
        scopes: &[Server, Client],
        value_type: "paths separated by newlines",
        default: "client: /etc/ssl/certs/ca-certificates.crt; server: none",
        effect: "PEM files of CA certificates (each may hold several). Client: the trust anchors for the server's certificate. Server: the CAs client certificates must chain to; client certificates are then requested (optional unless tls-certificate-request-authority-names is set).",
    },
    KeyInfo {
        name: "tls-certificate-request-authority-names",
        scopes: &[Server],
        value_type: "common names separated by newlines",
        default: "none",
        effect: "Makes client certificates mandatory: only clients whose certificate was issued by one of these authorities get in. Each name is the subject Common Name (CN) of a certificate in ca-certs-file-path; their subjects are listed in the CertificateRequest. A name no CA certificate carries fails createWsServer.",
    },
    KeyInfo {
        name: "tls-disable-certificate-validation",
        scopes: &[Client],
        value_type: "boolean",
        default: "0",
        effect: "Accept any server certificate (expired, self-signed, other name); a warning is logged for each such connection. Handshake signatures are still checked.",
    },
    KeyInfo {
        name: "tls-use-sni",
        scopes: &[Client],
        value_type: "boolean",
        default: "1",
        effect: "Send the URL's host name as SNI. An IP address is never sent. The server certificate is checked against the URL's host either way.",
    },
];
