/* LSTM cell, PyTorch gate order i, f, g, o (ONNX's c is our g).
 *
 *   gates = b_ih + b_hh + W_ih x + W_hh h                       (4H)
 *   i = f_act(clip(gates_i + p_i * c))                          peephole on the old cell
 *   f = 1 - i                     if input_forget
 *     = f_act(clip(gates_f + p_f * c))     otherwise
 *   g = g_act(clip(gates_g))
 *   c = f * c + i * g
 *   o = f_act(clip(gates_o + p_o * c))                          peephole on the new cell
 *   h = o * h_act(c)                                            c itself is not clipped (ONNX)
 *   h = W_hr h                    if proj_size (PyTorch proj_size)
 */
#include <math.h>
#include <string.h>

#include "kernels.h"

void ll_lstm_cell(const ll_layer *L, int dir, const float *x, float *h, float *c,
                  float *scratch)
{
    const ll_kernel_table *K = ll_active_kernels;
    const int H = L->hidden_size, I = L->input_size;
    const int P = L->proj_size > 0 ? L->proj_size : H; /* width of h */
    const ll_activation *act = L->act[dir];
    const float *peep = L->peephole[dir];
    float *gates = scratch;          /* 4H */
    float *gi = gates, *gf = gates + H, *gg = gates + 2 * H, *go = gates + 3 * H;
    float *h_full = scratch + 4 * H; /* H: o * h_act(c) before the projection */

    /* gates = b_ih + b_hh + W_ih x + W_hh h */
    if (L->b_ih[dir])
        memcpy(gates, L->b_ih[dir], sizeof(float) * 4 * H);
    else
        memset(gates, 0, sizeof(float) * 4 * H);
    if (L->b_hh[dir]) {
        const float *b = L->b_hh[dir];
        for (int j = 0; j < 4 * H; j++)
            gates[j] += b[j];
    }
    K->gemv2_acc(4 * H, I, L->w_ih[dir], x, P, L->w_hh[dir], h, gates);

    /* input and forget gates see the old cell through the peepholes (i, o, f order) */
    if (peep) {
        const float *p_i = peep, *p_f = peep + 2 * H;
        for (int j = 0; j < H; j++) {
            gi[j] += p_i[j] * c[j];
            gf[j] += p_f[j] * c[j];
        }
    }
    ll_activate(&act[0], L->clip, gi, H);
    if (L->input_forget) {
        for (int j = 0; j < H; j++)
            gf[j] = 1.0f - gi[j];
    } else {
        ll_activate(&act[0], L->clip, gf, H);
    }
    ll_activate(&act[1], L->clip, gg, H);

    /* c = f * c + i * g */
    for (int j = 0; j < H; j++)
        c[j] = gf[j] * c[j] + gi[j] * gg[j];

    /* the output gate sees the new cell */
    if (peep) {
        const float *p_o = peep + H;
        for (int j = 0; j < H; j++)
            go[j] += p_o[j] * c[j];
    }
    ll_activate(&act[0], L->clip, go, H);

    /* h = o * h_act(c), then the optional projection */
    memcpy(h_full, c, sizeof(float) * H);
    ll_activate(&act[2], INFINITY, h_full, H);
    for (int j = 0; j < H; j++)
        h_full[j] *= go[j];
    if (L->proj_size > 0) {
        memset(h, 0, sizeof(float) * P);
        K->gemv_acc(P, H, L->w_hr[dir], h_full, h);
    } else {
        memcpy(h, h_full, sizeof(float) * H);
    }
}
