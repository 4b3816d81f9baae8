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

/* ---- a DFT basis computed as an FFT ----
 * The real DFT of N = 2H windowed samples from one complex FFT of H points: z[m] = x[2m] +
 * i x[2m + 1], Z = FFT_H(z), then X[k] = E[k] + e^{-2 pi i k / N} O[k] with E[k] = (Z[k] +
 * conj Z[H - k]) / 2 and O[k] = (Z[k] - conj Z[H - k]) / 2i (indices mod H). Complex values
 * are kept as separate real and imaginary arrays, and each radix-2 stage has its own run of
 * twiddles, so that a stage's butterflies read contiguous memory and vectorize. The tables,
 * made once by ll_layer_pack: the window (N); the stages' twiddles e^{-2 pi i j / size} for
 * j < size / 2, stage `size` starting at size / 2 - 1 (H - 1 of them: real parts, then
 * imaginary, H each); the split's e^{-2 pi i k / N} for k <= H (real, then imaginary); the
 * bit-reversed order of H (int32). */
size_t ll_conv1d_fft_tables_bytes(const ll_layer *L)
{
    const size_t N = (size_t)L->kernel_size, H = N / 2;
    return sizeof(float) * (N + 2 * H + 2 * (H + 1)) + sizeof(int32_t) * H;
}

typedef struct {
    const float *window, *stage_re, *stage_im, *split_re, *split_im;
    const int32_t *reverse;
} fft_tables;

static fft_tables tables_at(const float *base, int N)
{
    const int H = N / 2;
    fft_tables t;
    t.window = base;
    t.stage_re = base + N;
    t.stage_im = t.stage_re + H;
    t.split_re = t.stage_im + H;
    t.split_im = t.split_re + H + 1;
    t.reverse = (const int32_t *)(t.split_im + H + 1);
    return t;
}

void ll_conv1d_fft_tables(const ll_layer *L, float *tables)
{
    const int N = L->kernel_size, H = N / 2;
    const double pi = 3.14159265358979323846;
    const fft_tables t = tables_at(tables, N);
    memcpy((float *)t.window, L->weight, sizeof(float) * N); /* row 0: window[n] cos(0) */
    for (int size = 2; size <= H; size *= 2)
        for (int j = 0; j < size / 2; j++) {
            ((float *)t.stage_re)[size / 2 - 1 + j] = (float)cos(2 * pi * j / size);
            ((float *)t.stage_im)[size / 2 - 1 + j] = (float)-sin(2 * pi * j / size);
        }
    for (int k = 0; k <= H; k++) {
        ((float *)t.split_re)[k] = (float)cos(2 * pi * k / N);
        ((float *)t.split_im)[k] = (float)-sin(2 * pi * k / N);
    }
    int bits = 0;
    while ((1 << bits) < H)
        bits++;
    for (int m = 0; m < H; m++) {
        int r = 0;
        for (int b = 0; b < bits; b++)
            r |= ((m >> b) & 1) << (bits - 1 - b);
        ((int32_t *)t.reverse)[m] = r;
    }
}

/* Four radix-2 butterflies (a, b) <- (a + w b, a - w b) on split complex arrays, with GCC's
 * vector extensions (SSE on x86-64, NEON on ARM; the loads through memcpy, which compiles
 * to unaligned vector loads): the compiler leaves the scalar loop scalar. */
typedef float ll_v4 __attribute__((vector_size(16)));

static inline void butterflies4(float *ar, float *ai, float *br, float *bi, const float *wr,
                                const float *wi)
{
    ll_v4 vr, vi, xr, xi, yr, yi;
    memcpy(&vr, wr, 16);
    memcpy(&vi, wi, 16);
    memcpy(&xr, ar, 16);
    memcpy(&xi, ai, 16);
    memcpy(&yr, br, 16);
    memcpy(&yi, bi, 16);
    const ll_v4 tr = vr * yr - vi * yi, ti = vr * yi + vi * yr;
    const ll_v4 sum_r = xr + tr, sum_i = xi + ti, difference_r = xr - tr,
                difference_i = xi - ti;
    memcpy(ar, &sum_r, 16);
    memcpy(ai, &sum_i, 16);
    memcpy(br, &difference_r, 16);
    memcpy(bi, &difference_i, 16);
}

/* row[k] += Re X[k], row[bins + k] += -fft_sign Im X[k] for k < bins: what the basis rows
 * give (Im X = -sum x w sin). work: N floats of scratch. */
