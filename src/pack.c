/* What a layer's kernels read besides its arrays, made once when a model is built and never
 * during a step: float32 matrices packed in panels (kernels.h, gemm_f32_panels.h), the int8
 * matrices' row sums (kernels.h, gemm_s8) and the bias of the input gates summed. */
#include <string.h>

#include "kernels.h"

void ll_pack_f32(int M, int K, const float *W, float *packed)
{
    const int full = M / LL_PANEL_ROWS;
    const int rest = M - full * LL_PANEL_ROWS;
    for (int m = 0; m < M; m++) {
        const int panel = m / LL_PANEL_ROWS, lane = m % LL_PANEL_ROWS;
        /* whole panels hold 16 weights per input, the last partial one `rest` */
        const int width = panel < full ? LL_PANEL_ROWS : rest;
        float *to = packed + (size_t)panel * LL_PANEL_ROWS * (size_t)K;
        const float *row = W + (size_t)m * K;
        for (int k = 0; k < K; k++)
            to[(size_t)k * width + lane] = row[k];
    }
}

/* Takes `count` floats (or int32s: both 4 bytes) of the buffer (from 64 bytes on) and returns
 * where they start, or NULL when only counting (buffer NULL). */
static void *take(unsigned char *buffer, size_t *next, size_t count)
{
    const size_t at = ll_scratch_take(next, count * 4);
    return buffer ? buffer + at : NULL;
}

/* the int8 matrix W (M, K)'s row sums, in the buffer */
static const int32_t *row_sums(unsigned char *buffer, size_t *next, int M, int K,
                               const int8_t *W)
{
    int32_t *sums = take(buffer, next, (size_t)M);
    if (sums)
        ll_row_sums_s8(M, K, W, sums);
    return sums;
}

/* the int8 matrix W (M, K) in VNNI panels, in the buffer, where a set this CPU runs reads
 * them (else NULL: no memory spent on a layout nothing reads) */
static const uint8_t *s8_panels(unsigned char *buffer, size_t *next, int M, int K,
                                const int8_t *W)
{
    if (!ll_kernels_read_s8_panels())
        return NULL;
    const size_t at = ll_scratch_take(next, ll_s8_panels_bytes(M, K));
    if (!buffer)
        return NULL;
    ll_pack_s8_panels(M, K, W, buffer + at);
    return buffer + at;
}

static const float *pack_matrix(unsigned char *buffer, size_t *next, int M, int K,
                                const float *W)
{
    float *packed = take(buffer, next, (size_t)M * (size_t)K);
    if (packed)
        ll_pack_f32(M, K, W, packed);
    return packed;
}

/* The bias of the input gates (model.c): b_ih + b_hh for LSTM and RNN, summed here once
 * instead of on every step (the same float additions, so the same bits); b_ih alone for GRU,
 * whose b_hh goes with the recurrent product; NULL when there is none. */
static const float *gate_bias(unsigned char *buffer, size_t *next, const ll_layer *L, int d,
                              int rows)
{
    const float *b_ih = L->b_ih[d], *b_hh = L->kind == LL_LAYER_GRU ? NULL : L->b_hh[d];
    if (!b_ih || !b_hh)
        return b_ih ? b_ih : b_hh;
    float *sum = take(buffer, next, (size_t)rows);
    if (sum)
        for (int j = 0; j < rows; j++)
            sum[j] = b_ih[j] + b_hh[j];
    return sum;
}

/* One walk for sizing (buffer NULL: `into` gets NULL pointers, and the bytes are returned)
 * and for packing (into L itself). GRU's W_hh is packed in two parts, the r and z rows, then
 * the n rows, so that the n rows can be multiplied alone (ll_matrix_rows); its row sums are
 * per row, so any rows of them are the sums of those rows. */
