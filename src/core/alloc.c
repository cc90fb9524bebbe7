/* alloc.c: the one allocator (Lua's single lua_Alloc, Redis' zmalloc).
 *
 * Aligned to MF_ALIGN so SIMD kernels and BLAS get whole cache lines, zero-filled
 * so a forgotten initialisation is deterministic, and counted so tests can
 * prove that every create has its free. The size is kept in a header in front
 * of the block, one MF_ALIGN-sized slot, so mf_free needs no size argument. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include "core.h"

static atomic_size_t live_count;
static atomic_size_t live_bytes;

static void *alloc(size_t bytes, int zero, const char *file, int line)
{
    if (bytes > SIZE_MAX - 2 * MF_ALIGN)
        mf_panic(file, line, "allocation of %zu bytes overflows", bytes);
    size_t total = MF_ALIGN + ((bytes + MF_ALIGN - 1) / MF_ALIGN) * MF_ALIGN;
    unsigned char *base = aligned_alloc(MF_ALIGN, total);
    if (!base)
        mf_panic(file, line, "out of memory allocating %zu bytes (%.1f MiB)", bytes, (double)bytes / (1024.0 * 1024.0));
    if (zero)
        memset(base, 0, total);
    else
        memset(base, 0, MF_ALIGN);
    memcpy(base, &bytes, sizeof bytes);
    atomic_fetch_add(&live_count, 1);
    atomic_fetch_add(&live_bytes, bytes);
    return base + MF_ALIGN;
}

void *mf_alloc_at(size_t bytes, const char *file, int line) { return alloc(bytes, 1, file, line); }

/* Arenas that are written before they are read (activations): no zero-fill,
 * so pages are touched only when the memory plan actually uses them. */
void *mf_alloc_uninit_at(size_t bytes, const char *file, int line) { return alloc(bytes, 0, file, line); }

void mf_free(void *p)
{
    if (!p)
        return;
    unsigned char *base = (unsigned char *)p - MF_ALIGN;
    size_t bytes;
    memcpy(&bytes, base, sizeof bytes);
    atomic_fetch_sub(&live_count, 1);
    atomic_fetch_sub(&live_bytes, bytes);
    free(base);
}

size_t mf_alloc_live_count(void) { return atomic_load(&live_count); }
size_t mf_alloc_live_bytes(void) { return atomic_load(&live_bytes); }

void *mf_grow(void *array, int n, int *cap, int first, size_t elem)
{
    if (array && n < *cap)
        return array;
    int ncap = *cap > 0 ? 2 * *cap : first;
    void *bigger = mf_alloc((size_t)ncap * elem);
    if (array)
        memcpy(bigger, array, (size_t)n * elem);
    mf_free(array);
    *cap = ncap;
    return bigger;
}

char *mf_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = mf_alloc(n);
    memcpy(d, s, n);
    return d;
}
