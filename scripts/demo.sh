#!/usr/bin/env bash
# `vmkstack demo`: the ESX article replayed on the built-in storage lab, with the article's own
# addresses inside private network namespaces, step by step:
#   1. vmknics iSCSI_SAN 192.168.1.100/24 and VMotion 192.168.2.100/24, default gateway
#      192.168.0.254 -> "Unable to set VMkernel gateway ...";
#   2. esxcfg-vmknic -l, esxcfg-route -l;
#   3. the fix: esxcfg-route 192.168.1.1, esxcfg-route -a 192.168.100.0/24 192.168.1.1;
#   4. vmkping to the storage server;
#   5. probe iscsi (with a 2 s read test of the LUN), probe nfs;
#   6. forwards, then the real iscsi-ls / iscsi-inq / nfs-ls going through vmkstack;
#   7. the modern answer to "only one default gateway": a vmotion netstack (ESXi 6.0+) with
#      its own gateway and routing table beside the storage stack;
#   8. teardown (also on failure or Ctrl-C).
# Run as root. Nothing is configured in the root namespace; nothing is left behind.
set -euo pipefail
cd "$(dirname "$0")/.."

bin=${VMKSTACK_BIN:-${CARGO_TARGET_DIR:-target}/release/vmkstack}
name=vmks-demo
esx="$name-esx"
vmo_gw="$name-vmo-gw"
vmo_dst="$name-vmo-dst"
state=$(mktemp -d /tmp/vmks-demo.XXXX)
daemon_pid=""

if [ "$(id -u)" -ne 0 ]; then
  echo "vmkstack demo: run as root (it creates network namespaces and TAP devices):" >&2
  echo "  sudo $bin demo" >&2
  exit 1
fi
[ -x "$bin" ] || { echo "vmkstack demo: no binary at $bin (cargo build --release)" >&2; exit 1; }

bold() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
say() { printf '%s\n' "$*"; }
# Shows a command as an admin would type it, then runs it (failures are shown, not fatal).
run() {
  printf '\n[root@esx1 ~]# %s\n' "$*"
  local cmd=$1; shift
  case "$cmd" in
    esxcfg-*|vmkping|esxcli) "$bin" "$cmd" "$@" 2>&1 || true ;;
    vmkstack) "$bin" "$@" 2>&1 || true ;;
    *) ip netns exec "$esx" "$cmd" "$@" 2>&1 || true ;;
  esac
}

