//! The settings of an HTTP server (createHttpServer). The settings of the WebSocket services
//! on it (createHttpWsService) are plain [`ConnectionSettings`], from
//! [`ConnectionSettings::parse_service`].

use super::{
    KeyInfo, Scope, ServerTls, ServerTlsKeys, Value, apply_defaults, for_each_key, tls_from_keys,
};
use crate::error::{Error, Result};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// An HTTP server's settings, checked: what createHttpServer was given.
#[derive(Debug, Clone)]
pub struct HttpServerConfig {
    pub port: u16,
    pub bind_address: IpAddr,
    /// The folder files are served from, canonical (resolved once, when the server is
    /// created); None: no path is a file.
    pub root_dir: Option<PathBuf>,
    /// Present when the server serves https and wss (cert-file-path and pkey-file-path given).
    /// The files are read by `transport::tls::server_config`, as for a WebSocket server.
    pub tls: Option<ServerTls>,
    pub http: HttpSettings,
}

/// The limits and timers of an HTTP server's connections before any upgrade (the http-* keys).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpSettings {
    /// http-connections-max: connections held at once, upgraded ones included.
    pub connections_max: usize,
    /// http-request-timeout-ms: a head and its body must arrive within this from the first
    /// byte.
    pub request_timeout: Duration,
    /// http-keepalive-timeout-ms: an idle keep-alive connection is closed after this.
    pub keepalive_timeout: Duration,
    /// http-request-line-max: longest request line (414 beyond).
    pub request_line_max: usize,
    /// http-header-size-max: largest request head (431 beyond).
    pub header_size_max: usize,
    /// http-request-body-max: largest request body (413 beyond).
    pub request_body_max: usize,
}

impl Default for HttpSettings {
    /// The documented defaults.
    fn default() -> Self {
        let mut draft = HttpServerDraft::unset();
        apply_defaults(Scope::HttpServer, |key, value| draft.set(key, value));
        draft.http
    }
}

/// An HTTP server's keys while they are read, before the checks that involve several keys or
/// the file system.
#[derive(Debug, Clone)]
pub struct HttpServerDraft {
    pub port: Option<u16>,
    pub bind_address: IpAddr,
    /// As given; checked and made canonical by [`HttpServerConfig::parse`].
    pub root_dir: Option<PathBuf>,
    pub tls: ServerTlsKeys,
    pub http: HttpSettings,
}

impl HttpServerDraft {
    /// Every field empty, before the table's defaults are applied.
    fn unset() -> HttpServerDraft {
        HttpServerDraft {
            port: None,
            bind_address: IpAddr::from([0, 0, 0, 0]),
            root_dir: None,
            tls: ServerTlsKeys::default(),
            http: HttpSettings {
                connections_max: 0,
                request_timeout: Duration::ZERO,
                keepalive_timeout: Duration::ZERO,
                request_line_max: 0,
                header_size_max: 0,
                request_body_max: 0,
            },
        }
    }

    fn set(&mut self, key: &'static KeyInfo, value: &Value) {
        if let Some(set) = key.http_server {
            set(self, value)
        }
    }

    /// The checks that involve several keys, and the root folder's.
    fn finish(self) -> Result<HttpServerConfig> {
        let port = self
            .port
            .ok_or_else(|| Error::invalid("key 'port' is required (0 picks a free port)"))?;
        if self.http.header_size_max < self.http.request_line_max {
            return Err(Error::invalid(format!(
                "http-header-size-max ({}) is smaller than http-request-line-max ({}): the \
                 request line is part of the head",
                self.http.header_size_max, self.http.request_line_max
            )));
        }
        let tls = tls_from_keys(self.tls)?;
        let root_dir = self.root_dir.as_deref().map(root_dir).transpose()?;
        Ok(HttpServerConfig {
            port,
            bind_address: self.bind_address,
            root_dir,
            tls,
            http: self.http,
        })
    }
}

/// The canonical form of the root-dir key's folder. Resolved once here, so that a symlink
/// swapped in later, or a change of the working directory, does not move the served tree, and
/// so that every served path can be checked to lie under this one.
fn root_dir(given: &Path) -> Result<PathBuf> {
    let what = format!("root-dir '{}'", given.display());
    let canonical = std::fs::canonicalize(given).map_err(|e| Error::io(&what, &e))?;
    let metadata = std::fs::metadata(&canonical).map_err(|e| Error::io(&what, &e))?;
    if !metadata.is_dir() {
        return Err(Error::new(
            libc::ENOTDIR,
            format!("{what} is not a directory"),
        ));
    }
    Ok(canonical)
}

impl HttpServerConfig {
    /// The settings of createHttpServer's key-value list. An unknown key, or one that means
    /// nothing to an HTTP server (the WebSocket keys belong to its services), is logged and
    /// ignored, as createWsServer does.
    ///
    /// Errors: `EINVAL` for a known key with a bad value, a missing `port`, and TLS keys that
    /// need each other (the same checks as createWsServer's); for `root-dir`, the error of
    /// resolving it (`ENOENT` when it does not exist, `EACCES`, …) or `ENOTDIR` when it is not a
    /// directory.
    pub fn parse(pairs: &[(String, String)]) -> Result<HttpServerConfig> {
        let mut draft = HttpServerDraft::unset();
        apply_defaults(Scope::HttpServer, |key, value| draft.set(key, value));
        for_each_key(pairs, Scope::HttpServer, |key, value| draft.set(key, value))?;
        draft.finish()
    }
}

#[cfg(test)]
#[path = "http_tests.rs"]
mod tests;
