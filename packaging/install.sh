#!/bin/sh
# `make install` and `make uninstall` (the Makefile passes the variables; README "Installing").
#
#   usage: packaging/install.sh install|uninstall
#   env:   SRC_LIBDIR   where liboasisnet.so/.a were built (target/release, target/TRIPLE/release)
#          NATIVE_LIBS  file holding rustc's native-static-libs line for that build
#          VERSION      the crate's version (Cargo.toml); the soname is liboasisnet.so.MAJOR
#          PREFIX, DESTDIR, INSTALL_LIBDIR (relative to PREFIX, e.g. lib, lib64,
#          lib/aarch64-linux-gnu), INSTALL_INCLUDEDIR (relative to PREFIX),
#          PKGCONFIG_RELOCATABLE (1: the .pc files find the prefix from their own place)
#
# Installs, under DESTDIR/PREFIX:
#   LIBDIR/liboasisnet.so.VERSION, liboasisnet.so.MAJOR -> it, liboasisnet.so -> that
#   LIBDIR/liboasisnet.a
#   INCLUDEDIR/oasisnet/*.h           (a folder of its own: OasisAPI.h and friends keep the SDK's
#                                      names, which must not clash with another copy of the SDK)
#   LIBDIR/pkgconfig/oasisnet.pc, oasisnet-static.pc
#   LIBDIR/cmake/oasisnet/oasisnetConfig.cmake, oasisnetConfigVersion.cmake
# It builds nothing: a missing library or native-libs file is an error telling what to run (so
# that `sudo make install` never compiles as root). The CMake files name no absolute path: they
# find the prefix from their own place. The .pc files hold PREFIX (never DESTDIR), as pkg-config
# files usually do, so that PKG_CONFIG_SYSROOT_DIR adds the sysroot to it with every pkg-config
# (pkg-config 0.29 would add it a second time to a path found from ${pcfiledir}); a moved tree
# is read with `pkg-config --define-prefix`, and PKGCONFIG_RELOCATABLE=1 writes
# prefix=${pcfiledir}/.. instead (fine with pkgconf, also under a sysroot, and for any
# INSTALL_LIBDIR depth, which --define-prefix is not).
set -eu
cd "$(dirname "$0")/.."

mode="${1:-}"
case "$mode" in install|uninstall) ;; *) echo "usage: $0 install|uninstall" >&2; exit 2 ;; esac
: "${SRC_LIBDIR:?}" "${NATIVE_LIBS:?}" "${VERSION:?}" "${PREFIX:?}"
DESTDIR="${DESTDIR:-}"
INSTALL_LIBDIR="${INSTALL_LIBDIR:-lib}"
INSTALL_INCLUDEDIR="${INSTALL_INCLUDEDIR:-include}"
PKGCONFIG_RELOCATABLE="${PKGCONFIG_RELOCATABLE:-0}"

