#!/usr/bin/env bash
# Process-level tests: the real `adaptir-dist train` binary under mpirun, with real signals and kills (issue #5).
# Each scenario prints "test-process: <name>: PASS|FAIL (<reason>)"; the last line is
# "test-process: N passed, M failed"; the exit status is non-zero if any scenario failed.
#
#   config-mismatch        4 ranks (MPMD), rank 2 has another --lr: refused at start, quickly, naming rank 2 and lr
#   config-mismatch-seed   2 ranks on the bundled data, rank 1 has another --seed: refused naming rank 1 and seed
#   backbone-mismatch      2 ranks, same --backbone path resolving to different files (-wdir): refused naming the
#                          backbone checksum and rank 1
#   rank-killed            4 ranks, kill -9 of rank 2 mid-run: the whole job ends (non-zero) within 10 s
#   watchdog-stalled-rank  2 ranks, --watchdog 2, SIGSTOP of rank 1 mid-run: the watchdog ends the job within seconds,
#                          naming rank 1 (or, if it stopped inside a collective's data exchange, that collective)
#   sigterm-ranks          SIGTERM to every rank (as a batch system sends it): exit 0, a checkpoint of the last
#                          finished step that a --resume run loads
#   sigint-one-rank        SIGINT to rank 1 only: all ranks stop after the same step, exit 0, loadable checkpoint
#   sigterm-mpirun         SIGTERM to mpirun: the job ends, the checkpoint holds the last finished step and loads.
#                          OpenMPI's mpirun itself exits 1 after a SIGTERM whatever the ranks do (it treats the signal
#                          as an abort), so its status is reported, not required to be 0.
#   kill-during-checkpoint kill -9 of rank 0 while it writes a checkpoint (held open by the test-only hook
#                          ADAPTIR_TEST_CHECKPOINT_DELAY_MS): the previous checkpoint is intact under the final name
#                          and loads; the half-written temporary file does not
#   resume-config-mismatch --resume with another --lr is refused naming lr; with more --steps it continues
#   installed-from-anywhere scripts/install.sh into a temporary prefix, then `adaptir-dist train` (the embedded
#                          default, 2 steps, with its evaluation) run from a fresh folder under /tmp: it finds the
#                          installed backbone, training photos and test photos
#   scaling-run            cluster/scaling/run on a tiny plan with 2 simulated nodes: report and cleanup; the same
#                          run stopped with SIGINT while its nodes are up: non-zero, no namespace/bridge/rank left
#   slurm-sbatch           cluster/slurm/train.sbatch: bash -n, and the srun/mpirun lines it builds are the README's
#   bench-step             bench step under mpirun -n 2: breakdown, bytes reduced, CSV; --no-allreduce reduces nothing
#   perf-table             scripts/perf/compare.sh --from run 14's committed rows: both tables, with the values
#                          docs/performance.md quotes (0.75x, 94% of sgemm, full / adapter >= 1.40x at the small
#                          target's step); a folder without the rows: exit 2 and one line naming the file
#   data-not-found         a copy of the binary outside any prefix or checkout, $ADAPTIR_DATA an empty folder, run
#                          from /tmp: exits non-zero with one line naming samples/train and every place looked in
#
# Needs .build/release/adaptir-dist (scripts/run-tests.sh builds it; this script builds nothing) and mpirun.
# Every mpirun runs under `timeout --kill-after=10`; every scenario kills what it started, so nothing can hang CI.
# Env: PROCESS_WORKDIR (default .build/process-tests, wiped at start), ADAPTIR_BIN (default .build/release/adaptir-dist),
#      PROCESS_ONLY (scenario names, space- or comma-separated; default all).
set -u
cd "$(dirname "$0")/.."
repo=$PWD

bin="${ADAPTIR_BIN:-$repo/.build/release/adaptir-dist}"
work="${PROCESS_WORKDIR:-$repo/.build/process-tests}"
limit=60          # seconds before timeout(1) ends an mpirun (no scenario comes close)

export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OPENBLAS_NUM_THREADS=1
export OMPI_MCA_orte_base_help_aggregate=0

if [ ! -x "$bin" ]; then
    echo "test-process: $bin not found; build it first (swift build -c release)" >&2
    echo "test-process: 0 passed, 1 failed"
    exit 2
