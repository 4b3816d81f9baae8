/* Layers that encode one step's frame: Conv1d over the step's input viewed as (channels,
 * length), the magnitude of pairs of runs of it, and the mean over its positions.
 *
 * A Conv1d is the layer's GEMM over patches: for each group, the patches of the step's
 * input (one column of channels / groups * kernel_size values per output position, padded
 * by the layer's mode) are gathered into scratch, and the group's rows of the weight multiply
 * them all in one pass (ll_matrix_acc: packed float32 panels, or int8 with each patch
 * quantized on its own). The product comes out position-major, (out_length, out channels);
 * one pass turns it channel-major, as ONNX and PyTorch lay out a (C, L) tensor, so the next
 * layer reads what the graph's next op reads. */
#include <math.h>
#include <string.h>

#include "kernels.h"

int ll_conv1d_out_length(const ll_layer *L)
{
    const long span = (long)L->dilation * (L->kernel_size - 1) + 1;
    const long padded = (long)L->length + L->pad_begin + L->pad_end;
    return padded < span ? 0 : (int)((padded - span) / L->stride + 1);
}

/* Where position i (possibly outside 0..n-1) of a run of n values reads from, or -1 for a
 * zero. The binding checks the pads against n for the modes that need it. */
static inline int source_position(int i, int n, int mode)
{
    if (i >= 0 && i < n)
        return i;
    switch (mode) {
    case LL_PAD_REFLECT: /* pads < n: one reflection reaches inside */
        return i < 0 ? -i : 2 * (n - 1) - i;
    case LL_PAD_REPLICATE:
        return i < 0 ? 0 : n - 1;
    case LL_PAD_CIRCULAR: /* pads <= n */
        return i < 0 ? i + n : i - n;
    default:
        return -1;
    }
}

/* The scratch of one column of a Conv1d: the patches of one group, the position-major
 * product, and the int8 work of a group's product. One layout for sizing and carving. */
typedef struct {
    size_t patches, product, int8[3], bytes;
} conv_parts;

static conv_parts conv_layout(const ll_layer *L)
{
    const int out_length = ll_conv1d_out_length(L);
    const int patch = L->channels / L->groups * L->kernel_size;
    size_t next = 0;
    conv_parts parts = {0};
    parts.patches = ll_scratch_take(&next, (size_t)out_length * patch * sizeof(float));
    parts.product = ll_scratch_take(&next, (size_t)out_length * L->hidden_size * sizeof(float));
    ll_int8_work_take(&next, L, out_length, patch, L->hidden_size / L->groups, parts.int8);
    parts.bytes = next;
    return parts;
}

size_t ll_conv1d_scratch_bytes(const ll_layer *L)
{
    return conv_layout(L).bytes;
}

/* patches[p * patch + c * kernel_size + k] = x[(channel0 + c) * length + p * stride + k *
 * dilation - pad_begin], padded: the columns of one group's product, in the order of the
 * weight's rows (PyTorch's (in / groups, kernel) flattened). */
static void gather_patches(const ll_layer *L, const float *x, int channel0, int out_length,
                           float *patches)
{
    const int Cg = L->channels / L->groups, K = L->kernel_size, n = L->length;
    const int patch = Cg * K;
    for (int p = 0; p < out_length; p++) {
        const int start = p * L->stride - L->pad_begin;
        const int last = start + (K - 1) * L->dilation;
        float *column = patches + (size_t)p * patch;
        for (int c = 0; c < Cg; c++) {
            const float *run = x + (size_t)(channel0 + c) * n;
            float *to = column + (size_t)c * K;
            if (start >= 0 && last < n && L->dilation == 1) {
                memcpy(to, run + start, sizeof(float) * K); /* inside: a straight copy */
                continue;
            }
            for (int k = 0; k < K; k++) {
                const int at = source_position(start + k * L->dilation, n, L->pad_mode);
                to[k] = at < 0 ? 0.0f : run[at];
            }
        }
    }
}

void ll_conv1d_apply(const ll_layer *L, int N, const float *X, int ldx, float *Y, int ldy,
                     void *scratch)
{
    const int M = L->hidden_size, G = L->groups, Mg = M / G;
    const int patch = L->channels / G * L->kernel_size;
    const int out_length = ll_conv1d_out_length(L);
    const conv_parts parts = conv_layout(L);
    float *patches = LL_SCRATCH_AT(scratch, parts.patches, float);
    float *product = LL_SCRATCH_AT(scratch, parts.product, float);
    const ll_int8_work work = ll_int8_work_at(L, scratch, parts.int8);
    const ll_matrix weight = {L->packed_weight, L->q_weight, L->s_weight, L->sums_weight,
                              L->panels_weight};
    /* each group's matrix was packed on its own (pack.c): its float32 panels start at
     * g Mg patch floats, its int8 panels at g times one group's panel bytes */
    const size_t group_panels = ll_s8_panels_bytes(Mg, patch);
    for (int n = 0; n < N; n++) {
        const float *x = X + (size_t)n * ldx;
        float *y = Y + (size_t)n * ldy;
        for (int p = 0; p < out_length; p++) {
            float *row = product + (size_t)p * M;
            if (L->bias)
                memcpy(row, L->bias, sizeof(float) * M);
            else
                memset(row, 0, sizeof(float) * M);
        }
        for (int g = 0; g < G; g++) {
            ll_matrix rows = ll_matrix_rows(weight, g * Mg, patch);
            rows.panels = weight.panels ? weight.panels + (size_t)g * group_panels : NULL;
            gather_patches(L, x, g * (L->channels / G), out_length, patches);
            ll_matrix_acc(rows, Mg, out_length, patch, patches, patch, product + (size_t)g * Mg,
                          M, work);
        }
        /* position-major product -> channel-major output */
        for (int m = 0; m < M; m++)
            for (int p = 0; p < out_length; p++)
                y[(size_t)m * out_length + p] = product[(size_t)p * M + m];
        ll_activate(&L->dense_act, INFINITY, y, M * out_length);
    }
}

void ll_magnitude_apply(const ll_layer *L, int N, const float *X, int ldx, float *Y, int ldy)
{
    const int rows = L->channels, per_row = L->hidden_size / L->channels;
    for (int n = 0; n < N; n++) {
        for (int r = 0; r < rows; r++) {
            const size_t in = (size_t)n * ldx + (size_t)r * L->length;
            const float *re = X + in + L->offsets[0], *im = X + in + L->offsets[1];
            float *y = Y + (size_t)n * ldy + (size_t)r * per_row;
            for (int i = 0; i < per_row; i++) /* as the graph computes it: squares, sum, root */
                y[i] = sqrtf(re[i] * re[i] + im[i] * im[i]);
        }
    }
}

void ll_mean_apply(const ll_layer *L, int N, const float *X, int ldx, float *Y, int ldy)
{
    const int C = L->channels, n_positions = L->length;
    for (int n = 0; n < N; n++) {
        const float *x = X + (size_t)n * ldx;
        float *y = Y + (size_t)n * ldy;
        for (int c = 0; c < C; c++) {
            float sum = 0.0f;
            for (int p = 0; p < n_positions; p++)
                sum += x[(size_t)c * n_positions + p];
            y[c] = sum / (float)n_positions;
        }
    }
}
