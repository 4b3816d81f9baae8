/*
 * The int8 product acc[n*ldacc + m] = W[m,:] . X[n*ldx + :] on W in panels
 * (ll_pack_s8_panels, kernels.h): the loop structure of the sets whose instruction multiplies
 * four bytes by four bytes into each int32 lane (vpdpbusd, unsigned by signed; sdot, signed by
 * signed). Each panel holds 16 rows, four inputs per row in each 64-byte group, stored
 * + LL_S8_PANEL_OFFSET (128 on x86, 0 on ARM): one group loaded is 16 rows' next four
 * weights, and four bytes of a column broadcast to every lane are their inputs. So every lane
 * of an accumulator is one row's sum from the start: nothing is reduced across lanes at the end
 * of K (row-major tiles reduce every (row, column) pair), nothing is flipped per column slice,
 * and the offset of the weights comes back as one correction per column, offset * sum(x),
 * subtracted when the 16 sums are stored (zero on ARM).
 *
 * Tiles of p panels x c columns, p c accumulators (LL_S8P_TILE_VECS of them at most: 2 x 8,
 * 4 x 4, 4 x 2, 4 x 1 for 16; 1 x 4, 2 x 2, 4 x 1 for 4; 1 x 2, 2 x 1 for 2; 1 x 1 for 1;
 * and 1 x c for the last panels of a matrix): each group of weights loaded feeds c columns,
 * each broadcast feeds p panels. A group of 4 panels (64 rows) meets every column of a block
 * of LL_S8P_COL_BLOCK before the next rows are read, so the weights stream from memory once
 * per block.
 *
 * The includer defines, then includes this file once:
 *   LL_S8P_NAME            the function's name
 *   LL_S8P_VEC             16 int32 lanes (one register, or a pair of 8-lane ones)
 *   LL_S8P_TILE_VECS       how many LL_S8P_VEC accumulators a tile keeps in registers: 16
 *                          (one AVX-512 register each, of 32), 4 (a pair of the 16 AVX2
 *                          registers, or 4 of the 32 NEON ones), 2 (8 of the 32 NEON
 *                          registers), 1 (8 of armv7's 16): chooses the tiles
 *   LL_S8P_ZERO()          a zero LL_S8P_VEC
 *   LL_S8P_LOAD(p)         the 64 bytes at p (one group of a panel)
 *   LL_S8P_BROADCAST(v)    the int32 v in every lane
 *   LL_S8P_DOT(a, w, x)    a + the products of w's bytes (unsigned with an offset of 128,
 *                          signed without) and x's signed ones, four
 *                          to a lane
 *   LL_S8P_STORE(p, a, corr, rows)
 *                          p[r] = row r's sum in a - corr (modulo 2^32) for r < rows (<= 16),
 *                          nothing written past p + rows
 * and optionally:
 *   LL_S8P_DOT2(a, w0, w1, x0, x1)
 *                          a + the products of two consecutive groups, w0 by x0 and w1 by
 *                          x1, where two groups cost less than twice one (NEON without dot
 *                          products adds two products in an int16 lane before widening);
 *                          the groups go two at a time, an odd last one by LL_S8P_DOT
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define LL_S8P_CAT2(a, b) a##_##b
#define LL_S8P_CAT(a, b) LL_S8P_CAT2(a, b)
#define LL_S8P_TILE LL_S8P_CAT(LL_S8P_NAME, tile)
#define LL_S8P_COL_BLOCK 64 /* columns a group of panels meets before the next group */
#define LL_S8P_GROUP_PANELS 4

/* Panels [0, P) at `panels` against columns [0, C) at X: P and C are constants at every call
 * (P C <= 16 accumulators), so the sums live in registers. `tails` holds each column's last
 * K % 4 values, zero padded to 4 bytes (the group that would read past the column), `corr`
 * each column's offset * sum(x); `rows` is how many rows of the last panel are rows of W. */
