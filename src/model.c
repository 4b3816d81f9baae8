/* Sizes, the step of a whole model, and whole-sequence runs of one layer. */
#include <string.h>

#include "kernels.h"

int ll_layer_is_recurrent(const ll_layer *L)
{
    return L->kind == LL_LAYER_LSTM || L->kind == LL_LAYER_GRU || L->kind == LL_LAYER_RNN;
}

int ll_layer_h_size(const ll_layer *L)
{
    if (!ll_layer_is_recurrent(L))
        return 0;
    if (L->kind == LL_LAYER_LSTM && L->proj_size > 0)
        return L->proj_size;
    return L->hidden_size;
}

int ll_layer_c_size(const ll_layer *L)
{
    return L->kind == LL_LAYER_LSTM ? L->hidden_size : 0;
}

int ll_layer_output_size(const ll_layer *L)
{
    switch (L->kind) {
    case LL_LAYER_LSTM:
    case LL_LAYER_GRU:
    case LL_LAYER_RNN:
        return L->num_directions * ll_layer_h_size(L);
    case LL_LAYER_DENSE:
        return L->hidden_size;
    default:
        return L->input_size;
    }
}

size_t ll_layer_scratch_bytes(const ll_layer *L)
{
    switch (L->kind) {
    case LL_LAYER_LSTM:
        return ll_lstm_scratch_bytes(L);
    case LL_LAYER_GRU:
        return ll_gru_scratch_bytes(L);
    case LL_LAYER_RNN:
        return ll_rnn_scratch_bytes(L);
    case LL_LAYER_DENSE:
        return ll_dense_scratch_bytes(L);
    default:
        return 0;
    }
}

/* Bytes of an (rows, cols) matrix in the layer's weight dtype, with its scales. */
static size_t matrix_bytes(const ll_layer *L, size_t rows, size_t cols)
{
    if (L->weight_dtype == LL_DTYPE_INT8)
        return rows * cols + rows * sizeof(float);
    return rows * cols * sizeof(float);
}

size_t ll_layer_weight_bytes(const ll_layer *L)
{
    const size_t H = (size_t)L->hidden_size, I = (size_t)L->input_size;
    const size_t f = sizeof(float);
    size_t per_direction = 0;
    switch (L->kind) {
    case LL_LAYER_LSTM:
    case LL_LAYER_GRU:
    case LL_LAYER_RNN: {
        const size_t G = L->kind == LL_LAYER_LSTM ? 4 : L->kind == LL_LAYER_GRU ? 3 : 1;
        const size_t P = (size_t)ll_layer_h_size(L);
        per_direction = matrix_bytes(L, G * H, I) + matrix_bytes(L, G * H, P);
        per_direction += (L->b_ih[0] ? G * H * f : 0) + (L->b_hh[0] ? G * H * f : 0);
        if (L->kind == LL_LAYER_LSTM) {
            per_direction += L->proj_size > 0 ? matrix_bytes(L, P, H) : 0;
            per_direction += L->peephole[0] ? 3 * H * f : 0;
        }
        return per_direction * (size_t)L->num_directions;
    }
    case LL_LAYER_DENSE:
        return matrix_bytes(L, H, I) + (L->bias ? H * f : 0);
    default:
        return 2 * I * f;
    }
}

size_t ll_model_state_bytes(const ll_model *M, int batch)
{
    size_t total = 0;
    for (int l = 0; l < M->num_layers; l++) {
        const ll_layer *L = &M->layers[l];
        total += (size_t)batch * L->num_directions
                 * (size_t)(ll_layer_h_size(L) + ll_layer_c_size(L));
    }
    return total * sizeof(float);
}

/* Scratch of a model step: the largest cell scratch, then two buffers that carry the output
 * of a position-wise layer to the next layer (a recurrent layer's output is its h). */
static size_t max_width(const ll_model *M)
{
    size_t width = 1;
    for (int l = 0; l < M->num_layers; l++) {
        const ll_layer *L = &M->layers[l];
        const size_t in = (size_t)L->input_size, out = (size_t)ll_layer_output_size(L);
        width = in > width ? in : width;
        width = out > width ? out : width;
    }
    return width;
}

