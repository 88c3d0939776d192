#!/usr/bin/env bash
# Soak test: forwarding under load plus control-plane churn, for a configurable time.
#
#   client ns -- vmk0 198.18.10.0/24 -- vmkstack daemon (forwarding) -- vmk1 198.18.11.0/24 -- server ns
#
# For the whole duration: one iperf3 TCP stream client -> server, a ping every 0.2 s (loss is
# reported), and a control loop that every 50-100 ms adds and removes static routes, sets and
# clears the default gateway, enables and disables a third vmknic (vmk2, disabled at start, its
# TAP left in the daemon's namespace) and reads `stats --json`. The daemon's VmRSS is sampled
# every second. At the end the daemon gets SIGTERM, and the script prints a report: throughput,
# ping loss, control operations done and failed, RSS at start (after a 2 s warm-up), maximum and
# end, the drop counters from the daemon's `vmknic down` log lines, its exit status and any panic.
#
# Faults from outside, one after another for the whole run, on a fourth vmknic (vmk3, its TAP in
# namespace `f` on bridge `brf`, host `fh` 198.18.13.2 behind it) and around the stack: its
# namespace deleted and created again, its bridge deleted and created again, its TAP deleted,
# its carrier flapped (set down, then up), a SIGHUP reload of a hand edit that adds or removes a
# route, and the storage server behind vmk1 (a TCP echo server in `s`, with a client in `c`
# that keeps a connection through the stack) killed and started again. For each kind: how many,
# the time to recover (from the repair, or from the fault when the daemon repairs it alone, to
# the first ping from c to fh through vmk3; for the reload, to the route in the listing; for the
# storage server, to the client's new connection) p50 and max, and the pings to fh lost.
#
# Fails (exit 1, naming the check) on: a panic in the daemon's log, the daemon dying early, a
# non-zero daemon exit on SIGTERM, a failed control command, ping loss above 5% (the c -> s
# path, which no fault touches), RSS growth (end minus start) above max(8 MiB, 25%), an iperf3
# stream that carried nothing, a fault not recovered within 15 s, a fault the listing did not
# show (vmk3 not marked down), or a reloaded route missing afterwards (a lost change).
#
# Everything runs in namespaces it creates (vmks-soak-<pid>-*), removed on exit and on
# failure; addresses are 198.18.0.0/15.
#
#   scripts/soak.sh                          # 10 minutes, release build
#   scripts/soak.sh --duration 30 --debug    # the short one CI runs (debug build)
set -euo pipefail
cd "$(dirname "$0")/.."

duration=600
profile=release
while [ $# -gt 0 ]; do
  case "$1" in
    --duration)
      duration=${2:-}
      shift 2 || { echo "soak.sh: --duration needs SECS" >&2; exit 2; }
      ;;
    --duration=*) duration=${1#--duration=}; shift ;;
    --debug) profile=dev; shift ;;
    -h|--help) sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "soak.sh: unknown argument \`$1\` (--duration SECS, --debug)" >&2; exit 2 ;;
  esac
done
case "$duration" in
  ''|*[!0-9]*) echo "soak.sh: --duration takes whole seconds, not \`$duration\`" >&2; exit 2 ;;
esac
[ "$duration" -ge 5 ] || { echo "soak.sh: --duration must be at least 5 seconds" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "soak.sh: run as root (it creates namespaces and TAPs)" >&2; exit 1; }
for tool in ip iperf3 ping python3 timeout; do
  command -v "$tool" >/dev/null || { echo "soak.sh: needs $tool (apt-get install -y iproute2 iperf3 iputils-ping python3 coreutils)" >&2; exit 1; }
done

# Where cargo puts what it builds (CARGO_TARGET_DIR when set, as cargo itself does).
tdir=${CARGO_TARGET_DIR:-target}
if [ $profile = release ]; then
  cargo build --release --quiet --bin vmkstack
  bin=$tdir/release/vmkstack
else
  cargo build --quiet --bin vmkstack
  bin=$tdir/debug/vmkstack
fi
bin=$(realpath "$bin")