fi
command -v mpirun >/dev/null || { echo "test-process: mpirun not found"; echo "test-process: 0 passed, 1 failed"; exit 2; }
case "$bin" in /*) ;; *) bin="$repo/$bin" ;; esac

rm -rf "$work"
mkdir -p "$work"
work=$(cd "$work" && pwd)

passed=0
failed=0
pass() { passed=$((passed + 1)); echo "test-process: $1: PASS ($2)"; }
fail() {
    failed=$((failed + 1)); echo "test-process: $1: FAIL ($2)"
    local log="$work/$1/mpirun.log"
    if [ -f "$log" ]; then echo "---- last lines of $log ----"; grep -v '^\[#*\.*\]' "$log" | tail -n 25; echo "----"; fi
}

now() { date +%s.%N; }
since() { awk -v s="$1" -v e="$(now)" 'BEGIN { printf "%.1f", e - s }'; }
lt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a < b) }'; }

# mpirun flags for n ranks on this machine.
mpi_flags() {
    local n=$1
    local f=(--bind-to none -x OPENBLAS_NUM_THREADS)
    [ "$n" -gt "$(nproc)" ] && f+=(--oversubscribe)
    echo "${f[@]}"
}

# start_job DIR MPIRUN-ARGS...: runs `timeout mpirun ARGS` in the background; output in DIR/mpirun.log, exit status in
# DIR/rc when it ends.
start_job() {
    local dir=$1; shift
    mkdir -p "$dir"
    rm -f "$dir/rc"
    # (the subshell's own stderr would only carry bash's "Killed" notices for the jobs a scenario kills)
    ( timeout --kill-after=10 "$limit" mpirun "$@" >"$dir/mpirun.log" 2>&1; echo $? >"$dir/rc.tmp"; mv "$dir/rc.tmp" "$dir/rc" ) 2>/dev/null &
}

# run_job DIR MPIRUN-ARGS...: runs it in the foreground; sets rc and secs.
run_job() {
    local dir=$1; shift
    mkdir -p "$dir"
    local t0; t0=$(now)
    timeout --kill-after=10 "$limit" mpirun "$@" >"$dir/mpirun.log" 2>&1
    rc=$?
    secs=$(since "$t0")
}

# wait_job DIR SECONDS: waits for the job to end; sets rc (empty if still running) and secs (since the call).
wait_job() {
    local dir=$1 max=$2 t0; t0=$(now)
    rc=""
    while lt "$(since "$t0")" "$max"; do
        if [ -f "$dir/rc" ]; then rc=$(cat "$dir/rc"); break; fi
        sleep 0.05
    done
    secs=$(since "$t0")
}

# Pids of the rank processes (not mpirun or timeout) whose command line names output folder OUT.
rank_pids() { pgrep -f "^[^ ]*adaptir-dist train .*--output $1( |\$)" || true; }
# Pid of rank R among them (from the OMPI_COMM_WORLD_RANK of its environment).
rank_pid() {
    local p
    for p in $(rank_pids "$1"); do
        if tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$2"; then echo "$p"; return; fi
    done
}
mpirun_pid() { pgrep -f "^mpirun .*--output $1( |\$)" || true; }

# csv_rows CSV: data rows (finished steps) in a train.csv.
csv_rows() { if [ -f "$1" ]; then echo $(( $(wc -l <"$1") - 1 )); else echo 0; fi; }

# wait_rows CSV N SECONDS: until the CSV has N data rows; false on timeout.
wait_rows() {
    local t0; t0=$(now)
    while lt "$(since "$t0")" "$3"; do
        [ "$(csv_rows "$1")" -ge "$2" ] && return 0
        sleep 0.05
    done
    return 1
}

# cleanup DIR OUT: kills (by pid) whatever of a job is still running; prints how many rank processes were left.
cleanup() {
    local dir=$1 out=$2 left p
    left=$(rank_pids "$out" | wc -l)
    for p in $(rank_pids "$out") $(mpirun_pid "$out"); do kill -CONT "$p" 2>/dev/null; kill -KILL "$p" 2>/dev/null; done
    local t0; t0=$(now)
    while [ ! -f "$dir/rc" ] && lt "$(since "$t0")" 15; do sleep 0.1; done
    echo "$left"
}

# step_of CHECKPOINT: the step attribute (`inspect` header line), empty if the file does not read.
step_of() { "$bin" inspect "$1" --summary 2>/dev/null | sed -nE '1s/.*, step ([0-9]+)$/\1/p'; }

# resume_check DIR CHECKPOINT STEP: copies CHECKPOINT into DIR/resume and runs one more step from it (one process,
# strict load of every tensor and the optimizer state); true if that run loads it at STEP and finishes STEP + 1.
resume_check() {
    local d=$1/resume ck=$2 step=$3
    rm -rf "$d"; mkdir -p "$d"; cp "$ck" "$d/checkpoint.h5"
    timeout --kill-after=5 60 "$bin" train "${base[@]}" --steps $((step + 1)) --checkpoint-every 0 --output "$d" --resume \
        >"$d/log" 2>&1 || return 1
    grep -q "resuming from $d/checkpoint.h5" "$d/log" || return 1
    grep -q "steps $step\.\.<$((step + 1))" "$d/log" || return 1
    [ "$(step_of "$d/checkpoint.h5")" = "$((step + 1))" ]
}

# ---- fixtures: tiny patch file and two different tiny backbones (about 2 s) ----
fx="$work/fixtures"
mkdir -p "$fx"
: >"$fx/log"
if ! { "$bin" pack --task lr4_noise30 --input datasets/samples/train --patches-per-image 8 --output "$fx/train.h5" \
        && "$bin" pretrain --preset tiny --tasks denoise_30 --steps 1 --global-batch 2 --patches-per-image 1 --seed 0 \
               --output "$fx/pre0" --cache "$fx/cache" --out "$fx/backbone0.h5" \
        && "$bin" pretrain --preset tiny --tasks denoise_30,sr_2 --kind images --steps 2 --global-batch 2 --seed 1 --no-eval \
               --output "$fx/pre1" --cache "$fx/cache" --out "$fx/backbone1.h5" \
        && grep -q "^packed .* for sr_2 into .*-sr_2-seed1-images.h5: [0-9]* clean sub-images" "$fx/log"; } >>"$fx/log" 2>&1; then
    echo "test-process: fixtures: FAIL (pack/pretrain failed, or pretrain --kind images packed no sub-images; see $fx/log)"
    tail -n 20 "$fx/log"
    echo "test-process: 0 passed, 1 failed"
    exit 1
fi

# Common arguments of the training runs: tiny preset, the packed patches, no evaluation, 2 patches per rank.
base=(--preset tiny --train-data "$fx/train.h5" --backbone "$fx/backbone0.h5" --no-eval --global-batch 4)
long=(--steps 1000000 --checkpoint-every 0)

# Each scenario is a function; a scenario that needs a running job starts it, drives it and cleans up after itself.
# d: the scenario's folder (mpirun.log, rc), out: the run's --output folder (unique, so pgrep finds only its ranks).

# ---- 1. start-up agreement ----
scenario_config_mismatch() {
    run_job "$d" $(mpi_flags 4) -n 2 "$bin" train "${base[@]}" --steps 5 --output "$out" \
        : -n 1 "$bin" train "${base[@]}" --steps 5 --output "$out" --lr 0.001 \
        : -n 1 "$bin" train "${base[@]}" --steps 5 --output "$out"
    local line; line=$(grep -m1 "have a different config" "$d/mpirun.log")
    if [ "$rc" -eq 0 ]; then fail $name "exit 0: the mismatch was not refused"
    elif ! lt "$secs" 20; then fail $name "refused only after ${secs}s (rc $rc)"
    elif ! grep -qE "ranks 2 have a different config than rank 0.*\blr\b" <<<"$line"; then
        fail $name "rc $rc but no error line naming rank 2 and the field lr (got: ${line:-nothing})"
    elif [ -f "$out/train.csv" ]; then fail $name "refused only after training started"
    else pass $name "rc $rc after ${secs}s: ${line#*: rank [0-9]: }"; fi
}

# The bundled photos are packed on first use under a name with the seed: a rank with another seed must still be
# refused as a config mismatch, not fail later on a missing file.
scenario_config_mismatch_seed() {
    mkdir -p "$d"
    printf 'cache: %s\npatches_per_image: 1\n' "$d/cache" >"$d/run.yaml"
    local a=(--config "$d/run.yaml" --preset tiny --backbone "$fx/backbone0.h5" --no-eval --global-batch 4 --steps 5 --output "$out")
    run_job "$d" $(mpi_flags 2) -n 1 "$bin" train "${a[@]}" : -n 1 "$bin" train "${a[@]}" --seed 1
    local line; line=$(grep -m1 "have a different config" "$d/mpirun.log")
    if [ "$rc" -eq 0 ]; then fail $name "exit 0: the mismatch was not refused"
    elif ! lt "$secs" 20; then fail $name "refused only after ${secs}s (rc $rc)"
    elif ! grep -qE "ranks 1 have a different config than rank 0.*\bseed\b" <<<"$line"; then
        fail $name "rc $rc but no error line naming rank 1 and the field seed (got: $(grep -m1 'adaptir-dist train: rank' "$d/mpirun.log"))"
    else pass $name "rc $rc after ${secs}s: ${line#*: rank [0-9]: }"; fi
}

# Same --backbone argument (so the same config), different file behind it: each rank runs in its own folder.
scenario_backbone_mismatch() {
    mkdir -p "$d/w0" "$d/w1"
    cp "$fx/backbone0.h5" "$d/w0/backbone.h5"; cp "$fx/backbone1.h5" "$d/w1/backbone.h5"
    local a=(--preset tiny --train-data "$fx/train.h5" --backbone backbone.h5 --no-eval --global-batch 4 --steps 5 --output "$out")
    run_job "$d" $(mpi_flags 2) -n 1 -wdir "$d/w0" "$bin" train "${a[@]}" : -n 1 -wdir "$d/w1" "$bin" train "${a[@]}"
    local line; line=$(grep -m1 "have a different" "$d/mpirun.log")
    if [ "$rc" -eq 0 ]; then fail $name "exit 0: the mismatch was not refused"
    elif ! lt "$secs" 20; then fail $name "refused only after ${secs}s (rc $rc)"
    elif ! grep -q "ranks 1 have a different backbone checksum than rank 0" <<<"$line"; then
        fail $name "rc $rc but no error line naming rank 1 and the backbone checksum (got: ${line:-nothing})"
    else pass $name "rc $rc after ${secs}s: ${line#*: rank [0-9]: }"; fi
}

# start_training N [ARGS]: a long run on N ranks; false (after a FAIL) if no step is logged within 30 s.
start_training() {
    local n=$1; shift
    start_job "$d" $(mpi_flags "$n") -n "$n" "$bin" train "${base[@]}" "${long[@]}" "$@" --output "$out"
    if ! wait_rows "$out/train.csv" 3 30; then
        fail $name "no training steps logged within 30 s"; cleanup "$d" "$out" >/dev/null; return 1
    fi
}

# ---- 2. a rank dies: the job ends, no hang ----
scenario_rank_killed() {
    start_training 4 || return
    local victim; victim=$(rank_pid "$out" 2)
    [ -n "$victim" ] || { fail $name "rank 2 process not found"; cleanup "$d" "$out" >/dev/null; return; }
    kill -KILL "$victim"
    wait_job "$d" 10
    local left; left=$(cleanup "$d" "$out")
    if [ -z "$rc" ]; then fail $name "job still running 10 s after kill -9 of rank 2 (pid $victim)"
    elif [ "$rc" -eq 0 ]; then fail $name "mpirun exited 0 after a rank was killed"
    elif [ "$left" -ne 0 ]; then fail $name "mpirun ended (rc $rc) but left $left rank process(es) running"
    else pass $name "kill -9 of rank 2 after $(csv_rows "$out/train.csv") steps: job ended in ${secs}s, rc $rc"; fi
}

# ---- the watchdog: a rank that stops (SIGSTOP) anywhere in a step must not hang the others ----
# Rank 1 is stopped at a random point of a step. Nearly always rank 0 then names it at the next collective's check-in.
# If rank 1 stops in the middle of a collective's own data exchange (after it checked in), nobody can tell which rank
# stalled: rank 0 reports the collective that did not complete ("inside MPI_..."). Both reports must come from rank 0
# and end the job within seconds; the reason says which one it was.
# stop_rank_and_wait RANK: SIGSTOP of that rank of a 2-rank run with --watchdog 2; sets report (the first watchdog
# line) and returns 1 after a failure report when the job hung, exited 0 or left a process behind.
stop_rank_and_wait() {
    start_training 2 --watchdog 2 || return 1
    kill -STOP "$(rank_pid "$out" "$1")"
    wait_job "$d" 12
    local left; left=$(cleanup "$d" "$out")
    report=$(grep -m1 "^watchdog: " "$d/mpirun.log")
    if [ -z "$rc" ]; then fail $name "job still running 12 s after rank $1 stopped (--watchdog 2): hang"; return 1
    elif [ "$rc" -eq 0 ]; then fail $name "mpirun exited 0"; return 1
    elif [ "$left" -ne 0 ]; then fail $name "mpirun ended (rc $rc) but left $left rank process(es) running"; return 1; fi
}

scenario_watchdog_stalled_rank() {
    local report
    stop_rank_and_wait 1 || return
    if ! lt "$secs" 8; then fail $name "the job ended only ${secs}s after rank 1 stopped (--watchdog 2)"
    elif grep -qE "^watchdog: rank 0 waited [0-9]+ s at step [0-9]+(, before MPI_[A-Za-z]+)?: rank\(s\) 1 did not arrive" <<<"$report"; then
        pass $name "job ended ${secs}s after SIGSTOP of rank 1, rc $rc, rank 1 named: ${report#watchdog: }"
    elif grep -qE "^watchdog: rank 0 waited [0-9]+ s inside MPI_[A-Za-z]+ at step [0-9]+: every rank had checked in" <<<"$report"; then
        pass $name "job ended ${secs}s after SIGSTOP of rank 1, rc $rc, rank 1 stopped inside a collective: ${report#watchdog: }"
    else fail $name "job ended (rc $rc, ${secs}s) without a watchdog report from rank 0 (got: ${report:-nothing})"; fi
}

# Rank 0 stalls (issue 14 item 9): it cannot report itself, so rank 1 must name it, at the step rendezvous or from
# inside a collective.
scenario_watchdog_stalled_rank0() {
    local report
    stop_rank_and_wait 0 || return
    if grep -qE "^watchdog: rank 1 waited [0-9]+ s (at step [0-9]+.*: rank\(s\) 0 did not arrive|inside MPI_[A-Za-z]+ at step [0-9]+: rank 0 did not complete it.*rank 0 is the one that stalled)" <<<"$report"; then
        pass $name "job ended ${secs}s after SIGSTOP of rank 0, rc $rc, rank 0 named: ${report#watchdog: }"
    else fail $name "job ended (rc $rc, ${secs}s) without a report naming rank 0 (got: ${report:-nothing})"; fi
}

# ---- 3. SIGTERM / SIGINT: finish the step, write a checkpoint, exit 0 ----
# check_stop RC-REQUIREMENT LEFT: the common assertions after a signal (rc, secs from wait_job).
check_stop() {
    local want_rc=$1 left=$2
    local ck="$out/checkpoint.h5" rows stopped step
    rows=$(csv_rows "$out/train.csv")
    stopped=$(sed -nE 's/^stopped by signal after step ([0-9]+);.*/\1/p' "$d/mpirun.log" | head -1)
    step=$(step_of "$ck")
    if [ -z "$rc" ]; then fail $name "job still running 10 s after the signal"
    elif [ "$want_rc" = zero ] && [ "$rc" -ne 0 ]; then fail $name "exit $rc, want 0"
    elif [ "$want_rc" = zero-or-one ] && [ "$rc" -ne 0 ] && [ "$rc" -ne 1 ]; then fail $name "mpirun exit $rc"
    elif [ "$left" -ne 0 ]; then fail $name "$left rank process(es) still running after mpirun ended"
    elif [ ! -f "$ck" ]; then fail $name "no checkpoint $ck"
    elif ls "$out"/checkpoint.h5.tmp-* >/dev/null 2>&1; then fail $name "temporary checkpoint file left: $(ls "$out"/checkpoint.h5.tmp-*)"
    elif [ -z "$step" ]; then fail $name "checkpoint does not read (inspect)"
    elif [ "$step" -ne "$rows" ]; then fail $name "checkpoint at step $step, but $rows steps finished (train.csv)"
    elif [ -n "$stopped" ] && [ "$stopped" -ne "$step" ]; then fail $name "log says stopped after step $stopped, checkpoint says $step"
    elif ! resume_check "$d" "$ck" "$step"; then fail $name "--resume from the checkpoint (step $step) failed: $(tail -n 3 "$d/resume/log" | tr '\n' ' ')"
    else pass $name "exit $rc ${secs}s after the signal; checkpoint at step $step = $rows finished steps; --resume ran step $((step + 1))"; fi
}

