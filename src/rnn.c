/* Simple RNN cell (Elman):  h = f_act(clip(b_ih + b_hh + W_ih x + W_hh h))
 *
 * With int8 weights each product W v is (q * s) v: v is quantized for the step, the sums are
 * exact int32, and the sum and activation stay float32. */
#include <string.h>

#include "kernels.h"

/* Scratch: pre (H floats: h is still read by the product, so the sum goes here first); int8
 * layers add one quantized vector (the longer of x and h) and H int32 sums. */
typedef struct {
    size_t pre, qv, acc, bytes;
} rnn_parts;

static rnn_parts rnn_layout(const ll_layer *L)
{
    const size_t H = (size_t)L->hidden_size, I = (size_t)L->input_size;
    size_t next = 0;
    rnn_parts parts = {0};
    parts.pre = ll_scratch_take(&next, H * sizeof(float));
    if (L->weight_dtype == LL_DTYPE_INT8) {
        parts.qv = ll_scratch_take(&next, I > H ? I : H);
        parts.acc = ll_scratch_take(&next, H * sizeof(int32_t));
    }
    parts.bytes = next;
    return parts;
}

size_t ll_rnn_scratch_bytes(const ll_layer *L)
{
    return rnn_layout(L).bytes;
}

void ll_rnn_cell(const ll_layer *L, int dir, const float *x, float *h, void *scratch)
{
    const int H = L->hidden_size, I = L->input_size;
    const rnn_parts parts = rnn_layout(L);
    float *pre = LL_SCRATCH_AT(scratch, parts.pre, float);

    if (L->b_ih[dir])
        memcpy(pre, L->b_ih[dir], sizeof(float) * H);
    else
        memset(pre, 0, sizeof(float) * H);
    if (L->b_hh[dir]) {
        const float *b = L->b_hh[dir];
        for (int j = 0; j < H; j++)
            pre[j] += b[j];
    }
    if (L->weight_dtype == LL_DTYPE_INT8) {
        int8_t *qv = LL_SCRATCH_AT(scratch, parts.qv, int8_t);
        int32_t *acc = LL_SCRATCH_AT(scratch, parts.acc, int32_t);
        ll_int8_matvec_acc(H, I, L->q_ih[dir], L->s_ih[dir], x, qv, acc, pre);
        ll_int8_matvec_acc(H, H, L->q_hh[dir], L->s_hh[dir], h, qv, acc, pre);
    } else {
        ll_active_kernels->gemv2_acc(H, I, L->w_ih[dir], x, H, L->w_hh[dir], h, pre);
    }
    ll_activate(&L->act[dir][0], L->clip, pre, H);
    memcpy(h, pre, sizeof(float) * H);
}
