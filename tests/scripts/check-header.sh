#!/usr/bin/env bash
# Builds the library (cargo build --release) and compares the header that build.rs generated into
# OUT_DIR with the committed include/oasis_net.h. Fails on any difference (prints the diff).
#
#   usage: tests/scripts/check-header.sh [CARGO-BUILD-ARGS...]   (default: --release)
#
# Other arguments build another variant, e.g. `--no-default-features --features client`: the
# header is the same for every set of Cargo features (build.rs runs again for each).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
[ $# -gt 0 ] || set -- --release
mkdir -p target
json="target/build-header-$(printf '%s' "$*" | tr -c 'A-Za-z0-9' '-').json"
if ! cargo build "$@" --message-format=json > "$json"; then
  echo "check-header: cargo build $* failed"; exit 1
fi
out_dir="$(python3 - "$json" <<'PYEOF'
import json, sys
for line in open(sys.argv[1]):
    try:
        m = json.loads(line)
    except ValueError:
        continue
    pid = m.get("package_id", "")
    # "path+file:///…/main#oasisnet@0.1.0", "path+file:///…/oasisnet#0.1.0" (cargo >= 1.77)
    # or "oasisnet 0.1.0 (path+file://…)" (older cargo)
    if "#" in pid:
        path, frag = pid.rsplit("#", 1)
        name = frag.split("@")[0] if "@" in frag else path.rstrip("/").rsplit("/", 1)[-1]
    else:
        name = pid.split(" ")[0]
    if m.get("reason") == "build-script-executed" and name == "oasisnet":
        print(m["out_dir"])
        break
PYEOF
)"
if [ -z "$out_dir" ] || [ ! -f "$out_dir/oasis_net.h" ]; then
  echo "check-header: no build-script output for package oasisnet (out_dir '${out_dir}')"; exit 1
fi
if diff -u include/oasis_net.h "$out_dir/oasis_net.h"; then
  echo "check-header: include/oasis_net.h matches $out_dir/oasis_net.h"
else
  echo "check-header: include/oasis_net.h differs from the generated header (diff above:"
  echo "  '+' lines are what cbindgen generates now); copy $out_dir/oasis_net.h over it"
  exit 1
fi
