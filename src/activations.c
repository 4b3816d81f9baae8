/* The activation set of ONNX's recurrent operators and the Dense head's vector activations.
 * Sigmoid, tanh and exp go through the kernel table (they dominate a step's activation cost);
 * the rarer ones are plain loops here. */
#include <math.h>

#include "kernels.h"

static const char *const activation_names[LL_ACT_COUNT] = {
    [LL_ACT_IDENTITY] = "Identity",
    [LL_ACT_SIGMOID] = "Sigmoid",
    [LL_ACT_TANH] = "Tanh",
    [LL_ACT_RELU] = "Relu",
    [LL_ACT_HARD_SIGMOID] = "HardSigmoid",
    [LL_ACT_LEAKY_RELU] = "LeakyRelu",
    [LL_ACT_THRESHOLDED_RELU] = "ThresholdedRelu",
    [LL_ACT_SCALED_TANH] = "ScaledTanh",
    [LL_ACT_AFFINE] = "Affine",
    [LL_ACT_ELU] = "Elu",
    [LL_ACT_SOFTSIGN] = "Softsign",
    [LL_ACT_SOFTPLUS] = "Softplus",
    [LL_ACT_SOFTMAX] = "Softmax",
    [LL_ACT_LOG_SOFTMAX] = "LogSoftmax",
};

const char *ll_activation_name(int kind)
{
    if (kind < 0 || kind >= LL_ACT_COUNT)
        return NULL;
    return activation_names[kind];
}

static void clip_in_place(float *x, int n, float clip)
{
    if (isinf(clip))
        return;
    for (int i = 0; i < n; i++) {
        float v = x[i];
        v = v > clip ? clip : v; /* comparisons keep NaN */
        x[i] = v < -clip ? -clip : v;
    }
}

/* Softmax over n floats: subtract the maximum first so that no exponential overflows. */
static void softmax(float *x, int n, int take_log)
{
    const ll_kernel_table *K = ll_active_kernels;
    float max = x[0];
    for (int i = 1; i < n; i++)
        max = x[i] > max ? x[i] : max;
    for (int i = 0; i < n; i++)
        x[i] -= max;
    if (take_log) {
        /* log_softmax = (x - max) - log(sum e^(x - max)), exact libm log for the one sum */
        float sum = 0.0f;
        for (int i = 0; i < n; i++)
            sum += expf(x[i]);
        const float log_sum = logf(sum);
        for (int i = 0; i < n; i++)
            x[i] -= log_sum;
    } else {
        K->exp(x, x, n);
        float sum = 0.0f;
        for (int i = 0; i < n; i++)
            sum += x[i];
        const float inv = 1.0f / sum;
        for (int i = 0; i < n; i++)
            x[i] *= inv;
    }
}

void ll_activate(const ll_activation *act, float clip, float *x, int n)
{
    const ll_kernel_table *K = ll_active_kernels;
    const float alpha = act->alpha, beta = act->beta;
    switch (act->kind) {
    case LL_ACT_SIGMOID:
        K->sigmoid(x, n, clip);
        return;
    case LL_ACT_TANH:
        K->tanh(x, n, clip);
        return;
    case LL_ACT_SOFTMAX:
        clip_in_place(x, n, clip);
        softmax(x, n, 0);
        return;
    case LL_ACT_LOG_SOFTMAX:
        clip_in_place(x, n, clip);
        softmax(x, n, 1);
        return;
    default:
        break;
    }
    clip_in_place(x, n, clip);
    switch (act->kind) {
    case LL_ACT_IDENTITY:
        break;
    case LL_ACT_RELU:
        for (int i = 0; i < n; i++)
            x[i] = x[i] < 0.0f ? 0.0f : x[i]; /* keeps NaN */
        break;
    case LL_ACT_HARD_SIGMOID:
        for (int i = 0; i < n; i++) {
            float v = alpha * x[i] + beta;
            v = v < 0.0f ? 0.0f : v;
            x[i] = v > 1.0f ? 1.0f : v;
        }
        break;
    case LL_ACT_LEAKY_RELU:
        for (int i = 0; i < n; i++)
            x[i] = x[i] < 0.0f ? alpha * x[i] : x[i];
        break;
    case LL_ACT_THRESHOLDED_RELU:
        for (int i = 0; i < n; i++)
            x[i] = x[i] > alpha ? x[i] : (x[i] != x[i] ? x[i] : 0.0f);
        break;
    case LL_ACT_SCALED_TANH:
        for (int i = 0; i < n; i++)
            x[i] *= beta;
        K->tanh(x, n, INFINITY);
        for (int i = 0; i < n; i++)
            x[i] *= alpha;
        break;
    case LL_ACT_AFFINE:
        for (int i = 0; i < n; i++)
            x[i] = alpha * x[i] + beta;
        break;
    case LL_ACT_ELU:
        for (int i = 0; i < n; i++)
            x[i] = x[i] < 0.0f ? alpha * expm1f(x[i]) : x[i];
        break;
    case LL_ACT_SOFTSIGN:
        for (int i = 0; i < n; i++)
            x[i] = x[i] / (1.0f + fabsf(x[i]));
        break;
    case LL_ACT_SOFTPLUS:
        /* log(1 + e^x) = max(x, 0) + log1p(e^-|x|): no overflow for large x */
        for (int i = 0; i < n; i++) {
            const float v = x[i];
            x[i] = (v > 0.0f ? v : 0.0f) + log1pf(expf(-fabsf(v)));
        }
        break;
    default:
        break; /* unknown kinds are rejected before a layer reaches C */
    }
}
