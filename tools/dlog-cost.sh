#!/usr/bin/env bash
# CPU per DLOG line of OasisLog.h written to stdout: as stdio buffers it (the header as it is)
# and with a flush after every line (what the header did before: one write(2) per line), with
# stdout on a file, a pipe and /dev/null. CPU = user + system time of the printing process
# (getrusage), so other load on the machine matters less than for a timing.
#
#   tools/dlog-cost.sh                  N=200000 lines per measurement, ROUNDS=3
set -euo pipefail
top="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
n="${N:-200000}"; rounds="${ROUNDS:-3}"
make -C "$top" -s lib CARGO="cargo --quiet" >/dev/null
work="$(mktemp -d /tmp/dlog-cost.XXXXXX)"
trap 'rm -rf "$work"' EXIT
cat >"$work/dlog_cost.c" <<'EOF'
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include "OasisLog.h"
#define DLOG_THIS 0x00080000
#undef DLOG_FLAGS
#define DLOG_FLAGS (DLOG_FLAGS_DEFAULT | DLOG_THIS)
#undef DLOG_TAG
#define DLOG_TAG "WSS"

static void times(double *cpu, double *sys)
{
    struct rusage r;
    getrusage(RUSAGE_SELF, &r);
    *sys = r.ru_stime.tv_sec + r.ru_stime.tv_usec / 1e6;
    *cpu = r.ru_utime.tv_sec + r.ru_utime.tv_usec / 1e6 + *sys;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 200000, i;
    double cpu0, sys0, cpu1, sys1;
    times(&cpu0, &sys0);
    for (i = 0; i < n; i++) {
        DLOG(DLOG_THIS, "Message\n"); /* the documented sample's line */
#if FLUSH_EACH_LINE
        fflush(stdout);
#endif
    }
    fflush(stdout);
    times(&cpu1, &sys1);
    fprintf(stderr, "%.3f us CPU per line (%.3f us system)\n", (cpu1 - cpu0) * 1e6 / n, (sys1 - sys0) * 1e6 / n);
    return 0;
}
EOF
for flush in 0 1; do
  gcc -std=c99 -Wall -Wextra -Werror -O2 -I"$top/include" -DFLUSH_EACH_LINE=$flush -o "$work/dlog_cost_$flush" \
    "$work/dlog_cost.c" -L"$top/target/release" -Wl,-rpath,"$top/target/release" -loasisnet -lpthread
done
for round in $(seq "$rounds"); do
  for flush in 0 1; do
    mode=$([ $flush = 1 ] && echo flushed || echo buffered)
    prog="$work/dlog_cost_$flush"
    echo "dlog-cost: round $round, $mode, file:      $("$prog" "$n" 2>&1 >"$work/out.txt")"
    echo "dlog-cost: round $round, $mode, pipe:      $({ "$prog" "$n" | cat >/dev/null; } 2>&1)"
    echo "dlog-cost: round $round, $mode, /dev/null: $("$prog" "$n" 2>&1 >/dev/null)"
  done
done
