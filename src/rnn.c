/* Simple RNN cell (Elman):  h = f_act(clip(b_ih + b_hh + W_ih x + W_hh h)) */
#include <string.h>

#include "kernels.h"

void ll_rnn_cell(const ll_layer *L, int dir, const float *x, float *h, float *scratch)
{
    const ll_kernel_table *K = ll_active_kernels;
    const int H = L->hidden_size, I = L->input_size;
    float *pre = scratch; /* H: h is still read by the product, so the sum goes here first */

    if (L->b_ih[dir])
        memcpy(pre, L->b_ih[dir], sizeof(float) * H);
    else
        memset(pre, 0, sizeof(float) * H);
    if (L->b_hh[dir]) {
        const float *b = L->b_hh[dir];
        for (int j = 0; j < H; j++)
            pre[j] += b[j];
    }
    K->gemv2_acc(H, I, L->w_ih[dir], x, H, L->w_hh[dir], h, pre);
    ll_activate(&L->act[dir][0], L->clip, pre, H);
    memcpy(h, pre, sizeof(float) * H);
}
