/* GRU cell, PyTorch gate order r, z, n (ONNX's order is z, r, h; the importer reorders).
 *
 *   gx = b_ih + W_ih x                                           (3H)
 *   r = f_act(clip(gx_r + b_hr + W_hr h))
 *   z = f_act(clip(gx_z + b_hz + W_hz h))
 *   n = g_act(clip(gx_n + r * (b_hn + W_hn h)))    linear_before_reset = 1 (PyTorch, default)
 *     = g_act(clip(gx_n + b_hn + W_hn (r * h)))    linear_before_reset = 0 (ONNX default, TF1)
 *   h = (1 - z) * n + z * h
 */
#include <string.h>

#include "kernels.h"

void ll_gru_cell(const ll_layer *L, int dir, const float *x, float *h, float *scratch)
{
    const ll_kernel_table *K = ll_active_kernels;
    const int H = L->hidden_size, I = L->input_size;
    const ll_activation *act = L->act[dir];
    const float *w_hh = L->w_hh[dir];
    const float *b_hh = L->b_hh[dir];
    float *gx = scratch;          /* 3H: input part of r, z, n */
    float *gh = scratch + 3 * H;  /* 3H: recurrent part of r, z, n */
    float *rh = scratch + 6 * H;  /* H: r * h (linear_before_reset = 0) */

    if (L->b_ih[dir])
        memcpy(gx, L->b_ih[dir], sizeof(float) * 3 * H);
    else
        memset(gx, 0, sizeof(float) * 3 * H);
    K->gemv_acc(3 * H, I, L->w_ih[dir], x, gx);

    if (b_hh)
        memcpy(gh, b_hh, sizeof(float) * 3 * H);
    else
        memset(gh, 0, sizeof(float) * 3 * H);
    /* r and z rows always see h; the n rows see h or r * h */
    const int recurrent_rows = L->linear_before_reset ? 3 * H : 2 * H;
    K->gemv_acc(recurrent_rows, H, w_hh, h, gh);

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
        K->gemv_acc(H, H, w_hh + (size_t)2 * H * H, rh, gh + 2 * H);
        for (int j = 0; j < H; j++)
            n[j] += gh[2 * H + j];
    }
    ll_activate(&act[1], L->clip, n, H);

    /* h = (1 - z) * n + z * h */
    for (int j = 0; j < H; j++)
        h[j] = (1.0f - z[j]) * n[j] + z[j] * h[j];
}