static inline __attribute__((always_inline)) void
LL_S8P_TILE(const int P, const int C, int K, const uint8_t *restrict panels,
            size_t panel_bytes, const int8_t *restrict X, size_t ldx,
            const int32_t *restrict tails, const uint32_t *restrict corr, int rows,
            int32_t *restrict out, size_t ldout)
{
    LL_S8P_VEC acc[4][8];
    _Pragma("GCC unroll 4") for (int p = 0; p < P; p++)
        _Pragma("GCC unroll 8") for (int c = 0; c < C; c++)
            acc[p][c] = LL_S8P_ZERO();
    const int full = K / 4;
    int g = 0;
#if defined(LL_S8P_DOT2)
    for (; g + 2 <= full; g += 2) {
        LL_S8P_VEC x0[8], x1[8];
        _Pragma("GCC unroll 8") for (int c = 0; c < C; c++) {
            int32_t four0, four1;
            memcpy(&four0, X + (size_t)c * ldx + 4 * (size_t)g, 4);
            memcpy(&four1, X + (size_t)c * ldx + 4 * (size_t)g + 4, 4);
            x0[c] = LL_S8P_BROADCAST(four0);
            x1[c] = LL_S8P_BROADCAST(four1);
        }
        _Pragma("GCC unroll 4") for (int p = 0; p < P; p++) {
            const uint8_t *restrict w = panels + (size_t)p * panel_bytes + 64 * (size_t)g;
            const LL_S8P_VEC w0 = LL_S8P_LOAD(w), w1 = LL_S8P_LOAD(w + 64);
            _Pragma("GCC unroll 8") for (int c = 0; c < C; c++)
                acc[p][c] = LL_S8P_DOT2(acc[p][c], w0, w1, x0[c], x1[c]);
        }
    }
#endif
    for (; g < full; g++) {
        LL_S8P_VEC x[8];
        _Pragma("GCC unroll 8") for (int c = 0; c < C; c++) {
            int32_t four;
            memcpy(&four, X + (size_t)c * ldx + 4 * (size_t)g, 4);
            x[c] = LL_S8P_BROADCAST(four);
        }
        _Pragma("GCC unroll 4") for (int p = 0; p < P; p++) {
            const LL_S8P_VEC w = LL_S8P_LOAD(panels + (size_t)p * panel_bytes + 64 * (size_t)g);
            _Pragma("GCC unroll 8") for (int c = 0; c < C; c++)
                acc[p][c] = LL_S8P_DOT(acc[p][c], w, x[c]);
        }
    }
    if (full * 4 < K) {
        /* the last group: the tail holds the column's last values and zeros, so the
         * panel's padding past K adds nothing; the tail is what keeps the reads in the
         * column */
        _Pragma("GCC unroll 4") for (int p = 0; p < P; p++) {
            const LL_S8P_VEC w =
                LL_S8P_LOAD(panels + (size_t)p * panel_bytes + 64 * (size_t)full);
            _Pragma("GCC unroll 8") for (int c = 0; c < C; c++)
                acc[p][c] = LL_S8P_DOT(acc[p][c], w, LL_S8P_BROADCAST(tails[c]));
        }
    }
    _Pragma("GCC unroll 8") for (int c = 0; c < C; c++)
        _Pragma("GCC unroll 4") for (int p = 0; p < P; p++)
            LL_S8P_STORE(out + (size_t)c * ldout + 16 * (size_t)p, acc[p][c], corr[c],
                         p == P - 1 ? rows : 16);
}

/* Panels [panel, panel + P) against columns [n, n + C) of the block, into acc. */
#define LL_S8P_TILE_AT(P, C)                                                                \
    LL_S8P_TILE((P), (C), K, panels + (size_t)panel * panel_bytes, panel_bytes,             \
                X + (size_t)n * xld, xld, tails + (n - n0), corr + (n - n0),                \
                (panel + (P) == panel_count ? last_rows : 16),                               \
                acc + (size_t)n * ldacc + 16 * (size_t)panel, (size_t)ldacc)

