#!/usr/bin/env bash
# Issue 12's table, regenerated side by side in one run: `adaptir-dist bench step` (the trainer's own step) against
# the PyTorch CPU step a user would run instead (scripts/perf/torch_step.py, torch pinned in the venv of
# scripts/torch-venv.sh, created from pip's find-links CPU wheel when missing), same preset, batch, threads, method,
# task x4. Writes OUT/performance.md (the table with targets and whether each is met) and OUT/steps.csv.
#
#   scripts/perf/compare.sh [--quick] [--out DIR] [--report docs/performance.md]
#   scripts/perf/compare.sh --from ROWS [--out DIR]
#
#   --quick   preset small only (about 2 minutes); the full table adds preset ipt at batch 16 and 8 and with 2 threads
#             (about 20 minutes on the 2-core machine: one ipt step takes 25-35 s per side on one thread)
#   --from    measure nothing: the tables again from a run's raw rows (ROWS/adaptir-dist.csv and ROWS/torch.csv,
#             e.g. docs/performance/zen4-run14)
# Nothing else should run meanwhile: every figure is a wall-clock time on a shared 2-core machine.
set -euo pipefail
cd "$(dirname "$0")/../.."
quick=0; out=runs/perf; report=""; from=""
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) quick=1; shift ;;
        --from) from=${2:?--from needs a folder with adaptir-dist.csv and torch.csv}; shift 2 ;;
        --out) out=${2:?--out needs a folder}; shift 2 ;;
        --report) report=${2:?--report needs a file}; shift 2 ;;
        -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "perf/compare: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done
if [ -n "$from" ]; then
    # The rows every table line reads; a missing one would make awk divide by zero.
    for f in adaptir-dist.csv torch.csv; do
        [ -f "$from/$f" ] || { echo "perf/compare: $from/$f: no such file" >&2; exit 2; }
        for col in case step_ms; do
            head -1 "$from/$f" | tr ',' '\n' | grep -qx "$col" || { echo "perf/compare: $from/$f: no column '$col'" >&2; exit 2; }
        done
    done
    has_row() { cut -d, -f1 "$from/$1" | grep -qx "$2"; }
    need_rows() {   # FILE ROW...
        local f=$1 c; shift
        for c in "$@"; do has_row "$f" "$c" || { echo "perf/compare: $from/$f: no row '$c'" >&2; exit 2; }; done
    }
    need_rows adaptir-dist.csv small-adapter-1t small-adapter-2t small-full-1t small-adapter-2r small-full-2r
    need_rows torch.csv small-adapter-1t small-adapter-2t small-full-1t
    # A run with the ipt rows (not --quick) has all three on both sides.
    if has_row adaptir-dist.csv ipt-adapter-1t; then
        need_rows adaptir-dist.csv ipt-adapter-b8 ipt-adapter-2t
        need_rows torch.csv ipt-adapter-1t ipt-adapter-b8 ipt-adapter-2t
    fi
    mkdir -p "$out"; ours="$from/adaptir-dist.csv"; theirs="$from/torch.csv"; start=$(date +%s); torchv="-"
