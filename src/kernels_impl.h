/*
 * The portable source of the kernel table, compiled once per instruction set: kernels_generic.c
 * includes it as it is; kernels_avx2.c includes it under `#pragma GCC target("avx2,fma")`, so
 * the compiler vectorizes the same loops 8 wide with fused multiply-add. The loops are written
 * so that the vectorizer needs no -ffast-math: independent partial sums spelled out, clamps as
 * comparisons (which keep NaN), float<->int reinterpretation through memcpy.
 *
 * The includer defines LL_KERNEL_SUFFIX (the set's name) before including this file, and may
 * define LL_GEMV_S8 as its own one-vector int8 product (written with the set's intrinsics);
 * without it the set uses the portable one. LL_GEMM_WIDTH_16 makes the float product's
 * partial sums 16 wide, for a set whose registers hold 16 floats; LL_GEMM_COLS (default 2)
 * is its tile's column count, 4 where there are 32 vector registers; LL_GEMM_IN_REGISTER(w)
 * pins a loaded weight vector to a register where one register holds it (gemm_f32_rows.h).
 */
#include <math.h>
#include <string.h>
#include <stdint.h>

/* The 8-float vectors below only travel between static inline functions of one file, so the
 * note GCC gives about their calling convention without AVX does not apply. */
#pragma GCC diagnostic ignored "-Wpsabi"

#define LL_CAT2(a, b) a##_##b
#define LL_CAT(a, b) LL_CAT2(a, b)
#define LL_FN(name) LL_CAT(name, LL_KERNEL_SUFFIX)

/* ---- GEMM ----
 * Y += W X, one pass over W for all columns (gemm_f32_rows.h has the loop structure). The
 * partial sums are 8-wide vectors, and four rows' sums are reduced together with shuffles (a
 * 4x4 transpose-add) rather than 28 scalar adds. The vectors are GCC/Clang vector extensions,
 * not intrinsics: the compiler maps them to one AVX register, two SSE2 or two NEON registers
 * (left to its auto-vectorizer, GCC interleaved rows with permutes and ran 5x slower). The
 * partial sums are added in a fixed order, so a kernel set gives the same bits on every call. */
typedef float LL_FN(ll_v8) __attribute__((vector_size(32)));
typedef float LL_FN(ll_v4) __attribute__((vector_size(16)));
typedef int32_t LL_FN(ll_i4) __attribute__((vector_size(16)));
#define LL_V8 LL_FN(ll_v8)
#define LL_V4 LL_FN(ll_v4)
#if defined(__clang__)
#define LL_SHUFFLE(a, b, i, j, k, l) __builtin_shufflevector(a, b, i, j, k, l)
#else
#define LL_SHUFFLE(a, b, i, j, k, l) __builtin_shuffle(a, b, (LL_FN(ll_i4)){i, j, k, l})
#endif

static inline LL_V8 LL_FN(ll_load8)(const float *p)
{
    LL_V8 v;
    memcpy(&v, p, sizeof v); /* an unaligned load: rows start anywhere */
    return v;
}

/* (a lower half + upper half) as 4 floats */
static inline LL_V4 LL_FN(ll_fold8)(LL_V8 a)
{
    LL_V4 lo, hi;
    memcpy(&lo, &a, sizeof lo);
    memcpy(&hi, (const char *)&a + sizeof lo, sizeof hi);
    return lo + hi;
}

/* s = {sum(a0), sum(a1), sum(a2), sum(a3)} */
static inline void LL_FN(ll_sum4)(LL_V8 a0, LL_V8 a1, LL_V8 a2, LL_V8 a3, float s[4])
{
    const LL_V4 b0 = LL_FN(ll_fold8)(a0), b1 = LL_FN(ll_fold8)(a1);
    const LL_V4 b2 = LL_FN(ll_fold8)(a2), b3 = LL_FN(ll_fold8)(a3);
    const LL_V4 u01 = LL_SHUFFLE(b0, b1, 0, 4, 1, 5) + LL_SHUFFLE(b0, b1, 2, 6, 3, 7);
    const LL_V4 u23 = LL_SHUFFLE(b2, b3, 0, 4, 1, 5) + LL_SHUFFLE(b2, b3, 2, 6, 3, 7);
    const LL_V4 sums = LL_SHUFFLE(u01, u23, 0, 1, 4, 5) + LL_SHUFFLE(u01, u23, 2, 3, 6, 7);
    memcpy(s, &sums, sizeof sums);
}

