/*
 * The float32 product Y[n,:] += W X[n,:] for N columns, on weights packed in panels
 * (ll_pack_f32, pack.c): the loop structure shared by the kernel sets, so that each writes
 * only its vector operations (kernels_impl.h for the portable source, kernels_neon.c for
 * armv7's intrinsics).
 *
 * A panel holds LL_PANEL_ROWS (16) rows of W k-major: the 16 weights of input k side by
 * side, then those of k + 1. One input value times the panel's vectors at k advances 16 rows'
 * sums at once, so no sum ever needs a horizontal reduction (with one dot product per
 * row-major row, the reductions cost as much as the products at K = 64), and each panel is
 * one contiguous stream, which the hardware prefetchers follow.
 *
 * Every sum is one chain: it starts from Y's value and adds w[m,k] * x[k] for k = 0 .. K-1 in
 * order, one multiply-add per k (fused where the set has FMA; the loop over k is unrolled 4
 * times but on armv7, which changes no chain). The last M % 16 rows form a
 * narrower panel (kernels.h) that runs the same chains without vectors. The tiles below differ only in
 * how many chains run side by side, never in a chain's operations, so a batch of streams or
 * the time steps of a sequence get the bits a single step gets, and every row and column
 * gets them wherever it falls.
 *
 * Tiles: c columns (c = 1, 2, 4 .. LL_P_COLS) against R panels, with R * (vectors per
 * panel row) * c = 8 accumulators where the panels allow (at least one panel): eight
 * independent multiply-add chains hide the latency, and each weight vector loaded feeds c
 * columns. The weights go through in groups of LL_P_GROUP panels (8 vectors per input), each
 * group meeting every column before the next is read: one pass over W for the whole call.
 *
 * The includer defines, then includes this file once:
 *   LL_P_NAME            the function's name
 *   LL_P_VEC             the vector type of the sums
 *   LL_P_WIDTH           floats per vector: 4, 8 or 16
 *   LL_P_LOAD(p)         LL_P_WIDTH floats at p (unaligned)
 *   LL_P_STORE(p, v)     stores them (unaligned)
 *   LL_P_MLA(a, w, x)    a + w * x, lanewise, x a float
 *   LL_P_COLS            the widest tile in columns: 2, 4 or 8 (its 8 accumulators, or 16
 *                        with 4-float vectors, must fit the set's registers)
 *   LL_P_IN_REGISTER(w)  keeps a loaded weight vector in a register (or nothing): without it
 *                        GCC folds the load into each multiply-add and loads it per column
 */
#include <string.h>

#define LL_P_VECTORS (LL_PANEL_ROWS / LL_P_WIDTH) /* vectors per input of one panel */
#if defined(__arm__)
#define LL_P_UNROLL _Pragma("GCC unroll 1")
#else
#define LL_P_UNROLL _Pragma("GCC unroll 4")
#endif
#define LL_P_GROUP (8 / LL_P_VECTORS)             /* panels a single column takes at once */
#define LL_P_CAT2(a, b) a##_##b
#define LL_P_CAT(a, b) LL_P_CAT2(a, b)
#define LL_P_TILE LL_P_CAT(LL_P_NAME, tile)

/* Y's rows [16r, 16r + 16) of columns [0, C) += panels [0, R) against X's columns [0, C):
 * R and C are constants at every call, so the accumulators live in registers. */
static inline __attribute__((always_inline)) void
LL_P_TILE(const int R, const int C, int K, const float *restrict P, size_t panel_floats,
          const float *restrict X, int ldx, float *restrict Y, int ldy)
{
    LL_P_VEC acc[8][LL_P_COLS];
    for (int r = 0; r < R; r++)
        for (int v = 0; v < LL_P_VECTORS; v++)
            for (int c = 0; c < C; c++)
                acc[r * LL_P_VECTORS + v][c] =
                    LL_P_LOAD(Y + (size_t)c * ldy + r * LL_PANEL_ROWS + v * LL_P_WIDTH);
    /* unrolled: the pointer updates and the loop test once per 4 inputs (every chain still
     * adds its products in the order of k); not on armv7, whose 16 registers it overflows
     * (its (40, 64) step went from 52k to 57k instructions) */
    LL_P_UNROLL for (int k = 0; k < K; k++) {
        float x[LL_P_COLS];
        for (int c = 0; c < C; c++)
            x[c] = X[(size_t)c * ldx + k];
        for (int r = 0; r < R; r++) {
            const float *restrict w_k = P + r * panel_floats + (size_t)k * LL_PANEL_ROWS;
            for (int v = 0; v < LL_P_VECTORS; v++) {
                LL_P_VEC w = LL_P_LOAD(w_k + v * LL_P_WIDTH);
                LL_P_IN_REGISTER(w);
                for (int c = 0; c < C; c++)
                    acc[r * LL_P_VECTORS + v][c] = LL_P_MLA(acc[r * LL_P_VECTORS + v][c], w, x[c]);
            }
        }
    }
    for (int r = 0; r < R; r++)
        for (int v = 0; v < LL_P_VECTORS; v++)
            for (int c = 0; c < C; c++)
                LL_P_STORE(Y + (size_t)c * ldy + r * LL_PANEL_ROWS + v * LL_P_WIDTH,
                           acc[r * LL_P_VECTORS + v][c]);
}