scenario_sigterm_ranks() {
    start_training 2 || return
    kill -TERM $(rank_pids "$out")
    wait_job "$d" 10
    check_stop zero "$(cleanup "$d" "$out")"
}

scenario_sigint_one_rank() {
    start_training 2 || return
    kill -INT "$(rank_pid "$out" 1)"
    wait_job "$d" 10
    check_stop zero "$(cleanup "$d" "$out")"
}

scenario_sigterm_mpirun() {
    start_training 2 || return
    kill -TERM "$(mpirun_pid "$out")"
    wait_job "$d" 10
    check_stop zero-or-one "$(cleanup "$d" "$out")"
}

# ---- 4. kill -9 while a checkpoint is being written ----
scenario_kill_during_checkpoint() {
    start_job "$d" $(mpi_flags 2) -x ADAPTIR_TEST_CHECKPOINT_DELAY_MS=1500 \
        -n 2 "$bin" train "${base[@]}" --steps 1000000 --checkpoint-every 1 --output "$out"
    # The first checkpoint (step 1) completes after the delay; wait until the next one is half written.
    local t0 found=""; t0=$(now)
    while lt "$(since "$t0")" 30; do
        if [ -f "$out/checkpoint.h5" ] && ls "$out"/checkpoint.h5.tmp-* >/dev/null 2>&1; then found=1; break; fi
        sleep 0.05
    done
    [ -n "$found" ] || { fail $name "never saw a checkpoint write in progress after the first checkpoint"; cleanup "$d" "$out" >/dev/null; return; }
    local rows; rows=$(csv_rows "$out/train.csv")
    kill -KILL "$(rank_pid "$out" 0)"
    wait_job "$d" 10
    local left tmp step
    left=$(cleanup "$d" "$out")
    tmp=$(ls "$out"/checkpoint.h5.tmp-* 2>/dev/null | head -1)
    step=$(step_of "$out/checkpoint.h5")
    if [ -z "$rc" ]; then fail $name "job still running 10 s after kill -9 of rank 0"
    elif [ "$left" -ne 0 ]; then fail $name "$left rank process(es) still running after mpirun ended"
    elif [ -z "$tmp" ]; then fail $name "no temporary file left: the kill did not hit a checkpoint write"
    elif [ -z "$step" ]; then fail $name "checkpoint.h5 does not read after the kill"
    elif [ "$step" -ne $((rows - 1)) ]; then fail $name "checkpoint.h5 at step $step, want the previous checkpoint, step $((rows - 1))"
    elif ! resume_check "$d" "$out/checkpoint.h5" "$step"; then
        fail $name "--resume from the previous checkpoint (step $step) failed: $(tail -n 3 "$d/resume/log" | tr '\n' ' ')"
    elif mkdir -p "$d/half" && cp "$tmp" "$d/half/checkpoint.h5" \
         && timeout 60 "$bin" train "${base[@]}" --steps $((rows + 1)) --output "$d/half" --resume >"$d/half/log" 2>&1; then
        fail $name "the half-written temporary file loads too, so the load check above proves nothing"
    elif ! grep -q "rank 0: $d/half/checkpoint.h5: " "$d/half/log"; then
        fail $name "resuming from the half-written file failed, but not on that file: $(grep -m1 'adaptir-dist train: rank' "$d/half/log")"
    else pass $name "killed while writing step $rows: checkpoint.h5 still step $step and resumes; half-written $(basename "$tmp") is refused"; fi
}

