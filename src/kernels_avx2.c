/* The same kernel source as kernels_generic.c, compiled for AVX2 + FMA (Haswell, Zen and
 * later), plus an int8 product written with AVX2 intrinsics. Chosen at run time only when the
 * CPU reports both features (dispatch.c). Two sets share that float side:
 *   avx2     the int8 product on vpmaddubsw
 *   avxvnni  when the CPU also has AVX-VNNI (Alder Lake and later, including the N100 class
 *            of small x86 boxes, Zen 4): the int8 product on the 256-bit vpdpbusd */
#include "kernels.h"

#ifdef LL_HAVE_AVX2_KERNELS
#pragma GCC target("avx2,fma")
#include <immintrin.h>

/* The int8 product in int32, 32 products per slice, in tiles of 4 rows x 2 columns
 * (gemm_s8_tiles.h: each weight load feeds two columns, each prepared slice of a column
 * four rows; 8 accumulators, 4 column operands and the weights fit the 16 ymm registers).
 *
 * Without AVX-VNNI the only 8-bit multiply is vpmaddubsw, which multiplies unsigned by signed
 * bytes and adds adjacent pairs into int16 *with saturation*: fed uint8 activations up to 255
 * it can saturate (255 * 127 * 2 > 32767), the error onnxruntime's default int8 LSTM shows
 * on such CPUs. Here both operands are symmetric int8 in -127..127: the unsigned operand is
 * |x| (vpsignb x, x) and the sign moves onto the weight (vpsignb w, x), so every pair sum is
 * at most 2 * 127 * 127 = 32258 < 32767 and nothing saturates. vpmaddwd by ones then widens
 * the pairs into int32 exactly. The -127..127 range of the weights is checked on load (-128
 * would not survive vpsignb's negation); the activations come from ll_quantize_s8. */

/* out[r] = the sum of a[r]'s eight lanes: the four vectors reduced together, pairs of
 * rows interleaved, instead of four separate reductions */
