/*
 * The int8 product acc[n*ldacc + m] = W[m,:] . X[n*ldx + :] for N columns on row-major W: the
 * loop structure shared by the SIMD kernel sets, so that each writes only its vector
 * operations. The sums are exact int32 in every set (see kernels.h for the range contract),
 * so no order of additions is special and every path gets the same integers.
 *
 * Tiles of 4 rows x c columns (c = 1, 2, 4 .. LL_S8_COLS) and of 8 rows x 1 column: each
 * weight slice loaded feeds c columns and each prepared slice of a column feeds 4 or 8
 * rows, so a batch of streams or the steps of a sequence cost less per column than one
 * column alone, which reloads both for every product; a single column still runs 8
 * independent chains. The sums are reduced to integers once per tile, four rows together,
 * at the end of K. A group of 8 rows (8 K bytes, in L1) meets the columns of a block of
 * LL_S8_COL_BLOCK in turn before the next rows are read, so the weights stream from memory
 * once per block.
 *
 * The includer defines, then includes this file once:
 *   LL_S8_NAME             the function's name
 *   LL_S8_ACC              the accumulator type (int32 lanes)
 *   LL_S8_XOP              a prepared slice of a column
 *   LL_S8_WOP              a loaded slice of a row of W
 *   LL_S8_WIDTH            int8 values per slice
 *   LL_S8_COLS             the widest tile in columns: 2 or 4 (its 4 c accumulators and c
 *                          prepared slices must fit the set's registers)
 *   LL_S8_ZERO()           a zero accumulator
 *   LL_S8_LOADX(p)         LL_S8_WIDTH values of a column at p, prepared
 *   LL_S8_LOADW(p)         LL_S8_WIDTH weights at p
 *   LL_S8_DOT(a, w, x)     a plus the LL_S8_WIDTH products of w and x, in int32 lanes
 *   LL_S8_HSUM4(a, out)    out[r] = the int32 sum of a[r]'s lanes, r < 4 (a an array)
 * and optionally:
 *   LL_S8_LOADX_TAIL(p, n), LL_S8_LOADW_TAIL(p, n)
 *                          the last n < LL_S8_WIDTH values at p and zeros after them, by
 *                          masked loads that read nothing beyond p + n
 *   LL_S8_AND(w, mask)     (without them) w's bytes and mask's: the last slice of a row is
 *                          then the one that ends at K, overlapping the one before, with
 *                          its first bytes (counted already) zeroed in the weights; where K
 *                          is below the width (or neither is defined) the last values are
 *                          copied into a zeroed slice
 *   LL_S8_X_OFFSET         prepared columns hold x + LL_S8_X_OFFSET (VNNI multiplies
 *                          unsigned bytes by signed ones; x + 128 is x's bits with the top
 *                          one flipped), so each sum is W[m,:] . x + OFFSET * W_sums[m], and
 *                          OFFSET * W_sums[m] (the row sums made when the model was built,
 *                          ll_row_sums_s8) is subtracted; beyond K the weights are zero, so
 *                          the offset column values there add nothing
 *   LL_S8_XOP_HALF, LL_S8_WOP_HALF, LL_S8_LOADX_HALF(p), LL_S8_LOADW_HALF(p),
 *   LL_S8_DOT_HALF(a, w, x)
 *                          (optional) the same on half a slice: where at least half a slice
 *                          is left after the whole ones, it goes by these, unmasked
 * Either way the last K % LL_S8_WIDTH values of a row are one more slice, never scalar code
 * (at K = 40, a common input size, that would be 8 of 40 products per row).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define LL_S8_CAT2(a, b) a##_##b
#define LL_S8_CAT(a, b) LL_S8_CAT2(a, b)
#define LL_S8_TILE LL_S8_CAT(LL_S8_NAME, tile)
#define LL_S8_COL_BLOCK 64 /* columns a group of rows meets before the next group */

#if defined(LL_S8_AND) && !defined(LL_S8_TAIL_KEEP_DEFINED)
#define LL_S8_TAIL_KEEP_DEFINED /* once per file, whichever sets include this */
/* ll_s8_tail_keep + 32 - z: 32 bytes whose first z are 0 and the rest all ones (z <= 32, the
 * widest slice of the sets without masked loads) */
static const int8_t ll_s8_tail_keep[64] = {
    0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,
    0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1};
