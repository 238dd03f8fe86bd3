# oasisnet — build and test entry points.
#
#   make demo        build, then run the HTTP demo (c-examples/http_demo.cpp): a web page and a live
#                    WebSocket at /ws on http://127.0.0.1:8080/ — open it in a browser
#                    (DEMO_PORT=..., DEMO_BIND=0.0.0.0 to reach it from elsewhere, TLS=1 for https
#                    with a self-signed certificate it makes; Ctrl-C stops it)
#   make demo-echo   the documented echo server sample on ws://127.0.0.1:9000/ (ECHO_PORT=...)
#   make test        run every test (tests/run-tests.sh); last line "N passed, M failed"
#                    (ONLY=pattern runs only the steps whose name contains it, e.g. ONLY=autobahn)
#   make setup-demo  install what `make demo` needs, make setup-test what `make test` needs
#                    (tests/scripts/setup.sh: Debian packages, rustfmt/clippy, .venv/, Autobahn);
#                    only what is missing, so a second run takes well under a second. demo and
#                    test run them first; SETUP=0 skips them (offline machines)
#   make lib         target/release/liboasisnet.so (soname liboasisnet.so.0, with that link
#                    beside it) and liboasisnet.a, both with link-time optimisation (cargo rustc
#                    --lib --release --crate-type cdylib --crate-type staticlib), and the native
#                    libraries that liboasisnet.a needs (packaging/native-static-libs.sh);
#                    FEATURES="server http" builds only those Cargo features (--no-default-features
#                    --features "server http"; README, "Cargo features")
#   make cross       the same for ARM Linux: target/TRIPLE/release/ for aarch64-unknown-linux-gnu,
#                    armv7-unknown-linux-gnueabihf and thumbv7neon-unknown-linux-gnueabihf (ARMv7
#                    with NEON) (TARGET=TRIPLE with lib, examples, examples-static,
#                    c-tests: one target, programs into build/TRIPLE; CROSS_PREFIX, CROSS_CC,
#                    CROSS_CXX, CROSS_AR, CROSS_LINKER, CROSS_SYSROOT, CROSS_CFLAGS: another tool chain)
#   make install     the built library into DESTDIR/PREFIX (default /usr/local): lib/liboasisnet.so.VERSION
#                    and its links, lib/liboasisnet.a, include/oasisnet/*.h, lib/pkgconfig/oasisnet.pc
#                    and oasisnet-static.pc, lib/cmake/oasisnet/ (find_package(oasisnet), relocatable).
#                    Builds nothing: run make lib first. INSTALL_LIBDIR=lib64 (below PREFIX),
#                    TARGET=TRIPLE installs target/TRIPLE/release (or INSTALL_LIBDIR_SRC=DIR),
#                    PKGCONFIG_RELOCATABLE=1 writes .pc files that find their prefix themselves
#   make uninstall   removes what make install put there (same variables)
#   make check-header  the committed include/oasis_net.h equals a fresh cbindgen generation
#   make examples    c-examples/*.c and *.cpp  -> build/NAME; the wss samples are built with
#                    CERT_DIR=build/certs (made by `make certs`), and wss_server_sample once more
#                    with ECDSA certificates -> build/wss_server_sample_ecdsa
#   make examples-static  the same samples (not the ECDSA one) linked against liboasisnet.a
#                    -> build/static/NAME
#   make certs       build/certs/: the TLS test certificates (tests/scripts/make-certs.sh)
#   make c-tests     tests/c/*.c and *.cpp     -> build/tests/NAME, plus one C test linked
#                    statically against liboasisnet.a -> build/tests/NAME_static
#   make c-tests-asan  the self-checking tests/c programs built with AddressSanitizer and
#                    UndefinedBehaviorSanitizer -> build/tests-asan/NAME (the Rust library itself
#                    is not instrumented; its allocations still go through ASan's malloc)
#   make fuzz        each fuzz target under fuzz/ (cargo-fuzz, libFuzzer + ASan) for FUZZ_SECS seconds
#                    (default 60); FUZZ_TARGETS="url frame" picks some (tests/scripts/fuzz.sh: prints
#                    per target the command, executions, coverage and whether anything was found)
#   make bench       the shared echo benchmark with build/echo_server added (tools/bench.sh), then
#                    make bench-callgrind
#   make bench-callgrind  instructions per echoed message under callgrind (tools/callgrind-echo.sh):
#                    build/echo_server, build/ws_server_sample_nolog and build/ws_server_sample, one
#                    connection, window 1, text of 32, 4096 and 65536 bytes; repeatable to ~1 %;
#                    then instructions per connection cycle (accept, upgrade, closing handshake,
#                    TCP close; CYCLES=0 skips it)
#   make bench-scale  echo throughput, server CPU per message and RSS from 1 to 10000 connections
#                    with 1 and 2 event-loop threads (tools/scale.sh)
#   make sample-nolog  build/ws_server_sample_nolog: the documented server sample with its #define
#                    DLOG_FLAGS line set to DLOG_FLAGS_DEFAULT (its per-message DLOG lines compiled out),
#                    built -O3 as the benchmark's uWebSockets peer and its echo program are
#   make sample-noalloc  build/ws_server_sample_noalloc: that sample with its per-message vector
#                    and string made once per thread (a measurement: what the sample's own
#                    allocations cost it, beside what the library costs; docs/BENCHMARKS.md)
#   make venv        .venv/ with the Python test peers (tests/python/requirements.txt)
#   make clean       remove build/ (cargo clean for target/)

