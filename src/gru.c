/* GRU cell, PyTorch gate order r, z, n (ONNX's order is z, r, h; the importer reorders).
 *
 *   gx = b_ih + W_ih x                                           (3H)
 *   r = f_act(clip(gx_r + b_hr + W_hr h))
 *   z = f_act(clip(gx_z + b_hz + W_hz h))
 *   n = g_act(clip(gx_n + r * (b_hn + W_hn h)))    linear_before_reset = 1 (PyTorch, default)
 *     = g_act(clip(gx_n + b_hn + W_hn (r * h)))    linear_before_reset = 0 (ONNX default, TF1)
 *   h = (1 - z) * n + z * h
 *
 * With int8 weights each product W v is (q * s) v: v is quantized for the step, the sums are
 * exact int32, and everything after the products is the float32 arithmetic above.
 */
#include <string.h>

#include "kernels.h"

/* Scratch: gx (3H floats, input part of r, z, n), gh (3H, recurrent part), rh (H, r * h for
 * linear_before_reset = 0); int8 layers add one quantized vector (the longer of x and h)
 * and 3H int32 sums, reused by each product in turn. */
typedef struct {
    size_t gx, gh, rh, qv, acc, bytes;
} gru_parts;

static gru_parts gru_layout(const ll_layer *L)
{
    const size_t H = (size_t)L->hidden_size, I = (size_t)L->input_size;
    size_t next = 0;
    gru_parts parts = {0};
    parts.gx = ll_scratch_take(&next, 3 * H * sizeof(float));
    parts.gh = ll_scratch_take(&next, 3 * H * sizeof(float));
    parts.rh = ll_scratch_take(&next, H * sizeof(float));
    if (L->weight_dtype == LL_DTYPE_INT8) {
        parts.qv = ll_scratch_take(&next, I > H ? I : H);
        parts.acc = ll_scratch_take(&next, 3 * H * sizeof(int32_t));
    }
    parts.bytes = next;
    return parts;
}

size_t ll_gru_scratch_bytes(const ll_layer *L)
{
    return gru_layout(L).bytes;
}

/* y (M) += rows [row0, row0 + M) of the layer's w_ih (input) or w_hh (recurrent) times v */
static void gru_product(const ll_layer *L, int dir, int recurrent, int row0, int M, int K,
                        const float *v, int8_t *qv, int32_t *acc, float *y)
{
    const size_t offset = (size_t)row0 * K;
    if (L->weight_dtype == LL_DTYPE_INT8) {
        const int8_t *q = recurrent ? L->q_hh[dir] : L->q_ih[dir];
        const float *s = recurrent ? L->s_hh[dir] : L->s_ih[dir];
        ll_int8_matvec_acc(M, K, q + offset, s + row0, v, qv, acc, y);
    } else {
        const float *w = recurrent ? L->w_hh[dir] : L->w_ih[dir];
        ll_active_kernels->gemv_acc(M, K, w + offset, v, y);
    }
}

void ll_gru_cell(const ll_layer *L, int dir, const float *x, float *h, void *scratch)
{
    const int H = L->hidden_size, I = L->input_size;
    const ll_activation *act = L->act[dir];
    const float *b_hh = L->b_hh[dir];
    const gru_parts parts = gru_layout(L);
    float *gx = LL_SCRATCH_AT(scratch, parts.gx, float);
    float *gh = LL_SCRATCH_AT(scratch, parts.gh, float);
    float *rh = LL_SCRATCH_AT(scratch, parts.rh, float);
    const int int8 = L->weight_dtype == LL_DTYPE_INT8;
    int8_t *qv = int8 ? LL_SCRATCH_AT(scratch, parts.qv, int8_t) : NULL;
    int32_t *acc = int8 ? LL_SCRATCH_AT(scratch, parts.acc, int32_t) : NULL;

    if (L->b_ih[dir])
        memcpy(gx, L->b_ih[dir], sizeof(float) * 3 * H);
    else
        memset(gx, 0, sizeof(float) * 3 * H);
    gru_product(L, dir, 0, 0, 3 * H, I, x, qv, acc, gx);

    if (b_hh)
        memcpy(gh, b_hh, sizeof(float) * 3 * H);
    else
        memset(gh, 0, sizeof(float) * 3 * H);
    /* r and z rows always see h; the n rows see h or r * h */
    const int recurrent_rows = L->linear_before_reset ? 3 * H : 2 * H;
    gru_product(L, dir, 1, 0, recurrent_rows, H, h, qv, acc, gh);

    float *r = gx, *z = gx + H, *n = gx + 2 * H;
    for (int j = 0; j < 2 * H; j++)
        gx[j] += gh[j];
    ll_activate(&act[0], L->clip, r, H);
    ll_activate(&act[0], L->clip, z, H);

    if (L->linear_before_reset) {
        for (int j = 0; j < H; j++)
            n[j] += r[j] * gh[2 * H + j];
    } else {
        for (int j = 0; j < H; j++)
            rh[j] = r[j] * h[j];
        gru_product(L, dir, 1, 2 * H, H, H, rh, qv, acc, gh + 2 * H);
        for (int j = 0; j < H; j++)
            n[j] += gh[2 * H + j];
    }
    ll_activate(&act[1], L->clip, n, H);

    /* h = (1 - z) * n + z * h */
    for (int j = 0; j < H; j++)
        h[j] = (1.0f - z[j]) * n[j] + z[j] * h[j];
}