p="vmks-soak-$$"
work=$(mktemp -d "/tmp/$p.XXXX")
ctl="$work/ctl.sock"
daemon_pid=""
bg_pids=()
# The daemon is running (not gone, not a zombie waiting to be reaped).
alive() {
  [ -e "/proc/$daemon_pid" ] && [ "$(awk '{print $3}' "/proc/$daemon_pid/stat" 2>/dev/null)" != Z ]
}
cleanup() {
  set +e
  for pid in "${bg_pids[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  [ -f "$work/storage.pid" ] && kill -TERM "$(cat "$work/storage.pid")" 2>/dev/null
  if [ -n "$daemon_pid" ]; then
    kill -TERM "$daemon_pid" 2>/dev/null
    for _ in $(seq 100); do
      alive || break
      sleep 0.1
    done
    kill -KILL "$daemon_pid" 2>/dev/null
  fi
  wait 2>/dev/null
  daemon_pid="" bg_pids=()
  for ns in c s st f fh; do ip netns del "$p-$ns" 2>/dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM

for ns in c s st f fh; do
  ip netns add "$p-$ns"
  ip -n "$p-$ns" link set lo up
done
x() { ns=$1; shift; ip netns exec "$p-$ns" "$@"; }
# vmk3's wire: bridge brf in namespace f, a veth to host fh (made again after each fault that
# takes it away).
wire_f() {
  ip netns list | grep -q "^$p-f\b" || { ip netns add "$p-f"; ip -n "$p-f" link set lo up; }
  ip -n "$p-f" link show brf >/dev/null 2>&1 || {
    ip -n "$p-f" link add brf type bridge; ip -n "$p-f" link set brf up; }
  if ! ip -n "$p-f" link show fport >/dev/null 2>&1; then
    ip -n "$p-fh" link del eth0 2>/dev/null || true
    ip -n "$p-f" link add fport type veth peer name eth0 netns "$p-fh"
    ip -n "$p-fh" addr add 198.18.13.2/24 dev eth0
    ip -n "$p-fh" link set eth0 up
    ip -n "$p-fh" route replace default via 198.18.13.1
  fi
  ip -n "$p-f" link set fport master brf
  ip -n "$p-f" link set fport up
}
wire_f

cat > "$work/vmkstack.toml" <<EOF
forwarding = true
[[vmknic]]
name = "vmk0"
portgroup = "A"
ip = "198.18.10.1/24"
netns = "$p-c"
[[vmknic]]
name = "vmk1"
portgroup = "B"
ip = "198.18.11.1/24"
netns = "$p-s"
[[vmknic]]
name = "vmk2"
portgroup = "C"
ip = "198.18.12.1/24"
enabled = false
[[vmknic]]
name = "vmk3"
portgroup = "F"
ip = "198.18.13.1/24"
netns = "$p-f"
bridge = "brf"
EOF
# Not through the `x` function: `ip netns exec` must be the background job itself, so that
# $! is the daemon's own PID (ip execs it) for the RSS readings and the final SIGTERM.
ip netns exec "$p-st" "$bin" daemon --config "$work/vmkstack.toml" --control "$ctl" \
  --log info < /dev/null > /dev/null 2> "$work/daemon.log" &
daemon_pid=$!
for _ in $(seq 200); do
  ip -n "$p-c" link show vmk0 >/dev/null 2>&1 && ip -n "$p-s" link show vmk1 >/dev/null 2>&1 \
    && [ -S "$ctl" ] && break
  sleep 0.05
done
[ -S "$ctl" ] || { echo "soak.sh: the daemon did not start" >&2; cat "$work/daemon.log" >&2; exit 1; }
ip -n "$p-c" addr add 198.18.10.2/24 dev vmk0; ip -n "$p-c" link set vmk0 up
ip -n "$p-c" route add default via 198.18.10.1
ip -n "$p-s" addr add 198.18.11.2/24 dev vmk1; ip -n "$p-s" link set vmk1 up
ip -n "$p-s" route add default via 198.18.11.1
x c ping -c 3 -i 0.2 -W 2 198.18.11.2 >/dev/null \
  || { echo "soak.sh: vmkstack does not forward" >&2; cat "$work/daemon.log" >&2; exit 1; }
x c ping -c 3 -i 0.2 -W 2 198.18.13.2 >/dev/null \
  || { echo "soak.sh: vmkstack does not forward to vmk3" >&2; cat "$work/daemon.log" >&2; exit 1; }

echo "soak.sh: ${duration}s of forwarding and control churn ($profile build, daemon pid $daemon_pid)"
t0=$(date +%s)
deadline=$((t0 + duration))

# Load: one TCP stream and a ping, each bounded by its own clock (and by `timeout`). The
# stream is capped (500 Mbit/s) so that the soak measures stability: a saturating stream fills
# the kernel's queue into the TAP and drops pings before the daemon sees them (that is the
# forwarding benchmark's business, scripts/bench-forward.sh).
ip netns exec "$p-s" iperf3 -s -1 -B 198.18.11.2 -p 5201 < /dev/null > /dev/null 2>&1 &
iperf_server=$!
bg_pids+=("$iperf_server")
for _ in $(seq 100); do x s ss -ltn | grep -q '198.18.11.2:5201' && break; sleep 0.02; done
ip netns exec "$p-c" timeout $((duration + 30)) iperf3 -c 198.18.11.2 -p 5201 -b 500M -t "$duration" -J \
  < /dev/null > "$work/iperf.json" 2> "$work/iperf.err" &
iperf_client=$!
bg_pids+=("$iperf_client")
ip netns exec "$p-c" timeout $((duration + 10)) ping -i 0.2 -c $((duration * 5)) -W 1 198.18.11.2 \
  < /dev/null > "$work/ping.txt" 2>&1 &
ping_job=$!
bg_pids+=("$ping_job")

# Storage server behind vmk1 (a TCP echo server in s) and a client in c that keeps one
# connection through the stack, sending a line every 50 ms; it logs `up MS` at each (re)connect.
cat > "$work/echo.py" <<'PY'
import socket, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("198.18.11.2", 3260)); s.listen(16)
def serve(c):
    while True:
        d = c.recv(4096)
        if not d: break
        c.sendall(d)
