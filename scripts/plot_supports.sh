#!/usr/bin/env bash
# Draws the PNG of a passage written by ctxpool-supports (scripts/plot_supports.py) with Debian's
# matplotlib, installed on demand.
#   scripts/plot_supports.sh docs/results/contextpool_lm_supports   # reads .json, writes .png
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
ensure_packages python3-matplotlib
/usr/bin/python3 scripts/plot_supports.py "$@"
