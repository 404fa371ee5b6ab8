#!/usr/bin/env bash
# CPU training speed and memory against PyTorch, back to back on this machine with the same thread
# count: for each LM config, N timed AdamW steps of the same model and batch on both sides
# (bench/lm_speed.cpp and bench/reference/lm_speed.py), each in its own process under /usr/bin/time -v
# for the peak resident memory. Prints a Markdown table, then the op microbenchmarks (bench/run_ops.py).
#
#   scripts/bench.sh [THREADS] [STEPS]        (after scripts/setup.sh; defaults: 2 threads, 30 steps)
#   CTXPOOL_PROFILE=1 build/bench/lm_speed --config CONFIG --vocab 65   (where ctxpool's step goes)
#
# AVX2_ONLY=1 scripts/bench.sh measures as on an AVX2-only CPU (no AVX-512) on a machine that has
# AVX-512: OpenBLAS on both sides uses its Haswell kernels (OPENBLAS_CORETYPE), PyTorch its AVX2
# kernels (ATEN_CPU_CAPABILITY) and ctxpool OpenBLAS instead of its AVX-512 GEMM (CTXPOOL_GEMM=blas);
# ctxpool's other kernels are AVX2 already (CTXPOOL_ARCH=x86-64-v3).
#
# Run it on a quiet machine: anything else on the cores changes both sides' times.
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${1:-2}
steps=${2:-30}
warmup=5
out=runs/bench
mkdir -p "$out"
source scripts/lib.sh
ensure_packages python3-torch libopenblas0-openmp time
[ -x build/bench/lm_speed ] || { echo "bench.sh: build/bench/lm_speed is missing: run scripts/setup.sh first" >&2; exit 1; }
if [ "${AVX2_ONLY:-0}" = 1 ]; then
  export OPENBLAS_CORETYPE=Haswell ATEN_CPU_CAPABILITY=avx2 CTXPOOL_GEMM=blas
  log "AVX2 only: OPENBLAS_CORETYPE=Haswell, ATEN_CPU_CAPABILITY=avx2, CTXPOOL_GEMM=blas"
fi
torch_env=(env LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp OMP_NUM_THREADS="$threads")

# peak_rss_mib FILE: the "Maximum resident set size" /usr/bin/time -v wrote, in MiB.
peak_rss_mib() { awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2 / 1024}' "$1"; }
# field JSON KEY
field() { /usr/bin/python3 -c "import json,sys; print(json.loads(sys.argv[1]).get(sys.argv[2], ''))" "$1" "$2"; }

log "$(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; flags: $(grep -o -w -E 'avx2|avx512f|fma' /proc/cpuinfo | sort -u | tr '\n' ' ')"
log "ctxpool BLAS: $(ldd build/bench/lm_speed | grep -o -E 'lib[a-z]*blas[^ ]*' | sort -u | tr '\n' ' '); kernels compiled for: $(grep -o 'CTXPOOL_ARCH:STRING=.*' build/CMakeCache.txt | cut -d= -f2)"
log "PyTorch $(/usr/bin/python3 -c 'import torch; print(torch.__version__)') BLAS: OpenBLAS (OpenMP build, via LD_LIBRARY_PATH)"

rows=()
for config in lm_shakespeare_base lm_shakespeare_contextpool; do
  cfg=examples/configs/$config.json
  log "$config: ctxpool, $threads threads, $steps steps"
  ours=$(CTXPOOL_NUM_THREADS=$threads OMP_NUM_THREADS=$threads /usr/bin/time -v -o "$out/$config.ctxpool.time" \
    build/bench/lm_speed --config "$cfg" --vocab 65 --threads "$threads" --steps "$steps" --warmup $warmup | tail -1)
  echo "$ours"
  log "$config: PyTorch, $threads threads, $steps steps"
  theirs=$("${torch_env[@]}" /usr/bin/time -v -o "$out/$config.torch.time" /usr/bin/python3 bench/reference/lm_speed.py \
    --device cpu --attention explicit --config "$cfg" --vocab 65 --threads "$threads" --steps "$steps" --warmup $warmup | tail -1)
  echo "$theirs"
  [ "$(field "$ours" parameters)" = "$(field "$theirs" parameters)" ] \
    || { echo "bench.sh: the two models differ in size ($(field "$ours" parameters) vs $(field "$theirs" parameters))" >&2; exit 1; }
  rows+=("$(/usr/bin/python3 - "$config" "$ours" "$theirs" "$(peak_rss_mib "$out/$config.ctxpool.time")" \
    "$(peak_rss_mib "$out/$config.torch.time")" <<'EOF'
import json, sys
name, ours, theirs, rss_ours, rss_theirs = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
print(f"| {name} | {ours['parameters']} | {ours['ms_per_step']:.1f} | {theirs['ms_per_step']:.1f} | "
      f"**{ours['ms_per_step'] / theirs['ms_per_step']:.2f}** | {ours['tokens_per_s']:.0f} | {theirs['tokens_per_s']:.0f} | "
      f"{rss_ours:.0f} | {rss_theirs:.0f} | **{rss_ours / rss_theirs:.2f}** |")
EOF
)")
done

echo
echo "$(date -u +%F), $(lscpu | sed -n 's/^Model name: *//p'), $threads threads, $steps timed steps after $warmup warm-up$([ "${AVX2_ONLY:-0}" = 1 ] && echo ', AVX2 only')"
echo
echo "| config | params | ctxpool ms/step | PyTorch ms/step | ratio | ctxpool tok/s | PyTorch tok/s | ctxpool peak MiB | PyTorch peak MiB | memory ratio |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
printf '%s\n' "${rows[@]}"

if [ -x build/bench/bench_ops ]; then
  echo
  log "op microbenchmarks ($threads threads)"
  CTXPOOL_NUM_THREADS=$threads "${torch_env[@]}" /usr/bin/python3 bench/run_ops.py build/bench/bench_ops
fi
