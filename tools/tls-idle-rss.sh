#!/usr/bin/env bash
# Server memory per idle wss connection: build/echo_server with the test RSA certificate holds N
# idle TLS connections opened by the shared benchmark's load generator (wsload --hold), which
# prints the server's VmRSS before and while holding them (bytes_per_conn).
#
#   tools/tls-idle-rss.sh [N=1000]        BENCH_SRC=DIR: the shared benchmark (default ../shared/bench)
set -euo pipefail
top="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
n="${1:-1000}"
. "$top/tools/wsload-common.sh"
wsload_prepare
make -C "$top" -s lib examples >/dev/null
certs="$top/build/certs"
[ -f "$certs/fullchain.pem" ] || bash "$top/tests/scripts/make-certs.sh" "$certs" >/dev/null
out="$(mktemp)"; trap 'kill "$srv" 2>/dev/null; rm -f "$out"' EXIT
"$top/build/echo_server" 0 127.0.0.1 "$certs/fullchain.pem" "$certs/privkey.pem" >"$out" 2>&1 & srv=$!
port="$(wait_listening "$out")"
"$wsload" --url "wss://127.0.0.1:$port/" --insecure --hold "$n" --secs 2 --pid "$srv" | tail -1
