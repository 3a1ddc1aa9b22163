#!/usr/bin/env bash
# Installs adaptir-dist under a prefix: the binary to PREFIX/bin and the bundled data the embedded default needs (the
# pretrained backbones datasets/ipt_*_backbone.h5 and the sample photos datasets/samples) to
# PREFIX/share/adaptir-dist/datasets, where the binary finds them from any working directory (see
# Sources/AdaptIRCore/Util/DataLocations.swift). `make install PREFIX=...` builds and then runs this.
#
#   scripts/install.sh PREFIX [BINARY]     (BINARY defaults to .build/release/adaptir-dist)
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] && [ -n "$1" ] || { echo "usage: scripts/install.sh PREFIX [BINARY]" >&2; exit 2; }
prefix=$1
bin=${2:-.build/release/adaptir-dist}
[ -x "$bin" ] || { echo "install: $bin: no such executable (build it first: swift build -c release)" >&2; exit 1; }
share="$prefix/share/adaptir-dist/datasets"
install -d "$prefix/bin" "$share/samples/train" "$share/samples/test"
install -m 755 "$bin" "$prefix/bin/adaptir-dist"
install -m 644 datasets/ipt_*_backbone.h5 "$share/"
install -m 644 datasets/samples/train/*.png "$share/samples/train/"
install -m 644 datasets/samples/test/*.png "$share/samples/test/"
install -m 644 datasets/samples/SHA256SUMS "$share/samples/"
(cd "$share" && sha256sum --quiet -c samples/SHA256SUMS) || { echo "install: $share/samples: checksum mismatch" >&2; exit 1; }
echo "installed $prefix/bin/adaptir-dist and the bundled data in $share"
