#!/usr/bin/env bash
# Storage lab: a real iSCSI target (tgt) and NFS server (nfs-ganesha) behind a Linux router, in
# network namespaces of their own, for vmkstack to reach over a routed subnet:
#
#   vmkstack vmknic (TAP) ──── <NAME>-router ──────────── <NAME>-storage
#                       A.B.1.1/24 (attach)   A.B.100.1/24    A.B.100.20/24
#                                              ip_forward=1    tgtd :3260, ganesha :2049/:20048,
#                                                              rpcbind :111
#
#   scripts/storage-lab.sh up     [--name NAME] [--prefix A.B]   build it (idempotent)
#                                 [--lun-mib N] [--tmpfs] [--ipv6]
#   scripts/storage-lab.sh attach DEV [--name NAME]              address + up DEV in the router
#   scripts/storage-lab.sh status [--name NAME]                  exit 0 if up, 1 if not
#   scripts/storage-lab.sh down   [--name NAME]                  remove everything (always safe)
#
# STORAGE_LAB_FAIL_AFTER=namespaces|tgtd|services makes `up` fail on purpose after that step
# (tests use it to check that a failed `up` leaves nothing behind).
#
# NAME (default vmks-lab) must start with "vmks"; the namespaces are NAME-storage and NAME-router
# and the state (PID files, logs, configs, the LUN file and the NFS export) lives in /tmp/NAME.
# --prefix is 198.18 (default, RFC 2544 range) or 192.168 (the article's addresses, for the demo,
# only inside these private namespaces); nothing else is accepted. --lun-mib sizes the LUN (default
# 64, at most 4096). --tmpfs keeps the LUN file and the NFS export in /dev/shm/NAME (memory, as
# benchmarks want: no disk writeback behind the servers) instead of the state dir; `down` removes
# that directory too.
#
# --ipv6 (opt-in) makes the servers listen on IPv6 only: both subnets also get 2001:db8::/32
# prefixes (vmknic side 2001:db8:1::/64, router 2001:db8:1::1; storage 2001:db8:100::/64, router
# 2001:db8:100::1, server 2001:db8:100::20), the router forwards IPv6, tgtd's portal is
# [2001:db8:100::20]:3260 and ganesha binds 2001:db8:100::20 (rpcbind listens on both families).
# The IPv4 addresses stay (nothing listens on them). Without --ipv6 nothing IPv6 is configured.
#
# The router's vmknic-side interface does not exist after `up`: vmkstack creates it, as a TAP
# whose kernel side it moves into NAME-router (vmknic config `netns = "NAME-router"`); then
# `attach DEV` gives it A.B.1.1/24 and brings it up.
#
# Lab rules (DESIGN.md, "Lab conventions"): nothing is configured in the root namespace; every
# daemon is recorded by its own PID in the state dir and stopped by that PID only. tgtd gets a
# private control port (`-C N`, /run/tgtd/socket.N is a path shared by all namespaces); rpcbind
# and ganesha run in a private mount namespace with a tmpfs on /run and /var/lib/nfs, so that
# /run/rpcbind.sock and ganesha's state never meet the host's or another lab's.
set -euo pipefail

PROG=storage-lab.sh
IQN="iqn.2026-11.lab.vmkstack:storage"
PACKAGES=(tgt libiscsi-bin nfs-ganesha nfs-ganesha-vfs rpcbind libnfs-utils)
LUN_MIB=64
STOP_TIMEOUT=10   # seconds between SIGTERM and SIGKILL
READY_TIMEOUT=20  # seconds for the services to answer after `up`

die() { echo "$PROG: $*" >&2; exit 1; }
say() { echo "$PROG: $*"; }

usage() {
  cat >&2 <<'EOF'
usage: storage-lab.sh up     [--name NAME] [--prefix 198.18|192.168] [--lun-mib N] [--tmpfs]
                             [--ipv6]
       storage-lab.sh attach DEV [--name NAME]
       storage-lab.sh status [--name NAME]
       storage-lab.sh down   [--name NAME]
EOF
  exit 2
}