/* Panels [p0, p1) against columns [n, n + C): R panels at a time, then the rest one by one. */
#define LL_P_PANELS(C)                                                                      \
    do {                                                                                    \
        enum { R_ = LL_P_GROUP / (C) > 0 ? LL_P_GROUP / (C) : 1 };                          \
        int p_ = p0;                                                                        \
        for (; p_ + R_ <= p1; p_ += R_)                                                     \
            LL_P_TILE(R_, (C), K, W + (size_t)p_ * panel, panel, X + (size_t)n * ldx, ldx,  \
                      Y + (size_t)n * ldy + (size_t)p_ * LL_PANEL_ROWS, ldy);               \
        for (; p_ < p1; p_++)                                                               \
            LL_P_TILE(1, (C), K, W + (size_t)p_ * panel, panel, X + (size_t)n * ldx, ldx,   \
                      Y + (size_t)n * ldy + (size_t)p_ * LL_PANEL_ROWS, ldy);               \
        n += (C);                                                                           \
    } while (0)

static void LL_P_NAME(int M, int N, int K, const float *restrict W, const float *restrict X,
                      int ldx, float *restrict Y, int ldy)
{
    const size_t panel = (size_t)LL_PANEL_ROWS * (size_t)K;
    const int full = M / LL_PANEL_ROWS; /* whole panels; the last one may be partial */
    for (int p0 = 0; p0 < full; p0 += LL_P_GROUP) {
        const int p1 = full - p0 > LL_P_GROUP ? p0 + LL_P_GROUP : full;
        int n = 0;
        while (n < N) {
            const int left = N - n;
#if LL_P_COLS >= 8
            if (left >= 8) {
                LL_P_PANELS(8);
                continue;
            }
#endif
#if LL_P_COLS >= 4
            if (left >= 4) {
                LL_P_PANELS(4);
                continue;
            }
#endif
            if (left >= 2)
                LL_P_PANELS(2);
            else
                LL_P_PANELS(1);
        }
    }

    /* the last M % 16 rows, a panel of `rest` weights per input (unpadded, so a matrix of
     * few rows and many inputs packs to its own size): the same chains in scalar arithmetic.
     * A row is always in this part or never, so its bits still do not depend on the path. */
    const int rest = M - full * LL_PANEL_ROWS;
    if (rest > 0) {
        const float *restrict last = W + (size_t)full * panel;
        for (int n = 0; n < N; n++) {
            const float *restrict x = X + (size_t)n * ldx;
            float y[LL_PANEL_ROWS];
            float *restrict out = Y + (size_t)n * ldy + (size_t)full * LL_PANEL_ROWS;
            memcpy(y, out, sizeof(float) * rest);
            for (int k = 0; k < K; k++) {
                const float *restrict w_k = last + (size_t)k * rest;
                for (int r = 0; r < rest; r++)
                    y[r] = y[r] + w_k[r] * x[k];
            }
            memcpy(out, y, sizeof(float) * rest);
        }
    }
}

#undef LL_P_PANELS
#undef LL_P_TILE
#undef LL_P_CAT
#undef LL_P_CAT2
#undef LL_P_GROUP
#undef LL_P_VECTORS
#undef LL_P_UNROLL
#undef LL_P_NAME
#undef LL_P_VEC
#undef LL_P_WIDTH
#undef LL_P_LOAD
#undef LL_P_STORE
#undef LL_P_MLA
#undef LL_P_COLS
#undef LL_P_IN_REGISTER
