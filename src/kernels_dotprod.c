/* aarch64 with the dot product extension (ARMv8.2 ASIMDDP: Cortex-A76 of the Pi 5, not the
 * A53/A72 of the Pi 3/4): the portable float source compiled for ARMv8.2, and an int8
 * product on sdot, which multiplies four int8 pairs and adds them into an int32 lane in one
 * instruction, exactly. Chosen at run time only when the hwcaps report ASIMDDP (dispatch.c);
 * the rest of the build stays ARMv8.0, so one build runs on every Pi. */
#include "kernels.h"

#ifdef LL_HAVE_DOTPROD_KERNELS
#pragma GCC target("arch=armv8.2-a+dotprod")
#include <arm_neon.h>

#define LL_S8_NAME gemv_s8_dotprod
#define LL_S8_ACC int32x4_t
#define LL_S8_XOP int8x16_t
#define LL_S8_WIDTH 16
#define LL_S8_ZERO() vdupq_n_s32(0)
#define LL_S8_LOADX(p) vld1q_s8(p)
#define LL_S8_DOT(a, w, x) vdotq_s32(a, vld1q_s8(w), x)
#define LL_S8_HSUM(a) vaddvq_s32(a)
#include "gemv_s8_rows.h"

#define LL_GEMV_S8 gemv_s8_dotprod
#define LL_KERNEL_SUFFIX dotprod
#include "kernels_impl.h"
#endif
