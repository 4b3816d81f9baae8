/*
 * The int8 products of an LSTM step alone, timed in C on the engine's own kernels (no Python,
 * no quantization, no activations): what one column (a single stream) and N columns (a batch
 * of streams) cost per column, in the active kernel set, on row-major weights and on VNNI
 * panels. bench_batch.py builds it against src/ and prints it next to the batched figures, so
 * that the share of a batched int8 step the products can save is measured, not guessed.
 *
 *   cc -O3 -std=c11 -Isrc benchmarks/int8_products.c src/<every .c but _core.c> -lm
 *   ./int8_products I H L N repeats     -> "rows|panels  us_per_column_N1  us_per_column_N"
 * (LSTMLITE_KERNELS=<set> chooses the kernel set, as for the package)
 *
 * The matrices are an LSTM stack's: per layer (4H, I or H) and (4H, H), random int8. Each
 * figure is the best of `repeats` runs (the floor, where the peers' figures are medians: this
 * one is an explanation, not a comparison).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "kernels.h"

static double seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

typedef struct {
    int M, K;
    int8_t *q;
    int32_t *sums;
    uint8_t *panels;
} matrix;

static void *allocate(size_t bytes)
{
    void *p = aligned_alloc(64, (bytes + 63) / 64 * 64);
    if (!p) {
        fprintf(stderr, "int8_products: out of memory\n");
        exit(2);
    }
    return p;
}

/* microseconds per column of every matrix's product with N columns, best of `repeats` */
static double per_column(const matrix *mats, int count, int N, int use_panels,
                         const int8_t *X, int32_t *acc, int repeats)
{
    const int calls = 2000 / N + 10;
    double best = 1e30;
    for (int r = 0; r < repeats; r++) {
        const double t0 = seconds();
        for (int c = 0; c < calls; c++) {
            for (int i = 0; i < count; i++) {
                const ll_matrix A = {NULL, mats[i].q, NULL, mats[i].sums,
                                     use_panels ? mats[i].panels : NULL};
                ll_s8_product(A, mats[i].M, N, mats[i].K, X, mats[i].K, acc, mats[i].M);
            }
        }
        const double t = (seconds() - t0) / calls;
        best = t < best ? t : best;
    }
    return best * 1e6 / N;
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: int8_products I H L N repeats\n");
        return 2;
    }
    const int I = atoi(argv[1]), H = atoi(argv[2]), L = atoi(argv[3]), N = atoi(argv[4]);
    const int repeats = atoi(argv[5]);
    if (I < 1 || H < 1 || L < 1 || N < 1 || repeats < 1 || L > 8) {
        fprintf(stderr, "int8_products: I, H, N, repeats >= 1 and 1 <= L <= 8\n");
        return 2;
    }
    const char *set = getenv("LSTMLITE_KERNELS"); /* as the package reads it */
    if (ll_kernels_select(set && set[0] ? set : "auto") != 0) {
        fprintf(stderr, "int8_products: this CPU does not run kernel set %s\n", set);
        return 2;
    }
    matrix mats[16];
    int count = 0, widest = H > I ? H : I;
    srand(1);
    for (int layer = 0; layer < L; layer++) {
        for (int part = 0; part < 2; part++) {
            matrix *m = &mats[count++];
            m->M = 4 * H;
            m->K = part == 0 && layer == 0 ? I : H;
            m->q = allocate((size_t)m->M * m->K);
            for (size_t j = 0; j < (size_t)m->M * m->K; j++)
                m->q[j] = (int8_t)(rand() % 255 - 127);
            m->sums = allocate(sizeof(int32_t) * (size_t)m->M);
            ll_row_sums_s8(m->M, m->K, m->q, m->sums);
            m->panels = allocate(ll_s8_panels_bytes(m->M, m->K));
            ll_pack_s8_panels(m->M, m->K, m->q, m->panels);
        }
    }
    int8_t *X = allocate((size_t)N * widest);
    for (size_t j = 0; j < (size_t)N * widest; j++)
        X[j] = (int8_t)(rand() % 255 - 127);
    int32_t *acc = allocate(sizeof(int32_t) * (size_t)N * 4 * H);
    for (int use_panels = 0; use_panels < 2; use_panels++) {
        if (use_panels && !ll_active_kernels->gemm_s8_panels)
            break;
        const double one = per_column(mats, count, 1, use_panels, X, acc, repeats);
        const double many = per_column(mats, count, N, use_panels, X, acc, repeats);
        printf("%s %.3f %.3f\n", use_panels ? "panels" : "rows", one, many);
    }
    return 0;
}
