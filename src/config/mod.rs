//! Key-value parameter maps turned into typed, validated settings.
//!
//! Every key the library knows is listed once in [`KEYS`]; the docs' key table is written from
//! it. A key that is not in the table (or not meant for the object being created) is logged and
//! ignored; a known key with a bad value is an `EINVAL` failure whose message names the key and
//! the value. Values are checked here, before they reach the protocol code.

mod keys;

pub use keys::{KEYS, KeyInfo, Scope};

use crate::error::{Error, Result};
use crate::log::{LogLevel, log};
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Settings every connection of a server, or one client connection, runs with.
#[derive(Debug, Clone)]
pub struct ConnectionSettings {
    /// Offered (client) or accepted (server) subprotocols, in order of preference.
    pub protocols: Vec<String>,
    /// Outgoing messages larger than this go out as fragments of at most this size; 0 = never.
    pub fragment_size_max: usize,
    /// Largest incoming message (after reassembly); a larger one fails the connection with 1009.
    pub message_size_max: usize,
    /// Bytes that may wait in a connection's send buffer; a send beyond it fails with `EAGAIN`.
    pub send_buffer_max: usize,
    pub handshake_timeout: Duration,
    pub close_timeout: Duration,
}

impl Default for ConnectionSettings {
    fn default() -> Self {
        ConnectionSettings {
            protocols: Vec::new(),
            fragment_size_max: 0,
            message_size_max: 16 << 20,
            send_buffer_max: 1 << 20,
            handshake_timeout: Duration::from_millis(10_000),
            close_timeout: Duration::from_millis(5_000),
        }
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

/// A client's TLS keys, used for `wss://` URLs.
#[derive(Debug, Clone)]
pub struct ClientTls {
    /// Trust anchors; empty means the system bundle.
    pub ca_files: Vec<PathBuf>,
    /// Own certificate chain and key, for mutual TLS.
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    pub disable_certificate_validation: bool,
    pub use_sni: bool,
}

impl Default for ClientTls {
    fn default() -> Self {
        ClientTls {
            ca_files: Vec::new(),
            cert_file: None,
            key_file: None,
            disable_certificate_validation: false,
            use_sni: true,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct ClientConfig {
    pub connection: ConnectionSettings,
    pub tls: ClientTls,
    /// TLS keys that were given, so a `ws://` URL can say they have no effect.
    pub tls_keys: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    pub event_loop_threads: usize,
    pub log_level: Option<LogLevel>,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            event_loop_threads: 1,
            log_level: None,
        }
    }
}

/// Walks the pairs, hands each known key of `scope` to `apply`, and logs the rest.
fn for_each_key(
    pairs: &[(String, String)],
    scope: Scope,
    mut apply: impl FnMut(&'static KeyInfo, &str) -> Result<()>,
) -> Result<()> {
    for (key, value) in pairs {
        match KEYS.iter().find(|info| info.name == key.as_str()) {
            Some(info) if info.scopes.contains(&scope) => apply(info, value)?,
            Some(_) => log!(
                Warn,
                "key '{key}' has no meaning for {}; ignored",
                scope.noun()
            ),
            None => log!(Warn, "unknown key '{key}' ignored"),
        }
    }
    Ok(())
}

fn bad_value(key: &str, value: &str, expected: &str) -> Error {
    Error::invalid(format!(
        "bad value '{value}' for key '{key}': expected {expected}"
    ))
}

fn parse_uint(key: &str, value: &str, min: u64, max: u64) -> Result<u64> {
    let expected = format!("an integer from {min} to {max}");
    let number: u64 = value
        .trim()
        .parse()
        .map_err(|_| bad_value(key, value, &expected))?;
    if number < min || number > max {
        return Err(bad_value(key, value, &expected));
    }
    Ok(number)
}

fn parse_bool(key: &str, value: &str) -> Result<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(bad_value(key, value, "1/0, true/false, yes/no or on/off")),
    }
}

/// Subprotocol list: comma- or space-separated HTTP tokens.
fn parse_protocols(key: &str, value: &str) -> Result<Vec<String>> {
    let mut list = Vec::new();
    for name in value.split([',', ' ', '\t']).filter(|s| !s.is_empty()) {
        let is_token = name
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b));
        if !is_token {
            return Err(bad_value(
                key,
                value,
                "subprotocol names (HTTP tokens) separated by commas",
            ));
        }
        list.push(name.to_string());
    }
    Ok(list)
}

fn parse_millis(key: &str, value: &str) -> Result<Duration> {
    Ok(Duration::from_millis(parse_uint(key, value, 1, 3_600_000)?))
}

/// Applies the keys every connection understands; `Ok(false)` when `key` is not one of them.
fn apply_connection_key(settings: &mut ConnectionSettings, key: &str, value: &str) -> Result<bool> {
    match key {
        "websocket-protocols" => settings.protocols = parse_protocols(key, value)?,
        "websocket-fragment-size-max" => {
            settings.fragment_size_max = parse_uint(key, value, 0, i32::MAX as u64)? as usize
        }
        "websocket-message-size-max" => {
            settings.message_size_max = parse_uint(key, value, 1, i32::MAX as u64)? as usize
        }
        "send-buffer-size-max" => {
            settings.send_buffer_max = parse_uint(key, value, 1, i32::MAX as u64)? as usize
        }
        "handshake-timeout-ms" => settings.handshake_timeout = parse_millis(key, value)?,
        "close-timeout-ms" => settings.close_timeout = parse_millis(key, value)?,
        _ => return Ok(false),
    }
    Ok(true)
}

