#!/usr/bin/env bash
# Process-level tests of hostile but realistic input to the real binary (the probes of the "hostile user" issue,
# items 1-4). Each case prints "test-hostile: <name>: PASS|FAIL|SKIP (<reason>)"; the last line is
# "test-hostile: N passed, M failed, S skipped"; the exit status is non-zero if any case failed.
#
#   jpeg-bomb               pack of a 1.5 kB JPEG whose SOF claims 60000x60000: exit 1 at once (under a 4 GB address-
#                           space limit), naming the file, the claimed size and the --max-pixels limit
#   jpeg-header-too-large   the same claiming 10000x10000 (within the limit): exit 1, corrupt JPEG data (not grey)
#   jpeg-cut-mid-scan       a JPEG cut in the middle of its scan with an EOI marker appended: exit 1, corrupt data
#   max-pixels              pack and restore with --max-pixels below a bundled photo's size: exit 1 naming the limit;
#                           --max-pixels 0: exit 1 with the valid range
#   eval-small-images       eval of a folder with a 60x40, a 10x10 and a 64x64 image: exit 0, one warning per small
#                           image naming it and its size, the table of the 64x64 one
#   eval-only-small-images  eval of a folder with only small images: exit 1, one line naming the folder, no crash
#   restore-small-image     restore of a 10x10 image: exit 1 naming the file and the 48x48 window
#   train-eval-small-images single-rank train whose --test-data has a 60x40 image: exit 0, the warning, results.md
#                           of the 192x192 image
#   pack-options            --patches-per-image 99999999999, --patch-size=-5, --patch-size 0, --image-step 0,
#                           --image-size 0, --scale 9: exit 1 naming the option and its range, no output, no
#                           OUTPUT.tmp-*
#   disk-full-pack          pack onto a 2 MB tmpfs: exit 1 with "No space left on device", no segfault, no temporary
#   disk-full-train         single-rank train whose checkpoint does not fit on the tmpfs: exit 1 with the ENOSPC
#                           message, no segfault, no temporary
# The disk-full cases mount a tmpfs (root only; they are skipped with the reason if mount is not permitted) and
# always unmount it. Hostile files are crafted here from the fixture Tests/AdaptIRCoreTests/Fixtures/imageio/photo.jpg
# (python3, standard library only).
#
# Needs .build/release/adaptir-dist (scripts/run-tests.sh builds it; this script builds nothing).
# Env: HOSTILE_WORKDIR (default .build/hostile-tests, wiped at start), ADAPTIR_BIN (default
#      .build/release/adaptir-dist), HOSTILE_ONLY (case names, space- or comma-separated; default all).
set -u
cd "$(dirname "$0")/.."
repo=$PWD

bin="${ADAPTIR_BIN:-$repo/.build/release/adaptir-dist}"
work="${HOSTILE_WORKDIR:-$repo/.build/hostile-tests}"
limit=120         # seconds before timeout(1) ends a command (no case comes close)

export OPENBLAS_NUM_THREADS=1
# mpirun as root (containers, CI) needs both (the kind-images case runs 2 ranks).
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

if [ ! -x "$bin" ]; then
    echo "test-hostile: $bin not found; build it first (swift build -c release)" >&2
    echo "test-hostile: 0 passed, 1 failed, 0 skipped"
    exit 2
