#!/usr/bin/env bash
# Installs what `make demo` (demo) or `make test` (test) needs; `make setup-demo`/`setup-test` and
# `make demo`/`make test` run it (SETUP=0 skips it, e.g. on a machine without network).
#
#   usage: tests/scripts/setup.sh {demo|test}
#
# Idempotent and quick when everything is there (0.3-0.5 s measured): each stage first checks
# cheaply and installs only what is missing.
#   1. Debian packages (both modes; the list is below). One dpkg-query decides; only when a package
#      is missing: apt-get update (3 tries), then apt-get install --no-install-recommends of the
#      missing ones. As root directly, otherwise through `sudo -n` when that works; else the exact
#      command is printed and the other stages still run (the steps that need the packages then
#      fail, naming them).
#   2. Rust components rustfmt and clippy and the ARM targets of `make cross` (test), through
#      rustup when missing.
#   3. The Python test peers (test): .venv/ in the repo, from tests/python/requirements.txt
#      (tests/scripts/venv.sh).
#   4. The Autobahn|Testsuite (test): ~/.cache/autobahn-testsuite (tools/autobahn/setup.sh).
# Each stage that succeeded leaves target/setup/<stage>.ok holding the hash of its inputs; the
# Autobahn stage is skipped while its stamp matches and wstest is there (its own check starts
# Python 2.7 and costs about a second).
# A stage that fails is reported and the others still run; the last line says what failed. The
# exit status is 0 unless the usage is wrong: `make test` then runs, and the steps that needed the
# missing piece fail there with their logs.
set -uo pipefail

mode="${1:-}"
case "$mode" in
  demo|test) ;;
  *) echo "usage: $0 {demo|test}" >&2; exit 2 ;;
esac
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROOT="$PWD"
STAMPS="$ROOT/target/setup"
mkdir -p "$STAMPS"
[ -d "$HOME/.cargo/bin" ] && case ":$PATH:" in *":$HOME/.cargo/bin:"*) ;; *) PATH="$HOME/.cargo/bin:$PATH" ;; esac
export DEBIAN_FRONTEND=noninteractive
t0=$(date +%s%N)
problems=()
say() { echo "setup: $*"; }
# A problem is listed at the end, where it is seen; the stages after it still run.
problem() { problems+=("$1"); }

# stamp_ok NAME KEY / stamp_write NAME KEY / stamp_drop NAME
stamp_ok() { [ -f "$STAMPS/$1.ok" ] && [ "$(cat "$STAMPS/$1.ok")" = "$2" ]; }
stamp_write() { printf '%s\n' "$2" > "$STAMPS/$1.ok"; }
stamp_drop() { rm -f "$STAMPS/$1.ok"; }
hash_of() { printf '%s\n' "$@" | sha256sum | cut -d' ' -f1; }

# ---------- 1. Debian packages ----------
# make and the C/C++ compilers build the library's C samples and tests; openssl (CLI) makes the
# TLS certificates (tests/scripts/make-certs.sh, also `make demo TLS=1`).
PKGS=(make gcc g++ libc6-dev openssl)
if [ "$mode" = test ]; then
  # valgrind for the C tests' memory checks; libasan8 and libubsan1, gcc 12's
  # AddressSanitizer/UndefinedBehaviorSanitizer runtimes, for the C tests built with
  # -fsanitize=address,undefined (gcc-12 pulls them in through libgcc-12-dev; named here because
  # the tests need them); ca-certificates for the client's default trust store; the archive
  # keyring for tools/autobahn/setup.sh's private download of Debian 11's python2.7 packages (the
  # Autobahn suite runs on Python 2.7); unshare + mount (util-linux, mount) and ip (iproute2) for
  # tests/resolver.rs, which runs its tests in a private network namespace with a name server of
  # its own; chromium for the browser steps (tests/browser/cdp_check.py drives it headless) and
  # fonts-dejavu-core so that its screenshots show text, not boxes (--no-install-recommends brings
  # no fonts); python3-venv for .venv/ (Debian's python3 cannot make a venv without it); cmake
  # and pkg-config to build programs against the installed library as its users do
  # (tests/scripts/install-check.sh).
  PKGS+=(valgrind libasan8 libubsan1 ca-certificates debian-archive-keyring util-linux mount
         iproute2 chromium fonts-dejavu-core python3-venv cmake pkg-config)
  # The ARM cross builds (make cross) and their test runs under user-mode QEMU: the cross
  # compilers (gcc/g++ for aarch64 and armv7 hard-float) with their C libraries, named because
  # --no-install-recommends leaves them out, and qemu-user (qemu-aarch64, qemu-arm).
  PKGS+=(gcc-aarch64-linux-gnu g++-aarch64-linux-gnu libc6-dev-arm64-cross
         gcc-arm-linux-gnueabihf g++-arm-linux-gnueabihf libc6-dev-armhf-cross qemu-user)
fi

# The packages of PKGS that are not installed ("ii"), from one dpkg-query (about 10 ms).
missing_packages() {
  local installed
  installed="$(dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n' "${PKGS[@]}" 2>/dev/null |
               awk '$2 == "ii" { print $1 }')"
  local p
  for p in "${PKGS[@]}"; do
    grep -qx -- "$p" <<<"$installed" || echo "$p"
  done
}