cleanup() {
  set +e
  if [ -n "$daemon_pid" ]; then
    kill -TERM "$daemon_pid" 2>/dev/null
    wait "$daemon_pid" 2>/dev/null
  fi
  ip netns del "$esx" 2>/dev/null
  ip netns del "$vmo_gw" 2>/dev/null
  ip netns del "$vmo_dst" 2>/dev/null
  scripts/storage-lab.sh down --name "$name" >/dev/null 2>&1
  rm -rf "$state"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bold "Building the lab: a storage server (tgtd iSCSI target, nfs-ganesha NFS export) behind a Linux router"
scripts/storage-lab.sh up --name "$name" --prefix 192.168
ip netns add "$esx"
ip -n "$esx" link set lo up

bold "1. The ESX host starts with the article's configuration"
cat > "$state/vmkstack.toml" <<EOF
default_gateway = "192.168.0.254"

[[vmknic]]
name = "vmk0"
portgroup = "iSCSI_SAN"
ip = "192.168.1.100"
netmask = "255.255.255.0"
netns = "$name-router"

[[vmknic]]
name = "vmk1"
portgroup = "VMotion"
ip = "192.168.2.100"
netmask = "255.255.255.0"
EOF
sed 's/^/    /' "$state/vmkstack.toml"
say ""
say "[root@esx1 ~]# vmkstack daemon --config vmkstack.toml &"
ip netns exec "$esx" "$bin" daemon --config "$state/vmkstack.toml" --control "$state/ctl.sock" \
  --log warn < /dev/null > /dev/null 2> "$state/daemon.err" &
daemon_pid=$!
export VMKSTACK_CONTROL="$state/ctl.sock"
for _ in $(seq 100); do [ -S "$state/ctl.sock" ] && break; sleep 0.05; done
sleep 0.2
sed 's/^/    /' "$state/daemon.err"
scripts/storage-lab.sh attach vmk0 --name "$name" >/dev/null

bold "2. What ESX shows"
run esxcfg-vmknic -l
run esxcfg-route -l
say ""
say "The default gateway 192.168.0.254 is on neither vmknic subnet: the storage subnet is"
say "unreachable."
run vmkping -c 1 192.168.100.20

bold "3. The fix, as in the article"
run esxcfg-route 192.168.1.1
run esxcfg-route -a 192.168.100.0/24 192.168.1.1
run esxcfg-route -l

bold "4. vmkping from the VMkernel stack to the storage server"
run vmkping -c 3 -i 0.2 192.168.100.20

bold "5. Storage probes from the stack itself"
run vmkstack probe iscsi 192.168.100.20 --read-test 2
run vmkstack probe nfs 192.168.100.20

bold "6. Real iSCSI and NFS clients through vmkstack (port forwards in the ESX namespace)"
for p in 3260 111 20048 2049; do
  run vmkstack forward 127.0.0.1:$p 192.168.100.20:$p
done
run vmkstack forward list
run iscsi-ls iscsi://127.0.0.1:3260/
run iscsi-inq iscsi://127.0.0.1:3260/iqn.2026-11.lab.vmkstack:storage/1
run iscsi-readcapacity16 iscsi://127.0.0.1:3260/iqn.2026-11.lab.vmkstack:storage/1
run nfs-ls nfs://127.0.0.1/export
run nfs-cat nfs://127.0.0.1/export/hello.txt
run vmkstack forward list

bold "7. The modern answer: a vmotion netstack with its own default gateway"
say "Since ESXi 6.0 a second default gateway lives in a second netstack, with its own routing"
say "table and ARP table. Here a vMotion network behind its own router (192.168.50.1), to a"
say "vMotion host on 192.168.60.0/24, beside the storage stack's gateway 192.168.1.1."
ip netns add "$vmo_gw"
ip netns add "$vmo_dst"
ip -n "$vmo_gw" link set lo up
ip -n "$vmo_dst" link set lo up
ip -n "$vmo_gw" link add r-vmo type veth peer name eth0 netns "$vmo_dst"
ip -n "$vmo_gw" addr add 192.168.60.1/24 dev r-vmo
ip -n "$vmo_gw" link set r-vmo up
ip -n "$vmo_dst" addr add 192.168.60.10/24 dev eth0
ip -n "$vmo_dst" link set eth0 up
ip -n "$vmo_dst" route add default via 192.168.60.1
ip netns exec "$vmo_gw" sysctl -qw net.ipv4.ip_forward=1
run esxcli network ip netstack add -N vmotion
run esxcfg-vmknic -a -i 192.168.50.100 -n 255.255.255.0 -N vmotion vMotion-L3
# The new vmknic's wire: its TAP's kernel side goes to the vMotion router.
ip -n "$esx" link set vmk2 netns "$vmo_gw"
ip -n "$vmo_gw" addr add 192.168.50.1/24 dev vmk2
ip -n "$vmo_gw" link set vmk2 up
run esxcli network ip netstack list
run esxcfg-route -N vmotion 192.168.50.1
run esxcfg-route -N vmotion -l
run esxcfg-route -l
say ""
say "Two default gateways, one per netstack: vmkping -S picks the netstack."
run vmkping -S vmotion -c 3 -i 0.2 192.168.60.10
run vmkping -c 1 192.168.60.10
run esxcli network ip neighbor list -N vmotion

bold "8. Teardown"
cleanup
trap - EXIT
say "Namespaces, TAP devices, daemons and files removed."