# ---------------------------------------------------------------- arguments
cmd=""
dev=""
NAME=vmks-lab
PREFIX=""
prefix_set=0
TMPFS=0
IPV6=""
while [ $# -gt 0 ]; do
  case "$1" in
    --name) [ $# -ge 2 ] || usage; NAME=$2; shift 2 ;;
    --name=*) NAME=${1#--name=}; shift ;;
    --prefix) [ $# -ge 2 ] || usage; PREFIX=$2; prefix_set=1; shift 2 ;;
    --prefix=*) PREFIX=${1#--prefix=}; prefix_set=1; shift ;;
    --lun-mib) [ $# -ge 2 ] || usage; LUN_MIB=$2; shift 2 ;;
    --lun-mib=*) LUN_MIB=${1#--lun-mib=}; shift ;;
    --tmpfs) TMPFS=1; shift ;;
    --ipv6) IPV6=1; shift ;;
    -h|--help) usage ;;
    -*) echo "$PROG: unknown option $1" >&2; usage ;;
    *)
      if [ -z "$cmd" ]; then cmd=$1
      elif [ "$cmd" = attach ] && [ -z "$dev" ]; then dev=$1
      else echo "$PROG: unexpected argument $1" >&2; usage
      fi
      shift ;;
  esac
done
case "$cmd" in up|status|down|attach) ;; *) usage ;; esac
[ "$cmd" != attach ] || [ -n "$dev" ] || usage
[[ "$dev" =~ ^[A-Za-z0-9_.-]{0,15}$ ]] || die "invalid device name '$dev'"

[[ "$NAME" =~ ^vmks[A-Za-z0-9_-]*$ ]] || die "--name must start with 'vmks' and use only letters, digits, '-' and '_' (got '$NAME')"
[ ${#NAME} -le 40 ] || die "--name is too long (at most 40 characters)"
# (Other commands accept --prefix and ignore it: the running lab's prefix is in its state dir.)
if [ $prefix_set -eq 1 ]; then
  case "$PREFIX" in
    198.18|192.168) ;;
    *) die "--prefix must be 198.18 or 192.168 (got '$PREFIX')" ;;
  esac
fi

[[ "$LUN_MIB" =~ ^[0-9]{1,4}$ ]] && [ "$LUN_MIB" -ge 1 ] && [ "$LUN_MIB" -le 4096 ] \
  || die "--lun-mib must be a number of MiB from 1 to 4096 (got '$LUN_MIB')"

NS_ST="$NAME-storage"
NS_RT="$NAME-router"
STATE="/tmp/$NAME"
ENVF="$STATE/lab.env"
# Where the LUN file and the export live (the state dir, or /dev/shm/NAME with --tmpfs).
DATA="$STATE"
[ $TMPFS -eq 0 ] || DATA="/dev/shm/$NAME"

[ "$(id -u)" -eq 0 ] || [ "$cmd" = up ] || die "run as root (it manages network namespaces)"

# ---------------------------------------------------------------- helpers
ns_exists() { ip netns list 2>/dev/null | awk '{print $1}' | grep -qx -- "$1"; }
in_st() { ip netns exec "$NS_ST" "$@"; }
in_rt() { ip netns exec "$NS_RT" "$@"; }

load_env() {
  # shellcheck disable=SC1090
  [ -f "$ENVF" ] && . "$ENVF"
  PREFIX=${PREFIX:-198.18}
  DATA=${DATA:-$STATE}
  LUN_MIB=${LUN_MIB:-64}
  IPV6=${IPV6:-0}
  set_addrs
}

set_addrs() {
  ST_NET="$PREFIX.100.0/24"
  RT_ST_IP="$PREFIX.100.1"
  SERVER="$PREFIX.100.20"
  VMK_NET="$PREFIX.1.0/24"
  RT_VMK_IP="$PREFIX.1.1"
  # IPv6 mode: fixed 2001:db8::/32 prefixes. SERVER_HOST is the server in iSCSI URLs and the
  # portal ([ADDR]), NFS_HOST in NFS URLs (libnfs 4.0 takes an IPv6 host without brackets).
  ST_NET6=2001:db8:100::/64
  RT_ST_IP6=2001:db8:100::1
  SERVER6=2001:db8:100::20
  VMK_NET6=2001:db8:1::/64
  RT_VMK_IP6=2001:db8:1::1
  if [ "${IPV6:-0}" = 1 ]; then
    SERVER_HOST="[$SERVER6]"; NFS_HOST=$SERVER6; LISTEN=$SERVER6
  else
    SERVER_HOST=$SERVER; NFS_HOST=$SERVER; LISTEN=$SERVER
  fi
}