fn parse_path(key: &str, value: &str) -> Result<PathBuf> {
    let path = value.trim();
    if path.is_empty() {
        return Err(bad_value(key, value, "a file path"));
    }
    Ok(PathBuf::from(path))
}

/// Several paths separated by newlines (the SDK's format for ca-certs-file-path).
fn parse_path_list(key: &str, value: &str) -> Result<Vec<PathBuf>> {
    let paths: Vec<PathBuf> = value
        .lines()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .collect();
    if paths.is_empty() {
        return Err(bad_value(
            key,
            value,
            "one or more file paths separated by newlines",
        ));
    }
    Ok(paths)
}

fn parse_name_list(key: &str, value: &str) -> Result<Vec<String>> {
    let names: Vec<String> = value
        .lines()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(String::from)
        .collect();
    if names.is_empty() {
        return Err(bad_value(
            key,
            value,
            "one or more authority common names separated by newlines",
        ));
    }
    Ok(names)
}

impl ServerConfig {
    pub fn parse(pairs: &[(String, String)]) -> Result<ServerConfig> {
        let mut port = None;
        let mut bind_address: IpAddr = [0, 0, 0, 0].into();
        let mut connection = ConnectionSettings::default();
        let (mut cert_file, mut key_file) = (None, None);
        let mut tls = ServerTls::default();
        for_each_key(pairs, Scope::Server, |info, value| {
            let key = info.name;
            match key {
                "port" => port = Some(parse_uint(key, value, 0, 65535)? as u16),
                "bind-address" => {
                    let text = value.trim().trim_start_matches('[').trim_end_matches(']');
                    bind_address = text.parse().map_err(|_| {
                        bad_value(key, value, "an IPv4 or IPv6 address such as 0.0.0.0 or ::")
                    })?;
                }
                "cert-file-path" => cert_file = Some(parse_path(key, value)?),
                "pkey-file-path" => key_file = Some(parse_path(key, value)?),
                "ca-certs-file-path" => tls.ca_files = parse_path_list(key, value)?,
                "tls-certificate-request-authority-names" => {
                    tls.authority_names = parse_name_list(key, value)?
                }
                _ => {
                    apply_connection_key(&mut connection, key, value)?;
                }
            }
            Ok(())
        })?;
        let port =
            port.ok_or_else(|| Error::invalid("key 'port' is required (0 picks a free port)"))?;
        let tls = match (cert_file, key_file) {
            (Some(cert_file), Some(key_file)) => Some(ServerTls {
                cert_file,
                key_file,
                ..tls
            }),
            (None, None) => {
                if !tls.ca_files.is_empty() || !tls.authority_names.is_empty() {
                    log!(
                        Warn,
                        "ca-certs-file-path / tls-certificate-request-authority-names ignored: no cert-file-path (not a TLS server)"
                    );
                }
                None
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
        if let Some(tls) = &tls
            && !tls.authority_names.is_empty()
            && tls.ca_files.is_empty()
        {
            return Err(Error::invalid(
                "key 'tls-certificate-request-authority-names' needs 'ca-certs-file-path' (the authorities' certificates)",
            ));
        }
        Ok(ServerConfig {
            port,
            bind_address,
            connection,
            tls,
        })
    }
}

impl ClientConfig {
    pub fn parse(pairs: &[(String, String)]) -> Result<ClientConfig> {
        let mut config = ClientConfig::default();
        for_each_key(pairs, Scope::Client, |info, value| {
            let key = info.name;
            if apply_connection_key(&mut config.connection, key, value)? {
                return Ok(());
            }
            match key {
                "cert-file-path" => config.tls.cert_file = Some(parse_path(key, value)?),
                "pkey-file-path" => config.tls.key_file = Some(parse_path(key, value)?),
                "ca-certs-file-path" => config.tls.ca_files = parse_path_list(key, value)?,
                "tls-disable-certificate-validation" => {
                    config.tls.disable_certificate_validation = parse_bool(key, value)?
                }
                "tls-use-sni" => config.tls.use_sni = parse_bool(key, value)?,
                _ => {}
            }
            config.tls_keys.push(key.to_string());
            Ok(())
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
        for_each_key(pairs, Scope::Initialize, |info, value| {
            let key = info.name;
            match key {
                "event-loop-threads" => {
                    config.event_loop_threads = parse_uint(key, value, 1, 64)? as usize
                }
                "log-level" => {
                    config.log_level = Some(LogLevel::parse(value).ok_or_else(|| {
                        bad_value(key, value, "off, error, warn, info, debug, trace or 0..5")
                    })?)
                }
                "offs-disable" => {
                    parse_bool(key, value)?;
                }
                _ => {}
            }
            Ok(())
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
        assert_eq!(config.connection.fragment_size_max, 8192);
    }

    #[test]
    fn ipv6_bind_address() {
        let config =
            ServerConfig::parse(&pairs(&[("port", "1"), ("bind-address", "[::1]")])).unwrap();
        assert_eq!(config.bind_address, "::1".parse::<IpAddr>().unwrap());
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
