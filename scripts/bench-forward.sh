#!/usr/bin/env bash
# Forwarding benchmark: vmkstack between two TAP vmknics beside two references, measured in
# the same run, one topology shape:
#
#   client ns -- subnet A -- router -- subnet B -- server ns
#
# (U) router = `vmkstack daemon` (vmk0 on A, vmk1 on B, forwarding = true), TAP offloads on,
#     io = "uring" (batched)
# (S) the same with io = "syscalls" (one read/write per frame, the default): the two I/O
#     backends side by side
# (W) the same as (S) with workers = 2 (BENCH_WORKERS): multi-queue TAPs, a second
#     data-plane thread forwarding on queue 1
# (K) router = a Linux namespace with two veth pairs and ip_forward=1: the kernel router
# (C) a two-thread TAP-to-TAP copy with offloads on (examples/naive_copy.rs --offload: blocking
#     read/write, one thread per direction, super-frames pass whole; an L2 cable, so A and B
#     are one subnet there): the limit of plain TAP I/O, a reference of our own kind
#
# IPv6 (BENCH_IPV6=0 skips it): (U6) a third vmkstack daemon (io = "uring") forwarding IPv6
# between its two vmknics, beside (K6) the kernel router and (C6) the TAP copy above carrying
# IPv6 too (2001:db8::/32 addresses, added to those paths' interfaces), for TCP x1 and UDP 64 B
# in the same interleaved rounds; a table of its own follows the IPv4 one.
#
# Each round measures every path in turn (U S W K C), three rounds interleaved, and the table
# quotes medians: iperf3 TCP x1 and x4, UDP 64 B and 1472 B at full rate (packets/s received
# and loss), ping RTT p50/p99, the daemons' CPU nanoseconds per forwarded frame (UDP 64 B) and
# CPU seconds per GB, the idle daemon's CPU share, and its peak RSS. Everything runs in
# namespaces it creates (vmks-bench-<pid>-*), removed on exit and on failure; addresses are
# 198.18.0.0/15.
#
#   scripts/bench-forward.sh            # full run (about 6 minutes)
#   scripts/bench-forward.sh --quick    # smoke test (CI): one short round, checks that it works
#   BENCH_ROUNDS=1 BENCH_SECS=3 scripts/bench-forward.sh   # a shorter look while working
set -euo pipefail
cd "$(dirname "$0")/.."

secs=${BENCH_SECS:-5}
pings=500
rounds=${BENCH_ROUNDS:-3}
workers=${BENCH_WORKERS:-2}
idle_secs=5
quick=0
if [ "${1:-}" = "--quick" ]; then
  secs=1
  pings=50
  rounds=1
  idle_secs=1
  quick=1
fi
[ "$(id -u)" -eq 0 ] || { echo "bench-forward.sh: run as root (it creates namespaces and TAPs)" >&2; exit 1; }
for tool in ip iperf3 ping python3; do
  command -v "$tool" >/dev/null || { echo "bench-forward.sh: needs $tool (apt-get install -y iproute2 iperf3 iputils-ping python3)" >&2; exit 1; }
done

profile=release
[ $quick -eq 1 ] && profile=dev
# Where cargo puts what it builds (CARGO_TARGET_DIR when set, as cargo itself does).
tdir=${CARGO_TARGET_DIR:-target}
if [ $profile = release ]; then
  cargo build --release --quiet --bin vmkstack --example naive_copy
  bin=$tdir/release/vmkstack
  naive=$tdir/release/examples/naive_copy
else
  cargo build --quiet --bin vmkstack --example naive_copy
  bin=$tdir/debug/vmkstack
  naive=$tdir/debug/examples/naive_copy
fi

