#!/usr/bin/env bash
# Everything that needs a GPU, in one run of under 8 minutes on one H200: build with CUDA, run the
# CUDA tests (parity with the CPU, training, allocator), then time LM training (base, large and
# ContextPool LMs) against the same models in PyTorch on the same GPU and print a table (tokens/s,
# ratio, TFLOP/s, peak memory).
#
# The GPU machine has nvcc, CMake, ninja and python3 with PyTorch, but not Debian's GoogleTest or
# nlohmann-json: run scripts/vendor_deps.sh here first and carry third_party/ there. With the
# workplace's device tool:  run(command="bash scripts/gpu_check.sh", carry=["third_party"])
# Output: runs/gpu_check/ (or $OUT): the log, test results (JSON), speed.jsonl and table.md.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/gpu_check}
mkdir -p "$OUT"
exec > >(tee "$OUT/gpu_check.log") 2>&1
tee_pid=$!
step() { echo; echo "==> [$(date +%T)] $*"; }
# Every exit waits for tee, so that the log's last lines are not cut off.
finish() { exec >&- 2>&-; wait "$tee_pid" 2>/dev/null; exit "$1"; }
status=0
# One budget for the whole check (the device tool lends 15 minutes in all): each step's timeout is its
# own limit or what is left of 470 s, whichever is smaller, so the script ends within 8 minutes.
DEADLINE=$((SECONDS + 470))
limit() { local left=$((DEADLINE - SECONDS)); [ "$left" -lt "$1" ] && echo $((left > 1 ? left : 1)) || echo "$1"; }

step "device"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || { echo "no GPU"; finish 1; }
nvcc --version | tail -1
# The CPU half of the training test uses the AVX-512 sgemm when the CPU has it (no OpenBLAS there).
grep -q -m1 avx512f /proc/cpuinfo && echo "CPU: AVX-512" || echo "CPU: no AVX-512 (the CPU side of the tests is slower)"

# cuBLAS from the toolkit, else from NVIDIA's pip package (CUDA 12 wheels: nvidia/cublas/lib; CUDA 13
# wheels: nvidia/cu13/lib). ctxpool opens it with dlopen on first use (nothing links it), so
# LD_LIBRARY_PATH is all that finds it.
extra=()
if ! ls /usr/local/cuda/lib64/libcublas.so* >/dev/null 2>&1; then
  lib=$(python3 - 2>/dev/null <<'PY'
import glob, importlib, os
for package in ("nvidia.cu13", "nvidia.cublas"):
    try:
        for folder in importlib.import_module(package).__path__:
            if glob.glob(os.path.join(folder, "lib", "libcublas.so*")):
                print(os.path.join(folder, "lib")); raise SystemExit
    except ImportError:
        pass
PY
)
  if [ -n "$lib" ]; then
    export LD_LIBRARY_PATH="$lib:${LD_LIBRARY_PATH:-}"
    echo "cuBLAS from pip: $lib"
  fi
fi
# cuDNN (conv2d): the toolkit's, else NVIDIA's pip package (header and library); without it conv2d runs
# as im2col + cuBLAS and the build says "cuDNN OFF".
if ! ls /usr/local/cuda/lib64/libcudnn.so* /usr/local/cuda/lib/libcudnn.so* >/dev/null 2>&1; then
  cudnn=$(python3 -c "import nvidia.cudnn, os; print(list(nvidia.cudnn.__path__)[0])" 2>/dev/null)
  if [ -n "$cudnn" ]; then
    export LD_LIBRARY_PATH="$cudnn/lib:${LD_LIBRARY_PATH:-}"
    [ -f /usr/local/cuda/include/cudnn.h ] || extra+=(-DCTXPOOL_CUDNN_INCLUDE_DIR="$cudnn/include")
    echo "cuDNN from pip: $cudnn"
  else
    echo "cuDNN: not found (conv2d runs as im2col + cuBLAS)"
  fi
