#!/usr/bin/env bash
# Checks the library as it is shipped (run-tests.sh steps "install: ..."; needs `make lib` done).
#
#   usage: tests/scripts/install-check.sh exports|install
#
# exports: target/release/liboasisnet.so exports exactly the functions that include/oasis_net.h
#   declares (each extra or missing one is named), everything the inline C++ layer of
#   OasisAPI.h/OasisNet.h/OasisWeb.h/OasisLog.h calls is among them (a shared object holding every
#   inline function of the headers links with --no-undefined), and its SONAME is
#   liboasisnet.so.MAJOR (Cargo.toml's version).
# install: `make install` into a staging DESTDIR, a look at what it put there (links, headers, no
#   absolute path in the CMake files, the .pc files right under PKG_CONFIG_SYSROOT_DIR), then the
#   tree is MOVED elsewhere and used from there as a firmware project would:
#   tests/install/echo_roundtrip.c (an echo round trip over 127.0.0.1) built with
#   pkg-config --define-prefix (oasisnet: shared; oasisnet-static with --static:
#   liboasisnet.a) and with CMake (find_package(oasisnet): oasisnet::oasisnet and
#   oasisnet::oasisnet_static, plus the documented C++ samples against each other); each program
#   runs, and ldd shows the moved liboasisnet.so.0 (or none for the static ones). Then a moved
#   multiarch layout (INSTALL_LIBDIR=lib/x86_64-linux-gnu, PKGCONFIG_RELOCATABLE=1) is found by
#   plain pkg-config and by CMake, and
#   `make uninstall` leaves nothing behind.
# Work files: target/install-check/.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROOT="$PWD"
# shellcheck source=tests/scripts/lib.sh
. tests/scripts/lib.sh

