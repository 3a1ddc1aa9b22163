#pragma once
#include <malloc.h>
// glibc allocator tuning (malloc.h is not part of Swift's Glibc module).
static inline int swalloc_keep_large_blocks(int bytes) {
    return mallopt(M_MMAP_THRESHOLD, bytes) && mallopt(M_TRIM_THRESHOLD, bytes);
}