# ---- 5. --resume with another config ----
scenario_resume_config_mismatch() {
    mkdir -p "$d"
    if ! timeout 60 "$bin" train "${base[@]}" --steps 2 --output "$out" >"$d/first.log" 2>&1; then
        fail $name "the first run failed: $(tail -n 2 "$d/first.log" | tr '\n' ' ')"; return
    fi
    timeout 60 "$bin" train "${base[@]}" --steps 4 --lr 5e-4 --output "$out" --resume >"$d/lr.log" 2>&1
    local rc_lr=$?
    timeout 60 "$bin" train "${base[@]}" --steps 4 --output "$out" --resume >"$d/steps.log" 2>&1
    local rc_steps=$?
    if [ "$rc_lr" -eq 0 ]; then fail $name "--resume with another --lr was accepted"
    elif ! grep -q "differs from the checkpoint's in lr (" "$d/lr.log"; then
        fail $name "--resume with another --lr failed without naming lr: $(grep -m1 'adaptir-dist train' "$d/lr.log")"
    elif [ "$rc_steps" -ne 0 ] || ! grep -q "steps 2\.\.<4" "$d/steps.log"; then
        fail $name "--resume with more --steps (allowed) did not continue at step 2: $(tail -n 2 "$d/steps.log" | tr '\n' ' ')"
    else pass $name "another lr refused ($(grep -m1 -o "differs from the checkpoint's in lr" "$d/lr.log")); more steps continue at step 2"; fi
}

