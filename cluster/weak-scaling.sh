#!/usr/bin/env bash
# Weak scaling of `adaptir-dist train`: a fixed batch per rank (global batch = BATCH x p) at p = 1, 2, 4, 8 ranks,
# for --method adaptir (only the adapter gradient is allreduced) and --method full (every backbone gradient: the
# full fine-tuning allreduce, for comparison). Each run's train.csv (rank 0's timings) gives, after WARMUP steps:
# s/step, patches/s, weak-scaling efficiency t(p0)/t(p) against the first rank count, the allreduce time per step
# and its fraction of the step, and the bytes reduced per step. Writes OUT/weak-scaling.md and prints it.
#
# Usage (from anywhere; build first with `swift build -c release`):
#   cluster/weak-scaling.sh
#   RANKS="2 4 8 16" MPIRUN_ARGS="--hostfile cluster/hosts --map-by slot" cluster/weak-scaling.sh     # several nodes
#
# Environment (defaults in brackets):
#   PRESET [small]  BATCH [8] patches per rank per step  STEPS [40]  WARMUP [5] steps left out of the averages
#   RANKS ["1 2 4 8"]  RANKS_FULL [RANKS] for --method full (preset ipt full needs ~2.7 GiB per rank)
#   METHODS ["adaptir full"]  THREADS [1] OpenBLAS threads per rank
#   OUT [runs/weak-scaling]  BIN [.build/release/adaptir-dist]
#   MPIRUN [mpirun] the launcher, e.g. "cluster/netns-nodes.sh mpirun" (simulated nodes)
#   MPIRUN_ARGS extra mpirun options (hostfile, placement, MCA)   TRAIN_ARGS extra `train` options (--train-data, --backbone)
#   REPORT_ONLY=1 re-makes OUT/weak-scaling.md from OUT/rows.tsv of an earlier run without running anything
# With no TRAIN_ARGS the runs use the bundled photos and the bundled small backbone (the embedded default's data).
# More ranks than cores here gets --oversubscribe; with MPIRUN_ARGS set (a cluster) nothing is added but
# --bind-to none and -x OPENBLAS_NUM_THREADS.
set -euo pipefail
cd "$(dirname "$0")/.."

PRESET="${PRESET:-small}"
BATCH="${BATCH:-8}"
STEPS="${STEPS:-40}"
WARMUP="${WARMUP:-5}"
RANKS="${RANKS:-1 2 4 8}"
RANKS_FULL="${RANKS_FULL:-$RANKS}"
METHODS="${METHODS:-adaptir full}"
THREADS="${THREADS:-1}"
OUT="${OUT:-runs/weak-scaling}"
BIN="${BIN:-.build/release/adaptir-dist}"
MPIRUN_ARGS="${MPIRUN_ARGS:-}"
MPIRUN="${MPIRUN:-mpirun}"
TRAIN_ARGS="${TRAIN_ARGS:-}"

[ -x "$BIN" ] || { echo "weak-scaling: $BIN not found; run 'swift build -c release' first" >&2; exit 2; }
command -v "${MPIRUN%% *}" >/dev/null || { echo "weak-scaling: mpirun not found (apt-get install openmpi-bin)" >&2; exit 2; }
[ "$STEPS" -gt "$WARMUP" ] || { echo "weak-scaling: STEPS ($STEPS) must exceed WARMUP ($WARMUP)" >&2; exit 2; }
# mpirun refuses to run as root without both of these.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OPENBLAS_NUM_THREADS="$THREADS"
mkdir -p "$OUT"
cores=$(nproc)
# Cores the ranks share: this machine's when all ranks run here; 0 (unknown: one core set per rank) on a cluster.
node_cores=$cores
[ -n "$MPIRUN_ARGS" ] && node_cores=0
start_all=$(date +%s)

# One row per run: method p global_batch steps s_per_step patches_per_s compute_ms allreduce_ms bytes
rows="$OUT/rows.tsv"
if [ "${REPORT_ONLY:-0}" = 1 ]; then
    # Only re-make the table from an earlier run's rows (same OUT, METHODS and settings).
    [ -s "$rows" ] || { echo "weak-scaling: REPORT_ONLY=1 but no $rows" >&2; exit 2; }
    METHODS_RUN=""
else
    : > "$rows"
    METHODS_RUN="$METHODS"