read_pid() { if [ -f "$STATE/$1.pid" ]; then tr -dc 0-9 < "$STATE/$1.pid"; fi; }

# Whether PID runs (a zombie counts as gone: it has exited and only waits to be reaped) and is
# the program we started (its comm), so that a recycled PID is never signalled.
pid_alive() {
  local pid=$1 comm=$2 stat
  [ -n "$pid" ] || return 1
  stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
  local c ppid
  c=$(cat "/proc/$pid/comm" 2>/dev/null) || return 1
  if [ "$c" != "$comm" ]; then
    # Still our launcher (ip netns exec / unshare / sh / nsenter) before it execs the daemon?
    # Only a child of this very shell counts (a failed `up` cleaning up right after a start).
    case "$c" in ip|unshare|sh|nsenter) ;; *) return 1 ;; esac
    ppid=$(awk '$1 == "PPid:" {print $2}' "/proc/$pid/status" 2>/dev/null)
    [ "$ppid" = "$$" ] || return 1
  fi
  stat=${stat##*) }
  [ "${stat%% *}" != Z ] && [ "${stat%% *}" != X ]
}

# stop_pid NAME COMM: SIGTERM the PID recorded in NAME.pid, wait up to STOP_TIMEOUT, SIGKILL.
stop_pid() {
  local name=$1 comm=$2 pid i
  pid=$(read_pid "$name")
  [ -n "$pid" ] || return 0
  if pid_alive "$pid" "$comm"; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do
      pid_alive "$pid" "$comm" || break
      sleep 0.1
    done
    if pid_alive "$pid" "$comm"; then
      say "$name (pid $pid) ignored SIGTERM for ${STOP_TIMEOUT}s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      for ((i = 0; i < 50; i++)); do pid_alive "$pid" "$comm" || break; sleep 0.1; done
    fi
  fi
  pid_alive "$pid" "$comm" && { echo "$PROG: cannot stop $name (pid $pid)" >&2; return 1; }
  say "stopped $comm (pid $pid)"
  rm -f "$STATE/$name.pid"
}

# wait_exec NAME COMM: waits until the PID in NAME.pid has exec'd COMM (or dies: error).
wait_exec() {
  local pid i
  pid=$(read_pid "$1")
  for ((i = 0; i < 100; i++)); do
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ] && return 0
    pid_alive "$pid" "$2" || die "$1 exited at start (see $STATE/$1.log)"
    sleep 0.05
  done
  die "$1 (pid $pid) did not start $2 within 5 s"
}

maybe_fail() {
  [ "${STORAGE_LAB_FAIL_AFTER:-}" != "$1" ] || die "failing on purpose after step '$1' (STORAGE_LAB_FAIL_AFTER)"
}

tgtadm_c() { in_st tgtadm -C "$CTL_PORT" --lld iscsi "$@"; }

# ---------------------------------------------------------------- packages
missing_packages() {
  local p out=()
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || out+=("$p")
  done
  echo "${out[@]}"
}

# Names of the storage daemons running anywhere on the host, as "pid:comm" lines.
storage_daemons() {
  local d c
  for d in /proc/[0-9]*; do
    c=$(cat "$d/comm" 2>/dev/null) || continue
    case "$c" in tgtd|rpcbind|ganesha.nfsd|rpc.statd) echo "${d#/proc/}:$c" ;; esac
  done | sort
}

