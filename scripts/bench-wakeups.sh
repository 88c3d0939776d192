#!/usr/bin/env bash
# Wake-ups per forwarded ping round trip: a load-independent view of the daemon's latency.
#
#   client ns -- vmk0 -- vmkstack daemon -- vmk1 -- server ns
#
# On a virtual machine every time the daemon sleeps and is woken costs tens of microseconds
# (the vCPU halts; an IPI wakes it), more on an idle host than on a busy one, so ping times
# move with the load. What does not move is how often the daemon sleeps: a forwarded round
# trip needs one wake-up (the request); the reply should find the loop still polling. For
# each I/O backend (and each binary, with --compare OLD_BIN), pings at two rates cross the
# daemon and the script reports per round trip:
#   sleeps   the daemon's voluntary context switches (blocking waits that really slept)
#   waits    epoll_wait + io_uring_enter calls (polling and sleeping)
#   calls    all system calls
#   via      what woke the event loop, from the wake-up's kernel stack: epoll (a TAP's own
#            wake-up, synchronous: the scheduler may serve it on the waker's CPU) or io_uring
#            task work (an ordinary wake-up: on an idle VM the loop's own halted vCPU is woken
#            by an IPI, tens of µs); "epoll/task work/other"
# plus ping p50/p99 (load-dependent, for reference) and, with no traffic, the idle daemon's
# wake-ups per second and CPU share. System calls are counted with perf's syscall tracepoints
# when perf is installed (else left out). Everything runs in namespaces of its own
# (vmks-wake-<pid>-*, 198.18.0.0/15), removed on exit.
#
#   scripts/bench-wakeups.sh [--compare OLD_BIN] [--pings N] [--idle SECS]
set -euo pipefail
cd "$(dirname "$0")/.."

pings=200
idle=5
compare=""
while [ $# -gt 0 ]; do
  case "$1" in
    --compare) compare=$2; shift 2 ;;
    --pings) pings=$2; shift 2 ;;
    --idle) idle=$2; shift 2 ;;
    *) echo "usage: scripts/bench-wakeups.sh [--compare OLD_BIN] [--pings N] [--idle SECS]" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" -eq 0 ] || { echo "bench-wakeups.sh: run as root (it creates namespaces and TAPs)" >&2; exit 1; }
tdir=${CARGO_TARGET_DIR:-target}
[ -n "${WAKE_BIN:-}" ] || cargo build --release --quiet --bin vmkstack
bins=("${WAKE_BIN:-$tdir/release/vmkstack}")
names=("this")
if [ -n "$compare" ]; then bins+=("$compare"); names+=("old"); fi
have_perf=0
command -v perf >/dev/null && perf stat -e raw_syscalls:sys_enter true >/dev/null 2>&1 && have_perf=1

