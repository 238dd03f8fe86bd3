//! A request target made safe to join under a root folder: the query split off, absolute-form
//! reduced to its path, percent-escapes decoded by hand, and the result normalised or
//! refused (400). The decoder is ours on purpose (plan §2): the refusals below have to look
//! at every escape anyway, and a general decoder passes `%zz` through and turns `%2f` into a
//! separator.
//!
//! Refused: a `..` segment (also spelt `%2e%2e`, `.%2e` …), an escaped `/` or `\` (`%2f`,
//! `%5c`), a raw `\`, NUL or any other control character (raw or escaped: a decoded CR/LF
//! would end up in a `Location` header), a bad or truncated escape, decoded bytes that are
//! not UTF-8 (so also overlong forms like `%c0%ae`), a raw `#`, and a target that is not a path
//! (`*`, `example.com:443`, a scheme other than http/https). `//` and `.` segments collapse.
//!
//! Invariants (fuzzed by `http_path`): a clean path is `/` followed by normal segments only,
//! joins under a root without leaving it, and cleans to itself once escaped again with
//! [`encode_path`].

/// A cleaned request path, or why the target is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CleanPath {
    /// `decoded` starts with '/', has no empty, `.` or `..` segment, and ends with '/'
    /// exactly when `trailing_slash` (the root is "/", with `trailing_slash`).
    Ok {
        decoded: String,
        trailing_slash: bool,
    },
    Bad(&'static str),
}

/// Splits `target` into its cleaned path and its raw query (without the '?', not decoded).
/// `"/a%20b/./c/?x=1"` gives `("/a b/c/", trailing slash)` and `Some("x=1")`.
pub fn clean_path(target: &str) -> (CleanPath, Option<&str>) {
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (target, None),
    };
    let clean = match clean(path) {
        Ok(clean) => clean,
        Err(why) => CleanPath::Bad(why),
    };
    (clean, query)
}

fn clean(path: &str) -> Result<CleanPath, &'static str> {
    let path = origin_form(path)?;
    if !path.starts_with('/') {
        return Err("the request target is not a path");
    }
    let text = String::from_utf8(decode(path)?).map_err(|_| "the path is not UTF-8")?;
    let mut decoded = String::with_capacity(text.len());
    let mut trailing_slash = false;
    for segment in text.split('/').skip(1) {
        trailing_slash = matches!(segment, "" | ".");
        match segment {
            "" | "." => {}
            ".." => return Err("'..' in the path"),
            _ => {
                decoded.push('/');
                decoded.push_str(segment);
            }
        }
    }
    if decoded.is_empty() || trailing_slash {
        decoded.push('/');
        trailing_slash = true;
    }
    Ok(CleanPath::Ok {
        decoded,
        trailing_slash,
    })
}

/// Absolute-form (`http://host:port/path`) reduced to its path; anything else unchanged.
fn origin_form(target: &str) -> Result<&str, &'static str> {
    if target.starts_with('/') {
        return Ok(target);
    }
    let Some((scheme, rest)) = target.split_once("://") else {
        return Err("the request target is not a path");
    };
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return Err("the request target has a scheme other than http");
    }
    Ok(rest.find('/').map_or("/", |at| &rest[at..]))
}

fn hex(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

/// Percent-decodes `path`, refusing what must not reach a file name (see the module doc).
fn decode(path: &str) -> Result<Vec<u8>, &'static str> {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        let byte = match bytes[at] {
            b'%' => {
                let pair = bytes.get(at + 1..at + 3).ok_or("a truncated %-escape")?;
                let (Some(high), Some(low)) = (hex(pair[0]), hex(pair[1])) else {
                    return Err("a bad %-escape");
                };
                at += 3;
                match high << 4 | low {
                    b'/' => return Err("an escaped '/' in the path"),
                    byte => byte,
                }
            }
            // A fragment is never part of a request target; an escaped '#' is a name.
            b'#' => return Err("a '#' in the request target"),
            byte => {
                at += 1;
                byte
            }
        };
        match byte {
            b'\\' => return Err("a '\\' in the path"),
            0 => return Err("a NUL in the path"),
            byte if byte.is_ascii_control() => return Err("a control character in the path"),
            _ => out.push(byte),
        }
    }
    Ok(out)
}

