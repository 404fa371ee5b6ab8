#!/usr/bin/env bash
# Unpacks CIFAR-10 (as JPEG files) from ../shared/data/cifar10-jpeg.tar.gz into data/cifar10-jpeg/
# (ignored by git), after checking the archive's sha256 and, afterwards, the file counts against
# ../shared/data/README.md. The first training run decodes the JPEGs once into a cache file
# (nn/data/cifar10.h). Caveat: lossy re-encodings of CIFAR-10 (see that README).
#
#   scripts/get_cifar10.sh [ARCHIVE]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

archive=${1:-../shared/data/cifar10-jpeg.tar.gz}
want_sha=edcbabb0c2779b960e1398936f7f2894757148308293ec817b49e1a390a3a4a4
out=data/cifar10-jpeg
count() { find "$out/$1" -name '*.jpg' 2>/dev/null | wc -l; }
if [ "$(count train)" = 50000 ] && [ "$(count test)" = 10000 ]; then
  log "$out: CIFAR-10 already unpacked (50,000 train / 10,000 test JPEG files)"
  exit 0
fi
[ -f "$archive" ] || { echo "get_cifar10: $archive not found (see ../shared/data/README.md)" >&2; exit 1; }
sha=$(sha256sum "$archive" | cut -d' ' -f1)
if [ "$sha" != "$want_sha" ]; then
  echo "get_cifar10: $archive has sha256 $sha, expected $want_sha (another or damaged archive)" >&2
  exit 1
fi
tmp="$out.tmp.$$"
rm -rf "$tmp" && mkdir -p "$tmp"
tar -xzf "$archive" -C "$tmp"
rm -rf "$out" && mv "$tmp" "$out"
if [ "$(count train)" != 50000 ] || [ "$(count test)" != 10000 ]; then
  echo "get_cifar10: expected 50,000 train and 10,000 test JPEG files, found $(count train) and $(count test)" >&2
  exit 1
fi
log "$out: CIFAR-10, 50,000 training and 10,000 test images (32x32 RGB JPEG, 10 classes)"