p="vmks-wake-$$"
work=$(mktemp -d "/tmp/$p.XXXX")
pid=""
cleanup() {
  set +e
  [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  for ns in c s d; do ip netns del "$p-$ns" 2>/dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT INT TERM
for ns in c s d; do ip netns add "$p-$ns"; ip -n "$p-$ns" link set lo up; done
x() { local ns=$1; shift; ip netns exec "$p-$ns" "$@"; }

# Starts $1 (a binary) with io = $2 between the client and server namespaces.
start() {
  printf '%s\n' "forwarding = true" "io = \"$2\"" \
    "[[vmknic]]" 'name = "vmk0"' 'portgroup = "A"' 'ip = "198.18.50.1/24"' "netns = \"$p-c\"" \
    "[[vmknic]]" 'name = "vmk1"' 'portgroup = "B"' 'ip = "198.18.51.1/24"' "netns = \"$p-s\"" \
    > "$work/d.toml"
  ip netns exec "$p-d" "$1" daemon --config "$work/d.toml" --control "$work/d.sock" \
    --log info < /dev/null > /dev/null 2> "$work/d.log" &
  pid=$!
  for _ in $(seq 100); do
    ip -n "$p-c" link show vmk0 >/dev/null 2>&1 && ip -n "$p-s" link show vmk1 >/dev/null 2>&1 && break
    sleep 0.05
  done
  ip -n "$p-c" addr add 198.18.50.2/24 dev vmk0; ip -n "$p-c" link set vmk0 up
  ip -n "$p-c" route add default via 198.18.50.1
  ip -n "$p-s" addr add 198.18.51.2/24 dev vmk1; ip -n "$p-s" link set vmk1 up
  ip -n "$p-s" route add default via 198.18.51.1
  x c ping -c 3 -i 0.2 -W 2 198.18.51.2 >/dev/null || { echo "the daemon does not forward" >&2; cat "$work/d.log" >&2; exit 1; }
}
stop() {
  kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  pid=""
  # The TAPs go with the daemon; wait until they are gone before the next one starts.
  for _ in $(seq 100); do
    ip -n "$p-c" link show vmk0 >/dev/null 2>&1 || ip -n "$p-s" link show vmk1 >/dev/null 2>&1 || break
    sleep 0.05
  done
}
# Voluntary context switches of every thread of the daemon.
sleeps() { cat /proc/"$pid"/task/*/status | awk '/^voluntary_ctxt_switches/ {s += $2} END {print s}'; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
# Runs "$@" while perf counts the daemon's system calls and records its wake-ups; prints
# "calls waits cross" afterwards.
count_calls() {
  if [ $have_perf -eq 0 ]; then "$@"; echo "- - -" > "$work/calls"; return; fi
  perf stat -x, -o "$work/perf.csv" -p "$pid" -e raw_syscalls:sys_enter \
    -e syscalls:sys_enter_epoll_wait -e syscalls:sys_enter_epoll_pwait \
    -e syscalls:sys_enter_io_uring_enter 2> /dev/null &
  local perf_pid=$!
  # The main thread's wake-ups (the event loop): the waker's CPU against the target CPU.
  perf record -q -g -o "$work/wake.data" -a -e sched:sched_wakeup --filter "pid == $pid" \
    > /dev/null 2>&1 &
  local rec_pid=$!
  sleep 0.3
  "$@"
  kill -INT "$perf_pid" "$rec_pid"; wait "$perf_pid" "$rec_pid" 2>/dev/null || true
  local cross
  cross=$(perf script -i "$work/wake.data" 2>/dev/null | python3 -c '
import sys
n = {"ep_poll_callback": 0, "task_work_add": 0, "other": 0}
stack = []
for line in sys.stdin:
    if line.strip():
        stack.append(line)
        continue
    if stack:
        s = " ".join(stack)
        n[next((k for k in ("ep_poll_callback", "task_work_add") if k in s), "other")] += 1
    stack = []
print("%d/%d/%d" % (n["ep_poll_callback"], n["task_work_add"], n["other"]))')
  awk -F, -v cross="$cross" '$3 ~ /raw_syscalls/ {c = $1} $3 ~ /epoll_p?wait|io_uring_enter/ {w += $1} END {print c + 0, w + 0, cross}' \
    "$work/perf.csv" > "$work/calls"
}
# One ping run: $1 interval. Prints "sleeps waits calls p50 p99" per round trip.
ping_run() {
  local s0 s1
  s0=$(sleeps)
  count_calls x c ping -c "$pings" -i "$1" -W 1 198.18.51.2 > "$work/ping.out" 2>&1 || true
  s1=$(sleeps)
  read -r calls waits cross < "$work/calls"
  python3 - "$s0" "$s1" "$calls" "$waits" "$pings" "$work/ping.out" "$cross" <<'EOF'
import re, sys
s0, s1, calls, waits, n, out, cross = sys.argv[1:]
n = int(n)
t = sorted(float(m) for m in re.findall(r"time=([0-9.]+) ms", open(out).read()))
q = lambda p: t[min(len(t) - 1, int(p * len(t)))] * 1000 if t else 0
per = lambda v: "%.2f" % (float(v) / n) if v != "-" else "-"
# perf counts also what the daemon did in the 0.3 s before the pings started (idle: nothing).
print(per(int(s1) - int(s0)), per(waits), per(calls), "%.0f" % q(0.5), "%.0f" % q(0.99),
      "%d/%d" % (len(t), n), cross)
EOF
}
idle_run() {
  local s0 s1 t0 t1
  sleep 0.5
  s0=$(sleeps); t0=$(cpu_ticks)
  sleep "$idle"
  s1=$(sleeps); t1=$(cpu_ticks)
  python3 -c "print('%.1f %.2f' % (($s1 - $s0) / $idle, ($t1 - $t0) / $(getconf CLK_TCK) / $idle * 100))"
}

echo "wake-ups per forwarded ping round trip ($(nproc) cores, kernel $(uname -r), $pings pings per row;" \
  "load $(cut -d' ' -f1-3 /proc/loadavg))"
printf '%-6s %-9s %-7s %8s %8s %8s %8s %8s %9s %9s\n' binary io interval sleeps waits calls "p50 us" "p99 us" received via
idle_rows=()
for b in "${!bins[@]}"; do
  for io in syscalls uring; do
    start "${bins[$b]}" "$io"
    for interval in 0.01 0.2; do
      # A slow ping (the poll window has long closed between requests): 25 at most, 5 s.
      n=$pings
      [ "$interval" = 0.2 ] && pings=$(( n < 25 ? n : 25 ))
      read -r sl wa ca p50 p99 got cr < <(ping_run "$interval")
      pings=$n
      printf '%-6s %-9s %-7s %8s %8s %8s %8s %8s %9s %9s\n' "${names[$b]}" "$io" "$interval" "$sl" "$wa" "$ca" "$p50" "$p99" "$got" "$cr"
    done
    read -r wps cpu < <(idle_run)
    idle_rows+=("$(printf '%-6s %-9s %8s wake-ups/s %6s%% CPU' "${names[$b]}" "$io" "$wps" "$cpu")")
    stop
  done
done
echo "idle daemon (${idle}s, no traffic):"
printf '  %s\n' "${idle_rows[@]}"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