/// A clean path escaped for a URL (a `Location` header): every byte but the unreserved and
/// sub-delimiter characters, ':', '@' and '/' becomes `%XX`. `clean_path` gives it back.
pub fn encode_path(decoded: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(decoded.len());
    for &byte in decoded.as_bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 15)]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(decoded: &str, trailing_slash: bool) -> CleanPath {
        CleanPath::Ok {
            decoded: decoded.to_string(),
            trailing_slash,
        }
    }

    fn cleaned(target: &str) -> CleanPath {
        clean_path(target).0
    }

    #[test]
    fn paths_are_decoded_and_normalised() {
        for (target, decoded, slash) in [
            ("/", "/", true),
            ("/index.html", "/index.html", false),
            ("/a%20b.txt", "/a b.txt", false),
            ("/a%20b/./c/", "/a b/c/", true),
            ("//etc/passwd", "/etc/passwd", false),
            ("/sub//x///", "/sub/x/", true),
            ("/sub/.", "/sub/", true),
            ("/./.", "/", true),
            ("/%41%62%63", "/Abc", false),
            ("/%e2%82%ac", "/\u{20ac}", false),
            ("/\u{20ac}/", "/\u{20ac}/", true),
            ("/...", "/...", false),
            ("/.hidden/..x", "/.hidden/..x", false),
            ("/100%25", "/100%", false),
            ("/a%3fb", "/a?b", false),
            ("/a%23b", "/a#b", false),
            ("/a+b", "/a+b", false),
        ] {
            assert_eq!(cleaned(target), ok(decoded, slash), "{target}");
        }
    }

    #[test]
    fn the_query_is_split_off_first_and_kept_raw() {
        assert_eq!(
            clean_path("/a?x=1&y=%2f"),
            (ok("/a", false), Some("x=1&y=%2f"))
        );
        assert_eq!(clean_path("/a/?"), (ok("/a/", true), Some("")));
        assert_eq!(clean_path("/a?b?c"), (ok("/a", false), Some("b?c")));
        assert_eq!(clean_path("/a"), (ok("/a", false), None));
        // A '..' in the query is not a path segment.
        assert_eq!(clean_path("/?../x").0, ok("/", true));
    }

    #[test]
    fn absolute_form_is_reduced_to_its_path() {
        assert_eq!(cleaned("http://x/p/q"), ok("/p/q", false));
        assert_eq!(cleaned("HTTPS://x:8443/"), ok("/", true));
        assert_eq!(cleaned("http://x"), ok("/", true));
        assert_eq!(clean_path("http://x?q").1, Some("q"));
        assert!(matches!(
            cleaned("http://x/../secret.txt"),
            CleanPath::Bad(_)
        ));
        for target in ["ftp://x/a", "*", "example.com:443", "", "a/b", "http:/x"] {
            assert!(matches!(cleaned(target), CleanPath::Bad(_)), "{target:?}");
        }
    }

    /// The traversal tricks of the plan's section 6, item 8, and a few more.
    #[test]
    fn traversal_and_smuggling_are_refused() {
        for target in [
            "/../secret.txt",
            "/sub/../../secret.txt",
            "/sub/..",
            "/..",
            "/%2e%2e/secret.txt",
            "/%2E%2E/secret.txt",
            "/.%2e/secret.txt",
            "/%2e./secret.txt",
            "/..%2fsecret.txt",
            "/sub%2f..%2f..%2fsecret.txt",
            "/%2fetc/passwd",
            "/%2Fetc/passwd",
            "/..\\secret.txt",
            "/%5c..%5csecret.txt",
            "/%5C",
            "/%00",
            "/index.html%00.txt",
            "/a\0b",
            "/%zz",
            "/%2",
            "/%",
            "/a%2",
            "/%g0",
            "/%c0%ae%c0%ae/",
            "/%ff",
            "/%e2%82",
            "/a%0d%0aSet-Cookie:x",
            "/a\r\nb",
            "/%7f",
            "/a\tb",
            "/a#frag",
        ] {
            assert!(
                matches!(cleaned(target), CleanPath::Bad(_)),
                "{target:?} gave {:?}",
                cleaned(target)
            );
        }
    }

    #[test]
    fn a_clean_path_escaped_again_cleans_to_itself() {
        for target in [
            "/a%20b/c/",
            "/100%25/?x",
            "/a%3fb%23",
            "/\u{20ac}%C3%A9",
            "/x'y(z)",
            "/",
        ] {
            let CleanPath::Ok {
                decoded,
                trailing_slash,
            } = cleaned(target)
            else {
                panic!("{target} refused");
            };
            let again = encode_path(&decoded);
            assert_eq!(
                cleaned(&again),
                ok(&decoded, trailing_slash),
                "{target} -> {again}"
            );
        }
        assert_eq!(encode_path("/a b/%?#\u{e9}"), "/a%20b/%25%3F%23%C3%A9");
    }
}
