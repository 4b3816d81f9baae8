/* aarch64 with the dot product extension (ARMv8.2 ASIMDDP: Cortex-A76 of the Pi 5, not the
 * A53/A72 of the Pi 3/4): the portable float source compiled for ARMv8.2, and an int8
 * product on sdot, which multiplies four int8 pairs and adds them into an int32 lane in one
 * instruction, exactly. Chosen at run time only when the hwcaps report ASIMDDP (dispatch.c);
 * the rest of the build stays ARMv8.0, so one build runs on every Pi. */
#include "kernels.h"

#ifdef LL_HAVE_DOTPROD_KERNELS
#pragma GCC target("arch=armv8.2-a+dotprod")
#include <arm_neon.h>
#include <string.h>

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

/* The int8 product on panels (gemm_s8_panels.h; ARM's panels hold the weights as signed
 * bytes): 16 rows' next four weights are four q registers, loaded by one ld1, and sdot adds
 * each row's four products into its own lane, so no lane is ever reduced with another. A
 * "vector" of the template is those four registers. */
_Static_assert(LL_S8_PANEL_OFFSET == 0, "sdot reads the panels' bytes as signed weights");

typedef struct {
    int32x4_t q[4];
} s8p_vec;

static inline s8p_vec s8p_zero(void)
{
    const int32x4_t z = vdupq_n_s32(0);
    return (s8p_vec){{z, z, z, z}};
}

static inline s8p_vec s8p_load(const uint8_t *p)
{
    const int32x4x4_t w = vld1q_s32_x4((const int32_t *)(const void *)p);
    return (s8p_vec){{w.val[0], w.val[1], w.val[2], w.val[3]}};
}

static inline s8p_vec s8p_broadcast(int32_t v)
{
    const int32x4_t x = vdupq_n_s32(v);
    return (s8p_vec){{x, x, x, x}};
}

static inline s8p_vec s8p_dot(s8p_vec a, s8p_vec w, s8p_vec x)
{
    const int8x16_t xs = vreinterpretq_s8_s32(x.q[0]);
    for (int i = 0; i < 4; i++)
        a.q[i] = vdotq_s32(a.q[i], vreinterpretq_s8_s32(w.q[i]), xs);
    return a;
}

/* p[r] = lane r of a for r < rows (corr is 0: ARM's panels have no offset) */
static inline void s8p_store(int32_t *p, s8p_vec a, uint32_t corr, int rows)
{
    (void)corr;
    if (rows == 16) {
        vst1q_s32_x4(p, (int32x4x4_t){{a.q[0], a.q[1], a.q[2], a.q[3]}});
        return;
    }
    int32_t lanes[16];
    vst1q_s32_x4(lanes, (int32x4x4_t){{a.q[0], a.q[1], a.q[2], a.q[3]}});
    memcpy(p, lanes, sizeof(int32_t) * (size_t)rows);
}

#define LL_S8P_NAME gemm_s8_panels_dotprod
#define LL_S8P_VEC s8p_vec
#define LL_S8P_TILE_VECS 4 /* a vector is 4 of the 32 registers */
#define LL_S8P_ZERO() s8p_zero()
#define LL_S8P_LOAD(p) s8p_load(p)
#define LL_S8P_BROADCAST(v) s8p_broadcast(v)
#define LL_S8P_DOT(a, w, x) s8p_dot(a, w, x)
#define LL_S8P_STORE(p, a, corr, rows) s8p_store(p, a, corr, rows)
#include "gemm_s8_panels.h"

/* A stream's step (one column) on the panels with its float side, as the neon set's
 * (kernels_neon.c) but with sdot: a panel's 16 rows are four registers of sums, rows in
 * lane order; four panels (16 sums, a group's weights loaded per panel, one broadcast) go
 * at a time, each broadcast made once per call and serving 64 rows. Then y += s (sx sum)
 * with scale_acc_s8's operations, unfused: the same bits. */

/* a panel group's sums a[0 .. 4P) += its weights at w (panels panel_bytes apart) times x */
static inline __attribute__((always_inline)) void
group_dot(const int P, int32x4_t a[16], const uint8_t *restrict w, size_t panel_bytes,
          int8x16_t x)
{
    for (int p = 0; p < P; p++) {
        /* 64 bytes by one ld1 of four registers (loaded one by one, GCC gave each its own
         * instruction, unpaired) */
        const int8x16x4_t g = vld1q_s8_x4((const int8_t *)w + p * panel_bytes);
        for (int i = 0; i < 4; i++)
            a[4 * p + i] = vdotq_s32(a[4 * p + i], g.val[i], x);
    }
}

