/* The pieces every kernel set shares around its products: per-step quantization of a vector,
 * the product of a layer's matrix in its dtype (ll_matrix_acc: the float side of an int8
 * product, or the float product), the int8 working memory, and the portable int8 product
 * (the reference the SIMD sets are compared with bit for bit).
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

float ll_quantize_s8(const float *restrict x, int n, int8_t *restrict q)
{
    float peak = 0.0f;
    int non_finite = 0;
    for (int i = 0; i < n; i++) {
        const float a = fabsf(x[i]);
        non_finite |= !(a <= FLT_MAX); /* NaN compares false, so this catches it too */
        peak = a > peak ? a : peak;
    }
    if (non_finite) {
        memset(q, 0, (size_t)n);
        return NAN;
    }
    const float inv = 127.0f / peak;
    if (peak == 0.0f || !(inv <= FLT_MAX)) {
        /* zero, or a peak below 127 / FLT_MAX (about 4e-37): the vector contributes nothing
         * a float32 gate could see */
        memset(q, 0, (size_t)n);
        return 0.0f;
    }
    for (int i = 0; i < n; i++) {
        float v = x[i] * inv; /* |v| <= 127 up to one rounding */
        v = (v + LL_ROUND_TO_INT) - LL_ROUND_TO_INT;
        v = v > 127.0f ? 127.0f : v;
        v = v < -127.0f ? -127.0f : v;
        q[i] = (int8_t)(int32_t)v;
    }
    return peak / 127.0f;
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
    /* blocks of 16 rows (16 K bytes, in L1) meet every column in turn, so the weights come
     * from memory once per call, not once per column */
    enum { BLOCK_ROWS = 16 };
    (void)W_sums;
    for (int m0 = 0; m0 < M; m0 += BLOCK_ROWS) {
        const int m1 = M - m0 < BLOCK_ROWS ? M : m0 + BLOCK_ROWS;
        for (int n = 0; n < N; n++) {
            const int8_t *restrict x = X + (size_t)n * ldx;
            for (int m = m0; m < m1; m++) {
                const int8_t *restrict w = W + (size_t)m * K;
                int32_t s = 0;
                for (int k = 0; k < K; k++)
                    s += (int32_t)w[k] * (int32_t)x[k];
                acc[(size_t)n * ldacc + m] = s;
            }
        }
    }
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

void ll_matrix_acc(ll_matrix A, int M, int N, int K, const float *X, int ldx, float *Y,
                   int ldy, ll_int8_work work)
{
    if (A.q == NULL) {
        ll_active_kernels->gemm_acc(M, N, K, A.w, X, ldx, Y, ldy);
        return;
    }
    for (int n = 0; n < N; n++)
        work.sx[n] = ll_quantize_s8(X + (size_t)n * ldx, K, work.qx + (size_t)n * K);
    ll_active_kernels->gemm_s8(M, N, K, A.q, A.sums, work.qx, K, work.acc, M);
    /* Y[n, m] += s[m] * (sx[n] * acc[n, m]): the float side, in this order on every path */
    for (int n = 0; n < N; n++) {
        const int32_t *restrict acc = work.acc + (size_t)n * M;
        const float *restrict s = A.s;
        const float sx = work.sx[n];
        float *restrict y = Y + (size_t)n * ldy;
        for (int m = 0; m < M; m++)
            y[m] += s[m] * (sx * (float)acc[m]);
    }
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
