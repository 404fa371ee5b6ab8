#!/usr/bin/env bash
# Fuzzes the readers of untrusted input with libFuzzer (clang): the safetensors reader, the
# checkpoint sidecar and the run configuration (tests/fuzz/). The library is built with coverage
# instrumentation and ASan + UBSan in build-fuzz/; a crash, a memory error, undefined behaviour or
# an exception other than ctxpool::Error stops the run, saves the input under build-fuzz/findings/
# and exits non-zero.
#
#   scripts/fuzz.sh                     # every target for FUZZ_SECONDS (default 60) each
#   FUZZ_SECONDS=20 scripts/fuzz.sh fuzz_config
#   build-fuzz/tests/fuzz/fuzz_config build-fuzz/findings/fuzz_config-crash-...   # replay a finding
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

seconds=${FUZZ_SECONDS:-60}
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(fuzz_safetensors fuzz_config fuzz_checkpoint)

ensure_packages clang libclang-rt-dev libomp-dev
CC=clang CXX=clang++ build_tree build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCTXPOOL_FUZZ=ON -DCTXPOOL_CUDA=OFF \
  -DCTXPOOL_MPI=OFF -DCTXPOOL_BUILD_TESTS=OFF -DCTXPOOL_BUILD_EXAMPLES=OFF -DCTXPOOL_BUILD_BENCH=OFF

mkdir -p build-fuzz/findings
for target in "${targets[@]}"; do
  # The corpus grows across runs in build-fuzz/corpus/; the seeds are added every time.
  corpus=build-fuzz/corpus/$target
  mkdir -p "$corpus"
  case $target in
    fuzz_safetensors) cp tests/fuzz/seeds/*.safetensors "$corpus"/ ;;
    fuzz_config) cp examples/configs/*.json "$corpus"/ ;;
    fuzz_checkpoint) CTXPOOL_FUZZ_SEED_OUT="$corpus/seed-sidecar.json" "build-fuzz/tests/fuzz/$target" ;;
    *) echo "fuzz.sh: unknown target '$target' (fuzz_safetensors, fuzz_config, fuzz_checkpoint)" >&2; exit 2 ;;
  esac
  log "$target for ${seconds} s"
  status=0
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    "build-fuzz/tests/fuzz/$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 -max_len=65536 \
    -print_final_stats=1 -artifact_prefix="build-fuzz/findings/$target-" "$corpus" > "build-fuzz/$target.log" 2>&1 ||
    status=$?
  if [ "$status" -ne 0 ]; then
    tail -n 60 "build-fuzz/$target.log"
    echo "fuzz.sh: $target found a failing input (saved under build-fuzz/findings/; log build-fuzz/$target.log)" >&2
    exit 1
  fi
  grep -E "stat::number_of_executed_units|^#[0-9]+ +DONE" "build-fuzz/$target.log" || true
done
log "fuzzing found nothing"
