#!/usr/bin/env bash
# Server memory per idle keep-alive HTTP connection: build/http_bench_server
# (tools/http_bench_server.c, one event-loop thread) with the connection cap and the keep-alive
# timeout raised holds N connections, each after one complete GET of a 1 KiB t.txt and its
# answer; tools/http_bench_client.py prints the server's VmRSS before and while holding them and
# the growth per connection. Then the same over https with the test RSA certificate
# (tests/scripts/make-certs.sh build/certs), unless TLS=0.
#
#   tools/http-idle-rss.sh [N=2000]       TLS=0: plain http only
set -euo pipefail
top="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
n="${1:-2000}"
make -C "$top" -s lib CARGO="cargo --quiet" >/dev/null
server_bin="$top/build/http_bench_server"
mkdir -p "$top/build"
gcc -std=c99 -Wall -Wextra -Werror -O2 -g -I"$top/include" -o "$server_bin" "$top/tools/http_bench_server.c" \
  -L"$top/target/release" -Wl,-rpath,"$top/target/release" -loasisnet -lpthread
certs="$top/build/certs"
[ "${TLS:-1}" = 0 ] || [ -f "$certs/fullchain.pem" ] || bash "$top/tests/scripts/make-certs.sh" "$certs" >/dev/null

work="$(mktemp -d)"; srv=""
trap '[ -n "$srv" ] && kill "$srv" 2>/dev/null; rm -rf "$work"' EXIT
mkdir "$work/www"
python3 -c 'import sys; sys.stdout.write(("0123456789abcdef" * 64)[:1023] + "\n")' >"$work/www/t.txt"
# N connections on each side, plus a margin.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

# Runs the server with extra KEY=VALUE pairs ("$@"), holds N connections, stops the server.
run() {
  local scheme="$1"; shift
  "$server_bin" "$work/www" --init event-loop-threads=1 http-connections-max=65535 \
    http-keepalive-timeout-ms=3600000 "$@" >"$work/out" 2>&1 & srv=$!
  for _ in $(seq 100); do grep -q listening "$work/out" && break; sleep 0.1; done
  local port; port="$(grep -o '[0-9]*$' "$work/out" | head -1)"
  [ -n "$port" ] || { echo "http-idle-rss: the server did not start:" >&2; cat "$work/out" >&2; return 1; }
  if [ "$scheme" = https ]; then
    python3 "$top/tools/http_bench_client.py" hold "$port" "$n" "$srv" --tls "$certs/RootCA.pem"
  else
    python3 "$top/tools/http_bench_client.py" hold "$port" "$n" "$srv"
  fi
  kill "$srv"; wait "$srv" 2>/dev/null || true; srv=""
}

run http
[ "${TLS:-1}" = 0 ] || run https cert-file-path="$certs/fullchain.pem" pkey-file-path="$certs/privkey.pem"
