/*
 * The loop structure of the float32 product Y[n,:] += W X[n,:] for N columns, shared by the
 * kernel sets so that each writes only its vector operations (kernels_impl.h for the portable
 * source, kernels_neon.c for armv7's intrinsics).
 *
 * Four rows of W at a time against LL_F_COLS columns of X: each load of a weight vector feeds
 * every column of the tile and each load of a column feeds four rows, so a batch of streams,
 * or the time steps of a sequence, read the weights once instead of once per column, and the
 * inner loop is no longer bound by loads. (The tile's 4 * LL_F_COLS partial sums must fit in
 * the set's registers: 2 columns for 16 registers, 4 for 32.) Columns are taken in blocks
 * whose X fits in about 32 KiB (L1), so a block of four weight rows stays in registers and
 * cache while it meets every column.
 *
 * Every row of every column is formed by the same operations (one partial-sum vector over k
 * in order, the same reduction, the same scalar tail), whichever path, tile or block it falls
 * in: only how many rows and columns run side by side changes. A batched step or a sequence
 * therefore equals the single step bit for bit. A lone column (a single step) takes eight
 * rows at a time instead, so that eight independent multiply-add chains hide their latency.
 *
 * The includer defines, then includes this file once:
 *   LL_F_NAME              the function's name
 *   LL_F_VEC               the vector type of the partial sums
 *   LL_F_WIDTH             floats per vector
 *   LL_F_ZERO()            a zero vector
 *   LL_F_LOAD(p)           LL_F_WIDTH floats at p (unaligned)
 *   LL_F_MLA(a, w, x)      a + w * x, lanewise
 *   LL_F_SUM4(a0..a3, s)   float s[4] = the lane sums of a0..a3, in a fixed order
 *   LL_F_SUM1(a)           the lane sum of a, in a fixed order
 *   LL_F_COLS              columns per tile (2 or 4)
 *   LL_F_IN_REGISTER(w)    keeps a loaded weight vector in a register (or nothing): without
 *                          it GCC folds the load into each multiply-add and loads it again
 *                          per column
 */
#define LL_F_BLOCK_BYTES 32768

/* Adds the scalar tail [k, K) of four rows to the lane sums s and s to y[0..3]. */
#define LL_F_FINISH4(s, k, K, w0, w1, w2, w3, x, y)                                          \
    do {                                                                                    \
        for (int t_ = (k); t_ < (K); t_++) {                                                \
            const float xv_ = (x)[t_];                                                      \
            (s)[0] += (w0)[t_] * xv_;                                                       \
            (s)[1] += (w1)[t_] * xv_;                                                       \
            (s)[2] += (w2)[t_] * xv_;                                                       \
            (s)[3] += (w3)[t_] * xv_;                                                       \
        }                                                                                   \
        (y)[0] += (s)[0];                                                                   \
        (y)[1] += (s)[1];                                                                   \
        (y)[2] += (s)[2];                                                                   \
        (y)[3] += (s)[3];                                                                   \
    } while (0)

/* One row m against one column n: a single partial-sum vector, then the scalar tail. */
#define LL_F_ROW(m, n)                                                                      \
    do {                                                                                    \
        const float *restrict wr_ = W + (size_t)(m) * ld;                                   \
        const float *restrict xr_ = X + (size_t)(n) * ldx;                                  \
        LL_F_VEC a_ = LL_F_ZERO();                                                          \
        int k_ = 0;                                                                         \
        for (; k_ + LL_F_WIDTH <= K; k_ += LL_F_WIDTH)                                      \
            a_ = LL_F_MLA(a_, LL_F_LOAD(wr_ + k_), LL_F_LOAD(xr_ + k_));                    \
        float s_ = LL_F_SUM1(a_);                                                           \
        for (; k_ < K; k_++)                                                                \
            s_ += wr_[k_] * xr_[k_];                                                        \
        Y[(size_t)(n) * ldy + (m)] += s_;                                                   \
    } while (0)

