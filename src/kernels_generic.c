/* The portable kernel set: always built, and the reference the SIMD sets are tested against.
 * Compiled for the baseline of the target (SSE2 on x86-64, NEON on aarch64), whose int8 step
 * on panels it takes too: SSE2's below, the neon set's on aarch64. */
#include "kernels.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <emmintrin.h>
#include <string.h>

/* A stream's int8 step on x86-64's baseline, SSE2, on the VNNI panels (kernels.h: each 16
 * bytes of a group are 4 rows' next four weights + 128, row by row). SSE2 has no 8-bit
 * multiply; pmaddwd multiplies int16 pairs and adds each pair into an int32 lane. Read as 8
 * int16 lanes, a 16-byte chunk's even bytes (masked: inputs 0 and 2 of rows 0-3) and its odd
 * bytes (shifted down: inputs 1 and 3) are the panels' unsigned weights widened with no sign
 * to extend, two per row and lane pair; pmaddwd against a column's inputs made once per call
 * as int16 (x0, x2, x0, x2, ...) and (x1, x3, ...) gives each row's four products in its own
 * int32 lane, in order. So 16 products cost a load, a mask, a shift, two pmaddwd and two
 * adds, nothing is reduced across lanes, and 4 sums per panel leave SSE2's 16 registers
 * room (the row-major portable product widens every weight and reduces every row). The
 * offset comes back as 128 sum(x) subtracted per row, modulo 2^32 like every sum here
 * (gemm_s8_panels.h), so the sums are exact; then the float side y += s (sx sum) of
 * ll_matrix_acc in the same pass with scale_acc_s8's operations (SSE2 has no fused
 * multiply-add to merge them): the same bits. */

static void gemm_s8_panels_scaled_sse2(int M, int K, const uint8_t *restrict panels,
                                       const int8_t *restrict x, int32_t *restrict acc,
                                       const float *restrict s, float sx, float *restrict y)
{
    const int groups = (K + 3) / 4, panel_count = (M + 15) / 16;
    const size_t panel_bytes = (size_t)64 * (size_t)groups;
    const uint32_t offset_term = ll_s8_offset_term(x, K);
    const __m128i corr = _mm_set1_epi32((int32_t)offset_term);
    const __m128i even_bytes = _mm_set1_epi16(0x00ff);
    __m128i evens[LL_S8_COLUMN_GROUPS], odds[LL_S8_COLUMN_GROUPS];
    for (int g0 = 0; g0 < groups; g0 += LL_S8_COLUMN_GROUPS) {
        const int count =
            groups - g0 < LL_S8_COLUMN_GROUPS ? groups - g0 : LL_S8_COLUMN_GROUPS;
        for (int j = 0; j < count; j++) {
            const int32_t bits = ll_s8_group_bits(x, K, 4 * (g0 + j));
            int8_t four[4];
            memcpy(four, &bits, 4);
            evens[j] = _mm_set_epi16(four[2], four[0], four[2], four[0], four[2], four[0],
                                     four[2], four[0]);
            odds[j] = _mm_set_epi16(four[3], four[1], four[3], four[1], four[3], four[1],
                                    four[3], four[1]);
        }
        const int last = g0 + count == groups; /* the sums are whole after this part */
        for (int p = 0; p < panel_count; p++) {
            const uint8_t *restrict w = panels + (size_t)p * panel_bytes + (size_t)64 * g0;
            __m128i sums[4]; /* rows 4i .. 4i + 3, one per lane */
            for (int i = 0; i < 4; i++)
                sums[i] = _mm_setzero_si128();
            for (int j = 0; j < count; j++, w += 64) {
                const __m128i xe = evens[j], xo = odds[j];
                for (int i = 0; i < 4; i++) {
                    const __m128i c = _mm_loadu_si128((const __m128i *)(w + 16 * i));
                    const __m128i e = _mm_madd_epi16(_mm_and_si128(c, even_bytes), xe);
                    const __m128i o = _mm_madd_epi16(_mm_srli_epi16(c, 8), xo);
                    sums[i] = _mm_add_epi32(sums[i], _mm_add_epi32(e, o));
                }
            }
            const int rows = p == panel_count - 1 ? M - 16 * p : 16;
            const size_t row0 = 16 * (size_t)p;
            if (last && g0 == 0 && rows == 16) { /* the whole panel at once */
                const __m128 scale_x = _mm_set1_ps(sx);
                for (int i = 0; i < 4; i++) {
                    const __m128i exact = _mm_sub_epi32(sums[i], corr);
                    __m128 v = _mm_mul_ps(_mm_cvtepi32_ps(exact), scale_x);
                    v = _mm_mul_ps(_mm_loadu_ps(s + row0 + 4 * i), v);
                    _mm_storeu_ps(y + row0 + 4 * i,
                                  _mm_add_ps(_mm_loadu_ps(y + row0 + 4 * i), v));
                }
                continue;
            }
            int32_t lanes[16];
            for (int i = 0; i < 4; i++)
                _mm_storeu_si128((__m128i *)(lanes + 4 * i), sums[i]);
            ll_s8_column_rows(lanes, rows, g0 > 0, last, offset_term, acc + row0, s + row0,
                              sx, y + row0);
        }
    }
}
#define LL_GEMM_S8_PANELS_SCALED gemm_s8_panels_scaled_sse2
#elif defined(__aarch64__)
#define LL_GEMM_S8_PANELS_SCALED ll_gemm_s8_panels_scaled_neon /* NEON is the baseline */
#endif

#define LL_KERNEL_SUFFIX generic
#include "kernels_impl.h"
