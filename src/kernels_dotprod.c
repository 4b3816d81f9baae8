/* aarch64 with the dot product extension (ARMv8.2 ASIMDDP: Cortex-A76 of the Pi 5, not the
 * A53/A72 of the Pi 3/4): the portable float source compiled for ARMv8.2, and an int8
 * product on sdot, which multiplies four int8 pairs and adds them into an int32 lane in one
 * instruction, exactly. Chosen at run time only when the hwcaps report ASIMDDP (dispatch.c);
 * the rest of the build stays ARMv8.0, so one build runs on every Pi. */
#include "kernels.h"

#ifdef LL_HAVE_DOTPROD_KERNELS
#pragma GCC target("arch=armv8.2-a+dotprod")
#include <arm_neon.h>

/* out[r] = the sum of a[r]'s four lanes, by pairwise adds */
static inline void hsum4_s32_dotprod(const int32x4_t a[4], int32_t out[4])
{
    vst1q_s32(out, vpaddq_s32(vpaddq_s32(a[0], a[1]), vpaddq_s32(a[2], a[3])));
}

/* tiles of 4 rows x 4 columns (gemm_s8_tiles.h): 16 accumulators, 4 column slices and a
 * weight slice of the 32 registers */
#define LL_S8_NAME gemm_s8_dotprod
#define LL_S8_ACC int32x4_t
#define LL_S8_XOP int8x16_t
#define LL_S8_WOP int8x16_t
#define LL_S8_WIDTH 16
#define LL_S8_COLS 4
#define LL_S8_ZERO() vdupq_n_s32(0)
#define LL_S8_LOADX(p) vld1q_s8(p)
#define LL_S8_LOADW(p) vld1q_s8(p)
#define LL_S8_DOT(a, w, x) vdotq_s32(a, w, x)
#define LL_S8_HSUM4(a, out) hsum4_s32_dotprod(a, out)
#define LL_S8_AND(w, mask) vandq_s8(w, mask)
#include "gemm_s8_tiles.h"

#define LL_GEMM_S8 gemm_s8_dotprod
#define LL_KERNEL_SUFFIX dotprod
#include "kernels_impl.h"
#endif