#endif
#if defined(LL_S8_AND)
_Static_assert(LL_S8_WIDTH <= 32, "ll_s8_tail_keep covers slices of up to 32 bytes");
#endif

#if !defined(LL_S8_LOADW_TAIL)
/* For K < LL_S8_WIDTH, where no slice can end at K without starting before the row: the K
 * values at p in a zeroed slice. Nothing is read past the row (the last row of W may end a
 * page), and the zero weights make every product beyond K zero whatever the column's slice
 * holds there. */
#define LL_S8_PADDED LL_S8_CAT(LL_S8_NAME, padded)
static inline void LL_S8_PADDED(const int8_t *restrict p, int n, int8_t *restrict slice)
{
    memset(slice, 0, LL_S8_WIDTH);
    memcpy(slice, p, (size_t)n);
}
#define LL_S8_TAIL_SLICE(LOAD, p, n)                                                        \
    __extension__({                                                                         \
        int8_t slice_[LL_S8_WIDTH];                                                         \
        LL_S8_PADDED((p), (n), slice_);                                                     \
        LOAD(slice_);                                                                       \
    })
#define LL_S8_LOADW_TAIL(p, n) LL_S8_TAIL_SLICE(LL_S8_LOADW, p, n)
#define LL_S8_LOADX_TAIL(p, n) LL_S8_TAIL_SLICE(LL_S8_LOADX, p, n)
#endif

/* out[c*ldout + r] = W's rows [0, R) . X's columns [0, C), less offset[r]: R and C are
 * constants at every call (R C <= 4 LL_S8_COLS), so the accumulators live in registers; the
 * unroll pragmas make sure of it (without them GCC keeps the arrays on the stack and the
 * tile runs at half speed). Four rows of a column are reduced together and stored as one
 * vector where the compiler can. */
static inline __attribute__((always_inline)) void
LL_S8_TILE(const int R, const int C, int K, const int8_t *restrict W, size_t ldw,
           const int8_t *restrict X, size_t ldx, const uint32_t *restrict offset,
           int32_t *restrict out, size_t ldout)
{
    LL_S8_ACC acc[8][LL_S8_COLS];
    _Pragma("GCC unroll 8") for (int r = 0; r < 8; r++)
        _Pragma("GCC unroll 4") for (int c = 0; c < C; c++)
            acc[r][c] = LL_S8_ZERO();
    int k = 0;
    for (; k + LL_S8_WIDTH <= K; k += LL_S8_WIDTH) {
        LL_S8_XOP x[LL_S8_COLS];
        _Pragma("GCC unroll 4") for (int c = 0; c < C; c++)
            x[c] = LL_S8_LOADX(X + (size_t)c * ldx + k);
        _Pragma("GCC unroll 8") for (int r = 0; r < R; r++) {
            const LL_S8_WOP w = LL_S8_LOADW(W + (size_t)r * ldw + k);
            _Pragma("GCC unroll 4") for (int c = 0; c < C; c++)
                acc[r][c] = LL_S8_DOT(acc[r][c], w, x[c]);
        }
    }
#if defined(LL_S8_DOT_HALF)
    if (K - k >= LL_S8_WIDTH / 2) {
        /* half a slice (K = 40 is two slices and a half): loads and products of half the
         * width, no mask */
        LL_S8_XOP_HALF x[LL_S8_COLS];
        _Pragma("GCC unroll 4") for (int c = 0; c < C; c++)
            x[c] = LL_S8_LOADX_HALF(X + (size_t)c * ldx + k);
        _Pragma("GCC unroll 8") for (int r = 0; r < R; r++) {
            const LL_S8_WOP_HALF w = LL_S8_LOADW_HALF(W + (size_t)r * ldw + k);
            _Pragma("GCC unroll 4") for (int c = 0; c < C; c++)
                acc[r][c] = LL_S8_DOT_HALF(acc[r][c], w, x[c]);
        }
        k += LL_S8_WIDTH / 2;
    }
#endif
#if defined(LL_S8_AND)
    if (k < K && K >= LL_S8_WIDTH) {
        /* the slice ending at K (it starts in the row: K is at least a slice); its first
         * bytes, counted already, zeroed in the weights */
        const int back = LL_S8_WIDTH - (K - k);
        const LL_S8_WOP keep = LL_S8_LOADW(ll_s8_tail_keep + 32 - back);
        LL_S8_XOP x[LL_S8_COLS];
        _Pragma("GCC unroll 4") for (int c = 0; c < C; c++)
            x[c] = LL_S8_LOADX(X + (size_t)c * ldx + k - back);
        _Pragma("GCC unroll 8") for (int r = 0; r < R; r++) {
            const LL_S8_WOP w = LL_S8_AND(LL_S8_LOADW(W + (size_t)r * ldw + k - back), keep);
            _Pragma("GCC unroll 4") for (int c = 0; c < C; c++)
                acc[r][c] = LL_S8_DOT(acc[r][c], w, x[c]);
        }
        k = K;
    }
#endif
    if (k < K) {
        const int n = K - k;
        LL_S8_XOP x[LL_S8_COLS];
        _Pragma("GCC unroll 4") for (int c = 0; c < C; c++)
            x[c] = LL_S8_LOADX_TAIL(X + (size_t)c * ldx + k, n);
        _Pragma("GCC unroll 8") for (int r = 0; r < R; r++) {
            const LL_S8_WOP w = LL_S8_LOADW_TAIL(W + (size_t)r * ldw + k, n);
            _Pragma("GCC unroll 4") for (int c = 0; c < C; c++)
                acc[r][c] = LL_S8_DOT(acc[r][c], w, x[c]);
        }
    }
    _Pragma("GCC unroll 4") for (int c = 0; c < C; c++) {
        _Pragma("GCC unroll 2") for (int r0 = 0; r0 < R; r0 += 4) {
            LL_S8_ACC rows[4] = {acc[r0][c], acc[r0 + 1][c], acc[r0 + 2][c], acc[r0 + 3][c]};
            int32_t sums[4];
            LL_S8_HSUM4(rows, sums);
            int32_t *restrict to = out + (size_t)c * ldout + r0;
            /* unsigned: see LL_S8_ROW_OFFSETS */
            if (R - r0 >= 4) {
                _Pragma("GCC unroll 4") for (int r = 0; r < 4; r++)
                    to[r] = (int32_t)((uint32_t)sums[r] - offset[r0 + r]);
            } else {
                for (int r = 0; r < R - r0; r++)
                    to[r] = (int32_t)((uint32_t)sums[r] - offset[r0 + r]);
            }
        }
    }
}

