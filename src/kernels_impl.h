/*
 * The portable source of the kernel table, compiled once per instruction set: kernels_generic.c
 * includes it as it is; kernels_avx2.c includes it under `#pragma GCC target("avx2,fma")`, so
 * the compiler vectorizes the same loops 8 wide with fused multiply-add. The loops are written
 * so that the vectorizer needs no -ffast-math: independent partial sums spelled out, clamps as
 * comparisons (which keep NaN), float<->int reinterpretation through memcpy.
 *
 * The includer defines LL_KERNEL_SUFFIX (the set's name) before including this file, and may
 * define LL_GEMM_S8 as its own int8 product (gemm_s8_tiles.h with the set's intrinsics);
 * without it the set uses the portable one; and LL_GEMM_S8_PANELS, its product on int8
 * panels (gemm_s8_panels.h), where it has one. LL_GEMM_WIDTH (default 4) is the float product's
 * vector width, the floats one register of the set holds (8 for AVX2, 16 for AVX-512);
 * LL_GEMM_COLS its widest tile in columns; LL_GEMM_IN_REGISTER(w) pins a loaded weight vector
 * to a register (gemm_f32_panels.h).
 */
#include <math.h>
#include <string.h>
#include <stdint.h>

/* The float vectors below only travel between static inline functions of one file, so the
 * note GCC gives about their calling convention without AVX does not apply. */
#pragma GCC diagnostic ignored "-Wpsabi"

#define LL_CAT2(a, b) a##_##b
#define LL_CAT(a, b) LL_CAT2(a, b)
#define LL_FN(name) LL_CAT(name, LL_KERNEL_SUFFIX)

/* ---- GEMM ----
 * Y += W X on panel-packed weights, one pass over W for all columns (gemm_f32_panels.h has
 * the loop structure). The vectors are GCC/Clang vector extensions, not intrinsics: the
 * compiler maps a vector of LL_GEMM_WIDTH floats to one register of the set (or a pair), and
 * a + w * x with a float x to a broadcast and a fused multiply-add where the target has one
 * (-ffp-contract=fast). Each sum is a fixed chain, so a kernel set gives the same bits on
 * every call and in every tile. */
#ifndef LL_GEMM_WIDTH
#define LL_GEMM_WIDTH 4
#endif
#ifndef LL_GEMM_COLS
#if defined(__aarch64__)
#define LL_GEMM_COLS 4 /* 16 sums of the 32 NEON registers */
#else
#define LL_GEMM_COLS 2 /* 8 sums of SSE2's 16 registers */
#endif
#endif
typedef float LL_FN(ll_vp) __attribute__((vector_size(4 * LL_GEMM_WIDTH)));

static inline LL_FN(ll_vp) LL_FN(ll_load_panel)(const float *p)
{
    LL_FN(ll_vp) v;
    memcpy(&v, p, sizeof v); /* unaligned: Y and the panels' rows start anywhere */
    return v;
}

static inline void LL_FN(ll_store_panel)(float *p, LL_FN(ll_vp) v)
{
    memcpy(p, &v, sizeof v);
}

#define LL_P_NAME LL_FN(ll_gemm_acc)
#define LL_P_VEC LL_FN(ll_vp)
#define LL_P_WIDTH LL_GEMM_WIDTH
#define LL_P_LOAD(p) LL_FN(ll_load_panel)(p)
#define LL_P_STORE(p, v) LL_FN(ll_store_panel)(p, v)
#define LL_P_MLA(a, w, x) ((a) + (w) * (x))
#define LL_P_COLS LL_GEMM_COLS
#ifdef LL_GEMM_IN_REGISTER
#define LL_P_IN_REGISTER(w) LL_GEMM_IN_REGISTER(w)
#else
#define LL_P_IN_REGISTER(w) ((void)0)
#endif
#include "gemm_f32_panels.h"

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

/* v clamped to [lo, hi], NaN kept NaN. The comparisons (false for NaN) are what x86's
 * minps/maxps do, one instruction each. On aarch64 GCC 12 vectorizes each comparison clamp
 * into about 7 NEON instructions (it tests both operands for NaN, then selects), which made
 * the clamps the largest part of a sigmoid; fminnm/fmaxnm are one each but send NaN to the
 * bound, so the NaN is put back by one compare and one select: 4 instructions for both
 * clamps. Either way the same values, hence the same bits. */
static inline float LL_FN(ll_clamp)(float v, float lo, float hi)
{
#if defined(__aarch64__)
    const float clamped = __builtin_fmaxf(__builtin_fminf(v, hi), lo);
    return v != v ? v : clamped;
#else
    v = v > hi ? hi : v;
    return v < lo ? lo : v;
#endif
}

static inline float LL_FN(ll_exp1)(float x)
{
    x = LL_FN(ll_clamp)(x, LL_EXP_LO, LL_EXP_HI);
    /* t = MAGIC + n with n = round(x / ln 2): n is t - MAGIC as a float, and as an integer
     * the difference of the two bit patterns (a float of MAGIC's binade holds its integer
     * part in the low mantissa bits). Reading n from the bits instead of converting it
     * keeps a NaN lane well defined (its scale is garbage, r carries the NaN) without a
     * select on n, which made GCC compute the polynomial twice per vector. */
    const float t = x * LL_LOG2E + LL_ROUND_MAGIC;
    const float n = t - LL_ROUND_MAGIC;
    const float magic = LL_ROUND_MAGIC;
    uint32_t t_bits, magic_bits;
    memcpy(&t_bits, &t, sizeof t_bits);
    memcpy(&magic_bits, &magic, sizeof magic_bits);
    const float r = (x - n * LL_LN2_HI) - n * LL_LN2_LO;
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    const uint32_t bits = (t_bits - magic_bits + 127u) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

static inline float LL_FN(ll_clip1)(float v, float clip)
{
    return LL_FN(ll_clamp)(v, -clip, clip);
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

#ifndef LL_GEMM_S8
#define LL_GEMM_S8 ll_gemm_s8_portable
#endif
#ifndef LL_GEMM_S8_PANELS
#define LL_GEMM_S8_PANELS NULL /* the set reads row-major int8 weights only */
#endif
#ifndef LL_GEMM_S8_PANELS_SCALED
#define LL_GEMM_S8_PANELS_SCALED NULL /* ll_matrix_acc takes the product, then scale_acc_s8 */
#endif
#ifndef LL_QUANTIZE_WIDTH
#define LL_QUANTIZE_WIDTH baseline /* int8.c's ll_quantize_s8_<width>, ll_scale_acc_s8_<width> */
#endif

const ll_kernel_table LL_CAT(ll_kernels, LL_KERNEL_SUFFIX) = {
    .name = LL_STRINGIFY(LL_KERNEL_SUFFIX),
    .gemm_acc = LL_FN(ll_gemm_acc),
    .gemm_s8 = LL_GEMM_S8,
    .sigmoid = LL_FN(ll_sigmoid),
    .tanh = LL_FN(ll_tanh),
    .exp = LL_FN(ll_exp),
    .gemm_s8_panels = LL_GEMM_S8_PANELS,
    .gemm_s8_panels_scaled = LL_GEMM_S8_PANELS_SCALED,
    .quantize_s8 = LL_CAT(ll_quantize_s8, LL_QUANTIZE_WIDTH),
    .scale_acc_s8 = LL_CAT(ll_scale_acc_s8, LL_QUANTIZE_WIDTH),
};
