#!/usr/bin/env bash
# Storage benchmark: iSCSI and NFS throughput and IOPS from real clients to the storage lab's
# real servers (scripts/storage-lab.sh: tgtd with a LUN on tmpfs, nfs-ganesha exporting a
# tmpfs directory, behind a Linux router), over three paths measured in the same run:
#
#   direct   client in the router's namespace, kernel only:
#              client -> router ns -> veth -> storage
#   forward  client in the ESX namespace through `vmkstack forward` (the users' path):
#              client -> 127.0.0.1 forward -> vmkstack's TCP (smoltcp) -> vmk0 TAP -> router
#              -> storage
#   routed   client on a subnet of its own, vmkstack forwarding between two subnets:
#              client 198.18.2.2 -> vmk1 TAP -> vmkstack (forwarding = true) -> vmk0 TAP
#              -> router -> storage
#   relay    (iperf3 workloads only) the reference of the forward's own kind, kernel only: a
#              user-space relay between two kernel TCP connections, `socat -b 262144`, in the
#              router's namespace: client -> 127.0.0.1:5202 socat -> veth -> storage. What
#              any port forward that ends TCP on both sides pays on this machine.
#
# One vmkstack daemon (offloads on, the default) serves both vmkstack paths. Workloads, each
# on every path, the paths taking turns in rotating order within each round:
#   - iSCSI sequential read, `iscsi-perf` (256 KiB requests, 16 in flight)       MB/s
#   - the same from 4 sessions at once (4 `iscsi-perf`, 8 in flight each), summed  MB/s
#   - iSCSI sequential write then read-back with verification, `iscsi-bench`
#     (scripts/iscsi-bench.c on libiscsi, compiled here; 256 KiB, 16 in flight)   MB/s each
#   - iSCSI 4 KiB random read, `iscsi-perf -r` (32 in flight)                   IOPS
#   - NFSv3 write and read of one file, `nfs-cp` (libnfs), read-back compared   MB/s each
#   - a TCP stream, `iperf3` (the reference the port forward's target is set in) Gbit/s
#   - 4 TCP streams, `iperf3 -P 4`                                               Gbit/s
#   - a TCP stream from the server to the client, `iperf3 -R` (the direction of
#     iSCSI and NFS reads)                                                       Gbit/s
#   - with --ipv6 only: a TCP stream over IPv6, `iperf3` to [2001:db8:100::20]     Gbit/s
# It prints the median of the rounds for each, the ratio of each vmkstack path to direct, and
# every round's figure. MB = 10^6 bytes.
#
#   scripts/bench-storage.sh [--rounds N] [--secs S]   # full run (3 rounds of 5 s: ~5 min)
#   scripts/bench-storage.sh --compare OLD_BIN         # also "forward-B", "routed-B" by OLD_BIN
#   scripts/bench-storage.sh --io threaded             # the (first) daemon's `io` (default: its own)
#   scripts/bench-storage.sh --workers 2               # the (first) daemon's `workers` (default: 1)
#   scripts/bench-storage.sh --quick                   # smoke test (CI): that it works, not how fast
#   scripts/bench-storage.sh --only iperf,iperf4       # only these workloads (of: iscsi_read,
#                                                      #   iscsi_sessions, iscsi_rw, iscsi_rand,
#                                                      #   nfs, iperf, iperf4, iperf_r, iperf6)
#   scripts/bench-storage.sh --ipv6                    # also iperf6 (alone: --only iperf6)
#
# iperf6 (--ipv6, or named in --only) gives the lab's router, the storage host and each
# daemon's vmknics IPv6 addresses beside their IPv4 ones (storage 2001:db8:100::/64, vmknic
# subnet 2001:db8:1::/64, client subnet 2001:db8:2::/64; the compared daemon 2001:db8:4::/64
# and 2001:db8:5::/64), a forward 127.0.0.1:5206 -> [2001:db8:100::20]:5206 and an iperf3
# server there: the forward path is then the stack's own TCP over IPv6 (TSO6), the routed
# path IPv6 forwarding. The storage servers stay on IPv4.
#
# --compare runs a second daemon, another build, beside the first (its own ESX and client
# namespaces, its vmknic on 198.18.4.0/24 of the same router, its clients on 198.18.5.0/24), so
# that two builds are measured in the same rounds against the same direct path. VMKSTACK_BIN=PATH
# measures that binary instead of building one. Run as root. Everything runs in namespaces it
# creates (vmks-bst<pid>-*, removed on exit and on failure; the lab's own are removed by
# `storage-lab.sh down`); addresses are 198.18.0.0/15.
set -euo pipefail
# A workload that fails inside $(...) must stop the script, not print a figure.
shopt -s inherit_errexit
cd "$(dirname "$0")/.."

