#!/usr/bin/env bash
# Runs the whole test suite the way CI does: set up and build (scripts/setup.sh), run ctest; run it
# again with every CPU allocation filled with NaN first (CTXPOOL_POISON=1), so that a kernel leaving
# part of its output unwritten fails a test; then build the CPU library and tests with
# AddressSanitizer + UndefinedBehaviorSanitizer and run ctest again, so that a memory error fails.
#
# Last, a short libFuzzer run (scripts/fuzz.sh, clang) of the readers of untrusted input.
#
#   scripts/test.sh              # every pass
#   SANITIZE=0 scripts/test.sh   # skip the sanitizer pass
#   FUZZ=0 scripts/test.sh       # skip the fuzzing pass (FUZZ_SECONDS: its length per target, default 20)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

scripts/setup.sh
log "ctest (build/)"
ctest --test-dir build --output-on-failure -j "$(nproc)"
log "ctest with poisoned allocations (build/, CTXPOOL_POISON=1)"
CTXPOOL_POISON=1 ctest --test-dir build --output-on-failure -j "$(nproc)"

if [ "${SANITIZE:-1}" != "0" ]; then
  build_tree build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCTXPOOL_SANITIZE=ON -DCTXPOOL_CUDA=OFF
  log "ctest under ASan + UBSan (build-asan/)"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir build-asan --output-on-failure -j "$(nproc)"
fi
if [ "${FUZZ:-1}" != "0" ]; then
  FUZZ_SECONDS=${FUZZ_SECONDS:-20} scripts/fuzz.sh
fi
log "all tests passed"