static void fft_patch(const ll_layer *L, const float *x, float *work, float *row)
{
    const int N = L->kernel_size, H = N / 2, bins = L->fft_bins;
    const fft_tables t = tables_at(L->fft_tables, N);
    float *restrict zr = work, *restrict zi = work + H;
    for (int m = 0; m < H; m++) {
        const int r = t.reverse[m];
        zr[r] = t.window[2 * m] * x[2 * m];
        zi[r] = t.window[2 * m + 1] * x[2 * m + 1];
    }
    for (int size = 2; size <= H; size *= 2) { /* radix-2, decimation in time */
        const int half = size / 2;
        const float *wr = t.stage_re + half - 1, *wi = t.stage_im + half - 1;
        for (int start = 0; start < H; start += size) {
            float *ar = zr + start, *ai = zi + start, *br = ar + half, *bi = ai + half;
            int j = 0;
            for (; j + 4 <= half; j += 4) /* four butterflies at once, in vector registers */
                butterflies4(ar + j, ai + j, br + j, bi + j, wr + j, wi + j);
            for (; j < half; j++) {
                const float tr = wr[j] * br[j] - wi[j] * bi[j];
                const float ti = wr[j] * bi[j] + wi[j] * br[j];
                br[j] = ar[j] - tr;
                bi[j] = ai[j] - ti;
                ar[j] += tr;
                ai[j] += ti;
            }
        }
    }
    const float imaginary_sign = L->fft_sign > 0 ? 1.0f : -1.0f;
    for (int k = 0; k < bins; k++) {
        const int i = k < H ? k : k - H, c = k == 0 ? 0 : H - k; /* k mod H, (H - k) mod H */
        const float er = 0.5f * (zr[i] + zr[c]), ei = 0.5f * (zi[i] - zi[c]);
        const float or_ = 0.5f * (zi[i] + zi[c]), oi = -0.5f * (zr[i] - zr[c]);
        const float xr = er + t.split_re[k] * or_ - t.split_im[k] * oi;
        const float xi = ei + t.split_re[k] * oi + t.split_im[k] * or_;
        row[k] += xr;
        row[bins + k] -= imaginary_sign * xi;
    }
}

/* The scratch of N columns of a Conv1d: the patches of one group for all of them, the
 * position-major product, the int8 work of a group's product, the FFT's complex buffer. One
 * layout for sizing and carving. */
typedef struct {
    size_t patches, product, int8[3], fft, bytes;
} conv_parts;

static conv_parts conv_layout(const ll_layer *L, int N)
{
    const size_t positions = (size_t)N * ll_conv1d_out_length(L);
    const int patch = L->channels / L->groups * L->kernel_size;
    size_t next = 0;
    conv_parts parts = {0};
    parts.patches = ll_scratch_take(&next, positions * patch * sizeof(float));
    parts.product = ll_scratch_take(&next, positions * L->hidden_size * sizeof(float));
    ll_int8_work_take(&next, L, (int)positions, patch, L->hidden_size / L->groups,
                      parts.int8);
    parts.fft = ll_scratch_take(&next, L->fft_bins ? sizeof(float) * L->kernel_size : 0);
    parts.bytes = next;
    return parts;
}

size_t ll_conv1d_scratch_bytes(const ll_layer *L, int N)
{
    return conv_layout(L, N).bytes;
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
    const int positions = N * out_length; /* the columns of one product: every stream's */
    const conv_parts parts = conv_layout(L, N);
    float *patches = LL_SCRATCH_AT(scratch, parts.patches, float);
    float *product = LL_SCRATCH_AT(scratch, parts.product, float);
    const ll_int8_work work = ll_int8_work_at(L, scratch, parts.int8);
    const ll_matrix weight = {L->packed_weight, L->q_weight, L->s_weight, L->sums_weight,
                              L->panels_weight};
    /* each group's matrix was packed on its own (pack.c): its float32 panels start at
     * g Mg patch floats, its int8 panels at g times one group's panel bytes */
    const size_t group_panels = ll_s8_panels_bytes(Mg, patch);
    for (int q = 0; q < positions; q++) {
        float *row = product + (size_t)q * M;
        if (L->bias)
            memcpy(row, L->bias, sizeof(float) * M);
        else
            memset(row, 0, sizeof(float) * M);
    }
    if (L->fft_bins) { /* one group, one channel: the patches are the windows' samples */
        for (int n = 0; n < N; n++) {
            gather_patches(L, X + (size_t)n * ldx, 0, out_length, patches);
            for (int p = 0; p < out_length; p++)
                fft_patch(L, patches + (size_t)p * patch,
                          LL_SCRATCH_AT(scratch, parts.fft, float),
                          product + ((size_t)n * out_length + p) * M);
        }
    }
    for (int g = 0; g < G && !L->fft_bins; g++) {
        /* the group's patches of every stream, then one pass over its rows for all */
        for (int n = 0; n < N; n++)
            gather_patches(L, X + (size_t)n * ldx, g * (L->channels / G), out_length,
                           patches + (size_t)n * out_length * patch);
        ll_matrix rows = ll_matrix_rows(weight, g * Mg, patch);
        rows.panels = weight.panels ? weight.panels + (size_t)g * group_panels : NULL;
        ll_matrix_acc(rows, Mg, positions, patch, patches, patch, product + (size_t)g * Mg, M,
                      work);
    }
    for (int n = 0; n < N; n++) { /* position-major product -> channel-major output */
        const float *from = product + (size_t)n * out_length * M;
        float *y = Y + (size_t)n * ldy;
        for (int m = 0; m < M; m++)
            for (int p = 0; p < out_length; p++)
                y[(size_t)m * out_length + p] = from[(size_t)p * M + m];
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
