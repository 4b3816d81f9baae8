/* Position-wise layers: Dense (y = act(W x + b)) and Normalize (elementwise affine). */
#include <math.h>
#include <string.h>

#include "kernels.h"

void ll_dense_apply(const ll_layer *L, const float *x, float *y)
{
    const int O = L->hidden_size;
    if (L->bias)
        memcpy(y, L->bias, sizeof(float) * O);
    else
        memset(y, 0, sizeof(float) * O);
    ll_active_kernels->gemv_acc(O, L->input_size, L->weight, x, y);
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
