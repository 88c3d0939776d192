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
# Fails (exit 1, naming the check) on: a panic in the daemon's log, the daemon dying early, a
# non-zero daemon exit on SIGTERM, a failed control command, ping loss above 5%, RSS growth
# (end minus start) above max(8 MiB, 25%), or an iperf3 stream that carried nothing.
#
# Everything runs in namespaces it creates (vmks-soak-<pid>-*), removed on exit and on
# failure; addresses are 198.18.0.0/15.
#
#   scripts/soak.sh                          # 10 minutes, release build
#   scripts/soak.sh --duration 20 --debug    # the short one CI runs (debug build)
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

if [ $profile = release ]; then
  cargo build --release --quiet --bin vmkstack
  bin=${CARGO_TARGET_DIR:-target}/release/vmkstack
else
  cargo build --quiet --bin vmkstack
  bin=${CARGO_TARGET_DIR:-target}/debug/vmkstack
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
  for ns in c s st; do ip netns del "$p-$ns" 2>/dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM

for ns in c s st; do
  ip netns add "$p-$ns"
  ip -n "$p-$ns" link set lo up
done
x() { ns=$1; shift; ip netns exec "$p-$ns" "$@"; }

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
  vmk() { timeout 30 "$bin" --control "$ctl" "$@" > "$work/out" 2> "$work/err"; }
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
