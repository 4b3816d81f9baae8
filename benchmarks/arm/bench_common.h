/*
 * What the qemu-counted C programs (step_count.c, vad_count.c) share: a fixed random stream,
 * aligned zeroed allocations that exit on failure, int8 rows quantized as
 * lstmlite.quantize.quantize_rows makes them, and an LSTM layer of random weights. Included once by each program.
 */
#ifndef LSTMLITE_BENCH_ARM_COMMON_H
#define LSTMLITE_BENCH_ARM_COMMON_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static float uniform(void) /* in [-1, 1) */
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((rng_state >> 40) * (2.0 / (1ull << 24)) - 1.0);
}

static void *allocate(size_t bytes)
{
    void *p = aligned_alloc(64, (bytes + 63) / 64 * 64);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    memset(p, 0, bytes);
    return p;
}

static float *random_floats(size_t n, float scale)
{
    float *a = allocate(n * sizeof(float));
    for (size_t i = 0; i < n; i++)
        a[i] = scale * uniform();
    return a;
}

/* symmetric per-row int8, as lstmlite.quantize.quantize_rows: q = round(w / s), s = max|w|/127 */
static void quantize_rows(const float *w, int rows, int cols, const int8_t **q,
                          const float **s)
{
    int8_t *qa = allocate((size_t)rows * cols);
    float *sa = allocate((size_t)rows * sizeof(float));
    for (int r = 0; r < rows; r++) {
        float peak = 0.0f;
        for (int c = 0; c < cols; c++)
            peak = fmaxf(peak, fabsf(w[(size_t)r * cols + c]));
        sa[r] = peak > 0 ? peak / 127.0f : 1.0f;
        for (int c = 0; c < cols; c++)
            qa[(size_t)r * cols + c] = (int8_t)lrintf(w[(size_t)r * cols + c] / sa[r]);
    }
    *q = qa;
    *s = sa;
}

/* An LSTM layer of I inputs and H units (lstmlite.h's ll_layer: the including program
 * includes lstmlite.h first), weights of bench_int8.py's shapes uniform in +-1/sqrt(H), in
 * int8 with one scale per row if int8; not packed. */
static void lstm_layer(ll_layer *layer, int I, int H, int int8)
{
    memset(layer, 0, sizeof *layer);
    layer->kind = LL_LAYER_LSTM;
    layer->input_size = I;
    layer->hidden_size = H;
    layer->num_directions = 1;
    layer->clip = INFINITY;
    layer->act[0][0].kind = LL_ACT_SIGMOID;
    layer->act[0][1].kind = LL_ACT_TANH;
    layer->act[0][2].kind = LL_ACT_TANH;
    const float bound = 1.0f / sqrtf((float)H);
    layer->w_ih[0] = random_floats((size_t)4 * H * I, bound);
    layer->w_hh[0] = random_floats((size_t)4 * H * H, bound);
    layer->b_ih[0] = random_floats((size_t)4 * H, bound);
    layer->b_hh[0] = random_floats((size_t)4 * H, bound);
    if (int8) {
        layer->weight_dtype = LL_DTYPE_INT8;
        quantize_rows(layer->w_ih[0], 4 * H, I, &layer->q_ih[0], &layer->s_ih[0]);
        quantize_rows(layer->w_hh[0], 4 * H, H, &layer->q_hh[0], &layer->s_hh[0]);
    }
}

#endif
