#!/bin/sh
# Prints the native libraries that a program linking liboasisnet.a must link after it, as rustc
# reports them (`--print native-static-libs`) for the target's standard library, e.g.
# "-lgcc_s -lutil -lrt -lpthread -lm -ldl -lc". It asks about an empty static library, not the
# real one: that takes a fraction of a second, where `cargo rustc ... --print native-static-libs`
# would compile the whole library once more. The dependencies add no native library of their own
# (ring's C code is bundled inside the archive); the install check links liboasisnet.a with this
# list and runs the program, so a dependency that ever adds one fails there.
#
#   usage: packaging/native-static-libs.sh LIB-FOLDER [TARGET-TRIPLE]   (RUSTC: the compiler)
#
# The target is TARGET-TRIPLE when given, else read from cargo's layout: LIB-FOLDER
# .../TRIPLE/release is a cross build for TRIPLE (a name rustc knows), anything else
# (target/release) the host.
set -eu
[ $# -ge 1 ] || { echo "usage: $0 LIB-FOLDER [TARGET-TRIPLE]" >&2; exit 2; }
rustc="${RUSTC:-rustc}"
target="${2:-}"
if [ -z "$target" ]; then
  parent="$(basename "$(dirname "$1")")"
  if "$rustc" --print target-list | grep -qxF -- "$parent"; then target="$parent"; fi
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
: > "$tmp/probe.rs"
if ! "$rustc" ${target:+--target "$target"} --crate-type staticlib --crate-name probe \
     --print native-static-libs -o "$tmp/libprobe.a" "$tmp/probe.rs" 2> "$tmp/out"; then
  cat "$tmp/out" >&2
  echo "native-static-libs.sh: $rustc could not build for ${target:-the host} (rustup target add?)" >&2
  exit 1
fi
libs="$(sed -n 's/^note: native-static-libs: //p' "$tmp/out")"
if [ -z "$libs" ]; then
  cat "$tmp/out" >&2
  echo "native-static-libs.sh: $rustc printed no native-static-libs line" >&2
  exit 1
fi
printf '%s\n' "$libs"
