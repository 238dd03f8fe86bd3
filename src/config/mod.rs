//! Key-value parameter maps turned into typed, validated settings.
//!
//! Every key the library knows is listed once in [`KEYS`], with its value type, default, doc line
//! and what it sets: the parser below is driven by that table, the defaults are applied from it,
//! and the docs' key table is written from it, so docs and behaviour cannot drift apart. A key
//! that is not in the table (or not meant for the object being created) is logged and ignored; a
//! known key with a bad value is an `EINVAL` failure whose message names the key and the value.
//! Values are checked here, before they reach the protocol code.

mod http;
mod keys;

pub use http::{HttpServerConfig, HttpServerDraft, HttpSettings};
pub use keys::{KEYS, KeyInfo, Scope, Value, ValueKind};

use crate::error::{Error, Result};
use crate::log::{LogLevel, log};
use crate::protocol::Limits;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Settings every connection of a server, or one client connection, runs with.
#[derive(Debug, Clone)]
pub struct ConnectionSettings {
    /// Offered (client) or accepted (server) subprotocols, in order of preference.
    pub protocols: Vec<String>,
    /// Sizes and timers, as the protocol core takes them.
    pub limits: Limits,
    /// Server: keep each connection's request head after onOpen (`wsConnectionRequestHeader`
    /// then answers for the connection's life); otherwise it is dropped when onOpen returns.
    pub keep_request_headers: bool,
}

impl Default for ConnectionSettings {
    /// The documented defaults (those of a client with no parameters).
    fn default() -> Self {
        ClientConfig::default().connection
    }
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub port: u16,
    pub bind_address: IpAddr,
    pub connection: ConnectionSettings,
    /// Present when the server serves wss (cert-file-path and pkey-file-path given).
    pub tls: Option<ServerTls>,
}

/// A server's TLS keys, as given (files are read when the server is created).
#[derive(Debug, Clone, Default)]
pub struct ServerTls {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    /// CAs that client certificates must chain to (client certificates are then requested).
    pub ca_files: Vec<PathBuf>,
    /// Subject CNs of the authorities a client certificate must come from (then mandatory).
    pub authority_names: Vec<String>,
}

/// A server's TLS keys while they are read: the same keys, with the same checks, for a
/// WebSocket server and an HTTP server.
#[derive(Debug, Clone, Default)]
pub struct ServerTlsKeys {
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    pub ca_files: Vec<PathBuf>,
    pub authority_names: Vec<String>,
}

/// A server's keys while they are read, before the checks that involve several keys.
#[derive(Debug, Clone)]
pub struct ServerDraft {
    pub port: Option<u16>,
    pub bind_address: IpAddr,
    pub connection: ConnectionSettings,
    pub tls: ServerTlsKeys,
}

/// A client's TLS keys, used for `wss://` URLs.
#[derive(Debug, Clone, Default)]
pub struct ClientTls {
    /// Trust anchors; empty means the system bundle.
    pub ca_files: Vec<PathBuf>,
    /// Own certificate chain and key, for mutual TLS.
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    pub disable_certificate_validation: bool,
    pub use_sni: bool,
}

#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub connection: ConnectionSettings,
    pub tls: ClientTls,
    /// TLS keys that were given, so a `ws://` URL can say they have no effect.
    pub tls_keys: Vec<String>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        let mut config = ClientConfig {
            connection: ConnectionSettings::unset(),
            tls: ClientTls::default(),
            tls_keys: Vec::new(),
        };
        apply_defaults(Scope::Client, |key, value| {
            if let Some(set) = key.client {
                set(&mut config, value)
            }
        });
        config
    }
}

#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    pub event_loop_threads: usize,
    /// The bytes one read on an event loop may take.
    pub receive_buffer_size: usize,
    /// None: the level stays as it is.
    pub log_level: Option<LogLevel>,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        let mut config = RuntimeConfig {
            event_loop_threads: 0,
            receive_buffer_size: 0,
            log_level: None,
        };
        apply_defaults(Scope::Initialize, |key, value| {
            if let Some(set) = key.initialize {
                set(&mut config, value)
            }
        });
        config
    }
}