p="vmks-bench-$$"
work=$(mktemp -d "/tmp/$p.XXXX")
uring_pid=""
sys_pid=""
wk_pid=""
copy_pid=""
v6_pid=""
bench6=${BENCH_IPV6:-1}
namespaces="c1 s1 su c3 s3 ss c5 s5 sw c2 r2 s2 c4 s4 nc"
if [ "$bench6" = 1 ]; then namespaces="$namespaces c6 s6 u6"; fi
cleanup() {
  set +e
  for pid in $uring_pid $sys_pid $wk_pid $copy_pid $v6_pid; do
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
# Whether a path carries: `up NS [-6] ADDR` pings for up to about 10 s (a vmknic's IPv6
# addresses wait a random start delay of up to 1 s, then 1 s of duplicate address detection,
# before they are used).
up() {
  local ns=$1 fam=""
  shift
  if [ "$1" = -6 ]; then fam=-6; shift; fi
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    x "$ns" ping $fam -c 1 -W 1 "$1" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  return 1
}

# (U) and (S): vmkstack. $1: daemon ns, $2: client ns, $3: server ns, $4: third octet of the
# client subnet (the server's is the next), $5: io, $6: workers (default 1).
vmkstack_router() {
  local st=$1 c=$2 s=$3 a=$4 b=$(($4 + 1)) io=$5 w=${6:-1}
  printf '%s\n' "forwarding = true" "io = \"$io\"" "workers = $w" \
    "[[vmknic]]" 'name = "vmk0"' 'portgroup = "A"' "ip = \"198.18.$a.1/24\"" "netns = \"$p-$c\"" \
    "[[vmknic]]" 'name = "vmk1"' 'portgroup = "B"' "ip = \"198.18.$b.1/24\"" "netns = \"$p-$s\"" \
    > "$work/$st.toml"
  # Not through the `x` function: `ip netns exec` must be the background job itself, so that
  # $! is the daemon's own PID (ip execs it) for the CPU and RSS readings and the SIGTERM.
  ip netns exec "$p-$st" "$bin" daemon --config "$work/$st.toml" --control "$work/$st.sock" \
    --log info < /dev/null > /dev/null 2> "$work/$st.log" &
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
vmkstack_router su c1 s1 10 uring
uring_pid=$router_pid
vmkstack_router ss c3 s3 12 syscalls
sys_pid=$router_pid
vmkstack_router sw c5 s5 14 syscalls "$workers"
wk_pid=$router_pid

# (C) the two-thread copy with offloads: one subnet, 198.18.30.0/24.
ip netns exec "$p-nc" "$naive" --offload n0 "$p-c4" n1 "$p-s4" < /dev/null > "$work/copy.out" 2> "$work/copy.log" &
copy_pid=$!
for i in $(seq 100); do grep -q ready "$work/copy.out" 2>/dev/null && break; sleep 0.05; done
ip -n "$p-c4" addr add 198.18.30.2/24 dev n0
ip -n "$p-s4" addr add 198.18.30.3/24 dev n1

# (K) the kernel
ip -n "$p-c2" link add eth0 type veth peer name a0 netns "$p-r2"
ip -n "$p-s2" link add eth0 type veth peer name b0 netns "$p-r2"
ip -n "$p-c2" addr add 198.18.20.2/24 dev eth0; ip -n "$p-c2" link set eth0 up
ip -n "$p-s2" addr add 198.18.21.2/24 dev eth0; ip -n "$p-s2" link set eth0 up
ip -n "$p-r2" addr add 198.18.20.1/24 dev a0; ip -n "$p-r2" link set a0 up
ip -n "$p-r2" addr add 198.18.21.1/24 dev b0; ip -n "$p-r2" link set b0 up
x r2 sysctl -qw net.ipv4.ip_forward=1
ip -n "$p-c2" route add default via 198.18.20.1
ip -n "$p-s2" route add default via 198.18.21.1

# IPv6 paths: (U6) a vmkstack daemon of its own, in namespaces of its own; (K6) and (C6) are
# the kernel router and the TAP copy above with IPv6 addresses added beside their IPv4 ones.
ipv6_setup() {
  printf '%s\n' "forwarding = true" 'io = "uring"' \
    "[[vmknic]]" 'name = "vmk0"' 'portgroup = "A"' 'ip = "198.18.40.1/24"' 'ipv6 = ["2001:db8:40::1/64"]' "netns = \"$p-c6\"" \
    "[[vmknic]]" 'name = "vmk1"' 'portgroup = "B"' 'ip = "198.18.41.1/24"' 'ipv6 = ["2001:db8:41::1/64"]' "netns = \"$p-s6\"" \
    > "$work/u6.toml"
  ip netns exec "$p-u6" "$bin" daemon --config "$work/u6.toml" --control "$work/u6.sock" \
    --log info < /dev/null > /dev/null 2> "$work/u6.log" &
  v6_pid=$!
  for i in $(seq 100); do
    ip -n "$p-c6" link show vmk0 >/dev/null 2>&1 && ip -n "$p-s6" link show vmk1 >/dev/null 2>&1 && break
    sleep 0.05
  done
  # nodad: the addresses are usable at once (no 1-2 s of duplicate address detection).
  ip -n "$p-c6" addr add 2001:db8:40::2/64 dev vmk0 nodad; ip -n "$p-c6" link set vmk0 up
  ip -n "$p-c6" -6 route add default via 2001:db8:40::1
  ip -n "$p-s6" addr add 2001:db8:41::2/64 dev vmk1 nodad; ip -n "$p-s6" link set vmk1 up
  ip -n "$p-s6" -6 route add default via 2001:db8:41::1
  ip -n "$p-c2" addr add 2001:db8:20::2/64 dev eth0 nodad
  ip -n "$p-s2" addr add 2001:db8:21::2/64 dev eth0 nodad
  ip -n "$p-r2" addr add 2001:db8:20::1/64 dev a0 nodad
  ip -n "$p-r2" addr add 2001:db8:21::1/64 dev b0 nodad
  x r2 sysctl -qw net.ipv6.conf.all.forwarding=1
  ip -n "$p-c2" -6 route add default via 2001:db8:20::1
  ip -n "$p-s2" -6 route add default via 2001:db8:21::1
  ip -n "$p-c4" addr add 2001:db8:30::2/64 dev n0 nodad
  ip -n "$p-s4" addr add 2001:db8:30::3/64 dev n1 nodad
  up c6 -6 2001:db8:41::2 || { echo "vmkstack path (IPv6) does not forward" >&2; cat "$work/u6.log" >&2; exit 1; }
  up c2 -6 2001:db8:21::2 || { echo "kernel path (IPv6) does not forward" >&2; exit 1; }
  up c4 -6 2001:db8:30::3 || { echo "the TAP copy does not carry IPv6" >&2; cat "$work/copy.log" >&2; exit 1; }
}
if [ "$bench6" = 1 ]; then ipv6_setup; fi

up c1 198.18.11.2 || { echo "vmkstack path (uring) does not forward" >&2; cat "$work/su.log" >&2; exit 1; }
up c3 198.18.13.2 || { echo "vmkstack path (syscalls) does not forward" >&2; cat "$work/ss.log" >&2; exit 1; }
up c5 198.18.15.2 || { echo "vmkstack path (workers = $workers) does not forward" >&2; cat "$work/sw.log" >&2; exit 1; }
up c4 198.18.30.3 || { echo "the TAP copy does not carry" >&2; cat "$work/copy.log" >&2; exit 1; }
up c2 198.18.21.2 || { echo "kernel path does not forward" >&2; exit 1; }
io_used=$(grep -o 'io="[a-z]*"' "$work/su.log" | sort -u | tr -d '"' | sed 's/^io=//' | paste -sd,)

# CPU ticks (user + system) of a process.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# Voluntary context switches (waits that slept) of every thread of a process.
sleeps() { cat /proc/"$1"/task/*/status | awk '/^voluntary_ctxt_switches/ {s += $2} END {print s}'; }
# Frames a vmkstack daemon forwarded so far (both vmknics). $1: its daemon ns.
forwarded() {
  "$bin" --control "$work/$1.sock" stats --json 2>/dev/null | python3 -c '
import json, sys
def total(d):
    if isinstance(d, dict):
        return d.get("forwarded", 0) if "forwarded" in d else sum(total(v) for v in d.values())
    if isinstance(d, list):
        return sum(total(v) for v in d)
    return 0
try:
    print(total(json.load(sys.stdin)))
except Exception:
    print(0)'
}

# iperf3 JSON → "figure bytes loss". $1: client ns, $2: server ns, $3: server address, rest:
# client args.
iperf() {
  local cns=$1 sns=$2 addr=$3; shift 3
  ip netns exec "$p-$sns" iperf3 -s -1 -B "$addr" -p 5201 < /dev/null > /dev/null 2>&1 &
  local spid=$!
  for i in $(seq 100); do x "$sns" ss -ltn | grep -qF -e "$addr:5201" -e "[$addr]:5201" && break; sleep 0.02; done
  x "$cns" iperf3 -c "$addr" -p 5201 -t "$secs" -J "$@" > "$work/iperf.json" || true
  wait "$spid" 2>/dev/null || true
  python3 -c '
import json, sys
try:
    r = json.load(open(sys.argv[1]))
except Exception:
    print("0 0 0"); sys.exit()
e = r.get("end", {})
udp = r.get("start", {}).get("test_start", {}).get("protocol") == "UDP"
if not udp:
    rx = e.get("sum_received", {})
    print(rx.get("bits_per_second", 0) / 1e9, rx.get("bytes", 0), 0)
else:
    # The receiver view: datagrams that arrived, per second.
    s = e.get("sum_received") or e.get("sum", {})
    secs = s.get("seconds", 1) or 1
    pkts = s.get("packets", 0) - s.get("lost_packets", 0)
    print(pkts / secs, s.get("bytes", 0), s.get("lost_percent", 0))' "$work/iperf.json"
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

hz=$(getconf CLK_TCK)
# Results: R[path.metric.round].
declare -A R
# Every test on one path in round $r: $1 the path's letter, $2 client ns, $3 server ns, $4
# server address, $5 the daemon ns and $6 its PID (vmkstack paths only).
measure() {
  local k=$1 c=$2 sv=$3 addr=$4 st=${5:-} pid=${6:-} b bytes=0 t0 t1 u0 u1 f0 f1 v0
  [ -n "$pid" ] && t0=$(cpu_ticks "$pid")
  read -r R[$k.tcp1.$r] b _ < <(iperf "$c" "$sv" "$addr"); bytes=$((bytes + ${b%.*}))
  read -r R[$k.tcp4.$r] b _ < <(iperf "$c" "$sv" "$addr" -P 4); bytes=$((bytes + ${b%.*}))
  [ -n "$pid" ] && { u0=$(cpu_ticks "$pid"); f0=$(forwarded "$st"); }
  read -r R[$k.udp64.$r] b R[$k.udp64loss.$r] < <(iperf "$c" "$sv" "$addr" -u -b 0 -l 64); bytes=$((bytes + ${b%.*}))
  if [ -n "$pid" ]; then
    u1=$(cpu_ticks "$pid"); f1=$(forwarded "$st")
    R[$k.ns64.$r]=$(python3 -c "t, f = ($u1 - $u0) / $hz, $f1 - $f0; print('%.0f' % (t * 1e9 / f) if f else 0)")
  fi
  read -r R[$k.udp1472.$r] b R[$k.udp1472loss.$r] < <(iperf "$c" "$sv" "$addr" -u -b 0 -l 1472); bytes=$((bytes + ${b%.*}))
  [ -n "$pid" ] && v0=$(sleeps "$pid")
  read -r R[$k.p50.$r] R[$k.p99.$r] < <(rtt "$c" "$addr")
  # Blocking waits that slept, per ping round trip (both ping runs of rtt): a wake-up costs
  # tens of µs on an idle VM, so this is the load-independent side of the latency.
  [ -n "$pid" ] && R[$k.sleeps.$r]=$(python3 -c "print('%.2f' % (($(sleeps "$pid") - $v0) / (2 * $pings)))")
  if [ -n "$pid" ]; then
    t1=$(cpu_ticks "$pid")
    R[$k.cpugb.$r]=$(python3 -c "t = ($t1 - $t0) / $hz; print('%.2f' % (t / ($bytes / 1e9)) if $bytes else 0)")
  fi
}
# The IPv6 tests of one path in round $r: $1 the path's key, $2 client ns, $3 server ns, $4
# server address.
measure6() {
  local k=$1 c=$2 sv=$3 addr=$4
  read -r R[$k.tcp1.$r] _ _ < <(iperf "$c" "$sv" "$addr")
  read -r R[$k.udp64.$r] _ R[$k.udp64loss.$r] < <(iperf "$c" "$sv" "$addr" -u -b 0 -l 64)
}
ipv6_round() {
  measure6 U6 c6 s6 2001:db8:41::2
  measure6 K6 c2 s2 2001:db8:21::2
  measure6 C6 c4 s4 2001:db8:30::3
}
for r in $(seq "$rounds"); do
  measure U c1 s1 198.18.11.2 su "$uring_pid"
  measure S c3 s3 198.18.13.2 ss "$sys_pid"
  measure W c5 s5 198.18.15.2 sw "$wk_pid"
  measure K c2 s2 198.18.21.2
  measure C c4 s4 198.18.30.3
  if [ "$bench6" = 1 ]; then ipv6_round; fi
done
# The idle daemon: no traffic for a while.
i0=$(cpu_ticks "$uring_pid")
sleep "$idle_secs"
i1=$(cpu_ticks "$uring_pid")
idle_pct=$(python3 -c "print('%.1f' % (($i1 - $i0) / $hz / $idle_secs * 100))")
rss_kib=$(awk '/VmHWM/ {print $2}' "/proc/$uring_pid/status")
threads=$(ls "/proc/$uring_pid/task" | wc -l)
# io_uring worker threads (io-wq, named iou-wrk-PID) the daemon's reads or writes spilled to.
iowq=$(cat /proc/"$uring_pid"/task/*/comm 2>/dev/null | grep -c '^iou-wrk' || true)

# The median of one metric of one path over the rounds.
med() {
  local vals=() i
  for i in $(seq "$rounds"); do vals+=("${R[$1.$2.$i]:-0}"); done
  python3 -c "import statistics, sys; print(statistics.median(float(v) for v in sys.argv[1:]))" "${vals[@]}"
}
ratio() { python3 -c "a, b = float('$1'), float('$2'); print('%.2f' % (a / b) if b else 'n/a')"; }
# One row: $1 title, $2 metric, $3 printf format of a figure.
row() {
  local u s w k c
  u=$(med U "$2"); s=$(med S "$2"); w=$(med W "$2"); k=$(med K "$2"); c=$(med C "$2")
  printf "%-27s $3 $3 $3 $3 $3 %8s %8s %8s %8s %8s\n" "$1" "$u" "$s" "$w" "$k" "$c" \
    "$(ratio "$u" "$k")" "$(ratio "$u" "$c")" "$(ratio "$u" "$s")" "$(ratio "$w" "$k")" \
    "$(ratio "$w" "$s")"
}
echo
echo "vmkstack forwarding ($(nproc) cores, kernel $(uname -r), $profile build, ${secs}s per test," \
  "$rounds interleaved rounds, medians; vmkstack's io: $io_used)"
printf '%-27s %10s %10s %10s %10s %10s %8s %8s %8s %8s %8s\n' "measure" "uring" "syscalls" \
  "w=$workers" "kernel" "TAP copy" "u/kernel" "u/copy" "u/sysc." "w/kernel" "w/sysc."
row "TCP x1 (Gbit/s)" tcp1 "%10.2f"
row "TCP x4 (Gbit/s)" tcp4 "%10.2f"
row "UDP 64 B (packets/s rx)" udp64 "%10.0f"
row "UDP 64 B loss (%)" udp64loss "%10.1f"
row "UDP 1472 B (packets/s rx)" udp1472 "%10.0f"
row "UDP 1472 B loss (%)" udp1472loss "%10.1f"
row "ping RTT p50 (us)" p50 "%10.0f"
row "ping RTT p99 (us)" p99 "%10.0f"
printf '%-27s %10.0f %10.0f %10.0f\n' "CPU ns per frame, UDP 64 B" "$(med U ns64)" "$(med S ns64)" \
  "$(med W ns64)"
printf '%-27s %10.2f %10.2f %10.2f\n' "CPU s per GB forwarded" "$(med U cpugb)" "$(med S cpugb)" \
  "$(med W cpugb)"
printf '%-27s %10.2f %10.2f %10.2f\n' "daemon sleeps per ping" "$(med U sleeps)" "$(med S sleeps)" \
  "$(med W sleeps)"
printf '%-27s %10s\n' "added ping p50/p99 (us)" \
  "$(python3 -c "print('+%.0f/+%.0f' % ($(med U p50) - $(med K p50), $(med U p99) - $(med K p99)))")"
printf '%-27s %9s%%\n' "idle daemon CPU" "$idle_pct"
printf '%-27s %10s\n' "daemon peak RSS (MiB)" "$(python3 -c "print('%.1f' % ($rss_kib / 1024))")"
# io_uring must not hand work to io-wq worker threads: the daemon's threads after the run.
printf '%-27s %10s\n' "daemon threads" "$threads ($iowq io-wq)"
echo "rounds (TCP x1 Gbit/s, UDP 64 B packets/s):"
for r in $(seq "$rounds"); do
  echo "  $r: uring ${R[U.tcp1.$r]} ${R[U.udp64.$r]}, syscalls ${R[S.tcp1.$r]} ${R[S.udp64.$r]}," \
    "workers=$workers ${R[W.tcp1.$r]} ${R[W.udp64.$r]}," \
    "kernel ${R[K.tcp1.$r]} ${R[K.udp64.$r]}, copy ${R[C.tcp1.$r]} ${R[C.udp64.$r]}"
done

# The IPv6 table: vmkstack (uring) beside the kernel router and the TAP copy.
ipv6_report() {
  local m u k c title metric fmt
  echo
  echo "IPv6 forwarding (same rounds, medians; 2001:db8::/32, vmkstack io = uring)"
  printf '%-27s %10s %10s %10s %8s %8s\n' "measure" "vmkstack" "kernel" "TAP copy" "/kernel" "/copy"
  for m in "TCP x1 (Gbit/s):tcp1:%10.2f" "UDP 64 B (packets/s rx):udp64:%10.0f" "UDP 64 B loss (%):udp64loss:%10.1f"; do
    IFS=: read -r title metric fmt <<< "$m"
    u=$(med U6 "$metric"); k=$(med K6 "$metric"); c=$(med C6 "$metric")
    printf "%-27s $fmt $fmt $fmt %8s %8s\n" "$title" "$u" "$k" "$c" "$(ratio "$u" "$k")" "$(ratio "$u" "$c")"
  done
  echo "rounds (IPv6 TCP x1 Gbit/s, UDP 64 B packets/s):"
  for r in $(seq "$rounds"); do
    echo "  $r: vmkstack ${R[U6.tcp1.$r]} ${R[U6.udp64.$r]}, kernel ${R[K6.tcp1.$r]} ${R[K6.udp64.$r]}," \
      "copy ${R[C6.tcp1.$r]} ${R[C6.udp64.$r]}"
  done
}
if [ "$bench6" = 1 ]; then ipv6_report; fi

if [ $quick -eq 1 ]; then
  # Smoke test: every path carried traffic, and the io_uring daemon really ran on io_uring.
  python3 -c "import sys; sys.exit(0 if min(float(x) for x in sys.argv[1:]) > 0 else 1)" \
    "${R[U.tcp1.1]}" "${R[S.tcp1.1]}" "${R[W.tcp1.1]}" "${R[K.tcp1.1]}" "${R[C.tcp1.1]}" \
    || { echo "bench-forward.sh: a path carried no TCP traffic" >&2; exit 1; }
  if [ "$bench6" = 1 ]; then
    python3 -c "import sys; sys.exit(0 if min(float(x) for x in sys.argv[1:]) > 0 else 1)" \
      "${R[U6.tcp1.1]}" "${R[U6.udp64.1]}" "${R[K6.tcp1.1]}" "${R[C6.tcp1.1]}" \
      || { echo "bench-forward.sh: an IPv6 path carried no traffic" >&2; exit 1; }
  fi
  [ "$iowq" -eq 0 ] || { echo "bench-forward.sh: the daemon used $iowq io-wq worker threads" >&2; exit 1; }
  case "$io_used" in
    *uring*) ;;
    *) echo "bench-forward.sh: the io = uring daemon did not run on io_uring ($io_used)" >&2; exit 1 ;;
  esac
  echo "bench-forward.sh --quick: ok"
fi