/* Rows [r0, r0 + R) of the group at m against columns [n, n + C), into acc. */
#define LL_S8_TILE_AT(R, C, r0)                                                             \
    LL_S8_TILE((R), (C), K, w_rows + (size_t)(r0) * ld, ld, X + (size_t)n * xld, xld,       \
               offset + (r0), acc + (size_t)n * ldacc + m + (r0), (size_t)ldacc)

/* Columns [n, n + C) against the group's R rows (8, 4 or 1): at most 4 C accumulators, so
 * 8 rows go as one tile of 8 x 1 (eight independent chains for a single column) or two of
 * 4 x C. */
#define LL_S8_COLUMNS(R, C)                                                                 \
    do {                                                                                    \
        if ((R) == 8 && (C) > 1) {                                                          \
            LL_S8_TILE_AT(4, (C), 0);                                                       \
            LL_S8_TILE_AT(4, (C), 4);                                                       \
        } else {                                                                            \
            LL_S8_TILE_AT((R), (C), 0);                                                     \
        }                                                                                   \
        n += (C);                                                                           \
    } while (0)

/* A group of R rows at m against every column of the block [n0, n1). */
#define LL_S8_ROWS(R)                                                                       \
    do {                                                                                    \
        const int8_t *restrict w_rows = W + (size_t)m * ld;                                 \
        uint32_t offset[8] = {0, 0, 0, 0, 0, 0, 0, 0};                                      \
        LL_S8_ROW_OFFSETS((R), offset);                                                     \
        int n = n0;                                                                         \
        while (n < n1) {                                                                    \
            const int left = n1 - n;                                                        \
            if (LL_S8_COLS >= 4 && left >= 4)                                               \
                LL_S8_COLUMNS((R), (LL_S8_COLS >= 4 ? 4 : 1));                              \
            else if (left >= 2)                                                             \
                LL_S8_COLUMNS((R), 2);                                                      \
            else                                                                            \
                LL_S8_COLUMNS((R), 1);                                                      \
        }                                                                                   \
    } while (0)