static size_t pack_layer(const ll_layer *L, unsigned char *buffer, ll_layer *into)
{
    size_t next = 0;
    const int H = L->hidden_size, I = L->input_size;
    const int float32 = L->weight_dtype == LL_DTYPE_FLOAT32;
    if (L->kind == LL_LAYER_DENSE) {
        if (float32)
            into->packed_weight = pack_matrix(buffer, &next, H, I, L->weight);
        else {
            into->sums_weight = row_sums(buffer, &next, H, I, L->q_weight);
            into->panels_weight = s8_panels(buffer, &next, H, I, L->q_weight);
        }
    } else if (L->kind == LL_LAYER_CONV1D) {
        /* each group's rows a matrix of its own, packed one after the other: the float32
         * ones as long as row-major, so group g's starts at g Mg K floats (ll_matrix_rows);
         * the int8 panels at g times one group's panel bytes (conv.c) */
        const int G = L->groups, Mg = H / G, K = L->channels / G * L->kernel_size;
        if (L->fft_bins) { /* computed as an FFT: its tables instead of packed rows */
            const size_t at = ll_scratch_take(&next, ll_conv1d_fft_tables_bytes(L));
            if (buffer)
                ll_conv1d_fft_tables(L, (float *)(buffer + at));
            into->fft_tables = buffer ? (const float *)(buffer + at) : NULL;
        } else if (float32) {
            float *packed = take(buffer, &next, (size_t)H * K);
            if (packed)
                for (int g = 0; g < G; g++)
                    ll_pack_f32(Mg, K, L->weight + (size_t)g * Mg * K,
                                packed + (size_t)g * Mg * K);
            into->packed_weight = packed;
        } else {
            into->sums_weight = row_sums(buffer, &next, H, K, L->q_weight);
            for (int g = 0; g < G; g++) {
                const uint8_t *panels = s8_panels(buffer, &next, Mg, K,
                                                  L->q_weight + (size_t)g * Mg * K);
                if (g == 0)
                    into->panels_weight = panels;
            }
        }
    } else if (ll_layer_is_recurrent(L)) {
        const int rows = ll_layer_gate_rows(L), P = ll_layer_h_size(L);
        for (int d = 0; d < L->num_directions; d++) {
            into->gate_bias[d] = gate_bias(buffer, &next, L, d, rows);
            if (!float32) {
                into->sums_ih[d] = row_sums(buffer, &next, rows, I, L->q_ih[d]);
                into->sums_hh[d] = row_sums(buffer, &next, rows, P, L->q_hh[d]);
                into->panels_ih[d] = s8_panels(buffer, &next, rows, I, L->q_ih[d]);
                if (L->kind == LL_LAYER_GRU) {
                    /* in two parts like the float32 W_hh, so that the n rows can be
                     * multiplied alone: their panels start on a panel of their own, right
                     * after the r and z rows' (where ll_matrix_rows finds them) */
                    into->panels_hh[d] = s8_panels(buffer, &next, 2 * H, P, L->q_hh[d]);
                    s8_panels(buffer, &next, H, P, L->q_hh[d] + (size_t)2 * H * P);
                } else {
                    into->panels_hh[d] = s8_panels(buffer, &next, rows, P, L->q_hh[d]);
                }
                if (L->kind == LL_LAYER_LSTM && L->proj_size > 0) {
                    into->sums_hr[d] = row_sums(buffer, &next, P, H, L->q_hr[d]);
                    into->panels_hr[d] = s8_panels(buffer, &next, P, H, L->q_hr[d]);
                }
                continue;
            }
            into->packed_ih[d] = pack_matrix(buffer, &next, rows, I, L->w_ih[d]);
            if (L->kind == LL_LAYER_GRU) {
                /* one part of the buffer, the n rows right after the r and z rows */
                float *hh = take(buffer, &next, (size_t)rows * P);
                if (hh) {
                    ll_pack_f32(2 * H, P, L->w_hh[d], hh);
                    ll_pack_f32(H, P, L->w_hh[d] + (size_t)2 * H * P, hh + (size_t)2 * H * P);
                }
                into->packed_hh[d] = hh;
            } else {
                into->packed_hh[d] = pack_matrix(buffer, &next, rows, P, L->w_hh[d]);
            }
            if (L->kind == LL_LAYER_LSTM && L->proj_size > 0)
                into->packed_hr[d] = pack_matrix(buffer, &next, P, H, L->w_hr[d]);
        }
    }
    return next;
}

size_t ll_layer_packed_bytes(const ll_layer *L)
{
    ll_layer counted = *L;
    return pack_layer(L, NULL, &counted);
}

void ll_layer_pack(ll_layer *L, void *buffer)
{
    pack_layer(L, buffer, L);
}
