#!/usr/bin/env bash
# Installs the Debian packages adaptir-dist builds against, only those that are missing. Non-interactive; uses
# sudo when not root. Swift itself is not an apt package: it must already be on PATH (Swift 6.0 or later).
# Arguments name further packages (scripts/torch-venv.sh passes python3-venv when Debian's python3 lacks it).
set -euo pipefail
PKGS=(libopenmpi-dev openmpi-bin libopenblas-dev libfftw3-dev libhdf5-dev libpng-dev libjpeg-dev pkg-config gnuplot-nox "$@")
missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then missing+=("$p"); fi
done
if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if ! command -v swift >/dev/null 2>&1; then
  echo "install-deps: error: no 'swift' on PATH; install a Swift 6 toolchain (swift.org) first" >&2
  exit 1
fi
