#!/usr/bin/env bash
# HTTP static-file throughput against nginx, in the same run, plus instructions per request.
#
#   tools/http-bench.sh            ROUNDS=3 SECS=10 CONNS=50 CALLGRIND=1 (CALLGRIND=0 skips it)
#
# Both servers serve one folder holding a 1 KiB t.txt from one core: ours is
# build/http_bench_server (tools/http_bench_server.c over the C ABI, event-loop-threads=1), the
# peer nginx-light with worker_processes 1, sendfile on, access_log off, keepalive_requests
# 100000, from its own prefix in a temporary folder. Both run on CPU 0, wrk on CPU 1. Each round
# runs `wrk -t1 -cCONNS -dSECS` against each server, the order alternating from round to round,
# and prints requests/s, server CPU per request (user + system time of every server process),
# the ratio ours/nginx, and the median of the rounds.
#
# Then the instruction count: http_bench_server under callgrind answers N sequential GETs of
# t.txt on one keep-alive connection (tools/http_bench_client.py seq) for N = 2000 and 4000;
# the difference of the two totals / 2000 is the cost of one request without start-up and
# shut-down.
#
# wrk and nginx-light are installed with apt-get when missing (bench-only: not in make test).
set -euo pipefail
top="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
rounds="${ROUNDS:-3}"; secs="${SECS:-10}"; conns="${CONNS:-50}"

missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "http-bench: installing ${missing[*]}" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null ||
    { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null; }
fi
nginx_bin="$(command -v nginx || echo /usr/sbin/nginx)"

make -C "$top" -s lib CARGO="cargo --quiet" >/dev/null
server_bin="$top/build/http_bench_server"
mkdir -p "$top/build"
gcc -std=c99 -Wall -Wextra -Werror -O2 -g -I"$top/include" -o "$server_bin" "$top/tools/http_bench_server.c" \
  -L"$top/target/release" -Wl,-rpath,"$top/target/release" -loasisnet -lpthread

work="$(mktemp -d)"
ours=""; peer=""
cleanup() {
  [ -n "$ours" ] && kill "$ours" 2>/dev/null && wait "$ours" 2>/dev/null
  [ -n "$peer" ] && kill -QUIT "$peer" 2>/dev/null && wait "$peer" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
# nginx's worker drops root for an unprivileged user, which must be able to read the folder.
chmod 755 "$work"
mkdir -p "$work/www" "$work/nginx/conf" "$work/nginx/logs"
python3 -c 'import sys; sys.stdout.write(("0123456789abcdef" * 64)[:1023] + "\n")' >"$work/www/t.txt"
chmod -R a+rX "$work/www"

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_port() {
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "http-bench: nothing listens on port $1" >&2; return 1
}

# (a) ours
taskset -c 0 "$server_bin" "$work/www" --init event-loop-threads=1 >"$work/ours.out" 2>&1 & ours=$!
for _ in $(seq 100); do grep -q listening "$work/ours.out" && break; sleep 0.1; done
ours_port="$(grep -o '[0-9]*$' "$work/ours.out" | head -1)"

# (b) nginx
nginx_port="$(free_port)"
cat >"$work/nginx/conf/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/logs/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    sendfile on;
    keepalive_requests 100000;
    types { text/plain txt; }
    default_type application/octet-stream;
    server {
        listen 127.0.0.1:$nginx_port;
        root $work/www;
    }
}
EOF
taskset -c 0 "$nginx_bin" -p "$work/nginx" -c conf/nginx.conf -e "$work/nginx/logs/error.log" \
  >"$work/nginx.out" 2>&1 & peer=$!
wait_port "$nginx_port"
wait_port "$ours_port"

# CPU ticks (user + system) of a process and its children that are still running (nginx's worker).
cpu_ticks() {
  local total=0 pid fields
  for pid in "$1" $(pgrep -P "$1" || true); do
    fields="$(sed 's/.*) //' "/proc/$pid/stat")"
    # After the ") " the fields start at 3 (state): utime is field 14, stime 15.
    set -- $fields
    total=$((total + ${12} + ${13}))
  done
  echo "$total"
}
hz="$(getconf CLK_TCK)"

