//! docs/PARAMETERS.md is rendered from the key table the parser uses; this test fails when the
//! two differ (run with OASIS_UPDATE_DOCS=1 to rewrite the file).

use oasisnet::config::{KEYS, Scope};

fn render() -> String {
    let mut out = String::from(
        "# Parameters\n\nEvery key `oasis_initialize`, `createWsServer`, `wsOpenConnection`, \
         `createHttpServer` and `createHttpWsService` understand; the `where` column names them \
         initialize, server, client, http server and service. Values are strings. An unknown key \
         is logged and ignored; a known key with a bad value makes the call fail with `EINVAL` \
         and a message naming the key and the value.\n\n\
         (Generated from `src/config/keys.rs` by `OASIS_UPDATE_DOCS=1 cargo test --test docs`.)\n\n\
         | key | where | type | default | effect |\n|---|---|---|---|---|\n",
    );
    for key in KEYS {
        let scopes: Vec<&str> = key
            .scopes()
            .iter()
            .map(|s| match s {
                Scope::Initialize => "initialize",
                Scope::Server => "server",
                Scope::Client => "client",
                Scope::HttpServer => "http server",
                Scope::Service => "service",
            })
            .collect();
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} |\n",
            key.name,
            scopes.join(", "),
            key.value_type().replace('|', "\\|"),
            key.default_text(),
            key.effect
        ));
    }
    out
}

#[test]
fn parameter_table_is_current() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/PARAMETERS.md");
    let expected = render();
    if std::env::var_os("OASIS_UPDATE_DOCS").is_some() {
        std::fs::write(path, &expected).unwrap();
    }
    let actual = std::fs::read_to_string(path).unwrap_or_default();
    assert_eq!(
        actual, expected,
        "docs/PARAMETERS.md is stale: run OASIS_UPDATE_DOCS=1 cargo test --test docs"
    );
}
