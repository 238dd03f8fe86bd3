//! The shape of `src/`, checked so that it stays: arrows between top-level modules point one
//! way, the reactor knows nothing above it, the protocol core does no I/O and knows nothing of
//! sockets, locks, C or the layers around it, C types live in `src/ffi` only, and no source
//! file grows past about 600 lines without saying why.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const SRC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src");

/// Files longer than this must say why in their opening comment ("(over 600 lines: …)").
const LINES_MAX: usize = 600;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every source file with its top-level module (`src/ws/session.rs` → `ws`, `src/log.rs` →
/// `log`) and its text without comments (so that prose naming a module does not count).
fn sources() -> Vec<(String, PathBuf, String)> {
    let mut files = Vec::new();
    rust_files(Path::new(SRC), &mut files);
    files
        .into_iter()
        .filter(|path| !path.ends_with("lib.rs"))
        .map(|path| {
            let relative = path.strip_prefix(SRC).unwrap();
            let first = relative.components().next().unwrap().as_os_str();
            let module = first.to_string_lossy().trim_end_matches(".rs").to_string();
            let text = std::fs::read_to_string(&path).unwrap();
            let code: String = text
                .lines()
                .map(|line| match line.find("//") {
                    Some(at) if !line[..at].contains('"') => &line[..at],
                    _ => line,
                })
                .collect::<Vec<_>>()
                .join(" ");
            // Whitespace collapsed, so that a path split over lines (`use crate::{\n ws, … }`)
            // reads as one.
            let code = code.split_whitespace().collect::<Vec<_>>().join(" ");
            (module, path, code)
        })
        .collect()
}

/// Whether `code` names the top-level module `module`: `crate::module`, a `super::super::…`
/// path that climbs to the crate root from a module of `depth` levels, or a bare name inside a
/// `use crate::{…}` group.
fn names_module(code: &str, module: &str) -> bool {
    let is_word_end = |rest: &str| {
        rest.chars()
            .next()
            .is_none_or(|c| !c.is_alphanumeric() && c != '_')
    };
    let path = |prefix: &str| {
        code.match_indices(prefix)
            .any(|(at, _)| is_word_end(&code[at + prefix.len()..]))
    };
    if path(&format!("crate::{module}")) || path(&format!("super::super::{module}")) {
        return true;
    }
    // `use crate::{a, b::c, …}`: the names at the group's top level.
    code.match_indices("crate::{").any(|(at, _)| {
        let group = &code[at + "crate::{".len()..];
        let mut depth = 0;
        let mut name = String::new();
        for c in group.chars() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => return name.trim() == module,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    if name.trim() == module {
                        return true;
                    }
                    name.clear();
                }
                ':' if depth == 0 => {
                    if name.trim() == module {
                        return true;
                    }
                    name.push(c);
                }
                _ if depth == 0 => name.push(c),
                _ => {}
            }
        }
        false
    })
}

fn top_level_modules() -> BTreeSet<String> {
    sources().into_iter().map(|(module, _, _)| module).collect()
}

/// Which top-level modules each top-level module uses.
fn module_graph() -> BTreeMap<String, BTreeSet<String>> {
    let modules = top_level_modules();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, _, code) in sources() {
        let uses = graph.entry(module.clone()).or_default();
        for other in &modules {
            if *other != module && names_module(&code, other) {
                uses.insert(other.clone());
            }
        }
    }
    graph
}

fn files_of(module: &str) -> Vec<(PathBuf, String)> {
    sources()
        .into_iter()
        .filter(|(m, _, _)| m == module)
        .map(|(_, path, code)| (path, code))
        .collect()
}

#[test]
fn top_level_modules_form_no_cycle() {
    let graph = module_graph();
    // Depth-first search with the path kept, so a cycle can be printed.
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) {
        if let Some(at) = path.iter().position(|n| n == node) {
            panic!("import cycle: {} -> {node}", path[at..].join(" -> "));
        }
        if done.contains(node) {
            return;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            visit(next, graph, path, done);
        }
        path.pop();
        done.insert(node.to_string());
    }
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        visit(node, &graph, &mut Vec::new(), &mut done);
    }
    println!("{graph:#?}");
}

#[test]
fn the_reactor_knows_nothing_above_it() {
    for (path, code) in files_of("runtime") {
        for above in ["http", "ws", "ffi", "protocol", "transport", "config"] {
            assert!(
                !names_module(&code, above),
                "{} names crate::{above}",
                path.display()
            );
        }
    }
}

/// The loops compiled for wider registers sit under the protocol core: they name no module of
/// the crate, and they are all the `unsafe` the core reaches.
#[test]
fn simd_is_a_leaf() {
    let files = files_of("simd");
    assert_eq!(files.len(), 1, "src/simd.rs not found");
    let modules: BTreeSet<String> = sources().into_iter().map(|(m, _, _)| m).collect();
    for (path, code) in files {
        for module in modules.iter().filter(|m| *m != "simd") {
            assert!(
                !names_module(&code, module),
                "{} names crate::{module}",
                path.display()
            );
        }
    }
}

/// Words that mean I/O, locks, threads, clocks, randomness or logging: the protocol core and
/// the HTTP parsers (`http/parse/`) name none of them.
const NO_IO: [&str; 19] = [
    "mio::",
    "std::net",
    "std::io",
    "std::fs",
    "std::os",
    "std::thread",
    "std::process",
    "std::env",
    "parking_lot",
    "Mutex",
    "RwLock",
    "Condvar",
    "Atomic",
    "libc::",
    "rand::",
    "log!(",
    "Instant::now",
    "SystemTime",
    "unsafe",
];

