/* Position-wise layers: Dense (y = act(W x + b)), Normalize (elementwise affine) and
 * Elementwise (y = act(x)). */
#include <math.h>
#include <string.h>

#include "kernels.h"

/* Scratch of an int8 Dense over N positions: the work of one product over N columns (the
 * quantized inputs, their scales, the int32 sums); none in float32. */
size_t ll_dense_scratch_bytes(const ll_layer *L, int N)
{
    return ll_int8_work_bytes(L, N, L->input_size, L->hidden_size);
}

void ll_dense_apply(const ll_layer *L, int N, const float *X, int ldx, float *Y, int ldy,
                    void *scratch)
{
    const int O = L->hidden_size;
    const ll_matrix weight = {L->packed_weight, L->q_weight, L->s_weight, L->sums_weight,
                              L->panels_weight};
    const ll_int8_work work = ll_int8_work_alone(L, scratch, N, L->input_size, O);
    for (int n = 0; n < N; n++) {
        float *y = Y + (size_t)n * ldy;
        if (L->bias)
            memcpy(y, L->bias, sizeof(float) * O);
        else
            memset(y, 0, sizeof(float) * O);
    }
    ll_matrix_acc(weight, O, N, L->input_size, X, ldx, Y, ldy, work);
    for (int n = 0; n < N; n++)
        ll_activate(&L->dense_act, INFINITY, Y + (size_t)n * ldy, O);
}

void ll_normalize_apply(const ll_layer *L, int N, const float *X, int ldx, float *Y, int ldy)
{
    const int n_features = L->input_size;
    const float *a = L->norm_a, *b = L->norm_b;
    for (int n = 0; n < N; n++) {
        const float *x = X + (size_t)n * ldx;
        float *y = Y + (size_t)n * ldy;
        if (L->normalize_mode == LL_NORMALIZE_MEAN_STD) {
            /* a true division, not a multiplication by 1/std: the same bits as the graph it
             * replaces (Sub then Div) */
            for (int i = 0; i < n_features; i++)
                y[i] = (x[i] - a[i]) / b[i];
        } else {
            for (int i = 0; i < n_features; i++)
                y[i] = x[i] * a[i] + b[i];
        }
    }
}

void ll_elementwise_apply(const ll_layer *L, int N, const float *X, int ldx, float *Y, int ldy)
{
    const int n_features = L->input_size;
    for (int n = 0; n < N; n++) {
        float *y = Y + (size_t)n * ldy;
        memcpy(y, X + (size_t)n * ldx, sizeof(float) * n_features);
        ll_activate(&L->dense_act, INFINITY, y, n_features);
    }
}