# Prints "REQUESTS_PER_SEC US_CPU_PER_REQUEST" for one wrk run against port $1, server pid $2.
measure() {
  local before after out rps count
  before="$(cpu_ticks "$2")"
  out="$(taskset -c 1 wrk -t1 -c"$conns" -d"${3:-$secs}s" "http://127.0.0.1:$1/t.txt")"
  after="$(cpu_ticks "$2")"
  # Errors or reconnections (a keep-alive connection closed) would make the figures meaningless.
  if grep -qE "Non-2xx|Socket errors" <<<"$out"; then echo "http-bench: errors from port $1:" >&2; echo "$out" >&2; return 1; fi
  rps="$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")"
  count="$(awk '/requests in/ {print $1}' <<<"$out")"
  python3 -c "print('%.0f %.2f' % ($rps, ($after - $before) * 1e6 / $hz / $count))"
}

echo "http-bench: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); wrk -t1 -c$conns -d${secs}s GET /t.txt (1 KiB)"
echo "http-bench: ours http://127.0.0.1:$ours_port/ (pid $ours), nginx $("$nginx_bin" -v 2>&1 | sed 's/.*\///') http://127.0.0.1:$nginx_port/ (pid $peer)"
measure "$ours_port" "$ours" 2 >/dev/null    # warm-up
measure "$nginx_port" "$peer" 2 >/dev/null
ratios=(); cpu_ratios=()
printf '%-6s %14s %14s %7s %16s %16s %7s\n' round "ours req/s" "nginx req/s" ratio "ours µs CPU/req" "nginx µs CPU/req" ratio
for round in $(seq "$rounds"); do
  if [ $((round % 2)) -eq 1 ]; then
    read -r o_rps o_cpu <<<"$(measure "$ours_port" "$ours")"
    read -r n_rps n_cpu <<<"$(measure "$nginx_port" "$peer")"
  else
    read -r n_rps n_cpu <<<"$(measure "$nginx_port" "$peer")"
    read -r o_rps o_cpu <<<"$(measure "$ours_port" "$ours")"
  fi
  ratio="$(python3 -c "print('%.2f' % ($o_rps / $n_rps))")"
  cpu_ratio="$(python3 -c "print('%.2f' % ($o_cpu / $n_cpu))")"
  ratios+=("$ratio"); cpu_ratios+=("$cpu_ratio")
  printf '%-6s %14s %14s %7s %16s %16s %7s\n' "$round" "$o_rps" "$n_rps" "$ratio" "$o_cpu" "$n_cpu" "$cpu_ratio"
done
median() { printf '%s\n' "$@" | sort -n | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
echo "http-bench: median ratio ours/nginx: requests/s $(median "${ratios[@]}"), server CPU per request $(median "${cpu_ratios[@]}")"

kill "$ours"; wait "$ours" 2>/dev/null || true; ours=""
kill -QUIT "$peer"; wait "$peer" 2>/dev/null || true; peer=""

[ "${CALLGRIND:-1}" = 0 ] && exit 0
command -v valgrind >/dev/null || { echo "http-bench: valgrind missing, no instruction count" >&2; exit 0; }
# Total instructions (Ir) of a whole server run that answers $1 sequential requests.
instructions() {
  local out="$work/callgrind.$1" log="$work/callgrind.$1.log" pid port
  valgrind --tool=callgrind --callgrind-out-file="$out" "$server_bin" "$work/www" \
    --init event-loop-threads=1 >"$log" 2>&1 & pid=$!
  for _ in $(seq 300); do grep -q listening "$log" && break; sleep 0.1; done
  port="$(grep -o 'listening on .*' "$log" | grep -o '[0-9]*$')"
  python3 "$top/tools/http_bench_client.py" seq "$port" "$1" >/dev/null
  kill "$pid"; wait "$pid"
  awk '/^totals:/ {print $2}' "$out"
}
i2000="$(instructions 2000)"; i4000="$(instructions 4000)"
python3 - "$i2000" "$i4000" <<'PY'
import sys
a, b = int(sys.argv[1]), int(sys.argv[2])
per = (b - a) / 2000
print(f"http-bench: callgrind, one keep-alive connection, sequential GET /t.txt: {a} instructions "
      f"for 2000 requests, {b} for 4000: {per:.0f} instructions per request "
      f"(start-up + shut-down {a - 2000 * per:.0f})")
PY
