/* mpifit/tensor.h: shapes, tensor views and the library's one allocator.
 *
 * Conventions: float32 everywhere; images are NHWC (batch, height, width,
 * channels) in row-major order, C fastest. A shape's d[0] is the batch
 * dimension; 0 there means "any batch size" (Keras' None). */
#ifndef MPIFIT_TENSOR_H
#define MPIFIT_TENSOR_H
#include <stddef.h>
#include <stdint.h>
#include "mpifit/version.h"

#define MF_MAX_DIMS 4
#define MF_ALIGN 64 /* bytes: a cache line, and a full AVX-512 vector */

typedef struct mf_shape {
    int ndim; /* 1..MF_MAX_DIMS */
    int d[MF_MAX_DIMS]; /* extents; d[0] is the batch, 0 = any */
} mf_shape;

/* A view: a data pointer plus a shape. Owns nothing. */
typedef struct mf_tensor {
    float *data;
    mf_shape shape;
} mf_tensor;

MF_API mf_shape mf_shape1(int d0);
MF_API mf_shape mf_shape2(int d0, int d1);
MF_API mf_shape mf_shape3(int d0, int d1, int d2);
MF_API mf_shape mf_shape4(int d0, int d1, int d2, int d3);
/* Product of all extents (a 0 batch counts as 1: the per-sample size). */
MF_API size_t mf_shape_numel(const mf_shape *s);
/* Product of the extents after the batch dimension. */
MF_API size_t mf_shape_sample_numel(const mf_shape *s);
/* 1 when ndim and every extent agree, else 0. */
MF_API int mf_shape_eq(const mf_shape *a, const mf_shape *b);
/* Keras-style text, e.g. "(None, 112, 112, 32)"; writes at most n bytes to buf. */
MF_API const char *mf_shape_str(const mf_shape *s, char *buf, size_t n);
MF_API mf_tensor mf_tensor_view(float *data, mf_shape shape);
MF_API size_t mf_tensor_numel(const mf_tensor *t);

/* Compute threads of this process (OpenBLAS and mpifit's OpenMP kernels):
 * per rank, so ranks sharing a node do not oversubscribe its cores. */
MF_API void mf_set_num_threads(int n);
MF_API int mf_get_num_threads(void);

/* The allocator every mpifit buffer comes from: MF_ALIGN-aligned, zero-filled,
 * counted. Failure panics naming the size and the call site (llm.c's
 * mallocCheck): training cannot continue without its buffers.
 * mf_free(NULL) is a no-op. */
#define mf_alloc(bytes) mf_alloc_at((bytes), __FILE__, __LINE__)
MF_API void *mf_alloc_at(size_t bytes, const char *file, int line);
MF_API void mf_free(void *p);
/* Live allocations and bytes, for leak checks in tests. */
MF_API size_t mf_alloc_live_count(void);
MF_API size_t mf_alloc_live_bytes(void);
#endif