static inline float LL_FN(ll_sum1)(LL_V8 a)
{
    const LL_V4 folded = LL_FN(ll_fold8)(a);
    return (folded[0] + folded[2]) + (folded[1] + folded[3]);
}

#ifdef LL_GEMM_WIDTH_16
/* The includer's registers hold 16 floats (AVX-512): the partial sums are 16 wide, folded to 8
 * before the same reduction. */
typedef float LL_FN(ll_v16) __attribute__((vector_size(64)));
#define LL_V16 LL_FN(ll_v16)

static inline LL_V16 LL_FN(ll_load16)(const float *p)
{
    LL_V16 v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* lower half + upper half; spelled element by element, which GCC turns into one extract
 * (a memcpy out of the vector made it keep the partial sums on the stack) */
static inline LL_V8 LL_FN(ll_fold16)(LL_V16 a)
{
    const LL_V8 lo = {a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]};
    const LL_V8 hi = {a[8], a[9], a[10], a[11], a[12], a[13], a[14], a[15]};
    return lo + hi;
}

#define LL_F_VEC LL_V16
#define LL_F_WIDTH 16
#define LL_F_ZERO() ((LL_V16){0})
#define LL_F_LOAD(p) LL_FN(ll_load16)(p)
#define LL_F_SUM4(a0, a1, a2, a3, s)                                                         \
    LL_FN(ll_sum4)(LL_FN(ll_fold16)(a0), LL_FN(ll_fold16)(a1), LL_FN(ll_fold16)(a2),         \
                   LL_FN(ll_fold16)(a3), s)
#define LL_F_SUM1(a) LL_FN(ll_sum1)(LL_FN(ll_fold16)(a))
#else
#define LL_F_VEC LL_V8
#define LL_F_WIDTH 8
#define LL_F_ZERO() ((LL_V8){0})
#define LL_F_LOAD(p) LL_FN(ll_load8)(p)
#define LL_F_SUM4(a0, a1, a2, a3, s) LL_FN(ll_sum4)(a0, a1, a2, a3, s)
#define LL_F_SUM1(a) LL_FN(ll_sum1)(a)
#endif
#ifndef LL_GEMM_COLS
#define LL_GEMM_COLS 2
#endif
#define LL_F_COLS LL_GEMM_COLS
#ifdef LL_GEMM_IN_REGISTER
#define LL_F_IN_REGISTER(w) LL_GEMM_IN_REGISTER(w)
#else
#define LL_F_IN_REGISTER(w) ((void)0)
#endif
#define LL_F_NAME LL_FN(ll_gemm_acc)
#define LL_F_MLA(a, w, x) ((a) + (w) * (x))
#include "gemm_f32_rows.h"

/* ---- exp ----
 * e^x = 2^n * e^r with n = round(x / ln 2) and |r| <= ln2 / 2; e^r by its Taylor polynomial
 * of degree 7 (truncation error below 6e-9 relative), 2^n built in the exponent bits. This
 * replaces a libm call per element with a loop the compiler vectorizes; measured maximum
 * relative error against float64 is stated and tested in tests/test_activations.py.
 * The clamp keeps 2^n a normal float: e^88.3 is near FLT_MAX and e^-87.3 near FLT_MIN. */
