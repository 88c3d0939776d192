#!/usr/bin/env bash
# Forwarding benchmark: vmkstack between two TAP vmknics beside the Linux kernel forwarding in
# a router namespace, one topology shape, measured in the same run:
#
#   client ns -- subnet A -- router -- subnet B -- server ns
#
# (a) router = `vmkstack daemon` (vmk0 on A, vmk1 on B, forwarding = true), TAP offloads on
# (b) router = a Linux namespace with two veth pairs and ip_forward=1
# (c) router = `vmkstack daemon` as in (a) with `offloads = false`
# (d) a naive userspace copy between two TAPs (examples/naive_copy.rs: two threads, blocking
#     read/write, no offloads; an L2 cable, so A and B are one subnet there)
#
# Measures iperf3 TCP x1 and x4, UDP 64 B and 1472 B at full rate (packets/s received and
# loss), ping RTT p50/p99, the daemon's CPU seconds per GB forwarded and its peak RSS, and
# prints two tables: vmkstack/kernel, and vmkstack without offloads/naive copy. Everything runs in namespaces it creates
# (vmks-bench-<pid>-*), removed on exit and on failure; addresses are 198.18.0.0/15.
#
#   scripts/bench-forward.sh            # full run (about 1 minute)
#   scripts/bench-forward.sh --quick    # smoke test (CI): checks that it works, not how fast
set -euo pipefail
cd "$(dirname "$0")/.."

secs=5
pings=500
quick=0
if [ "${1:-}" = "--quick" ]; then
  secs=1
  pings=50
  quick=1
fi
[ "$(id -u)" -eq 0 ] || { echo "bench-forward.sh: run as root (it creates namespaces and TAPs)" >&2; exit 1; }
for tool in ip iperf3 ping python3; do
  command -v "$tool" >/dev/null || { echo "bench-forward.sh: needs $tool (apt-get install -y iproute2 iperf3 iputils-ping python3)" >&2; exit 1; }
done

profile=release
[ $quick -eq 1 ] && profile=dev
if [ $profile = release ]; then
  cargo build --release --quiet --bin vmkstack --example naive_copy
  bin=${CARGO_TARGET_DIR:-target}/release/vmkstack
  naive=${CARGO_TARGET_DIR:-target}/release/examples/naive_copy
else
  cargo build --quiet --bin vmkstack --example naive_copy
  bin=${CARGO_TARGET_DIR:-target}/debug/vmkstack
  naive=${CARGO_TARGET_DIR:-target}/debug/examples/naive_copy
fi

