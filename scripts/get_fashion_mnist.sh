#!/usr/bin/env bash
# Unpacks Fashion-MNIST from Debian's dataset-fashion-mnist package (installed on demand) into
# data/fashion-mnist/ (ignored by git) as the four raw IDX files, and checks their sizes against
# ../shared/data/README.md. nn/data/idx.h reads them.
#
#   scripts/get_fashion_mnist.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

src=/usr/share/datasets/fashion-mnist
out=data/fashion-mnist
declare -A want=([train-images-idx3-ubyte]=47040016 [train-labels-idx1-ubyte]=60008
                 [t10k-images-idx3-ubyte]=7840016 [t10k-labels-idx1-ubyte]=10008)
ensure_packages dataset-fashion-mnist
mkdir -p "$out"
for name in "${!want[@]}"; do
  file="$out/$name"
  if [ -f "$file" ] && [ "$(wc -c < "$file")" = "${want[$name]}" ]; then continue; fi
  [ -f "$src/$name.gz" ] || { echo "get_fashion_mnist: $src/$name.gz not found" >&2; exit 1; }
  zcat "$src/$name.gz" > "$file.tmp"
  bytes=$(wc -c < "$file.tmp")
  if [ "$bytes" != "${want[$name]}" ]; then
    echo "get_fashion_mnist: $name unpacked to $bytes bytes, expected ${want[$name]} (another package version?)" >&2
    rm -f "$file.tmp"
    exit 1
  fi
  mv "$file.tmp" "$file"
done
log "$out: Fashion-MNIST, 60,000 training and 10,000 test images (28x28, 10 classes)"
