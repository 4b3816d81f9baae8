/* The same kernel source as kernels_generic.c, compiled for AVX2 + FMA (Haswell, Zen and
 * later), plus an int8 product written with AVX2 intrinsics. Chosen at run time only when the
 * CPU reports both features (dispatch.c). */
#include "kernels.h"

#ifdef LL_HAVE_AVX2_KERNELS
#pragma GCC target("avx2,fma")
#include <immintrin.h>

/* acc[m] = W[m,:] . x in int32, 32 products per step, four rows at a time (gemv_s8_rows.h;
 * one load of x feeds four rows).
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

/* |x| (the unsigned operand) and x (whose sign moves onto the weight) */
typedef struct {
    __m256i abs, sign;
} x32_operand;

static inline x32_operand load_x32(const int8_t *p)
{
    const __m256i xv = _mm256_loadu_si256((const __m256i *)p);
    return (x32_operand){_mm256_sign_epi8(xv, xv), xv};
}

static inline __m256i dot32(__m256i acc, const int8_t *w, x32_operand x)
{
    const __m256i wv = _mm256_loadu_si256((const __m256i *)w);
    const __m256i pairs = _mm256_maddubs_epi16(x.abs, _mm256_sign_epi8(wv, x.sign));
    return _mm256_add_epi32(acc, _mm256_madd_epi16(pairs, _mm256_set1_epi16(1)));
}

#define LL_S8_NAME gemv_s8_avx2_rows
#define LL_S8_ACC __m256i
#define LL_S8_XOP x32_operand
#define LL_S8_WIDTH 32
#define LL_S8_ZERO() _mm256_setzero_si256()
#define LL_S8_LOADX(p) load_x32(p)
#define LL_S8_DOT(a, w, x) dot32(a, w, x)
#define LL_S8_HSUM(a) hsum_epi32(a)
#include "gemv_s8_rows.h"

/* exported for the AVX-512 set, which shares this int8 product */
void ll_gemv_s8_avx2(int M, int K, const int8_t *W, const int8_t *x, int32_t *acc)
{
    gemv_s8_avx2_rows(M, K, W, x, acc);
}

#define LL_GEMV_S8 ll_gemv_s8_avx2
#define LL_GEMM_WIDTH 8
#define LL_GEMM_COLS 4 /* 8 sums of the 16 ymm registers */
/* an empty asm that claims to change w: GCC must keep it in one register rather than fold
 * its load into every multiply-add (gemm_f32_panels.h) */
#define LL_GEMM_IN_REGISTER(w) __asm__("" : "+v"(w))
#define LL_KERNEL_SUFFIX avx2
#include "kernels_impl.h"
#endif