impl ConnectionSettings {
    /// Every field empty, before the table's defaults are applied.
    fn unset() -> ConnectionSettings {
        ConnectionSettings {
            protocols: Vec::new(),
            limits: Limits {
                message_max: 0,
                fragment_max: 0,
                send_buffer_max: 0,
                handshake_timeout: Duration::ZERO,
                close_timeout: Duration::ZERO,
                ping_interval: None,
                pong_timeout: Duration::ZERO,
            },
            keep_request_headers: false,
        }
    }

    /// The settings of the connections of one WebSocket service of an HTTP server, from the
    /// key-value list of createHttpWsService. Keys of the HTTP server itself (port, address,
    /// TLS, …) and `handshake-timeout-ms` (the upgrade request was read by the HTTP server
    /// already) are logged and ignored, as unknown keys are.
    ///
    /// Errors: `EINVAL` for a known key with a bad value.
    pub fn parse_service(pairs: &[(String, String)]) -> Result<ConnectionSettings> {
        // Starts from the documented defaults, so the handshake timeout, which no service key
        // sets, holds a sane value even though nothing waits for a handshake after an upgrade.
        let mut settings = ConnectionSettings::default();
        let mut set = |key: &'static KeyInfo, value: &Value| {
            if let Some(set) = key.service {
                set(&mut settings, value)
            }
        };
        apply_defaults(Scope::Service, &mut set);
        for_each_key(pairs, Scope::Service, &mut set)?;
        Ok(settings)
    }
}

/// Hands every key of `scope` that has a default to `apply`, with that default parsed.
fn apply_defaults(scope: Scope, mut apply: impl FnMut(&'static KeyInfo, &Value)) {
    for key in KEYS.iter().filter(|key| key.applies_to(scope)) {
        if let Some(text) = key.default {
            let value = parse_value(key, text).expect("the key table's defaults parse");
            apply(key, &value);
        }
    }
}

/// Walks the pairs, hands each known key of `scope` to `apply` with its parsed value, and logs
/// the rest.
fn for_each_key(
    pairs: &[(String, String)],
    scope: Scope,
    mut apply: impl FnMut(&'static KeyInfo, &Value),
) -> Result<()> {
    for (name, text) in pairs {
        match KEYS.iter().find(|info| info.name == name.as_str()) {
            Some(key) if key.applies_to(scope) => apply(key, &parse_value(key, text)?),
            Some(key) => log!(
                Warn,
                "key '{name}' has no meaning for {}{}; ignored",
                scope.noun(),
                ignored_because(scope, key)
            ),
            None => log!(Warn, "unknown key '{name}' ignored"),
        }
    }
    Ok(())
}

/// Why a known key means nothing to an object, where a user could easily expect otherwise.
fn ignored_because(scope: Scope, key: &KeyInfo) -> &'static str {
    match scope {
        Scope::Service if key.name == "handshake-timeout-ms" => {
            " (the HTTP server read the upgrade request; its http-request-timeout-ms bounds that)"
        }
        Scope::Service if key.applies_to(Scope::HttpServer) => {
            " (it belongs to the HTTP server the service is on: give it to createHttpServer)"
        }
        Scope::HttpServer if key.name == "handshake-timeout-ms" => {
            " (http-request-timeout-ms bounds every request, upgrade requests included)"
        }
        Scope::HttpServer if key.applies_to(Scope::Service) => {
            " (WebSocket keys belong to each service: give them to createHttpWsService)"
        }
        _ => "",
    }
}

fn bad_value(key: &str, value: &str, expected: &str) -> Error {
    Error::invalid(format!(
        "bad value '{value}' for key '{key}': expected {expected}"
    ))
}

/// Parses and checks one value the way its key's [`ValueKind`] says.
pub fn parse_value(key: &KeyInfo, text: &str) -> Result<Value> {
    let name = key.name;
    let bad = |expected: &str| bad_value(name, text, expected);
    let number = |min: u64, max: u64| -> Result<Value> {
        let expected = format!("an integer from {min} to {max}");
        let number: u64 = text.trim().parse().map_err(|_| bad(&expected))?;
        if number < min || number > max {
            return Err(bad(&expected));
        }
        Ok(Value::Number(number))
    };
    let lines = || -> Vec<String> {
        text.lines()
            .map(str::trim)
            .filter(|line| !line.is_empty())
            .map(String::from)
            .collect()
    };
    match key.kind {
        ValueKind::Integer { min, max }
        | ValueKind::Bytes { min, max }
        | ValueKind::Millis { min, max } => number(min, max),
        ValueKind::Bool => match text.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Ok(Value::Bool(true)),
            "0" | "false" | "no" | "off" => Ok(Value::Bool(false)),
            _ => Err(bad("1/0, true/false, yes/no or on/off")),
        },
        ValueKind::Path => match text.trim() {
            "" => Err(bad("a file path")),
            path => Ok(Value::Path(PathBuf::from(path))),
        },
        ValueKind::PathList => match lines() {
            paths if paths.is_empty() => Err(bad("one or more file paths separated by newlines")),
            paths => Ok(Value::Paths(paths.into_iter().map(PathBuf::from).collect())),
        },
        ValueKind::NameList => match lines() {
            names if names.is_empty() => Err(bad(
                "one or more authority common names separated by newlines",
            )),
            names => Ok(Value::Names(names)),
        },
        ValueKind::Protocols => {
            let mut names = Vec::new();
            for name in text.split([',', ' ', '\t']).filter(|s| !s.is_empty()) {
                let is_token = name
                    .bytes()
                    .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b));
                if !is_token {
                    return Err(bad("subprotocol names (HTTP tokens) separated by commas"));
                }
                names.push(name.to_string());
            }
            Ok(Value::Names(names))
        }
        ValueKind::Address => {
            let address = text.trim().trim_start_matches('[').trim_end_matches(']');
            address
                .parse()
                .map(Value::Address)
                .map_err(|_| bad("an IPv4 or IPv6 address such as 0.0.0.0 or ::"))
        }
        ValueKind::LogLevel => LogLevel::parse(text)
            .map(Value::Level)
            .ok_or_else(|| bad("off, error, warn, info, debug, trace or 0..5")),
    }
}

