#!/usr/bin/env bash
# Copies the two source dependencies that Debian provides (GoogleTest's sources, nlohmann-json's
# headers) into third_party/ (ignored by git), for building on a machine without those packages,
# such as the GPU machine of scripts/gpu_check.sh:
#
#   scripts/vendor_deps.sh                   # here, with the Debian packages installed (setup.sh)
#   cmake -S . -B build -DCTXPOOL_DEPS_DIR=third_party ...   # there
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
ensure_packages googletest nlohmann-json3-dev
rm -rf third_party
mkdir -p third_party
cp -r /usr/src/googletest third_party/googletest
cp -r /usr/include/nlohmann third_party/nlohmann
log "third_party/: googletest ($(du -sh third_party/googletest | cut -f1)), nlohmann ($(du -sh third_party/nlohmann | cut -f1))"
