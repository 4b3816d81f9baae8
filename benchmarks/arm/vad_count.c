/*
 * Silero VAD's network, chunk by chunk in C, on the engine's own kernels, for instruction
 * counts under qemu (bench_vad_arm.py runs it with `chunks` T and 2T: the difference divided
 * by T is one chunk, building the model cancelled out):
 *
 *   vad_count float32|int8 CHUNKS [KERNELS]     (KERNELS: a set name, default the best)
 *
 * The layers are silero_vad.onnx's at 16 kHz, as lstmlite converts it: the STFT as a Conv1d
 * whose weight is a Hann-windowed DFT basis (computed as an FFT, float32 in both dtypes, as
 * Model.quantize leaves it), the magnitude, four Conv1d + ReLU (129->128 k3, 128->64 k3 s2,
 * 64->64 k3 s2, 64->128 k3), LSTM(128, 128), ReLU, a 1x1 Conv1d + sigmoid. The weights are
 * random (uniform in +-1/sqrt(fan-in)), int8 with one scale per row; silero's own weights
 * would take the same instructions. One stream, as a device runs it.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lstmlite.h"

#define PI 3.14159265358979323846

#include "bench_common.h"

static ll_layer conv(int C, int L, int M, int K, int stride, int pad0, int pad1, int mode,
                     int act, int int8)
{
    ll_layer layer;
    memset(&layer, 0, sizeof layer);
    layer.kind = LL_LAYER_CONV1D;
    layer.channels = C;
    layer.length = L;
    layer.input_size = C * L;
    layer.hidden_size = M;
    layer.kernel_size = K;
    layer.stride = stride;
    layer.dilation = 1;
    layer.groups = 1;
    layer.pad_begin = pad0;
    layer.pad_end = pad1;
    layer.pad_mode = mode;
    layer.num_directions = 1;
    layer.dense_act.kind = act;
    layer.weight = random_floats((size_t)M * C * K, 1.0f / sqrtf((float)(C * K)));
    layer.bias = random_floats((size_t)M, 0.1f);
    if (int8) {
        layer.weight_dtype = LL_DTYPE_INT8;
        quantize_rows(layer.weight, M, C * K, &layer.q_weight, &layer.s_weight);
    }
    return layer;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: vad_count float32|int8 CHUNKS [KERNELS]\n");
        return 2;
    }
    const int int8 = strcmp(argv[1], "int8") == 0;
    const int chunks = atoi(argv[2]);
    if (ll_kernels_select(argc > 3 ? argv[3] : "auto") != 0) {
        fprintf(stderr, "vad_count: kernels %s are not available\n", argv[3]);
        return 2;
    }
    enum { N = 256, BINS = 129, H = 128 };
    ll_layer layers[9];
    /* the STFT: a Hann window times cos and -sin rows, computed as an FFT */
    layers[0] = conv(1, 576, 2 * BINS, N, 128, 0, 64, LL_PAD_REFLECT, LL_ACT_IDENTITY, 0);
    float *basis = (float *)layers[0].weight;
    for (int k = 0; k < BINS; k++)
        for (int n = 0; n < N; n++) {
            const double window = 0.5 - 0.5 * cos(2 * PI * n / N);
            basis[k * N + n] = (float)(window * cos(2 * PI * k * n / N));
            basis[(BINS + k) * N + n] = (float)(-window * sin(2 * PI * k * n / N));
        }
    layers[0].bias = NULL;
    layers[0].fft_bins = BINS;
    layers[0].fft_sign = -1;
    memset(&layers[1], 0, sizeof layers[1]);
    layers[1].kind = LL_LAYER_MAGNITUDE;
    layers[1].input_size = 2 * BINS * 4;
    layers[1].hidden_size = BINS * 4;
    layers[1].channels = 1;
    layers[1].offsets[1] = BINS * 4;
    layers[2] = conv(BINS, 4, 128, 3, 1, 1, 1, LL_PAD_ZEROS, LL_ACT_RELU, int8);
    layers[3] = conv(128, 4, 64, 3, 2, 1, 1, LL_PAD_ZEROS, LL_ACT_RELU, int8);
    layers[4] = conv(64, 2, 64, 3, 2, 1, 1, LL_PAD_ZEROS, LL_ACT_RELU, int8);
    layers[5] = conv(64, 1, 128, 3, 1, 1, 1, LL_PAD_ZEROS, LL_ACT_RELU, int8);
    lstm_layer(&layers[6], H, H, int8);
    memset(&layers[7], 0, sizeof layers[7]);
    layers[7].kind = LL_LAYER_ELEMENTWISE;
    layers[7].input_size = layers[7].hidden_size = H;
    layers[7].dense_act.kind = LL_ACT_RELU;
    layers[8] = conv(H, 1, 1, 1, 1, 0, 0, LL_PAD_ZEROS, LL_ACT_SIGMOID, int8);
    for (int l = 0; l < 9; l++)
        ll_layer_pack(&layers[l], allocate(ll_layer_packed_bytes(&layers[l]) + 64));
    const ll_model model = {9, layers};
    float *state = allocate(ll_model_state_bytes(&model, 1));
    void *scratch = allocate(ll_model_scratch_bytes(&model, 1));
    float *frames = random_floats((size_t)16 * 576, 0.3f);
    float out[1] = {0};
    double total = 0;
    for (int c = 0; c < chunks; c++) {
        ll_model_step(&model, 1, frames + (size_t)(c % 16) * 576, state, scratch, out);
        total += out[0];
    }
    printf("%d chunks (%s, %s): mean probability %.6f\n", chunks, argv[1],
           ll_kernels_active(), total / (chunks > 0 ? chunks : 1));
    return 0;
}
