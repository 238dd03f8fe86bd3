//! A WebSocket service on a path of an HTTP server: the settings, delegate and connection group
//! its upgraded connections share, as the connections of a `ws::Server` do.

use crate::config::ConnectionSettings;
use crate::error::{Error, Result};
use crate::ws::connection::Commons;
use crate::ws::delegate::Delegate;
use std::sync::Arc;

pub struct WsService {
    pub path: Box<str>,
    /// The settings, delegate and group every upgraded connection points to.
    pub common: Commons,
}

impl WsService {
    pub fn new(
        path: &str,
        settings: ConnectionSettings,
        delegate: Arc<Delegate>,
    ) -> Result<WsService> {
        check_path(path)?;
        Ok(WsService {
            path: path.into(),
            common: Commons::server(settings, delegate),
        })
    }
}

/// A service path is matched against decoded, cleaned request paths, so it must be one itself:
/// '/' first, no query or fragment, no escapes, no `.` or `..` segments, no empty segment.
fn check_path(path: &str) -> Result<()> {
    let bad = |why: &str| Err(Error::invalid(format!("service path {path:?} {why}")));
    if !path.starts_with('/') {
        return bad("must start with '/'");
    }
    if path.contains(['?', '#', '%', '\\', '\0']) {
        return bad("must not hold '?', '#', '%', '\\' or NUL (it is matched decoded)");
    }
    let inner = path.strip_prefix('/').unwrap_or(path);
    let inner = inner.strip_suffix('/').unwrap_or(inner);
    if path != "/"
        && inner
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return bad("must not have empty, '.' or '..' segments");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check_path;

    #[test]
    fn service_paths_are_clean_paths() {
        for good in ["/", "/ws", "/live/stream", "/ws/", "/a b"] {
            assert!(check_path(good).is_ok(), "{good}");
        }
        for bad in [
            "", "ws", "/ws?x=1", "/ws#f", "/w%20s", "/a//b", "/./ws", "/a/../ws", "/a\\b",
        ] {
            assert_eq!(check_path(bad).unwrap_err().errno, libc::EINVAL, "{bad}");
        }
    }
}
