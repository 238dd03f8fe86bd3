//! The content type of a file from its extension: a hand table (plan §2) of what a device's
//! web page uses, instead of a crate with a thousand entries. Anything else is
//! `application/octet-stream`; responses also carry `X-Content-Type-Options: nosniff`, so a
//! browser does not guess further.

const TABLE: &[(&str, &str)] = &[
    ("html", "text/html; charset=utf-8"),
    ("htm", "text/html; charset=utf-8"),
    ("css", "text/css; charset=utf-8"),
    // RFC 9239: text/javascript for classic scripts and modules alike.
    ("js", "text/javascript; charset=utf-8"),
    ("mjs", "text/javascript; charset=utf-8"),
    ("json", "application/json"),
    ("svg", "image/svg+xml"),
    ("png", "image/png"),
    ("jpg", "image/jpeg"),
    ("jpeg", "image/jpeg"),
    ("ico", "image/x-icon"),
    // WebAssembly.instantiateStreaming refuses any other type.
    ("wasm", "application/wasm"),
    ("txt", "text/plain; charset=utf-8"),
];

pub const DEFAULT: &str = "application/octet-stream";

/// The content type for `path` (a request path or a file name), by the extension of its last
/// segment, case-insensitively. A name without one, or only a leading dot (`.profile`), gets
/// [`DEFAULT`].
pub fn content_type(path: &str) -> &'static str {
    let name = path.rsplit('/').next().unwrap_or(path);
    let extension = match name.rsplit_once('.') {
        Some((stem, extension)) if !stem.is_empty() => extension,
        _ => return DEFAULT,
    };
    TABLE
        .iter()
        .find(|(known, _)| known.eq_ignore_ascii_case(extension))
        .map_or(DEFAULT, |(_, content_type)| content_type)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_extension_case_insensitively() {
        for (path, expected) in [
            ("/index.html", "text/html; charset=utf-8"),
            ("/old.htm", "text/html; charset=utf-8"),
            ("/a.css", "text/css; charset=utf-8"),
            ("/app.js", "text/javascript; charset=utf-8"),
            ("/m.mjs", "text/javascript; charset=utf-8"),
            ("/d.json", "application/json"),
            ("/i.svg", "image/svg+xml"),
            ("/p.png", "image/png"),
            ("/UPPER.PNG", "image/png"),
            ("/j.jpg", "image/jpeg"),
            ("/k.JPeG", "image/jpeg"),
            ("/f.ico", "image/x-icon"),
            ("/w.wasm", "application/wasm"),
            ("/t.txt", "text/plain; charset=utf-8"),
            ("/dir.d/a b.tar.txt", "text/plain; charset=utf-8"),
            ("t.txt", "text/plain; charset=utf-8"),
        ] {
            assert_eq!(content_type(path), expected, "{path}");
        }
    }

    #[test]
    fn anything_else_is_octet_stream() {
        for path in [
            "/x.bin",
            "/noext",
            "/",
            "",
            "/.html",
            "/a.",
            "/dir.html/",
            "/a.tar.gz",
            "/a.html5",
            "/a.\u{e9}",
        ] {
            assert_eq!(content_type(path), DEFAULT, "{path}");
        }
    }
}