while True:
    c, _ = s.accept(); threading.Thread(target=serve, args=(c,), daemon=True).start()
PY
cat > "$work/storage_client.py" <<'PY'
import socket, sys, time
log, deadline = open(sys.argv[1], "a", buffering=1), time.time() + float(sys.argv[2])
while time.time() < deadline:
    try:
        c = socket.create_connection(("198.18.11.2", 3260), timeout=1)
        c.settimeout(2)
        log.write("up %d\n" % (time.time() * 1000))
        while time.time() < deadline:
            c.sendall(b"x" * 64)
            got = b""
            while len(got) < 64:
                d = c.recv(64 - len(got))
                if not d: raise ConnectionError("closed")
                got += d
            time.sleep(0.05)
    except (OSError, ConnectionError):
        log.write("down %d\n" % (time.time() * 1000))
        time.sleep(0.1)
PY
start_storage() {
  ip netns exec "$p-s" python3 "$work/echo.py" < /dev/null > /dev/null 2>&1 &
  storage_pid=$!
  # Killed on purpose by the fault loop: no job notice from bash (cleanup finds it below).
  disown "$storage_pid" 2>/dev/null || true
  # The fault loop restarts it in a subshell: cleanup finds the latest one here.
  echo "$storage_pid" > "$work/storage.pid"
  for _ in $(seq 100); do x s ss -ltn | grep -q '198.18.11.2:3260' && break; sleep 0.02; done
}
start_storage
ip netns exec "$p-c" timeout $((duration + 30)) python3 "$work/storage_client.py" \
  "$work/storage.txt" $((duration + 20)) < /dev/null > /dev/null 2>&1 &
bg_pids+=("$!")