# ---- 6. the bundled data from any working directory (DataLocations) ----
scenario_installed_from_anywhere() {
    mkdir -p "$d"
    # The prefix outside the checkout: an executable under .build also finds the checkout's datasets/ (the last place
    # looked in), which holds the photo corpus once datasets/fetch-photos.sh has run.
    local prefix share run
    prefix=$(mktemp -d /tmp/adaptir-prefix.XXXXXX); share="$prefix/share/adaptir-dist/datasets"
    if ! scripts/install.sh "$prefix" "$bin" >"$d/install.log" 2>&1; then
        fail $name "scripts/install.sh failed: $(tail -n 1 "$d/install.log")"; rm -rf "$prefix"; return
    fi
    run=$(mktemp -d /tmp/adaptir-anywhere.XXXXXX)
    (cd "$run" && env -u ADAPTIR_DATA timeout --kill-after=10 120 "$prefix/bin/adaptir-dist" train --steps 2 --global-batch 2 \
        --output "$out" >"$d/train.log" 2>&1)
    local rc=$?
    rm -rf "$run"
    if [ "$rc" -ne 0 ]; then fail $name "train from $run exited $rc: $(grep -m1 'adaptir-dist' "$d/train.log")"
    elif ! grep -q "^backbone $share/ipt_small_backbone.h5$" "$d/train.log"; then
        fail $name "the installed backbone was not loaded: $(grep -m1 'backbone' "$d/train.log")"
    elif ! grep -q "^packed the bundled training photos" "$d/train.log"; then fail $name "the bundled training photos were not packed"
    elif ! grep -q "the photo corpus was not found: looked in .*photos/COMPLETE" "$d/train.log"; then
        fail $name "the fallback to the bundled photos does not say where the corpus was looked for: $(grep -m1 'embedded default' "$d/train.log")"
    elif ! grep -q "^| \*\*mean\*\* |" "$out/results.md" 2>/dev/null; then fail $name "no results table of the installed test photos"
    else
        # A fetched photo corpus (datasets/fetch-photos.sh: photos/{train,test} and the COMPLETE stamp) in
        # $ADAPTIR_DATA: the embedded default trains on it and scores its test split; the backbone still comes from
        # the install prefix.
        local data="$d/data" out2="$d/out-corpus"
        mkdir -p "$data/photos/train" "$data/photos/test"
        cp datasets/samples/train/astronaut.png datasets/samples/train/coffee.png "$data/photos/train/"
        cp datasets/samples/test/chelsea.png "$data/photos/test/corpus-test.png"
        echo "2 train and 1 test photos (made by test-process.sh)" >"$data/photos/COMPLETE"
        run=$(mktemp -d /tmp/adaptir-anywhere.XXXXXX)
        (cd "$run" && ADAPTIR_DATA="$data" timeout --kill-after=10 120 "$prefix/bin/adaptir-dist" train --steps 2 --global-batch 2 \
            --output "$out2" >"$d/train-corpus.log" 2>&1)
        rc=$?
        rm -rf "$run"
        if [ "$rc" -ne 0 ]; then fail $name "train with a corpus in \$ADAPTIR_DATA exited $rc: $(grep -m1 'adaptir-dist' "$d/train-corpus.log")"
        elif ! grep -q "^embedded default: .* on the photo corpus ($data/photos/train, scored on $data/photos/test)" "$d/train-corpus.log"; then
            fail $name "the fetched corpus was not used: $(grep -m1 'embedded default' "$d/train-corpus.log")"
        elif ! grep -q "^packed $data/photos/train for lr4_noise30 .*: 128 patches" "$d/train-corpus.log"; then
            fail $name "the corpus was not packed with 64 patches per photo: $(grep -m1 '^packed' "$d/train-corpus.log")"
        elif ! grep -q "^| corpus-test.png |" "$out2/results.md" 2>/dev/null; then fail $name "the corpus's test split was not scored"
        else pass $name "installed to a prefix, run from /tmp: the bundled photos from $share, or a fetched corpus from \$ADAPTIR_DATA"; fi
    fi
    rm -rf "$prefix"
}

