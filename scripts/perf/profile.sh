#!/usr/bin/env bash
# Where a training step's time goes outside the GEMM kernels, and how much of it runs outside the thread pool:
# `perf record -g` of `adaptir-dist bench step` (frame pointers; the release build keeps them), summarised by
# scripts/perf/step_profile.py. Arguments go to `bench step` (default: preset small, batch 16, 2 threads).
#
#   scripts/perf/profile.sh [bench step options]      e.g. --preset small --threads 1 --steps 15
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${BIN:-.build/release/adaptir-dist}
[ -x "$BIN" ] || { echo "perf/profile: $BIN not found; run 'swift build -c release' first" >&2; exit 2; }
command -v perf >/dev/null || { echo "perf/profile: perf not found (Debian: linux-perf)" >&2; exit 2; }
args=("$@"); [ ${#args[@]} -gt 0 ] || args=(--preset small --batch 16 --threads 2 --warmup 2 --steps 15)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
perf record -q -g -o "$tmp/perf.data" "$BIN" bench step "${args[@]}" 2>&1 | grep -E '^step|^  (forward|backward)'
perf script -i "$tmp/perf.data" -F tid,ip,sym 2>/dev/null >"$tmp/perf.txt"
python3 scripts/perf/step_profile.py "$tmp/perf.txt"