# Faults: one kind after another until the deadline. Each line of faults.txt: kind, recovery
# ms (or "unrecovered"), whether the listing showed vmk3 down, pings to fh lost.
(
  # A step that fails is measured (unrecovered), not a reason to stop injecting.
  set +e
  now_ms() { date +%s%3N; }
  ctlv() { timeout 10 "$bin" --control "$ctl" "$@" 2>/dev/null; }
  fh_ok() { x c ping -c 1 -W 0.3 198.18.13.2 >/dev/null 2>&1; }
  # Waits (at most 15 s) for `$@` to succeed; prints the ms since $1-start.
  recover() {
    local from=$1; shift
    for _ in $(seq 300); do
      if "$@"; then echo $(( $(now_ms) - from )); return 0; fi
      sleep 0.05
    done
    echo unrecovered
  }
  shown_down() {
    for _ in $(seq 60); do
      ctlv vmknic list --json | python3 -c 'import json,sys; v=[x for x in json.load(sys.stdin) if x["name"]=="vmk3"]; sys.exit(0 if v and v[0].get("link_down") else 1)' && { echo shown; return; }
      sleep 0.05
    done
    echo not-shown
  }
  route_in() { ctlv route list | grep -q "198.18.200.0"; }
  route_out() { ! route_in; }
  k=0 reloads=0
  while [ "$(date +%s)" -lt $((deadline - 5)) ]; do
    case $((k % 6)) in
      0) kind=netns
         ip netns del "$p-f"; shown=$(shown_down); sleep 1
         t=$(now_ms); wire_f; rec=$(recover "$t" fh_ok) ;;
      5) kind=bridge
         ip -n "$p-f" link del brf; shown=$(shown_down); sleep 1
         t=$(now_ms); wire_f; rec=$(recover "$t" fh_ok) ;;
      2) kind=tap-deleted
         # Re-created at once: the log line is what shows it was noticed.
         before=$(grep -c "was deleted from outside" "$work/daemon.log" || true)
         t=$(now_ms); ip -n "$p-f" link del vmk3
         rec=$(recover "$t" fh_ok)
         shown=not-shown
         for _ in $(seq 60); do
           [ "$(grep -c "was deleted from outside" "$work/daemon.log" || true)" -gt "$before" ] && { shown=logged; break; }
           sleep 0.05
         done ;;
      3) kind=carrier-flap
         ip -n "$p-f" link set vmk3 down; shown=$(shown_down); sleep 1
         t=$(now_ms); ip -n "$p-f" link set vmk3 up; rec=$(recover "$t" fh_ok) ;;
      4) kind=sighup-route
         reloads=$((reloads + 1))
         exec 9> "$work/cfg.lock"; flock 9
         before=$(grep -c "configuration reloaded" "$work/daemon.log" || true)
         if [ $((reloads % 2)) -eq 1 ]; then
           printf '\n[[route]]\nnetwork = "198.18.200.0/24"\ngateway = "198.18.11.254"\n' >> "$work/vmkstack.toml"
           check=route_in
         else
           python3 - "$work/vmkstack.toml" <<'PY'
import re, sys
p = sys.argv[1]; t = open(p).read()
t = re.sub(r'\n*\[\[route\]\]\nnetwork = "198\.18\.200\.0/24"\ngateway = "198\.18\.11\.254"\n', "\n", t)
open(p, "w").write(t)
PY
           check=route_out
         fi
         t=$(now_ms); kill -HUP "$daemon_pid"
         for _ in $(seq 200); do
           [ "$(grep -c "configuration reloaded" "$work/daemon.log" || true)" -gt "$before" ] && break; sleep 0.02
         done
         rec=$(recover "$t" $check); shown=n/a
         flock -u 9; exec 9>&- ;;
      1) kind=storage-restart
         kill -KILL "$storage_pid" 2>/dev/null
         ups=$(grep -c '^up' "$work/storage.txt" || true); sleep 1
         t=$(now_ms); start_storage
         rec=$(recover "$t" sh -c "[ \$(grep -c '^up' '$work/storage.txt') -gt $ups ]"); shown=n/a ;;
    esac
    echo "$kind $rec $shown" >> "$work/faults.txt"
    k=$((k + 1))
    sleep 0.5
  done
  # The last reload's route must still be what the file says (no acknowledged change lost).
  if grep -q '198.18.200.0/24' "$work/vmkstack.toml"; then route_in && echo "final-route ok" >> "$work/faults.txt" || echo "final-route lost" >> "$work/faults.txt"
  else route_out && echo "final-route ok" >> "$work/faults.txt" || echo "final-route lost" >> "$work/faults.txt"; fi
) &
faulter=$!
bg_pids+=("$faulter")
# Pings to fh through vmk3, for the losses during faults.
# Waited for before the report (ping sends every 0.2 s whatever comes back; with a deadline
# instead of a count it would stop at the first ICMP error of a fault).
ip netns exec "$p-c" timeout $((duration + 10)) ping -i 0.2 -c $((duration * 5)) -W 1 198.18.13.2 \
  < /dev/null > "$work/ping_fh.txt" 2>&1 &
ping_fh=$!
bg_pids+=("$ping_fh")