impl ServerConfig {
    pub fn parse(pairs: &[(String, String)]) -> Result<ServerConfig> {
        let mut draft = ServerDraft {
            port: None,
            bind_address: IpAddr::from([0, 0, 0, 0]),
            connection: ConnectionSettings::unset(),
            tls: ServerTlsKeys::default(),
        };
        let mut set = |key: &'static KeyInfo, value: &Value| {
            if let Some(set) = key.server {
                set(&mut draft, value)
            }
        };
        apply_defaults(Scope::Server, &mut set);
        for_each_key(pairs, Scope::Server, &mut set)?;
        draft.finish()
    }
}

impl ServerDraft {
    /// The checks that involve several keys.
    fn finish(self) -> Result<ServerConfig> {
        let port = self
            .port
            .ok_or_else(|| Error::invalid("key 'port' is required (0 picks a free port)"))?;
        Ok(ServerConfig {
            port,
            bind_address: self.bind_address,
            connection: self.connection,
            tls: tls_from_keys(self.tls)?,
        })
    }
}

/// A server's TLS settings from its keys, checked for the keys that need each other: None
/// when neither a certificate nor a key was given (the CA keys are then ignored, with a
/// warning). The files themselves are read when the server is created
/// (`transport::tls::server_config`).
///
/// Errors: `EINVAL` for a certificate without its key or a key without its certificate, and
/// for authority names without the CA files that carry them.
pub fn tls_from_keys(keys: ServerTlsKeys) -> Result<Option<ServerTls>> {
    let tls = match (keys.cert_file, keys.key_file) {
        (Some(cert_file), Some(key_file)) => ServerTls {
            cert_file,
            key_file,
            ca_files: keys.ca_files,
            authority_names: keys.authority_names,
        },
        (None, None) => {
            if !keys.ca_files.is_empty() || !keys.authority_names.is_empty() {
                log!(
                    Warn,
                    "ca-certs-file-path / tls-certificate-request-authority-names ignored: no cert-file-path (not a TLS server)"
                );
            }
            return Ok(None);
        }
        (Some(_), None) => {
            return Err(Error::invalid(
                "key 'cert-file-path' needs 'pkey-file-path' too",
            ));
        }
        (None, Some(_)) => {
            return Err(Error::invalid(
                "key 'pkey-file-path' needs 'cert-file-path' too",
            ));
        }
    };
    if !tls.authority_names.is_empty() && tls.ca_files.is_empty() {
        return Err(Error::invalid(
            "key 'tls-certificate-request-authority-names' needs 'ca-certs-file-path' (the authorities' certificates)",
        ));
    }
    Ok(Some(tls))
}

