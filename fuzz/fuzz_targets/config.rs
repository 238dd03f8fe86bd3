//! Parameter maps: `ServerConfig::parse`, `ClientConfig::parse` and `RuntimeConfig::parse` on
//! key/value pairs decoded from the input.
//!
//! Input: a selector byte (modulo 4: server, client, runtime, all three), then fields separated
//! by NUL bytes, taken as key, value, key, value, …. A key field of exactly one byte names the
//! entry of `oasisnet::config::KEYS` at that index (modulo the table's length), so real keys
//! come up often and their value parsers are reached; any other key field is the key's text.
//!
//! Invariants (an oracle built from the KEYS table and `parse_value`):
//! - a refusal is EINVAL, and happens exactly when a key of that object has a value its kind
//!   refuses (the message then names the first such key) or a rule between keys is broken
//!   (server: port required, cert and key together, authority names need CAs; client: cert and
//!   key together); unknown keys and keys of other objects are ignored whatever their value;
//! - an accepted map gives every setting the last value given for its key, or the table's
//!   default, and every number lies inside the range its key documents.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use oasisnet::config::{
    self, ClientConfig, KEYS, KeyInfo, RuntimeConfig, Scope, ServerConfig, Value, ValueKind,
};
use std::collections::HashMap;

fn decode(data: &[u8]) -> Vec<(String, String)> {
    let mut fields = data.split(|b| *b == 0);
    let mut pairs = Vec::new();
    while let (Some(key), Some(value)) = (fields.next(), fields.next()) {
        let key = match key {
            [index] => KEYS[usize::from(*index) % KEYS.len()].name.to_string(),
            text => String::from_utf8_lossy(text).into_owned(),
        };
        pairs.push((key, String::from_utf8_lossy(value).into_owned()));
    }
    pairs
}

fn key(name: &str) -> &'static KeyInfo {
    KEYS.iter()
        .find(|k| k.name == name)
        .expect("a key of the table")
}

/// What the oracle expects from `pairs` for `scope`: Err(first bad key, if a value was bad) or
/// the effective value of each key (last given, else the table's default).
fn expect(
    pairs: &[(String, String)],
    scope: Scope,
) -> Result<HashMap<&'static str, Value>, Option<&'static str>> {
    let mut values = HashMap::new();
    for key in KEYS.iter().filter(|k| k.applies_to(scope)) {
        if let Some(text) = key.default {
            values.insert(
                key.name,
                config::parse_value(key, text).expect("defaults parse"),
            );
        }
    }
    for (name, text) in pairs {
        let Some(key) = KEYS
            .iter()
            .find(|k| k.name == name.as_str() && k.applies_to(scope))
        else {
            continue;
        };
        match config::parse_value(key, text) {
            Ok(value) => {
                values.insert(key.name, value);
            }
            Err(err) => {
                assert_eq!(err.errno, libc::EINVAL);
                return Err(Some(key.name));
            }
        }
    }
    Ok(values)
}

/// Every number a key of `scope` set lies inside the key's range.
fn check_ranges(values: &HashMap<&'static str, Value>) {
    for (name, value) in values {
        if let (
            ValueKind::Integer { min, max }
            | ValueKind::Bytes { min, max }
            | ValueKind::Millis { min, max },
            Value::Number(n),
        ) = (key(name).kind, value)
        {
            assert!(
                (min..=max).contains(n),
                "{name} = {n} outside {min}..={max}"
            );
        }
    }
}

fn number(values: &HashMap<&'static str, Value>, name: &str) -> u64 {
    values[name].number()
}

fn check_connection(
    values: &HashMap<&'static str, Value>,
    connection: &config::ConnectionSettings,
) {
    let protocols = values
        .get("websocket-protocols")
        .map(Value::names)
        .unwrap_or_default();
    assert_eq!(connection.protocols, protocols);
    for name in &connection.protocols {
        assert!(
            !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_graphic() && !b",;\"".contains(&b)),
            "{name:?}"
        );
    }
    let limits = &connection.limits;
    assert_eq!(
        limits.fragment_max as u64,
        number(values, "websocket-fragment-size-max")
    );
    assert_eq!(
        limits.message_max as u64,
        number(values, "websocket-message-size-max")
    );
    assert_eq!(
        limits.send_buffer_max as u64,
        number(values, "send-buffer-size-max")
    );
    assert_eq!(
        limits.handshake_timeout.as_millis() as u64,
        number(values, "handshake-timeout-ms")
    );
    assert_eq!(
        limits.close_timeout.as_millis() as u64,
        number(values, "close-timeout-ms")
    );
    // Keepalive: an interval of 0 is off.
    let interval = number(values, "websocket-ping-interval-ms");
    assert_eq!(
        limits.ping_interval.map(|d| d.as_millis() as u64),
        (interval > 0).then_some(interval)
    );
    assert_eq!(
        limits.pong_timeout.as_millis() as u64,
        number(values, "websocket-pong-timeout-ms")
    );
    assert!(limits.message_max >= 1 && limits.send_buffer_max >= 1);
    assert!(!limits.handshake_timeout.is_zero() && !limits.close_timeout.is_zero());
    assert!(!limits.pong_timeout.is_zero());
}

