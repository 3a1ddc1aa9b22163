#pragma once
#include <malloc.h>
#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#endif
// Process-level tuning that Swift's Glibc module cannot reach.

// glibc allocator: serve blocks up to `bytes` from the heap and never trim it back (malloc.h is not in Glibc):
// a training step frees and re-allocates the same activations every step.
static inline int swrt_keep_large_blocks(int bytes) {
    return mallopt(M_MMAP_THRESHOLD, bytes) && mallopt(M_TRIM_THRESHOLD, 0x7fffffff);
}

// A pause in a spin-wait loop (x86 PAUSE), so a spinning thread yields the core's pipeline to its sibling.
static inline void swrt_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    _mm_pause();
#endif
}

// Flush denormal results to zero and treat denormal inputs as zero (MXCSR FTZ | DAZ) on the calling thread,
// as torch.set_flush_denormal(True) does. Returns 1 where supported.
static inline int swrt_flush_denormals(void) {
#if defined(__x86_64__) || defined(__i386__)
    _mm_setcsr(_mm_getcsr() | 0x8040);
    return 1;
#else
    return 0;
#endif
}
