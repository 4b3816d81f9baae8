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
 */
#include <math.h>
#include <string.h>

#include "kernels.h"

/* Scratch: gates (4H floats), h_full (H floats: o * h_act(c) before the projection); int8
 * layers add one quantized vector (the longer of x and h_full; h is P < H wide) and 4H int32
 * sums, reused by each product in turn. */
typedef struct {
    size_t gates, h_full, qv, acc, bytes;
} lstm_parts;

static lstm_parts lstm_layout(const ll_layer *L)
{
    const size_t H = (size_t)L->hidden_size, I = (size_t)L->input_size;
    size_t next = 0;
    lstm_parts parts = {0};
    parts.gates = ll_scratch_take(&next, 4 * H * sizeof(float));
    parts.h_full = ll_scratch_take(&next, H * sizeof(float));
    if (L->weight_dtype == LL_DTYPE_INT8) {
        parts.qv = ll_scratch_take(&next, I > H ? I : H);
        parts.acc = ll_scratch_take(&next, 4 * H * sizeof(int32_t));
    }
    parts.bytes = next;
    return parts;
}

size_t ll_lstm_scratch_bytes(const ll_layer *L)
{
    return lstm_layout(L).bytes;
}

void ll_lstm_cell(const ll_layer *L, int dir, const float *x, float *h, float *c,
                  void *scratch)
{
    const ll_kernel_table *K = ll_active_kernels;
    const int H = L->hidden_size, I = L->input_size;
    const int P = L->proj_size > 0 ? L->proj_size : H; /* width of h */
    const int int8 = L->weight_dtype == LL_DTYPE_INT8;
    const ll_activation *act = L->act[dir];
    const float *peep = L->peephole[dir];
    const lstm_parts parts = lstm_layout(L);
    float *gates = LL_SCRATCH_AT(scratch, parts.gates, float);
    float *gi = gates, *gf = gates + H, *gg = gates + 2 * H, *go = gates + 3 * H;
    float *h_full = LL_SCRATCH_AT(scratch, parts.h_full, float);
    int8_t *qv = int8 ? LL_SCRATCH_AT(scratch, parts.qv, int8_t) : NULL;
    int32_t *acc = int8 ? LL_SCRATCH_AT(scratch, parts.acc, int32_t) : NULL;

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
    if (int8) {
        ll_int8_matvec_acc(4 * H, I, L->q_ih[dir], L->s_ih[dir], x, qv, acc, gates);
        ll_int8_matvec_acc(4 * H, P, L->q_hh[dir], L->s_hh[dir], h, qv, acc, gates);
    } else {
        K->gemv2_acc(4 * H, I, L->w_ih[dir], x, P, L->w_hh[dir], h, gates);
    }

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
        if (int8)
            ll_int8_matvec_acc(P, H, L->q_hr[dir], L->s_hr[dir], h_full, qv, acc, h);
        else
            K->gemv_acc(P, H, L->w_hr[dir], h_full, h);
    } else {
        memcpy(h, h_full, sizeof(float) * H);
    }
}
