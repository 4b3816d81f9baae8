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
 * exact int32, and everything after the products is the float32 arithmetic above. One call
 * steps B streams (columns), each product one pass over its weights for all B. The caller
 * hands in gx (model.c: for a stream's frame, or for many steps of a sequence at once).
 */
#include <string.h>

#include "kernels.h"

/* Scratch of B streams: gh (B, 3H: the recurrent part of r, z, n), rh (B, H: r * h for
 * linear_before_reset = 0); int8 layers add the work of products over B columns of H values
 * into up to 3H rows. */
typedef struct {
    size_t gh, rh, int8[3], bytes;
} gru_parts;

static gru_parts gru_layout(const ll_layer *L, int B)
{
    const int H = L->hidden_size;
    size_t next = 0;
    gru_parts parts = {0};
    parts.gh = ll_scratch_take(&next, (size_t)B * 3 * H * sizeof(float));
    parts.rh = ll_scratch_take(&next, (size_t)B * H * sizeof(float));
    ll_int8_work_take(&next, L, B, H, 3 * H, parts.int8);
    parts.bytes = next;
    return parts;
}

size_t ll_gru_scratch_bytes(const ll_layer *L, int B)
{
    return gru_layout(L, B).bytes;
}

void ll_gru_cell(const ll_layer *L, int dir, int B, float *gx_all, float *h, void *scratch)
{
    const int H = L->hidden_size, G = 3 * H;
    const ll_activation *act = L->act[dir];
    const float *b_hh = L->b_hh[dir];
    const gru_parts parts = gru_layout(L, B);
    float *gh_all = LL_SCRATCH_AT(scratch, parts.gh, float);
    float *rh_all = LL_SCRATCH_AT(scratch, parts.rh, float);
    const ll_matrix w_hh = ll_matrix_hh(L, dir);
    const ll_int8_work work = ll_int8_work_at(L, scratch, parts.int8);

    for (int b = 0; b < B; b++) {
        if (b_hh)
            memcpy(gh_all + (size_t)b * G, b_hh, sizeof(float) * G);
        else
            memset(gh_all + (size_t)b * G, 0, sizeof(float) * G);
    }
    /* r and z rows always see h; the n rows see h or r * h (W_hh is packed in those two parts,
     * pack.c): with h, both parts in one call (h quantized once for int8) */
    if (L->linear_before_reset)
        ll_matrix_acc_two_parts(w_hh, 2 * H, G, B, H, h, H, gh_all, G, work);
    else
        ll_matrix_acc(w_hh, 2 * H, B, H, h, H, gh_all, G, work);

    for (int b = 0; b < B; b++) {
        float *gx = gx_all + (size_t)b * G, *gh = gh_all + (size_t)b * G;
        float *r = gx, *z = gx + H;
        for (int j = 0; j < 2 * H; j++)
            gx[j] += gh[j];
        ll_activate(&act[0], L->clip, r, H);
        ll_activate(&act[0], L->clip, z, H);
        if (!L->linear_before_reset) {
            const float *hb = h + (size_t)b * H;
            float *rh = rh_all + (size_t)b * H;
            for (int j = 0; j < H; j++)
                rh[j] = r[j] * hb[j];
        }
    }
    if (!L->linear_before_reset)
        ll_matrix_acc(ll_matrix_rows(w_hh, 2 * H, H), H, B, H, rh_all, H, gh_all + 2 * H, G,
                      work);

    for (int b = 0; b < B; b++) {
        float *gx = gx_all + (size_t)b * G, *gh = gh_all + (size_t)b * G;
        float *r = gx, *z = gx + H, *n = gx + 2 * H;
        float *hb = h + (size_t)b * H;
        if (L->linear_before_reset) {
            for (int j = 0; j < H; j++)
                n[j] += r[j] * gh[2 * H + j];
        } else {
            for (int j = 0; j < H; j++)
                n[j] += gh[2 * H + j];
        }
        ll_activate(&act[1], L->clip, n, H);

        /* h = (1 - z) * n + z * h */
        for (int j = 0; j < H; j++)
            hb[j] = (1.0f - z[j]) * n[j] + z[j] * hb[j];
    }
}