fn check_server(pairs: &[(String, String)]) {
    let result = ServerConfig::parse(pairs);
    let values = match expect(pairs, Scope::Server) {
        Err(bad) => {
            let err = result.expect_err("a bad value was accepted");
            assert_eq!(err.errno, libc::EINVAL);
            if let Some(bad) = bad {
                assert!(
                    err.message.contains(&format!("for key '{bad}'")),
                    "{bad}: {}",
                    err.message
                );
            }
            return;
        }
        Ok(values) => values,
    };
    check_ranges(&values);
    let has = |name: &str| values.contains_key(name);
    let tls = has("cert-file-path") && has("pkey-file-path");
    let broken = !has("port")
        || has("cert-file-path") != has("pkey-file-path")
        || (tls && has("tls-certificate-request-authority-names") && !has("ca-certs-file-path"));
    let config = match result {
        Ok(config) => config,
        Err(err) => {
            assert_eq!(err.errno, libc::EINVAL);
            assert!(broken, "refused {pairs:?}: {}", err.message);
            return;
        }
    };
    assert!(!broken, "accepted {pairs:?}");
    assert_eq!(u64::from(config.port), number(&values, "port"));
    assert_eq!(Value::Address(config.bind_address), values["bind-address"]);
    check_connection(&values, &config.connection);
    match &config.tls {
        None => assert!(!tls),
        Some(server_tls) => {
            assert!(tls);
            assert_eq!(server_tls.cert_file, values["cert-file-path"].path());
            assert_eq!(server_tls.key_file, values["pkey-file-path"].path());
            assert_eq!(
                server_tls.ca_files,
                values
                    .get("ca-certs-file-path")
                    .map(Value::paths)
                    .unwrap_or_default()
            );
            assert_eq!(
                server_tls.authority_names,
                values
                    .get("tls-certificate-request-authority-names")
                    .map(Value::names)
                    .unwrap_or_default()
            );
            assert!(
                server_tls
                    .authority_names
                    .iter()
                    .all(|n| !n.is_empty() && n.trim() == n)
            );
        }
    }
}

fn check_client(pairs: &[(String, String)]) {
    let result = ClientConfig::parse(pairs);
    let values = match expect(pairs, Scope::Client) {
        Err(bad) => {
            let err = result.expect_err("a bad value was accepted");
            assert_eq!(err.errno, libc::EINVAL);
            if let Some(bad) = bad {
                assert!(
                    err.message.contains(&format!("for key '{bad}'")),
                    "{bad}: {}",
                    err.message
                );
            }
            return;
        }
        Ok(values) => values,
    };
    check_ranges(&values);
    let broken = values.contains_key("cert-file-path") != values.contains_key("pkey-file-path");
    let config = match result {
        Ok(config) => config,
        Err(err) => {
            assert_eq!(err.errno, libc::EINVAL);
            assert!(broken, "refused {pairs:?}: {}", err.message);
            return;
        }
    };
    assert!(!broken, "accepted {pairs:?}");
    check_connection(&values, &config.connection);
    assert_eq!(
        config.tls.cert_file,
        values.get("cert-file-path").map(Value::path)
    );
    assert_eq!(
        config.tls.key_file,
        values.get("pkey-file-path").map(Value::path)
    );
    assert_eq!(
        config.tls.ca_files,
        values
            .get("ca-certs-file-path")
            .map(Value::paths)
            .unwrap_or_default()
    );
    assert_eq!(
        config.tls.disable_certificate_validation,
        values["tls-disable-certificate-validation"].flag()
    );
    assert_eq!(config.tls.use_sni, values["tls-use-sni"].flag());
    // Every TLS key given is recorded, in order (a ws:// URL then says they have no effect).
    let given: Vec<&str> = pairs
        .iter()
        .filter_map(|(name, _)| {
            KEYS.iter()
                .find(|k| k.name == name.as_str() && k.tls && k.applies_to(Scope::Client))
        })
        .map(|k| k.name)
        .collect();
    assert_eq!(config.tls_keys, given);
}

fn check_runtime(pairs: &[(String, String)]) {
    let result = RuntimeConfig::parse(pairs);
    let values = match expect(pairs, Scope::Initialize) {
        Err(bad) => {
            let err = result.expect_err("a bad value was accepted");
            assert_eq!(err.errno, libc::EINVAL);
            if let Some(bad) = bad {
                assert!(
                    err.message.contains(&format!("for key '{bad}'")),
                    "{bad}: {}",
                    err.message
                );
            }
            return;
        }
        Ok(values) => values,
    };
    check_ranges(&values);
    let config = match result {
        Ok(config) => config,
        Err(err) => panic!("refused {pairs:?}: {}", err.message),
    };
    assert_eq!(
        config.event_loop_threads as u64,
        number(&values, "event-loop-threads")
    );
    assert!((1..=64).contains(&config.event_loop_threads));
    assert_eq!(
        config.log_level.map(Value::Level),
        values.get("log-level").cloned()
    );
}

fuzz_target!(|data: &[u8]| {
    common::quiet();
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let pairs = decode(rest);
    match selector % 4 {
        0 => check_server(&pairs),
        1 => check_client(&pairs),
        2 => check_runtime(&pairs),
        _ => {
            check_server(&pairs);
            check_client(&pairs);
            check_runtime(&pairs);
        }
    }
});
