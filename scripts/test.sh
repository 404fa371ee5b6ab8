#!/usr/bin/env bash
# Runs the whole test suite the way CI does: set up and build (scripts/setup.sh), run ctest; run it
# again with every CPU allocation filled with NaN first (CTXPOOL_POISON=1), so that a kernel leaving
# part of its output unwritten fails a test; then build the CPU library and tests with
# AddressSanitizer + UndefinedBehaviorSanitizer and run ctest again, so that a memory error fails.
#
# Then the CUDA kernels on the CPU emulator (tests/emulator/README.md): tests/cuda built with
# AddressSanitizer against emulated CUDA, run with the threads of each block in index order and again
# in reverse (a missing barrier shows as a difference), with the allocator's cache off so that every
# tensor has its exact bounds. No GPU is needed: on a machine without one this is the only pass in
# which the CUDA code runs.
#
# Last, a short libFuzzer run (scripts/fuzz.sh, clang) of the readers of untrusted input.
#
#   scripts/test.sh              # every pass
#   EMULATE=0 scripts/test.sh    # skip the CUDA emulator pass
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
if [ "${EMULATE:-1}" != "0" ]; then
  build_tree build-emu -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCTXPOOL_CUDA_EMULATOR=ON -DCTXPOOL_SANITIZE=ON \
    -DCTXPOOL_BUILD_EXAMPLES=OFF -DCTXPOOL_BUILD_BENCH=OFF
  for order in forward reverse; do
    log "CUDA kernels on the CPU emulator (build-emu/, ASan + UBSan, threads in $order order)"
    CTXPOOL_EMU_ORDER=$order CTXPOOL_CUDA_NO_CACHING=1 ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
      UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --test-dir build-emu --output-on-failure -j "$(nproc)"
  done
fi
if [ "${FUZZ:-1}" != "0" ]; then
  FUZZ_SECONDS=${FUZZ_SECONDS:-20} scripts/fuzz.sh
fi
log "all tests passed"