# RSS: one sample a second, "elapsed_s kib", until the deadline or the daemon's end.
(
  for _ in $(seq $((duration + 5))); do
    now=$(date +%s)
    [ "$now" -lt "$deadline" ] || break
    kib=$(awk '/^VmRSS:/ {print $2}' "/proc/$daemon_pid/status" 2>/dev/null) || kib=""
    [ -n "$kib" ] || { echo "gone $((now - t0))" >> "$work/rss.txt"; break; }
    echo "$((now - t0)) $kib" >> "$work/rss.txt"
    sleep 1
  done
) &
sampler=$!
bg_pids+=("$sampler")

# Control churn. Every command must succeed, except the deliberate refusals, which must be
# refused by the daemon itself (exit 1 with its message, not a client-side "vmkstack:" error).
(
  ok=0 failed=0 refused=0 n=0
  # Under the lock the fault loop holds while it edits the file and reloads it: a change
  # through the socket never races a hand edit (it would be refused until the reload).
  vmk() { flock "$work/cfg.lock" timeout 30 "$bin" --control "$ctl" "$@" > "$work/out" 2> "$work/err"; }
  op() {
    local rc=0
    vmk "$@" || rc=$?
    if [ $rc -eq 0 ]; then
      ok=$((ok + 1))
    else
      failed=$((failed + 1))
      echo "failed (exit $rc): vmkstack $*: $(head -c 300 "$work/err")" >> "$work/churn.err"
    fi
    return $rc
  }
  refuse() {
    local rc=0
    vmk "$@" || rc=$?
    if [ $rc -eq 1 ] && ! grep -q '^vmkstack:' "$work/err"; then
      refused=$((refused + 1))
    else
      failed=$((failed + 1))
      echo "not refused as expected (exit $rc): vmkstack $*: $(head -c 300 "$work/err")" >> "$work/churn.err"
    fi
  }
  pause() { sleep "$(printf '0.%03d' $((RANDOM % 51 + 50)))"; }   # 50-100 ms
  # Bounded: the deadline ends it, and at most 40 rounds a second could ever run.
  for _ in $(seq $((duration * 40))); do
    [ "$(date +%s)" -lt "$deadline" ] || break
    net="198.19.$((n % 256)).0/24"
    n=$((n + 1))
    op route add "$net" 198.18.11.254 || true
    op route add default 198.18.11.254 || true
    op vmknic set vmk2 --enable || true
    pause
    op route remove "$net" 198.18.11.254 || true
    op route remove default || true
    op vmknic set vmk2 --disable || true
    if op stats --json && [ $((n % 10)) -eq 0 ]; then
      python3 -c 'import json, sys; json.load(open(sys.argv[1]))' "$work/out" 2>/dev/null || {
        failed=$((failed + 1)); echo "stats --json: not JSON" >> "$work/churn.err"; }
    fi
    if [ $((n % 10)) -eq 0 ]; then
      refuse route remove 198.19.255.0/24   # never added
      refuse route add 198.19.254.0/24 198.18.99.1   # gateway on no vmknic subnet
    fi
    pause
  done
  echo "$ok $failed $refused $n" > "$work/churn.txt"
) &
churn=$!
bg_pids+=("$churn")

# Wait for the load to finish (each is bounded), then the churn and the sampler.
iperf_rc=0; wait "$iperf_client" || iperf_rc=$?
wait "$iperf_server" 2>/dev/null || true
ping_rc=0; wait "$ping_job" || ping_rc=$?
wait "$churn" || true
wait "$faulter" || true
wait "$ping_fh" || true
wait "$sampler" || true
bg_pids=()

hung=0
early=0
alive || early=1
end_kib=""
[ $early -eq 0 ] && end_kib=$(awk '/^VmRSS:/ {print $2}' "/proc/$daemon_pid/status" 2>/dev/null || true)

# The kernel's side of the TAPs: frames it could not queue to the daemon (tx_dropped) are lost
# before the daemon sees them, so they are not in its counters. Informational.
{
  x c ip -s -j link show vmk0 || true
  x s ip -s -j link show vmk1 || true
} > "$work/taps.json" 2>/dev/null

# Stop the daemon: SIGTERM, then up to 10 s to exit (it logs `vmknic down` on the way out).
daemon_rc=""
sigterm_ok=0
if [ $early -eq 0 ]; then
  kill -TERM "$daemon_pid"
  for _ in $(seq 100); do alive || break; sleep 0.1; done
  if alive; then
    kill -KILL "$daemon_pid" 2>/dev/null || true
    hung=1
  fi