fi
# NCCL (tests/cuda/test_nccl.cpp, one rank): the toolkit's, else NVIDIA's pip package (header and library).
if ! ls /usr/local/cuda/lib64/libnccl.so* >/dev/null 2>&1; then
  nccl=$(python3 -c "import nvidia.nccl, os; print(list(nvidia.nccl.__path__)[0])" 2>/dev/null)
  if [ -n "$nccl" ]; then
    export LD_LIBRARY_PATH="$nccl/lib:${LD_LIBRARY_PATH:-}"
    [ -f /usr/local/cuda/include/nccl.h ] || extra+=(-DCTXPOOL_NCCL_INCLUDE_DIR="$nccl/include")
    echo "NCCL from pip: $nccl"
  else
    echo "NCCL: not found (the NCCL tests will skip)"
  fi
fi

step "build (build-gpu/, sm_90)"
[ -f third_party/nlohmann/json.hpp ] || echo "note: third_party/ missing (scripts/vendor_deps.sh); relying on system packages"
# CTXPOOL_CUDA=ON: a toolkit that CMake cannot find is a configure error, not a CPU-only build whose
# CUDA tests would all skip.
cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 -DCTXPOOL_CUDA=ON -DCTXPOOL_BLAS=OFF \
  -DCTXPOOL_DEPS_DIR=third_party -DCMAKE_POLICY_VERSION_MINIMUM=3.5 -DCTXPOOL_BUILD_EXAMPLES=OFF "${extra[@]}" \
  > "$OUT/configure.log" 2>&1 || { tail -30 "$OUT/configure.log"; finish 1; }
grep "ctxpool:" "$OUT/configure.log"
grep -q "CUDA backend ON" "$OUT/configure.log" || { echo "configure did not enable the CUDA backend"; finish 1; }
timeout "$(limit 300)" cmake --build build-gpu -j"$(nproc)" --target test_cuda lm_speed > "$OUT/build.log" 2>&1 \
  || { grep -E "error|Error" "$OUT/build.log" | head -40; finish 1; }
echo "built"

step "tests/cuda (parity, training, allocator, devices)"
# CTXPOOL_CUDA_SYNC=1 synchronises after every kernel, so that a fault is reported by the kernel that
# caused it, not by a later call. NCCL runs in a process of its own: a collective that hangs or aborts
# must not take the parity and training results with it.
CTXPOOL_CUDA_SYNC=1 timeout "$(limit 150)" build-gpu/tests/test_cuda --gtest_filter=-Nccl.* \
  --gtest_output=json:"$OUT/test_cuda.json" > "$OUT/test_cuda.log" 2>&1 || status=1
grep -E "^\[  (PASSED|FAILED|SKIPPED) |tests? ran" "$OUT/test_cuda.log" | sort | uniq -c | sort -rn | head -60
grep -B3 -A12 "Failure" "$OUT/test_cuda.log" | head -120
# A kernel fault leaves the CUDA context unusable, and every later test in the process fails with it:
# each failed test (the first 10) runs again alone, within 60 s of its own, its output appended to
# test_cuda.log, to tell the tests that fail by themselves from those that only followed one that did.
# A crash prints no FAILED line: then the test that was running is named.
grep -qE "tests? ran" "$OUT/test_cuda.log" ||
  echo "test_cuda ended early (crash or timeout) in: $(grep -E '^\[ RUN      \]' "$OUT/test_cuda.log" | tail -1)"
failed=$(grep -E "^\[  FAILED  \] [A-Za-z]" "$OUT/test_cuda.log" | sed -E 's/^\[  FAILED  \] ([^ ,]+).*/\1/' |
         grep '\.' | sort -u | head -10)
