/* Simple RNN cell (Elman):  h = f_act(clip(b_ih + b_hh + W_ih x + W_hh h))
 *
 * With int8 weights each product W v is (q * s) v: v is quantized for the step, the sums are
 * exact int32, and the sum and activation stay float32. One call steps B streams (columns);
 * the caller hands in b_ih + b_hh + W_ih x (model.c), which becomes the new h. */
#include <string.h>

#include "kernels.h"

/* Scratch of B streams: only the int8 work of the recurrent product (B columns of H values
 * into H rows); the sum accumulates in the caller's gate buffer, since h is still read. */
size_t ll_rnn_scratch_bytes(const ll_layer *L, int B)
{
    return ll_int8_work_bytes(L, B, L->hidden_size, L->hidden_size);
}

void ll_rnn_cell(const ll_layer *L, int dir, int B, float *pre, float *h, void *scratch)
{
    const int H = L->hidden_size;
    const ll_int8_work work = ll_int8_work_alone(L, scratch, B, H, H);
    ll_matrix_acc(ll_matrix_hh(L, dir), H, B, H, h, H, pre, H, work);
    for (int b = 0; b < B; b++)
        ll_activate(&L->act[dir][0], L->clip, pre + (size_t)b * H, H);
    memcpy(h, pre, sizeof(float) * (size_t)B * H);
}
