#!/usr/bin/env bash
# Coverage-guided fuzzing with AFL++ (cargo afl, stable Rust): each target of fuzz/afl/ runs
# for AFL_SECS seconds from its seed corpus in fuzz/corpus/<target>/, AFL_JOBS at a time (2 by
# default: one per core). Fails when any target finds a crash, and copies the crashing inputs to
# target/afl/crashes/<target>/: add them to fuzz/corpus/<target>/ (the mutation-fuzz tests
# of `cargo test` run every corpus file, so each becomes a regression case), then fix.
#
#   scripts/fuzz-afl.sh                  # every target, 60 s each
#   AFL_SECS=600 scripts/fuzz-afl.sh engine ipv4
#
# Installs cargo-afl (which builds AFL++ for this rustc) when it is missing. See fuzz/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

secs=${AFL_SECS:-60}
all=(engine ipv4 offload control config)
targets=("${@:-${all[@]}}")
for t in "${targets[@]}"; do
  case " ${all[*]} " in
    *" $t "*) ;;
    *) echo "fuzz-afl.sh: unknown target '$t' (targets: ${all[*]})" >&2; exit 2 ;;
  esac
done

if ! cargo afl --version >/dev/null 2>&1; then
  echo "fuzz-afl.sh: installing cargo-afl (builds AFL++; a few minutes)"
  cargo install cargo-afl --locked --quiet
fi
# cargo-afl builds AFL++ at install; after a rustc upgrade it needs a build for that rustc
# (refused, harmlessly, when there is one already).
cargo afl config --build >/dev/null 2>&1 || true

# No UI, no CPU binding (the machine is shared), crashes recorded even where core dumps
# go to a handler, and no prompt to tune the CPU governor.
export AFL_NO_UI=1 AFL_NO_AFFINITY=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1
export AFL_QUIET=1 AFL_NO_WARN_INSTABILITY=1
# Without `--cfg fuzzing`: under it smoltcp skips checksum checks, which the targets compare
# our parsers against.
export AFL_NO_CFG_FUZZING=1

export CARGO_TARGET_DIR=$root/target/afl
(cd fuzz/afl && cargo afl build --release --locked --quiet)
bin=$CARGO_TARGET_DIR/release

work=$(mktemp -d /tmp/vmkstack-afl.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

run() {
  local t=$1
  # -V: stop after that many seconds; -t: 1 s per input (a hang is reported, not a crash).
  cargo afl fuzz -i "fuzz/corpus/$t" -o "$work/$t" -V "$secs" -t 1000 -- "$bin/$t" \
    >"$work/$t.log" 2>&1
}

jobs_at_once=${AFL_JOBS:-2}
for t in "${targets[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs_at_once" ]; do wait -n || true; done
  echo "fuzz-afl.sh: $t for ${secs}s"
  run "$t" &
  pids+=($!)
done
status=0
for p in "${pids[@]}"; do wait "$p" || status=1; done
pids=()

stat() { awk -F' *: *' -v k="$2" '$1 == k { print $2 }' "$work/$1/default/fuzzer_stats"; }
printf '%-8s %12s %10s %8s %8s %8s %7s\n' target execs exec/s corpus edges crashes hangs
failed=0
for t in "${targets[@]}"; do
  if [ ! -f "$work/$t/default/fuzzer_stats" ]; then
    echo "fuzz-afl.sh: $t did not run; its log:" >&2
    tail -20 "$work/$t.log" >&2
    failed=1
    continue
  fi
  crashes=$(find "$work/$t/default/crashes" -type f -name 'id:*' | wc -l)
  hangs=$(find "$work/$t/default/hangs" -type f -name 'id:*' | wc -l)
  printf '%-8s %12s %10s %8s %8s %8s %7s\n' "$t" "$(stat "$t" execs_done)" \
    "$(stat "$t" execs_per_sec)" "$(stat "$t" corpus_count)" "$(stat "$t" edges_found)" \
    "$crashes" "$hangs"
  if [ "$crashes" -gt 0 ]; then
    keep=$root/target/afl/crashes/$t
    mkdir -p "$keep"
    cp "$work/$t/default/crashes"/id:* "$keep/"
    echo "fuzz-afl.sh: $t: $crashes crashing input(s) kept in $keep;" \
      "replay one with: $bin/$t < FILE" >&2
    failed=1
  fi
done
[ "$status" -eq 0 ] || { echo "fuzz-afl.sh: afl-fuzz failed (see above)" >&2; failed=1; }
exit "$failed"
