/* The portable kernel source compiled for AVX-512 (x86-64 servers and desktops since Skylake-X
 * and Zen 4): the float product's vectors are 16 wide, so a batch of streams or the steps
 * of a sequence, whose product is bound by arithmetic rather than by reading the weights, run
 * up to twice as fast as with AVX2. Chosen at run time only when the CPU and the OS support
 * AVX-512F (dispatch.c). Two sets share that float side:
 *   avx512      the int8 product is the AVX2 set's (kernels_avx2.c)
 *   avx512vnni  when the CPU also has AVX-512BW and VNNI (Cascade Lake, Ice Lake, Zen 4 and
 *               later): an int8 product on vpdpbusd, 64 products into 16 int32 lanes in one
 *               instruction, without vpmaddubsw's int16 intermediate or its saturation */
#include "kernels.h"

#ifdef LL_HAVE_AVX512_KERNELS
#pragma GCC target("avx512f,avx2,fma")

#define LL_GEMM_S8 ll_gemm_s8_avx2
#define LL_GEMM_S8_PANELS_SCALED ll_gemm_s8_panels_scaled_avx2
#define LL_GEMM_WIDTH 16
#define LL_GEMM_COLS 8 /* 8 sums (and 8 broadcasts) of the 32 zmm registers */
/* an empty asm that claims to change w: GCC must keep it in one register rather than fold
 * its load into every multiply-add (gemm_f32_panels.h) */
#define LL_GEMM_IN_REGISTER(w) __asm__("" : "+v"(w))
#define LL_KERNEL_SUFFIX avx512
#define LL_QUANTIZE_WIDTH avx512
#include "kernels_impl.h"

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vnni")
#include <immintrin.h>

/* The int8 product on vpdpbusd, in tiles of 4 rows x 4 columns (gemm_s8_tiles.h; 16
 * accumulators, 4 column slices and a weight slice of the 32 zmm registers).
 *
 * vpdpbusd multiplies unsigned bytes by signed ones, four pairs into an int32 lane, without
 * saturation. The column's bytes are made unsigned by flipping their top bit, which is adding
 * 128: the sums are then W[m,:] . x + 128 W_sums[m], and 128 W_sums[m] (the row sums made
 * once, when the model was built) is subtracted, exactly, modulo 2^32 like the lanes. A K
 * that is not a multiple of 64 ends with masked loads (zeros beyond K, nothing read past the
 * row), never scalar code, so K = 40 or 64 costs one slice per row. */
static inline __m512i flip_top_bit(__m512i x)
{
    return _mm512_xor_si512(x, _mm512_set1_epi8((char)0x80));
}

static inline __mmask64 first_bytes(int n) /* n < 64 */
{
    return (__mmask64)((1ULL << n) - 1);
}

/* out[r] = the sum of a[r]'s sixteen lanes, the four reduced together */
static inline void hsum4_epi32_512(const __m512i a[4], int32_t out[4])
{
    const __m512i t01 = _mm512_add_epi32(_mm512_unpacklo_epi32(a[0], a[1]),
                                         _mm512_unpackhi_epi32(a[0], a[1]));
    const __m512i t23 = _mm512_add_epi32(_mm512_unpacklo_epi32(a[2], a[3]),
                                         _mm512_unpackhi_epi32(a[2], a[3]));
    const __m512i rows = _mm512_add_epi32(_mm512_unpacklo_epi64(t01, t23),
                                          _mm512_unpackhi_epi64(t01, t23));
    const __m256i half = _mm256_add_epi32(_mm512_castsi512_si256(rows),
                                          _mm512_extracti64x4_epi64(rows, 1));
    const __m128i s = _mm_add_epi32(_mm256_castsi256_si128(half),
                                    _mm256_extracti128_si256(half, 1));
    _mm_storeu_si128((__m128i *)out, s);
}

#define LL_S8_NAME gemm_s8_avx512vnni
#define LL_S8_ACC __m512i
#define LL_S8_XOP __m512i
#define LL_S8_WOP __m512i
#define LL_S8_WIDTH 64
#define LL_S8_COLS 4
#define LL_S8_ZERO() _mm512_setzero_si512()
#define LL_S8_LOADX(p) flip_top_bit(_mm512_loadu_si512(p))
#define LL_S8_LOADW(p) _mm512_loadu_si512(p)
#define LL_S8_LOADX_TAIL(p, n) flip_top_bit(_mm512_maskz_loadu_epi8(first_bytes(n), p))
#define LL_S8_LOADW_TAIL(p, n) _mm512_maskz_loadu_epi8(first_bytes(n), p)
#define LL_S8_DOT(a, w, x) _mm512_dpbusd_epi32(a, x, w)
#define LL_S8_HSUM4(a, out) hsum4_epi32_512(a, out)
#define LL_S8_X_OFFSET 128
#include "gemm_s8_tiles.h"

/* p[r] = a's lane r - corr for r < rows, by a masked store past the rows of W */
static inline void store_rows_512(int32_t *p, __m512i a, uint32_t corr, int rows)
{
    const __m512i v = _mm512_sub_epi32(a, _mm512_set1_epi32((int32_t)corr));
    if (rows == 16)
        _mm512_storeu_si512(p, v);
    else
        _mm512_mask_storeu_epi32(p, (__mmask16)((1u << rows) - 1), v);
}

/* The int8 product on VNNI panels (gemm_s8_panels.h): one zmm is a group of a panel, 16 rows'
 * four next weights, and a column's four next values are broadcast from memory */
#define LL_S8P_NAME gemm_s8_panels_avx512vnni
#define LL_S8P_VEC __m512i
#define LL_S8P_TILE_VECS 16
#define LL_S8P_ZERO() _mm512_setzero_si512()
#define LL_S8P_LOAD(p) _mm512_loadu_si512(p)
#define LL_S8P_BROADCAST(v) _mm512_set1_epi32(v)
#define LL_S8P_DOT(a, w, x) _mm512_dpbusd_epi32(a, w, x)
#define LL_S8P_STORE(p, a, corr, rows) store_rows_512(p, a, corr, rows)
#include "gemm_s8_panels.h"

#pragma GCC pop_options

const ll_kernel_table ll_kernels_avx512vnni = {
    .name = "avx512vnni",
    .gemm_acc = ll_gemm_acc_avx512,
    .gemm_s8 = gemm_s8_avx512vnni,
    .sigmoid = ll_sigmoid_avx512,
    .tanh = ll_tanh_avx512,
    .exp = ll_exp_avx512,
    .gemm_s8_panels = gemm_s8_panels_avx512vnni,
    .quantize_s8 = ll_quantize_s8_avx512,
    .scale_acc_s8 = ll_scale_acc_s8_avx512,
};
#endif
