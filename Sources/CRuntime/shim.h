#pragma once
#include <malloc.h>
#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#include <cpuid.h>
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

// The widest x86 vector units the CPU and the OS both support, as OpenBLAS's kernel families need them:
// 2 = AVX-512 F, CD, BW, DQ and VL (its SkylakeX kernels), 1 = AVX2 and FMA (Haswell), 0 = neither or not x86-64.
static inline int swrt_x86_vector_level(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd") && __builtin_cpu_supports("avx512bw")
        && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl")) return 2;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return 1;
#endif
    return 0;
}

// The CPU family (base + extended, as /proc/cpuinfo's "cpu family") when the vendor is AMD, else 0: 25 is Zen 3
// and Zen 4, whose AVX-512 (Zen 4) runs on 256-bit units.
static inline int swrt_x86_amd_family(void) {
#if defined(__x86_64__)
    unsigned a, b, c, d;
    if (!__get_cpuid(0, &a, &b, &c, &d)) return 0;
    if (b != 0x68747541 || d != 0x69746e65 || c != 0x444d4163) return 0;   // "Auth" "enti" "cAMD"
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    unsigned family = (a >> 8) & 0xf;
    return (int)(family == 0xf ? family + ((a >> 20) & 0xff) : family);
#else
    return 0;
#endif
}
