# Sourced by the tools that drive a server with the shared benchmark's load generator
# (tools/idle-rss.sh, tools/tls-idle-rss.sh, tools/scale.sh). Expects $top (the project root).
#
#   wsload_prepare      copies the shared benchmark (BENCH_SRC, default ../shared/bench) to a
#                       writable folder (BENCH_WORK, default /tmp/oasisnet-bench), builds wsload,
#                       raises the descriptor limit; sets $wsload to the binary
#   wait_listening LOG  waits up to 5 s for a server's "listening on" line in LOG (fails with
#                       the log on stderr otherwise); prints the port that line names

wsload_prepare() {
    local src="${BENCH_SRC:-$top/../shared/bench}" work="${BENCH_WORK:-/tmp/oasisnet-bench}"
    mkdir -p "$work" && cp -r "$src"/. "$work"/
    (cd "$work/wsload" && cargo build --release -q)
    ulimit -n 65536 2>/dev/null || true
    wsload="$work/wsload/target/release/wsload"
}

wait_listening() {
    local _
    for _ in $(seq 50); do grep -q listening "$1" && break; sleep 0.1; done
    grep -q listening "$1" || { cat "$1" >&2; return 1; }
    grep -o 'listening on .*' "$1" | head -1 | grep -o '[0-9]*$'
}