impl ClientConfig {
    pub fn parse(pairs: &[(String, String)]) -> Result<ClientConfig> {
        let mut config = ClientConfig::default();
        for_each_key(pairs, Scope::Client, |key, value| {
            if let Some(set) = key.client {
                set(&mut config, value);
            }
            if key.tls {
                config.tls_keys.push(key.name.to_string());
            }
        })?;
        if config.tls.cert_file.is_some() != config.tls.key_file.is_some() {
            return Err(Error::invalid(
                "keys 'cert-file-path' and 'pkey-file-path' go together (the client certificate and its key)",
            ));
        }
        Ok(config)
    }
}

impl RuntimeConfig {
    pub fn parse(pairs: &[(String, String)]) -> Result<RuntimeConfig> {
        let mut config = RuntimeConfig::default();
        for_each_key(pairs, Scope::Initialize, |key, value| {
            if let Some(set) = key.initialize {
                set(&mut config, value);
            }
        })?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn bad_value_names_key_and_value() {
        let err = ServerConfig::parse(&pairs(&[("port", "70000")])).unwrap_err();
        assert_eq!(err.errno, libc::EINVAL);
        assert!(
            err.message.contains("'port'") && err.message.contains("'70000'"),
            "{}",
            err.message
        );
    }

    #[test]
    fn unknown_key_is_not_fatal() {
        let config = ServerConfig::parse(&pairs(&[("port", "0"), ("no-such-key", "1")])).unwrap();
        assert_eq!(config.port, 0);
    }

    #[test]
    fn protocols_and_sizes_parse() {
        let config = ClientConfig::parse(&pairs(&[
            ("websocket-protocols", "chat, superchat"),
            ("websocket-fragment-size-max", "8192"),
        ]))
        .unwrap();
        assert_eq!(config.connection.protocols, vec!["chat", "superchat"]);
        assert_eq!(config.connection.limits.fragment_max, 8192);
    }

    #[test]
    fn ipv6_bind_address() {
        let config =
            ServerConfig::parse(&pairs(&[("port", "1"), ("bind-address", "[::1]")])).unwrap();
        assert_eq!(config.bind_address, "::1".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn defaults_come_from_the_table() {
        let client = ClientConfig::default();
        assert_eq!(client.connection.limits.message_max, 16 << 20);
        assert_eq!(client.connection.limits.send_buffer_max, 1 << 20);
        assert_eq!(
            client.connection.limits.close_timeout,
            Duration::from_millis(5000)
        );
        assert!(client.tls.use_sni);
        let server = ServerConfig::parse(&pairs(&[("port", "0")])).unwrap();
        assert_eq!(server.bind_address, IpAddr::from([0, 0, 0, 0]));
        assert_eq!(
            server.connection.limits.handshake_timeout,
            Duration::from_millis(10_000)
        );
        assert_eq!(RuntimeConfig::default().event_loop_threads, 1);
        assert_eq!(RuntimeConfig::default().receive_buffer_size, 512 * 1024);
    }

    #[test]
    fn tls_keys_are_recorded_for_a_client() {
        let config = ClientConfig::parse(&pairs(&[
            ("tls-use-sni", "0"),
            ("websocket-protocols", "chat"),
        ]))
        .unwrap();
        assert_eq!(config.tls_keys, vec!["tls-use-sni"]);
        assert!(!config.tls.use_sni);
    }

    #[test]
    fn every_key_is_documented_once() {
        for (i, key) in KEYS.iter().enumerate() {
            assert!(
                KEYS[i + 1..].iter().all(|k| k.name != key.name),
                "{} twice",
                key.name
            );
            assert!(!key.effect.is_empty());
        }
    }
}
