/* Simple RNN cell (Elman):  h = f_act(clip(b_ih + b_hh + W_ih x + W_hh h))
 *
 * With int8 weights each product W v is (q * s) v: v is quantized for the step, the sums are
 * exact int32, and the sum and activation stay float32. One call steps B streams (columns);
 * a sequence run hands in b_ih + b_hh + W_ih x, computed for many steps at once (model.c). */
#include <string.h>

#include "kernels.h"

/* Scratch of B streams: pre (B, H floats: h is still read by the product, so the sum goes
 * here first); int8 layers add the work of products over B columns of up to max(I, H) values
 * into H rows. */
typedef struct {
    size_t pre, int8[3], bytes;
} rnn_parts;

static rnn_parts rnn_layout(const ll_layer *L, int B)
{
    const int H = L->hidden_size, I = L->input_size;
    size_t next = 0;
    rnn_parts parts = {0};
    parts.pre = ll_scratch_take(&next, (size_t)B * H * sizeof(float));
    if (L->weight_dtype == LL_DTYPE_INT8)
        ll_int8_work_take(&next, B, I > H ? I : H, H, parts.int8);
    parts.bytes = next;
    return parts;
}

size_t ll_rnn_scratch_bytes(const ll_layer *L, int B)
{
    return rnn_layout(L, B).bytes;
}

void ll_rnn_cell(const ll_layer *L, int dir, int B, const float *x, int ldx, float *pre_in,
                 float *h, void *scratch)
{
    const int H = L->hidden_size;
    const rnn_parts parts = rnn_layout(L, B);
    ll_int8_work work = {0};
    if (L->weight_dtype == LL_DTYPE_INT8)
        work = ll_int8_work_at(scratch, parts.int8);

    float *pre = pre_in;
    if (!pre) {
        pre = LL_SCRATCH_AT(scratch, parts.pre, float);
        ll_input_gates(L, dir, B, x, ldx, pre, work);
    }
    ll_matrix_acc(ll_matrix_hh(L, dir), H, B, H, h, H, pre, H, work);
    for (int b = 0; b < B; b++)
        ll_activate(&L->act[dir][0], L->clip, pre + (size_t)b * H, H);
    memcpy(h, pre, sizeof(float) * (size_t)B * H);
}