scenario_data_not_found() {
    # Outside the checkout: a copy under .build would find the checkout's datasets/ (the last place looked in).
    local top; top=$(mktemp -d /tmp/adaptir-bare.XXXXXX)
    mkdir -p "$d" "$top/bare/bin" "$top/empty"
    cp "$bin" "$top/bare/bin/adaptir-dist"
    local run; run=$(mktemp -d /tmp/adaptir-nodata.XXXXXX)
    (cd "$run" && ADAPTIR_DATA="$top/empty" timeout --kill-after=10 60 "$top/bare/bin/adaptir-dist" train --steps 2 --no-eval \
        --output "$out" >"$d/train.log" 2>&1)
    local rc=$? line
    line=$(grep -m1 "bundled data not found" "$d/train.log")
    local missing=""
    for place in "$top/empty/samples/train (\$ADAPTIR_DATA)" "$run/datasets/samples/train (the current directory)" \
                 "$top/bare/share/adaptir-dist/datasets/samples/train (the install prefix of $top/bare/bin/adaptir-dist)" \
                 "the checkout of the executable (none: $top/bare/bin/adaptir-dist is not under a .build folder)"; do
        [[ "$line" == *"$place"* ]] || missing+=" [$place]"
    done
    rm -rf "$run" "$top"
    if [ "$rc" -eq 0 ]; then fail $name "train without any bundled data exited 0"
    elif [ -z "$line" ]; then fail $name "no 'bundled data not found' line: $(grep -m1 'adaptir-dist' "$d/train.log")"
    elif [ -n "$missing" ]; then fail $name "the message lacks$missing: $line"
    else pass $name "exit $rc, one line naming samples/train and the 4 places looked in"; fi
}

# `compare` end to end at a toy budget (2 methods x 3 seeds x 2 steps, each run under mpirun -n 2): the table with
# the bicubic and unadapted rows, one CSV row per run, the validation curves, then a second call that reuses every
# finished run; and two refusals (a method that trains nothing, a rate for a method not compared).
scenario_compare() {
    local name=compare rc table rows curves reused
    mkdir -p "$d"
    timeout --kill-after=10 600 "$bin" compare --methods adaptir,adaptformer --seeds 0,1,2 --steps 2 --global-batch 4 \
        --ranks 2 --val-every 1 --patches-per-image 2 --train-dir datasets/samples/train --test-data datasets/samples/test \
        --output "$d/cmp" --report "$d/docs/cmp.md" >"$d/compare.log" 2>&1
    rc=$?
    table="$d/cmp/compare.md"
    rows=$(csv_rows "$d/cmp/runs.csv")
    curves=$(head -1 "$d/cmp/val-curves.csv" 2>/dev/null)
    if [ "$rc" -ne 0 ]; then fail $name "compare exited $rc: $(tail -2 "$d/compare.log" | tr '\n' ' ')"; return; fi
    if ! grep -q "| bicubic (no model) |" "$table" || ! grep -q "| unadapted backbone |" "$table" \
        || ! grep -qE "^\| 1 \| (adaptir|adaptformer) \|" "$table" || ! grep -qE "^\| 2 \| (adaptir|adaptformer) \|" "$table"; then
        fail $name "compare.md lacks a row: $(grep -c '^|' "$table") table lines"; return
    fi
    if [ "$rows" -ne 6 ]; then fail $name "runs.csv has $rows runs, expected 6"; return; fi
    if [ "$curves" != "step,adaptir,adaptformer,unadapted" ] || [ "$(csv_rows "$d/cmp/val-curves.csv")" -ne 3 ]; then
        fail $name "val-curves.csv: header '$curves', $(csv_rows "$d/cmp/val-curves.csv") rows (expected steps 0, 1, 2)"; return
    fi
    if [ ! -f "$d/docs/cmp.md" ] || grep -q "](val-curves.svg)" "$d/docs/cmp.md"; then fail $name "the --report copy is missing or links the wrong plot"; return; fi
    timeout --kill-after=10 300 "$bin" compare --methods adaptir,adaptformer --seeds 0,1,2 --steps 2 --global-batch 4 \
        --ranks 2 --val-every 1 --patches-per-image 2 --train-dir datasets/samples/train --test-data datasets/samples/test \
        --output "$d/cmp" >"$d/compare2.log" 2>&1
    reused=$(grep -c ": reused " "$d/compare2.log")
    if [ "$reused" -ne 6 ]; then fail $name "the second call reused $reused of 6 finished runs"; return; fi
    "$bin" compare --methods frozen --output "$d/x" >"$d/frozen.log" 2>&1; rc=$?
    if [ "$rc" -eq 0 ] || ! grep -q "'frozen' trains nothing" "$d/frozen.log"; then fail $name "--methods frozen: exit $rc, $(head -1 "$d/frozen.log")"; return; fi
    "$bin" compare --methods adaptir --lr lora=1e-3 --output "$d/x" >"$d/lr.log" 2>&1; rc=$?
    if [ "$rc" -eq 0 ] || ! grep -q "'lora' is not one of the compared methods" "$d/lr.log"; then fail $name "--lr lora=1e-3: exit $rc, $(head -1 "$d/lr.log")"; return; fi
    pass $name "6 runs, table with bicubic and unadapted rows, curves, 6 reused on the second call, 2 refusals"
}