CARGO    ?= cargo
CC       := gcc
CXX      := g++
BUILD    := build
# PROFILE=release-small: the library built for flash size (README, "Size"): opt-level "z", no
# unwinding (a panic aborts the process), the standard library rebuilt for size (-Z build-std,
# on the stable compiler through RUSTC_BOOTSTRAP=1; needs `rustup component add rust-src`).
# It always names its target, so it lands in target/TRIPLE/release-small, also for this machine.
PROFILE  ?= release
ifeq ($(filter release release-small,$(PROFILE)),)
$(error PROFILE=$(PROFILE): the library is built with PROFILE=release (the default) or release-small)
endif
HOST_TRIPLE := $(shell rustc -vV 2>/dev/null | sed -n 's/^host: //p')
ifeq ($(PROFILE)$(TARGET)$(HOST_TRIPLE),release-small)
$(error PROFILE=release-small needs rustc (to name this machine's target) or TARGET=<triple>)
endif
ifeq ($(PROFILE),release)
LIBDIR   := $(CURDIR)/target/release
CARGO_BUILD_ARGS := --release
else
LIBDIR   := $(CURDIR)/target/$(or $(TARGET),$(HOST_TRIPLE))/$(PROFILE)
CARGO_BUILD_ARGS := --profile $(PROFILE) --target $(or $(TARGET),$(HOST_TRIPLE))
endif
# What release-small adds: std and core rebuilt with the same settings, panics that abort at once
# (no message formatting, no backtrace printer: about 400 KiB of the aarch64 library), and no
# unwind tables for the Rust code.
ifeq ($(PROFILE),release-small)
CARGO_BUILD_ARGS += -Z build-std=std,panic_abort
SMALL_RUSTFLAGS  := -C force-unwind-tables=no -Z unstable-options -C panic=immediate-abort
# 32-bit ARM: Thumb-2 code, about 30 % smaller than A32 (as Debian builds its armhf packages).
ifneq ($(filter armv7%,$(TARGET)),)
SMALL_RUSTFLAGS  += -C target-feature=+thumb-mode
endif
# 64-bit ARM: the linker's fix for Cortex-A53 erratum 843419 by rewriting ADRP to ADR only.
# GNU ld's default fix reserves a 4 KiB page of stubs as soon as one instruction sequence needs
# fixing, also when the ADR rewrite then fixes every site (ADR reaches 1 MiB either way, farther
# than the library spans); with "adr" the link fails rather than leave a site unfixed.
# A linker without this option (lld): AARCH64_ERRATUM_FIX= on the make command line.
AARCH64_ERRATUM_FIX ?= -C link-arg=-Wl,--fix-cortex-a53-843419=adr
ifneq ($(filter aarch64%,$(or $(TARGET),$(HOST_TRIPLE))),)
SMALL_RUSTFLAGS  += $(AARCH64_ERRATUM_FIX)
endif
BUILD_TRIPLE_ENVID := $(shell echo '$(subst -,_,$(or $(TARGET),$(HOST_TRIPLE)))' | tr a-z A-Z)
CARGO_ENV_SMALL  := RUSTC_BOOTSTRAP=1
endif

# ---- Cross builds for ARM Linux (README "Cross-compiling for ARM") ----
# TARGET=<rust triple>: the library from `cargo build --release --target TARGET` into
# target/TARGET/release, and examples / c-tests built with the cross compilers into build/TARGET.
# The compilers come from the GNU prefix of the triple (CROSS_PREFIX, e.g. aarch64-linux-gnu-);
# a firmware tool chain sets CROSS_CC, CROSS_CXX, CROSS_AR, CROSS_LINKER and CROSS_SYSROOT (or
# CROSS_CFLAGS) instead. The cargo variables they become (CARGO_TARGET_<TRIPLE>_LINKER,
# CC_<triple>, AR_<triple>, CFLAGS_<triple>) win when already set in the environment.
CROSS_TARGETS := aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf thumbv7neon-unknown-linux-gnueabihf
TARGET   ?=
ifneq ($(TARGET),)
cross_prefix_aarch64-unknown-linux-gnu     := aarch64-linux-gnu-
cross_prefix_armv7-unknown-linux-gnueabihf := arm-linux-gnueabihf-
cross_prefix_thumbv7neon-unknown-linux-gnueabihf := arm-linux-gnueabihf-
TARGET_ID    := $(subst -,_,$(TARGET))
TARGET_ENVID := $(shell echo '$(TARGET_ID)' | tr a-z A-Z)
CROSS_PREFIX  ?= $(or $(cross_prefix_$(TARGET)),$(TARGET)-)
CROSS_CC      ?= $(or $(CC_$(TARGET_ID)),$(CROSS_PREFIX)gcc)
CROSS_CXX     ?= $(or $(CXX_$(TARGET_ID)),$(CROSS_PREFIX)g++)
CROSS_AR      ?= $(or $(AR_$(TARGET_ID)),$(CROSS_PREFIX)ar)
CROSS_LINKER  ?= $(or $(CARGO_TARGET_$(TARGET_ENVID)_LINKER),$(CROSS_CC))
CROSS_SYSROOT ?=
CROSS_CFLAGS  ?= $(CFLAGS_$(TARGET_ID))
# The sysroot comes first, CROSS_CFLAGS (e.g. -mcpu=cortex-a7) after it.
CROSS_CFLAGS_ALL := $(strip $(if $(CROSS_SYSROOT),--sysroot=$(CROSS_SYSROOT)) $(CROSS_CFLAGS))
CC       := $(CROSS_CC) $(CROSS_CFLAGS_ALL)
CXX      := $(CROSS_CXX) $(CROSS_CFLAGS_ALL)
BUILD    := build/$(TARGET)
LIBDIR   := $(CURDIR)/target/$(TARGET)/$(PROFILE)
ifeq ($(PROFILE),release)
CARGO_BUILD_ARGS += --target $(TARGET)
endif
# For the cc crate (ring's C and assembly) and rustc's link step. The sysroot reaches the linker
# as a link argument, through the target's rustflags (RUSTFLAGS, when set, replaces them).
CARGO_ENV := CARGO_TARGET_$(TARGET_ENVID)_LINKER='$(CROSS_LINKER)' CC_$(TARGET_ID)='$(CROSS_CC)' \
             CXX_$(TARGET_ID)='$(CROSS_CXX)' AR_$(TARGET_ID)='$(CROSS_AR)' \
             $(if $(CROSS_CFLAGS_ALL),CFLAGS_$(TARGET_ID)='$(CROSS_CFLAGS_ALL)')
ifneq ($(PROFILE),release)
BUILD    := build/$(TARGET)-$(PROFILE)
endif
TARGET_RUSTFLAGS := $(CARGO_TARGET_$(TARGET_ENVID)_RUSTFLAGS) \
                    $(if $(CROSS_SYSROOT),-C link-arg=--sysroot=$(CROSS_SYSROOT))
endif
# The target's rustflags: the environment's, the sysroot's and release-small's, in one variable.
# cargo reads only one of CARGO_ENCODED_RUSTFLAGS, RUSTFLAGS and CARGO_TARGET_<TRIPLE>_RUSTFLAGS
# (in that order): when the environment sets RUSTFLAGS (build systems such as Yocto's do), the
# flags are added to it; with --target given, as it is here, RUSTFLAGS reaches no build script.
ifneq ($(CARGO_ENCODED_RUSTFLAGS),)
$(error CARGO_ENCODED_RUSTFLAGS is set: use RUSTFLAGS, to which this Makefile adds its own flags)
endif
ifneq ($(strip $(TARGET_RUSTFLAGS) $(SMALL_RUSTFLAGS)),)
RUSTFLAGS_ENVID := $(or $(TARGET_ENVID),$(BUILD_TRIPLE_ENVID))
ifneq ($(RUSTFLAGS),)
CARGO_ENV += RUSTFLAGS='$(strip $(RUSTFLAGS) $(if $(CROSS_SYSROOT),-C link-arg=--sysroot=$(CROSS_SYSROOT)) $(SMALL_RUSTFLAGS))'
else
CARGO_ENV += CARGO_TARGET_$(RUSTFLAGS_ENVID)_RUSTFLAGS='$(strip \
               $(or $(TARGET_RUSTFLAGS),$(CARGO_TARGET_$(RUSTFLAGS_ENVID)_RUSTFLAGS)) $(SMALL_RUSTFLAGS))'
endif
endif
CARGO_ENV += $(CARGO_ENV_SMALL)
LIBSO    := $(LIBDIR)/liboasisnet.so
LIBA     := $(LIBDIR)/liboasisnet.a
# The version and the soname's major number come from Cargo.toml (build.rs sets the soname).
VERSION   := $(shell sed -n 's/^version *= *"\([^"]*\)".*/\1/p' Cargo.toml | head -n 1)
SOVERSION := $(firstword $(subst ., ,$(VERSION)))
HEADERS  := $(wildcard include/*.h)
DEMO_PORT ?= 8080
DEMO_BIND ?= 127.0.0.1
ECHO_PORT ?= 9000
TLS      ?= 0
# Empty: every Cargo feature (the default). Else the ones to build, e.g. "server http".
FEATURES ?=
CARGO_FEATURES := $(if $(strip $(FEATURES)),--no-default-features --features "$(strip $(FEATURES))")

# The documented samples keep their unused variables and parameters, hence the -Wno-unused-*.
EXAMPLE_CFLAGS   := -std=c99 -Wall -Wextra -Werror -O2 -g
EXAMPLE_CXXFLAGS := -std=c++11 -Wall -Wextra -Werror -Wno-unused-variable \
                    -Wno-unused-parameter -Wno-unused-but-set-variable -O2 -g
TEST_CFLAGS      := -std=c99 -Wall -Wextra -Werror -O2 -g
TEST_CXXFLAGS    := -std=c++11 -Wall -Wextra -Werror -O2 -g
OASIS_CPPFLAGS   := -Iinclude
SHARED_LIBS      := -L$(LIBDIR) -Wl,-rpath,$(LIBDIR) -loasisnet -lpthread
STATIC_LIBS      := $(LIBA) -lpthread -ldl -lm

EX_C      := $(wildcard c-examples/*.c)
EX_CXX    := $(wildcard c-examples/*.cpp)
EXAMPLES  := $(EX_C:c-examples/%.c=$(BUILD)/%) $(EX_CXX:c-examples/%.cpp=$(BUILD)/%) \
             $(BUILD)/wss_server_sample_ecdsa
# The secure (wss) samples read their certificates from CERT_DIR, compiled in.
CERT_DIR  := $(CURDIR)/build/certs
WSS_SAMPLES := $(BUILD)/wss_server_sample $(BUILD)/wss_client_sample
# The same programs (but the ECDSA variant) linked statically against liboasisnet.a: what a
# firmware image without the shared library runs (the C and C++ runtimes stay shared).
EXAMPLES_STATIC := $(EX_C:c-examples/%.c=$(BUILD)/static/%) $(EX_CXX:c-examples/%.cpp=$(BUILD)/static/%)
T_C       := $(wildcard tests/c/*.c)
T_CXX     := $(wildcard tests/c/*.cpp)
CTESTS    := $(T_C:tests/c/%.c=$(BUILD)/tests/%) $(T_CXX:tests/c/%.cpp=$(BUILD)/tests/%)
# The same programs with AddressSanitizer + UndefinedBehaviorSanitizer; every finding is fatal.
# autobahn_client is left out: it is not self-checking (the Autobahn steps run it).
SANITIZE_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
CTESTS_ASAN := $(filter-out $(BUILD)/tests-asan/autobahn_client,\
                 $(T_C:tests/c/%.c=$(BUILD)/tests-asan/%) $(T_CXX:tests/c/%.cpp=$(BUILD)/tests-asan/%))
# The C test linked statically: the first self-checking one unless STATIC_TEST_SRC says otherwise.
STATIC_TEST_SRC ?= $(firstword $(filter-out tests/c/autobahn_client.c,$(T_C)))
STATIC_TEST     := $(if $(STATIC_TEST_SRC),$(STATIC_TEST_SRC:tests/c/%.c=$(BUILD)/tests/%_static))

.PHONY: all lib cross install uninstall check-header examples examples-static certs c-tests c-tests-shared c-tests-asan static-test print-static-test \
        test fuzz demo demo-echo bench bench-callgrind bench-scale sample-nolog sample-noalloc venv clean setup-demo setup-test FORCE
.DELETE_ON_ERROR:

all: lib examples c-tests

# cargo decides whether anything changed; make then relinks what depends on a newer library.
lib: $(LIBSO) $(LIBA) $(LIBDIR)/oasisnet-native-static-libs
# Programs linked here need liboasisnet.so.0 (the soname) at run time: the link makes the build
# folder usable as it is, with -rpath or LD_LIBRARY_PATH.
# `cargo rustc` with the two shipped crate types only: cargo leaves out the `lto = true` of the
# profile for a package whose crate types include an rlib (which `cargo test` needs; cargo issue
# 9672), and a plain `cargo build --release` therefore links the library without link-time
# optimisation (docs/BENCHMARKS.md, "Link-time optimisation").
$(LIBSO) $(LIBA) &: FORCE
	$(CARGO_ENV) $(CARGO) rustc --lib $(CARGO_BUILD_ARGS) $(CARGO_FEATURES) \
	  --crate-type cdylib --crate-type staticlib
	ln -sf liboasisnet.so $(LIBDIR)/liboasisnet.so.$(SOVERSION)
FORCE:

# ---------------------------------------------------------------------------------------------
# Installing (README "Installing"; packaging/install.sh does the work and builds nothing, so that
# `sudo make install` never compiles as root).
PREFIX             ?= /usr/local
DESTDIR            ?=
INSTALL_LIBDIR     ?= lib
INSTALL_INCLUDEDIR ?= include
# 1: the .pc files find their prefix from their own place (packaging/install.sh says when to).
PKGCONFIG_RELOCATABLE ?= 0
# TARGET=aarch64-unknown-linux-gnu installs a cross build (target/TRIPLE/release; PROFILE=
# release-small: target/TRIPLE/release-small).
INSTALL_LIBDIR_SRC ?= $(LIBDIR)
INSTALL_ENV = SRC_LIBDIR='$(INSTALL_LIBDIR_SRC)' NATIVE_LIBS='$(INSTALL_LIBDIR_SRC)/oasisnet-native-static-libs' \
              VERSION='$(VERSION)' PREFIX='$(PREFIX)' DESTDIR='$(DESTDIR)' \
              INSTALL_LIBDIR='$(INSTALL_LIBDIR)' INSTALL_INCLUDEDIR='$(INSTALL_INCLUDEDIR)' \
              PKGCONFIG_RELOCATABLE='$(PKGCONFIG_RELOCATABLE)'

# What rustc says a program must link after liboasisnet.a, kept beside the library it is for
# (target/release, or target/TRIPLE/release for that target).
%/oasisnet-native-static-libs: %/liboasisnet.a packaging/native-static-libs.sh
	sh packaging/native-static-libs.sh $* > $@.tmp && mv $@.tmp $@

install:
	$(INSTALL_ENV) sh packaging/install.sh install
uninstall:
	$(INSTALL_ENV) sh packaging/install.sh uninstall

# Both ARM libraries (make -j2 cross builds them side by side); `make lib TARGET=<triple>` one.
cross: $(CROSS_TARGETS:%=cross-%)
cross-%:
	$(MAKE) --no-print-directory lib TARGET=$*

check-header:
	bash tests/scripts/check-header.sh

examples: $(EXAMPLES)
examples-static: $(EXAMPLES_STATIC)
c-tests: c-tests-shared static-test
c-tests-shared: $(CTESTS)
c-tests-asan: $(CTESTS_ASAN)
static-test: $(STATIC_TEST)
print-static-test:
	@echo $(STATIC_TEST)

$(BUILD) $(BUILD)/tests $(BUILD)/tests-asan $(BUILD)/static:
	mkdir -p $@

# make-certs.sh regenerates only what is missing, stale or about to expire (quick otherwise).
certs:
	mkdir -p $(dir $(CERT_DIR))
	bash tests/scripts/make-certs.sh $(CERT_DIR) >/dev/null

$(WSS_SAMPLES): $(BUILD)/%: c-examples/%.cpp $(HEADERS) $(LIBSO) | $(BUILD) certs
	$(CXX) $(EXAMPLE_CXXFLAGS) $(OASIS_CPPFLAGS) -DCERT_DIR='"$(CERT_DIR)"' -o $@ $< $(SHARED_LIBS)

$(BUILD)/wss_server_sample_ecdsa: c-examples/wss_server_sample.cpp $(HEADERS) $(LIBSO) | $(BUILD) certs
	$(CXX) $(EXAMPLE_CXXFLAGS) $(OASIS_CPPFLAGS) -DCERT_DIR='"$(CERT_DIR)"' -DUSE_RSA=0 -DUSE_ECDSA=1 \
	  -o $@ $< $(SHARED_LIBS)

# The documented sample with DLOG_THIS dropped from its flags, made from the sample's own text so
# that the two never drift apart; the check fails the build should the line ever change shape.
sample-nolog: $(BUILD)/ws_server_sample_nolog
$(BUILD)/ws_server_sample_nolog.cpp: c-examples/ws_server_sample.cpp | $(BUILD)
	sed 's/^#define DLOG_FLAGS .*/#define DLOG_FLAGS DLOG_FLAGS_DEFAULT/' $< >$@
	test "$$(diff $< $@ | grep -c '^>')" = 1 && grep -qx '#define DLOG_FLAGS DLOG_FLAGS_DEFAULT' $@
# Built -O3, as the benchmark's uWebSockets peer builds itself and its echo program: the two
# applications' own code compiled alike. (At -O2 the sample's std::string made from a uint8_t
# range is a byte loop; -O3 vectorizes it: docs/BENCHMARKS.md.)
$(BUILD)/ws_server_sample_nolog: $(BUILD)/ws_server_sample_nolog.cpp $(HEADERS) $(LIBSO) | $(BUILD)
	$(CXX) $(EXAMPLE_CXXFLAGS) -O3 $(OASIS_CPPFLAGS) -o $@ $< $(SHARED_LIBS)

# The same sample with the two allocations of its onMessage made once per thread: its vector and
# string become thread_locals, and the string is assigned as chars (from a uint8_t range the
# assignment would build a temporary string, an allocation again). Every library call stays.
sample-noalloc: $(BUILD)/ws_server_sample_noalloc
$(BUILD)/ws_server_sample_noalloc.cpp: $(BUILD)/ws_server_sample_nolog.cpp
	sed -e 's/^std::vector<uint8_t> data;$$/static thread_local std::vector<uint8_t> data;/' \
	    -e 's/^std::string str(data.data(), data.data()+data.size());$$/static thread_local std::string str; str.assign((const char *)data.data(), data.size());/' $< >$@
	test "$$(diff $< $@ | grep -c '^>')" = 2
$(BUILD)/ws_server_sample_noalloc: $(BUILD)/ws_server_sample_noalloc.cpp $(HEADERS) $(LIBSO) | $(BUILD)
	$(CXX) $(EXAMPLE_CXXFLAGS) -O3 $(OASIS_CPPFLAGS) -o $@ $< $(SHARED_LIBS)

$(BUILD)/%: c-examples/%.c $(HEADERS) $(LIBSO) | $(BUILD)
	$(CC) $(EXAMPLE_CFLAGS) $(OASIS_CPPFLAGS) -o $@ $< $(SHARED_LIBS)

$(BUILD)/%: c-examples/%.cpp $(HEADERS) $(LIBSO) | $(BUILD)
	$(CXX) $(EXAMPLE_CXXFLAGS) $(OASIS_CPPFLAGS) -o $@ $< $(SHARED_LIBS)

# The wss samples' CERT_DIR is the only per-sample flag the static builds need.
$(BUILD)/static/wss_%: STATIC_EXAMPLE_FLAGS = -DCERT_DIR='"$(CERT_DIR)"'
$(BUILD)/static/wss_%: | certs
$(BUILD)/static/%: c-examples/%.c $(HEADERS) $(LIBA) | $(BUILD)/static
	$(CC) $(EXAMPLE_CFLAGS) $(OASIS_CPPFLAGS) $(STATIC_EXAMPLE_FLAGS) -o $@ $< $(STATIC_LIBS)

$(BUILD)/static/%: c-examples/%.cpp $(HEADERS) $(LIBA) | $(BUILD)/static
	$(CXX) $(EXAMPLE_CXXFLAGS) $(OASIS_CPPFLAGS) $(STATIC_EXAMPLE_FLAGS) -o $@ $< $(STATIC_LIBS)

$(BUILD)/tests/%_static: tests/c/%.c tests/c/test_util.h $(HEADERS) $(LIBA) | $(BUILD)/tests
	$(CC) $(TEST_CFLAGS) $(OASIS_CPPFLAGS) -o $@ $< $(STATIC_LIBS)

$(BUILD)/tests/%: tests/c/%.c tests/c/test_util.h $(HEADERS) $(LIBSO) | $(BUILD)/tests
	$(CC) $(TEST_CFLAGS) $(OASIS_CPPFLAGS) -o $@ $< $(SHARED_LIBS)

$(BUILD)/tests/%: tests/c/%.cpp tests/c/test_util.h $(HEADERS) $(LIBSO) | $(BUILD)/tests
	$(CXX) $(TEST_CXXFLAGS) $(OASIS_CPPFLAGS) -o $@ $< $(SHARED_LIBS)

$(BUILD)/tests-asan/%: tests/c/%.c tests/c/test_util.h $(HEADERS) $(LIBSO) | $(BUILD)/tests-asan
	$(CC) $(TEST_CFLAGS) $(SANITIZE_FLAGS) $(OASIS_CPPFLAGS) -o $@ $< $(SHARED_LIBS)

$(BUILD)/tests-asan/%: tests/c/%.cpp tests/c/test_util.h $(HEADERS) $(LIBSO) | $(BUILD)/tests-asan
	$(CXX) $(TEST_CXXFLAGS) $(SANITIZE_FLAGS) $(OASIS_CPPFLAGS) -o $@ $< $(SHARED_LIBS)

# SETUP=0: take the machine as it is (no package manager, no network).
SETUP ?= 1
setup-demo:
	@if [ "$(SETUP)" != 0 ]; then bash tests/scripts/setup.sh demo; fi
setup-test:
	@if [ "$(SETUP)" != 0 ]; then bash tests/scripts/setup.sh test; fi

test: setup-test
	bash tests/run-tests.sh $(ONLY)

venv:
	bash tests/scripts/venv.sh

# Coverage-guided fuzzing (fuzz/, docs/RELIABILITY.md); cargo-fuzz is installed when missing.
FUZZ_SECS ?= 60
FUZZ_TARGETS ?=
fuzz:
	FUZZ_SECS=$(FUZZ_SECS) bash tests/scripts/fuzz.sh run $(FUZZ_TARGETS)

# Prerequisites are made left to right (under -j the set-up may overlap the build).
# TLS=1: the demo makes itself a self-signed certificate in build/demo-cert (openssl) when there is none.
DEMO_TLS_ARGS := $(if $(filter 1,$(TLS)),--tls $(BUILD)/demo-cert)
demo: setup-demo lib $(BUILD)/http_demo
	@exec $(BUILD)/http_demo --port $(DEMO_PORT) --bind $(DEMO_BIND) --root c-examples/www $(DEMO_TLS_ARGS)

demo-echo: setup-demo lib $(BUILD)/ws_server_sample
	@echo "oasisnet demo: documented echo server on ws://127.0.0.1:$(ECHO_PORT)/ — try: python3 -m websockets ws://127.0.0.1:$(ECHO_PORT)/ (Ctrl-C to stop)"
	@echo "  (python3 -m websockets needs 'pip install websockets'; 'make venv' puts it in .venv: .venv/bin/python -m websockets ws://127.0.0.1:$(ECHO_PORT)/)"
	@exec $(BUILD)/ws_server_sample $(ECHO_PORT)

# Side-by-side echo benchmark (figures in docs/BENCHMARKS.md); not part of make test.
# bench-callgrind counts instructions, so it repeats on a busy machine where timings do not.
bench:
	bash tools/bench.sh
	bash tools/callgrind-echo.sh

bench-callgrind:
	bash tools/callgrind-echo.sh

bench-scale:
	bash tools/scale.sh

clean:
	rm -rf $(BUILD)