else  # measure: both sides, one after the other
BIN=${BIN:-.build/release/adaptir-dist}
[ -x "$BIN" ] || { echo "perf/compare: $BIN not found; run 'swift build -c release' first" >&2; exit 2; }
py=$(scripts/torch-venv.sh) || { echo "perf/compare: no torch venv (scripts/torch-venv.sh failed)" >&2; exit 1; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# Passed to the ranks with -x (mpirun warns about an unset one); the ranks set OpenBLAS to 1 thread themselves.
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
rm -rf "$out"; mkdir -p "$out"
ours="$out/adaptir-dist.csv"; theirs="$out/torch.csv"
start=$(date +%s)

# ours ROWNAME RANKS ARGS...: one bench step (under mpirun with RANKS ranks), its CSV row tagged with ROWNAME.
ours() {
    local name=$1 ranks=$2; shift 2
    local tmp="$out/tmp.csv"; rm -f "$tmp"
    mpirun -n "$ranks" --bind-to none -x OPENBLAS_NUM_THREADS "$BIN" bench step --csv "$tmp" "$@" >"$out/$name.ours.txt" 2>&1 \
        || { echo "perf/compare: bench step $name failed; see $out/$name.ours.txt" >&2; exit 1; }
    [ -f "$ours" ] || { printf 'case,'; head -1 "$tmp"; } >"$ours"
    { printf '%s,' "$name"; tail -1 "$tmp"; } >>"$ours"
    echo "perf/compare: adaptir-dist $name: $(grep -m1 '^step' "$out/$name.ours.txt")" >&2
}
theirs() {
    local name=$1; shift
    local tmp="$out/tmp.csv"; rm -f "$tmp"
    "$py" scripts/perf/torch_step.py --csv "$tmp" "$@" >"$out/$name.torch.txt" 2>&1 \
        || { echo "perf/compare: torch step $name failed; see $out/$name.torch.txt" >&2; exit 1; }
    [ -f "$theirs" ] || { printf 'case,'; head -1 "$tmp"; } >"$theirs"
    { printf '%s,' "$name"; tail -1 "$tmp"; } >>"$theirs"
    echo "perf/compare: torch        $name: $(grep -m1 '^step' "$out/$name.torch.txt")" >&2
}

S="${SMALL_STEPS:---warmup 2 --steps 5}"
ours small-adapter-1t 1 --preset small --batch 16 --threads 1 $S
theirs small-adapter-1t --preset small --batch 16 --threads 1 $S
ours small-adapter-2t 1 --preset small --batch 16 --threads 2 $S
theirs small-adapter-2t --preset small --batch 16 --threads 2 $S
ours small-full-1t 1 --preset small --method full --batch 16 --threads 1 $S
theirs small-full-1t --preset small --method full --batch 16 --threads 1 $S
ours small-adapter-2r 2 --preset small --batch 16 --threads 1 $S
ours small-full-2r 2 --preset small --method full --batch 16 --threads 1 $S
if [ "$quick" = 0 ]; then
    S="--warmup 1 --steps 2"
    ours ipt-adapter-1t 1 --preset ipt --batch 16 --threads 1 $S
    theirs ipt-adapter-1t --preset ipt --batch 16 --threads 1 $S
    ours ipt-adapter-b8 1 --preset ipt --batch 8 --threads 1 $S
    theirs ipt-adapter-b8 --preset ipt --batch 8 --threads 1 $S
    ours ipt-adapter-2t 1 --preset ipt --batch 16 --threads 2 $S
    theirs ipt-adapter-2t --preset ipt --batch 16 --threads 2 $S
fi
rm -f "$out/tmp.csv"
torchv=$("$py" -c 'import torch; print(torch.__version__)')
fi

# The table: one row per target of issue 12.
md="$out/performance.md"
awk -F, -v quick="$quick" -v secs="$(( $(date +%s) - start ))" -v cpu="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')" \
    -v cores="$(nproc)" -v torchv="$torchv" -v from="$from" -v commit="$(git rev-parse --short HEAD 2>/dev/null || echo '?')" '
    FNR == 1 { for (i = 1; i <= NF; i++) col[FILENAME, $i] = i; next }
    FILENAME ~ /adaptir-dist.csv$/ { o[$1] = $col[FILENAME, "step_ms"]; gf[$1] = $col[FILENAME, "gflops_per_rank"]; sg[$1] = $col[FILENAME, "sgemm_gflops"]
                                     mem[$1] = $col[FILENAME, "peak_gib"]; ar[$1] = $col[FILENAME, "allreduce_ms"]; sl[$1] = $col[FILENAME, "slowest_step_ms"] }
    FILENAME ~ /torch.csv$/ { t[$1] = $col[FILENAME, "step_ms"]; tmem[$1] = $col[FILENAME, "peak_gib"] }
    function row(what, a, b, ratio, target, met) {
        printf "| %s | %s | %s | %s | %s | %s |\n", what, a, b, ratio, target, met < 0 ? "-" : met ? "met" : "**not met**"
    }
    END {
        if (from != "") printf "Regenerated by `scripts/perf/compare.sh --from %s` from the raw rows of that run (its machine, commit and torch are named where the run is reported); task x4 SR, training step = forward + L1 + backward + AdamW; medians of the timed steps.\n\n", from
        else printf "Measured side by side by `scripts/perf/compare.sh%s` (commit %s) in %d s on %s, %d cores; torch %s; task x4 SR, training step = forward + L1 + backward + AdamW; medians of the timed steps.\n\n", quick ? " --quick" : "", commit, secs, cpu, cores, torchv
        print "| case | adaptir-dist | PyTorch | ratio | target | |"
        print "|---|---|---|---|---|---|"
        if ("ipt-adapter-1t" in o) {
            r = o["ipt-adapter-1t"] / t["ipt-adapter-1t"]; pct = 100 * gf["ipt-adapter-1t"] / sg["ipt-adapter-1t"]
            row("ipt, adapter step, batch 16, 1 thread", sprintf("%.1f s (%.1f GFLOP/s, %.0f%% of sgemm)", o["ipt-adapter-1t"] / 1000, gf["ipt-adapter-1t"], pct), sprintf("%.1f s", t["ipt-adapter-1t"] / 1000), sprintf("%.2fx", r), "<= 0.70x (>= 88% of sgemm)", r <= 0.70 && pct >= 88)
            r = mem["ipt-adapter-1t"] / tmem["ipt-adapter-1t"]
            row("ipt, peak resident memory, batch 16", sprintf("%.2f GiB", mem["ipt-adapter-1t"]), sprintf("%.2f GiB", tmem["ipt-adapter-1t"]), sprintf("%.2fx", r), "<= 0.70x", r <= 0.70)
            r = mem["ipt-adapter-b8"] / tmem["ipt-adapter-b8"]
            row("ipt, peak resident memory, batch 8", sprintf("%.2f GiB", mem["ipt-adapter-b8"]), sprintf("%.2f GiB", tmem["ipt-adapter-b8"]), sprintf("%.2fx", r), "(reported)", -1)
            a = o["ipt-adapter-1t"] / o["ipt-adapter-2t"]; b = t["ipt-adapter-1t"] / t["ipt-adapter-2t"]
            row("ipt, 1 rank x 2 threads vs 1 thread, batch 16", sprintf("%.1f s vs %.1f s: %.2fx", o["ipt-adapter-2t"] / 1000, o["ipt-adapter-1t"] / 1000, a), sprintf("%.1f s vs %.1f s: %.2fx", t["ipt-adapter-2t"] / 1000, t["ipt-adapter-1t"] / 1000, b), sprintf("%.2fx", a), ">= 1.8x", a >= 1.8)
        }
        r = o["small-adapter-1t"] / t["small-adapter-1t"]; pct = 100 * gf["small-adapter-1t"] / sg["small-adapter-1t"]
        row("small, adapter step, batch 16, 1 thread", sprintf("%.3f s (%.0f%% of sgemm)", o["small-adapter-1t"] / 1000, pct), sprintf("%.3f s", t["small-adapter-1t"] / 1000), sprintf("%.2fx", r), "<= 0.45x", r <= 0.45)
        a = o["small-adapter-1t"] / o["small-adapter-2t"]; b = t["small-adapter-1t"] / t["small-adapter-2t"]
        row("small, 1 rank x 2 threads vs 1 thread", sprintf("%.3f s vs %.3f s: %.2fx", o["small-adapter-2t"] / 1000, o["small-adapter-1t"] / 1000, a), sprintf("%.3f s vs %.3f s: %.2fx", t["small-adapter-2t"] / 1000, t["small-adapter-1t"] / 1000, b), sprintf("%.2fx", a), ">= 1.8x", a >= 1.8)
        a = 2 * o["small-adapter-1t"] / sl["small-adapter-2r"]
        row("small, 2 ranks x 1 thread vs 1 rank (patches/s)", sprintf("%.2fx", a), "-", sprintf("%.2fx", a), ">= 1.9x", a >= 1.9)
        a = o["small-full-1t"] / o["small-adapter-1t"]; b = t["small-full-1t"] / t["small-adapter-1t"]
        row("small, full step / adapter step, 1 thread", sprintf("%.2fx", a), sprintf("%.2fx", b), sprintf("%.2fx", a), "<= 1.3x", a <= 1.3)
        a = ar["small-full-2r"] / sl["small-full-2r"]
        row("small, full, 2 ranks: exposed allreduce / step", sprintf("%.1f ms / %.0f ms = %.1f%%", ar["small-full-2r"], sl["small-full-2r"], 100 * a), "-", "-", "<= 10%", a <= 0.10)

        # What the speed targets ask of the step, from the same rows: the model FLOPs of a step (GFLOP/s x time)
        # against the sgemm rate measured in the same process (OpenBLAS on a large GEMM, the practical ceiling).
        print ""
        print "What the speed targets ask, from the same rows (model FLOPs per step = its GFLOP/s x its time; sgemm = the rate the same process measured on a large GEMM):"
        print ""
        print "| target | model FLOPs per step | at the sgemm rate | it needs |"
        print "|---|---|---|---|"
        if ("ipt-adapter-1t" in o) need("ipt, adapter step <= 0.70x", "ipt-adapter-1t", 0.70)
        need("small, adapter step <= 0.45x", "small-adapter-1t", 0.45)
        fa = gf["small-adapter-1t"] * o["small-adapter-1t"] / 1000; ff = gf["small-full-1t"] * o["small-full-1t"] / 1000
        e = (ff - fa) / sg["small-full-1t"]; A = o["small-adapter-1t"] / 1000; T = t["small-adapter-1t"] / 1000
        printf "| small, full step / adapter step <= 1.3x | full %.1f GFLOP, adapter %.1f GFLOP | the %.1f GFLOP more of the full step take at least %.0f ms | full / adapter >= %.2fx at this adapter step (%.0f ms), >= %.2fx at the adapter step the small target asks for (<= 0.45x PyTorch: %.0f ms); 1.3x needs an adapter step of at least %.0f ms |\n", ff, fa, ff - fa, 1000 * e, 1 + e / A, 1000 * A, 1 + e / (0.45 * T), 450 * T, 1000 * e / 0.3
    }
    function need(what, c, target,    flops, best) {
        flops = gf[c] * o[c] / 1000; best = flops / sg[c]
        printf "| %s | %.1f GFLOP | %.2f s = %.2fx PyTorch (%.0f GFLOP/s) | %.0f%% of sgemm (now %.0f%%) |\n", what, flops, best, best * 1000 / t[c], sg[c], 100 * flops / (target * t[c] / 1000) / sg[c], 100 * gf[c] / sg[c]
    }' "$ours" "$theirs" >"$md"
cat "$md"
if [ -n "$report" ]; then cp "$md" "$report"; echo "perf/compare: table copied to $report" >&2; fi
