#!/usr/bin/env bash
# From a fresh machine to a trained model: set up and build, train a small character-level
# transformer LM for a few minutes on the default corpus (with a progress bar), then print its
# validation bits per character and a generated sample. Running it again reuses the finished run.
#
# Default corpus: ../shared/data/tinyshakespeare.txt when present, otherwise the English quotations
# of Debian's `fortunes` package (installed on demand). CORPUS=path/to/text overrides both.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

scripts/setup.sh

corpus=${CORPUS:-../shared/data/tinyshakespeare.txt}
if [ ! -f "$corpus" ]; then
  ensure_packages fortunes
  corpus=runs/data/fortunes.txt
  if [ ! -s "$corpus" ]; then
    mkdir -p runs/data
    # Plain-text fortune files only: skip the binary .dat indexes and the .u8 links.
    find /usr/share/games/fortunes -type f ! -name '*.dat' ! -name '*.u8' -print0 | LC_ALL=C sort -z \
      | xargs -0 cat > "$corpus.tmp"
    mv "$corpus.tmp" "$corpus"
  fi
fi
log "corpus: $corpus ($(wc -c < "$corpus") bytes)"

run_dir=runs/quickstart-$(basename "$corpus" .txt)
log "training a 2-layer transformer LM (examples/configs/lm_quickstart.json) into $run_dir"
build/examples/ctxpool-train --config examples/configs/lm_quickstart.json --data "$corpus" \
  --run-dir "$run_dir" --resume

log "a sample from the trained model (ctxpool-generate)"
build/examples/ctxpool-generate --checkpoint "$run_dir" --prompt "$(head -c 40 "$corpus" | head -n 1)" \
  --length 400 --temperature 0.8 --top-k 20 --seed 1
