# Sourced by the tools that drive a server with the shared benchmark's load generator
# (tools/idle-rss.sh, tools/tls-idle-rss.sh, tools/scale.sh, tools/cell-rounds.sh,
# tools/cycle-perf.sh, tools/syscalls-per-message.sh, tools/peak-rss.sh). Expects $top (the
# project root).
#
#   wsload_prepare      copies the shared benchmark (BENCH_SRC, default ../shared/bench) to a
#                       writable folder (BENCH_WORK, default /tmp/oasisnet-bench), builds wsload,
#                       raises the descriptor limit; sets $wsload to the binary
#   wait_listening LOG  waits up to 5 s for a server's "listening on" line in LOG (fails with
#                       the log on stderr otherwise); prints the port that line names
#   start_pinned CMD LOG  starts CMD ({port} replaced by a free port) pinned to CPU 0, its output
#                       in LOG; waits up to 5 s for it to listen (fails with the log on stderr
#                       otherwise); sets $port, and $server to its PID

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

start_pinned() {
    local _
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    taskset -c 0 ${1//\{port\}/$port} >"$2" 2>&1 & server=$!
    # Listening yet? (Asked of the kernel: a test connection would be one more for the server.)
    for _ in $(seq 50); do [ -n "$(ss -Hltn "sport = :$port")" ] && break; sleep 0.1; done
    [ -n "$(ss -Hltn "sport = :$port")" ] || { echo "not listening on $port: $1" >&2; cat "$2" >&2; return 1; }
}