fail() { echo "install: $*" >&2; exit 1; }
case "$PREFIX" in /*) ;; *) fail "PREFIX must be an absolute path (got '$PREFIX')" ;; esac
# Relative, without . or .. components: the .pc and CMake files climb back to the prefix by
# counting them.
for d in "$INSTALL_LIBDIR" "$INSTALL_INCLUDEDIR"; do
  case "/$d/" in
    //*|*/./*|*/../*|*//*) fail "INSTALL_LIBDIR and INSTALL_INCLUDEDIR are folders below PREFIX, like lib or lib64 (got '$d')" ;;
  esac
done
case "$VERSION" in [0-9]*.[0-9]*.[0-9]*) ;; *) fail "VERSION '$VERSION' is not MAJOR.MINOR.PATCH" ;; esac
case "$PKGCONFIG_RELOCATABLE" in 0|1) ;; *) fail "PKGCONFIG_RELOCATABLE is 0 or 1 (got '$PKGCONFIG_RELOCATABLE')" ;; esac
soversion="${VERSION%%.*}"

root="$DESTDIR$PREFIX"
libdir="$root/$INSTALL_LIBDIR"
incdir="$root/$INSTALL_INCLUDEDIR/oasisnet"
pcdir="$libdir/pkgconfig"
cmakedir="$libdir/cmake/oasisnet"
real="liboasisnet.so.$VERSION"
headers="$(cd include && ls ./*.h | sed 's|^\./||')"

if [ "$mode" = uninstall ]; then
  rm -f "$libdir/$real" "$libdir/liboasisnet.so.$soversion" "$libdir/liboasisnet.so" \
        "$libdir/liboasisnet.a" "$pcdir/oasisnet.pc" "$pcdir/oasisnet-static.pc" \
        "$cmakedir/oasisnetConfig.cmake" "$cmakedir/oasisnetConfigVersion.cmake"
  for h in $headers; do rm -f "$incdir/$h"; done
  # Only the folders that are ours and now empty.
  rmdir "$incdir" "$cmakedir" 2>/dev/null || true
  echo "uninstalled liboasisnet $VERSION from $root"
  exit 0
fi

for f in "$SRC_LIBDIR/liboasisnet.so" "$SRC_LIBDIR/liboasisnet.a"; do
  [ -f "$f" ] || fail "$f is missing: build the library first (make lib; for a cross build, its target), as yourself: install builds nothing"
done
[ -s "$NATIVE_LIBS" ] || fail "$NATIVE_LIBS is missing: make lib, or make $NATIVE_LIBS, writes it; install builds nothing"
native="$(cat "$NATIVE_LIBS")"

# The pointer size of the library (ELF class byte: 1 = 32-bit, 2 = 64-bit), for CMake's check
# that a project of the other size does not pick it up.
class="$(od -An -tu1 -j4 -N1 "$SRC_LIBDIR/liboasisnet.so" | tr -d ' ')"
case "$class" in 1) sizeof_void_p=4 ;; 2) sizeof_void_p=8 ;;
  *) fail "$SRC_LIBDIR/liboasisnet.so is not an ELF shared library" ;; esac

# ../ once per component of the folder below the prefix, plus one for pkgconfig/ or two for
# cmake/oasisnet/.
ups() { echo "$1" | awk -F/ -v extra="$2" '{ s = ""; for (i = 0; i < NF + extra; i++) s = s (i ? "/" : "") ".."; print s }'; }

# A value made safe for the right-hand side of sed's s|||.
esc() { printf '%s' "$1" | sed 's/[\\|&]/\\&/g'; }
# subst TEMPLATE UP: the template with its @NAME@ placeholders filled in.
subst() {
  sed -e "s|@PC_PREFIX@|$(esc "$pc_prefix")|g" -e "s|@UP@|$2|g" \
      -e "s|@LIBDIR@|$(esc "$INSTALL_LIBDIR")|g" -e "s|@INCLUDEDIR@|$(esc "$INSTALL_INCLUDEDIR")|g" \
      -e "s|@VERSION@|$VERSION|g" -e "s|@SOVERSION@|$soversion|g" \
      -e "s|@SIZEOF_VOID_P@|$sizeof_void_p|g" -e "s|@NATIVE_STATIC_LIBS@|$(esc "$native")|g" \
      -e "s|@NATIVE_STATIC_LIBS_CMAKE@|$(echo "$native" | tr -s ' ' ';')|g" "packaging/$1"
}

install -d "$libdir" "$incdir" "$pcdir" "$cmakedir"
install -m 755 "$SRC_LIBDIR/liboasisnet.so" "$libdir/$real"
ln -sf "$real" "$libdir/liboasisnet.so.$soversion"
ln -sf "liboasisnet.so.$soversion" "$libdir/liboasisnet.so"
install -m 644 "$SRC_LIBDIR/liboasisnet.a" "$libdir/liboasisnet.a"
for h in $headers; do install -m 644 "include/$h" "$incdir/$h"; done
up_pc="$(ups "$INSTALL_LIBDIR" 1)"
if [ "$PKGCONFIG_RELOCATABLE" = 1 ]; then pc_prefix="\${pcfiledir}/$up_pc"; else pc_prefix="$PREFIX"; fi
up_cmake="$(ups "$INSTALL_LIBDIR" 2)"
subst oasisnet.pc.in "$up_pc" > "$pcdir/oasisnet.pc"
subst oasisnet-static.pc.in "$up_pc" > "$pcdir/oasisnet-static.pc"
subst oasisnetConfig.cmake.in "$up_cmake" > "$cmakedir/oasisnetConfig.cmake"
subst oasisnetConfigVersion.cmake.in "$up_cmake" > "$cmakedir/oasisnetConfigVersion.cmake"
chmod 644 "$pcdir"/oasisnet*.pc "$cmakedir"/oasisnet*.cmake
echo "installed liboasisnet $VERSION into $root ($INSTALL_LIBDIR/, $INSTALL_INCLUDEDIR/oasisnet/)"