/* A model step's scratch: the two carry buffers (2 * max_width floats), then the largest
 * layer scratch, which every layer reuses in turn. */
size_t ll_model_scratch_bytes(const ll_model *M)
{
    size_t cell = 0;
    for (int l = 0; l < M->num_layers; l++) {
        const size_t s = ll_layer_scratch_bytes(&M->layers[l]);
        cell = s > cell ? s : cell;
    }
    return ll_scratch_round(2 * max_width(M) * sizeof(float)) + cell;
}

static void cell_step(const ll_layer *L, int dir, const float *x, float *h, float *c,
                      void *scratch)
{
    switch (L->kind) {
    case LL_LAYER_LSTM:
        ll_lstm_cell(L, dir, x, h, c, scratch);
        break;
    case LL_LAYER_GRU:
        ll_gru_cell(L, dir, x, h, scratch);
        break;
    case LL_LAYER_RNN:
        ll_rnn_cell(L, dir, x, h, scratch);
        break;
    default:
        break;
    }
}

static void position_apply(const ll_layer *L, const float *x, float *y, void *scratch)
{
    if (L->kind == LL_LAYER_DENSE)
        ll_dense_apply(L, x, y, scratch);
    else
        ll_normalize_apply(L, x, y);
}

void ll_model_step(const ll_model *M, int batch, const float *x, float *state, void *scratch,
                   float *out)
{
    const size_t width = max_width(M);
    float *buffers[2] = {(float *)scratch, (float *)scratch + width};
    void *cell_scratch = (unsigned char *)scratch + ll_scratch_round(2 * width * sizeof(float));
    const int in_size = M->layers[0].input_size;
    const int out_size = ll_layer_output_size(&M->layers[M->num_layers - 1]);

    for (int b = 0; b < batch; b++) {
        const float *in = x + (size_t)b * in_size;
        float *layer_state = state;
        int next_buffer = 0;
        for (int l = 0; l < M->num_layers; l++) {
            const ll_layer *L = &M->layers[l];
            if (ll_layer_is_recurrent(L)) {
                /* streams are forward only: one direction, state (batch, h) then (batch, c) */
                const int hs = ll_layer_h_size(L), cs = ll_layer_c_size(L);
                float *h = layer_state + (size_t)b * hs;
                float *c = cs ? layer_state + (size_t)batch * hs + (size_t)b * cs : NULL;
                cell_step(L, 0, in, h, c, cell_scratch);
                layer_state += (size_t)batch * (hs + cs);
                in = h;
            } else {
                float *y = buffers[next_buffer];
                next_buffer ^= 1;
                position_apply(L, in, y, cell_scratch);
                in = y;
            }
        }
        memcpy(out + (size_t)b * out_size, in, sizeof(float) * out_size);
    }
}

void ll_layer_sequence(const ll_layer *L, int batch, int steps, const float *in, float *out,
                       const int32_t *lengths, float *h, float *c, void *scratch)
{
    const int I = L->input_size, O = ll_layer_output_size(L);

    if (!ll_layer_is_recurrent(L)) {
        for (size_t p = 0; p < (size_t)batch * steps; p++)
            position_apply(L, in + p * I, out + p * O, scratch);
        return;
    }

    const int hs = ll_layer_h_size(L), cs = ll_layer_c_size(L);
    for (int dir = 0; dir < L->num_directions; dir++) {
        /* the second direction of a bidirectional layer, or a reverse layer, runs backwards */
        const int backwards = dir == 1 || L->reverse;
        for (int b = 0; b < batch; b++) {
            const int len = lengths ? lengths[b] : steps;
            float *hb = h + ((size_t)dir * batch + b) * hs;
            float *cb = cs ? c + ((size_t)dir * batch + b) * cs : NULL;
            for (int s = 0; s < len; s++) {
                const int t = backwards ? len - 1 - s : s;
                const size_t row = (size_t)b * steps + t;
                cell_step(L, dir, in + row * I, hb, cb, scratch);
                memcpy(out + row * O + (size_t)dir * hs, hb, sizeof(float) * hs);
            }
            for (int t = len; t < steps; t++) {
                const size_t row = (size_t)b * steps + t;
                memset(out + row * O + (size_t)dir * hs, 0, sizeof(float) * hs);
            }
        }
    }
}
