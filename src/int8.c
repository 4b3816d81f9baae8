/* The pieces every kernel set shares around its products: per-step quantization of a vector
 * and the float side of an int8 product (compiled here once per x86 vector width, with this
 * file's rounding), the product of a layer's matrix in its dtype (ll_matrix_acc), the int8
 * working memory, VNNI panels, and the portable int8 product (the reference the SIMD sets
 * are compared with bit for bit).
 *
 * This file is compiled once, for the baseline of the target, and without fused
 * multiply-add: ll_quantize_s8 rounds x * inv to float first and then to an integer, which is
 * what NumPy's np.rint(x * inv) does in float32, so the tests reproduce every q exactly. An
 * FMA would round once (fma(x, inv, magic)) and change q at rare ties. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include <float.h>
#include <math.h>
#include <string.h>

#include "kernels.h"

#define LL_ROUND_TO_INT 12582912.0f /* 1.5 * 2^23: (v + it) - it rounds |v| < 2^22 to an
                                       integer, half to even, in the default rounding mode */

/* The quantizer and the float side of an int8 product are written once, as loops over
 * elements, and compiled for each x86 vector width (the wrappers below), all with this file's
 * rounding: the same bits on every set, the bits NumPy gets. */

/* v clamped to +-127, v finite (NaN and inf never reach it). On aarch64 fminnm/fmaxnm, one
 * instruction each: GCC 12 vectorizes a comparison clamp there into about 7 (it tests for
 * NaN), which made the clamps most of the quantizer; elsewhere the comparisons, which x86
 * does in one minps/maxps each. The same value either way. */
static inline float clamp_127(float v)
{
#if defined(__aarch64__)
    return __builtin_fmaxf(__builtin_fminf(v, 127.0f), -127.0f);
#else
    v = v > 127.0f ? 127.0f : v;
    return v < -127.0f ? -127.0f : v;
#endif
}

static inline __attribute__((always_inline)) float
quantize_s8_body(const float *restrict x, int n, int8_t *restrict q)
{
    /* The largest |x| as the largest of the bit patterns with the sign cleared: for floats of
     * one sign the patterns order as the numbers do, +inf above every finite one and every
     * NaN above +inf. So one integer maximum, which any vector unit computes lane by lane in
     * any order, gives the peak and tells whether a NaN or an infinity is present. */
    uint32_t peak_bits = 0;
    for (int i = 0; i < n; i++) {
        uint32_t bits;
        memcpy(&bits, x + i, sizeof bits);
        bits &= 0x7fffffffu;
        peak_bits = bits > peak_bits ? bits : peak_bits;
    }
    if (peak_bits >= 0x7f800000u) { /* inf or NaN */
        memset(q, 0, (size_t)n);
        return NAN;
    }
    float peak;
    memcpy(&peak, &peak_bits, sizeof peak);
    const float inv = 127.0f / peak;
    if (peak == 0.0f || !(inv <= FLT_MAX)) {
        /* zero, or a peak below 127 / FLT_MAX (about 4e-37): the vector contributes nothing
         * a float32 gate could see */
        memset(q, 0, (size_t)n);
        return 0.0f;
    }
    /* v = x * inv rounded to float, then to an integer (half to even), then clamped to
     * +-127: written per element, vectorized by the compiler at the target's width, the
     * same operations in every lane and on every set */
    for (int i = 0; i < n; i++) {
        float v = x[i] * inv; /* |v| <= 127 up to one rounding */
        v = clamp_127((v + LL_ROUND_TO_INT) - LL_ROUND_TO_INT);
        q[i] = (int8_t)(int32_t)v;
    }
    return peak / 127.0f;
}

/* y[m] += s[m] * (sx * acc[m]) for m < M: the float side of an int8 product, in this order on
 * every path (the multiplies apart from the add: no fused multiply-add in this file) */
static inline __attribute__((always_inline)) void
scale_acc_s8_body(int M, const int32_t *restrict acc, const float *restrict s, float sx,
                  float *restrict y)
{
    for (int m = 0; m < M; m++)
        y[m] += s[m] * (sx * (float)acc[m]);
}

float ll_quantize_s8_baseline(const float *restrict x, int n, int8_t *restrict q)
{
    return quantize_s8_body(x, n, q);
}

void ll_scale_acc_s8_baseline(int M, const int32_t *restrict acc, const float *restrict s,
                              float sx, float *restrict y)
{
    scale_acc_s8_body(M, acc, s, sx, y);
}

#if defined(__x86_64__) || defined(_M_X64)
/* the same bodies 8 and 16 wide, for the avx2/avxvnni and avx512/avx512vnni sets: only the
 * vector width differs, never an operation (fp-contract is off in this file). AVX-512F
 * alone, what the avx512 set requires (dispatch.c): no BW or VL instruction may appear. */
__attribute__((target("avx2"))) float ll_quantize_s8_avx2(const float *restrict x, int n,
                                                          int8_t *restrict q)
{
    return quantize_s8_body(x, n, q);
}

