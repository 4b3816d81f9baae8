/* The NEON kernel sets: aarch64 (every Pi 3/4/5 on 64-bit Pi OS) and armv7 (Pi 2/3/4 on
 * 32-bit Pi OS). Chosen at run time from the kernel's hwcaps (dispatch.c).
 *
 * int8 products, both architectures: vmull_s8 / vmlal_s8 multiply int8 into int16 lanes and
 * add two products per lane (at most 2 * 127 * 127 = 32258, so the int16 lane cannot
 * overflow; -128 never occurs, see lstmlite.h), then vpadalq_s16 adds adjacent pairs into
 * int32 accumulators exactly. On row-major weights (armv7; on aarch64 what has no panels),
 * tiles of 4 rows x c columns (gemm_s8_tiles.h) share each load of the weights and of the
 * columns; on aarch64 the products read the int8 panels (below), the layout dotprod reads.
 *
 * aarch64: the float side is the portable source (kernels_impl.h); aarch64's baseline is NEON,
 * so its 8-wide vectors become pairs of q registers with fused multiply-add.
 * armv7: GCC will not put float vector arithmetic on NEON without -ffast-math (NEON flushes
 * subnormals to zero, which IEEE forbids), so the portable source would run on scalar VFP;
 * the float products here are written with NEON intrinsics instead. Their one IEEE departure
 * is that flush: products below 1.2e-38 count as zero, far below anything a gate can see.
 * The activations stay the portable ones. */
#include <string.h>

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

/* The int8 product on panels (gemm_s8_panels.h), the panels dotprod reads: each 16 bytes of
 * a group are 4 rows' next four weights (row 4i + j's in bytes 4j .. 4j + 3 of register i),
 * and four bytes of the column broadcast to every lane are their inputs. Without sdot, the
 * two halves of a register go separately: vmull_s8 of the low half gives rows 4i and 4i + 1
 * four int16 products each, vmlal_s8 adds the next group's four (same lanes, same rows: at
 * most 2 * 127 * 127 = 32258, no overflow), and vpadalq_s16 adds adjacent pairs into the
 * int32 lanes (row 4i, row 4i, row 4i + 1, row 4i + 1); the high half likewise for rows
 * 4i + 2 and 4i + 3. So 16 products cost three instructions (fmla's 16 float products cost
 * four) and a share of a load, nothing is shuffled per column, and a row's two int32 lanes
 * are added once, when the panel is done. A panel's sums are 8 registers: lo[i] (rows 4i,
 * 4i + 1) and hi[i] (rows 4i + 2, 4i + 3). */
_Static_assert(LL_S8_PANEL_OFFSET == 0, "the panels hold the weights as signed bytes");

/* 64 bytes: a group of a panel, 16 rows' next four weights */
typedef struct {
    int8x16_t v[4];
} s8x64;

static inline s8x64 load64(const void *p)
{
    /* four loads, which GCC pairs into ldp (vld1q_s8_x4's one ld1 of four consecutive
     * registers cost more in moves between registers than it saved) */
    s8x64 q;
    for (int i = 0; i < 4; i++)
        q.v[i] = vld1q_s8((const int8_t *)p + 16 * i);
    return q;
}

/* one group: 16 products per register, each half widened on its own */
static inline void panel_dot1(int32x4_t lo[4], int32x4_t hi[4], s8x64 w, int8x16_t x)
{
    for (int i = 0; i < 4; i++) {
        lo[i] = vpadalq_s16(lo[i], vmull_s8(vget_low_s8(w.v[i]), vget_low_s8(x)));
        hi[i] = vpadalq_s16(hi[i], vmull_high_s8(w.v[i], x));
    }
}

/* two consecutive groups, two products in each int16 lane before it is widened; `first`
 * (a constant): the sums start here (vpaddlq, no zeroed registers to add to) */
static inline __attribute__((always_inline)) void
panel_dot2_sums(const int first, int32x4_t lo[4], int32x4_t hi[4], s8x64 w0, s8x64 w1,
                int8x16_t x0, int8x16_t x1)
{
    for (int i = 0; i < 4; i++) {
        int16x8_t l = vmull_s8(vget_low_s8(w0.v[i]), vget_low_s8(x0));
        l = vmlal_s8(l, vget_low_s8(w1.v[i]), vget_low_s8(x1));
        lo[i] = first ? vpaddlq_s16(l) : vpadalq_s16(lo[i], l);
        int16x8_t h = vmull_high_s8(w0.v[i], x0);
        h = vmlal_high_s8(h, w1.v[i], x1);
        hi[i] = first ? vpaddlq_s16(h) : vpadalq_s16(hi[i], h);
    }
}

static inline void panel_dot2(int32x4_t lo[4], int32x4_t hi[4], s8x64 w0, s8x64 w1,
                              int8x16_t x0, int8x16_t x1)
{
    panel_dot2_sums(0, lo, hi, w0, w1, x0, x1);
}