PROG=bench-storage.sh
rounds=3
secs=5
quick=0
compare=""
io=""
workers=""
workloads="iscsi_read iscsi_sessions iscsi_rw iscsi_rand nfs iperf iperf4 iperf_r"
known="$workloads iperf6"
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1; shift ;;
    --ipv6) [[ " $workloads " == *" iperf6 "* ]] || workloads="$workloads iperf6"; shift ;;
    --compare) [ $# -ge 2 ] || { echo "$PROG: --compare needs a binary" >&2; exit 2; }; compare=$2; shift 2 ;;
    --io) [ $# -ge 2 ] || { echo "$PROG: --io needs a mode" >&2; exit 2; }; io=$2; shift 2 ;;
    --workers) [ $# -ge 2 ] || { echo "$PROG: --workers needs a count" >&2; exit 2; }; workers=$2; shift 2 ;;
    --rounds) [ $# -ge 2 ] || { echo "$PROG: --rounds needs a value" >&2; exit 2; }; rounds=$2; shift 2 ;;
    --secs) [ $# -ge 2 ] || { echo "$PROG: --secs needs a value" >&2; exit 2; }; secs=$2; shift 2 ;;
    --only)
      [ $# -ge 2 ] || { echo "$PROG: --only needs a list of workloads" >&2; exit 2; }
      for w in ${2//,/ }; do
        [[ " $known " == *" $w "* ]] \
          || { echo "$PROG: --only: unknown workload '$w' (known: $known)" >&2; exit 2; }
      done
      workloads=${2//,/ }; shift 2 ;;
    *) echo "usage: $PROG [--quick] [--rounds N] [--secs S] [--compare OLD_BIN] [--io MODE] [--workers N] [--only W,...] [--ipv6]" >&2; exit 2 ;;
  esac
done
ipv6=0
[[ " $workloads " != *" iperf6 "* ]] || ipv6=1
[[ "$rounds" =~ ^[1-9][0-9]?$ ]] || { echo "$PROG: --rounds must be 1-99 (got '$rounds')" >&2; exit 2; }
[ -z "$workers" ] || [[ "$workers" =~ ^[1-9][0-9]?$ ]] \
  || { echo "$PROG: --workers must be 1-99 (got '$workers')" >&2; exit 2; }
[[ "$secs" =~ ^[1-9][0-9]?$ ]] || { echo "$PROG: --secs must be 1-99 (got '$secs')" >&2; exit 2; }
lun_mib=1024   # the LUN
rw_mib=512     # written and read back by iscsi-bench
nfs_mib=256    # the file nfs-cp moves each way
if [ $quick -eq 1 ]; then
  rounds=1
  secs=1
  lun_mib=64
  rw_mib=16
  nfs_mib=16
fi
[ "$(id -u)" -eq 0 ] || { echo "$PROG: run as root (it creates namespaces and TAPs)" >&2; exit 1; }
for tool in ip iperf3 python3 iscsi-perf nfs-cp cc socat; do
  command -v "$tool" >/dev/null || {
    echo "$PROG: needs $tool (apt-get install -y iproute2 iperf3 python3 libiscsi-bin libiscsi-dev libnfs-utils gcc socat)" >&2
    exit 1
  }
done
[ -e /usr/include/iscsi/iscsi.h ] || { echo "$PROG: needs libiscsi-dev (apt-get install -y libiscsi-dev)" >&2; exit 1; }

target=${CARGO_TARGET_DIR:-target}
if [ -n "${VMKSTACK_BIN:-}" ]; then
  bin=$VMKSTACK_BIN
  profile="given ($bin)"
elif [ $quick -eq 1 ]; then
  cargo build --quiet --bin vmkstack
  bin=$target/debug/vmkstack
  profile=dev
else
  cargo build --release --quiet --bin vmkstack
  bin=$target/release/vmkstack
  profile=release
fi
[ -x "$bin" ] || { echo "$PROG: no binary at $bin" >&2; exit 1; }
[ -z "$compare" ] || [ -x "$compare" ] || { echo "$PROG: --compare: no binary at $compare" >&2; exit 1; }

p="vmks-bst$$"
lab="$p"
esx="$p-esx"
cli="$p-client"
esx_b="$p-esxb"
cli_b="$p-clientb"
work=$(mktemp -d "/tmp/$p.XXXX")
shm="/dev/shm/$p-files"
daemon_pid=""
daemon_b_pid=""
iperf_pid=""
relay_pid=""
iperf6_pid=""
cleanup() {
  set +e
  for pid in $relay_pid $iperf_pid $iperf6_pid $daemon_pid $daemon_b_pid; do
    kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  done
  for ns in "$esx" "$cli" "$esx_b" "$cli_b"; do ip netns del "$ns" 2>/dev/null; done
  scripts/storage-lab.sh down --name "$lab" >/dev/null 2>&1 \
    || echo "$PROG: storage-lab.sh down --name $lab failed" >&2
  rm -rf "$work" "$shm"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

cc -O2 -Wall -o "$work/iscsi-bench" scripts/iscsi-bench.c -liscsi

# ---------------------------------------------------------------- the lab
echo "== storage lab (LUN ${lun_mib} MiB and export on tmpfs)"
scripts/storage-lab.sh up --name "$lab" --lun-mib "$lun_mib" --tmpfs | sed 's/^/  /'
rt="$lab-router"
st="$lab-storage"
server=198.18.100.20
server6=2001:db8:100::20
if [ $ipv6 -eq 1 ]; then
  # IPv6 beside IPv4 on the storage subnet (the storage servers themselves stay on IPv4).
  ip netns exec "$rt" sysctl -qw net.ipv6.conf.all.forwarding=1
  ip -n "$rt" addr add 2001:db8:100::1/64 dev rt-stor nodad
  ip -n "$st" addr add "$server6/64" dev stor0 nodad
  ip -n "$st" -6 route add default via 2001:db8:100::1
fi
iqn=iqn.2026-11.lab.vmkstack:storage
# One daemon: $1 binary, $2 ESX namespace, $3 client namespace, $4 third octet of its vmknic
# subnet on the router (the router is .1, the vmknic .100), $5 that of its client subnet (the
# vmknic is .1, the client .2), $6 the vmknic's TAP name in the router, $7 its `io` (empty:
# the binary's default). Sets $started_pid.
start_daemon() {
  local b=$1 e=$2 c=$3 v=$4 k=$5 tap=$6 mode=${7:-} nworkers=${8:-}
  for ns in "$e" "$c"; do
    ip netns add "$ns"
    ip -n "$ns" link set lo up
  done
  { [ -z "$mode" ] || echo "io = \"$mode\""; } > "$work/$e.toml"
  [ -z "$nworkers" ] || echo "workers = $nworkers" >> "$work/$e.toml"
  local v6="" v6k=""
  if [ $ipv6 -eq 1 ]; then
    v6="ipv6 = [\"2001:db8:$v::100/64\"]"
    v6k="ipv6 = [\"2001:db8:$k::1/64\"]"
    printf 'ipv6_default_gateway = "2001:db8:%s::1"\n' "$v" >> "$work/$e.toml"
  fi
  cat >> "$work/$e.toml" <<EOF
forwarding = true
default_gateway = "198.18.$v.1"

[[vmknic]]
name = "vmk0"
portgroup = "iSCSI_SAN"
ip = "198.18.$v.100/24"
tap = "$tap"
netns = "$rt"
$v6

[[vmknic]]
name = "vmk1"
portgroup = "Clients"
ip = "198.18.$k.1/24"
netns = "$c"
$v6k
EOF
  for port in 3260 111 20048 2049 5201; do
    printf '\n[[forward]]\nlisten = "127.0.0.1:%s"\nremote = "%s:%s"\n' "$port" "$server" "$port" \
      >> "$work/$e.toml"
  done
  [ $ipv6 -eq 0 ] || printf '\n[[forward]]\nlisten = "127.0.0.1:5206"\nremote = "[%s]:5206"\n' \
    "$server6" >> "$work/$e.toml"
  # `ip netns exec` is the background job itself, so $! is the daemon's own PID.
  ip netns exec "$e" "$b" daemon --config "$work/$e.toml" --control "$work/$e.sock" \
    --log warn < /dev/null > /dev/null 2> "$work/$e.log" &
  started_pid=$!
  for _ in $(seq 200); do
    ip -n "$rt" link show "$tap" >/dev/null 2>&1 && ip -n "$c" link show vmk1 >/dev/null 2>&1 && break
    sleep 0.05
  done
  # The router's side of the vmknic's wire and its way to the client subnet through vmkstack;
  # the client's gateway is vmkstack.
  ip -n "$rt" addr add "198.18.$v.1/24" dev "$tap"
  ip -n "$rt" link set "$tap" up
  ip -n "$rt" route add "198.18.$k.0/24" via "198.18.$v.100"
  ip -n "$c" addr add "198.18.$k.2/24" dev vmk1
  ip -n "$c" link set vmk1 up
  ip -n "$c" route add default via "198.18.$k.1"
  if [ $ipv6 -eq 1 ]; then
    ip netns exec "$rt" sysctl -qw "net.ipv6.conf.$tap.disable_ipv6=0"
    ip netns exec "$c" sysctl -qw net.ipv6.conf.vmk1.disable_ipv6=0
    ip -n "$rt" addr add "2001:db8:$v::1/64" dev "$tap" nodad
    ip -n "$rt" -6 route add "2001:db8:$k::/64" via "2001:db8:$v::100"
    ip -n "$c" addr add "2001:db8:$k::2/64" dev vmk1 nodad
    ip -n "$c" -6 route add default via "2001:db8:$k::1"
  fi
}
start_daemon "$bin" "$esx" "$cli" 1 2 vmk0 "$io" "$workers"
daemon_pid=$started_pid
if [ -n "$compare" ]; then
  start_daemon "$compare" "$esx_b" "$cli_b" 4 5 vmkb0
  daemon_b_pid=$started_pid
fi

ip netns exec "$st" iperf3 -s -B "$server" -p 5201 < /dev/null > /dev/null 2>&1 &
iperf_pid=$!
# The relay reference: socat forks a child per connection, each moving 256 KiB per read/write.
# `ip netns exec` is the background job itself, so $! is socat's own PID (its children end
# with their connections).
ip netns exec "$rt" socat -b 262144 TCP-LISTEN:5202,bind=127.0.0.1,fork,reuseaddr \
  "TCP:$server:5201" < /dev/null > /dev/null 2> "$work/socat.log" &
relay_pid=$!
if [ $ipv6 -eq 1 ]; then
  ip netns exec "$st" iperf3 -s -B "$server6" -p 5206 < /dev/null > /dev/null 2>&1 &
  iperf6_pid=$!
fi

# The paths: namespace and the storage server's address as the client sees it.
declare -A NS=([direct]=$rt [forward]=$esx [routed]=$cli [forward-B]=$esx_b [routed-B]=$cli_b
  [relay]=$rt)
declare -A HOST=([direct]=$server [forward]=127.0.0.1 [routed]=$server [forward-B]=127.0.0.1
  [routed-B]=$server [relay]=127.0.0.1)
declare -A PORT=([relay]=5202)
paths=(direct forward routed)
[ -z "$compare" ] || paths+=(forward-B routed-B)
# The relay takes part only when an iperf3 workload over IPv4 runs.
[[ " $workloads " != *" iperf "* && " $workloads " != *" iperf4 "* && " $workloads " != *" iperf_r "* ]] \
  || paths+=(relay)

for path in "${paths[@]}"; do
  [ "$path" != relay ] || continue   # (checked by its first iperf3)
  ok=0
  for _ in $(seq 50); do
    if out=$(timeout 5 ip netns exec "${NS[$path]}" iscsi-ls "iscsi://${HOST[$path]}/" 2>&1) \
      && [[ "$out" == *"$iqn"* ]]; then ok=1; break; fi
    sleep 0.2
  done
  [ $ok -eq 1 ] || { echo "$PROG: the $path path does not reach the iSCSI target: $out" >&2; cat "$work"/*.log >&2; exit 1; }
done

if [ $ipv6 -eq 1 ]; then
  # The vmknics' IPv6 addresses are usable after duplicate address detection (1 s); the
  # routed path answering means the stack's way to the server is up too.
  for path in "${paths[@]}"; do
    [[ $path == routed* ]] || continue
    ok=0
    for _ in $(seq 50); do
      ip netns exec "${NS[$path]}" ping -6 -c 1 -W 1 "$server6" >/dev/null 2>&1 && { ok=1; break; }
      sleep 0.2
    done
    [ $ok -eq 1 ] || { echo "$PROG: the $path path does not reach $server6" >&2; cat "$work"/*.log >&2; exit 1; }
  done
fi

mkdir -p "$shm"
head -c $((nfs_mib << 20)) /dev/urandom > "$shm/src.bin"

# ---------------------------------------------------------------- workloads
# Each prints its figure(s) on stdout and fails loudly (the figures must be real).
fail() { echo "$PROG: $*" >&2; exit 1; }
run_in() { local ns=$1; shift; timeout $((secs * 4 + 60)) ip netns exec "$ns" "$@"; }

# iscsi-perf prints "iops average N" at the end; N * bytes per request = throughput.
iscsi_perf() {
  local path=$1 out; shift
  out=$(run_in "${NS[$path]}" iscsi-perf -t "$secs" "$@" "iscsi://${HOST[$path]}/$iqn/1" 2>&1) \
    || fail "iscsi-perf $* on the $path path failed: $out"
  python3 -c '
import re, sys
m = re.findall(r"iops average (\d+)", sys.stdin.read())
print(m[-1] if m else "")' <<<"$out"
}
w_iscsi_read() {
  local iops
  iops=$(iscsi_perf "$1" -m 16 -b 512)
  [ -n "$iops" ] || fail "iscsi-perf printed no average on the $1 path"
  python3 -c "print('%.1f' % ($iops * 512 * 512 / 1e6))"
}
# Four sessions at once (distinct initiator names: one name and ISID would be one session).
w_iscsi_sessions() {
  local path=$1 i pids=() total=0 iops
  for i in 1 2 3 4; do
    run_in "${NS[$path]}" iscsi-perf -i "iqn.2026-11.org.vmkstack:bench-$i" -t "$secs" -m 8 \
      -b 512 "iscsi://${HOST[$path]}/$iqn/1" > "$work/sessions.$i" 2>&1 &
    pids+=($!)
  done
  for i in 1 2 3 4; do
    wait "${pids[$((i - 1))]}" || fail "iscsi-perf (session $i) on the $path path failed: $(cat "$work/sessions.$i")"
    iops=$(python3 -c '
import re, sys
m = re.findall(r"iops average (\d+)", open(sys.argv[1]).read())
print(m[-1] if m else "")' "$work/sessions.$i")
    [ -n "$iops" ] || fail "iscsi-perf (session $i) printed no average on the $path path"
    total=$((total + iops))
  done
  python3 -c "print('%.1f' % ($total * 512 * 512 / 1e6))"
}
w_iscsi_rand() {
  local iops
  iops=$(iscsi_perf "$1" -m 32 -b 8 -r)
  [ -n "$iops" ] || fail "iscsi-perf -r printed no average on the $1 path"
  echo "$iops"
}
w_iscsi_rw() {
  local out
  out=$(run_in "${NS[$1]}" "$work/iscsi-bench" "iscsi://${HOST[$1]}/$iqn/1" "$rw_mib" 16 256 2>&1) \
    || fail "iscsi-bench on the $1 path failed: $out"
  [[ "$out" == *verified=yes* ]] || fail "iscsi-bench on the $1 path: $out"
  python3 -c '
import re, sys
t = sys.stdin.read()
print(re.search(r"write_MBps=([0-9.]+)", t).group(1), re.search(r"read_MBps=([0-9.]+)", t).group(1))' <<<"$out"
}
# nfs-cp one way; prints MB/s from the wall time (mount included, as a user sees it).
nfs_copy() {
  local path=$1 from=$2 to=$3 t0 t1 out
  t0=$EPOCHREALTIME
  out=$(run_in "${NS[$path]}" nfs-cp "$from" "$to" 2>&1) || fail "nfs-cp $from $to on the $path path failed: $out"
  t1=$EPOCHREALTIME
  python3 -c "print('%.1f' % ($((nfs_mib << 20)) / ($t1 - $t0) / 1e6))"
}
# (nfs-cp creates its target exclusively: a new name each round.)
w_nfs() {
  local url="nfs://${HOST[$1]}/export/bench-$1-$round.bin" w r
  rm -f "$shm/dst.bin"
  w=$(nfs_copy "$1" "$shm/src.bin" "$url")
  r=$(nfs_copy "$1" "$url" "$shm/dst.bin")
  cmp -s "$shm/src.bin" "$shm/dst.bin" || fail "nfs-cp on the $1 path: the file read back differs"
  rm -f "/dev/shm/$lab/export/bench-$1-$round.bin"   # (memory; ganesha never sees it again)
  echo "$w $r"
}
w_iperf() {
  local out path=$1; shift
  out=$(run_in "${NS[$path]}" iperf3 -c "${HOST[$path]}" -p "${PORT[$path]:-5201}" -t "$secs" -J "$@" 2>&1) \
    || fail "iperf3 $* on the $path path failed: $out"
  python3 -c '
import json, sys
print("%.2f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"] / 1e9))' <<<"$out"
}

# iperf3 over IPv6: the forward paths through 127.0.0.1:5206, the others to the server.
w_iperf6() {
  local out path=$1 host=$server6
  [[ $path != forward* ]] || host=127.0.0.1
  out=$(run_in "${NS[$path]}" iperf3 -c "$host" -p 5206 -t "$secs" -J 2>&1) \
    || fail "iperf3 over IPv6 on the $path path failed: $out"
  python3 -c '
import json, sys
print("%.2f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"] / 1e9))' <<<"$out"
}

# Measures, in table order: name, unit, workload function, which of its figures.
measures=(iscsi_read iscsi_sessions iscsi_write iscsi_readback iscsi_rand nfs_write nfs_read tcp tcp4 tcp_r tcp6)
declare -A LABEL=(
  [iscsi_read]="iSCSI seq read, iscsi-perf (MB/s)"
  [iscsi_sessions]="iSCSI seq read, 4 sessions (MB/s)"
  [iscsi_write]="iSCSI seq write, iscsi-bench (MB/s)"
  [iscsi_readback]="iSCSI read-back, iscsi-bench (MB/s)"
  [iscsi_rand]="iSCSI 4K random read (IOPS)"
  [nfs_write]="NFS write, nfs-cp ${nfs_mib}M (MB/s)"
  [nfs_read]="NFS read, nfs-cp ${nfs_mib}M (MB/s)"
  [tcp]="TCP, iperf3 (Gbit/s)"
  [tcp4]="TCP x4, iperf3 -P 4 (Gbit/s)"
  [tcp_r]="TCP download, iperf3 -R (Gbit/s)"
  [tcp6]="TCP over IPv6, iperf3 (Gbit/s)"
)
declare -A R   # "measure,path" -> the rounds' figures
record() { R[$1,$2]="${R[$1,$2]:-} $3"; }

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
cpu0=$(cpu_ticks "$daemon_pid")
[ -z "$daemon_b_pid" ] || cpu0_b=$(cpu_ticks "$daemon_b_pid")
t_start=$SECONDS
for ((round = 0; round < rounds; round++)); do
  # Rotate the order of the paths each round.
  order=()
  for ((i = 0; i < ${#paths[@]}; i++)); do order+=("${paths[$(((i + round) % ${#paths[@]}))]}"); done
  echo "== round $((round + 1))/$rounds (${order[*]})"
  for w in $workloads; do
    for path in "${order[@]}"; do
      [[ $path != relay || $w == iperf || $w == iperf4 || $w == iperf_r ]] || continue
      # (Assigned first: a failing workload must stop the script through `set -e`.)
      case $w in
        iscsi_read) v=$(w_iscsi_read "$path"); record iscsi_read "$path" "$v" ;;
        iscsi_rw) v=$(w_iscsi_rw "$path"); record iscsi_write "$path" "${v% *}"; record iscsi_readback "$path" "${v#* }" ;;
        iscsi_rand) v=$(w_iscsi_rand "$path"); record iscsi_rand "$path" "$v" ;;
        nfs) v=$(w_nfs "$path"); record nfs_write "$path" "${v% *}"; record nfs_read "$path" "${v#* }" ;;
        iscsi_sessions) v=$(w_iscsi_sessions "$path"); record iscsi_sessions "$path" "$v" ;;
        iperf) v=$(w_iperf "$path"); record tcp "$path" "$v" ;;
        iperf4) v=$(w_iperf "$path" -P 4); record tcp4 "$path" "$v" ;;
        iperf_r) v=$(w_iperf "$path" -R); record tcp_r "$path" "$v" ;;
        iperf6) v=$(w_iperf6 "$path"); record tcp6 "$path" "$v" ;;
      esac
    done
  done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
hz=$(getconf CLK_TCK)
# "daemon: CPU seconds over the benchmark, peak RSS" of the daemon with PID $1, as $2.
daemon_line() {
  kill -0 "$1" 2>/dev/null || { cat "$work"/*.log >&2; fail "the daemon $2 died"; }
  python3 -c "print('daemon %s: %.1f CPU s over %d s of benchmark, peak RSS %.1f MiB' % ('$2', ($(cpu_ticks "$1") - $3) / $hz, $SECONDS - $t_start, $(awk '/VmHWM/ {print $2}' "/proc/$1/status") / 1024))"
}
daemons=$(daemon_line "$daemon_pid" "($bin)" "$cpu0")
[ -z "$daemon_b_pid" ] || daemons="$daemons
$(daemon_line "$daemon_b_pid" "B ($compare)" "$cpu0_b")"

# ---------------------------------------------------------------- the table
echo
echo "Storage through vmkstack, $(date -u +%Y-%m-%d) ($(nproc) cores, kernel $(uname -r), $profile build)"
echo "$rounds round(s), ${secs} s per timed test, medians; load average $load_before before, $load_after after"
{
  echo "${paths[*]}"
  for m in "${measures[@]}"; do
    [ -n "${R[$m,direct]:-}" ] || continue   # a workload left out with --only
    line=${LABEL[$m]}
    for path in "${paths[@]}"; do line+=$'\t'"${R[$m,$path]:-}"; done
    echo "$line"
  done
} | python3 -c '
import statistics, sys
lines = sys.stdin.read().splitlines()
paths = lines[0].split()
rows = [l.split("\t") for l in lines[1:] if l.strip()]
short = {"forward": "fwd", "routed": "rt", "forward-B": "fwdB", "routed-B": "rtB", "relay": "rl"}
head = ["%-36s" % "measure"] + ["%10s" % p for p in paths]
head += ["%8s" % (short[p] + "/dir") for p in paths[1:]]
print(" ".join(head))
raw = []
for label, *cols in rows:
    vals = [[float(x) for x in c.split()] for c in cols]
    med = [statistics.median(v) if v else 0.0 for v in vals]
    show = lambda x: "-" if x is None else ("%.2f" % x) if x < 100 else ("%.0f" % x)
    ratio = lambda a: "-" if a is None else ("%.2f" % (a / med[0])) if med[0] else "n/a"
    med = [m if v else None for m, v in zip(med, vals)]
    cells = ["%-36s" % label] + ["%10s" % show(m) for m in med]
    cells += ["%8s" % ratio(m) for m in med[1:]]
    print(" ".join(cells))
    raw.append((label, vals))
print()
print("every round (%s):" % " | ".join(paths))
for label, vals in raw:
    print("  %-36s %s" % (label, " | ".join(" ".join("%g" % x for x in v) for v in vals)))
'
echo "$daemons"

if [ $quick -eq 1 ]; then
  for m in "${measures[@]}"; do
    [ -n "${R[$m,direct]:-}" ] || continue
    for path in "${paths[@]}"; do
      [[ $path != relay || $m == tcp || $m == tcp4 || $m == tcp_r ]] || continue
      python3 -c "import sys; sys.exit(0 if float('${R[$m,$path]:-0}'.split()[0]) > 0 else 1)" \
        || fail "$m on the $path path measured nothing"
    done
  done
  echo "$PROG --quick: ok"
fi
