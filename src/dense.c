/* Position-wise layers: Dense (y = act(W x + b)) and Normalize (elementwise affine). */
#include <math.h>
#include <string.h>

#include "kernels.h"

/* Scratch of an int8 Dense: the quantized input (I bytes) and O int32 sums; none in float. */
typedef struct {
    size_t qv, acc, bytes;
} dense_parts;

static dense_parts dense_layout(const ll_layer *L)
{
    size_t next = 0;
    dense_parts parts = {0};
    if (L->kind == LL_LAYER_DENSE && L->weight_dtype == LL_DTYPE_INT8) {
        parts.qv = ll_scratch_take(&next, (size_t)L->input_size);
        parts.acc = ll_scratch_take(&next, (size_t)L->hidden_size * sizeof(int32_t));
    }
    parts.bytes = next;
    return parts;
}

size_t ll_dense_scratch_bytes(const ll_layer *L)
{
    return dense_layout(L).bytes;
}

void ll_dense_apply(const ll_layer *L, const float *x, float *y, void *scratch)
{
    const int O = L->hidden_size;
    if (L->bias)
        memcpy(y, L->bias, sizeof(float) * O);
    else
        memset(y, 0, sizeof(float) * O);
    if (L->weight_dtype == LL_DTYPE_INT8) {
        const dense_parts parts = dense_layout(L);
        ll_int8_matvec_acc(O, L->input_size, L->q_weight, L->s_weight, x,
                           LL_SCRATCH_AT(scratch, parts.qv, int8_t),
                           LL_SCRATCH_AT(scratch, parts.acc, int32_t), y);
    } else {
        ll_active_kernels->gemv_acc(O, L->input_size, L->weight, x, y);
    }
    ll_activate(&L->dense_act, INFINITY, y, O);
}

void ll_normalize_apply(const ll_layer *L, const float *x, float *y)
{
    const int n = L->input_size;
    const float *a = L->norm_a, *b = L->norm_b;
    if (L->normalize_mode == LL_NORMALIZE_MEAN_STD) {
        /* a true division, not a multiplication by 1/std: the same bits as the graph it
         * replaces (Sub then Div) */
        for (int i = 0; i < n; i++)
            y[i] = (x[i] - a[i]) / b[i];
    } else {
        for (int i = 0; i < n; i++)
            y[i] = x[i] * a[i] + b[i];
    }
}
