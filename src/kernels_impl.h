/*
 * The portable source of the kernel table, compiled once per instruction set: kernels_generic.c
 * includes it as it is; kernels_avx2.c includes it under `#pragma GCC target("avx2,fma")`, so
 * the compiler vectorizes the same loops 8 wide with fused multiply-add. The loops are written
 * so that the vectorizer needs no -ffast-math: independent partial sums spelled out, clamps as
 * comparisons (which keep NaN), float<->int reinterpretation through memcpy.
 *
 * The includer defines LL_KERNEL_SUFFIX (the set's name) before including this file.
 */
#include <math.h>
#include <string.h>
#include <stdint.h>

#define LL_CAT2(a, b) a##_##b
#define LL_CAT(a, b) LL_CAT2(a, b)
#define LL_FN(name) LL_CAT(name, LL_KERNEL_SUFFIX)

/* ---- GEMV ----
 * y += W x with W row-major: four rows at a time, each with eight partial sums, so one load
 * of x feeds four rows and W streams through once in the order it is stored. The partial
 * sums are added in a fixed tree, so a kernel set gives the same bits on every call. */
#define LL_LANES 8

static inline float LL_FN(ll_hsum8)(const float *a)
{
    return ((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7]));
}

static void LL_FN(ll_gemv_acc)(int M, int K, const float *restrict W, const float *restrict x,
                               float *restrict y)
{
    const size_t ld = (size_t)K;
    int m = 0;
    for (; m + 4 <= M; m += 4) {
        const float *restrict w0 = W + (size_t)m * ld;
        const float *restrict w1 = w0 + ld;
        const float *restrict w2 = w1 + ld;
        const float *restrict w3 = w2 + ld;
        float a0[LL_LANES] = {0}, a1[LL_LANES] = {0}, a2[LL_LANES] = {0}, a3[LL_LANES] = {0};
        int k = 0;
        for (; k + LL_LANES <= K; k += LL_LANES) {
            for (int j = 0; j < LL_LANES; j++) {
                const float xv = x[k + j];
                a0[j] += w0[k + j] * xv;
                a1[j] += w1[k + j] * xv;
                a2[j] += w2[k + j] * xv;
                a3[j] += w3[k + j] * xv;
            }
        }
        float s0 = LL_FN(ll_hsum8)(a0), s1 = LL_FN(ll_hsum8)(a1);
        float s2 = LL_FN(ll_hsum8)(a2), s3 = LL_FN(ll_hsum8)(a3);
        for (; k < K; k++) {
            const float xv = x[k];
            s0 += w0[k] * xv;
            s1 += w1[k] * xv;
            s2 += w2[k] * xv;
            s3 += w3[k] * xv;
        }
        y[m] += s0;
        y[m + 1] += s1;
        y[m + 2] += s2;
        y[m + 3] += s3;
    }
    for (; m < M; m++) {
        const float *restrict w0 = W + (size_t)m * ld;
        float a0[LL_LANES] = {0};
        int k = 0;
        for (; k + LL_LANES <= K; k += LL_LANES)
            for (int j = 0; j < LL_LANES; j++)
                a0[j] += w0[k + j] * x[k + j];
        float s0 = LL_FN(ll_hsum8)(a0);
        for (; k < K; k++)
            s0 += w0[k] * x[k];
        y[m] += s0;
    }
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

const ll_kernel_table LL_CAT(ll_kernels, LL_KERNEL_SUFFIX) = {
    LL_STRINGIFY(LL_KERNEL_SUFFIX),
    LL_FN(ll_gemv_acc),
    LL_FN(ll_sigmoid),
    LL_FN(ll_tanh),
    LL_FN(ll_exp),
};