#if defined(LL_S8_X_OFFSET)
/* OFFSET * W_sums[m], in unsigned arithmetic and subtracted so: the lanes' int32 sums may
 * have wrapped on the way (they reach 255 * 127 K), the difference is the exact product */
#define LL_S8_ROW_OFFSETS(R, offset)                                                        \
    for (int r_ = 0; r_ < (R); r_++)                                                        \
    (offset)[r_] = (uint32_t)LL_S8_X_OFFSET * (uint32_t)W_sums[m + r_]
#else
#define LL_S8_ROW_OFFSETS(R, offset) ((void)0)
#endif

/* One column, a single stream's step (the common case), in a function of its own: only the
 * tiles of one column are instantiated here, so the compiler keeps each tile's pointers in
 * registers. Inside the function of every tile shape it spilled them, and at K = 40 a tile of
 * 8 rows cost about 180 instructions around a loop of 37 (neon, qemu's count). */
static __attribute__((noinline)) void
LL_S8_CAT(LL_S8_NAME, column)(int M, int K, const int8_t *restrict W,
                              const int32_t *restrict W_sums, const int8_t *restrict x,
                              int32_t *restrict acc)
{
    const size_t ld = (size_t)K;
    (void)W_sums;
    int m = 0;
    for (; m + 8 <= M; m += 8) {
        uint32_t offset[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        LL_S8_ROW_OFFSETS(8, offset);
        LL_S8_TILE(8, 1, K, W + (size_t)m * ld, ld, x, 0, offset, acc + m, 0);
    }
    for (; m + 4 <= M; m += 4) {
        uint32_t offset[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        LL_S8_ROW_OFFSETS(4, offset);
        LL_S8_TILE(4, 1, K, W + (size_t)m * ld, ld, x, 0, offset, acc + m, 0);
    }
    for (; m < M; m++) {
        uint32_t offset[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        LL_S8_ROW_OFFSETS(1, offset);
        LL_S8_TILE(1, 1, K, W + (size_t)m * ld, ld, x, 0, offset, acc + m, 0);
    }
}

static void LL_S8_NAME(int M, int N, int K, const int8_t *restrict W,
                       const int32_t *restrict W_sums, const int8_t *restrict X, int ldx,
                       int32_t *restrict acc, int ldacc)
{
    const size_t ld = (size_t)K, xld = (size_t)ldx;
    (void)W_sums;
    if (N == 1) {
        LL_S8_CAT(LL_S8_NAME, column)(M, K, W, W_sums, X, acc);
        return;
    }
    for (int n0 = 0; n0 < N; n0 += LL_S8_COL_BLOCK) {
        const int n1 = N - n0 > LL_S8_COL_BLOCK ? n0 + LL_S8_COL_BLOCK : N;
        int m = 0;
        for (; m + 8 <= M; m += 8)
            LL_S8_ROWS(8);
        for (; m + 4 <= M; m += 4)
            LL_S8_ROWS(4);
        for (; m < M; m++)
            LL_S8_ROWS(1);
    }
}

#undef LL_S8_TILE_AT
#undef LL_S8_COLUMNS
#undef LL_S8_ROWS
#undef LL_S8_ROW_OFFSETS
#undef LL_S8_PADDED
#undef LL_S8_TAIL_SLICE
#undef LL_S8_TILE
#undef LL_S8_CAT
#undef LL_S8_CAT2
#undef LL_S8_COL_BLOCK
#undef LL_S8_NAME
#undef LL_S8_ACC
#undef LL_S8_XOP
#undef LL_S8_WOP
#undef LL_S8_WIDTH
#undef LL_S8_COLS
#undef LL_S8_ZERO
#undef LL_S8_LOADX
#undef LL_S8_LOADW
#undef LL_S8_DOT
#undef LL_S8_HSUM4
#undef LL_S8_LOADX_TAIL
#undef LL_S8_LOADW_TAIL
#undef LL_S8_X_OFFSET
#undef LL_S8_AND
#undef LL_S8_XOP_HALF
#undef LL_S8_WOP_HALF
#undef LL_S8_LOADX_HALF
#undef LL_S8_LOADW_HALF
#undef LL_S8_DOT_HALF