__attribute__((target("avx2"))) void ll_scale_acc_s8_avx2(int M, const int32_t *restrict acc,
                                                          const float *restrict s, float sx,
                                                          float *restrict y)
{
    scale_acc_s8_body(M, acc, s, sx, y);
}

__attribute__((target("avx512f"))) float
ll_quantize_s8_avx512(const float *restrict x, int n, int8_t *restrict q)
{
    return quantize_s8_body(x, n, q);
}

__attribute__((target("avx512f"))) void
ll_scale_acc_s8_avx512(int M, const int32_t *restrict acc, const float *restrict s, float sx,
                       float *restrict y)
{
    scale_acc_s8_body(M, acc, s, sx, y);
}
#endif

void ll_s8_column_rows(const int32_t *restrict sums, int rows, int add, int last,
                       uint32_t corr, int32_t *restrict acc, const float *restrict s,
                       float sx, float *restrict y)
{
    for (int r = 0; r < rows; r++) {
        uint32_t sum = (uint32_t)sums[r];
        if (add)
            sum += (uint32_t)acc[r];
        if (!last)
            acc[r] = (int32_t)sum;
        else
            y[r] += s[r] * (sx * (float)(int32_t)(sum - corr));
    }
}

float ll_quantize_s8(const float *restrict x, int n, int8_t *restrict q)
{
    return ll_active_kernels->quantize_s8(x, n, q);
}

void ll_row_sums_s8(int M, int K, const int8_t *restrict W, int32_t *restrict sums)
{
    for (int m = 0; m < M; m++) {
        int32_t s = 0;
        for (int k = 0; k < K; k++)
            s += W[(size_t)m * K + k];
        sums[m] = s;
    }
}

void ll_gemm_s8_portable(int M, int N, int K, const int8_t *restrict W,
                         const int32_t *restrict W_sums, const int8_t *restrict X, int ldx,
                         int32_t *restrict acc, int ldacc)
{
    /* Blocks of 16 rows (16 K bytes, in L1) meet every column in turn, so the weights come
     * from memory once per call, not once per column. Within a block, a chunk of the column
     * is widened to int16 once and four rows at a time are multiplied with it, each weight
     * widened to int16 and every product summed in int32: the pattern compilers turn into the
     * target's widening multiply-add (pmaddwd on SSE2, smlal on NEON), four rows sharing each
     * load of the column. (A sum of int8 products alone became a reduction per row that
     * widened both operands to int32, at about half the speed on SSE2.) */
    enum { BLOCK_ROWS = 16, CHUNK = 256 };
    int16_t x16[CHUNK];
    (void)W_sums;
    for (int m0 = 0; m0 < M; m0 += BLOCK_ROWS) {
        const int m1 = M - m0 < BLOCK_ROWS ? M : m0 + BLOCK_ROWS;
        for (int n = 0; n < N; n++) {
            const int8_t *restrict x = X + (size_t)n * ldx;
            int32_t *restrict out = acc + (size_t)n * ldacc;
            for (int m = m0; m < m1; m++)
                out[m] = 0;
            for (int k0 = 0; k0 < K; k0 += CHUNK) {
                const int count = K - k0 < CHUNK ? K - k0 : CHUNK;
                for (int k = 0; k < count; k++)
                    x16[k] = x[k0 + k];
                int m = m0;
                for (; m + 4 <= m1; m += 4) {
                    const int8_t *restrict w0 = W + (size_t)m * K + k0;
                    const int8_t *restrict w1 = w0 + K, *restrict w2 = w1 + K;
                    const int8_t *restrict w3 = w2 + K;
                    int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
                    for (int k = 0; k < count; k++) {
                        const int32_t v = x16[k];
                        s0 += (int16_t)w0[k] * v;
                        s1 += (int16_t)w1[k] * v;
                        s2 += (int16_t)w2[k] * v;
                        s3 += (int16_t)w3[k] * v;
                    }
                    out[m] += s0;
                    out[m + 1] += s1;
                    out[m + 2] += s2;
                    out[m + 3] += s3;
                }
                for (; m < m1; m++) {
                    const int8_t *restrict w = W + (size_t)m * K + k0;
                    int32_t sum = 0;
                    for (int k = 0; k < count; k++)
                        sum += (int16_t)w[k] * (int32_t)x16[k];
                    out[m] += sum;
                }
            }
        }
    }
}

void ll_pack_s8_panels(int M, int K, const int8_t *restrict W, uint8_t *restrict panels)
{
    const size_t groups = (size_t)(K + 3) / 4;
    memset(panels, 0, ll_s8_panels_bytes(M, K));
    for (int m = 0; m < M; m++) {
        uint8_t *restrict panel = panels + (size_t)(m / LL_S8_PANEL_ROWS) * 64 * groups;
        const int r = m % LL_S8_PANEL_ROWS;
        for (int k = 0; k < K; k++)
            panel[(size_t)(k / 4) * 64 + 4 * r + k % 4] =
                (uint8_t)(W[(size_t)m * K + k] + LL_S8_PANEL_OFFSET);
    }
}

