/*
 * The one dispatch point between the cells and the arithmetic that dominates a step: the
 * matrix-vector product and the elementwise activations. Every kernel set implements this
 * table; the generic set is always built and is the reference the others are tested against.
 */
#ifndef LSTMLITE_KERNELS_H
#define LSTMLITE_KERNELS_H

#include "lstmlite.h"

typedef struct {
    const char *name;
    /* y[m] += sum_k W[m*K + k] * x[k] for m < M. W row-major (M, K). */
    void (*gemv_acc)(int M, int K, const float *W, const float *x, float *y);
    /* y[m] += W1[m,:] . x1 + W2[m,:] . x2: W1 (M, K1) and W2 (M, K2) row-major; the input and
     * recurrent products of a cell in one pass (K2 may be 0). */
    void (*gemv2_acc)(int M, int K1, const float *W1, const float *x1, int K2, const float *W2,
                      const float *x2, float *y);
    /* x[i] = sigmoid(clip(x[i])) / tanh(clip(x[i])) in place; clip INFINITY = none. */
    void (*sigmoid)(float *x, int n, float clip);
    void (*tanh)(float *x, int n, float clip);
    /* y[i] = exp(x[i]); used by softmax, Elu and Softplus. */
    void (*exp)(const float *x, float *y, int n);
} ll_kernel_table;

extern const ll_kernel_table ll_kernels_generic;
#if defined(__x86_64__) || defined(_M_X64)
#define LL_HAVE_AVX2_KERNELS 1
extern const ll_kernel_table ll_kernels_avx2;
#endif

/* The table in use; set once at import (ll_kernels_select), read by every cell. */
extern const ll_kernel_table *ll_active_kernels;

#endif
