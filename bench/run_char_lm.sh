#!/usr/bin/env bash
# The fidelity benchmark: the base character LM (examples/configs/lm_shakespeare_base.json) trained
# for 1500 steps by ctxpool and by PyTorch (bench/reference/char_lm.py), one after the other on the
# same machine and thread count. Prints both validation bpc and ms/step; takes ~15 minutes on 2 cores.
#
#   bench/run_char_lm.sh [STEPS]     (after scripts/setup.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${1:-1500}
threads=${CTXPOOL_NUM_THREADS:-2}
out=runs/bench_char_lm
mkdir -p "$out"
source scripts/lib.sh
ensure_packages python3-torch libopenblas0-openmp

log "ctxpool: $steps steps, $threads threads"
CTXPOOL_NUM_THREADS=$threads build/examples/ctxpool-train --config examples/configs/lm_shakespeare_base.json \
  --steps "$steps" --threads "$threads" --run-dir "$out/ctxpool" 2>/dev/null | tee "$out/ctxpool.log" | grep -E "val_bpc|model:"
ours_bpc=$(grep "final val_bpc" "$out/ctxpool.log" | awk '{print $3}')
ours_ms=$(/usr/bin/python3 -c "
import json; rows=[json.loads(l) for l in open('$out/ctxpool/metrics.jsonl')]
ms=[r['ms_per_step'] for r in rows[1:]]; print(f'{sum(ms)/len(ms):.1f}')")

log "PyTorch: $steps steps, $threads threads"
LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp /usr/bin/python3 bench/reference/char_lm.py \
  --steps "$steps" --threads "$threads" --metrics "$out/torch_metrics.jsonl" | tee "$out/torch.log" | grep -E "val_bpc|RESULT"
ref_bpc=$(grep RESULT "$out/torch.log" | sed 's/.*val_bpc=\([0-9.]*\).*/\1/')
ref_ms=$(grep RESULT "$out/torch.log" | sed 's/.*ms_per_step=\([0-9.]*\).*/\1/')

echo
echo "| run | steps | val bpc | ms/step |"
echo "|---|---:|---:|---:|"
echo "| ctxpool | $steps | $ours_bpc | $ours_ms |"
echo "| PyTorch $(/usr/bin/python3 -c 'import torch; print(torch.__version__)') | $steps | $ref_bpc | $ref_ms |"
/usr/bin/python3 -c "print(f'bpc difference (ctxpool - PyTorch): {float(\"$ours_bpc\") - float(\"$ref_bpc\"):+.4f}; speed ratio (ctxpool/PyTorch ms): {float(\"$ours_ms\")/float(\"$ref_ms\"):.2f}')"