static inline void hsum4_epi32(const __m256i a[4], int32_t out[4])
{
    const __m256i t01 = _mm256_add_epi32(_mm256_unpacklo_epi32(a[0], a[1]),
                                         _mm256_unpackhi_epi32(a[0], a[1]));
    const __m256i t23 = _mm256_add_epi32(_mm256_unpacklo_epi32(a[2], a[3]),
                                         _mm256_unpackhi_epi32(a[2], a[3]));
    const __m256i rows = _mm256_add_epi32(_mm256_unpacklo_epi64(t01, t23),
                                          _mm256_unpackhi_epi64(t01, t23));
    const __m128i s = _mm_add_epi32(_mm256_castsi256_si128(rows),
                                    _mm256_extracti128_si256(rows, 1));
    _mm_storeu_si128((__m128i *)out, s);
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

static inline __m256i dot32(__m256i acc, __m256i w, x32_operand x)
{
    const __m256i pairs = _mm256_maddubs_epi16(x.abs, _mm256_sign_epi8(w, x.sign));
    return _mm256_add_epi32(acc, _mm256_madd_epi16(pairs, _mm256_set1_epi16(1)));
}

#define LL_S8_NAME gemm_s8_avx2_tiles
#define LL_S8_ACC __m256i
#define LL_S8_XOP x32_operand
#define LL_S8_WOP __m256i
#define LL_S8_WIDTH 32
#define LL_S8_COLS 2
#define LL_S8_ZERO() _mm256_setzero_si256()
#define LL_S8_LOADX(p) load_x32(p)
#define LL_S8_LOADW(p) _mm256_loadu_si256((const __m256i *)(p))
#define LL_S8_DOT(a, w, x) dot32(a, w, x)
#define LL_S8_HSUM4(a, out) hsum4_epi32(a, out)
#define LL_S8_AND(w, mask) _mm256_and_si256(w, mask)
#include "gemm_s8_tiles.h"

/* exported for the AVX-512 set without VNNI, which shares this int8 product */
void ll_gemm_s8_avx2(int M, int N, int K, const int8_t *W, const int32_t *W_sums,
                     const int8_t *X, int ldx, int32_t *acc, int ldacc)
{
    gemm_s8_avx2_tiles(M, N, K, W, W_sums, X, ldx, acc, ldacc);
}

/* A stream's int8 step (one column) on the VNNI panels, without VNNI: each 32 bytes of a
 * group are 8 rows' next four weights + 128 (kernels.h). vpmaddubsw would saturate on those
 * unsigned weights, so the products are vpmaddwd's, on int16: read as 16 int16 lanes, the
 * chunk's even bytes (masked: inputs 0 and 2 of each row) and its odd bytes (shifted down:
 * inputs 1 and 3) are the weights widened with no sign to extend, and vpmaddwd against the
 * column's inputs as int16 pairs (x0, x2) and (x1, x3), broadcast, gives each row's four
 * products in its own int32 lane, rows in order. So 32 products cost a load, a mask, a
 * shift, two vpmaddwd and two adds; no row is reduced across lanes, no slice is
 * partly past K (row-major tiles pad K = 40 to 64), and the float side y += s (sx sum) of
 * ll_matrix_acc follows in the same pass (scale_acc_s8's operations, kept unfused: the same
 * bits). Four panels (64 rows) share each broadcast; the offset comes back as 128 sum(x)
 * per row, modulo 2^32 like every sum here (gemm_s8_panels.h). */

/* P panels (1 to 4) at w, panel_bytes apart, against `count` groups of input pairs, their
 * sums (rows in lanes, 8 per register) into sums[2 p], sums[2 p + 1] */
static inline __attribute__((always_inline)) void
column_panels_avx2(const int P, const uint8_t *restrict w, size_t panel_bytes,
                   const int32_t *restrict evens, const int32_t *restrict odds, int count,
                   __m256i sums[8])
{
    const __m256i even_bytes = _mm256_set1_epi16(0x00ff);
    for (int r = 0; r < 2 * P; r++)
        sums[r] = _mm256_setzero_si256();
    for (int j = 0; j < count; j++, w += 64) {
        const __m256i xe = _mm256_set1_epi32(evens[j]), xo = _mm256_set1_epi32(odds[j]);
        for (int p = 0; p < P; p++) {
            for (int h = 0; h < 2; h++) {
                const __m256i c =
                    _mm256_loadu_si256((const __m256i *)(w + (size_t)p * panel_bytes + 32 * h));
                const __m256i e = _mm256_madd_epi16(_mm256_and_si256(c, even_bytes), xe);
                const __m256i o = _mm256_madd_epi16(_mm256_srli_epi16(c, 8), xo);
                sums[2 * p + h] = _mm256_add_epi32(sums[2 * p + h], _mm256_add_epi32(e, o));
            }
        }
    }
}

void ll_gemm_s8_panels_scaled_avx2(int M, int K, const uint8_t *restrict panels,
                                   const int8_t *restrict x, int32_t *restrict acc,
                                   const float *restrict s, float sx, float *restrict y)
{
    const int groups = (K + 3) / 4, panel_count = (M + 15) / 16;
    const size_t panel_bytes = (size_t)64 * (size_t)groups;
    const uint32_t corr = ll_s8_offset_term(x, K);
    int32_t evens[LL_S8_COLUMN_GROUPS], odds[LL_S8_COLUMN_GROUPS];
    for (int g0 = 0; g0 < groups; g0 += LL_S8_COLUMN_GROUPS) {
        const int count =
            groups - g0 < LL_S8_COLUMN_GROUPS ? groups - g0 : LL_S8_COLUMN_GROUPS;
        for (int j = 0; j < count; j++) {
            const int32_t bits = ll_s8_group_bits(x, K, 4 * (g0 + j));
            int8_t four[4];
            memcpy(four, &bits, 4);
            /* int16 pairs: (x0, x2) and (x1, x3), the low one first */
            evens[j] = (int32_t)(((uint32_t)(uint16_t)four[2] << 16) | (uint16_t)four[0]);
            odds[j] = (int32_t)(((uint32_t)(uint16_t)four[3] << 16) | (uint16_t)four[1]);
        }
        const int last = g0 + count == groups; /* the sums are whole after this part */
        for (int p0 = 0; p0 < panel_count; p0 += 4) {
            const int P = panel_count - p0 < 4 ? panel_count - p0 : 4;
            const uint8_t *restrict w = panels + (size_t)p0 * panel_bytes + (size_t)64 * g0;
            __m256i sums[8];
            if (P == 4)
                column_panels_avx2(4, w, panel_bytes, evens, odds, count, sums);
            else if (P == 3)
                column_panels_avx2(3, w, panel_bytes, evens, odds, count, sums);
            else if (P == 2)
                column_panels_avx2(2, w, panel_bytes, evens, odds, count, sums);
            else
                column_panels_avx2(1, w, panel_bytes, evens, odds, count, sums);
            const size_t row0 = 16 * (size_t)p0;
            const int rows = M - (int)row0 < 16 * P ? M - (int)row0 : 16 * P;
            if (last && g0 == 0 && rows == 16 * P) { /* whole panels at once */
                const __m256i offset = _mm256_set1_epi32((int32_t)corr);
                const __m256 scale_x = _mm256_set1_ps(sx);
                for (int r = 0; r < 2 * P; r++) {
                    const __m256i exact = _mm256_sub_epi32(sums[r], offset);
                    __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(exact), scale_x);
                    v = _mm256_mul_ps(_mm256_loadu_ps(s + row0 + 8 * r), v);
                    LL_UNFUSED(v);
                    _mm256_storeu_ps(y + row0 + 8 * r,
                                     _mm256_add_ps(_mm256_loadu_ps(y + row0 + 8 * r), v));
                }
                continue;
            }
            int32_t lanes[64];
            for (int r = 0; r < 2 * P; r++)
                _mm256_storeu_si256((__m256i *)(lanes + 8 * r), sums[r]);
            ll_s8_column_rows(lanes, rows, g0 > 0, last, corr, acc + row0, s + row0, sx,
                              y + row0);
        }
    }
}