/// The layers around a sans-IO core, which it must not name.
const AROUND: [&str; 8] = [
    "runtime",
    "transport",
    "ffi",
    "http",
    "ws",
    "config",
    "log",
    "error",
];

fn assert_no_io(path: &Path, code: &str) {
    for word in NO_IO {
        assert!(!code.contains(word), "{} names {word}", path.display());
    }
    for layer in AROUND {
        assert!(
            !names_module(code, layer),
            "{} names crate::{layer}",
            path.display()
        );
    }
}

#[test]
fn the_protocol_core_does_no_io_and_knows_no_layer_around_it() {
    // (Its unit tests, `protocol/tests.rs` and `protocol/tests/`, may read the clock.)
    let is_test = |path: &Path| {
        path.ends_with("tests.rs")
            || path
                .parent()
                .is_some_and(|dir| dir.ends_with("protocol/tests"))
    };
    for (path, code) in files_of("protocol")
        .into_iter()
        .filter(|(path, _)| !is_test(path))
    {
        assert_no_io(&path, &code);
    }
}

/// The HTTP parsers are sans-IO like the protocol core: byte slices in, values out, so the
/// fuzz targets and unit tests drive them directly. (`super::` paths inside `http` are fine:
/// `http/parse` may name its siblings, not the layers around.)
#[test]
fn the_http_parsers_do_no_io() {
    let parse = files_of("http")
        .into_iter()
        .filter(|(path, _)| path.components().any(|c| c.as_os_str() == "parse"))
        .collect::<Vec<_>>();
    assert!(parse.len() >= 6, "http/parse/ not found: {parse:?}");
    for (path, code) in parse {
        assert_no_io(&path, &code);
        // Nor does it reach into the rest of `http` (files, the connection), which does I/O.
        assert!(
            !code.contains("super::super"),
            "{} climbs out of http/parse",
            path.display()
        );
    }
}

#[test]
fn http_sits_between_ffi_and_ws() {
    for (path, code) in files_of("http") {
        assert!(
            !names_module(&code, "ffi"),
            "{} names crate::ffi",
            path.display()
        );
    }
    for module in ["ws", "runtime", "protocol", "transport", "config"] {
        for (path, code) in files_of(module) {
            assert!(
                !names_module(&code, "http"),
                "{} names crate::http",
                path.display()
            );
        }
    }
}

#[test]
fn c_types_live_in_ffi_only() {
    let c_words = [
        "extern \"C",
        "extern \"system\"",
        "os::raw",
        "c_int",
        "c_void",
        "c_char",
        "CString",
        "CStr",
        "repr(C)",
        "ws_message_t",
        "ws_status_code_t",
        "oasis_log_level_t",
        "WsEventDelegateVTable",
        "OasisKeyValue",
        "WsEvent",
        "no_mangle",
    ];
    for (module, path, code) in sources() {
        if module == "ffi" {
            continue;
        }
        for word in c_words {
            assert!(
                !code.contains(word),
                "{} names {word}, a C type: C types belong in src/ffi",
                path.display()
            );
        }
    }
}

/// The C surface is the same in every build (README, "Cargo features"): a part a feature leaves
/// out is swapped below `src/ffi`, whose functions all stay. cbindgen does not see the active
/// features, so a `#[cfg(feature)]` here would also put functions in the header that the library
/// lacks.
#[test]
fn the_c_surface_has_no_feature_switches() {
    for (path, code) in files_of("ffi") {
        assert!(
            !code.contains("feature ="),
            "{} switches on a Cargo feature: swap the part below src/ffi instead",
            path.display()
        );
    }
}

#[test]
fn source_files_stay_readable() {
    for (_, path, _) in sources() {
        let text = std::fs::read_to_string(&path).unwrap();
        let lines = text.lines().count();
        if lines > LINES_MAX {
            let opening: String = text.lines().take(15).collect::<Vec<_>>().join("\n");
            assert!(
                opening.contains(&format!("(over {LINES_MAX} lines:")),
                "{} has {lines} lines: split it by job, or say why in its opening comment \
                 with \"(over {LINES_MAX} lines: …)\"",
                path.display()
            );
        }
    }
}

#[test]
fn the_name_check_sees_every_form_of_path() {
    for (code, module) in [
        ("use crate::ws::session::Session;", "ws"),
        ("use crate::{ error, ws::session::Session, };", "ws"),
        ("use crate::{error, ws};", "ws"),
        (
            "let t = super::super::transport::Transport::new();",
            "transport",
        ),
        ("crate::protocol::Reader::default()", "protocol"),
    ] {
        assert!(names_module(code, module), "missed {module} in `{code}`");
    }
    for (code, module) in [
        ("use crate::wsx::X;", "ws"),
        ("use crate::{error, log};", "ws"),
        ("// crate::ws in prose", "wsx"),
    ] {
        assert!(!names_module(code, module), "saw {module} in `{code}`");
    }
}

#[test]
fn the_checks_see_the_real_tree() {
    // Guards the test itself: were the paths wrong, every check above would pass vacuously.
    let modules = top_level_modules();
    for expected in [
        "ffi",
        "http",
        "ws",
        "protocol",
        "runtime",
        "transport",
        "config",
    ] {
        assert!(
            modules.contains(expected),
            "{expected} not found in {modules:?}"
        );
    }
    let graph = module_graph();
    assert!(graph["ffi"].contains("ws"), "{graph:?}");
    assert!(graph["ws"].contains("protocol"), "{graph:?}");
    assert!(!files_of("protocol").is_empty());
}