install_packages() {
  local missing
  missing=$(missing_packages)
  [ -z "$missing" ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "$PROG: missing Debian packages: $missing. Run as root:" >&2
    echo "  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y ${PACKAGES[*]}" >&2
    echo "then run this script as root (it manages network namespaces)." >&2
    exit 1
  fi
  say "installing Debian packages: $missing"
  local before after policy_added=0 apt=(apt-get -o DPkg::Lock::Timeout=300 -q)
  before=$(storage_daemons)
  # Keep the packages' maintainer scripts from starting tgt, rpcbind or ganesha in the root
  # namespace (invoke-rc.d asks policy-rc.d; exit 101 = action forbidden). Only a policy that
  # this script added is removed again.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\n# temporary, from vmkstack storage-lab.sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    policy_added=1
  fi
  local rc=0
  if ! DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y "${PACKAGES[@]}" >"/tmp/$NAME-apt.log" 2>&1; then
    say "apt-get install failed; running apt-get update once and retrying"
    { "${apt[@]}" update && DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y "${PACKAGES[@]}"; } \
      >>"/tmp/$NAME-apt.log" 2>&1 || rc=$?
  fi
  [ $policy_added -eq 1 ] && rm -f /usr/sbin/policy-rc.d
  if [ $rc -ne 0 ]; then
    tail -n 20 "/tmp/$NAME-apt.log" >&2
    rm -f "/tmp/$NAME-apt.log"
    die "package installation failed"
  fi
  rm -f "/tmp/$NAME-apt.log"
  after=$(storage_daemons)
  local new
  new=$(comm -13 <(echo "$before") <(echo "$after") | grep . || true)
  if [ -n "$new" ]; then
    echo "$PROG: note: package installation started these daemons in the root namespace" \
      "(not started by this script, so left alone): $(echo "$new" | tr '\n' ' ')" >&2
  fi
  [ -z "$(missing_packages)" ] || die "packages still missing after install: $(missing_packages)"
}

# ---------------------------------------------------------------- checks
# (Output captured first: `cmd | grep -q` can fail under pipefail when grep exits early.)
check_iscsi() {
  local out
  out=$(timeout 5 ip netns exec "$NS_RT" iscsi-ls "iscsi://$SERVER_HOST/" 2>/dev/null) || return 1
  [[ "$out" == *"$IQN"* ]]
}
check_nfs() {
  local out
  out=$(timeout 5 ip netns exec "$NS_RT" nfs-ls "nfs://$NFS_HOST/export" 2>/dev/null) || return 1
  [[ "$out" == *hello.txt* ]]
}

# status_report: prints, returns 0 when everything runs and answers.
status_report() {
  local ok=0 n pid comm
  echo "storage lab '$NAME' (state dir $STATE)"
  if [ ! -f "$ENVF" ]; then
    echo "  not up (no $ENVF)"
    for n in "$NS_ST" "$NS_RT"; do ns_exists "$n" && echo "  stale namespace $n exists (run: $0 down --name $NAME)"; done
    return 1
  fi
  load_env
  for n in "$NS_ST" "$NS_RT"; do
    if ns_exists "$n"; then echo "  namespace $n: present"; else echo "  namespace $n: MISSING"; ok=1; fi
  done
  echo "  storage subnet $ST_NET: router $RT_ST_IP, server $SERVER"
  if [ "$IPV6" = 1 ]; then
    echo "  IPv6: storage subnet $ST_NET6: router $RT_ST_IP6, server $SERVER6 (servers listen on IPv6 only)"
  fi
  local vmkdev
  vmkdev=$(ip -n "$NS_RT" -o -4 addr show 2>/dev/null | awk -v a="$RT_VMK_IP/24" '$4 == a {print $2}' | head -n1)
  echo "  vmknic subnet $VMK_NET: router $RT_VMK_IP on ${vmkdev:-<not attached yet: $0 attach DEV --name $NAME>}"
  [ "$IPV6" != 1 ] || echo "  IPv6: vmknic subnet $VMK_NET6: router $RT_VMK_IP6"
  for n in tgtd:tgtd rpcbind:rpcbind ganesha:ganesha.nfsd; do
    pid=$(read_pid "${n%%:*}"); comm=${n#*:}
    if pid_alive "$pid" "$comm"; then echo "  ${n%%:*}: running, pid $pid"
    else echo "  ${n%%:*}: NOT running${pid:+ (pid $pid)}"; ok=1; fi
  done
  echo "  tgtd control port: -C $CTL_PORT"
  if ns_exists "$NS_RT" && check_iscsi; then echo "  iSCSI: iscsi://$SERVER_HOST/$IQN/1 answers ($LUN_MIB MiB LUN in $DATA)"
  else echo "  iSCSI: iscsi://$SERVER_HOST/ does NOT answer"; ok=1; fi
  if ns_exists "$NS_RT" && check_nfs; then echo "  NFS: nfs://$NFS_HOST/export answers (NFSv3, NFSv4)"
  else echo "  NFS: nfs://$NFS_HOST/export does NOT answer"; ok=1; fi
  return $ok
}

# ---------------------------------------------------------------- down
do_down() {
  set +e
  local rc=0
  if [ -f "$ENVF" ]; then
    load_env
    local tpid
    tpid=$(read_pid tgtd)
    if [ -n "${CTL_PORT:-}" ] && pid_alive "$tpid" tgtd && ns_exists "$NS_ST"; then
      # tgtd ignores SIGTERM while targets exist (and tgt 1.0.85 in the foreground ignores it
      # even without targets): offline, unbind, delete LUN and target, then ask it to exit
      # through its control socket; stop_pid's SIGTERM/SIGKILL only runs if that did not work.
      tgtadm_c --mode target --op update --tid 1 --name state --value offline >/dev/null 2>&1
      tgtadm_c --mode target --op unbind --tid 1 --initiator-address ALL >/dev/null 2>&1
      tgtadm_c --mode logicalunit --op delete --tid 1 --lun 1 >/dev/null 2>&1
      tgtadm_c --mode target --op delete --force --tid 1 >/dev/null 2>&1
      in_st tgtadm -C "$CTL_PORT" --mode system --op delete >/dev/null 2>&1
      local i
      for ((i = 0; i < 50; i++)); do pid_alive "$tpid" tgtd || break; sleep 0.1; done
    fi
    stop_pid ganesha ganesha.nfsd || rc=1
    stop_pid rpcbind rpcbind || rc=1
    stop_pid tgtd tgtd || rc=1
    if [ -n "${CTL_PORT:-}" ]; then
      rm -f "/run/tgtd/socket.$CTL_PORT" "/run/tgtd/socket.$CTL_PORT.lock"
    fi
  fi
  local n
  for n in "$NS_ST" "$NS_RT"; do
    if ns_exists "$n"; then
      ip netns del "$n" || { echo "$PROG: cannot delete namespace $n" >&2; rc=1; }
    fi
  done
  if [ $rc -eq 0 ]; then
    # The data dir outside the state dir can only be /dev/shm/NAME (--tmpfs).
    [ "$DATA" != "/dev/shm/$NAME" ] || rm -rf "$DATA"
    rm -rf "$STATE"
    say "lab '$NAME' is down"
  else
    echo "$PROG: lab '$NAME' is not fully down; state kept in $STATE" >&2
  fi
  return $rc
}

# ---------------------------------------------------------------- up
pick_ctl_port() {
  # From a hash of NAME, in 1000..31999 (tgtd accepts 0..32767); skip ports whose socket
  # exists (another tgtd).
  local h port i
  h=$(printf '%s' "$NAME" | cksum | awk '{print $1}')
  port=$((1000 + h % 31000))
  for ((i = 0; i < 100; i++)); do
    if [ ! -e "/run/tgtd/socket.$port" ] && [ ! -e "/run/tgtd/socket.$port.lock" ]; then
      echo "$port"; return 0
    fi
    port=$((port + 1))
  done
  return 1
}

write_ganesha_conf() {
  local plugins
  plugins=$(dirname "$(dpkg -L nfs-ganesha-vfs | grep '/libfsalvfs\.so$' | head -n1)")
  cat > "$STATE/ganesha.conf" <<EOF
# nfs-ganesha for vmkstack storage lab '$NAME' (generated by storage-lab.sh)
NFS_CORE_PARAM {
    Protocols = 3, 4;
    NFS_Port = 2049;
    MNT_Port = 20048;
    Bind_addr = $LISTEN;
    Enable_NLM = false;
    Enable_RQUOTA = false;
    Enable_UDP = false;
    # NFSv3 clients mount the Pseudo path too: nfs://$NFS_HOST/export for v3 and v4 alike.
    Mount_Path_Pseudo = true;
    Plugins_Dir = "$plugins";
}
NFSv4 {
    Graceless = true;
    RecoveryRoot = "$STATE/ganesha-recovery";
}
EXPORT_DEFAULTS {
    SecType = sys;
}
EXPORT {
    Export_Id = 1;
    Path = "$DATA/export";
    Pseudo = /export;
    Access_Type = RW;
    Squash = No_Root_Squash;
    Protocols = 3, 4;
    Transports = TCP;
    FSAL {
        Name = VFS;
    }
}
LOG {
    Default_Log_Level = EVENT;
}
EOF
}

up_failed() {
  local rc=$?
  trap - EXIT INT TERM
  [ $rc -ne 0 ] || rc=1
  echo "$PROG: up failed; removing everything it started" >&2
  local f
  for f in tgtd.log rpcbind.log ganesha.stderr ganesha.log; do
    if [ -s "$STATE/$f" ]; then echo "--- $f (last lines)" >&2; tail -n 15 "$STATE/$f" >&2; fi
  done
  do_down >&2 || true
  exit $rc
}

do_up() {
  install_packages
  [ "$(id -u)" -eq 0 ] || die "run as root (it manages network namespaces)"
  for t in ip unshare nsenter timeout tgtd tgtadm rpcbind ganesha.nfsd iscsi-ls nfs-ls; do
    command -v "$t" >/dev/null || die "needs $t"
  done

  if [ -f "$ENVF" ]; then
    local want=$PREFIX want6=${IPV6:-0}
    load_env
    if [ -n "$want" ] && [ "$want" != "$PREFIX" ]; then
      die "lab '$NAME' is already up with --prefix $PREFIX; run '$0 down --name $NAME' first"
    fi
    if [ "$want6" != "$IPV6" ]; then
      die "lab '$NAME' is already up $([ "$IPV6" = 1 ] && echo with || echo without) --ipv6; run '$0 down --name $NAME' first"
    fi
    if status_report; then
      say "lab '$NAME' is already up"
      return 0
    fi
    die "lab '$NAME' is partly up (see above); run '$0 down --name $NAME' first"
  fi
  for n in "$NS_ST" "$NS_RT"; do
    ns_exists "$n" && die "namespace $n exists but $ENVF does not; run '$0 down --name $NAME' first"
  done
  [ ! -e "$STATE" ] || die "$STATE exists but is not a lab's state; remove it or pick another --name"
  [ "$DATA" = "$STATE" ] || [ ! -e "$DATA" ] || die "$DATA exists but is not a lab's data; remove it or pick another --name"

  PREFIX=${PREFIX:-198.18}
  IPV6=${IPV6:-0}
  set_addrs
  local t0=$SECONDS
  # From here on, any failure removes everything (namespaces, daemons, state dir).
  trap up_failed EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  mkdir -p "$STATE"
  chmod 755 "$STATE"
  CTL_PORT=$(pick_ctl_port) || die "no free tgtd control port"
  cat > "$ENVF" <<EOF
NAME=$NAME
PREFIX=$PREFIX
CTL_PORT=$CTL_PORT
DATA=$DATA
LUN_MIB=$LUN_MIB
IPV6=$IPV6
EOF

  # Namespaces: NAME-router <-> NAME-storage over a veth pair created inside the router ns.
  ip netns add "$NS_RT"
  ip netns add "$NS_ST"
  ip -n "$NS_RT" link set lo up
  ip -n "$NS_ST" link set lo up
  ip -n "$NS_RT" link add rt-stor type veth peer name stor0 netns "$NS_ST"
  ip -n "$NS_RT" addr add "$RT_ST_IP/24" dev rt-stor
  ip -n "$NS_ST" addr add "$SERVER/24" dev stor0
  ip -n "$NS_RT" link set rt-stor up
  ip -n "$NS_ST" link set stor0 up
  ip -n "$NS_ST" route add default via "$RT_ST_IP"
  in_rt sysctl -qw net.ipv4.ip_forward=1
  if [ "$IPV6" = 1 ]; then
    # nodad: the servers bind these addresses at once (a tentative address cannot be bound).
    in_rt sysctl -qw net.ipv6.conf.all.forwarding=1
    ip -n "$NS_RT" addr add "$RT_ST_IP6/64" dev rt-stor nodad
    ip -n "$NS_ST" addr add "$SERVER6/64" dev stor0 nodad
    ip -n "$NS_ST" -6 route add default via "$RT_ST_IP6"
  fi
  maybe_fail namespaces

  # Export directory and LUN file.
  mkdir -p "$DATA/export" "$STATE/ganesha-recovery"
  printf 'hello from the vmkstack lab\n' > "$DATA/export/hello.txt"
  head -c $((1024 * 1024)) /dev/urandom > "$DATA/export/data.bin"
  chmod 777 "$DATA/export"
  truncate -s "$((LUN_MIB * 1024 * 1024))" "$DATA/lun0.img"

  # iSCSI: tgtd, foreground, PID = $! (ip netns exec execs it).
  ip netns exec "$NS_ST" tgtd -f -C "$CTL_PORT" --iscsi "portal=$SERVER_HOST:3260" \
    </dev/null >"$STATE/tgtd.log" 2>&1 &
  echo $! > "$STATE/tgtd.pid"
  wait_exec tgtd tgtd
  local i
  for ((i = 0; i < 100; i++)); do
    tgtadm_c --mode sys --op show >/dev/null 2>&1 && break
    pid_alive "$(read_pid tgtd)" tgtd || die "tgtd exited (see $STATE/tgtd.log)"
    sleep 0.1
  done
  tgtadm_c --mode target --op new --tid 1 --targetname "$IQN"
  tgtadm_c --mode logicalunit --op new --tid 1 --lun 1 --backing-store "$DATA/lun0.img"
  tgtadm_c --mode target --op bind --tid 1 --initiator-address ALL
  maybe_fail tgtd

  # NFS: rpcbind in a private mount namespace (own tmpfs /run and /var/lib/nfs), then ganesha
  # entering the same mount namespace; both foreground, PID = $!.
  write_ganesha_conf
  ip netns exec "$NS_ST" unshare --mount --propagation private -- /bin/sh -c '
      set -e
      mount -t tmpfs -o mode=0755,size=16m vmks-run /run
      mount -t tmpfs -o mode=0755,size=16m vmks-nfs /var/lib/nfs
      mkdir -p /run/rpcbind /run/ganesha /run/lock /var/lib/nfs/ganesha
      chown _rpc /run/rpcbind 2>/dev/null || true
      exec rpcbind -f' </dev/null >"$STATE/rpcbind.log" 2>&1 &
  echo $! > "$STATE/rpcbind.pid"
  wait_exec rpcbind rpcbind
  local rpid
  rpid=$(read_pid rpcbind)
  for ((i = 0; i < 100; i++)); do
    nsenter -t "$rpid" -m -n rpcinfo -p 127.0.0.1 >/dev/null 2>&1 && break
    pid_alive "$rpid" rpcbind || die "rpcbind exited (see $STATE/rpcbind.log)"
    sleep 0.1
  done
  nsenter -t "$rpid" -m -n rpcinfo -p 127.0.0.1 >/dev/null 2>&1 \
    || die "rpcbind does not answer rpcinfo within 10 s (see $STATE/rpcbind.log)"
  nsenter -t "$rpid" -m -n -- ganesha.nfsd -F -f "$STATE/ganesha.conf" -L "$STATE/ganesha.log" \
    -p /run/ganesha/ganesha.pid -N NIV_EVENT </dev/null >"$STATE/ganesha.stderr" 2>&1 &
  echo $! > "$STATE/ganesha.pid"
  wait_exec ganesha ganesha.nfsd
  maybe_fail services

  # Wait until both services answer from the router namespace.
  local deadline=$((SECONDS + READY_TIMEOUT)) iscsi_ok=1 nfs_ok=1
  while [ $SECONDS -lt $deadline ]; do
    [ $iscsi_ok -eq 0 ] || { check_iscsi && iscsi_ok=0; } || true
    [ $nfs_ok -eq 0 ] || { check_nfs && nfs_ok=0; } || true
    [ $iscsi_ok -eq 0 ] && [ $nfs_ok -eq 0 ] && break
    pid_alive "$(read_pid tgtd)" tgtd || die "tgtd exited (see $STATE/tgtd.log)"
    pid_alive "$(read_pid ganesha)" ganesha.nfsd || die "ganesha exited (see $STATE/ganesha.log)"
    sleep 0.5
  done
  [ $iscsi_ok -eq 0 ] || die "iSCSI target did not answer iscsi-ls from $NS_RT within ${READY_TIMEOUT}s"
  [ $nfs_ok -eq 0 ] || die "NFS export did not answer nfs-ls from $NS_RT within ${READY_TIMEOUT}s"
  trap - EXIT INT TERM

  cat <<EOF
storage lab '$NAME' is up ($((SECONDS - t0)) s)
  namespaces : $NS_RT (Linux router, ip_forward=1), $NS_ST (servers)
  storage    : $ST_NET   router $RT_ST_IP (rt-stor), server $SERVER (stor0, default via $RT_ST_IP)
$([ "$IPV6" != 1 ] || printf '%s\n' "  IPv6       : $ST_NET6   router $RT_ST_IP6, server $SERVER6 (default via $RT_ST_IP6)" \
  "               vmknic side $VMK_NET6, router $RT_VMK_IP6 (after attach); servers on IPv6 only")
  vmknic side: $VMK_NET   router $RT_VMK_IP: put the vmknic's TAP in netns "$NS_RT", then
               $0 attach <DEV> --name $NAME
  iSCSI      : tgtd pid $(read_pid tgtd) (-C $CTL_PORT), $SERVER_HOST:3260, target $IQN,
               LUN 1 = $LUN_MIB MiB file $DATA/lun0.img, bound to ALL initiators
               iscsi://$SERVER_HOST/$IQN/1
  NFS        : ganesha pid $(read_pid ganesha), rpcbind pid $(read_pid rpcbind); NFSv3+v4 on $LISTEN port 2049 (mount 20048)
               export /export = $DATA/export (hello.txt, data.bin), RW, no_root_squash
               nfs://$NFS_HOST/export
  stop with  : $0 down --name $NAME
EOF
}

# ---------------------------------------------------------------- attach
do_attach() {
  [ -f "$ENVF" ] || die "lab '$NAME' is not up"
  load_env
  ns_exists "$NS_RT" || die "namespace $NS_RT is missing"
  local i
  for ((i = 0; i < 100; i++)); do
    ip -n "$NS_RT" link show dev "$dev" >/dev/null 2>&1 && break
    sleep 0.1
  done
  ip -n "$NS_RT" link show dev "$dev" >/dev/null 2>&1 \
    || die "device $dev did not appear in namespace $NS_RT within 10 s"
  ip -n "$NS_RT" addr replace "$RT_VMK_IP/24" dev "$dev"
  if [ "$IPV6" = 1 ]; then
    ip netns exec "$NS_RT" sysctl -qw "net.ipv6.conf.$dev.disable_ipv6=0"
    ip -n "$NS_RT" addr replace "$RT_VMK_IP6/64" dev "$dev" nodad
  fi
  ip -n "$NS_RT" link set dev "$dev" up
  say "$dev in $NS_RT: $RT_VMK_IP/24, up (vmknic subnet $VMK_NET; gateway for the vmknic: $RT_VMK_IP)"
  [ "$IPV6" != 1 ] || say "$dev in $NS_RT: $RT_VMK_IP6/64 (vmknic subnet $VMK_NET6; IPv6 gateway for the vmknic: $RT_VMK_IP6)"
}

case "$cmd" in
  up) do_up ;;
  status) status_report ;;
  down) do_down ;;
  attach) do_attach ;;
esac
