/* The same kernel source as kernels_generic.c, compiled for AVX2 + FMA (Haswell, Zen and
 * later), plus an int8 product written with AVX2 intrinsics. Chosen at run time only when the
 * CPU reports both features (dispatch.c). */
#include "kernels.h"

#ifdef LL_HAVE_AVX2_KERNELS
#pragma GCC target("avx2,fma")
#include <immintrin.h>

/* acc[m] = W[m,:] . x in int32, 32 products per step and four rows at a time (one load of x
 * feeds four rows).
 *
 * Without AVX-VNNI the only 8-bit multiply is vpmaddubsw, which multiplies unsigned by signed
 * bytes and adds adjacent pairs into int16 *with saturation*: fed uint8 activations up to 255
 * it can saturate (255 * 127 * 2 > 32767), the error onnxruntime's default int8 LSTM shows
 * on such CPUs. Here both operands are symmetric int8 in -127..127: the unsigned operand is
 * |x| (vpsignb x, x) and the sign moves onto the weight (vpsignb w, x), so every pair sum is
 * at most 2 * 127 * 127 = 32258 < 32767 and nothing saturates. vpmaddwd by ones then widens
 * the pairs into int32 exactly. The -127..127 range of the weights is checked on load (-128
 * would not survive vpsignb's negation); the activations come from ll_quantize_s8. */
static inline int32_t hsum_epi32(__m256i v)
{
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm_cvtsi128_si32(s);
}

static inline __m256i dot32(__m256i abs_x, __m256i sign_x, const int8_t *w, __m256i ones)
{
    const __m256i wv = _mm256_loadu_si256((const __m256i *)w);
    const __m256i pairs = _mm256_maddubs_epi16(abs_x, _mm256_sign_epi8(wv, sign_x));
    return _mm256_madd_epi16(pairs, ones);
}

static void gemv_s8_avx2(int M, int K, const int8_t *restrict W, const int8_t *restrict x,
                         int32_t *restrict acc)
{
    const size_t ld = (size_t)K;
    const __m256i ones = _mm256_set1_epi16(1);
    int m = 0;
    for (; m + 4 <= M; m += 4) {
        const int8_t *w0 = W + (size_t)m * ld, *w1 = w0 + ld, *w2 = w1 + ld, *w3 = w2 + ld;
        __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
        int k = 0;
        for (; k + 32 <= K; k += 32) {
            const __m256i xv = _mm256_loadu_si256((const __m256i *)(x + k));
            const __m256i ax = _mm256_sign_epi8(xv, xv);
            a0 = _mm256_add_epi32(a0, dot32(ax, xv, w0 + k, ones));
            a1 = _mm256_add_epi32(a1, dot32(ax, xv, w1 + k, ones));
            a2 = _mm256_add_epi32(a2, dot32(ax, xv, w2 + k, ones));
            a3 = _mm256_add_epi32(a3, dot32(ax, xv, w3 + k, ones));
        }
        int32_t s0 = hsum_epi32(a0), s1 = hsum_epi32(a1), s2 = hsum_epi32(a2),
                s3 = hsum_epi32(a3);
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
        __m256i a0 = _mm256_setzero_si256();
        int k = 0;
        for (; k + 32 <= K; k += 32) {
            const __m256i xv = _mm256_loadu_si256((const __m256i *)(x + k));
            a0 = _mm256_add_epi32(a0, dot32(_mm256_sign_epi8(xv, xv), xv, w0 + k, ones));
        }
        int32_t s0 = hsum_epi32(a0);
        for (; k < K; k++)
            s0 += w0[k] * (int32_t)x[k];
        acc[m] = s0;
    }
}

#define LL_GEMV_S8 gemv_s8_avx2
#define LL_KERNEL_SUFFIX avx2
#include "kernels_impl.h"
#endif