# OASIS_LIB: another build of the library to check the exports of (a smaller build of the Cargo
# features: tests/run-tests.sh).
LIB="${OASIS_LIB:-$ROOT/target/release/liboasisnet.so}"
VERSION="$(sed -n 's/^version *= *"\([^"]*\)".*/\1/p' Cargo.toml | head -n 1)"
SOVERSION="${VERSION%%.*}"
WORK="$ROOT/target/install-check"
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

# The functions include/oasis_net.h declares: cbindgen writes each on one line ending in ");".
declared() {
  sed -nE 's/^[A-Za-z_][^(]*[ *]([A-Za-z_][A-Za-z0-9_]*)\(.*\);$/\1/p' include/oasis_net.h | sort -u
}

exports() {
  [ -f "$LIB" ] || { echo "missing $LIB (make lib)"; return 1; }
  local want have extra missing
  want="$(declared)"
  [ "$(wc -l <<<"$want")" -ge 40 ] || { echo "only $(wc -l <<<"$want") declarations found in include/oasis_net.h: the parsing is off"; return 1; }
  # Defined dynamic symbols, without any @VERSION suffix.
  have="$(nm -D --defined-only "$LIB" | awk '{ sub(/@.*/, "", $3); print $3 }' | sort -u)"
  extra="$(comm -13 <(echo "$want") <(echo "$have"))"
  missing="$(comm -23 <(echo "$want") <(echo "$have"))"
  echo "$LIB: $(wc -l <<<"$have") exported symbols, include/oasis_net.h declares $(wc -l <<<"$want") functions"
  for s in $extra; do fail "$s is exported but not declared in include/oasis_net.h"; done
  for s in $missing; do fail "$s is declared in include/oasis_net.h but not exported"; done

  # Every inline function of the C++ headers, emitted (-fkeep-inline-functions) into one shared
  # object that must link with no undefined symbol against the library and the C++ runtime.
  mkdir -p "$WORK"
  printf '#include "OasisAPI.h"\n#include "OasisNet.h"\n#include "OasisWeb.h"\n#include "OasisLog.h"\n' \
    > "$WORK/all_headers.cpp"
  if g++ -std=c++11 -Wall -Wextra -Werror -shared -fPIC -fkeep-inline-functions -Iinclude \
       "$WORK/all_headers.cpp" -o "$WORK/all_headers.so" -Wl,--no-undefined \
       -L"$(dirname "$LIB")" -loasisnet; then
    echo "the C++ headers' inline layer calls $(nm -D --undefined-only "$WORK/all_headers.so" |
      awk '$1 == "U" && $2 !~ /@/' | wc -l) library functions, all exported"
  else
    fail "the inline C++ layer of the headers calls a function liboasisnet.so does not export (above)"
  fi

  local soname
  soname="$(readelf -d "$LIB" | sed -n 's/.*(SONAME).*\[\(.*\)\].*/\1/p')"
  echo "SONAME: ${soname:-none}"
  [ "$soname" = "liboasisnet.so.$SOVERSION" ] || fail "SONAME is '${soname}', not liboasisnet.so.$SOVERSION"
  [ $fails -eq 0 ]
}

# run_linked NAME PROGRAM LIBDIR: runs PROGRAM with only LIBDIR on LD_LIBRARY_PATH (none when
# LIBDIR is empty) after checking with ldd where liboasisnet.so.0 comes from: LIBDIR, or, for
# NAME *static*, nowhere.
run_linked() {
  local name="$1" bin="$2" libdir="$3" deps out rc
  [ -x "$bin" ] || { fail "$name: $bin was not built"; return; }
  deps="$(env -u LD_LIBRARY_PATH ${libdir:+LD_LIBRARY_PATH="$libdir"} ldd "$bin")"
  echo "--- ldd $name:"; echo "$deps"
  if [[ "$name" == *static* ]]; then
    grep -q oasisnet <<<"$deps" && fail "$name needs a liboasisnet shared library"
  else
    local want="${libdir:-$MOVED/lib}/liboasisnet.so.$SOVERSION"
    grep -qF "liboasisnet.so.$SOVERSION => $want " <<<"$deps" \
      || fail "$name does not load $want"
    readelf -d "$bin" | grep -qF "Shared library: [liboasisnet.so.$SOVERSION]" \
      || fail "$name does not record NEEDED liboasisnet.so.$SOVERSION"
  fi
  out="$(env -u LD_LIBRARY_PATH ${libdir:+LD_LIBRARY_PATH="$libdir"} timeout 60 "$bin" 2>&1)"; rc=$?
  echo "--- $name (exit $rc): $out"
  [ $rc -eq 0 ] && grep -qx "echo round trip ok: hello over the installed liboasisnet" <<<"$out" \
    || fail "$name did not complete its echo round trip"
}

# The documented C++ samples built through CMake, against each other (the client's
# "hello, world!" comes back as "==> hello, world!").
samples() {
  local dir="$1" port log="$WORK/sample-server.log" out pid try started=0
  for try in 1 2 3; do
    port="$(free_port)"
    start_bg "$log" env -u LD_LIBRARY_PATH "$dir/ws_server_sample" "$port"; pid=$BG_PID
    if wait_port "$port" "$pid" 10; then started=1; break; fi
    stop_proc "$pid" 2 KILL >/dev/null 2>&1; echo "--- ws_server_sample did not start (try $try):"; cat "$log"
  done
  [ $started = 1 ] || { fail "CMake-built ws_server_sample did not start"; return; }
  out="$(env -u LD_LIBRARY_PATH timeout 30 "$dir/ws_client_sample" "ws://127.0.0.1:$port/" 2>&1)"
  echo "--- ws_client_sample:"; echo "$out"
  grep -qF "==> hello, world!" <<<"$out" || fail "the CMake-built samples did not exchange \"hello, world!\""
  check_stop ws_server_sample "$pid" 15 || fail "ws_server_sample did not stop"
}

install_check() {
  rm -rf "$WORK"; mkdir -p "$WORK"
  local stage="$WORK/stage" prefix=/opt/oasisnet t0 f
  t0=$(date +%s)
  echo "--- make install DESTDIR=$stage PREFIX=$prefix"
  make --no-print-directory install DESTDIR="$stage" PREFIX="$prefix" || { fail "make install failed"; return 1; }
  local tree="$stage$prefix"
  (cd "$tree" && find . | sort)
  for f in "lib/liboasisnet.so.$VERSION" lib/liboasisnet.a lib/pkgconfig/oasisnet.pc \
           lib/pkgconfig/oasisnet-static.pc lib/cmake/oasisnet/oasisnetConfig.cmake \
           lib/cmake/oasisnet/oasisnetConfigVersion.cmake; do
    [ -f "$tree/$f" ] || fail "make install did not install $f"
  done
  for f in include/*.h; do
    cmp -s "$f" "$tree/include/oasisnet/$(basename "$f")" || fail "$f is not installed as include/oasisnet/$(basename "$f")"
  done
  [ "$(readlink "$tree/lib/liboasisnet.so.$SOVERSION")" = "liboasisnet.so.$VERSION" ] \
    || fail "lib/liboasisnet.so.$SOVERSION is not a link to liboasisnet.so.$VERSION"
  [ "$(readlink "$tree/lib/liboasisnet.so")" = "liboasisnet.so.$SOVERSION" ] \
    || fail "lib/liboasisnet.so is not a link to liboasisnet.so.$SOVERSION"
  # The CMake files hold no absolute path; the .pc files hold PREFIX (for PKG_CONFIG_SYSROOT_DIR),
  # never the staging folder.
  if grep -rnF -e "$prefix" -e "$ROOT" "$tree/lib/cmake"; then
    fail "an absolute path is written in the CMake files (above): not relocatable"
  fi
  if grep -rnF -e "$ROOT" "$tree/lib/pkgconfig"; then fail "the .pc files name the staging folder (above)"; fi
  grep -qx "prefix=$prefix" "$tree/lib/pkgconfig/oasisnet.pc" || fail "oasisnet.pc does not say prefix=$prefix"
  # A cross build's view: the staging folder as the sysroot.
  local inc
  inc="$(PKG_CONFIG_SYSROOT_DIR="$stage" PKG_CONFIG_LIBDIR="$tree/lib/pkgconfig" pkg-config --cflags-only-I oasisnet)"
  echo "with PKG_CONFIG_SYSROOT_DIR=$stage: $inc"
  [ "$inc" = "-I$tree/include/oasisnet" ] || [ "$inc" = "-I$tree/include/oasisnet " ] \
    || fail "under PKG_CONFIG_SYSROOT_DIR the include folder is '$inc', not -I$tree/include/oasisnet"

  # Moved: nothing may still point into the staging folder.
  MOVED="$WORK/elsewhere/oasisnet-$VERSION"
  mkdir -p "$WORK/elsewhere" && mv "$tree" "$MOVED" && rm -rf "$stage"
  echo "--- installed tree moved to $MOVED"
  local cflags=(-std=c99 -Wall -Wextra -Werror -O2)
  # --define-prefix: the prefix from the .pc file's place, as a moved tree needs.
  pc() { PKG_CONFIG_LIBDIR="$MOVED/lib/pkgconfig" PKG_CONFIG_PATH="" pkg-config --define-prefix "$@"; }
  echo "pkg-config oasisnet: $(pc --modversion oasisnet); $(pc --cflags --libs oasisnet)"
  echo "pkg-config --static oasisnet-static: $(pc --static --cflags --libs oasisnet-static)"
  [ "$(pc --modversion oasisnet)" = "$VERSION" ] || fail "pkg-config --modversion oasisnet is not $VERSION"
  local native; native="$(cat target/release/oasisnet-native-static-libs)"
  for f in $native; do
    grep -qw -- "$f" <<<"$(pc --static --libs oasisnet)" || fail "pkg-config --static --libs oasisnet lacks $f (Libs.private)"
  done
  gcc "${cflags[@]}" -o "$WORK/pc_shared" tests/install/echo_roundtrip.c $(pc --cflags --libs oasisnet) \
    || fail "building with pkg-config oasisnet failed"
  run_linked "pkg-config shared" "$WORK/pc_shared" "$MOVED/lib"
  gcc "${cflags[@]}" -o "$WORK/pc_static" tests/install/echo_roundtrip.c $(pc --static --cflags --libs oasisnet-static) \
    || fail "building with pkg-config --static oasisnet-static failed"
  run_linked "pkg-config static" "$WORK/pc_static" ""

  echo "--- CMake: find_package(oasisnet) with CMAKE_PREFIX_PATH=$MOVED"
  local build="$WORK/cmake-build"
  if cmake -S tests/install -B "$build" -DCMAKE_PREFIX_PATH="$MOVED" -DOASIS_SAMPLES="$ROOT/c-examples" \
       -DCMAKE_BUILD_TYPE=Release && cmake --build "$build" -j "$(nproc 2>/dev/null || echo 2)"; then
    # No LD_LIBRARY_PATH: CMake's build rpath names the moved tree.
    run_linked "cmake oasisnet::oasisnet" "$build/echo_roundtrip" ""
    run_linked "cmake oasisnet::oasisnet_static" "$build/echo_roundtrip_static" ""
    samples "$build"
  else
    fail "the CMake project (tests/install/CMakeLists.txt) did not configure or build"
  fi

  # A multiarch layout with relocatable .pc files: the files climb two folders more to find the
  # prefix.
  local multi="$WORK/multiarch" arch=lib/x86_64-linux-gnu
  make --no-print-directory -s install DESTDIR="$multi" PREFIX=/usr INSTALL_LIBDIR="$arch" \
    PKGCONFIG_RELOCATABLE=1 >/dev/null || fail "make install INSTALL_LIBDIR=$arch PKGCONFIG_RELOCATABLE=1 failed"
  mv "$multi/usr" "$multi/moved"
  local libdir
  inc="$(PKG_CONFIG_LIBDIR="$multi/moved/$arch/pkgconfig" pkg-config --cflags-only-I oasisnet | sed 's/^-I//; s/ *$//')"
  libdir="$(PKG_CONFIG_LIBDIR="$multi/moved/$arch/pkgconfig" pkg-config --variable=libdir oasisnet)"
  echo "multiarch: pkg-config -I $inc, libdir $libdir"
  [ -f "$inc/OasisAPI.h" ] && [ -f "$libdir/liboasisnet.so.$VERSION" ] \
    || fail "pkg-config points outside the $arch tree"
  cmake -S tests/install -B "$WORK/cmake-multiarch" -DCMAKE_PREFIX_PATH="$multi/moved" -DOASIS_FIND_ONLY=ON \
    | grep oasisnet || fail "find_package(oasisnet) failed on the $arch tree"
  make --no-print-directory -s uninstall DESTDIR="$multi" PREFIX=/moved INSTALL_LIBDIR="$arch" >/dev/null
  # Left: the folders that are not oasisnet's own (lib/x86_64-linux-gnu/pkgconfig and the like).
  if [ -n "$(find "$multi/moved" -not -type d)" ]; then
    find "$multi/moved" -not -type d; fail "make uninstall left files behind (above)"
  fi
  echo "install checks took $(( $(date +%s) - t0 ))s"
  [ $fails -eq 0 ]
}

case "${1:-}" in
  exports) exports ;;
  install) install_check ;;
  *) echo "usage: $0 exports|install" >&2; exit 2 ;;
esac