packages() {
  local key; key="$(hash_of "${PKGS[@]}")"
  if ! command -v dpkg-query >/dev/null || ! command -v apt-get >/dev/null; then
    problem "packages: not a Debian system (no dpkg-query/apt-get); install by hand: ${PKGS[*]}"
    return
  fi
  local missing; mapfile -t missing < <(missing_packages)
  if [ ${#missing[@]} -eq 0 ]; then stamp_write "packages-$mode" "$key"; return; fi
  stamp_drop "packages-$mode"
  say "Debian packages missing: ${missing[*]}"
  local run=()
  if [ "$(id -u)" = 0 ]; then run=()
  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then run=(sudo -n)
  else
    problem "packages: not root and no password-less sudo; as root run:
    apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]}"
    return
  fi
  local log="$STAMPS/apt.log" ok=0 try
  : > "$log"
  for try in 1 2 3; do
    if "${run[@]}" apt-get update -qq </dev/null >>"$log" 2>&1; then ok=1; break; fi
    say "apt-get update failed (try $try of 3)"; [ $try -lt 3 ] && sleep 5
  done
  [ $ok = 1 ] || { tail -n 20 "$log" >&2; say "apt-get update failed; trying the install anyway"; }
  say "apt-get install --no-install-recommends ${missing[*]} (log: $log)"
  if ! "${run[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
       "${missing[@]}" </dev/null >>"$log" 2>&1; then
    tail -n 20 "$log" >&2
  fi
  mapfile -t missing < <(missing_packages)
  if [ ${#missing[@]} -eq 0 ]; then stamp_write "packages-$mode" "$key"
  else problem "packages: still missing after apt-get install: ${missing[*]} (log: $log)"; fi
}

# ---------- 2. Rust ----------
# The ARM targets of `make cross` (as in the Makefile's CROSS_TARGETS).
CROSS_TARGETS=(aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf thumbv7neon-unknown-linux-gnueabihf)
rust() {
  if ! command -v cargo >/dev/null; then
    problem "rust: cargo not found; install Rust with rustup (https://rustup.rs):
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal -c rustfmt,clippy"
    return
  fi
  [ "$mode" = test ] || return 0
  local c ok=1 msrv=""
  for c in fmt:rustfmt clippy:clippy; do
    cargo "${c%%:*}" --version >/dev/null 2>&1 && continue
    say "rustup component add ${c#*:}"
    if ! command -v rustup >/dev/null || ! rustup component add "${c#*:}" </dev/null; then
      problem "rust: no ${c#*:} (rustup component add ${c#*:} failed)"; ok=0
    fi
  done
  # The Rust standard libraries of the ARM targets (make cross); `rustup target list --installed`
  # answers in milliseconds.
  if command -v rustup >/dev/null; then
    local installed t; installed="$(rustup target list --installed 2>/dev/null)"
    for t in "${CROSS_TARGETS[@]}"; do
      grep -qx -- "$t" <<<"$installed" && continue
      say "rustup target add $t"
      rustup target add "$t" </dev/null || { problem "rust: rustup target add $t failed"; ok=0; }
    done
    # The oldest compiler Cargo.toml claims (rust-version), for the msrv step.
    msrv="$(sed -n 's/^rust-version *= *"\([^"]*\)".*/\1/p' Cargo.toml)"
    if [ -n "$msrv" ] && ! rustup run "$msrv" rustc --version >/dev/null 2>&1; then
      say "rustup toolchain install $msrv --profile minimal"
      rustup toolchain install "$msrv" --profile minimal </dev/null \
        || { problem "rust: rustup toolchain install $msrv failed"; ok=0; }
    fi
    # The standard library's source: PROFILE=release-small rebuilds it for size (-Z build-std).
    if [ ! -d "$(rustc --print sysroot)/lib/rustlib/src/rust/library/std" ]; then
      say "rustup component add rust-src"
      rustup component add rust-src </dev/null || { problem "rust: rustup component add rust-src failed"; ok=0; }
    fi
  else
    problem "rust: no rustup; the ARM steps need the targets ${CROSS_TARGETS[*]}"; ok=0
  fi
  # Not installed here: run-tests.sh falls back to cargo test without it.
  cargo nextest --version >/dev/null 2>&1 || say "note: no cargo-nextest; make test uses cargo test"
  if [ $ok = 1 ]; then stamp_write rust "rustfmt clippy rust-src rust-$msrv ${CROSS_TARGETS[*]}"; else stamp_drop rust; fi
}

# ---------- 3. Python test peers ----------
python_venv() {
  local key; key="$(sha256sum tests/python/requirements.txt | cut -d' ' -f1)"
  # venv.sh is itself quick when .venv/ matches requirements.txt (one cmp).
  if bash tests/scripts/venv.sh </dev/null >/dev/null; then stamp_write venv "$key"
  else stamp_drop venv; problem "python: tests/scripts/venv.sh failed (.venv/)"; fi
}

# ---------- 4. Autobahn|Testsuite ----------
autobahn() {
  local home="${AUTOBAHN_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/autobahn-testsuite}"
  local key; key="$(hash_of "$(sha256sum tools/autobahn/setup.sh | cut -d' ' -f1)" "$home")"
  if stamp_ok autobahn "$key" && [ -x "$home/bin/wstest" ]; then return; fi
  say "Autobahn|Testsuite into $home (tools/autobahn/setup.sh)"
  if bash tools/autobahn/setup.sh </dev/null >/dev/null; then stamp_write autobahn "$key"
  else stamp_drop autobahn; problem "autobahn: tools/autobahn/setup.sh failed"; fi
}

packages
rust
if [ "$mode" = test ]; then
  python_venv
  autobahn
fi

ms=$(( ($(date +%s%N) - t0) / 1000000 ))
if [ ${#problems[@]} -eq 0 ]; then
  say "$mode: ready ($(printf '%d.%03d' $((ms / 1000)) $((ms % 1000))) s)"
else
  say "$mode: ${#problems[@]} problem(s); the steps that need what is missing will fail:" >&2
  printf '  - %s\n' "${problems[@]}" >&2
fi
exit 0
