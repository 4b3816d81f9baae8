/* aarch64 with the dot product extension (ARMv8.2 ASIMDDP: Cortex-A76 of the Pi 5, not the
 * A53/A72 of the Pi 3/4): the portable float source compiled for ARMv8.2, and an int8
 * product on sdot, which multiplies four int8 pairs and adds them into an int32 lane in one
 * instruction, exactly. Chosen at run time only when the hwcaps report ASIMDDP (dispatch.c);
 * the rest of the build stays ARMv8.0, so one build runs on every Pi. */
#include "kernels.h"

#ifdef LL_HAVE_DOTPROD_KERNELS
#pragma GCC target("arch=armv8.2-a+dotprod")
#include <arm_neon.h>

static void gemv_s8_dotprod(int M, int K, const int8_t *restrict W, const int8_t *restrict x,
                            int32_t *restrict acc)
{
    const size_t ld = (size_t)K;
    int m = 0;
    for (; m + 4 <= M; m += 4) {
        const int8_t *w0 = W + (size_t)m * ld, *w1 = w0 + ld, *w2 = w1 + ld, *w3 = w2 + ld;
        int32x4_t a0 = vdupq_n_s32(0), a1 = a0, a2 = a0, a3 = a0;
        int k = 0;
        for (; k + 16 <= K; k += 16) {
            const int8x16_t xv = vld1q_s8(x + k);
            a0 = vdotq_s32(a0, vld1q_s8(w0 + k), xv);
            a1 = vdotq_s32(a1, vld1q_s8(w1 + k), xv);
            a2 = vdotq_s32(a2, vld1q_s8(w2 + k), xv);
            a3 = vdotq_s32(a3, vld1q_s8(w3 + k), xv);
        }
        int32_t s0 = vaddvq_s32(a0), s1 = vaddvq_s32(a1), s2 = vaddvq_s32(a2),
                s3 = vaddvq_s32(a3);
        for (; k < K; k++) {
            const int32_t xk = x[k];
            s0 += w0[k] * xk;
            s1 += w1[k] * xk;
            s2 += w2[k] * xk;
            s3 += w3[k] * xk;
        }
        acc[m] = s0;
        acc[m + 1] = s1;
        acc[m + 2] = s2;
        acc[m + 3] = s3;
    }
    for (; m < M; m++) {
        const int8_t *w0 = W + (size_t)m * ld;
        int32x4_t a0 = vdupq_n_s32(0);
        int k = 0;
        for (; k + 16 <= K; k += 16)
            a0 = vdotq_s32(a0, vld1q_s8(w0 + k), vld1q_s8(x + k));
        int32_t s0 = vaddvq_s32(a0);
        for (; k < K; k++)
            s0 += w0[k] * (int32_t)x[k];
        acc[m] = s0;
    }
}

#define LL_GEMV_S8 gemv_s8_dotprod
#define LL_KERNEL_SUFFIX dotprod
#include "kernels_impl.h"
#endif
