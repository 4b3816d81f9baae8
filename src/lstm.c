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
 *
 * With int8 weights each product W v is (q * s) v: v is quantized for the step, the sums are
 * exact int32, and everything after the products is the float32 arithmetic above.
 *
 * One call steps B streams (columns) at once: each product is one pass over its weights for
 * all B (ll_matrix_acc), the elementwise part runs per column. The caller hands in the input
 * part of the gates, b_ih + b_hh + W_ih x (model.c: a stream step computes it for its
 * frame, a sequence run for many steps at once).
 */
#include <math.h>
#include <string.h>

#include "kernels.h"

/* Scratch of B streams: h_full (B, H: o * h_act(c) before the projection); int8 layers add
 * the work of products over B columns of up to H values (h, P <= H wide, then h_full) into up
 * to 4H rows, reused by each product in turn. */
typedef struct {
    size_t h_full, int8[3], bytes;
} lstm_parts;

static lstm_parts lstm_layout(const ll_layer *L, int B)
{
    const int H = L->hidden_size;
    size_t next = 0;
    lstm_parts parts = {0};
    parts.h_full = ll_scratch_take(&next, (size_t)B * H * sizeof(float));
    ll_int8_work_take(&next, L, B, H, 4 * H, parts.int8);
    parts.bytes = next;
    return parts;
}

size_t ll_lstm_scratch_bytes(const ll_layer *L, int B)
{
    return lstm_layout(L, B).bytes;
}

void ll_lstm_cell(const ll_layer *L, int dir, int B, float *gates_all, float *h, float *c,
                  void *scratch)
{
    const int H = L->hidden_size;
    const int P = L->proj_size > 0 ? L->proj_size : H; /* width of h */
    const ll_activation *act = L->act[dir];
    const float *peep = L->peephole[dir];
    const lstm_parts parts = lstm_layout(L, B);
    float *h_full_all = LL_SCRATCH_AT(scratch, parts.h_full, float);
    const ll_int8_work work = ll_int8_work_at(L, scratch, parts.int8);

    /* gates = (b_ih + b_hh + W_ih x, given) + W_hh h */
    ll_matrix_acc(ll_matrix_hh(L, dir), 4 * H, B, P, h, P, gates_all, 4 * H, work);

    for (int b = 0; b < B; b++) {
        float *gates = gates_all + (size_t)b * 4 * H;
        float *gi = gates, *gf = gates + H, *gg = gates + 2 * H, *go = gates + 3 * H;
        float *cb = c + (size_t)b * H;
        float *h_full = h_full_all + (size_t)b * H;

        /* input and forget gates see the old cell through the peepholes (i, o, f order) */
        if (peep) {
            const float *p_i = peep, *p_f = peep + 2 * H;
            for (int j = 0; j < H; j++) {
                gi[j] += p_i[j] * cb[j];
                gf[j] += p_f[j] * cb[j];
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
            cb[j] = gf[j] * cb[j] + gi[j] * gg[j];

        /* the output gate sees the new cell */
        if (peep) {
            const float *p_o = peep + H;
            for (int j = 0; j < H; j++)
                go[j] += p_o[j] * cb[j];
        }
        ll_activate(&act[0], L->clip, go, H);

        /* h = o * h_act(c) */
        memcpy(h_full, cb, sizeof(float) * H);
        ll_activate(&act[2], INFINITY, h_full, H);
        for (int j = 0; j < H; j++)
            h_full[j] *= go[j];
    }

    /* then the optional projection h = W_hr h_full */
    if (L->proj_size > 0) {
        const ll_matrix w_hr = {L->packed_hr[dir], L->q_hr[dir], L->s_hr[dir], L->sums_hr[dir],
                                L->panels_hr[dir]};
        memset(h, 0, sizeof(float) * (size_t)B * P);
        ll_matrix_acc(w_hr, P, B, H, h_full_all, H, h, P, work);
    } else {
        memcpy(h, h_full_all, sizeof(float) * (size_t)B * H);
    }
}
