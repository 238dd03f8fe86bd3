#!/usr/bin/env bash
# Instructions per echoed WebSocket message, counted with callgrind: a figure that repeats to
# about a percent whatever else the machine does, beside the timings of tools/bench.sh.
#
#   tools/callgrind-echo.sh                 the three servers below, 32/4096/65536-byte text
#   RUNS=2 tools/callgrind-echo.sh          everything twice, with the spread of each figure
#   SIZES=32:2000,4096:1000,65536:200       SIZE:N pairs (N messages, then 2N)
#   SERVERS="echo nolog" TOP=8              which servers; how many functions to name per cell
#   TEXT=utf8                               mostly multi-byte text instead of ASCII
#   CYCLES=1000                             then instructions per connection cycle (N cycles,
#                                           then 2N: accept, upgrade, closing handshake, TCP
#                                           close; callgrind_echo.py cycles); CYCLES=0 skips it
#
# The workload (tools/callgrind_echo.py client): one connection, window 1 (send one message,
# read its echo whole, send the next), N text messages of one size made once with a fixed mask.
# Each server runs under `valgrind --tool=callgrind` once for N messages and once for 2N; the
# figure is (I(2N) - I(N)) / N, the user-space instructions of one echoed message with start-up,
# handshake, close and shut-down cancelled out (system calls are counted as the instructions of
# their user-space wrappers only). The same difference per function names the hottest ones and
# their share of a message. Servers, stdout to a file (not a terminal):
#   echo   build/echo_server PORT 127.0.0.1       c-examples/echo_server.c, wsSendTextLength
#   nolog  build/ws_server_sample_nolog PORT      the documented sample, DLOG_FLAGS_DEFAULT
#   sample build/ws_server_sample PORT            the documented sample as written
set -euo pipefail
top="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
command -v valgrind >/dev/null || { echo "callgrind-echo: valgrind is missing (apt-get install valgrind)" >&2; exit 2; }
make -C "$top" -s lib build/echo_server build/ws_server_sample build/ws_server_sample_nolog \
  CARGO="cargo --quiet" >/dev/null

declare -A command=(
  [echo]="$top/build/echo_server {port} 127.0.0.1"
  [nolog]="$top/build/ws_server_sample_nolog {port}"
  [sample]="$top/build/ws_server_sample {port}"
)
servers=()
for name in ${SERVERS:-echo nolog sample}; do
  [ -n "${command[$name]:-}" ] || { echo "callgrind-echo: unknown server $name (echo, nolog, sample)" >&2; exit 2; }
  servers+=("$name=${command[$name]}")
done
work="$(mktemp -d /tmp/callgrind-echo.XXXXXX)"
trap 'rm -rf "$work"' EXIT
python3 "$top/tools/callgrind_echo.py" run --runs "${RUNS:-1}" --top "${TOP:-8}" \
  --sizes "${SIZES:-32:2000,4096:1000,65536:200}" --text "${TEXT:-ascii}" --work "$work" "${servers[@]}"
if [ "${CYCLES:-1000}" != 0 ]; then
  echo
  python3 "$top/tools/callgrind_echo.py" cycles --runs "${RUNS:-1}" --top "${TOP:-8}" \
    --count "${CYCLES:-1000}" --work "$work" "${servers[@]}"
fi
