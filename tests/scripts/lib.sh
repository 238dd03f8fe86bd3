# Helpers for tests/run-tests.sh (sourced). Servers under test run as background children of the
# calling shell, so `wait` can collect their exit status.

# A TCP port on 127.0.0.1 that was free a moment ago (the kernel picks it: bind to port 0).
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# start_bg LOG CMD [ARGS...]: starts CMD in the background with stdin from /dev/null and stdout +
# stderr into LOG; sets BG_PID. SIGINT is reset to its default first (a non-interactive shell
# starts background jobs with SIGINT ignored), so that a program without a handler still stops.
start_bg() {
  local log="$1"; shift
  if env --default-signal=SIGINT true 2>/dev/null; then
    env --default-signal=SIGINT "$@" >"$log" 2>&1 </dev/null &
  else
    "$@" >"$log" 2>&1 </dev/null &
  fi
  BG_PID=$!
}

# alive PID: true while PID runs (a zombie, i.e. exited but not yet collected, counts as gone).
alive() {
  local st
  st="$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)" || return 1
  [ -n "$st" ] && [ "$st" != Z ]
}

# wait_port PORT PID SECONDS: waits until 127.0.0.1:PORT accepts a TCP connection; fails early
# when PID exits, or after SECONDS.
wait_port() {
  python3 - "$@" <<'PYEOF'
import os, socket, sys, time
port, pid, secs = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
deadline = time.monotonic() + secs
while time.monotonic() < deadline:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        sys.exit(0)
    except OSError:
        try:
            with open("/proc/%d/stat" % pid) as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    raise OSError
        except OSError:
            print("wait_port: process %d exited before port %d accepted connections" % (pid, port))
            sys.exit(1)
        time.sleep(0.05)
print("wait_port: nothing accepted connections on 127.0.0.1:%d within %ss" % (port, secs))
sys.exit(1)
PYEOF
}

# wait_line FILE SECONDS: prints the first line of FILE once it is complete (bounded wait).
wait_line() {
  local f="$1" end=$(( $(date +%s) + $2 ))
  while [ "$(date +%s)" -le "$end" ]; do
    if [ -s "$f" ] && [ "$(wc -l < "$f")" -ge 1 ]; then head -n 1 "$f"; return 0; fi
    sleep 0.1
  done
  return 1
}

# stop_proc PID SECONDS [SIGNAL]: sends SIGNAL (default INT), waits up to SECONDS for the exit and
# returns the exit status; a process still running then is killed (SIGKILL) and 124 returned.
stop_proc() {
  local pid="$1" secs="$2" sig="${3:-INT}" end rc
  end=$(( $(date +%s%N) / 1000000 + secs * 1000 ))
  kill -s "$sig" "$pid" 2>/dev/null
  while alive "$pid" && [ $(( $(date +%s%N) / 1000000 )) -lt "$end" ]; do sleep 0.05; done
  if alive "$pid"; then
    echo "stop_proc: pid $pid still running ${secs}s after SIG$sig: killed"
    kill -KILL "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
    return 124
  fi
  wait "$pid"; rc=$?
  return $rc
}

# check_stop NAME PID SECONDS: stop_proc with SIGINT, then says whether NAME exited 0 in time.
check_stop() {
  local rc
  stop_proc "$2" "$3"; rc=$?
  if [ $rc -eq 0 ]; then echo "$1 exited 0 after SIGINT"; return 0; fi
  echo "FAIL: $1 did not exit 0 within $3 s of SIGINT (status $rc)"; return 1
}