fi
daemon_rc=0; wait "$daemon_pid" 2>/dev/null || daemon_rc=$?
daemon_pid=""
[ $early -eq 0 ] && [ "$daemon_rc" -eq 0 ] && sigterm_ok=1

# Report.
python3 - "$work" "$duration" "$early" "$daemon_rc" "$sigterm_ok" "${end_kib:-0}" <<'PY' > "$work/report.txt"
import json, os, re, sys
work, duration, early, rc, sigterm_ok, end_kib = sys.argv[1:7]
duration, early, rc, sigterm_ok, end_kib = int(duration), int(early), int(rc), int(sigterm_ok), int(end_kib)
out, fail = [], []

try:
    r = json.load(open(os.path.join(work, "iperf.json")))
    rx = r.get("end", {}).get("sum_received", {})
    gbps, gbytes = rx.get("bits_per_second", 0) / 1e9, rx.get("bytes", 0) / 1e9
    err = r.get("error")
except Exception as e:
    gbps, gbytes, err = 0.0, 0.0, "no JSON (%s)" % e
out.append("duration              %d s" % duration)
out.append("iperf3 TCP x1         %.2f Gbit/s (%.2f GB received)%s" % (gbps, gbytes, "; error: %s" % err if err else ""))
if gbytes <= 0:
    fail.append("iperf3: the TCP stream carried nothing%s" % ("" if not err else " (%s)" % err))

ping = open(os.path.join(work, "ping.txt")).read()
m = re.search(r"(\d+) packets transmitted, (\d+) received", ping)
sent, recv = (int(m.group(1)), int(m.group(2))) if m else (0, 0)
loss = 100.0 * (sent - recv) / sent if sent else 100.0
out.append("ping every 0.2 s      %d sent, %d received, %.1f%% loss" % (sent, recv, loss))
if loss > 5.0:
    fail.append("ping loss %.1f%% > 5%%" % loss)

try:
    ok, failed, refused, rounds = map(int, open(os.path.join(work, "churn.txt")).read().split())
except Exception:
    ok, failed, refused, rounds = 0, 1, 0, 0
    fail.append("control churn: the loop did not report")
out.append("control ops           %d done, %d failed, %d refused as expected (%d rounds, %.1f ops/s)"
           % (ok + refused, failed, refused, rounds, (ok + refused + failed) / max(duration, 1)))
if failed:
    fail.append("control: %d command(s) failed" % failed)
    p = os.path.join(work, "churn.err")
    if os.path.exists(p):
        for line in open(p).read().splitlines()[:5]:
            out.append("  " + line)
if ok == 0:
    fail.append("control: no command succeeded")

faults = {}
final = None
for line in open(os.path.join(work, "faults.txt")).read().splitlines() if os.path.exists(os.path.join(work, "faults.txt")) else []:
    parts = line.split()
    if parts[0] == "final-route":
        final = parts[1]
        continue
    kind, rec, shown = parts[0], parts[1], parts[2]
    faults.setdefault(kind, []).append((rec, shown))
