/*
 * An LSTM stack stepped frame by frame in C, on the engine's own kernels, for instruction
 * counts under qemu (bench_arm.py runs it with `steps` T and 2T: the difference divided by T
 * is one step, model building and start-up cancelled out):
 *
 *   step_count I H L float32|int8 STEPS [KERNELS]     (KERNELS: a set name, default the best)
 *
 * The weights are bench_int8.py's shapes ((4H, I or H), (4H, H), biases; uniform in
 * +-1/sqrt(H)), int8 with one scale per row as lstmlite.quantize makes them. One stream
 * (batch 1), as a device steps it; the frames are random and fixed.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lstmlite.h"

#include "bench_common.h"

int main(int argc, char **argv)
{
    if (argc < 6 || argc > 7) {
        fprintf(stderr, "usage: step_count I H L float32|int8 STEPS [KERNELS]\n");
        return 2;
    }
    const int I = atoi(argv[1]), H = atoi(argv[2]), L = atoi(argv[3]);
    const int int8 = strcmp(argv[4], "int8") == 0;
    const long steps = atol(argv[5]);
    if (I < 1 || H < 1 || L < 1 || steps < 0 || (!int8 && strcmp(argv[4], "float32"))) {
        fprintf(stderr, "step_count: bad arguments\n");
        return 2;
    }
    /* the package chooses its set at import; here the best one unless a name is given */
    if (ll_kernels_select(argc == 7 ? argv[6] : NULL) != 0) {
        fprintf(stderr, "step_count: kernel set %s is not available here\n", argv[6]);
        return 3;
    }
    ll_layer *layers = allocate(sizeof(ll_layer) * (size_t)L);
    for (int k = 0; k < L; k++) {
        ll_layer *layer = &layers[k];
        lstm_layer(layer, k == 0 ? I : H, H, int8);
        const size_t packed = ll_layer_packed_bytes(layer);
        ll_layer_pack(layer, packed ? allocate(packed) : NULL);
    }
    const ll_model model = {L, layers};
    float *state = allocate(ll_model_state_bytes(&model, 1));
    void *scratch = allocate(ll_model_scratch_bytes(&model, 1));
    float *frames = random_floats((size_t)16 * I, 1.0f);
    float *out = allocate((size_t)H * sizeof(float));
    for (long t = 0; t < steps; t++)
        ll_model_step(&model, 1, frames + (t % 16) * I, state, scratch, out);
    printf("%s %s %g\n", ll_kernels_active(), argv[4], (double)out[0]);
    return 0;
}
