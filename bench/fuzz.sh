#!/usr/bin/env bash
# Coverage-guided fuzzing (cargo fuzz / libFuzzer) of the importers and decoders: builds the
# targets in fuzz/, writes seed corpora generated in code (fuzz/src/bin/seeds.rs: the project's
# fixture builders, nothing binary checked in), then runs each target for SECONDS, one after the
# other in one process each (libFuzzer's default: one worker, like -jobs=1), and prints per target
# the executions, executions/s, coverage (cov = edges, ft = features), corpus size and crashes.
# Not part of CI (test.sh never calls it).
#   bench/fuzz.sh [SECONDS] [TARGET...]      default 60 s each, all targets
#   env: FUZZ_SECONDS (instead of the argument), SANITIZER=address|none (default address),
#        FUZZ_ARGS (extra libFuzzer flags), FUZZ_CORPUS (default fuzz/corpus; grows run to run)
#
# Stable toolchain: cargo fuzz passes nightly-only flags (-Z sanitizer=address,
# -Cpasses=sancov-module, …), which a stable rustc accepts only with RUSTC_BOOTSTRAP=1, set
# below. That is enough on rustc 1.95: ASan and the libFuzzer coverage instrumentation both work.
# If ASan ever fails to link on some machine, run with SANITIZER=none (coverage-guided still,
# but memory errors in C dependencies would go unnoticed; the Rust code is checked by
# debug assertions, which are on: overflow checks included).
source "$(dirname "$0")/lib.sh"
SECS=${1:-${FUZZ_SECONDS:-60}}
shift || true
ALL=(tar_import gvariant_objects image_reference oci_layer)
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=("${ALL[@]}")
SANITIZER=${SANITIZER:-address}
CORPUS=${FUZZ_CORPUS:-$ROOT/fuzz/corpus}
SEEDS=$BENCH_DIR/fuzz-seeds
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR=$ROOT/fuzz/target
# LeakSanitizer checks after every input; glibc's record of a thread-local destructor, made
# when a long-lived worker thread first touches a thread-local, is not a leak (see the file).
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$ROOT/fuzz/lsan.supp}

command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
cd "$ROOT/fuzz"
FUZZ_FLAGS=(-O --debug-assertions --sanitizer "$SANITIZER")
# Builds every binary of the package, the seed generator included (instrumented too: one build).
cargo fuzz build "${FUZZ_FLAGS[@]}"
rm -rf "$SEEDS"
"$CARGO_TARGET_DIR/x86_64-unknown-linux-gnu/release/seeds" "$SEEDS"

printf '%-18s %6s %10s %8s %7s %7s %6s %7s\n' target secs runs exec/s cov ft corpus crashes
for t in "${TARGETS[@]}"; do
  mkdir -p "$CORPUS/$t" "$ROOT/fuzz/artifacts/$t"
  log=$BENCH_DIR/fuzz-$t.log
  before=$(find "$ROOT/fuzz/artifacts/$t" -type f | wc -l)
  set +e
  # -rss_limit_mb: the importers' own memory ceilings are 256 MiB-class; 2 GiB means a leak.
  cargo fuzz run "${FUZZ_FLAGS[@]}" "$t" "$CORPUS/$t" "$SEEDS/$t" -- \
    -max_total_time="$SECS" -print_final_stats=1 -timeout=30 -rss_limit_mb=2048 \
    ${FUZZ_ARGS:-} >"$log" 2>&1
  rc=$?
  set -e
  after=$(find "$ROOT/fuzz/artifacts/$t" -type f | wc -l)
  last=$(grep -E '^#[0-9]+' "$log" | grep 'cov:' | tail -1 || true)
  cov=$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$last")
  ft=$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$last")
  corp=$(sed -nE 's/.* corp: ([0-9]+).*/\1/p' <<<"$last")
  runs=$(sed -nE 's/^stat::number_of_executed_units: +([0-9]+)/\1/p' "$log")
  eps=$(sed -nE 's/^stat::average_exec_per_sec: +([0-9]+)/\1/p' "$log")
  printf '%-18s %6s %10s %8s %7s %7s %6s %7s\n' "$t" "$SECS" "${runs:-?}" "${eps:-?}" \
    "${cov:-?}" "${ft:-?}" "${corp:-?}" "$((after - before))"
  if [ "$rc" -ne 0 ]; then
    echo "  $t exited $rc; log: $log" >&2
    grep -E 'panicked|ERROR: libFuzzer|SUMMARY|Test unit written' "$log" | head -5 | sed 's/^/  /' >&2
  fi
done