total = sum(len(v) for v in faults.values())
out.append("faults injected       %d (%s)" % (total, ", ".join("%s %d" % (k, len(v)) for k, v in sorted(faults.items()))))
for kind, v in sorted(faults.items()):
    ms = sorted(int(r) for r, _ in v if r != "unrecovered")
    bad = sum(1 for r, _ in v if r == "unrecovered")
    unshown = sum(1 for _, s in v if s == "not-shown")
    p50 = ms[len(ms) // 2] if ms else 0
    out.append("  %-16s recovery p50 %d ms, max %d ms%s%s" % (kind, p50, max(ms) if ms else 0,
               ", %d UNRECOVERED" % bad if bad else "", ", %d not shown down" % unshown if unshown else ""))
    if bad:
        fail.append("fault %s: %d not recovered within 15 s" % (kind, bad))
    if unshown:
        fail.append("fault %s: %d not shown in the listing" % (kind, unshown))
if total == 0:
    fail.append("faults: none injected")
if final == "lost":
    fail.append("the reloaded route is not what the file says (a lost change)")
pf = open(os.path.join(work, "ping_fh.txt")).read() if os.path.exists(os.path.join(work, "ping_fh.txt")) else ""
m = re.search(r"(\d+) packets transmitted, (\d+) received", pf)
if m:
    out.append("pings to fh (vmk3)    %s sent, %d lost during the faults" % (m.group(1), int(m.group(1)) - int(m.group(2))))
st = open(os.path.join(work, "storage.txt")).read().split() if os.path.exists(os.path.join(work, "storage.txt")) else []
out.append("storage client        %d connections (%d reconnects after the server's restarts)"
           % (st.count("up"), max(st.count("up") - 1, 0)))

samples, gone = [], None
for line in open(os.path.join(work, "rss.txt")).read().splitlines() if os.path.exists(os.path.join(work, "rss.txt")) else []:
    a, b = line.split()
    if a == "gone":
        gone = int(b)
    else:
        samples.append((int(a), int(b)))
if samples:
    start = next((k for t, k in samples if t >= 2), samples[-1][1])
    end = end_kib or samples[-1][1]
    peak = max([k for _, k in samples] + [end])
    drift = end - start
    bound = max(8 * 1024, start // 4)
    mib = lambda k: k / 1024
    out.append("daemon RSS (MiB)      start %.1f (after 2 s), max %.1f, end %.1f, drift %+.1f (bound +%.1f; %d samples)"
               % (mib(start), mib(peak), mib(end), mib(drift), mib(bound), len(samples)))
    if drift > bound:
        fail.append("RSS grew %.1f MiB (%.1f -> %.1f) > max(8 MiB, 25%%)" % (mib(drift), mib(start), mib(end)))
else:
    out.append("daemon RSS (MiB)      no samples")
    fail.append("RSS: no samples")

log = open(os.path.join(work, "daemon.log"), errors="replace").read()
ansi = re.compile(r"\x1b\[[0-9;]*m")
downs = [ansi.sub("", l) for l in log.splitlines() if "vmknic down" in l]
out.append("drops (daemon's `vmknic down` lines at shutdown):")
if not downs:
    out.append("  none logged")
for l in downs:
    f = dict(re.findall(r"(\w+)=(\S*)", l))
    out.append("  %-5s rx %s tx %s forwarded %s delivered %s icmp_errors %s drops %s"
               % (f.get("vmknic", "?"), f.get("rx_packets", "?"), f.get("tx_packets", "?"),
                  f.get("forwarded", "?"), f.get("delivered", "?"), f.get("icmp_errors", "?"),
                  f.get("drops") or "none"))

taps = []
for line in open(os.path.join(work, "taps.json")).read().splitlines() if os.path.exists(os.path.join(work, "taps.json")) else []:
    try:
        for l in json.loads(line):
            st = l.get("stats64", {})
            taps.append("%s tx_dropped %s rx_dropped %s" % (l.get("ifname"), st.get("tx", {}).get("dropped", "?"),
                                                            st.get("rx", {}).get("dropped", "?")))
    except Exception:
        pass
if taps:
    out.append("kernel side of TAPs   " + "; ".join(taps) + " (queue full: lost before the daemon)")

if early:
    when = " (gone at %d s)" % gone if gone is not None else ""
    out.append("daemon exit           died before the end%s, status %d" % (when, rc))
    fail.append("the daemon died early%s (status %d)" % (when, rc))
else:
    out.append("daemon exit           %d on SIGTERM (%s)" % (rc, "ok" if sigterm_ok else "FAILED"))
    if rc != 0:
        fail.append("the daemon exited %d on SIGTERM" % rc)
panics = [ansi.sub("", l) for l in log.splitlines() if "panicked" in l]
out.append("panics in daemon log  %d" % len(panics))
for l in panics[:5]:
    out.append("  " + l)
if panics:
    fail.append("panic in the daemon's log")

print("\n".join(out))
for f in fail:
    print("FAIL: " + f)
PY
[ $hung -eq 0 ] || echo "FAIL: the daemon did not exit within 10 s of SIGTERM (killed)" >> "$work/report.txt"
echo
echo "== soak report"
cat "$work/report.txt"
[ "$iperf_rc" -eq 0 ] || echo "note: iperf3 client exited $iperf_rc: $(head -c 300 "$work/iperf.err")"
[ "$ping_rc" -eq 0 ] || echo "note: ping exited $ping_rc (1 = some replies missing)"
if grep -q '^FAIL: ' "$work/report.txt"; then
  echo "soak.sh: FAILED ($(grep -c '^FAIL: ' "$work/report.txt") check(s))"
  echo "--- last lines of the daemon's log" >&2
  tail -n 20 "$work/daemon.log" >&2
  exit 1
fi
echo "soak.sh: ok"