/* rows [0, rows) of a panel's sums: the two lanes of each row added */
static inline void panel_store(int32_t *p, const int32x4_t lo[4], const int32x4_t hi[4],
                               int rows)
{
    int32_t sums[16];
    int32_t *to = rows == 16 ? p : sums;
    for (int i = 0; i < 4; i++)
        vst1q_s32(to + 4 * i, vpaddq_s32(lo[i], hi[i]));
    if (rows < 16)
        memcpy(p, sums, sizeof(int32_t) * (size_t)rows);
}

/* The template's "vector" (several columns: a batch, a sequence): a panel's 8 sums as
 * accumulators; as weights the group in w, as a broadcast the four inputs in w.v[0]. */
typedef struct {
    int32x4_t lo[4], hi[4];
    s8x64 w;
} s8p_neon;

static inline s8p_neon s8p_neon_zero(void)
{
    s8p_neon a;
    for (int i = 0; i < 4; i++)
        a.lo[i] = a.hi[i] = vdupq_n_s32(0);
    return a;
}

static inline s8p_neon s8p_neon_load(const uint8_t *p)
{
    s8p_neon w;
    w.w = load64(p);
    return w;
}

static inline s8p_neon s8p_neon_broadcast(int32_t four)
{
    s8p_neon x;
    x.w.v[0] = vreinterpretq_s8_s32(vdupq_n_s32(four));
    return x;
}

static inline s8p_neon s8p_neon_dot(s8p_neon a, s8p_neon w, s8p_neon x)
{
    panel_dot1(a.lo, a.hi, w.w, x.w.v[0]);
    return a;
}

static inline s8p_neon s8p_neon_dot2(s8p_neon a, s8p_neon w0, s8p_neon w1, s8p_neon x0,
                                     s8p_neon x1)
{
    panel_dot2(a.lo, a.hi, w0.w, w1.w, x0.w.v[0], x1.w.v[0]);
    return a;
}

/* corr is 0: ARM's panels have no offset */
#define LL_S8P_NAME gemm_s8_panels_neon_tiles
#define LL_S8P_VEC s8p_neon
#define LL_S8P_TILE_VECS 2 /* 16 accumulators of the 32 registers */
#define LL_S8P_ZERO() s8p_neon_zero()
#define LL_S8P_LOAD(p) s8p_neon_load(p)
#define LL_S8P_BROADCAST(v) s8p_neon_broadcast(v)
#define LL_S8P_DOT(a, w, x) s8p_neon_dot(a, w, x)
#define LL_S8P_DOT2(a, w0, w1, x0, x1) s8p_neon_dot2(a, w0, w1, x0, x1)
#define LL_S8P_STORE(p, a, corr, rows) panel_store(p, (a).lo, (a).hi, rows)
#include "gemm_s8_panels.h"

/* What a panel's sums become, the rows [0, rows) of it: int32 sums into acc (the sums of the
 * column's earlier parts added, if add), or, with s, the float side y[r] += s[r] * (sx *
 * sum) of ll_matrix_acc, in scale_acc_s8's order and rounding (the same bits). */
typedef struct {
    int32_t *acc;
    const float *s;
    float sx;
    float *y;
} panel_sink;

static inline void panel_out(panel_sink out, const int32x4_t lo[4], const int32x4_t hi[4],
                             int rows, int add)
{
    if (out.s == NULL && !add) {
        panel_store(out.acc, lo, hi, rows);
        return;
    }
    if (out.s != NULL && !add && rows == 16) {
        for (int i = 0; i < 4; i++) {
            float32x4_t v = vmulq_n_f32(vcvtq_f32_s32(vpaddq_s32(lo[i], hi[i])), out.sx);
            v = vmulq_f32(vld1q_f32(out.s + 4 * i), v);
            LL_UNFUSED(v);
            vst1q_f32(out.y + 4 * i, vaddq_f32(vld1q_f32(out.y + 4 * i), v));
        }
        return;
    }
    /* written out rather than a call of ll_s8_column_rows: a call here cost the hot loop
     * around it 12 instructions per panel pair in register moves (qemu's count) */
    int32_t sums[16];
    panel_store(sums, lo, hi, 16);
    for (int r = 0; r < rows; r++) {
        const int32_t sum = add ? sums[r] + out.acc[r] : sums[r];
        if (out.s == NULL) {
            out.acc[r] = sum;
        } else {
            float v = out.s[r] * (out.sx * (float)sum);
            LL_UNFUSED(v);
            out.y[r] += v;
        }
    }
}

/* the sink of the panel `rows` rows down */
static inline panel_sink panel_sink_at(panel_sink out, int rows)
{
    panel_sink at = {out.acc + rows, out.s ? out.s + rows : NULL, out.sx,
                     out.y ? out.y + rows : NULL};
    return at;
}

/* P panels (1 or 2) at w, panel_bytes apart, against `count` groups of broadcasts, into out
 * (16 rows per panel, the last panel's `rows`; add: onto the earlier parts' sums). Two
 * groups at a time; between the panels no load moves up (GCC would otherwise load both
 * panels' 16 registers of weights first and spill the sums). */
