/* The float32 multiply-add rate of this CPU's widest vector unit, measured alone: twelve
 * independent chains of fused multiply-adds (enough to cover the latency of every FMA port),
 * 16 lanes with AVX-512, 8 with AVX2/FMA, 4 with NEON. Prints GMAC/s. The arithmetic floor of a
 * model step is its multiply-adds divided by this (benchmarks/bench_vad.py).
 *
 *   cc -O2 -march=native benchmarks/fma_peak.c -o fma_peak && ./fma_peak */
#include <stdio.h>
#include <time.h>

#if defined(__AVX512F__)
#include <immintrin.h>
typedef __m512 vec;
#define LANES 16
#define SET(x) _mm512_set1_ps(x)
#define FMA(c, a, b) _mm512_fmadd_ps(c, a, b)
#define SUM(v) _mm512_reduce_add_ps(v)
#define ADD(a, b) _mm512_add_ps(a, b)
#elif defined(__FMA__)
#include <immintrin.h>
typedef __m256 vec;
#define LANES 8
#define SET(x) _mm256_set1_ps(x)
#define FMA(c, a, b) _mm256_fmadd_ps(c, a, b)
#define ADD(a, b) _mm256_add_ps(a, b)
static float SUM(vec v) { float f[8]; _mm256_storeu_ps(f, v); return f[0] + f[1] + f[2] + f[3] + f[4] + f[5] + f[6] + f[7]; }
#elif defined(__ARM_NEON)
#include <arm_neon.h>
typedef float32x4_t vec;
#define LANES 4
#define SET(x) vdupq_n_f32(x)
#define FMA(c, a, b) vfmaq_f32(b, c, a)
#define ADD(a, b) vaddq_f32(a, b)
static float SUM(vec v) { return vgetq_lane_f32(v, 0) + vgetq_lane_f32(v, 1) + vgetq_lane_f32(v, 2) + vgetq_lane_f32(v, 3); }
#else
#error "needs AVX-512, AVX2 with FMA, or NEON"
#endif

int main(void)
{
    const vec a = SET(0.9999f), b = SET(1e-4f);
    vec c0 = SET(0), c1 = SET(1), c2 = SET(2), c3 = SET(3), c4 = SET(4), c5 = SET(5);
    vec c6 = SET(6), c7 = SET(7), c8 = SET(8), c9 = SET(9), c10 = SET(10), c11 = SET(11);
    const long iterations = 20000000;
    double best = 0;
    for (int repeat = 0; repeat < 5; repeat++) {
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (long n = 0; n < iterations; n++) {
#define STEP(c) c = FMA(c, a, b);
            STEP(c0) STEP(c1) STEP(c2) STEP(c3) STEP(c4) STEP(c5)
            STEP(c6) STEP(c7) STEP(c8) STEP(c9) STEP(c10) STEP(c11)
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        const double seconds = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (t1.tv_nsec - t0.tv_nsec);
        const double rate = iterations * 12.0 * LANES / seconds / 1e9;
        best = rate > best ? rate : best;
    }
    /* the chains' values keep the loop from being optimised away */
    const vec total = ADD(ADD(ADD(c0, c1), ADD(c2, c3)), ADD(ADD(c4, c5), ADD(ADD(c6, c7),
                          ADD(ADD(c8, c9), ADD(c10, c11)))));
    printf("%.2f GMAC/s (%d lanes; checksum %g)\n", best, LANES, (double)SUM(total));
    return 0;
}
