/* The NEON kernel sets: aarch64 (every Pi 3/4/5 on 64-bit Pi OS) and armv7 (Pi 2/3/4 on
 * 32-bit Pi OS). Chosen at run time from the kernel's hwcaps (dispatch.c).
 *
 * int8 products, both architectures: 16 products per step, vmull_s8 / vmlal_s8 multiply
 * int8 into int16 lanes and add two products per lane (at most 2 * 127 * 127 = 32258, so the
 * int16 lane cannot overflow; -128 never occurs, see lstmlite.h), then vpadalq_s16 adds
 * adjacent pairs into int32 accumulators exactly. Tiles of 4 rows x c columns
 * (gemm_s8_tiles.h) share each load of the weights and of the columns.
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

/* out[r] = the sum of a[r]'s four lanes, the four vectors reduced together by pairwise adds */
static inline void hsum4_s32(const int32x4_t a[4], int32_t out[4])
{
#if defined(__aarch64__)
    vst1q_s32(out, vpaddq_s32(vpaddq_s32(a[0], a[1]), vpaddq_s32(a[2], a[3])));
#else
    const int32x2_t r01 = vpadd_s32(vadd_s32(vget_low_s32(a[0]), vget_high_s32(a[0])),
                                    vadd_s32(vget_low_s32(a[1]), vget_high_s32(a[1])));
    const int32x2_t r23 = vpadd_s32(vadd_s32(vget_low_s32(a[2]), vget_high_s32(a[2])),
                                    vadd_s32(vget_low_s32(a[3]), vget_high_s32(a[3])));
    vst1q_s32(out, vcombine_s32(r01, r23));
#endif
}

static inline int32x4_t dot16(int32x4_t acc, int8x16_t w, int8x16_t x)
{
    int16x8_t p = vmull_s8(vget_low_s8(w), vget_low_s8(x));
    p = vmlal_s8(p, vget_high_s8(w), vget_high_s8(x));
    return vpadalq_s16(acc, p);
}

#define LL_S8_NAME gemm_s8_neon
#define LL_S8_ACC int32x4_t
#define LL_S8_XOP int8x16_t
#define LL_S8_WOP int8x16_t
#define LL_S8_WIDTH 16
#if defined(__aarch64__)
#define LL_S8_COLS 4 /* 16 accumulators, 4 column slices, weights, products: of 32 registers */
#else
#define LL_S8_COLS 2 /* 8 accumulators, 2 column slices, weights, products: of 16 */
#endif
#define LL_S8_ZERO() vdupq_n_s32(0)
#define LL_S8_LOADX(p) vld1q_s8(p)
#define LL_S8_LOADW(p) vld1q_s8(p)
#define LL_S8_DOT(a, w, x) dot16(a, w, x)
#define LL_S8_HSUM4(a, out) hsum4_s32(a, out)
#define LL_S8_AND(w, mask) vandq_s8(w, mask)
#define LL_S8_XOP_HALF int8x8_t
#define LL_S8_WOP_HALF int8x8_t
#define LL_S8_LOADX_HALF(p) vld1_s8(p)
#define LL_S8_LOADW_HALF(p) vld1_s8(p)
#define LL_S8_DOT_HALF(a, w, x) vpadalq_s16(a, vmull_s8(w, x))
#include "gemm_s8_tiles.h"

#if defined(__aarch64__)

#define LL_GEMM_S8 gemm_s8_neon
#define LL_KERNEL_SUFFIX neon
#include "kernels_impl.h"

#else /* armv7 */

static inline void store_f32(float *p, float32x4_t v)
{
    vst1q_f32(p, v);
}

/* vmlaq_n_f32 multiplies and adds with two roundings (armv7 NEON has no fused form) */
#define LL_P_NAME gemm_acc_neon
#define LL_P_VEC float32x4_t
#define LL_P_WIDTH 4
#define LL_P_LOAD(p) vld1q_f32(p)
#define LL_P_STORE(p, v) store_f32(p, v)
#define LL_P_MLA(a, w, x) vmlaq_n_f32(a, w, x)
#define LL_P_COLS 2 /* 8 sums of the 16 q registers */
#define LL_P_IN_REGISTER(w) ((void)0)
#include "gemm_f32_panels.h"

/* The activations are the portable set's (scalar VFP here): a step's cost is the products. */
static void sigmoid_neon(float *x, int n, float clip) { ll_kernels_generic.sigmoid(x, n, clip); }
static void tanh_neon(float *x, int n, float clip) { ll_kernels_generic.tanh(x, n, clip); }
static void exp_neon(const float *x, float *y, int n) { ll_kernels_generic.exp(x, y, n); }

const ll_kernel_table ll_kernels_neon = {
    .name = "neon",
    .gemm_acc = gemm_acc_neon,
    .gemm_s8 = gemm_s8_neon,
    .sigmoid = sigmoid_neon,
    .tanh = tanh_neon,
    .exp = exp_neon,
    .gemm_s8_panels = NULL,
    .quantize_s8 = ll_quantize_s8_baseline,
    .scale_acc_s8 = ll_scale_acc_s8_baseline,
};

#endif /* armv7 */
#endif /* ARM */
