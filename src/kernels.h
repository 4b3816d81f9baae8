/*
 * The one dispatch point between the cells and the arithmetic that dominates a step: the
 * matrix-vector products (float32 and int8) and the elementwise activations. Every kernel set
 * implements this table; the generic set is always built and is the reference the others are
 * tested against (the int8 products bit for bit, the float ones within rounding).
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
    /* acc[m] = sum_k W[m*K + k] * x[k] for m < M, exactly, in int32. W row-major (M, K) and x
     * hold values in -127..127 (never -128) and K <= LL_INT8_MAX_K, so no sum can overflow;
     * every set returns the same integers. */
    void (*gemv_s8)(int M, int K, const int8_t *W, const int8_t *x, int32_t *acc);
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
#if defined(__aarch64__)
#define LL_HAVE_NEON_KERNELS 1
#define LL_HAVE_DOTPROD_KERNELS 1
extern const ll_kernel_table ll_kernels_neon;
extern const ll_kernel_table ll_kernels_dotprod;
#endif
#if defined(__arm__) && defined(__linux__)
#define LL_HAVE_NEON_KERNELS 1
extern const ll_kernel_table ll_kernels_neon;
#endif

/* The portable int8 product, shared by the sets whose own form would be no faster. */
void ll_gemv_s8_portable(int M, int K, const int8_t *W, const int8_t *x, int32_t *acc);

/* The table in use; set once at import (ll_kernels_select), read by every cell. */
extern const ll_kernel_table *ll_active_kernels;

/* Scratch is carved into parts that each start at a multiple of 64 bytes (a cache line): a
 * cell computes the same offsets as its *_scratch_bytes() size query, from one function. */
#define LL_SCRATCH_ALIGN 64
static inline size_t ll_scratch_round(size_t bytes)
{
    return (bytes + (LL_SCRATCH_ALIGN - 1)) & ~(size_t)(LL_SCRATCH_ALIGN - 1);
}

/* Hands out the next part of a scratch buffer: returns its offset and advances `next` past
 * it, rounded up to the alignment. Sizing and carving go through the same calls. */
static inline size_t ll_scratch_take(size_t *next, size_t bytes)
{
    const size_t at = *next;
    *next += ll_scratch_round(bytes);
    return at;
}
#define LL_SCRATCH_AT(base, offset, type) ((type *)((unsigned char *)(base) + (offset)))

/* y[m] += (q[m,:] * s[m]) . x for m < M: x (K floats) is quantized into qx (K bytes), the
 * product runs in int32 into acc (M), and its float value is added to y (int8.c). */
void ll_int8_matvec_acc(int M, int K, const int8_t *q, const float *s, const float *x,
                        int8_t *qx, int32_t *acc, float *y);

/* Scratch bytes of one step of each layer kind (the cell files). */
size_t ll_lstm_scratch_bytes(const ll_layer *layer);
size_t ll_gru_scratch_bytes(const ll_layer *layer);
size_t ll_rnn_scratch_bytes(const ll_layer *layer);
size_t ll_dense_scratch_bytes(const ll_layer *layer);

#endif