#define LL_GEMM_S8 ll_gemm_s8_avx2
#define LL_GEMM_S8_PANELS_SCALED ll_gemm_s8_panels_scaled_avx2
#define LL_GEMM_WIDTH 8
#define LL_GEMM_COLS 4 /* 8 sums of the 16 ymm registers */
/* an empty asm that claims to change w: GCC must keep it in one register rather than fold
 * its load into every multiply-add (gemm_f32_panels.h) */
#define LL_GEMM_IN_REGISTER(w) __asm__("" : "+v"(w))
#define LL_KERNEL_SUFFIX avx2
#define LL_QUANTIZE_WIDTH avx2
#include "kernels_impl.h"

#pragma GCC push_options
#pragma GCC target("avx2,fma,avxvnni")

/* The int8 product on AVX-VNNI's vpdpbusd, in tiles of 4 rows x 2 columns: four unsigned-by-
 * signed products into each int32 lane in one instruction, no int16 step, no saturation.
 * x + 128 (its top bit flipped) is the unsigned operand and 128 W_sums[m] is subtracted, as in
 * the avx512vnni set (kernels_avx512.c). */
static inline __m256i flip_top_bit_256(__m256i x)
{
    return _mm256_xor_si256(x, _mm256_set1_epi8((char)0x80));
}