/* P panels (1 to 4) at w, panel_bytes apart, against `count` broadcasts. whole (the column
 * in one part, P whole panels): y[r] += s[r] * (sx * sum) for their 16 P rows, straight from
 * the registers; otherwise the sums into sums[4 p + i] (rows 4i .. 4i + 3 of panel p). */
static inline __attribute__((always_inline)) void
column_panels_dotprod(const int P, const uint8_t *restrict w, size_t panel_bytes,
                      const int8x16_t *restrict xs, int count, int whole,
                      const float *restrict s, float sx, float *restrict y, int32x4_t sums[16])
{
    /* the sums in an array of this function's own, which GCC keeps in registers (the
     * caller's, indexed at run time, lives in memory) */
    int32x4_t a[16];
    for (int r = 0; r < 4 * P; r++)
        a[r] = vdupq_n_s32(0);
    int j = 0;
    for (; j + 2 <= count; j += 2, w += 128) { /* two groups per pass of the loop */
        group_dot(P, a, w, panel_bytes, xs[j]);
        group_dot(P, a, w + 64, panel_bytes, xs[j + 1]);
    }
    if (j < count)
        group_dot(P, a, w, panel_bytes, xs[j]);
    if (whole) {
        for (int r = 0; r < 4 * P; r++) {
            float32x4_t v = vmulq_n_f32(vcvtq_f32_s32(a[r]), sx);
            v = vmulq_f32(vld1q_f32(s + 4 * r), v);
            LL_UNFUSED(v);
            vst1q_f32(y + 4 * r, vaddq_f32(vld1q_f32(y + 4 * r), v));
        }
        return;
    }
    for (int r = 0; r < 4 * P; r++)
        sums[r] = a[r];
}

static __attribute__((noinline)) void
gemm_s8_panels_scaled_dotprod(int M, int K, const uint8_t *restrict panels,
                              const int8_t *restrict x, int32_t *restrict acc,
                              const float *restrict s, float sx, float *restrict y)
{
    const int groups = (K + 3) / 4, panel_count = (M + 15) / 16;
    const size_t panel_bytes = (size_t)64 * (size_t)groups;
    int8x16_t broadcasts[LL_S8_COLUMN_GROUPS];
    for (int g0 = 0; g0 < groups; g0 += LL_S8_COLUMN_GROUPS) {
        const int count =
            groups - g0 < LL_S8_COLUMN_GROUPS ? groups - g0 : LL_S8_COLUMN_GROUPS;
        for (int j = 0; j < count; j++)
            broadcasts[j] =
                vreinterpretq_s8_s32(vdupq_n_s32(ll_s8_group_bits(x, K, 4 * (g0 + j))));
        const int last = g0 + count == groups; /* the sums are whole after this part */
        for (int p0 = 0; p0 < panel_count; p0 += 4) {
            const int P = panel_count - p0 < 4 ? panel_count - p0 : 4;
            const uint8_t *restrict w = panels + (size_t)p0 * panel_bytes + (size_t)64 * g0;
            const size_t row0 = 16 * (size_t)p0;
            const int rows = M - (int)row0 < 16 * P ? M - (int)row0 : 16 * P;
            const int whole = last && g0 == 0 && rows == 16 * P;
            int32x4_t sums[16];
            if (P == 4)
                column_panels_dotprod(4, w, panel_bytes, broadcasts, count, whole, s + row0,
                                      sx, y + row0, sums);
            else if (P == 3)
                column_panels_dotprod(3, w, panel_bytes, broadcasts, count, whole, s + row0,
                                      sx, y + row0, sums);
            else if (P == 2)
                column_panels_dotprod(2, w, panel_bytes, broadcasts, count, whole, s + row0,
                                      sx, y + row0, sums);
            else
                column_panels_dotprod(1, w, panel_bytes, broadcasts, count, whole, s + row0,
                                      sx, y + row0, sums);
            if (whole)
                continue;
            int32_t lanes[64];
            for (int r = 0; r < 4 * P; r++)
                vst1q_s32(lanes + 4 * r, sums[r]);
            ll_s8_column_rows(lanes, rows, g0 > 0, last, 0, acc + row0, s + row0, sx, y + row0);
        }
    }
}

#define LL_GEMM_S8 gemm_s8_dotprod
#define LL_GEMM_S8_PANELS gemm_s8_panels_dotprod
#define LL_GEMM_S8_PANELS_SCALED gemm_s8_panels_scaled_dotprod
#define LL_KERNEL_SUFFIX dotprod
#include "kernels_impl.h"
#endif
