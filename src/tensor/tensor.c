/* tensor.c: shapes and views. Shapes carry the batch in d[0]; 0 means "any". */
#include <stdio.h>
#include <string.h>
#include "mpifit/tensor.h"

mf_shape mf_shape1(int d0)
{
    mf_shape s = {1, {d0, 0, 0, 0}};
    return s;
}
mf_shape mf_shape2(int d0, int d1)
{
    mf_shape s = {2, {d0, d1, 0, 0}};
    return s;
}
mf_shape mf_shape3(int d0, int d1, int d2)
{
    mf_shape s = {3, {d0, d1, d2, 0}};
    return s;
}
mf_shape mf_shape4(int d0, int d1, int d2, int d3)
{
    mf_shape s = {4, {d0, d1, d2, d3}};
    return s;
}

size_t mf_shape_sample_numel(const mf_shape *s)
{
    size_t n = 1;
    for (int i = 1; i < s->ndim; i++)
        n *= (size_t)s->d[i];
    return n;
}

size_t mf_shape_numel(const mf_shape *s)
{
    size_t n = mf_shape_sample_numel(s);
    return s->ndim > 0 && s->d[0] > 0 ? n * (size_t)s->d[0] : n;
}

int mf_shape_eq(const mf_shape *a, const mf_shape *b)
{
    if (a->ndim != b->ndim)
        return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->d[i] != b->d[i])
            return 0;
    return 1;
}

const char *mf_shape_str(const mf_shape *s, char *buf, size_t n)
{
    size_t used = 0;
    if (n == 0)
        return buf;
    buf[0] = '\0';
    for (int i = 0; i < s->ndim && used < n; i++) {
        int w;
        if (i == 0 && s->d[0] == 0)
            w = snprintf(buf + used, n - used, "(None");
        else
            w = snprintf(buf + used, n - used, i == 0 ? "(%d" : ", %d", s->d[i]);
        if (w < 0)
            return buf;
        used += (size_t)w;
    }
    if (used < n)
        snprintf(buf + used, n - used, s->ndim == 1 && s->d[0] != 0 ? ",)" : ")");
    return buf;
}

mf_tensor mf_tensor_view(float *data, mf_shape shape)
{
    mf_tensor t;
    t.data = data;
    t.shape = shape;
    return t;
}

size_t mf_tensor_numel(const mf_tensor *t) { return mf_shape_numel(&t->shape); }
