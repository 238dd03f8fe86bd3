//! Request targets made into paths under a root (`clean_path`). Input: the target as text
//! (invalid UTF-8 replaced by U+FFFD).
//!
//! Invariants:
//! - it never panics, and a refusal says why;
//! - the query is everything after the first '?';
//! - a clean path is '/' followed by normal segments only (no empty, `.` or `..` segment), has
//!   no NUL, '\\' or control character, ends with '/' exactly when `trailing_slash`, and as a
//!   `Path` is the root followed by `Component::Normal`s;
//! - no '/' comes from an escape: it has no more segments than the raw path;
//! - it is idempotent: escaped again with `encode_path`, it cleans to itself (and, when it has
//!   nothing to escape, as it is);
//! - joined under a root, it stays under that root.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oasisnet::http::parse::path::{CleanPath, clean_path, encode_path};
use std::path::{Component, Path};

fn check(target: &str, decoded: &str, trailing_slash: bool) {
    assert!(decoded.starts_with('/'), "{target:?} -> {decoded:?}");
    assert_eq!(
        decoded.ends_with('/'),
        trailing_slash,
        "{target:?} -> {decoded:?}"
    );
    assert!(
        !decoded.chars().any(|c| c == '\\' || c.is_ascii_control()),
        "{target:?} -> {decoded:?}"
    );
    let body = decoded.strip_suffix('/').unwrap_or(decoded);
    let segments: Vec<&str> = body.split('/').skip(1).collect();
    if body.is_empty() {
        assert_eq!(decoded, "/");
    } else {
        for segment in &segments {
            assert!(
                !matches!(*segment, "" | "." | ".."),
                "{target:?} -> {decoded:?}"
            );
        }
    }
    let mut components = Path::new(decoded).components();
    assert_eq!(components.next(), Some(Component::RootDir));
    assert!(
        components.all(|c| matches!(c, Component::Normal(_))),
        "{target:?} -> {decoded:?}"
    );

    // The raw path (query off, absolute-form reduced) has at least as many segments.
    let raw = target.split('?').next().unwrap_or_default();
    let raw = match raw.split_once("://") {
        Some((_, rest)) if !raw.starts_with('/') => rest.find('/').map_or("/", |at| &rest[at..]),
        _ => raw,
    };
    let raw_segments = raw.split('/').filter(|s| !s.is_empty()).count();
    let count = if body.is_empty() { 0 } else { segments.len() };
    assert!(
        count <= raw_segments,
        "{target:?} -> {decoded:?}: a separator from an escape"
    );

    let same = (
        CleanPath::Ok {
            decoded: decoded.to_string(),
            trailing_slash,
        },
        None,
    );
    let escaped = encode_path(decoded);
    assert_eq!(
        clean_path(&escaped),
        same,
        "{target:?} -> {decoded:?} -> {escaped:?}"
    );
    if !decoded.contains(['%', '?', '#']) {
        assert_eq!(clean_path(decoded), same, "{target:?} -> {decoded:?}");
    }

    let root = Path::new("/srv/www");
    let joined = root.join(&decoded[1..]);
    assert!(
        joined.starts_with(root),
        "{target:?} -> {}",
        joined.display()
    );
    assert!(
        joined
            .strip_prefix(root)
            .unwrap()
            .components()
            .all(|c| matches!(c, Component::Normal(_))),
        "{target:?} -> {}",
        joined.display()
    );
}

fuzz_target!(|data: &[u8]| {
    let target = String::from_utf8_lossy(data);
    let (clean, query) = clean_path(&target);
    assert_eq!(query, target.split_once('?').map(|(_, q)| q), "{target:?}");
    match clean {
        CleanPath::Ok {
            decoded,
            trailing_slash,
        } => check(&target, &decoded, trailing_slash),
        CleanPath::Bad(why) => assert!(!why.is_empty()),
    }
});