void ll_s8_product(ll_matrix A, int M, int N, int K, const int8_t *X, int ldx, int32_t *acc,
                   int ldacc)
{
    if (A.panels && ll_active_kernels->gemm_s8_panels)
        ll_active_kernels->gemm_s8_panels(M, N, K, A.panels, X, ldx, acc, ldacc);
    else
        ll_active_kernels->gemm_s8(M, N, K, A.q, A.sums, X, ldx, acc, ldacc);
}

void ll_int8_work_take(size_t *next, const ll_layer *L, int N, int K, int M,
                       size_t offsets[3])
{
    if (L->weight_dtype != LL_DTYPE_INT8) {
        offsets[0] = offsets[1] = offsets[2] = 0;
        return;
    }
    offsets[0] = ll_scratch_take(next, (size_t)N * (size_t)K);
    offsets[1] = ll_scratch_take(next, (size_t)N * sizeof(float));
    offsets[2] = ll_scratch_take(next, (size_t)N * (size_t)M * sizeof(int32_t));
}

ll_int8_work ll_int8_work_at(const ll_layer *L, void *scratch, const size_t offsets[3])
{
    if (L->weight_dtype != LL_DTYPE_INT8) {
        const ll_int8_work none = {NULL, NULL, NULL};
        return none;
    }
    ll_int8_work work = {LL_SCRATCH_AT(scratch, offsets[0], int8_t),
                         LL_SCRATCH_AT(scratch, offsets[1], float),
                         LL_SCRATCH_AT(scratch, offsets[2], int32_t)};
    return work;
}

size_t ll_int8_work_bytes(const ll_layer *L, int N, int K, int M)
{
    size_t next = 0, offsets[3];
    ll_int8_work_take(&next, L, N, K, M, offsets);
    return next;
}

ll_int8_work ll_int8_work_alone(const ll_layer *L, void *scratch, int N, int K, int M)
{
    size_t next = 0, offsets[3];
    ll_int8_work_take(&next, L, N, K, M, offsets);
    return ll_int8_work_at(L, scratch, offsets);
}

/* Y[n, m] += A[m,:] . X[n*ldx + :] for the rows of A in up to two parts: [0, row0) and
 * [row0, M), the second at ll_matrix_rows(A, row0, K) (row0 = M: one part). int8: the columns
 * are quantized once for both parts, whose sums land in one acc, and the float side is one
 * pass over the M rows. */
static void matrix_acc_parts(ll_matrix A, int row0, int M, int N, int K, const float *X,
                             int ldx, float *Y, int ldy, ll_int8_work work)
{
    const ll_kernel_table *kernels = ll_active_kernels;
    if (A.q == NULL) {
        kernels->gemm_acc(row0, N, K, A.w, X, ldx, Y, ldy);
        if (M > row0)
            kernels->gemm_acc(M - row0, N, K, ll_matrix_rows(A, row0, K).w, X, ldx, Y + row0,
                              ldy);
        return;
    }
    for (int n = 0; n < N; n++)
        work.sx[n] = kernels->quantize_s8(X + (size_t)n * ldx, K, work.qx + (size_t)n * K);
    if (N == 1 && row0 == M && A.panels && kernels->gemm_s8_panels_scaled) {
        kernels->gemm_s8_panels_scaled(M, K, A.panels, work.qx, work.acc, A.s, work.sx[0], Y);
        return;
    }
    ll_s8_product(A, row0, N, K, work.qx, K, work.acc, M);
    if (M > row0)
        ll_s8_product(ll_matrix_rows(A, row0, K), M - row0, N, K, work.qx, K,
                      work.acc + row0, M);
    for (int n = 0; n < N; n++)
        kernels->scale_acc_s8(M, work.acc + (size_t)n * M, A.s, work.sx[n],
                              Y + (size_t)n * ldy);
}

void ll_matrix_acc(ll_matrix A, int M, int N, int K, const float *X, int ldx, float *Y,
                   int ldy, ll_int8_work work)
{
    matrix_acc_parts(A, M, M, N, K, X, ldx, Y, ldy, work);
}

void ll_matrix_acc_two_parts(ll_matrix A, int row0, int M, int N, int K, const float *X,
                             int ldx, float *Y, int ldy, ll_int8_work work)
{
    matrix_acc_parts(A, row0, M, N, K, X, ldx, Y, ldy, work);
}

const char *ll_dtype_name(int dtype)
{
    switch (dtype) {
    case LL_DTYPE_FLOAT32:
        return "float32";
    case LL_DTYPE_FLOAT16:
        return "float16";
    case LL_DTYPE_INT8:
        return "int8";
    default:
        return NULL;
    }
}