static void LL_F_NAME(int M, int N, int K, const float *restrict W, const float *restrict X,
                      int ldx, float *restrict Y, int ldy)
{
    const size_t ld = (size_t)K;
    const size_t column_bytes = sizeof(float) * (ld > 0 ? ld : 1);
    int block = (int)(LL_F_BLOCK_BYTES / column_bytes);
    block = block < 2 ? 2 : block;
    for (int n0 = 0; n0 < N; n0 += block) {
        const int n1 = N - n0 > block ? n0 + block : N;
        const int tiled = n0 + (n1 - n0) / LL_F_COLS * LL_F_COLS; /* columns in whole tiles */
        int m = 0;
        for (; m + 4 <= M; m += 4) {
            const float *restrict w0 = W + (size_t)m * ld;
            const float *restrict w1 = w0 + ld, *restrict w2 = w1 + ld, *restrict w3 = w2 + ld;
            for (int n = n0; n < tiled; n += LL_F_COLS) {
                const float *restrict x[LL_F_COLS];
                LL_F_VEC a[LL_F_COLS][4];
                for (int j = 0; j < LL_F_COLS; j++) {
                    x[j] = X + (size_t)(n + j) * ldx;
                    a[j][0] = a[j][1] = a[j][2] = a[j][3] = LL_F_ZERO();
                }
                int k = 0;
                for (; k + LL_F_WIDTH <= K; k += LL_F_WIDTH) {
                    LL_F_VEC u[LL_F_COLS];
                    for (int j = 0; j < LL_F_COLS; j++)
                        u[j] = LL_F_LOAD(x[j] + k);
                    const float *restrict rows[4] = {w0, w1, w2, w3};
                    for (int r = 0; r < 4; r++) {
                        LL_F_VEC w = LL_F_LOAD(rows[r] + k);
                        LL_F_IN_REGISTER(w);
                        for (int j = 0; j < LL_F_COLS; j++)
                            a[j][r] = LL_F_MLA(a[j][r], w, u[j]);
                    }
                }
                for (int j = 0; j < LL_F_COLS; j++) {
                    float s[4];
                    LL_F_SUM4(a[j][0], a[j][1], a[j][2], a[j][3], s);
                    LL_F_FINISH4(s, k, K, w0, w1, w2, w3, x[j], Y + (size_t)(n + j) * ldy + m);
                }
            }
        }
        for (; m < M; m++) /* the last M % 4 rows of the tiled columns, one at a time */
            for (int n = n0; n < tiled; n++)
                LL_F_ROW(m, n);

        /* the columns left over (all of them for a single vector): eight rows at a time, so
         * that eight independent chains of multiply-adds hide their latency */
        for (int n = tiled; n < n1; n++) {
            const float *restrict x0 = X + (size_t)n * ldx;
            int r = 0;
            for (; r + 8 <= M; r += 8) {
                const float *restrict w0 = W + (size_t)r * ld;
                const float *restrict w1 = w0 + ld, *restrict w2 = w1 + ld, *restrict w3 = w2 + ld;
                const float *restrict w4 = w3 + ld, *restrict w5 = w4 + ld, *restrict w6 = w5 + ld;
                const float *restrict w7 = w6 + ld;
                LL_F_VEC a0 = LL_F_ZERO(), a1 = a0, a2 = a0, a3 = a0;
                LL_F_VEC a4 = a0, a5 = a0, a6 = a0, a7 = a0;
                int k = 0;
                for (; k + LL_F_WIDTH <= K; k += LL_F_WIDTH) {
                    const LL_F_VEC u = LL_F_LOAD(x0 + k);
                    a0 = LL_F_MLA(a0, LL_F_LOAD(w0 + k), u);
                    a1 = LL_F_MLA(a1, LL_F_LOAD(w1 + k), u);
                    a2 = LL_F_MLA(a2, LL_F_LOAD(w2 + k), u);
                    a3 = LL_F_MLA(a3, LL_F_LOAD(w3 + k), u);
                    a4 = LL_F_MLA(a4, LL_F_LOAD(w4 + k), u);
                    a5 = LL_F_MLA(a5, LL_F_LOAD(w5 + k), u);
                    a6 = LL_F_MLA(a6, LL_F_LOAD(w6 + k), u);
                    a7 = LL_F_MLA(a7, LL_F_LOAD(w7 + k), u);
                }
                float s[4], t[4];
                LL_F_SUM4(a0, a1, a2, a3, s);
                LL_F_SUM4(a4, a5, a6, a7, t);
                float *restrict y = Y + (size_t)n * ldy + r;
                LL_F_FINISH4(s, k, K, w0, w1, w2, w3, x0, y);
                LL_F_FINISH4(t, k, K, w4, w5, w6, w7, x0, y + 4);
            }
            for (; r < M; r++) /* the last M % 8 rows */
                LL_F_ROW(r, n);
        }
    }
}

#undef LL_F_FINISH4
#undef LL_F_ROW
#undef LL_F_BLOCK_BYTES
#undef LL_F_NAME
#undef LL_F_VEC
#undef LL_F_WIDTH
#undef LL_F_ZERO
#undef LL_F_LOAD
#undef LL_F_MLA
#undef LL_F_SUM4
#undef LL_F_SUM1
#undef LL_F_COLS
#undef LL_F_IN_REGISTER