if [ -n "$failed" ] && [ "$(limit 60)" -ge 30 ]; then
  step "failed tests, each again in a process of its own"
  echo "==== each failed test alone ====" >> "$OUT/test_cuda.log"
  rerun_end=$((SECONDS + 60))
  for t in $failed; do
    [ $((rerun_end - SECONDS)) -lt 5 ] && { echo "  (no time left for the other reruns)"; break; }
    CTXPOOL_CUDA_SYNC=1 timeout "$(limit $((rerun_end - SECONDS)))" build-gpu/tests/test_cuda --gtest_filter="$t" \
      >> "$OUT/test_cuda.log" 2>&1
    case $? in
      0) echo "  passes alone: $t" ;;
      124) echo "  timed out alone: $t" ;;
      *) echo "  fails alone:  $t" ;;
    esac
  done
fi
step "tests/cuda: NCCL with one rank"
timeout "$(limit 40)" build-gpu/tests/test_cuda --gtest_filter=Nccl.* > "$OUT/test_nccl.log" 2>&1 || status=1
grep -E "^\[  (OK|FAILED|SKIPPED) |tests? ran|Failure" "$OUT/test_nccl.log" | head -20

step "LM training speed: ctxpool against PyTorch, float32, TF32 off"
: > "$OUT/speed.jsonl"
# The base LM, a larger one, and (last, the first to go if time runs short) the 2-layer ContextPool
# LM of examples/configs/lm_shakespeare_contextpool.json (PyTorch's side: bench/reference/context_pool.py).
configs=("base:--layers 4 --d-model 128 --heads 4 --context 128 --batch 32"
         "large:--layers 12 --d-model 512 --heads 8 --context 512 --batch 16"
         "contextpool:--config examples/configs/lm_shakespeare_contextpool.json --vocab 256")
for entry in "${configs[@]}"; do
  name=${entry%%:*}; args=${entry#*:}
  for run in ctxpool explicit sdpa; do
    if [ $run = ctxpool ]; then
      line=$(timeout "$(limit 60)" build-gpu/bench/lm_speed --device cuda $args --steps 30 --warmup 5 2>&1 | grep '^{' | tail -1)
    else
      line=$(timeout "$(limit 60)" python3 bench/reference/lm_speed.py --device cuda --attention $run $args --steps 30 --warmup 5 2>&1 | grep '^{' | tail -1)
    fi
    echo "$name $run: $line"
    python3 -c "import json,sys; d=json.loads(sys.argv[1]); d['config']='$name'; print(json.dumps(d))" "$line" \
      >> "$OUT/speed.jsonl" 2>/dev/null || status=1
  done
done

step "table"
python3 - "$OUT/speed.jsonl" <<'PY' | tee "$OUT/table.md"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
# (PyTorch's side counts no FLOPs for a model read from a config, such as the ContextPool LM: "-")
tflops = lambda r: f"{r['tflops']:.2f}" if r.get("tflops") else "-"
print("| model | framework | tokens/s | ms/step | vs PyTorch sdpa | vs PyTorch explicit | TFLOP/s | peak MiB |")
print("|---|---|---:|---:|---:|---:|---:|---:|")
for r in rows:
    ref = {x["framework"]: x["tokens_per_s"] for x in rows if x["config"] == r["config"]}
    ratio = lambda k: f"{r['tokens_per_s'] / ref[k]:.2f}" if k in ref else "-"
    model = f"{r['config']}: L={r['layers']} d={r['d_model']} T={r['context']} B={r['batch']}"
    print(f"| {model} | {r['framework']} | {r['tokens_per_s']:.0f} | {r['ms_per_step']:.1f} | {ratio('pytorch-sdpa')} "
          f"| {ratio('pytorch-explicit')} | {tflops(r)} | {r.get('peak_mib', float('nan')):.0f} |")
print()
print("peak MiB: ctxpool counts its allocator's blocks (requests rounded up to 512 B below 1 MiB, to 2 MiB above;")
print("cuBLAS's own workspace not included), PyTorch its max_memory_allocated (requests rounded to 512 B).")
PY
step "done (status $status)"
finish $status
