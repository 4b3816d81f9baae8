/* The NEON kernel sets: aarch64 (every Pi 3/4/5 on 64-bit Pi OS) and armv7 (Pi 2/3/4 on
 * 32-bit Pi OS). Chosen at run time from the kernel's hwcaps (dispatch.c).
 *
 * int8 products, both architectures: 16 products per step, vmull_s8 / vmlal_s8 multiply
 * int8 into int16 lanes and add two products per lane (at most 2 * 127 * 127 = 32258, so the
 * int16 lane cannot overflow; -128 never occurs, see lstmlite.h), then vpadalq_s16 adds
 * adjacent pairs into int32 accumulators exactly. Four rows at a time share each load of x.
 *
 * aarch64: the float side is the portable source (kernels_impl.h); aarch64's baseline is NEON,
 * so its 8-wide vectors become pairs of q registers with fused multiply-add.
 * armv7: GCC will not put float vector arithmetic on NEON without -ffast-math (NEON flushes
 * subnormals to zero, which IEEE forbids), so the portable source would run on scalar VFP;
 * the float products here are written with NEON intrinsics instead. Their one IEEE departure
 * is that flush: products below 1.2e-38 count as zero, far below anything a gate can see.
 * The activations stay the portable ones. */
#include "kernels.h"

#if defined(__aarch64__) || (defined(__arm__) && defined(__linux__))

#if defined(__arm__)
#pragma GCC target("fpu=neon")
#endif
#include <arm_neon.h>

static inline int32_t hsum_s32(int32x4_t v)
{
#if defined(__aarch64__)
    return vaddvq_s32(v);
#else
    const int32x2_t s = vadd_s32(vget_low_s32(v), vget_high_s32(v));
    return vget_lane_s32(vpadd_s32(s, s), 0);
#endif
}

static inline int32x4_t dot16(int32x4_t acc, int8x16_t w, int8x16_t x)
{
    int16x8_t p = vmull_s8(vget_low_s8(w), vget_low_s8(x));
    p = vmlal_s8(p, vget_high_s8(w), vget_high_s8(x));
    return vpadalq_s16(acc, p);
}

#define LL_S8_NAME gemv_s8_neon
#define LL_S8_ACC int32x4_t
#define LL_S8_XOP int8x16_t
#define LL_S8_WIDTH 16
#define LL_S8_ZERO() vdupq_n_s32(0)
#define LL_S8_LOADX(p) vld1q_s8(p)
#define LL_S8_DOT(a, w, x) dot16(a, vld1q_s8(w), x)
#define LL_S8_HSUM(a) hsum_s32(a)
#include "gemv_s8_rows.h"

#if defined(__aarch64__)

#define LL_GEMV_S8 gemv_s8_neon
#define LL_KERNEL_SUFFIX neon
#include "kernels_impl.h"

#else /* armv7 */

static inline float hsum_f32(float32x4_t v)
{
    const float32x2_t s = vadd_f32(vget_low_f32(v), vget_high_f32(v));
    return vget_lane_f32(vpadd_f32(s, s), 0);
}

/* Accumulates four rows of K floats against x into a0..a3, 4 lanes at a time. */
#define LL_NEON_ROWS4(K, w0, w1, w2, w3, x, kend)                                           \
    do {                                                                                    \
        int k_ = 0;                                                                         \
        for (; k_ + 4 <= (K); k_ += 4) {                                                    \
            const float32x4_t xv = vld1q_f32((x) + k_);                                     \
            a0 = vmlaq_f32(a0, vld1q_f32((w0) + k_), xv);                                   \
            a1 = vmlaq_f32(a1, vld1q_f32((w1) + k_), xv);                                   \
            a2 = vmlaq_f32(a2, vld1q_f32((w2) + k_), xv);                                   \
            a3 = vmlaq_f32(a3, vld1q_f32((w3) + k_), xv);                                   \
        }                                                                                   \
        (kend) = k_;                                                                        \
    } while (0)

static void gemv2_acc_neon(int M, int K1, const float *restrict W1, const float *restrict x1,
                           int K2, const float *restrict W2, const float *restrict x2,
                           float *restrict y)
{
    const size_t ld1 = (size_t)K1, ld2 = (size_t)K2;
    int m = 0;
    for (; m + 4 <= M; m += 4) {
        const float *u0 = W1 + (size_t)m * ld1, *u1 = u0 + ld1, *u2 = u1 + ld1, *u3 = u2 + ld1;
        const float *v0 = W2 + (size_t)m * ld2, *v1 = v0 + ld2, *v2 = v1 + ld2, *v3 = v2 + ld2;
        float32x4_t a0 = vdupq_n_f32(0.0f), a1 = a0, a2 = a0, a3 = a0;
        int k1, k2;
        LL_NEON_ROWS4(K1, u0, u1, u2, u3, x1, k1);
        LL_NEON_ROWS4(K2, v0, v1, v2, v3, x2, k2);
        float s0 = hsum_f32(a0), s1 = hsum_f32(a1), s2 = hsum_f32(a2), s3 = hsum_f32(a3);
        for (; k1 < K1; k1++) {
            const float xv = x1[k1];
            s0 += u0[k1] * xv;
            s1 += u1[k1] * xv;
            s2 += u2[k1] * xv;
            s3 += u3[k1] * xv;
        }
        for (; k2 < K2; k2++) {
            const float xv = x2[k2];
            s0 += v0[k2] * xv;
            s1 += v1[k2] * xv;
            s2 += v2[k2] * xv;
            s3 += v3[k2] * xv;
        }
        y[m] += s0;
        y[m + 1] += s1;
        y[m + 2] += s2;
        y[m + 3] += s3;
    }
    for (; m < M; m++) {
        const float *u0 = W1 + (size_t)m * ld1, *v0 = W2 + (size_t)m * ld2;
        float32x4_t a0 = vdupq_n_f32(0.0f);
        int k = 0, j = 0;
        for (; k + 4 <= K1; k += 4)
            a0 = vmlaq_f32(a0, vld1q_f32(u0 + k), vld1q_f32(x1 + k));
        for (; j + 4 <= K2; j += 4)
            a0 = vmlaq_f32(a0, vld1q_f32(v0 + j), vld1q_f32(x2 + j));
        float s = hsum_f32(a0);
        for (; k < K1; k++)
            s += u0[k] * x1[k];
        for (; j < K2; j++)
            s += v0[j] * x2[j];
        y[m] += s;
    }
}

static void gemv_acc_neon(int M, int K, const float *W, const float *x, float *y)
{
    gemv2_acc_neon(M, K, W, x, 0, W, x, y);
}

/* The activations are the portable set's (scalar VFP here): a step's cost is the products. */
static void sigmoid_neon(float *x, int n, float clip) { ll_kernels_generic.sigmoid(x, n, clip); }
static void tanh_neon(float *x, int n, float clip) { ll_kernels_generic.tanh(x, n, clip); }
static void exp_neon(const float *x, float *y, int n) { ll_kernels_generic.exp(x, y, n); }

const ll_kernel_table ll_kernels_neon = {
    "neon", gemv_acc_neon, gemv2_acc_neon, gemv_s8_neon, sigmoid_neon, tanh_neon, exp_neon,
};

#endif /* armv7 */
#endif /* ARM */