fi
for method in $METHODS_RUN; do
    ranks_here=$RANKS
    [ "$method" = full ] && ranks_here=$RANKS_FULL
    for p in $ranks_here; do
        dir="$OUT/$method-p$p"
        rm -rf "$dir"
        mkdir -p "$dir"
        extra=()
        [ -z "$MPIRUN_ARGS" ] && [ "$p" -gt "$cores" ] && extra+=(--oversubscribe)
        gb=$((BATCH * p))
        t0=$(date +%s.%N)
        # shellcheck disable=SC2086  # MPIRUN_ARGS and TRAIN_ARGS are word lists on purpose
        if ! $MPIRUN -n "$p" "${extra[@]}" --bind-to none -x OPENBLAS_NUM_THREADS $MPIRUN_ARGS \
                "$BIN" train --preset "$PRESET" --method "$method" --no-eval --global-batch "$gb" --steps "$STEPS" \
                --checkpoint-every 0 --threads "$THREADS" --output "$dir" $TRAIN_ARGS >"$dir/log.txt" 2>&1; then
            echo "weak-scaling: $method p=$p failed; see $dir/log.txt" >&2
            tail -5 "$dir/log.txt" >&2
            exit 1
        fi
        wall=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.0f", b - a }')
        # train.csv: step,loss,lr,patches_per_s,forward_ms,backward_ms,wait_ms,scan_ms,allreduce_ms,optimizer_ms,bytes_reduced
        awk -F, -v m="$method" -v p="$p" -v gb="$gb" -v w="$WARMUP" '
            NR > 1 && $1 >= w { n++; s += gb / $4; c += $5 + $6; a += $9; b = $11 }
            END { if (n == 0) exit 1; printf "%s\t%d\t%d\t%d\t%.4f\t%.2f\t%.1f\t%.2f\t%d\n", m, p, gb, n, s / n, gb * n / s, c / n, a / n, b }
        ' "$dir/train.csv" >>"$rows"
        printf 'weak-scaling: %-7s p=%-2s global batch %-3s done in %s s\n' "$method" "$p" "$gb" "$wall" >&2
    done
done
[ "${REPORT_ONLY:-0}" = 1 ] || echo $(( $(date +%s) - start_all )) >"$OUT/seconds"
total=$(cat "$OUT/seconds" 2>/dev/null || echo '?')

md="$OUT/weak-scaling.md"
{
    echo "## Weak scaling: preset $PRESET, $BATCH patches per rank, $STEPS steps (first $WARMUP left out)"
    echo
    echo "$(date -u +%Y-%m-%d) on $(hostname): $cores cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo);"
    echo "$(mpirun --version 2>/dev/null | head -1); OpenBLAS threads per rank: $THREADS;"
    echo "\`$MPIRUN -n P --bind-to none -x OPENBLAS_NUM_THREADS${MPIRUN_ARGS:+ $MPIRUN_ARGS}\` (+ \`--oversubscribe\` when P > $cores cores${MPIRUN_ARGS:+, not added with MPIRUN_ARGS}); commit $(git rev-parse --short HEAD 2>/dev/null || echo '?'); whole run ${total} s."
    echo
    echo "Columns: s/step = mean wall time of a step on rank 0 (data + forward + backward + allreduce + optimizer);"
    echo "efficiency = t(p0) / t(p) against the first rank count (weak scaling: ideal 100 %);"
    if [ "$node_cores" -gt 0 ]; then
        echo "per-core efficiency = patches/s per busy core, min(p, $node_cores), against the first rank count's (what is left"
        echo "once the oversubscription of the $node_cores cores is divided out);"
    else
        echo "per-core efficiency = efficiency here (MPIRUN_ARGS set: each rank is assumed to have its own cores);"
    fi
    echo "compute = forward + backward ms; allreduce = the CSV's allreduce_ms (the gradient allreduce and its 1/p scale only;"
    echo "the wait for slower ranks and the non-finite scan are the CSV's wait_ms and scan_ms); fraction = allreduce / step."
    for method in $METHODS; do
        echo
        echo "**--method $method**"
        echo
        echo "| ranks | global batch | s/step | patches/s | efficiency | per-core efficiency | compute ms | allreduce ms | allreduce fraction | bytes reduced per step |"
        echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        awk -F'\t' -v m="$method" -v cores="$node_cores" '
            function grouped(n,   s) { s = sprintf("%d", n); while (s ~ /[0-9][0-9][0-9][0-9]/) sub(/[0-9][0-9][0-9]($|,)/, ",&", s); return s }
            function busy(p) { return cores > 0 && p > cores ? cores : p }
            $1 == m { if (t1 == "") { t1 = $5; x1 = $6 / busy($2) }
                      printf "| %d | %d | %.3f | %.1f | %.0f %% | %.0f %% | %.0f | %.2f | %.1f %% | %s |\n", $2, $3, $5, $6, 100 * t1 / $5,
                             100 * ($6 / busy($2)) / x1, $7, $8, 100 * $8 / ($5 * 1000), grouped($9) }
        ' "$rows"
    done
    if echo " $METHODS " | grep -q " adaptir " && echo " $METHODS " | grep -q " full "; then
        echo
        echo "**full vs adaptir** (same ranks)"
        echo
        echo "| ranks | bytes full / adaptir | allreduce ms full / adaptir | s/step full / adaptir |"
        echo "|---:|---:|---:|---:|"
        awk -F'\t' '
            $1 == "adaptir" { a[$2] = $8; s[$2] = $5; b[$2] = $9; order[++k] = $2 }
            $1 == "full" { fa[$2] = $8; fs[$2] = $5; fb[$2] = $9 }
            END { for (i = 1; i <= k; i++) { p = order[i]; if (p in fa && a[p] > 0)
                      printf "| %d | %.0fx | %.1fx | %.2fx |\n", p, fb[p] / b[p], fa[p] / a[p], fs[p] / s[p] } }
        ' "$rows"
    fi
} >"$md"
cat "$md"
echo >&2
echo "weak-scaling: wrote $md (per-run logs and train.csv in $OUT/<method>-p<ranks>/)" >&2