# cluster/scaling/run on a tiny plan (1 and 2 ranks, 2 simulated nodes at 1 Gbit/s, 3 steps): it finishes with the
# model's report and removes its nodes; then the same run stopped with SIGINT (Ctrl-C) while its simulated nodes are
# up leaves no namespace, bridge or rank behind.
scenario_scaling_run() {
    local name=scaling-run s i pid guard rc left
    mkdir -p "$d"
    if [ "$(id -u)" -ne 0 ]; then fail $name "needs root for the simulated nodes (ip netns, tc)"; return; fi
    tiny() { BIN="$bin" RANKS="1 2" NODES=2 BENCH_NODES=2 RATES=1gbit STEPS=3 WARMUP=1 BENCH_SIZES=small-adaptir,small-full \
             timeout --kill-after=10 300 cluster/scaling/run --quick --methods adaptir --out "$1"; }
    left_behind() {
        { ip link show arbr0 >/dev/null 2>&1 && echo "bridge arbr0"; ip netns list | grep -o "arnode[0-9]*";
          pgrep -f -- "--output $1/" >/dev/null && echo "processes of $1"; } | tr '\n' ' '
    }
    s="$d/full"
    tiny "$s" >"$d/run.log" 2>&1; rc=$?
    if [ "$rc" -ne 0 ]; then fail $name "the run exited $rc: $(tail -2 "$d/run.log" | tr '\n' ' ')"; return; fi
    if [ "$(csv_rows "$s/steps.csv")" -ne 5 ] || [ "$(csv_rows "$s/allreduce.csv")" -ne 4 ]; then
        fail $name "steps.csv $(csv_rows "$s/steps.csv") rows (want 5), allreduce.csv $(csv_rows "$s/allreduce.csv") (want 4)"; return
    fi
    for f in model.md scaling.csv validation.csv prediction.csv; do
        [ -s "$s/$f" ] || { fail $name "no $f"; return; }
    done
    if ! grep -q "Mean absolute error" "$s/model.md" || ! grep -q "nodes to reach 111 patches/s" "$s/model.md"; then
        fail $name "model.md lacks the validation or the H100 answer"; return
    fi
    if command -v gnuplot >/dev/null && [ ! -s "$s/prediction.svg" ]; then fail $name "gnuplot is here but prediction.svg is missing"; return; fi
    left=$(left_behind "$s")
    if [ -n "$left" ]; then fail $name "after a finished run: $left"; return; fi

    s="$d/interrupted"
    # Its own session and process group (setsid execs in place: $! is the group), as a terminal's foreground job.
    BIN="$bin" RANKS="1 2" NODES=2 BENCH_NODES=2 RATES=1gbit STEPS=3 WARMUP=1 BENCH_SIZES=small-adaptir,small-full \
        setsid cluster/scaling/run --quick --methods adaptir --out "$s" >"$d/int.log" 2>&1 &
    pid=$!
    ( sleep 200; kill -KILL -- -"$pid" ) >/dev/null 2>&1 &   # a guard against a hang; holds no pipe open
    guard=$!
    for i in $(seq 1 600); do ip link show arbr0 >/dev/null 2>&1 && break; sleep 0.2; done
    if ! ip link show arbr0 >/dev/null 2>&1; then kill -KILL -- -"$pid" 2>/dev/null; fail $name "the simulated nodes never came up: $(tail -2 "$d/int.log" | tr '\n' ' ')"; return; fi
    sleep 1
    kill -INT -- -"$pid"    # Ctrl-C: the whole foreground process group
    wait "$pid"; rc=$?
    kill "$guard" 2>/dev/null
    sleep 1
    left=$(left_behind "$s")
    if [ -n "$left" ]; then "$repo/cluster/netns-nodes.sh" down >/dev/null 2>&1; fail $name "after Ctrl-C: $left"; return; fi
    if [ "$rc" -eq 0 ]; then fail $name "the interrupted run exited 0"; return; fi
    pass $name "5 runs, 4 allreduce timings, model.md with validation and prediction; Ctrl-C while nodes were up: exit $rc, nothing left"
}

# cluster/slurm/train.sbatch parses (bash -n) and, in a fake job (SLURM_JOB_ID=4242), builds exactly the srun and
# mpirun lines the README documents; outside a job it refuses with one line.
scenario_slurm_sbatch() {
    local name=slurm-sbatch args got want launcher
    mkdir -p "$d"
    if ! bash -n cluster/slurm/train.sbatch 2>"$d/syntax.log"; then fail $name "bash -n: $(head -1 "$d/syntax.log")"; return; fi
    args=(--train-data /shared/train.h5 --backbone /shared/ipt.h5 --preset ipt)
    for launcher in srun mpirun; do
        got=$(env -u SLURM_CPUS_PER_TASK SLURM_JOB_ID=4242 LAUNCHER=$launcher ADAPTIR_BIN=adaptir-dist ADAPTIR_DRY_RUN=1 \
              cluster/slurm/train.sbatch "${args[@]}" 2>&1)
        want=$(grep -m1 "^$launcher .* adaptir-dist train --threads 1 --output runs/slurm-4242 " README.md)
        if [ -z "$want" ]; then fail $name "README.md documents no '$launcher ... adaptir-dist train' line"; return; fi
        if [ "$got" != "$want" ]; then fail $name "$launcher: built '$got', README documents '$want'"; return; fi
    done
    got=$(env -u SLURM_JOB_ID cluster/slurm/train.sbatch 2>&1); rc=$?
    if [ "$rc" -eq 0 ] || ! grep -q "not inside a Slurm job" <<<"$got"; then fail $name "outside a job: exit $rc, '$got'"; return; fi
    pass $name "syntax, the README's srun and mpirun lines, refusal outside a job"
}