#define LL_S8_NAME gemm_s8_avxvnni
#define LL_S8_ACC __m256i
#define LL_S8_XOP __m256i
#define LL_S8_WOP __m256i
#define LL_S8_WIDTH 32
#define LL_S8_COLS 2
#define LL_S8_ZERO() _mm256_setzero_si256()
#define LL_S8_LOADX(p) flip_top_bit_256(_mm256_loadu_si256((const __m256i *)(p)))
#define LL_S8_LOADW(p) _mm256_loadu_si256((const __m256i *)(p))
#define LL_S8_DOT(a, w, x) _mm256_dpbusd_avx_epi32(a, x, w)
#define LL_S8_HSUM4(a, out) hsum4_epi32(a, out)
#define LL_S8_AND(w, mask) _mm256_and_si256(w, mask)
#define LL_S8_X_OFFSET 128
#include "gemm_s8_tiles.h"

/* A group of a VNNI panel in two ymm: rows 0-7 (its first 32 bytes) and rows 8-15. */
typedef struct {
    __m256i lo, hi;
} ll_s8p_pair;

static inline ll_s8p_pair s8p_pair(__m256i lo, __m256i hi)
{
    const ll_s8p_pair pair = {lo, hi};
    return pair;
}

static inline ll_s8p_pair s8p_load(const uint8_t *p)
{
    return s8p_pair(_mm256_loadu_si256((const __m256i *)p),
                    _mm256_loadu_si256((const __m256i *)(p + 32)));
}

static inline ll_s8p_pair s8p_dot(ll_s8p_pair a, ll_s8p_pair w, ll_s8p_pair x)
{
    return s8p_pair(_mm256_dpbusd_avx_epi32(a.lo, w.lo, x.lo),
                    _mm256_dpbusd_avx_epi32(a.hi, w.hi, x.hi));
}

/* p[r] = lane r - corr for r < rows: the rows past W's go through a copy */
static inline void s8p_store(int32_t *p, ll_s8p_pair a, uint32_t corr, int rows)
{
    const __m256i c = _mm256_set1_epi32((int32_t)corr);
    const __m256i lo = _mm256_sub_epi32(a.lo, c), hi = _mm256_sub_epi32(a.hi, c);
    if (rows == 16) {
        _mm256_storeu_si256((__m256i *)p, lo);
        _mm256_storeu_si256((__m256i *)(p + 8), hi);
        return;
    }
    int32_t all[16];
    _mm256_storeu_si256((__m256i *)all, lo);
    _mm256_storeu_si256((__m256i *)(all + 8), hi);
    memcpy(p, all, sizeof(int32_t) * (size_t)rows);
}

/* The int8 product on VNNI panels (gemm_s8_panels.h), a panel group as two ymm. The same
 * broadcast serves both halves: x is the same four values for every row. */
#define LL_S8P_NAME gemm_s8_panels_avxvnni
#define LL_S8P_VEC ll_s8p_pair
#define LL_S8P_TILE_VECS 4
#define LL_S8P_ZERO() s8p_pair(_mm256_setzero_si256(), _mm256_setzero_si256())
#define LL_S8P_LOAD(p) s8p_load(p)
#define LL_S8P_BROADCAST(v) s8p_pair(_mm256_set1_epi32(v), _mm256_set1_epi32(v))
#define LL_S8P_DOT(a, w, x) s8p_dot(a, w, x)
#define LL_S8P_STORE(p, a, corr, rows) s8p_store(p, a, corr, rows)
#include "gemm_s8_panels.h"

#pragma GCC pop_options

const ll_kernel_table ll_kernels_avxvnni = {
    .name = "avxvnni",
    .gemm_acc = ll_gemm_acc_avx2,
    .gemm_s8 = gemm_s8_avxvnni,
    .sigmoid = ll_sigmoid_avx2,
    .tanh = ll_tanh_avx2,
    .exp = ll_exp_avx2,
    .gemm_s8_panels = gemm_s8_panels_avxvnni,
    .quantize_s8 = ll_quantize_s8_avx2,
    .scale_acc_s8 = ll_scale_acc_s8_avx2,
};
#endif
