#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine for ctxpool and builds it. Idempotent: packages already installed
# are not reinstalled, an existing build directory is reused, and ninja rebuilds only what changed.
#
#   scripts/setup.sh            # Release build in build/
#   BUILD_DIR=out scripts/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

ensure_packages cmake g++ ninja-build pkg-config libgtest-dev nlohmann-json3-dev libopenblas-openmp-dev libjpeg62-turbo-dev \
  libopenmpi-dev openmpi-bin
# CTXPOOL_CUDA: AUTO builds the CUDA backend when the toolkit is found; CI sets ON so that a CUDA
# compile error fails it instead of silently giving a CPU-only build.
build_tree "${BUILD_DIR:-build}" -DCMAKE_BUILD_TYPE=Release -DCTXPOOL_CUDA="${CTXPOOL_CUDA:-AUTO}"
# Fashion-MNIST from its Debian package, unpacked into data/ (the image tests use it; ~55 MB).
bash scripts/get_fashion_mnist.sh