# bench step: the trainer's step under mpirun -n 2 reports its breakdown, the bytes reduced (the adapter's 7,596
# floats at preset small) and a CSV row; --no-allreduce reduces nothing.
scenario_bench_step() {
    local name=bench-step rc
    mkdir -p "$d"
    timeout --kill-after=10 $limit mpirun -n 2 $(mpi_flags 2) "$bin" bench step --preset small --batch 2 --warmup 0 --steps 1 \
        --csv "$d/step.csv" >"$d/step.log" 2>&1; rc=$?
    if [ "$rc" -ne 0 ]; then fail $name "exit $rc: $(tail -1 "$d/step.log")"; return; fi
    for want in "2 rank(s)" "gradient allreduce" "% of sgemm" "peak resident memory" "reduced per step: 7,596 fp32 values = 30,384 bytes"; do
        grep -qF "$want" "$d/step.log" || { fail $name "no '$want' in the output"; return; }
    done
    # Kernels that fit the CPU: OpenBLAS 0.3.21 falls back to Prescott on a CPU its tables do not know (an Emerald
    # Rapids Xeon), and the binary then restarts itself with OPENBLAS_CORETYPE set (BLAS.coreTypeOverride).
    local core; core=$(grep -o "(OpenBLAS [A-Za-z0-9_]*)" "$d/step.log" | head -1 | tr -d '()' | cut -d' ' -f2)
    if [ -z "${OPENBLAS_CORETYPE+set}" ] && grep -qw avx2 /proc/cpuinfo \
        && grep -qxE "Katmai|Coppermine|Northwood|Prescott|Banias|Core2|Penryn|Dunnington|Nehalem|Atom|Sandybridge|Athlon|Opteron|Opteron_SSE3|Barcelona|Bobcat|Bulldozer|Piledriver|Steamroller|Nano" <<<"$core"; then
        fail $name "OpenBLAS runs its $core kernels on a CPU with AVX2"; return
    fi
    # On a Zen 4 (AMD family 25 with AVX-512, executed as two 256-bit halves) OpenBLAS 0.3.21's Haswell kernels are
    # the faster ones, and the binary restarts itself with them.
    if [ -z "${OPENBLAS_CORETYPE+set}" ] && grep -q AuthenticAMD /proc/cpuinfo && grep -qw avx512f /proc/cpuinfo \
        && [ "$(awk -F': ' '/^cpu family/ { print $2; exit }' /proc/cpuinfo)" = 25 ] && [ "$core" != Haswell ]; then
        fail $name "OpenBLAS runs its $core kernels on a Zen 4 (AMD family 25 with AVX-512), not Haswell"; return
    fi
    timeout --kill-after=10 $limit mpirun -n 2 $(mpi_flags 2) "$bin" bench step --preset small --batch 2 --warmup 0 --steps 1 --no-allreduce \
        --csv "$d/step.csv" >"$d/alone.log" 2>&1; rc=$?
    if [ "$rc" -ne 0 ] || ! grep -q "= 0 bytes" "$d/alone.log"; then fail $name "--no-allreduce: exit $rc, $(grep "reduced per step" "$d/alone.log")"; return; fi
    if [ "$(csv_rows "$d/step.csv")" -ne 2 ] || [ "$(head -1 "$d/step.csv" | tr ',' '\n' | wc -l)" -ne 22 ]; then
        fail $name "step.csv: $(csv_rows "$d/step.csv") rows (want 2) or not 22 columns"; return
    fi
    pass $name "breakdown, 30,384 bytes per step at 2 ranks, 0 with --no-allreduce, 2 CSV rows, OpenBLAS $core"
}

scenario_perf_table() {
    local rc want
    mkdir -p "$d"
    scripts/perf/compare.sh --from docs/performance/zen4-run14 --out "$d" >"$d/table.log" 2>&1; rc=$?
    if [ "$rc" -ne 0 ]; then fail $name "exit $rc: $(tail -1 "$d/table.log")"; return; fi
    for want in "| ipt, adapter step, batch 16, 1 thread | 23.5 s (96.1 GFLOP/s, 88% of sgemm) | 31.3 s | 0.75x |" \
                "| 94% of sgemm (now 88%) |" "| 75% of sgemm (now 63%) |" \
                "full / adapter >= 1.33x at this adapter step (619 ms), >= 1.40x at the adapter step the small target asks for (<= 0.45x PyTorch: 517 ms); 1.3x needs an adapter step of at least 686 ms"; do
        grep -qF -- "$want" "$d/performance.md" || { fail $name "no '$want' in performance.md"; return; }
    done
    mkdir -p "$d/empty"
    scripts/perf/compare.sh --from "$d/empty" --out "$d/empty-out" >"$d/empty.log" 2>&1; rc=$?
    if [ "$rc" -ne 2 ] || [ "$(wc -l <"$d/empty.log")" -ne 1 ] || ! grep -qF "$d/empty/adaptir-dist.csv: no such file" "$d/empty.log"; then
        fail $name "a folder without rows: exit $rc, '$(cat "$d/empty.log")'"; return
    fi
    pass $name "run 14's tables from its rows; a folder without rows refused naming the file"
}

# --threads 2 (the rank's pool: split GEMMs, attention, convolutions, pointwise ops) trains like --threads 1: the same
# losses to float rounding (a split GEMM may differ in the last bits), at preset small, where the splits happen.
scenario_threads() {
    local t rc
    mkdir -p "$d"
    for t in 1 2; do
        timeout --kill-after=10 $limit mpirun -n 1 $(mpi_flags 1) "$bin" train --preset small --backbone datasets/ipt_small_backbone.h5 \
            --train-data "$fx/train.h5" --no-eval --global-batch 4 --steps 4 --checkpoint-every 0 --threads $t \
            --output "$d/t$t" >"$d/t$t.log" 2>&1; rc=$?
        if [ "$rc" -ne 0 ]; then fail $name "--threads $t: exit $rc: $(tail -1 "$d/t$t.log")"; return; fi
        if [ "$(csv_rows "$d/t$t/train.csv")" -ne 4 ]; then fail $name "--threads $t: $(csv_rows "$d/t$t/train.csv") steps logged, want 4"; return; fi
        grep -qF "1 rank(s) x $t thread(s)" "$d/t$t.log" || { fail $name "--threads $t: the log does not say '1 rank(s) x $t thread(s)'"; return; }
    done
    local worst
    worst=$(paste -d, <(cut -d, -f2 "$d/t1/train.csv") <(cut -d, -f2 "$d/t2/train.csv") | awk -F, 'NR > 1 {
        r = ($1 - $2) / $1; if (r < 0) r = -r; if (r > w) w = r } END { printf "%.2g", w }')
    if awk -v w="$worst" 'BEGIN { exit !(w <= 1e-4) }'; then pass $name "4 steps at preset small, losses of 1 and 2 threads within $worst relative"
    else fail $name "losses of --threads 1 and 2 differ by $worst relative (more than 1e-4)"; fi
}

all=(config-mismatch config-mismatch-seed backbone-mismatch rank-killed watchdog-stalled-rank watchdog-stalled-rank0
     sigterm-ranks sigint-one-rank sigterm-mpirun kill-during-checkpoint resume-config-mismatch
     installed-from-anywhere data-not-found compare scaling-run slurm-sbatch bench-step perf-table threads)
only=${PROCESS_ONLY:-${all[*]}}
for name in ${only//,/ }; do
    d="$work/$name"; out="$d/out"
    if ! declare -F "scenario_${name//-/_}" >/dev/null; then fail "$name" "no such scenario (known: ${all[*]})"; continue; fi
    "scenario_${name//-/_}"
done

echo "test-process: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
