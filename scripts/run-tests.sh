#!/usr/bin/env bash
# The whole test suite (what `make test` and CI run): the XCTest unit tests of a release build, then the
# multi-rank tests under mpirun on 2 and 4 ranks, then the process-level tests of the real binary (config and backbone
# refusal, killed and stalled ranks, SIGTERM, kill during a checkpoint write: scripts/test-process.sh), then hostile
# input to the binary (decompression bombs, corrupt JPEGs, small images, full disk, absurd options:
# scripts/test-hostile.sh). Ends with one
# summary line "tests: N passed, M failed, S skipped".
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p .build
log=.build/unit-tests.log

swift build -c release --build-tests ${SWIFT_FLAGS:-} || { echo "tests: 0 passed, 1 failed (build)"; exit 1; }

# ConvertWeightsTests compares the weight converter and the Swift model with PyTorch: torch (CPU build, pinned),
# numpy and h5py live in the venv .cache/torch-venv, created here when missing (scripts/torch-venv.sh). The test uses
# the python named by ADAPTIR_TORCH_PYTHON; if torch does not import there, it fails under CI=true and is skipped,
# loudly, elsewhere.
venv_start=$(date +%s)
if torch_python=$(scripts/torch-venv.sh); then
    echo "torch venv: $torch_python ($(( $(date +%s) - venv_start )) s)"
else
    torch_python="$PWD/.cache/torch-venv/bin/python"
    echo "!!!!! torch venv: scripts/torch-venv.sh failed (log .cache/torch-venv.log):" \
         "ConvertWeightsTests will fail under CI=true and be skipped otherwise" >&2
fi
export ADAPTIR_TORCH_PYTHON="$torch_python"

# XCTest only: there are no Swift Testing tests, and its "0 tests" closing line would read as an empty run.
swift test -c release --skip-build --disable-swift-testing 2>&1 | tee "$log"
unit_rc=${PIPESTATUS[0]}
# XCTest's last summary line: "Executed N tests, with [S test(s) skipped and] F failures (...)".
summary=$(grep -E "Executed [0-9]+ tests?, with " "$log" | tail -1)
unit_total=$(sed -nE 's/.*Executed ([0-9]+) tests?,.*/\1/p' <<<"$summary")
unit_failed=$(sed -nE 's/.* ([0-9]+) failures? .*/\1/p' <<<"$summary")
unit_skipped=$(sed -nE 's/.*with ([0-9]+) tests? skipped.*/\1/p' <<<"$summary")
unit_total=${unit_total:-0}; unit_failed=${unit_failed:-0}; unit_skipped=${unit_skipped:-0}
if [ "$unit_rc" -ne 0 ] && [ "$unit_failed" -eq 0 ]; then unit_failed=1; fi  # crashed before its summary

multi_failed=0
scripts/test-multirank.sh .build/release/adaptir-distPackageTests.xctest || multi_failed=1
multi_runs=$(wc -w <<<"${MULTIRANK_RANKS:-2 4}")

# run_script NAME: runs scripts/NAME.sh (one line per scenario, closing with "NAME: N passed, M failed[, S skipped]")
# and prints "PASSED FAILED SKIPPED"; no closing line, or a failing status with 0 failed, counts as one failure.
run_script() {
    local name=$1 log=.build/$1.log rc summary p f s
    scripts/$name.sh 2>&1 | tee "$log" >&2
    rc=${PIPESTATUS[0]}
    summary=$(grep -E "^$name: [0-9]+ passed, [0-9]+ failed(, [0-9]+ skipped)?\$" "$log" | tail -1)
    p=$(sed -nE "s/^$name: ([0-9]+) passed.*/\1/p" <<<"$summary")
    f=$(sed -nE 's/.* ([0-9]+) failed.*/\1/p' <<<"$summary")
    s=$(sed -nE 's/.* ([0-9]+) skipped$/\1/p' <<<"$summary")
    p=${p:-0}; f=${f:-1}; s=${s:-0}
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
    echo "$p $f $s"
}

# The process-level tests of the real binary, then its hostile-input tests.
read -r proc_passed proc_failed _ < <(run_script test-process)
read -r hostile_passed hostile_failed hostile_skipped < <(run_script test-hostile)

unit_passed=$((unit_total - unit_failed - unit_skipped))
passed=$((unit_passed + multi_runs - multi_failed + proc_passed + hostile_passed))
failed=$((unit_failed + multi_failed + proc_failed + hostile_failed))
skipped=$((unit_skipped + hostile_skipped))
echo "unit tests: $unit_passed passed, $unit_failed failed, $unit_skipped skipped"
echo "multi-rank runs (mpirun -n ${MULTIRANK_RANKS:-2 4}): $((multi_runs - multi_failed)) passed, $multi_failed failed"
echo "process tests: $proc_passed passed, $proc_failed failed"
echo "hostile-input tests: $hostile_passed passed, $hostile_failed failed, $hostile_skipped skipped"
grep -q "ConvertWeightsTests SKIPPED" "$log" && echo "!!!!! ConvertWeightsTests was SKIPPED: torch is not importable (see above)"
echo "tests: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
