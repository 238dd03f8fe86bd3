//! WebSocket URLs: `ws://` or `wss://`, a host name, IPv4 address or `[IPv6]` address, an
//! optional port, path and query.

use crate::error::{Error, Result};
use std::net::Ipv6Addr;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsUrl {
    pub secure: bool,
    /// Host as used for resolving: a name, an IPv4 address or a bare IPv6 address.
    pub host: String,
    pub port: u16,
    /// Path and query, as sent in the request line (`/` when absent).
    pub resource: String,
}

impl WsUrl {
    /// The `Host` header value: the host (IPv6 in brackets) plus the port unless it is the
    /// scheme's default.
    pub fn host_header(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let default_port = if self.secure { 443 } else { 80 };
        if self.port == default_port {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

fn bad(url: &str, why: &str) -> Error {
    Error::invalid(format!("bad URL '{url}': {why}"))
}

pub fn parse(url: &str) -> Result<WsUrl> {
    let (secure, rest) = if let Some(rest) = strip_prefix_ignore_case(url, "ws://") {
        (false, rest)
    } else if let Some(rest) = strip_prefix_ignore_case(url, "wss://") {
        (true, rest)
    } else {
        return Err(bad(url, "expected ws://host[:port][/path] or wss://…"));
    };
    if url.bytes().any(|b| b.is_ascii_control() || b == b' ') {
        return Err(bad(url, "contains spaces or control characters"));
    }
    let rest = rest.split('#').next().unwrap_or_default();
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, resource) = rest.split_at(authority_end);
    if authority.contains('@') {
        return Err(bad(url, "user information is not supported"));
    }
    let (host, port_text) = if let Some(bracketed) = authority.strip_prefix('[') {
        let close = bracketed
            .find(']')
            .ok_or_else(|| bad(url, "'[' without ']'"))?;
        let host = &bracketed[..close];
        host.parse::<Ipv6Addr>()
            .map_err(|_| bad(url, "not an IPv6 address inside [ ]"))?;
        let after = &bracketed[close + 1..];
        let port = match after {
            "" => None,
            _ => Some(
                after
                    .strip_prefix(':')
                    .ok_or_else(|| bad(url, "junk after ']'"))?,
            ),
        };
        (host, port)
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(bad(url, "no host"));
    }
    if !authority.starts_with('[')
        && !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
    {
        return Err(bad(url, "host has characters a host name cannot have"));
    }
    let port = match port_text {
        None => {
            if secure {
                443
            } else {
                80
            }
        }
        Some(text) => match text.parse::<u16>() {
            Ok(port) if port > 0 => port,
            _ => return Err(bad(url, "port must be 1..65535")),
        },
    };
    let resource = if resource.is_empty() {
        "/".to_string()
    } else if resource.starts_with('?') {
        format!("/{resource}")
    } else {
        resource.to_string()
    };
    Ok(WsUrl {
        secure,
        host: host.to_string(),
        port,
        resource,
    })
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_documented_forms() {
        let u = parse("ws://example.com").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.resource.as_str(), u.secure),
            ("example.com", 80, "/", false)
        );
        let u = parse("wss://echo.websocket.org/").unwrap();
        assert_eq!((u.port, u.secure), (443, true));
        let u = parse("ws://127.0.0.1:9000/chat?room=1").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.resource.as_str()),
            ("127.0.0.1", 9000, "/chat?room=1")
        );
        let u = parse("ws://[::1]:8080?x=1").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.resource.as_str()),
            ("::1", 8080, "/?x=1")
        );
        assert_eq!(u.host_header(), "[::1]:8080");
    }

    #[test]
    fn rejects_malformed() {
        for url in [
            "",
            "http://x",
            "ws://",
            "ws://:80",
            "ws://[::1",
            "ws://h:0",
            "ws://h:99999",
            "ws://h:x",
            "ws://a b",
            "ws://u@h",
            "ws://[zz]:1",
        ] {
            let err = parse(url).unwrap_err();
            assert_eq!(err.errno, libc::EINVAL, "{url}");
        }
    }
}