#define LL_EXP_HI 88.3f
#define LL_EXP_LO (-87.3f)
#define LL_LOG2E 1.44269504088896341f
#define LL_LN2_HI 0.693145751953125f      /* ln 2 with its last 12 bits zero: n*LN2_HI is exact */
#define LL_LN2_LO 1.42860682030941723e-6f /* ln 2 - LN2_HI */
#define LL_ROUND_MAGIC 12582912.0f        /* 1.5 * 2^23: adding it rounds to an integer */

static inline float LL_FN(ll_exp1)(float x)
{
    x = x > LL_EXP_HI ? LL_EXP_HI : x; /* comparisons are false for NaN: NaN stays NaN */
    x = x < LL_EXP_LO ? LL_EXP_LO : x;
    float n = (x * LL_LOG2E + LL_ROUND_MAGIC) - LL_ROUND_MAGIC;
    n = (n == n) ? n : 0.0f; /* NaN: any finite exponent; r below carries the NaN */
    const float r = (x - n * LL_LN2_HI) - n * LL_LN2_LO;
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    const uint32_t bits = (uint32_t)((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

static inline float LL_FN(ll_clip1)(float v, float clip)
{
    /* comparisons, not fminf/fmaxf: those turn NaN into the bound */
    v = v > clip ? clip : v;
    return v < -clip ? -clip : v;
}

static void LL_FN(ll_exp)(const float *restrict x, float *restrict y, int n)
{
    for (int i = 0; i < n; i++)
        y[i] = LL_FN(ll_exp1)(x[i]);
}

/* sigmoid(x) = 1 / (1 + e^-x): for x -> -inf e^-x saturates at e^88.3 and the result at
 * about 4e-39 instead of 0, an absolute error far below float32's resolution near 1. */
static void LL_FN(ll_sigmoid)(float *restrict x, int n, float clip)
{
    if (isinf(clip)) {
        for (int i = 0; i < n; i++)
            x[i] = 1.0f / (1.0f + LL_FN(ll_exp1)(-x[i]));
    } else {
        for (int i = 0; i < n; i++)
            x[i] = 1.0f / (1.0f + LL_FN(ll_exp1)(-LL_FN(ll_clip1)(x[i], clip)));
    }
}

/* tanh(x) = sign(x) * (1 - 2 / (e^2|x| + 1)): ONNX's definition, evaluated on |x| so that the
 * exponential never overflows. Absolute error stays near 1e-7 everywhere; relative error grows
 * for |x| < 1e-3, where the absolute error is what a gate sees. */
static inline float LL_FN(ll_tanh1)(float v)
{
    const float e = LL_FN(ll_exp1)(2.0f * fabsf(v));
    return copysignf(1.0f - 2.0f / (e + 1.0f), v);
}

static void LL_FN(ll_tanh)(float *restrict x, int n, float clip)
{
    if (isinf(clip)) {
        for (int i = 0; i < n; i++)
            x[i] = LL_FN(ll_tanh1)(x[i]);
    } else {
        for (int i = 0; i < n; i++)
            x[i] = LL_FN(ll_tanh1)(LL_FN(ll_clip1)(x[i], clip));
    }
}

#define LL_STRINGIFY2(x) #x
#define LL_STRINGIFY(x) LL_STRINGIFY2(x)

#ifndef LL_GEMV_S8
#define LL_GEMV_S8 ll_gemv_s8_portable
#endif

static void LL_FN(ll_gemm_s8)(int M, int N, int K, const int8_t *W, const int8_t *X, int ldx,
                              int32_t *acc, int ldacc)
{
    ll_gemm_s8_row_blocks(LL_GEMV_S8, M, N, K, W, X, ldx, acc, ldacc);
}

const ll_kernel_table LL_CAT(ll_kernels, LL_KERNEL_SUFFIX) = {
    LL_STRINGIFY(LL_KERNEL_SUFFIX),
    LL_FN(ll_gemm_acc),
    LL_FN(ll_gemm_s8),
    LL_FN(ll_sigmoid),
    LL_FN(ll_tanh),
    LL_FN(ll_exp),
};