p="vmks-bench-$$"
work=$(mktemp -d "/tmp/$p.XXXX")
daemon_pid=""
off_pid=""
naive_pid=""
namespaces="c1 s1 st c2 r2 s2 c3 s3 so c4 s4 nc"
cleanup() {
  set +e
  for pid in $daemon_pid $off_pid $naive_pid; do
    kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  done
  for ns in $namespaces; do ip netns del "$p-$ns" 2>/dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

for ns in $namespaces; do
  ip netns add "$p-$ns"
  ip -n "$p-$ns" link set lo up
done
x() { ns=$1; shift; ip netns exec "$p-$ns" "$@"; }

# (a) and (c): vmkstack with offloads on and off. $1: daemon ns, $2: client ns, $3: server
# ns, $4: third octet of the client subnet (the server's is the next), $5: offloads, $6:
# busy_poll_us.
vmkstack_router() {
  local st=$1 c=$2 s=$3 a=$4 b=$(($4 + 1)) off=$5 busy=${6:-0}
  cat > "$work/$st.toml" <<EOF
forwarding = true
offloads = $off
busy_poll_us = $busy
[[vmknic]]
name = "vmk0"
portgroup = "A"
ip = "198.18.$a.1/24"
netns = "$p-$c"
[[vmknic]]
name = "vmk1"
portgroup = "B"
ip = "198.18.$b.1/24"
netns = "$p-$s"
EOF
  # Not through the `x` function: `ip netns exec` must be the background job itself, so that
  # $! is the daemon's own PID (ip execs it) for the CPU and RSS readings and the SIGTERM.
  ip netns exec "$p-$st" "$bin" daemon --config "$work/$st.toml" --control "$work/$st.sock" \
    --log warn < /dev/null > /dev/null 2> "$work/$st.log" &
  router_pid=$!
  for i in $(seq 100); do
    ip -n "$p-$c" link show vmk0 >/dev/null 2>&1 && ip -n "$p-$s" link show vmk1 >/dev/null 2>&1 && break
    sleep 0.05
  done
  ip -n "$p-$c" addr add "198.18.$a.2/24" dev vmk0; ip -n "$p-$c" link set vmk0 up
  ip -n "$p-$c" route add default via "198.18.$a.1"
  ip -n "$p-$s" addr add "198.18.$b.2/24" dev vmk1; ip -n "$p-$s" link set vmk1 up
  ip -n "$p-$s" route add default via "198.18.$b.1"
}
vmkstack_router st c1 s1 10 true
daemon_pid=$router_pid
vmkstack_router so c3 s3 12 false
off_pid=$router_pid

# (d) the naive copy: one subnet, 198.18.30.0/24.
ip netns exec "$p-nc" "$naive" n0 "$p-c4" n1 "$p-s4" < /dev/null > "$work/naive.out" 2> "$work/naive.log" &
naive_pid=$!
for i in $(seq 100); do grep -q ready "$work/naive.out" 2>/dev/null && break; sleep 0.05; done
ip -n "$p-c4" addr add 198.18.30.2/24 dev n0
ip -n "$p-s4" addr add 198.18.30.3/24 dev n1

# (b) the kernel
ip -n "$p-c2" link add eth0 type veth peer name a0 netns "$p-r2"
ip -n "$p-s2" link add eth0 type veth peer name b0 netns "$p-r2"
ip -n "$p-c2" addr add 198.18.20.2/24 dev eth0; ip -n "$p-c2" link set eth0 up
ip -n "$p-s2" addr add 198.18.21.2/24 dev eth0; ip -n "$p-s2" link set eth0 up
ip -n "$p-r2" addr add 198.18.20.1/24 dev a0; ip -n "$p-r2" link set a0 up
ip -n "$p-r2" addr add 198.18.21.1/24 dev b0; ip -n "$p-r2" link set b0 up
x r2 sysctl -qw net.ipv4.ip_forward=1
ip -n "$p-c2" route add default via 198.18.20.1
ip -n "$p-s2" route add default via 198.18.21.1

x c1 ping -c 3 -i 0.2 -W 2 198.18.11.2 >/dev/null || { echo "vmkstack path does not forward" >&2; cat "$work/st.log" >&2; exit 1; }
x c3 ping -c 3 -i 0.2 -W 2 198.18.13.2 >/dev/null || { echo "vmkstack path (offloads off) does not forward" >&2; cat "$work/so.log" >&2; exit 1; }
x c4 ping -c 3 -i 0.2 -W 2 198.18.30.3 >/dev/null || { echo "naive copy does not carry" >&2; cat "$work/naive.log" >&2; exit 1; }
x c2 ping -c 3 -i 0.2 -W 2 198.18.21.2 >/dev/null || { echo "kernel path does not forward" >&2; exit 1; }

cpu_ticks() { awk '{print $14 + $15}' "/proc/$daemon_pid/stat"; }

# iperf3 JSON → one figure. $1: client ns, $2: server ns, $3: server address, rest: client args.
iperf() {
  local cns=$1 sns=$2 addr=$3; shift 3
  ip netns exec "$p-$sns" iperf3 -s -1 -B "$addr" -p 5201 < /dev/null > /dev/null 2>&1 &
  local spid=$!
  for i in $(seq 100); do x "$sns" ss -ltn | grep -q "$addr:5201" && break; sleep 0.02; done
  x "$cns" iperf3 -c "$addr" -p 5201 -t "$secs" -J "$@" > "$work/iperf.json" || true
  wait "$spid" 2>/dev/null || true
  python3 - "$work/iperf.json" <<'PY'
import json, sys
try:
    r = json.load(open(sys.argv[1]))
except Exception:
    print("0 0 0 0"); sys.exit()
e = r.get("end", {})
udp = r.get("start", {}).get("test_start", {}).get("protocol") == "UDP"
if not udp:
    rx = e.get("sum_received", {})
    print(rx.get("bits_per_second", 0) / 1e9, rx.get("bytes", 0), 0, 0)
else:
    # The receiver's view: datagrams that arrived, per second.
    s = e.get("sum_received") or e.get("sum", {})
    secs = s.get("seconds", 1) or 1
    pkts = s.get("packets", 0) - s.get("lost_packets", 0)
    print(pkts / secs, s.get("bytes", 0), s.get("lost_percent", 0), 0)
PY
}

# ping → "p50 p99" in microseconds.
rtt() {
  x "$1" ping -c "$pings" -i 0.002 -W 1 -q "$2" >/dev/null 2>&1 || true
  x "$1" ping -c "$pings" -i 0.002 -W 1 "$2" 2>/dev/null | python3 -c '
import re, sys
t = sorted(float(m) for m in re.findall(r"time=([0-9.]+) ms", sys.stdin.read()))
if not t: print("0 0"); sys.exit()
q = lambda p: t[min(len(t) - 1, int(p * len(t)))] * 1000
print("%.0f %.0f" % (q(0.5), q(0.99)))'
}

declare -A A B O N
# Every test on one path: $1 the array, $2 client ns, $3 server ns, $4 server address.
measure() {
  local -n r=$1
  local c=$2 sv=$3 addr=$4 b
  r[bytes]=0
  read -r r[tcp1] b _ _ < <(iperf "$c" "$sv" "$addr"); r[bytes]=$((r[bytes] + ${b%.*}))
  read -r r[tcp4] b _ _ < <(iperf "$c" "$sv" "$addr" -P 4); r[bytes]=$((r[bytes] + ${b%.*}))
  read -r r[udp64] b r[udp64loss] _ < <(iperf "$c" "$sv" "$addr" -u -b 0 -l 64); r[bytes]=$((r[bytes] + ${b%.*}))
  read -r r[udp1472] b r[udp1472loss] _ < <(iperf "$c" "$sv" "$addr" -u -b 0 -l 1472); r[bytes]=$((r[bytes] + ${b%.*}))
}
t0=$(cpu_ticks)
measure A c1 s1 198.18.11.2
t1=$(cpu_ticks)
measure B c2 s2 198.18.21.2
measure O c3 s3 198.18.13.2
measure N c4 s4 198.18.30.3
read -r A[p50] A[p99] < <(rtt c1 198.18.11.2)
read -r B[p50] B[p99] < <(rtt c2 198.18.21.2)
read -r O[p50] O[p99] < <(rtt c3 198.18.13.2)
read -r N[p50] N[p99] < <(rtt c4 198.18.30.3)
hz=$(getconf CLK_TCK)
cpu_s=$(python3 -c "print(($t1 - $t0) / $hz)")
rss_kib=$(awk '/VmHWM/ {print $2}' "/proc/$daemon_pid/status")
# Latency with busy polling (busy_poll_us longer than ping's 2 ms interval): the same daemon
# restarted with it (the TAPs come back; the hosts get their addresses again).
kill -TERM "$daemon_pid"; wait "$daemon_pid" 2>/dev/null || true; daemon_pid=""
vmkstack_router st c1 s1 10 true 5000
daemon_pid=$router_pid
x c1 ping -c 3 -i 0.2 -W 2 198.18.11.2 >/dev/null || { echo "vmkstack path (busy polling) does not forward" >&2; cat "$work/st.log" >&2; exit 1; }
read -r A[bp50] A[bp99] < <(rtt c1 198.18.11.2)
cpu_per_gb=$(python3 -c "b = ${A[bytes]}; print('%.2f' % ($cpu_s / (b / 1e9)) if b else 'n/a')")

ratio() { python3 -c "a, b = float('$1'), float('$2'); print('%.2f' % (a / b) if b else 'n/a')"; }
# One table: $1 and $2 the arrays, $3 and $4 their column titles.
table() {
  local -n x=$1 y=$2
  printf '%-28s %14s %14s %8s\n' "measure" "$3" "$4" "ratio"
  printf '%-28s %14.2f %14.2f %8s\n' "TCP x1 (Gbit/s)" "${x[tcp1]}" "${y[tcp1]}" "$(ratio "${x[tcp1]}" "${y[tcp1]}")"
  printf '%-28s %14.2f %14.2f %8s\n' "TCP x4 (Gbit/s)" "${x[tcp4]}" "${y[tcp4]}" "$(ratio "${x[tcp4]}" "${y[tcp4]}")"
  printf '%-28s %14.0f %14.0f %8s\n' "UDP 64 B (packets/s rx)" "${x[udp64]}" "${y[udp64]}" "$(ratio "${x[udp64]}" "${y[udp64]}")"
  printf '%-28s %13.1f%% %13.1f%% %8s\n' "UDP 64 B loss" "${x[udp64loss]}" "${y[udp64loss]}" ""
  printf '%-28s %14.0f %14.0f %8s\n' "UDP 1472 B (packets/s rx)" "${x[udp1472]}" "${y[udp1472]}" "$(ratio "${x[udp1472]}" "${y[udp1472]}")"
  printf '%-28s %13.1f%% %13.1f%% %8s\n' "UDP 1472 B loss" "${x[udp1472loss]}" "${y[udp1472loss]}" ""
  printf '%-28s %14s %14s %8s\n' "ping RTT p50 (us)" "${x[p50]}" "${y[p50]}" "$(ratio "${x[p50]}" "${y[p50]}")"
  printf '%-28s %14s %14s %8s\n' "ping RTT p99 (us)" "${x[p99]}" "${y[p99]}" "$(ratio "${x[p99]}" "${y[p99]}")"
}
echo
echo "vmkstack forwarding vs the Linux kernel ($(nproc) cores, kernel $(uname -r), ${secs}s per test, $profile build)"
table A B "vmkstack" "kernel"
printf '%-28s %14s\n' "added ping p50 (us)" "$((A[p50] - B[p50]))"
printf '%-28s %14s %14s\n' "ping p50/p99, busy poll (us)" "${A[bp50]}/${A[bp99]}" "-"
printf '%-28s %14s\n' "added p50, busy poll (us)" "$((A[bp50] - B[p50]))"
printf '%-28s %14s %14s\n' "daemon CPU s per GB" "$cpu_per_gb" "-"
printf '%-28s %14s %14s\n' "daemon peak RSS (MiB)" "$(python3 -c "print('%.1f' % ($rss_kib / 1024))")" "-"
echo
echo "vmkstack with offloads = false vs a naive TAP-to-TAP copy (2 threads, blocking read/write)"
table O N "offloads off" "naive copy"

if [ $quick -eq 1 ]; then
  # Smoke test: both paths carried traffic.
  python3 -c "import sys; sys.exit(0 if min(float(x) for x in sys.argv[1:]) > 0 else 1)" \
    "${A[tcp1]}" "${B[tcp1]}" "${O[tcp1]}" "${N[tcp1]}" \
    || { echo "bench-forward.sh: a path carried no TCP traffic" >&2; exit 1; }
  echo "bench-forward.sh --quick: ok"
fi
