#!/usr/bin/env bash
# Builds a character-level corpus under data/ (ignored by git), exactly as ../shared/data/README.md
# describes, and checks it against the documented size and sha256 prefix.
#
#   scripts/make_corpus.sh linux-doc    # data/linux-doc.txt: Debian's linux-doc-6.1 .rst files, 24 MB
#
# A different package version gives a different file: that is reported and the script fails, unless
# ALLOW_OTHER_VERSION=1 (then the file is kept and its own size and hash are printed, so results
# can say which corpus they used). Split it 90/5/5 (train_fraction 0.9, validation_fraction 0.05).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

name=${1:-}
case "$name" in
  linux-doc)
    want_bytes=24157891
    want_sha_prefix=7b1d46883f6153d1
    out=data/linux-doc.txt
    ;;
  *)
    echo "usage: scripts/make_corpus.sh linux-doc" >&2
    exit 2
    ;;
esac

if [ -f "$out" ] && [ "$(wc -c < "$out")" = "$want_bytes" ] && \
   [ "$(sha256sum "$out" | cut -c1-16)" = "$want_sha_prefix" ]; then
  log "$out is already there and checks out ($want_bytes bytes, sha256 $want_sha_prefix...)"
  exit 0
fi

ensure_packages linux-doc-6.1
docs=/usr/share/doc/linux-doc-6.1/Documentation
[ -d "$docs" ] || { echo "make_corpus: $docs not found after installing linux-doc-6.1" >&2; exit 1; }
mkdir -p data
log "concatenating $docs/**/*.rst.gz in byte-wise sorted path order into $out"
find "$docs" -name '*.rst.gz' -print0 | LC_ALL=C sort -z | xargs -0 zcat > "$out.tmp"
bytes=$(wc -c < "$out.tmp")
sha=$(sha256sum "$out.tmp" | cut -c1-16)
version=$(dpkg-query -W -f='${Version}' linux-doc-6.1 2>/dev/null || echo unknown)
if [ "$bytes" != "$want_bytes" ] || [ "$sha" != "$want_sha_prefix" ]; then
  echo "make_corpus: linux-doc-6.1 version $version gives $bytes bytes, sha256 $sha..." >&2
  echo "             the documented corpus (version 6.1.192-3) has $want_bytes bytes, sha256 $want_sha_prefix..." >&2
  if [ "${ALLOW_OTHER_VERSION:-0}" != "1" ]; then
    rm -f "$out.tmp"
    echo "make_corpus: refusing a different corpus; rerun with ALLOW_OTHER_VERSION=1 to use it anyway" >&2
    exit 1
  fi
  echo "make_corpus: ALLOW_OTHER_VERSION=1: keeping it; report its size and hash with any result" >&2
fi
mv "$out.tmp" "$out"
log "$out: $bytes bytes, sha256 $sha..., linux-doc-6.1 $version"
