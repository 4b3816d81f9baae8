/* Float32 weights packed in panels, the form the float products read (kernels.h,
 * gemm_f32_panels.h): done once when a model is built, never during a step. */
#include <string.h>

#include "kernels.h"

size_t ll_packed_floats(int M, int K)
{
    const size_t panels = ((size_t)M + LL_PANEL_ROWS - 1) / LL_PANEL_ROWS;
    return panels * LL_PANEL_ROWS * (size_t)K;
}

void ll_pack_f32(int M, int K, const float *W, float *packed)
{
    const size_t floats = ll_packed_floats(M, K);
    memset(packed, 0, sizeof(float) * floats); /* the last panel's padding rows */
    for (int m = 0; m < M; m++) {
        float *panel = packed + (size_t)(m / LL_PANEL_ROWS) * LL_PANEL_ROWS * (size_t)K;
        const int lane = m % LL_PANEL_ROWS;
        const float *row = W + (size_t)m * K;
        for (int k = 0; k < K; k++)
            panel[(size_t)k * LL_PANEL_ROWS + lane] = row[k];
    }
}

/* Walks the layer's float32 matrices in one order for sizing and for packing: with buffer
 * NULL it only counts. GRU's W_hh is packed in two parts, the r and z rows, then the n rows,
 * so that the n rows can be multiplied alone (ll_matrix_rows). */
static size_t pack_layer(ll_layer *L, unsigned char *buffer)
{
    size_t next = 0;
#define LL_PACK(source, rows, cols, target)                                                  \
    do {                                                                                    \
        if (buffer) {                                                                       \
            float *to_ = (float *)(buffer + next);                                          \
            ll_pack_f32((rows), (cols), (source), to_);                                     \
            (target) = to_;                                                                 \
        }                                                                                   \
        next += sizeof(float) * ll_packed_floats((rows), (cols));                          \
    } while (0)

    if (L->weight_dtype != LL_DTYPE_FLOAT32)
        return 0;
    const int H = L->hidden_size, I = L->input_size;
    if (L->kind == LL_LAYER_DENSE) {
        LL_PACK(L->weight, H, I, L->packed_weight);
    } else if (ll_layer_is_recurrent(L)) {
        const int G = L->kind == LL_LAYER_LSTM ? 4 : L->kind == LL_LAYER_GRU ? 3 : 1;
        const int P = ll_layer_h_size(L);
        for (int d = 0; d < L->num_directions; d++) {
            LL_PACK(L->w_ih[d], G * H, I, L->packed_ih[d]);
            if (L->kind == LL_LAYER_GRU) {
                const float *n_rows = L->w_hh[d] + (size_t)2 * H * P;
                const float *n_packed = NULL;
                LL_PACK(L->w_hh[d], 2 * H, P, L->packed_hh[d]);
                LL_PACK(n_rows, H, P, n_packed);
                (void)n_packed; /* found again through ll_matrix_rows */
            } else {
                LL_PACK(L->w_hh[d], G * H, P, L->packed_hh[d]);
            }
            if (L->kind == LL_LAYER_LSTM && L->proj_size > 0)
                LL_PACK(L->w_hr[d], P, H, L->packed_hr[d]);
        }
    }
#undef LL_PACK
    return next;
}

size_t ll_layer_packed_bytes(const ll_layer *L)
{
    return pack_layer((ll_layer *)L, NULL);
}

void ll_layer_pack(ll_layer *L, void *buffer)
{
    pack_layer(L, buffer);
}