fi
case "$bin" in /*) ;; *) bin="$repo/$bin" ;; esac
command -v python3 >/dev/null || { echo "test-hostile: python3 not found"; echo "test-hostile: 0 passed, 1 failed, 0 skipped"; exit 2; }

rm -rf "$work"
mkdir -p "$work"
work=$(cd "$work" && pwd)
samples=$repo/datasets/samples/train
backbone=$repo/datasets/ipt_small_backbone.h5
photo=$repo/Tests/AdaptIRCoreTests/Fixtures/imageio/photo.jpg

passed=0
failed=0
skipped=0
pass() { passed=$((passed + 1)); echo "test-hostile: $1: PASS ($2)"; }
skip() { skipped=$((skipped + 1)); echo "test-hostile: $1: SKIP ($2)"; }
fail() {
    failed=$((failed + 1)); echo "test-hostile: $1: FAIL ($2)"
    if [ -f "$work/$1/out.log" ]; then echo "---- last lines of $work/$1/out.log ----"; tail -n 15 "$work/$1/out.log"; echo "----"; fi
}

# run CASE ARGS...: runs the binary with ARGS in $work/CASE (stdout and stderr in out.log); sets rc and log.
run() {
    local dir=$work/$1; shift
    mkdir -p "$dir"
    ( cd "$dir" && timeout --kill-after=10 "$limit" "$bin" "$@" >out.log 2>&1 )
    rc=$?
    log=$dir/out.log
}

has() { grep -qF -- "$2" "$1"; }
# The temporaries a writer leaves when it dies (OUTPUT.tmp-PID), under DIR.
temps() { find "$1" -name '*.tmp-*' 2>/dev/null | head -n 3; }
# A crash (signal) instead of an error exit: 128 + signal (132 SIGILL of a Swift trap, 134 abort, 139 segfault).
crashed() { [ "$1" -gt 128 ]; }

# craft KIND OUT: photo.jpg with its SOF size replaced (claim:WxH) or cut mid-scan with an EOI appended (cut).
craft() {
    python3 - "$photo" "$1" "$2" <<'EOF'
import sys
b = bytearray(open(sys.argv[1], 'rb').read())
kind, out = sys.argv[2], sys.argv[3]
def marker(codes):
    i = 2
    while b[i + 1] not in codes:
        i += 2 + int.from_bytes(b[i + 2:i + 4], 'big')
    return i
if kind.startswith('claim:'):
    w, h = (int(v) for v in kind[6:].split('x'))
    i = marker((0xC0, 0xC1, 0xC2))
    b[i + 5:i + 7] = h.to_bytes(2, 'big'); b[i + 7:i + 9] = w.to_bytes(2, 'big')
elif kind == 'cut':
    i = marker((0xDA,)); scan = i + 2 + int.from_bytes(b[i + 2:i + 4], 'big')
    b = b[:scan + (len(b) - 2 - scan) // 2] + b'\xff\xd9'
open(out, 'wb').write(b)
EOF
}

# png OUT W H: an 8-bit RGB PNG of a gradient.
png() {
    python3 - "$@" <<'EOF'
import sys, zlib, struct
path, w, h = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
raw = b''.join(b'\x00' + bytes((x * 7 + y * 3 + c * 50) % 256 for x in range(w) for c in range(3)) for y in range(h))
chunk = lambda t, d: struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d))
open(path, 'wb').write(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 8, 2, 0, 0, 0))
                       + chunk(b'IDAT', zlib.compress(raw)) + chunk(b'IEND', b''))
EOF
}

# expect_refusal CASE FILE-OR-FIELD TEXT OUTPUT: rc 1, or 64 for a command-line usage error (not a crash), one
# "adaptir-dist ..." line naming FILE-OR-FIELD and containing TEXT, no OUTPUT and no temporary of it.
expect_refusal() {
    local name=$1 what=$2 text=$3 out=$4
    if crashed "$rc"; then fail "$name" "crashed, rc $rc"
    elif [ "$rc" -ne 1 ] && [ "$rc" -ne 64 ]; then fail "$name" "rc $rc, expected 1 (or 64, a usage error)"
    elif ! has "$log" "$what"; then fail "$name" "the error does not name $what"
    elif ! has "$log" "$text"; then fail "$name" "no '$text' in the error"
    elif [ -e "$out" ]; then fail "$name" "$out was written"
    elif [ -n "$(temps "$(dirname "$out")")" ]; then fail "$name" "temporaries left: $(temps "$(dirname "$out")")"
    else pass "$name" "rc 1: $(grep -F -- "$what" "$log" | head -n 1 | cut -c1-160)"
    fi
}

case_jpeg_bomb() {
    local d=$work/jpeg-bomb; mkdir -p "$d/in"
    craft claim:60000x60000 "$d/in/bomb.jpg"
    # A 4 GB address-space limit keeps a decoder that allocates for the claimed size (10.8 GB) from taking the machine.
    ( ulimit -v 4000000; run jpeg-bomb pack --task denoise_30 --patch-size 16 --input in --output out.h5; exit $rc )
    rc=$?; log=$d/out.log
    expect_refusal jpeg-bomb "in/bomb.jpg" "60000x60000 = 3600000000 pixels, more than the limit of 100000000 (--max-pixels)" "$d/out.h5"
}

case_jpeg_header_too_large() {
    local d=$work/jpeg-header-too-large; mkdir -p "$d/in"
    craft claim:10000x10000 "$d/in/big.jpg"
    ( ulimit -v 4000000; run jpeg-header-too-large pack --task denoise_30 --patch-size 16 --input in --output out.h5; exit $rc )
    rc=$?; log=$d/out.log
    expect_refusal jpeg-header-too-large "in/big.jpg" "corrupt JPEG data" "$d/out.h5"
}

case_jpeg_cut_mid_scan() {
    local d=$work/jpeg-cut-mid-scan; mkdir -p "$d/in"
    craft cut "$d/in/cut.jpg"
    run jpeg-cut-mid-scan pack --task denoise_30 --patch-size 16 --input in --output out.h5
    expect_refusal jpeg-cut-mid-scan "in/cut.jpg" "corrupt JPEG data" "$d/out.h5"
}

case_max_pixels() {
    local d=$work/max-pixels
    run max-pixels pack --task denoise_30 --input "$samples" --output out.h5 --max-pixels 1000
    expect_refusal max-pixels "$samples/astronaut.png" "= 262144 pixels, more than the limit of 1000 (--max-pixels)" "$d/out.h5"
    run max-pixels pack --task denoise_30 --input "$samples" --output out.h5 --max-pixels 0
    expect_refusal max-pixels "--max-pixels" "0 is not in 1...17179869184" "$d/out.h5"
    run max-pixels restore --backbone "$backbone" --task denoise_30 --max-pixels 1000 "$samples/astronaut.png" out.png
    expect_refusal max-pixels "$samples/astronaut.png" "more than the limit of 1000" "$d/out.png"
}

case_eval_small_images() {
    local d=$work/eval-small-images; mkdir -p "$d/test"
    png "$d/test/a_small.png" 60 40; png "$d/test/b_tiny.png" 10 10; png "$d/test/c_ok.png" 64 64
    run eval-small-images eval --backbone "$backbone" --task denoise_30 --test-data test --output ev
    if crashed "$rc"; then fail eval-small-images "crashed, rc $rc"
    elif [ "$rc" -ne 0 ]; then fail eval-small-images "rc $rc, expected 0"
    elif ! has "$log" "warning: test/a_small.png: skipped: 60x40 is smaller than the 48x48 window"; then fail eval-small-images "no warning naming a_small.png 60x40"
    elif ! has "$log" "warning: test/b_tiny.png: skipped: 10x10 is smaller"; then fail eval-small-images "no warning naming b_tiny.png 10x10"
    elif ! grep -q '^| c_ok.png |' "$d/ev/results.md" 2>/dev/null; then fail eval-small-images "no row of c_ok.png in results.md"
    elif grep -q 'a_small\|b_tiny' "$d/ev/results.md"; then fail eval-small-images "a skipped image is in the table"
    else pass eval-small-images "rc 0, two warnings, the table of c_ok.png"
    fi
}

case_eval_only_small_images() {
    local d=$work/eval-only-small-images; mkdir -p "$d/test"
    png "$d/test/a_small.png" 60 40
    run eval-only-small-images eval --backbone "$backbone" --task denoise_30 --test-data test --output ev
    expect_refusal eval-only-small-images "test: no test image is large enough" "all 1 are smaller than the 48x48 window" "$d/ev/results.md"
}

case_restore_small_image() {
    local d=$work/restore-small-image; mkdir -p "$d"
    png "$d/tiny.png" 10 10
    run restore-small-image restore --backbone "$backbone" --task denoise_30 tiny.png out.png
    expect_refusal restore-small-image "tiny.png" "10x10 is smaller than the 48x48 window" "$d/out.png"
}

# Bundled photos packed once for the train cases: 4 patches of each of the 4 photos, one global batch of 16.
train_data() {
    [ -f "$work/train.h5" ] || "$bin" pack --task lr4_noise30 --input "$samples" --output "$work/train.h5" --patches-per-image 4 >/dev/null 2>&1
}

case_train_eval_small_images() {
    local d=$work/train-eval-small-images; mkdir -p "$d/test"
    train_data
    png "$d/test/a_small.png" 60 40; png "$d/test/c_ok.png" 192 192
    run train-eval-small-images train --preset tiny --steps 1 --backbone '' --train-data "$work/train.h5" --test-data test --output run
    if crashed "$rc"; then fail train-eval-small-images "crashed, rc $rc"
    elif [ "$rc" -ne 0 ]; then fail train-eval-small-images "rc $rc, expected 0"
    elif ! has "$log" "warning: test/a_small.png: skipped: image 60x40, its x4 LQ 15x10 is smaller than the 48x48 window"; then fail train-eval-small-images "no warning naming a_small.png"
    elif ! grep -q '^| c_ok.png |' "$d/run/results.md" 2>/dev/null; then fail train-eval-small-images "no row of c_ok.png in results.md"
    else pass train-eval-small-images "rc 0, the warning, results.md of c_ok.png"
    fi
}

case_pack_options() {
    local d=$work/pack-options row args flag
    for row in "--patches-per-image 99999999999|--patches-per-image|99999999999 is not in 1...100000" \
               "--patch-size=-5|--patch-size|-5 is not in 1...1024" \
               "--patch-size 0|--patch-size|0 is not in 1...1024" \
               "--kind images --image-step 0|--image-step|0 is not in 1...16384" \
               "--kind images --image-size 0|--image-size|0 is not in 1...16384" \
               "--scale 9|--scale|9 is not in 1...4"; do
        IFS='|' read -r args flag text <<<"$row"
        # shellcheck disable=SC2086
        run pack-options pack --task denoise_30 --input "$samples" --output out.h5 $args
        expect_refusal "pack-options $args" "pack: $flag: " "$text" "$d/out.h5"
    done
}

# with_tmpfs CASE FUNCTION: runs FUNCTION DIR with a 2 MB tmpfs mounted at DIR, always unmounting it.
with_tmpfs() {
    local name=$1 body=$2 mnt=$work/$1/disk
    mkdir -p "$mnt"
    if ! mount -t tmpfs -o size=2m tmpfs "$mnt" 2>"$work/$name/mount.err"; then
        skip "$name" "cannot mount a tmpfs here (needs root outside an unprivileged container): $(head -c 120 "$work/$name/mount.err")"
        return
    fi
    trap 'umount "$mnt" 2>/dev/null' EXIT
    "$body" "$mnt"
    umount "$mnt" || echo "test-hostile: $name: could not unmount $mnt" >&2
    trap - EXIT
}

disk_full_pack() {
    run disk-full-pack pack --task lr4_noise30 --input "$samples" --output "$1/p.h5"
    expect_refusal disk-full-pack "$1/p.h5" "No space left on device" "$1/p.h5"
}

disk_full_train() {
    # Fill the tmpfs but 16 kB: train.csv fits, the 35 kB checkpoint does not.
    dd if=/dev/zero of="$1/filler" bs=4k >/dev/null 2>&1
    truncate -s $(( $(stat -c %s "$1/filler") - 16384 )) "$1/filler"
    run disk-full-train train --preset tiny --steps 2 --backbone '' --train-data "$work/train.h5" --no-eval --output "$1/run"
    expect_refusal disk-full-train "$1/run/checkpoint.h5" "No space left on device" "$1/run/checkpoint.h5"
}

case_disk_full_pack() { with_tmpfs disk-full-pack disk_full_pack; }
case_disk_full_train() { train_data; with_tmpfs disk-full-train disk_full_train; }

# Issue 14 item 5: a packed file or an adapter of another task.
case_task_mismatch() {
    local d=$work/task-mismatch; mkdir -p "$d"
    "$bin" pack --task sr_2 --input "$samples" --output "$d/sr2.h5" --patches-per-image 2 >/dev/null 2>&1
    "$bin" pack --task sr_4 --input "$samples" --output "$d/sr4.h5" --patches-per-image 2 >/dev/null 2>&1
    run task-mismatch train --preset tiny --steps 1 --backbone '' --no-eval --task lr4_noise30 --train-data "$d/sr2.h5" --output r1
    expect_refusal "task-mismatch scale" "sr2.h5" "packed for task 'sr_2' at scale 2; task lr4_noise30 needs scale 4" "$d/r1/checkpoint.h5"
    run task-mismatch train --preset tiny --steps 1 --backbone '' --no-eval --task lr4_noise30 --train-data "$d/sr4.h5" --output r2
    expect_refusal "task-mismatch degradation" "sr4.h5" "packed for task 'sr_4', the run's task is lr4_noise30" "$d/r2/checkpoint.h5"
    run task-mismatch train --preset tiny --steps 1 --backbone '' --no-eval --task lr4_noise30 --train-data "$d/sr4.h5" --output r3 --allow-task-mismatch --global-batch 4
    if [ "$rc" -ne 0 ] || ! has "$log" "--allow-task-mismatch"; then fail "task-mismatch override" "rc $rc, or no warning"; else pass "task-mismatch override" "rc 0 with a warning"; fi
    # An adapter trained for sr_4 used for lr4_noise30 (same head, other degradation).
    "$bin" train --preset small --steps 1 --no-eval --task sr_4 --train-data "$d/sr4.h5" --global-batch 4 --output "$d/a4" >/dev/null 2>&1
    png "$d/t.png" 192 192; mkdir -p "$d/test"; mv "$d/t.png" "$d/test/"
    run task-mismatch eval --backbone "$backbone" --adapter "$d/a4/checkpoint.h5" --task lr4_noise30 --test-data "$d/test" --output ev
    expect_refusal "task-mismatch eval" "a4/checkpoint.h5" "adapter trained for task 'sr_4', not --task lr4_noise30" "$d/ev/results.md"
}

# Item 6: unknown, misspelt and duplicated YAML keys, values of the wrong type.
case_yaml_keys() {
    local d=$work/yaml-keys row yaml text; mkdir -p "$d"
    for row in "learning_rate: 0.5|unknown key 'learning_rate' (line 1); did you mean 'lr'?" \
               "stpes: 5|unknown key 'stpes' (line 1); did you mean 'steps'?" \
               "steps: 5\\nlr: 0.1\\nsteps: 6|key 'steps' (line 3) appears twice (first on line 1)" \
               "steps: abc|field 'steps': expected a whole number, got 'abc'" \
               "sync_bn: maybe|field 'sync_bn': expected true or false, got 'maybe'" \
               "- steps|the top level must be a mapping" \
               "attention_memory_mib: -5|c.yaml: config field 'attention_memory_mib': must be in [0, 1048576] MiB" \
               "lr: 0|c.yaml: config field 'lr': must be a positive number, got 0.0"; do
        IFS='|' read -r yaml text <<<"$row"
        printf '%b\n' "$yaml" >"$d/c.yaml"
        run yaml-keys train --config "$d/c.yaml" --output run
        expect_refusal "yaml-keys $yaml" "c.yaml" "$text" "$d/run/checkpoint.h5"
    done
    # A bad value from an option, beside a valid file, is the option's: the error does not blame the file.
    printf 'steps: 5\n' >"$d/c.yaml"
    run yaml-keys train --config "$d/c.yaml" --lr 0 --output run
    if [ "$rc" -ne 1 ] && [ "$rc" -ne 64 ]; then fail "yaml-keys --lr 0" "rc $rc, expected 1 (or 64)"
    elif ! has "$log" "config field 'lr': must be a positive number"; then fail "yaml-keys --lr 0" "no 'config field 'lr'' in the error"
    elif has "$log" "c.yaml"; then fail "yaml-keys --lr 0" "the error names c.yaml, which is valid: $(head -1 "$log")"
    else pass "yaml-keys --lr 0" "rc $rc: $(grep -F "lr" "$log" | head -n 1 | cut -c1-160)"
    fi
}

# Item 9: one-line messages for bad options and paths.
case_bad_options() {
    local d=$work/bad-options; mkdir -p "$d"
    train_data
    run bad-options train --watchdog nan --output r
    expect_refusal "bad-options --watchdog nan" "--watchdog" "expected seconds >= 0" "$d/r/checkpoint.h5"
    run bad-options train --watchdog=-1 --output r
    expect_refusal "bad-options --watchdog=-1" "--watchdog" "expected seconds >= 0" "$d/r/checkpoint.h5"
    run bad-options restore --backbone "$backbone" --task denoise_30 "$samples/coffee.png" out.jpg
    expect_refusal "bad-options restore out.jpg" "out.jpg" "restore writes PNG" "$d/out.jpg"
    run bad-options train --preset tiny --steps 1 --backbone '' --train-data "$work/train.h5" --test-data nowhere --output r
    expect_refusal "bad-options missing --test-data" "nowhere" "no such test folder" "$d/r/results.md"
    run bad-options train --preset tiny --steps 1 --backbone '' --no-eval --train-data "$work/train.h5" --output /proc/adaptir-run
    expect_refusal "bad-options unwritable --output" "/proc/adaptir-run" "cannot create the output folder" "/proc/adaptir-run"
    # --resume with fewer steps than the checkpoint's
    "$bin" train --preset tiny --steps 3 --backbone '' --no-eval --train-data "$work/train.h5" --output "$d/r3" >/dev/null 2>&1
    # inspect --summary of an adapter file: no percentage of a backbone that is not in the file
    run bad-options inspect "$d/r3/checkpoint.h5" --summary
    if [ "$rc" -ne 0 ] || grep -q "% of the backbone" "$log" || ! has "$log" "an adapter file: the backbone is in another file"; then
        fail "bad-options inspect adapter" "rc $rc: $(grep -m1 trainable "$log")"
    else pass "bad-options inspect adapter" "$(grep -m1 trainable "$log")"; fi
    run bad-options train --preset tiny --steps 2 --backbone '' --no-eval --train-data "$work/train.h5" --output "$d/r3" --resume
    expect_refusal "bad-options --resume --steps 2" "r3/checkpoint.h5" "is at step 3, beyond --steps 2" "$d/r3/none"
    # a method that trains nothing has no training step to time (bench model trapped in the backward before)
    run bad-options bench model --preset tiny --batch 2 --method frozen
    expect_refusal "bad-options bench model --method frozen" "--method" "method 'frozen' has no trainable parameters" "$d/none"
}

# Item 10: a checkpoint is not replaced without --resume or --force; one writer per output folder and pack output.
case_lost_work() {
    local d=$work/lost-work holder; mkdir -p "$d"
    train_data
    "$bin" train --preset tiny --steps 2 --backbone '' --no-eval --train-data "$work/train.h5" --output "$d/r" >/dev/null 2>&1
    local before; before=$(sha256sum "$d/r/checkpoint.h5" | cut -c1-64)
    run lost-work train --preset tiny --steps 2 --seed 1 --backbone '' --no-eval --train-data "$work/train.h5" --output "$d/r"
    if [ "$rc" -ne 1 ] || ! has "$log" "checkpoint.h5 exists: continue that run with --resume, or start over with --force"; then fail "lost-work existing checkpoint" "rc $rc: $(tail -1 "$log")"
    elif [ "$(sha256sum "$d/r/checkpoint.h5" | cut -c1-64)" != "$before" ]; then fail "lost-work existing checkpoint" "the checkpoint changed"
    else pass "lost-work existing checkpoint" "rc 1, checkpoint unchanged: $(grep -m1 exists "$log" | cut -c1-140)"; fi
    run lost-work train --preset tiny --steps 2 --seed 1 --backbone '' --no-eval --train-data "$work/train.h5" --output "$d/r" --force
    if [ "$rc" -ne 0 ]; then fail "lost-work --force" "rc $rc"; else pass "lost-work --force" "rc 0, replaced"; fi
    # Another run holds the folder (flock(1) takes the same lock a train would).
    # setsid: the holder is a process group of its own, so killing it also ends the sleep that inherited the lock.
    setsid flock "$d/r/.lock" sleep 20 & holder=$!
    sleep 0.5
    run lost-work train --preset tiny --steps 2 --backbone '' --no-eval --train-data "$work/train.h5" --output "$d/r" --force
    expect_refusal "lost-work locked output" "output folder $d/r is in use by another run" "wait for it or choose another output" "$d/r/none"
    setsid flock "$d/p.h5.lock" sleep 20 & local holder2=$!
    sleep 0.5
    run lost-work pack --task denoise_30 --input "$samples" --output "$d/p.h5"
    expect_refusal "lost-work locked pack output" "pack output $d/p.h5 is in use by another run" "wait for it" "$d/p.h5"
    kill -- -"$holder" -"$holder2" 2>/dev/null; wait "$holder" "$holder2" 2>/dev/null
    run lost-work pack --task denoise_30 --input "$samples" --output "$d/p.h5" --patches-per-image 1
    if [ "$rc" -ne 0 ] || [ -e "$d/p.h5.lock" ]; then fail "lost-work pack after the lock" "rc $rc or the lock file stayed"; else pass "lost-work pack after the lock" "rc 0, no lock file left"; fi
}

# Item 8: --verify-data recomputes the pixel hash before training (the attributes' hash is checked at every open:
# PatchFileTests.testEditedAttributesFailAtOpen).
case_verify_data() {
    train_data
    run verify-data train --preset tiny --steps 1 --backbone '' --no-eval --train-data "$work/train.h5" --output run --verify-data
    if [ "$rc" -ne 0 ] || ! has "$log" "--verify-data: content_sha256 of $work/train.h5 matches its pixels"; then fail verify-data "rc $rc: $(tail -1 "$log")"
    else pass verify-data "rc 0: $(grep -m1 -- '--verify-data' "$log" | cut -c1-120)"; fi
}

# Item 7: a --kind images file trains with the task's degradation applied on the fly, the same on 1 and 2 ranks.
case_kind_images() {
    local d=$work/kind-images; mkdir -p "$d"
    "$bin" pack --task lr4_noise30 --input "$samples" --kind images --output "$d/img.h5" >/dev/null 2>&1
    run kind-images train --preset tiny --steps 2 --global-batch 4 --backbone '' --no-eval --train-data "$d/img.h5" --output one
    local rc1=$rc
    ( cd "$d" && timeout --kill-after=10 "$limit" mpirun -n 2 --bind-to none "$bin" train --preset tiny --steps 2 --global-batch 4 \
        --backbone '' --no-eval --train-data "$d/img.h5" --output two >two.log 2>&1 )
    local rc2=$? l1 l2
    l1=$(awk -F, 'NR>1{printf "%s ", $2}' "$d/one/train.csv" 2>/dev/null); l2=$(awk -F, 'NR>1{printf "%s ", $2}' "$d/two/train.csv" 2>/dev/null)
    if [ "$rc1" -ne 0 ] || [ "$rc2" -ne 0 ]; then fail kind-images "rc $rc1 (1 rank), $rc2 (2 ranks): $(tail -1 "$log")"
    elif [ -z "$l1" ] || [ "$l1" != "$l2" ]; then fail kind-images "losses differ: 1 rank '$l1', 2 ranks '$l2'"
    else pass kind-images "rc 0 on 1 and 2 ranks, same losses: $l1"; fi
}

all="jpeg-bomb jpeg-header-too-large jpeg-cut-mid-scan max-pixels eval-small-images eval-only-small-images
     restore-small-image train-eval-small-images pack-options disk-full-pack disk-full-train task-mismatch yaml-keys
     bad-options lost-work verify-data kind-images"
only=${HOSTILE_ONLY:-$all}
for name in ${only//,/ }; do
    fn="case_${name//-/_}"
    if declare -F "$fn" >/dev/null; then "$fn"; else fail "$name" "no such case"; fi
done

echo "test-hostile: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
