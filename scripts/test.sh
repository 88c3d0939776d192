#!/usr/bin/env bash
# The test command (README, .ci/run): installs what the tests need on a fresh Debian machine,
# then runs the quality gates and the whole test suite.
#
#   scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages the tests use (root-only tests build namespaces and TAPs with iproute2;
# tcpdump and tshark read the captures back, tmux drives `vmkstack top`).
need=()
# traceroute, tracepath and mtr cross the stack in tests/dataplane.rs. The service tests
# (tests/packaging.rs, tests/service.rs): systemd-analyze verifies the unit (and `man` finds its
# Documentation= pages), setpriv starts the unprivileged daemon, dpkg-deb unpacks the .deb.
# Captures are read back by tcpdump and tshark, `vmkstack top` runs in tmux; prlimit lowers a
# running daemon's descriptor limit (tests/limits.rs). cargo-afl builds AFL++ with make and cc
# (scripts/fuzz-afl.sh). dnsmasq (its binary only, no service) is the DHCP server of
# tests/dhcp.rs. radvd (its binary only, run in a namespace) advertises the prefix of
# tests/ipv6_nd.rs. socat is the kernel-only relay that scripts/bench-storage.sh measures beside
# the port forward.
for pair in ip:iproute2 ping:iputils-ping iperf3:iperf3 python3:python3 traceroute:traceroute \
            tracepath:iputils-tracepath mtr:mtr-tiny systemd-analyze:systemd man:man-db \
            setpriv:util-linux prlimit:util-linux dpkg-deb:dpkg tcpdump:tcpdump tshark:tshark \
            tmux:tmux cc:gcc make:make dnsmasq:dnsmasq-base radvd:radvd socat:socat; do
  cmd=${pair%%:*} pkg=${pair##*:}
  command -v "$cmd" >/dev/null 2>&1 || need+=("$pkg")
done
# The storage lab's real servers and clients (tests/storage_lab.rs, the demo, and
# scripts/bench-storage.sh, which compiles scripts/iscsi-bench.c against libiscsi-dev); the
# Prometheus client's own parser reads the metrics back (tests/metrics.rs).
for pkg in tgt libiscsi-bin libiscsi-dev nfs-ganesha nfs-ganesha-vfs rpcbind libnfs-utils \
    python3-prometheus-client; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "test.sh: installing ${need[*]}"
    apt-get update -qq
    # Packages must not start their daemons (tgtd, rpcbind, ganesha) in the root namespace:
    # tests start their own inside namespaces. policy-rc.d exit 101 forbids service starts.
    temp_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
      chmod 755 /usr/sbin/policy-rc.d
      temp_policy=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
    if [ $temp_policy -eq 1 ]; then rm -f /usr/sbin/policy-rc.d; fi
  else
    echo "test.sh: missing ${need[*]}; run: apt-get install -y ${need[*]}" >&2
    exit 1
  fi
fi

# A python3 other than Debian's (pyenv, a venv) does not see python3-prometheus-client: give
# it the same parser from PyPI.
if ! python3 -c "import prometheus_client" >/dev/null 2>&1; then
  echo "test.sh: installing prometheus_client for $(command -v python3)"
  python3 -m pip install -q prometheus_client
fi

# rustfmt and clippy come with rustup's default profile; add them if a minimal one lacks them.
if command -v rustup >/dev/null 2>&1; then
  cargo fmt --version >/dev/null 2>&1 || rustup component add rustfmt
  cargo clippy --version >/dev/null 2>&1 || rustup component add clippy
fi

# cargo-deb builds the .deb that tests/packaging.rs unpacks (from crates.io, a few minutes
# to compile the first time).
if ! cargo deb --version >/dev/null 2>&1; then
  echo "test.sh: installing cargo-deb"
  cargo install cargo-deb --locked --version '^3.8'
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
cargo fmt --manifest-path fuzz/afl/Cargo.toml -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# The mutation-fuzz targets get 20 s each here (60 s by default): the frame, offload, control
# and config parsers also get a minute of coverage-guided fuzzing below.
VMKSTACK_FUZZ_SECS=${VMKSTACK_FUZZ_SECS:-20} cargo test --workspace --locked 2>&1 | tee "$log"
# The default TAP I/O is plain system calls; the data-plane and flood tests run again on
# io_uring (batched reads and writes), the other backend.
echo "== the data-plane tests on io = \"uring\""
VMKSTACK_TEST_IO=uring cargo test --locked --test dataplane --test floods 2>&1 | tee -a "$log"
# And again with two data-plane workers (multi-queue TAPs; the default is one; tests/workers.rs
# holds the tests of the workers themselves).
echo "== the data-plane tests with workers = 2"
VMKSTACK_TEST_WORKERS=2 cargo test --locked --test dataplane --test floods 2>&1 | tee -a "$log"

# Coverage-guided fuzzing (AFL++ through cargo afl, installed on first use): a minute per
# target, all five at once (sharing the two cores: a minute of wall time instead of three);
# fails on any crash.
echo "== scripts/fuzz-afl.sh"
AFL_JOBS=5 scripts/fuzz-afl.sh

# Whole-system smoke test of the forwarding benchmark (checks it works, not how fast).
if [ "$(id -u)" -eq 0 ]; then
  echo "== scripts/bench-forward.sh --quick"
  scripts/bench-forward.sh --quick
elif [ -n "${CI:-}" ]; then
  echo "test.sh: CI must run as root (namespaces, TAPs)" >&2
  exit 1
else
  echo "SKIPPED: scripts/bench-forward.sh --quick needs root"
fi

# Whole-system smoke test of the storage benchmark (iSCSI and NFS over three paths; checks it
# works, not how fast).
if [ "$(id -u)" -eq 0 ]; then
  echo "== scripts/bench-storage.sh --quick"
  scripts/bench-storage.sh --quick
elif [ -n "${CI:-}" ]; then
  echo "test.sh: CI must run as root (namespaces, TAPs)" >&2
  exit 1
else
  echo "SKIPPED: scripts/bench-storage.sh --quick needs root"
fi

# Short soak: forwarding, control churn and one fault of each kind (namespace, storage server,
# TAP deleted, SIGHUP reload, carrier flap, bridge) in 30 s; fails on a panic, errors, an
# unrecovered fault or RSS growth.
if [ "$(id -u)" -eq 0 ]; then
  echo "== scripts/soak.sh --duration 30 --debug"
  scripts/soak.sh --duration 30 --debug
elif [ -n "${CI:-}" ]; then
  echo "test.sh: CI must run as root (namespaces, TAPs)" >&2
  exit 1
else
  echo "SKIPPED: scripts/soak.sh --duration 30 --debug needs root"
fi

# One closing line for the whole suite.
passed=$(grep -oE 'test result: [a-zA-Z]+\. [0-9]+ passed' "$log" | awk '{s += $4} END {print s + 0}')
failed=$(grep -oE '[0-9]+ failed' "$log" | awk '{s += $1} END {print s + 0}')
echo "tests: $passed passed, $failed failed"
