#!/usr/bin/env bash
# Draws a grid's plots (scripts/plot_grid.py) with Debian's matplotlib, installed on demand.
#   scripts/plot_grid.sh contextpool_lm [docs/results]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
ensure_packages python3-matplotlib
/usr/bin/python3 scripts/plot_grid.py "$@"
