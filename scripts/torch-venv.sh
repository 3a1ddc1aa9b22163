#!/usr/bin/env bash
# The Python environment of the weight conversion (scripts/convert_ipt_weights.py) and of its test
# (ConvertWeightsTests, scripts/ipt_reference.py): a virtual environment .cache/torch-venv with the CPU build of
# torch (pinned), numpy and h5py. Creates it when missing, then prints the absolute path of its python on stdout.
# Quick when present (a stamp file names what was installed and checked). pip's output goes to .cache/torch-venv.log.
#
#   env: TORCH_VENV           the venv's folder (default .cache/torch-venv)
#        TORCH_VENV_PYTHON    the interpreter that creates it (default python3; the pinned wheel is for CPython 3.11)
#        TORCH_PIP_ARGS       extra pip arguments, e.g. an --extra-index-url that serves torch's CPU wheels on machines
#                             whose pip does not already find torch==2.13.0+cpu
#
# Exit status 0: the python printed imports torch 2.13.0+cpu, numpy and h5py (versions pinned below). 1: it could not be made (the reason
# and the log's tail on stderr).
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${TORCH_VENV:-.cache/torch-venv}"
base_python="${TORCH_VENV_PYTHON:-python3}"
torch_version="2.13.0+cpu"
requirements=("torch==$torch_version" numpy==2.4.6 h5py==3.16.0)
stamp="$venv/.adaptir-requirements"
log="$(dirname "$venv")/$(basename "$venv").log"
mkdir -p "$(dirname "$venv")"
abs_python="$(cd "$(dirname "$venv")" && pwd)/$(basename "$venv")/bin/python"

fail() { echo "torch-venv: $*" >&2; [ -f "$log" ] && { echo "torch-venv: last lines of $log:" >&2; tail -n 15 "$log" >&2; }; exit 1; }

# Another run (a second `make test`) may be creating it right now: one at a time.
exec 9>"$venv.lock"
flock 9

if [ -x "$venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "${requirements[*]}" ]; then
    echo "$abs_python"
    exit 0
fi

command -v "$base_python" >/dev/null || fail "no '$base_python' on PATH (needed to create $venv)"
if ! "$base_python" -c "import venv, ensurepip" 2>/dev/null; then
    # Debian's python3 has no venv/ensurepip without python3-venv.
    if [ "$(command -v "$base_python")" = /usr/bin/python3 ]; then
        scripts/install-deps.sh python3-venv >&2 || fail "could not install python3-venv"
    fi
    "$base_python" -c "import venv, ensurepip" 2>/dev/null || fail "$base_python has no venv/ensurepip module"
fi

echo "torch-venv: creating $venv with ${requirements[*]} (log: $log)" >&2
start=$(date +%s)
rm -rf "$venv"
: >"$log"
"$base_python" -m venv "$venv" >>"$log" 2>&1 || fail "'$base_python -m venv $venv' failed"
# shellcheck disable=SC2086  # TORCH_PIP_ARGS is a list of arguments
"$venv/bin/python" -m pip install --no-input --progress-bar off ${TORCH_PIP_ARGS:-} "${requirements[@]}" >>"$log" 2>&1 \
    || fail "pip install ${requirements[*]} failed"
"$venv/bin/python" - "$torch_version" >>"$log" 2>&1 <<'EOF' || fail "the new venv does not import torch $torch_version, numpy and h5py"
import sys, torch, numpy, h5py
assert torch.__version__ == sys.argv[1], f"torch {torch.__version__}, wanted {sys.argv[1]}"
print("torch", torch.__version__, "numpy", numpy.__version__, "h5py", h5py.__version__)
EOF
echo "${requirements[*]}" >"$stamp"
echo "torch-venv: $venv ready in $(( $(date +%s) - start )) s ($(tail -n 1 "$log"))" >&2
echo "$abs_python"
