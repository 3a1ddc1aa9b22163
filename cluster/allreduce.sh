#!/usr/bin/env bash
# `adaptir-dist bench allreduce` at several rank counts: the trainer's in-place float allreduce at the AdaptIR
# gradient sizes and the full fine-tuning sizes (the synthetic full-gradient allreduce). Writes OUT/allreduce.md.
#
# Usage: cluster/allreduce.sh                      (2, 4, 8 ranks on this machine)
#        RANKS="8 16" MPIRUN_ARGS="--hostfile cluster/hosts --map-by node" cluster/allreduce.sh
# Environment: RANKS ["2 4 8"]  BENCH_ARGS extra options of `bench allreduce` (--sizes, --repeats, --max-seconds)
#              MPIRUN [mpirun] the launcher (e.g. "cluster/netns-nodes.sh mpirun")  MPIRUN_ARGS extra mpirun options  OUT [runs/allreduce]  BIN [.build/release/adaptir-dist]
# Each rank allocates one buffer of the largest size (476 MB by default): 8 ranks need about 4 GB.
set -euo pipefail
cd "$(dirname "$0")/.."
RANKS="${RANKS:-2 4 8}"
BENCH_ARGS="${BENCH_ARGS:-}"
MPIRUN_ARGS="${MPIRUN_ARGS:-}"
MPIRUN="${MPIRUN:-mpirun}"
OUT="${OUT:-runs/allreduce}"
BIN="${BIN:-.build/release/adaptir-dist}"
[ -x "$BIN" ] || { echo "allreduce: $BIN not found; run 'swift build -c release' first" >&2; exit 2; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mkdir -p "$OUT"
md="$OUT/allreduce.md"
{
    echo "## bench allreduce: $(date -u +%Y-%m-%d) on $(hostname), $(nproc) cores, $(mpirun --version 2>/dev/null | head -1)"
    echo
    echo "\`$MPIRUN -n P --bind-to none${MPIRUN_ARGS:+ $MPIRUN_ARGS}\` (+ \`--oversubscribe\` when P > $(nproc) cores${MPIRUN_ARGS:+, not added with MPIRUN_ARGS}) \`adaptir-dist bench allreduce${BENCH_ARGS:+ $BENCH_ARGS}\`"
} >"$md"
for p in $RANKS; do
    extra=()
    [ -z "$MPIRUN_ARGS" ] && [ "$p" -gt "$(nproc)" ] && extra+=(--oversubscribe)
    log="$OUT/p$p.txt"
    # shellcheck disable=SC2086  # word lists on purpose
    $MPIRUN -n "$p" "${extra[@]}" --bind-to none -x OPENBLAS_NUM_THREADS=1 $MPIRUN_ARGS "$BIN" bench allreduce $BENCH_ARGS \
        >"$log" 2>&1 || { echo "allreduce: p=$p failed; see $log" >&2; tail -5 "$log" >&2; exit 1; }
    { echo; echo "**$p ranks**: $(head -1 "$log")"; echo; sed -n '/^| size/,$p' "$log"; } >>"$md"
    echo "allreduce: p=$p done" >&2
done
cat "$md"
