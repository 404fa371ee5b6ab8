#!/usr/bin/env bash
# From a fresh machine to a running example: set up, build, then run the tutorials (autograd by hand,
# a custom op, an MLP that learns XOR). Later versions train a ContextPool language model here.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

scripts/setup.sh
cd build/examples
log "autograd_basics: an expression, its gradients, its graph"
./autograd_basics
log "custom_function: a user-defined op checked by finite differences"
./custom_function
log "mlp_xor: a two-layer MLP trained with hand-written SGD"
./mlp_xor
