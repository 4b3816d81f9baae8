/*
 * The ceiling for lstmlite's int8 step: a hand-written int8 LSTM step timed in C, with no
 * Python, no dispatch and no portability, the way one would write it for this one machine:
 * quantize x and h per step, int32 products four rows at a time (AVX2 vpmaddubsw on |x| and
 * sign-moved weights where the compiler targets AVX2, plain loops otherwise), float gates
 * with glibc's vectorized expf/tanhf (-ffast-math). bench_int8.py builds it and compares
 * lstmlite's step from Python with it.
 *
 *   cc -O3 -march=native -ffast-math benchmarks/int8_ceiling.c -lm -o int8_ceiling
 *   ./int8_ceiling I H L steps repeats      -> prints the median microseconds per step
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef __AVX2__
#include <immintrin.h>
#endif

typedef struct {
    int I, H;
    int8_t *w_ih, *w_hh; /* (4H, I), (4H, H) */
    float *s_ih, *s_hh, *bias;
    float *h, *c, *gates;
    int8_t *q;
    int32_t *acc;
} layer;

static float quantize(const float *x, int n, int8_t *q)
{
    float peak = 0;
    for (int i = 0; i < n; i++)
        peak = fabsf(x[i]) > peak ? fabsf(x[i]) : peak;
    if (peak == 0) {
        memset(q, 0, (size_t)n);
        return 0;
    }
    const float inv = 127.0f / peak;
    for (int i = 0; i < n; i++)
        q[i] = (int8_t)lrintf(x[i] * inv);
    return peak / 127.0f;
}

static void product(int M, int K, const int8_t *W, const int8_t *x, int32_t *acc)
{
    int m = 0;
#ifdef __AVX2__
    const __m256i ones = _mm256_set1_epi16(1);
    for (; m + 4 <= M && K % 32 == 0; m += 4) {
        __m256i a[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(),
                        _mm256_setzero_si256()};
        for (int k = 0; k < K; k += 32) {
            const __m256i xv = _mm256_loadu_si256((const __m256i *)(x + k));
            const __m256i ax = _mm256_sign_epi8(xv, xv);
            for (int r = 0; r < 4; r++) {
                const __m256i w = _mm256_loadu_si256((const __m256i *)(W + (size_t)(m + r) * K + k));
                a[r] = _mm256_add_epi32(a[r], _mm256_madd_epi16(
                    _mm256_maddubs_epi16(ax, _mm256_sign_epi8(w, xv)), ones));
            }
        }
        for (int r = 0; r < 4; r++) {
            __m128i v = _mm_add_epi32(_mm256_castsi256_si128(a[r]),
                                      _mm256_extracti128_si256(a[r], 1));
            v = _mm_hadd_epi32(v, v);
            v = _mm_hadd_epi32(v, v);
            acc[m + r] = _mm_cvtsi128_si32(v);
        }
    }
#endif
    for (; m < M; m++) {
        int32_t s = 0;
        const int8_t *w = W + (size_t)m * K;
        for (int k = 0; k < K; k++)
            s += w[k] * x[k];
        acc[m] = s;
    }
}

static const float *step(layer *L, const float *x)
{
    const int H = L->H, G = 4 * H;
    memcpy(L->gates, L->bias, sizeof(float) * G);
    float s = quantize(x, L->I, L->q);
    product(G, L->I, L->w_ih, L->q, L->acc);
    for (int m = 0; m < G; m++)
        L->gates[m] += L->s_ih[m] * s * L->acc[m];
    s = quantize(L->h, H, L->q);
    product(G, H, L->w_hh, L->q, L->acc);
    for (int m = 0; m < G; m++)
        L->gates[m] += L->s_hh[m] * s * L->acc[m];
    float *gates = L->gates;
    for (int j = 0; j < H; j++) /* sigmoid of i and f (rows 0..2H) */
        gates[j] = 1 / (1 + expf(-gates[j]));
    for (int j = H; j < 2 * H; j++)
        gates[j] = 1 / (1 + expf(-gates[j]));
    for (int j = 2 * H; j < 3 * H; j++)
        gates[j] = tanhf(gates[j]);
    for (int j = 3 * H; j < 4 * H; j++)
        gates[j] = 1 / (1 + expf(-gates[j]));
    for (int j = 0; j < H; j++)
        L->c[j] = gates[H + j] * L->c[j] + gates[j] * gates[2 * H + j];
    for (int j = 0; j < H; j++)
        L->h[j] = gates[3 * H + j] * tanhf(L->c[j]);
    return L->h;
}

static void *filled(size_t n, size_t size, int bytes)
{
    unsigned char *p = malloc(n * size + 64);
    for (size_t i = 0; i < n * size; i++)
        p[i] = bytes ? (unsigned char)(rand() % 255 - 127) : 0;
    return p;
}

static int compare(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: %s I H L steps repeats\n", argv[0]);
        return 2;
    }
    const int I = atoi(argv[1]), H = atoi(argv[2]), nl = atoi(argv[3]);
    const int steps = atoi(argv[4]), repeats = atoi(argv[5]);
    layer layers[8];
    for (int l = 0; l < nl && l < 8; l++) {
        layer *L = &layers[l];
        L->I = l ? H : I;
        L->H = H;
        L->w_ih = filled((size_t)4 * H * L->I, 1, 1);
        L->w_hh = filled((size_t)4 * H * H, 1, 1);
        L->s_ih = filled(4 * H, sizeof(float), 0);
        L->s_hh = filled(4 * H, sizeof(float), 0);
        for (int m = 0; m < 4 * H; m++)
            L->s_ih[m] = L->s_hh[m] = 1e-3f;
        L->bias = filled(4 * H, sizeof(float), 0);
        L->h = filled(H, sizeof(float), 0);
        L->c = filled(H, sizeof(float), 0);
        L->gates = filled(4 * H, sizeof(float), 0);
        L->q = filled(H > L->I ? H : L->I, 1, 0);
        L->acc = filled(4 * H, sizeof(int32_t), 0);
    }
    float *frames = malloc(sizeof(float) * 256 * I);
    for (int i = 0; i < 256 * I; i++)
        frames[i] = (float)(rand() % 2001 - 1000) / 1000.0f;
    double *runs = malloc(sizeof(double) * repeats);
    volatile float sink = 0;
    for (int r = -1; r < repeats; r++) { /* r = -1 warms up */
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (int t = 0; t < steps; t++) {
            const float *in = frames + (size_t)(t & 255) * I;
            for (int l = 0; l < nl; l++)
                in = step(&layers[l], in);
            sink += in[0];
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        if (r >= 0)
            runs[r] = ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / steps / 1e3;
    }
    qsort(runs, repeats, sizeof(double), compare);
    printf("%.4f\n", runs[repeats / 2]);
    return sink == 12345.0f;
}
