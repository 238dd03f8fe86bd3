//! Static files under the server's root folder (plan §1.3): a clean request path resolved to
//! an open regular file, a redirect to a folder's slash form, or not found. There are no
//! folder listings: a folder is served by its `index.html`.
//!
//! The guard against leaving the root has three layers. `path::clean_path` leaves only normal
//! segments. The joined path is canonicalised (`realpath`) and must stay under the canonical
//! root, so a symlink pointing out of it is not found while one within it works. The file is
//! then opened with `O_NOFOLLOW`, so a last component swapped for a symlink after the check
//! is refused, and `fstat` of the open file must say "regular file".
//!
//! What remains is a race on the folders in between (one swapped for a symlink between the
//! check and the open). Exploiting it needs write access inside the root, which on a camera
//! is usually a read-only filesystem. `openat2(RESOLVE_BENEATH)` would close it, but it needs
//! Linux 5.6 and camera kernels are often older.
//!
//! This does blocking filesystem calls on the caller's thread (plan D12).

use super::parse::date::HttpDate;
use super::parse::path::encode_path;
use std::fs::{File, Metadata, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The file a folder is served by.
pub const INDEX: &str = "index.html";

/// Where a request path leads under the root.
#[derive(Debug)]
pub enum Resolved {
    /// An open regular file: its canonical path (for its content type use the request path:
    /// a link `in_link -> t.txt` is served under the link's name), the file and its `fstat`.
    File {
        path: PathBuf,
        file: File,
        meta: Metadata,
    },
    /// A folder asked for without its trailing slash: 301 to this path (escaped, without the
    /// query; the caller appends `?query` if there was one).
    Redirect(String),
    /// Nothing servable: missing, unreadable, out of the root, a folder without `index.html`,
    /// a file asked for with a trailing slash, or not a regular file.
    NotFound,
}

/// Resolves the clean path `clean` (a `CleanPath::Ok`'s `decoded`, with its `trailing_slash`)
/// under `root`, which must be canonical (`std::fs::canonicalize` once, when the server is
/// created).
pub fn resolve(root: &Path, clean: &str, trailing_slash: bool) -> Resolved {
    let relative = Path::new(clean.trim_start_matches('/'));
    // clean_path promises this already; a path that climbs is the one mistake this function
    // must never make, so it is checked here too.
    if !relative
        .components()
        .all(|c| matches!(c, Component::Normal(_)))
    {
        return Resolved::NotFound;
    }
    let Some(found) = under(root, &root.join(relative)) else {
        return Resolved::NotFound;
    };
    let Ok(meta) = std::fs::metadata(&found) else {
        return Resolved::NotFound;
    };
    let target = if meta.is_dir() {
        if !trailing_slash {
            return Resolved::Redirect(format!("{}/", encode_path(clean)));
        }
        // The index may itself be a symlink: the same check again.
        match under(root, &found.join(INDEX)) {
            Some(index) => index,
            None => return Resolved::NotFound,
        }
    } else if trailing_slash {
        return Resolved::NotFound;
    } else {
        found
    };
    open(target)
}

/// The canonical form of `path` if it exists, lies under `root` and is not hidden.
fn under(root: &Path, path: &Path) -> Option<PathBuf> {
    std::fs::canonicalize(path)
        .ok()
        .filter(|canonical| canonical.starts_with(root) && !hidden(root, canonical))
}

/// Whether a name on the way from `root` to `canonical` starts with a dot: `.htpasswd`,
/// `.git/config` and the like are never served, also when a link leads to them.
fn hidden(root: &Path, canonical: &Path) -> bool {
    canonical.strip_prefix(root).map_or(true, |inside| {
        inside
            .components()
            .any(|c| c.as_os_str().as_encoded_bytes().starts_with(b"."))
    })
}

fn open(path: PathBuf) -> Resolved {
    // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer, stalling the
    // loop; it changes nothing for a regular file. (std adds O_CLOEXEC anyway.)
    let opened = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(&path);
    let Ok(file) = opened else {
        return Resolved::NotFound;
    };
    match file.metadata() {
        Ok(meta) if meta.is_file() => Resolved::File { path, file, meta },
        _ => Resolved::NotFound,
    }
}

/// `time` as an HTTP date, whole seconds; clamped to 1970..=9999, where `httpdate` would
/// panic (a file's mtime can be anything, and a clock without RTC can read anything).
pub fn http_date(time: SystemTime) -> HttpDate {
    // 9999-12-31 23:59:59, the last second httpdate can write.
    let last = UNIX_EPOCH + Duration::from_secs(253_402_300_799);
    HttpDate::from(time.clamp(UNIX_EPOCH, last))
}

/// A file's `Last-Modified` (its mtime; the epoch if the filesystem keeps none).
pub fn last_modified(meta: &Metadata) -> HttpDate {
    http_date(meta.modified().unwrap_or(UNIX_EPOCH))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A folder tree for one test, removed when dropped:
    /// `base/secret.txt`, `base/root/{index.html, t.txt, a b.txt, sub/index.html, sub2/x.txt,
    /// in_link -> t.txt, in_dir -> sub, out_link -> ../secret.txt, out_dir -> base/outside,
    /// sub2/index.html -> ../../secret.txt, fifo}`, `base/outside/o.txt`.
    struct Tree {
        base: PathBuf,
        root: PathBuf,
    }

    impl Tree {
        fn new() -> Tree {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let base = std::env::temp_dir().join(format!(
                "oasisnet-files-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = std::fs::remove_dir_all(&base);
            let root = base.join("root");
            for dir in [
                &root,
                &root.join("sub"),
                &root.join("sub2"),
                &base.join("outside"),
            ] {
                std::fs::create_dir_all(dir).unwrap();
            }
            let write = |path: &Path, text: &str| std::fs::write(path, text).unwrap();
            write(&base.join("secret.txt"), "SECRET");
            write(&base.join("outside/o.txt"), "SECRET");
            write(&base.join("outside/index.html"), "SECRET");
            write(&root.join("index.html"), "<h1>root</h1>");
            write(&root.join("t.txt"), "text");
            write(&root.join("a b.txt"), "spaced");
            write(&root.join("sub/index.html"), "<h1>sub</h1>");
            write(&root.join("sub2/x.txt"), "x");
            symlink("t.txt", root.join("in_link")).unwrap();
            symlink("sub", root.join("in_dir")).unwrap();
            symlink("../secret.txt", root.join("out_link")).unwrap();
            symlink(base.join("outside"), root.join("out_dir")).unwrap();
            let made = std::process::Command::new("mkfifo")
                .arg(root.join("fifo"))
                .status();
            assert!(made.unwrap().success(), "mkfifo");
            let root = std::fs::canonicalize(root).unwrap();
            Tree { base, root }
        }

        fn resolve(&self, clean: &str) -> Resolved {
            resolve(&self.root, clean, clean.ends_with('/'))
        }

        /// The served file's text, or "redirect PATH" or "not found".
        fn serve(&self, clean: &str) -> String {
            match self.resolve(clean) {
                Resolved::File { file, meta, path } => {
                    assert!(path.starts_with(&self.root), "{}", path.display());
                    let text = std::io::read_to_string(file).unwrap();
                    assert_eq!(meta.len(), text.len() as u64);
                    text
                }
                Resolved::Redirect(to) => format!("redirect {to}"),
                Resolved::NotFound => "not found".into(),
            }
        }
    }

    impl Drop for Tree {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.base);
        }
    }

    #[test]
    fn hidden_names_are_never_served() {
        let tree = Tree::new();
        std::fs::write(tree.root.join(".htpasswd"), "admin:x").unwrap();
        std::fs::create_dir(tree.root.join(".git")).unwrap();
        std::fs::write(tree.root.join(".git/config"), "[core]").unwrap();
        symlink(".htpasswd", tree.root.join("visible_link")).unwrap();
        for path in ["/.htpasswd", "/.git/config", "/.git/", "/visible_link"] {
            assert_eq!(tree.serve(path), "not found", "{path}");
        }
        assert_eq!(tree.serve("/t.txt"), "text", "an ordinary file still is");
    }

    #[test]
    fn files_and_folder_indexes_are_served() {
        let tree = Tree::new();
        assert_eq!(tree.serve("/"), "<h1>root</h1>");
        assert_eq!(tree.serve("/index.html"), "<h1>root</h1>");
        assert_eq!(tree.serve("/t.txt"), "text");
        assert_eq!(tree.serve("/a b.txt"), "spaced");
        assert_eq!(tree.serve("/sub/"), "<h1>sub</h1>");
        assert_eq!(tree.serve("/sub/index.html"), "<h1>sub</h1>");
    }

    #[test]
    fn a_folder_without_its_slash_is_redirected() {
        let tree = Tree::new();
        assert_eq!(tree.serve("/sub"), "redirect /sub/");
        assert_eq!(tree.serve("/sub2"), "redirect /sub2/");
        std::fs::create_dir(tree.root.join("a b")).unwrap();
        assert_eq!(tree.serve("/a b"), "redirect /a%20b/");
    }

    #[test]
    fn no_listings_and_no_trailing_slash_on_files() {
        let tree = Tree::new();
        assert_eq!(tree.serve("/sub2/"), "not found");
        assert_eq!(tree.serve("/t.txt/"), "not found");
        assert_eq!(tree.serve("/missing.txt"), "not found");
        assert_eq!(tree.serve("/missing/"), "not found");
        assert_eq!(tree.serve("/sub/missing"), "not found");
    }

    #[test]
    fn symlinks_within_the_root_work_and_out_of_it_are_not_found() {
        let tree = Tree::new();
        assert_eq!(tree.serve("/in_link"), "text");
        assert_eq!(tree.serve("/in_dir/"), "<h1>sub</h1>");
        assert_eq!(tree.serve("/out_link"), "not found");
        assert_eq!(tree.serve("/out_dir/"), "not found");
        assert_eq!(tree.serve("/out_dir/o.txt"), "not found");
        assert_eq!(tree.serve("/out_dir"), "not found");
        // An index.html that is a link out of the root.
        symlink("../../secret.txt", tree.root.join("sub2/index.html")).unwrap();
        assert_eq!(tree.serve("/sub2/"), "not found");
    }

    #[test]
    fn paths_that_climb_are_not_found_even_if_passed_in() {
        let tree = Tree::new();
        for clean in [
            "/../secret.txt",
            "/sub/../../secret.txt",
            "/./t.txt",
            "//etc/passwd",
        ] {
            assert_eq!(tree.serve(clean), "not found", "{clean}");
        }
        // An absolute path inside is still taken as relative to the root.
        assert_eq!(tree.serve("/etc/passwd"), "not found");
    }

    #[test]
    fn only_regular_files_are_opened() {
        let tree = Tree::new();
        // (Opening the FIFO does not wait for a writer.)
        assert_eq!(tree.serve("/fifo"), "not found");
    }

    #[test]
    fn the_last_component_is_opened_without_following_links() {
        let tree = Tree::new();
        // As if in_link had been swapped in after the check: open() itself refuses it.
        assert!(matches!(
            open(tree.root.join("in_link")),
            Resolved::NotFound
        ));
        assert!(matches!(
            open(tree.root.join("t.txt")),
            Resolved::File { .. }
        ));
    }

    #[test]
    fn dates_are_clamped_where_httpdate_would_panic() {
        let before = UNIX_EPOCH - Duration::from_secs(86400);
        assert_eq!(
            http_date(before).to_string(),
            "Thu, 01 Jan 1970 00:00:00 GMT"
        );
        let after = UNIX_EPOCH + Duration::from_secs(300_000_000_000);
        assert_eq!(
            http_date(after).to_string(),
            "Fri, 31 Dec 9999 23:59:59 GMT"
        );
        let tree = Tree::new();
        let Resolved::File { meta, .. } = tree.resolve("/t.txt") else {
            panic!("t.txt not found");
        };
        let mtime = meta.modified().unwrap();
        assert_eq!(last_modified(&meta), HttpDate::from(mtime));
    }
}
