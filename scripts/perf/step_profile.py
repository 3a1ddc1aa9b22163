#!/usr/bin/env python3
"""Summarise `perf script -F tid,ip,sym` output of `adaptir-dist bench step` (recorded with frame pointers, -g).

Only samples of the training step count (a frame of Trainer.trainStep on the stack: the thread running the step,
not the pool's other threads, whose stacks start at the pool; the sgemm-rate measurement and start-up are left out). Prints:

  * by operator and phase: samples whose stack reaches an operator of AdaptIRCore (innermost first), forward or
    backward (Autograd.backward on the stack). OpenBLAS's kernels keep no frame pointer, so a sample inside them
    loses its callers and is not counted: the table is the step's time outside the GEMM kernels (OpenBLAS's own
    share is in `perf report --sort dso`);
  * the serial share with several threads: samples of the thread running the step that are outside every parallel
    region (no Parallel/WorkerPool frame), by innermost AdaptIRCore frame.

    scripts/perf/step_profile.py perf.txt [--top N]
"""
import collections
import re
import sys

OPS = ['convDirect3x3To3WeightGrad', 'convDirect3x3To3', 'convForward', 'conv2d', 'depthwiseConv2d',
       'linearOp', 'scaledDotProductAttention', 'pixelShuffle', 'layerNorm', 'softmax', 'BroadcastPlan',
       'broadcastForward', 'binary', 'gelu', 'sigmoid', 'PositiveMask', 'l1Loss', 'unfold', 'fold', 'complexAbs',
       'complexAngle', 'polar', 'irfft2', 'rfft2', 'permuteCopy', 'absolute', '5scaley', 'addScalar', 'mean',
       'batchNorm2d', 'Tensor5zeros', 'AdamW', 'releaseUnsavedStorage', 'topologicalOrder']


def samples(path):
    cur = None
    for line in open(path, errors='replace'):
        if not line.strip():
            if cur:
                yield cur
            cur = None
            continue
        if not line.startswith('\t'):  # a sample's header: the tid, right-aligned (a leading space when short)
            cur = {'tid': line.split()[0], 'stack': []}
        elif cur is not None:
            parts = line.strip().split(None, 1)
            cur['stack'].append(parts[1] if len(parts) > 1 else '?')
    if cur:
        yield cur


def main():
    path = sys.argv[1]
    top = int(sys.argv[sys.argv.index('--top') + 1]) if '--top' in sys.argv else 25
    step = [s for s in samples(path) if any('trainStep' in f for f in s['stack'])]
    if not step:
        sys.exit(f"step_profile: no sample of Trainer.trainStep in {path} (recorded with -g?)")
    by_op = collections.Counter()
    for s in step:
        st = s['stack']
        phase = 'backward' if any('Autograd' in f and 'backward' in f for f in st) else 'forward'
        name = next((op for f in st for op in OPS if op in f), 'other')
        by_op[(name, phase)] += 1
    total = len(step)
    print(f"{total} samples of the step's thread in the training step; share by operator (innermost on the stack) and phase:")
    for (name, phase), n in by_op.most_common(top):
        print(f"  {100 * n / total:5.1f}%  {name:30s} {phase}")
    main_tid = collections.Counter(s['tid'] for s in step).most_common(1)[0][0]
    mine = [s for s in step if s['tid'] == main_tid]
    serial = collections.Counter()
    for s in mine:
        st = s['stack']
        if any(k in f for f in st for k in ('Parallel', 'WorkerPool')):
            continue
        serial[next((f for f in st if 'AdaptIRCore' in f), st[0])[:100]] += 1
    n = sum(serial.values())
    print(f"\nthread {main_tid} (the step's): {len(mine)} samples, {n} ({100 * n / max(len(mine), 1):.1f}%) outside "
          f"every parallel region; the largest:")
    for f, k in serial.most_common(min(top, 12)):
        print(f"  {k:6d}  {f}")


if __name__ == '__main__':
    main()
