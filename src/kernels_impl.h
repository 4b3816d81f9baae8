/*
 * The portable source of the kernel table, compiled once per instruction set: kernels_generic.c
 * includes it as it is; kernels_avx2.c includes it under `#pragma GCC target("avx2,fma")`, so
 * the compiler vectorizes the same loops 8 wide with fused multiply-add. The loops are written
 * so that the vectorizer needs no -ffast-math: independent partial sums spelled out, clamps as
 * comparisons (which keep NaN), float<->int reinterpretation through memcpy.
 *
 * The includer defines LL_KERNEL_SUFFIX (the set's name) before including this file, and may
 * define LL_GEMV_S8 as its own int8 product (written with the set's intrinsics); without it
 * the set uses the portable one.
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

/* ---- GEMV ----
 * y += W1 x1 + W2 x2 with W1 (M, K1) and W2 (M, K2) row-major: a cell's input and recurrent
 * products in one pass, so that every row is reduced once. Four rows at a time, each with an
 * 8-wide vector of partial sums, so one load of x feeds four rows and the weights stream
 * through once in the order they are stored; the four row sums are reduced together with
 * shuffles (a 4x4 transpose-add) rather than 28 scalar adds. The vectors are GCC/Clang vector
 * extensions, not intrinsics: the compiler maps them to one AVX register, two SSE2 or two
 * NEON registers (left to its auto-vectorizer, GCC interleaved rows with permutes and ran 5x
 * slower). The partial sums are added in a fixed order, so a kernel set gives the same bits
 * on every call. */
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

/* {sum(a0), sum(a1), sum(a2), sum(a3)} */
static inline LL_V4 LL_FN(ll_reduce4)(LL_V8 a0, LL_V8 a1, LL_V8 a2, LL_V8 a3)
{
    const LL_V4 b0 = LL_FN(ll_fold8)(a0), b1 = LL_FN(ll_fold8)(a1);
    const LL_V4 b2 = LL_FN(ll_fold8)(a2), b3 = LL_FN(ll_fold8)(a3);
    const LL_V4 u01 = LL_SHUFFLE(b0, b1, 0, 4, 1, 5) + LL_SHUFFLE(b0, b1, 2, 6, 3, 7);
    const LL_V4 u23 = LL_SHUFFLE(b2, b3, 0, 4, 1, 5) + LL_SHUFFLE(b2, b3, 2, 6, 3, 7);
    return LL_SHUFFLE(u01, u23, 0, 1, 4, 5) + LL_SHUFFLE(u01, u23, 2, 3, 6, 7);
}

/* Accumulates rows w0..w3 (each K long) against x into a0..a3; returns where the vector
 * part stopped. */
#define LL_ACCUMULATE4(K, w0, w1, w2, w3, x, kend)                                          \
    do {                                                                                    \
        int k_ = 0;                                                                         \
        for (; k_ + 8 <= (K); k_ += 8) {                                                    \
            const LL_V8 xv = LL_FN(ll_load8)((x) + k_);                                     \
            a0 += LL_FN(ll_load8)((w0) + k_) * xv;                                          \
            a1 += LL_FN(ll_load8)((w1) + k_) * xv;                                          \
            a2 += LL_FN(ll_load8)((w2) + k_) * xv;                                          \
            a3 += LL_FN(ll_load8)((w3) + k_) * xv;                                          \
        }                                                                                   \
        (kend) = k_;                                                                        \
    } while (0)

static void LL_FN(ll_gemv2_acc)(int M, int K1, const float *restrict W1,
                                const float *restrict x1, int K2, const float *restrict W2,
                                const float *restrict x2, float *restrict y)
{
    const size_t ld1 = (size_t)K1, ld2 = (size_t)K2;
    const LL_V8 zero = {0};
    int m = 0;
    for (; m + 4 <= M; m += 4) {
        const float *restrict u0 = W1 + (size_t)m * ld1;
        const float *restrict u1 = u0 + ld1, *restrict u2 = u1 + ld1, *restrict u3 = u2 + ld1;
        const float *restrict v0 = W2 + (size_t)m * ld2;
        const float *restrict v1 = v0 + ld2, *restrict v2 = v1 + ld2, *restrict v3 = v2 + ld2;
        LL_V8 a0 = zero, a1 = zero, a2 = zero, a3 = zero;
        int k1, k2;
        LL_ACCUMULATE4(K1, u0, u1, u2, u3, x1, k1);
        LL_ACCUMULATE4(K2, v0, v1, v2, v3, x2, k2);
        LL_V4 sums = LL_FN(ll_reduce4)(a0, a1, a2, a3);
        for (; k1 < K1; k1++) {
            const float xv = x1[k1];
            sums += (LL_V4){u0[k1] * xv, u1[k1] * xv, u2[k1] * xv, u3[k1] * xv};
        }
        for (; k2 < K2; k2++) {
            const float xv = x2[k2];
            sums += (LL_V4){v0[k2] * xv, v1[k2] * xv, v2[k2] * xv, v3[k2] * xv};
        }
        LL_V4 out;
        memcpy(&out, y + m, sizeof out);
        out += sums;
        memcpy(y + m, &out, sizeof out);
    }
    for (; m < M; m++) {
        const float *restrict u0 = W1 + (size_t)m * ld1;
        const float *restrict v0 = W2 + (size_t)m * ld2;
        LL_V8 acc = zero;
        int k = 0;
        for (; k + 8 <= K1; k += 8)
            acc += LL_FN(ll_load8)(u0 + k) * LL_FN(ll_load8)(x1 + k);
        int j = 0;
        for (; j + 8 <= K2; j += 8)
            acc += LL_FN(ll_load8)(v0 + j) * LL_FN(ll_load8)(x2 + j);
        const LL_V4 folded = LL_FN(ll_fold8)(acc);
        float s = (folded[0] + folded[2]) + (folded[1] + folded[3]);
        for (; k < K1; k++)
            s += u0[k] * x1[k];
        for (; j < K2; j++)
            s += v0[j] * x2[j];
        y[m] += s;
    }
}

static void LL_FN(ll_gemv_acc)(int M, int K, const float *restrict W, const float *restrict x,
                               float *restrict y)
{
    LL_FN(ll_gemv2_acc)(M, K, W, x, 0, W, x, y);
}

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

const ll_kernel_table LL_CAT(ll_kernels, LL_KERNEL_SUFFIX) = {
    LL_STRINGIFY(LL_KERNEL_SUFFIX),
    LL_FN(ll_gemv_acc),
    LL_FN(ll_gemv2_acc),
    LL_GEMV_S8,
    LL_FN(ll_sigmoid),
    LL_FN(ll_tanh),
    LL_FN(ll_exp),
};