/* Columns [n, n + C) against the group's panels [p0, p1): P at a time, one at a time for
 * the panels of a group shorter than P. */
#define LL_S8P_COLUMNS(P, C)                                                                \
    do {                                                                                    \
        int panel = p0;                                                                     \
        for (; panel + (P) <= p1; panel += (P))                                             \
            LL_S8P_TILE_AT((P), (C));                                                       \
        for (; panel < p1; panel++)                                                         \
            LL_S8P_TILE_AT(1, (C));                                                         \
        n += (C);                                                                           \
    } while (0)

static void LL_S8P_NAME(int M, int N, int K, const uint8_t *restrict panels,
                        const int8_t *restrict X, int ldx, int32_t *restrict acc, int ldacc)
{
    const size_t xld = (size_t)ldx;
    const size_t panel_bytes = (size_t)64 * (size_t)((K + 3) / 4);
    const int panel_count = (M + 15) / 16;
    const int last_rows = M - 16 * (panel_count - 1);
    for (int n0 = 0; n0 < N; n0 += LL_S8P_COL_BLOCK) {
        const int n1 = N - n0 > LL_S8P_COL_BLOCK ? n0 + LL_S8P_COL_BLOCK : N;
        int32_t tails[LL_S8P_COL_BLOCK];
        uint32_t corr[LL_S8P_COL_BLOCK];
        for (int n = n0; n < n1; n++) {
            const int8_t *restrict x = X + (size_t)n * xld;
            int32_t sum = 0;
            for (int k = 0; k < K; k++)
                sum += x[k];
            /* the weights were stored + offset: every sum holds offset * sum(x) too */
            corr[n - n0] = (uint32_t)LL_S8_PANEL_OFFSET * (uint32_t)sum;
            int8_t tail[4] = {0, 0, 0, 0};
            memcpy(tail, x + (K & ~3), (size_t)(K & 3));
            memcpy(&tails[n - n0], tail, 4);
        }
        for (int p0 = 0; p0 < panel_count; p0 += LL_S8P_GROUP_PANELS) {
            const int p1 = panel_count - p0 > LL_S8P_GROUP_PANELS ? p0 + LL_S8P_GROUP_PANELS
                                                                  : panel_count;
            int n = n0;
            while (n < n1) {
                const int left = n1 - n;
#if LL_S8P_TILE_VECS >= 16
                /* 16 accumulators, 8 broadcasts and the weights of 2 panels */
                if (left >= 8)
                    LL_S8P_COLUMNS(2, 8);
                else if (left >= 4)
                    LL_S8P_COLUMNS(4, 4);
                else if (left >= 2)
                    LL_S8P_COLUMNS(4, 2);
                else
                    LL_S8P_COLUMNS(4, 1);
#elif LL_S8P_TILE_VECS >= 4
                /* 4 accumulators (8 or 16 registers), the rest for weights and broadcasts */
                if (left >= 4)
                    LL_S8P_COLUMNS(1, 4);
                else if (left >= 2)
                    LL_S8P_COLUMNS(2, 2);
                else
                    LL_S8P_COLUMNS(4, 1);
#elif LL_S8P_TILE_VECS >= 2
                if (left >= 2)
                    LL_S8P_COLUMNS(1, 2);
                else
                    LL_S8P_COLUMNS(2, 1);
#else
                (void)left;
                LL_S8P_COLUMNS(1, 1);
#endif
            }
        }
    }
}

#undef LL_S8P_TILE_AT
#undef LL_S8P_COLUMNS
#undef LL_S8P_TILE
#undef LL_S8P_CAT
#undef LL_S8P_CAT2
#undef LL_S8P_COL_BLOCK
#undef LL_S8P_GROUP_PANELS
#undef LL_S8P_NAME
#undef LL_S8P_VEC
#undef LL_S8P_TILE_VECS
#undef LL_S8P_ZERO
#undef LL_S8P_LOAD
#undef LL_S8P_BROADCAST
#undef LL_S8P_DOT
#undef LL_S8P_DOT2
#undef LL_S8P_STORE
