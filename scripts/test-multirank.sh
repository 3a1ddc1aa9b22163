#!/usr/bin/env bash
# Runs the MultiRankTests of the XCTest bundle under mpirun with 2 and 4 ranks; fails if either run fails.
#
# Usage: scripts/test-multirank.sh [path/to/adaptir-distPackageTests.xctest]
#   bundle : first argument, or $TEST_BUNDLE, default .build/debug/adaptir-distPackageTests.xctest
#            (build it first with `swift build --build-tests`)
#   env    : MULTIRANK_FILTER  XCTest filter, comma-separated (default: MultiRankTests and TrainerMultiRankTests)
#            MULTIRANK_TIMEOUT seconds per run before it is killed (default 300)
#            MULTIRANK_RANKS   rank counts to run (default "2 4")
#            MULTIRANK_LOGDIR  where full logs go (default .build/multirank-logs)
set -u
cd "$(dirname "$0")/.."

bundle="${1:-${TEST_BUNDLE:-.build/debug/adaptir-distPackageTests.xctest}}"
filter="${MULTIRANK_FILTER:-AdaptIRCoreTests.MultiRankTests,AdaptIRCoreTests.TrainerMultiRankTests,AdaptIRCoreTests.WatchdogMultiRankTests}"
limit="${MULTIRANK_TIMEOUT:-300}"
ranks="${MULTIRANK_RANKS:-2 4}"
logdir="${MULTIRANK_LOGDIR:-.build/multirank-logs}"

# mpirun refuses to run as root without both of these; one rank per process, OpenBLAS single-threaded.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OPENBLAS_NUM_THREADS=1

if [ ! -x "$bundle" ]; then
    echo "test-multirank: test bundle '$bundle' not found; run 'swift build --build-tests' first" >&2
    exit 2
fi
command -v mpirun >/dev/null || { echo "test-multirank: mpirun not found (apt-get install openmpi-bin)" >&2; exit 2; }
mkdir -p "$logdir"

status=0
summary=()
for n in $ranks; do
    log="$logdir/multirank-n$n.log"
    extra=()
    [ "$n" -gt "$(nproc)" ] && extra+=(--oversubscribe)
    start=$(date +%s.%N)
    # --kill-after: if mpirun ignores SIGTERM, it is killed 10 s later, so a hang cannot stall CI.
    timeout --kill-after=10 "$limit" mpirun -n "$n" "${extra[@]}" --bind-to none \
        -x OPENBLAS_NUM_THREADS "$bundle" "$filter" >"$log" 2>&1
    rc=$?
    secs=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')

    grep -E '^(Trainer)?MultiRankTests: rank ' "$log" || true
    ok=$(grep -cE "^MultiRankTests: rank [0-9]+ of $n ok" "$log")
    bad=$(grep -cE '^MultiRankTests: rank [0-9]+ of [0-9]+ FAILED' "$log")
    seen=$(grep -oE "^MultiRankTests: rank [0-9]+ of $n ok" "$log" | awk '{print $3}' | sort -u | wc -l)
    trainer_seen=$(grep -oE "^TrainerMultiRankTests: rank [0-9]+ of $n ok" "$log" | awk '{print $3}' | sort -u | wc -l)
    case "$filter" in *TrainerMultiRankTests*) ;; *) trainer_seen=$n ;; esac

    verdict=PASS
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
        verdict="FAIL (timeout after ${limit}s)"
    elif [ "$rc" -ne 0 ]; then
        verdict="FAIL (mpirun exit $rc)"
    elif [ "$bad" -ne 0 ]; then
        verdict="FAIL ($bad failed checks)"
    elif [ "$seen" -ne "$n" ] || [ "$trainer_seen" -ne "$n" ]; then
        verdict="FAIL (ok lines from only $seen (trainer: $trainer_seen) of $n ranks)"
    fi
    if [ "$verdict" != PASS ]; then
        status=1
        echo "---- last lines of $log ----"
        tail -n 40 "$log"
    fi
    summary+=("test-multirank: mpirun -n $n: $verdict — $ok ok lines from $seen/$n ranks in ${secs}s (log $log)")
done

printf '%s\n' "${summary[@]}"
[ "$status" -eq 0 ] && echo "test-multirank: all runs passed" || echo "test-multirank: FAILED"
exit "$status"