static inline __attribute__((always_inline)) void
column_panels(const int P, const uint8_t *restrict w, size_t panel_bytes,
              const int8x16_t *restrict xs, int count, panel_sink out, int rows, int add)
{
    /* four arrays of 4, not two of 2 x 4: GCC keeps arrays over 64 bytes in memory */
    int32x4_t lo0[4], hi0[4], lo1[4], hi1[4];
    const int8x16_t *const pairs_end = xs + (count & ~1);
    if (xs < pairs_end) { /* the first two groups start the sums */
        panel_dot2_sums(1, lo0, hi0, load64(w), load64(w + 64), xs[0], xs[1]);
        if (P == 2)
            panel_dot2_sums(1, lo1, hi1, load64(w + panel_bytes), load64(w + panel_bytes + 64),
                            xs[0], xs[1]);
        xs += 2;
        w += 128;
    } else {
        for (int i = 0; i < 4; i++)
            lo0[i] = hi0[i] = lo1[i] = hi1[i] = vdupq_n_s32(0);
    }
    for (; xs < pairs_end; xs += 2, w += 128) {
        const int8x16_t x0 = xs[0], x1 = xs[1];
        panel_dot2(lo0, hi0, load64(w), load64(w + 64), x0, x1);
        if (P == 2) {
            __asm__ volatile("" ::: "memory");
            panel_dot2(lo1, hi1, load64(w + panel_bytes), load64(w + panel_bytes + 64), x0, x1);
        }
    }
    if (count & 1) {
        panel_dot1(lo0, hi0, load64(w), xs[0]);
        if (P == 2)
            panel_dot1(lo1, hi1, load64(w + panel_bytes), xs[0]);
    }
    panel_out(out, lo0, hi0, P == 1 ? rows : 16, add);
    if (P == 2)
        panel_out(panel_sink_at(out, 16), lo1, hi1, rows, add);
}

/* One column (a stream's step), two panels at a time: 16 accumulators, two groups of a
 * panel's weights, their products and two broadcasts fit the 32 registers, and each
 * broadcast loaded serves 32 rows. The column's broadcasts are made once per call, for every
 * panel to load, instead of a load and a broadcast per group and panel (which cost a
 * quarter of the instructions of the products); a column longer than LL_S8_COLUMN_GROUPS
 * groups goes in parts, each adding its sums. */

/* GCC's scheduling before register allocation moves a panel's 8 widening multiplies ahead of
 * their adds, which with 16 sums live needs more than the 32 registers: off for this
 * function (two register moves fewer per 256 products; measured under qemu). */
#if defined(__GNUC__) && !defined(__clang__)
#define NO_SCHEDULING_BEFORE_ALLOCATION __attribute__((optimize("no-schedule-insns")))
#else
#define NO_SCHEDULING_BEFORE_ALLOCATION
#endif

static __attribute__((noinline)) NO_SCHEDULING_BEFORE_ALLOCATION void
gemm_s8_panels_neon_column(int M, int K, const uint8_t *restrict panels,
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
        /* the float side (with s) once the sums are whole: in the column's last part */
        const int last = g0 + count == groups;
        const panel_sink sink = {acc, last ? s : NULL, sx, last ? y : NULL};
        int p = 0;
        for (; p + 2 <= panel_count; p += 2)
            column_panels(2, panels + (size_t)p * panel_bytes + (size_t)64 * g0, panel_bytes,
                          broadcasts, count, panel_sink_at(sink, 16 * p),
                          p + 2 == panel_count ? M - 16 * (p + 1) : 16, g0 > 0);
        if (p < panel_count)
            column_panels(1, panels + (size_t)p * panel_bytes + (size_t)64 * g0, panel_bytes,
                          broadcasts, count, panel_sink_at(sink, 16 * p), M - 16 * p, g0 > 0);
    }
}

static void gemm_s8_panels_neon(int M, int N, int K, const uint8_t *panels, const int8_t *X,
                                int ldx, int32_t *acc, int ldacc)
{
    if (N == 1)
        gemm_s8_panels_neon_column(M, K, panels, X, acc, NULL, 0.0f, NULL);
    else
        gemm_s8_panels_neon_tiles(M, N, K, panels, X, ldx, acc, ldacc);
}

/* the column's product and its float side in one pass: the int32 sums never go to memory
 * (unless the column is longer than its broadcasts), and scale_acc_s8's separate pass over
 * them is gone */
void ll_gemm_s8_panels_scaled_neon(int M, int K, const uint8_t *panels, const int8_t *x,
                                   int32_t *acc, const float *s, float sx, float *y)
{
    gemm_s8_panels_neon_column(M, K, panels, x, acc, s, sx, y);
}

#define LL_GEMM_S8 gemm_s8_neon
#define LL_GEMM_S8_PANELS gemm_s8_panels_neon
#define LL_GEMM_S8_PANELS_SCALED ll_gemm_s8_panels_scaled_neon
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
    .gemm_s8_panels = NULL, /* the row-major tiles: on 16 registers the panels' 8 sums per
                                * 16 rows spill (measured under qemu: 95k instructions
                                * against 88k per (40, 128) step) */
    .quantize_s8 = ll_quantize_s8_baseline,
    .scale_acc_s8 = ll_scale_acc_s8_baseline,
};

#endif /* armv7 */
#endif /* ARM */
