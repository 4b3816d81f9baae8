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

size_t ll_layer_scratch_bytes(const ll_layer *L, int batch)
{
    switch (L->kind) {
    case LL_LAYER_LSTM:
        return ll_lstm_scratch_bytes(L, batch);
    case LL_LAYER_GRU:
        return ll_gru_scratch_bytes(L, batch);
    case LL_LAYER_RNN:
        return ll_rnn_scratch_bytes(L, batch);
    case LL_LAYER_DENSE:
        return ll_dense_scratch_bytes(L, batch);
    default:
        return 0;
    }
}

int ll_layer_gate_rows(const ll_layer *L)
{
    const int G = L->kind == LL_LAYER_LSTM ? 4 : L->kind == LL_LAYER_GRU ? 3 : 1;
    return G * L->hidden_size;
}

void ll_input_gates(const ll_layer *L, int dir, int N, const float *X, int ldx, float *Y,
                    ll_int8_work work)
{
    const int rows = ll_layer_gate_rows(L);
    const float *b_ih = L->b_ih[dir];
    /* GRU keeps b_hh with the recurrent product: r multiplies its n part */
    const float *b_hh = L->kind == LL_LAYER_GRU ? NULL : L->b_hh[dir];
    for (int n = 0; n < N; n++) {
        float *y = Y + (size_t)n * rows;
        if (b_ih)
            memcpy(y, b_ih, sizeof(float) * rows);
        else
            memset(y, 0, sizeof(float) * rows);
        if (b_hh)
            for (int j = 0; j < rows; j++)
                y[j] += b_hh[j];
    }
    ll_matrix_acc(ll_matrix_ih(L, dir), rows, N, L->input_size, X, ldx, Y, rows, work);
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

/* Scratch of a model step: two buffers that carry the output of a position-wise layer to the
 * next layer (a recurrent layer's output is its h), then the largest layer scratch. */
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

size_t ll_model_scratch_bytes(const ll_model *M, int batch)
{
    size_t cell = 0;
    for (int l = 0; l < M->num_layers; l++) {
        const size_t s = ll_layer_scratch_bytes(&M->layers[l], batch);
        cell = s > cell ? s : cell;
    }
    return ll_scratch_round(2 * (size_t)batch * max_width(M) * sizeof(float)) + cell;
}

/* One step of layer L's direction dir for B columns; gates_in: NULL, or the input part of the
 * gates for those columns (ll_input_gates), which the cell then overwrites. */
static void cell_step(const ll_layer *L, int dir, int B, const float *x, int ldx,
                      float *gates_in, float *h, float *c, void *scratch)
{
    switch (L->kind) {
    case LL_LAYER_LSTM:
        ll_lstm_cell(L, dir, B, x, ldx, gates_in, h, c, scratch);
        break;
    case LL_LAYER_GRU:
        ll_gru_cell(L, dir, B, x, ldx, gates_in, h, scratch);
        break;
    case LL_LAYER_RNN:
        ll_rnn_cell(L, dir, B, x, ldx, gates_in, h, scratch);
        break;
    default:
        break;
    }
}

static void position_apply(const ll_layer *L, int N, const float *X, int ldx, float *Y,
                           int ldy, void *scratch)
{
    if (L->kind == LL_LAYER_DENSE)
        ll_dense_apply(L, N, X, ldx, Y, ldy, scratch);
    else
        ll_normalize_apply(L, N, X, ldx, Y, ldy);
}

void ll_model_step(const ll_model *M, int batch, const float *x, float *state, void *scratch,
                   float *out)
{
    const size_t width = (size_t)batch * max_width(M);
    float *buffers[2] = {(float *)scratch, (float *)scratch + width};
    void *cell_scratch = (unsigned char *)scratch + ll_scratch_round(2 * width * sizeof(float));
    const int out_size = ll_layer_output_size(&M->layers[M->num_layers - 1]);

    /* layer by layer, all streams at once: (batch, width) blocks, rows `ld` apart */
    const float *in = x;
    int ld = M->layers[0].input_size;
    float *layer_state = state;
    int next_buffer = 0;
    for (int l = 0; l < M->num_layers; l++) {
        const ll_layer *L = &M->layers[l];
        if (ll_layer_is_recurrent(L)) {
            /* streams are forward only: one direction, state (batch, h) then (batch, c) */
            const int hs = ll_layer_h_size(L), cs = ll_layer_c_size(L);
            float *h = layer_state;
            float *c = cs ? layer_state + (size_t)batch * hs : NULL;
            cell_step(L, 0, batch, in, ld, NULL, h, c, cell_scratch);
            layer_state += (size_t)batch * (hs + cs);
            in = h;
            ld = hs;
        } else {
            float *y = buffers[next_buffer];
            const int O = ll_layer_output_size(L);
            next_buffer ^= 1;
            position_apply(L, batch, in, ld, y, O, cell_scratch);
            in = y;
            ld = O;
        }
    }
    memcpy(out, in, sizeof(float) * (size_t)batch * out_size); /* here ld == out_size */
}

/* ---- whole sequences ----
 * A recurrent layer's input part of the gates (ll_input_gates) does not depend on the state:
 * it is computed for LL_SEQUENCE_CHUNK steps at once, one pass over W_ih for the chunk, and
 * each step then does only the recurrent product. The chunk bounds the scratch (the same for
 * any T). The operations per step are those of a stream step, in the same order, so run()
 * and step() agree bit for bit. */
#define LL_SEQUENCE_CHUNK 16

typedef struct {
    size_t gates, int8[3], cell, bytes;
} sequence_parts;

static sequence_parts sequence_layout(const ll_layer *L)
{
    size_t next = 0;
    sequence_parts parts = {0};
    if (ll_layer_is_recurrent(L)) {
        const int rows = ll_layer_gate_rows(L);
        parts.gates = ll_scratch_take(&next, (size_t)LL_SEQUENCE_CHUNK * rows * sizeof(float));
        if (L->weight_dtype == LL_DTYPE_INT8)
            ll_int8_work_take(&next, LL_SEQUENCE_CHUNK, L->input_size, rows, parts.int8);
        parts.cell = ll_scratch_take(&next, ll_layer_scratch_bytes(L, 1));
    } else {
        parts.cell = ll_scratch_take(&next, ll_layer_scratch_bytes(L, LL_SEQUENCE_CHUNK));
    }
    parts.bytes = next;
    return parts;
}

size_t ll_layer_sequence_scratch_bytes(const ll_layer *L)
{
    return sequence_layout(L).bytes;
}

void ll_layer_sequence(const ll_layer *L, int batch, int steps, const float *in, float *out,
                       const int32_t *lengths, float *h, float *c, void *scratch)
{
    const int I = L->input_size, O = ll_layer_output_size(L);
    const sequence_parts parts = sequence_layout(L);
    void *cell_scratch = LL_SCRATCH_AT(scratch, parts.cell, unsigned char);

    if (!ll_layer_is_recurrent(L)) {
        const size_t positions = (size_t)batch * steps;
        for (size_t p = 0; p < positions; p += LL_SEQUENCE_CHUNK) {
            const int n = positions - p < LL_SEQUENCE_CHUNK ? (int)(positions - p)
                                                            : LL_SEQUENCE_CHUNK;
            position_apply(L, n, in + p * I, I, out + p * O, O, cell_scratch);
        }
        return;
    }

    const int hs = ll_layer_h_size(L), cs = ll_layer_c_size(L);
    const int rows = ll_layer_gate_rows(L);
    float *gates = LL_SCRATCH_AT(scratch, parts.gates, float);
    ll_int8_work work = {0};
    if (L->weight_dtype == LL_DTYPE_INT8)
        work = ll_int8_work_at(scratch, parts.int8);
    for (int dir = 0; dir < L->num_directions; dir++) {
        /* the second direction of a bidirectional layer, or a reverse layer, runs backwards */
        const int backwards = dir == 1 || L->reverse;
        for (int b = 0; b < batch; b++) {
            const int len = lengths ? lengths[b] : steps;
            const size_t first_row = (size_t)b * steps;
            float *hb = h + ((size_t)dir * batch + b) * hs;
            float *cb = cs ? c + ((size_t)dir * batch + b) * cs : NULL;
            for (int s0 = 0; s0 < len; s0 += LL_SEQUENCE_CHUNK) {
                const int n = len - s0 < LL_SEQUENCE_CHUNK ? len - s0 : LL_SEQUENCE_CHUNK;
                /* the chunk covers time steps [t0, t0 + n), in processing order */
                const int t0 = backwards ? len - s0 - n : s0;
                ll_input_gates(L, dir, n, in + (first_row + t0) * I, I, gates, work);
                for (int i = 0; i < n; i++) {
                    const int t = backwards ? t0 + n - 1 - i : t0 + i;
                    const size_t row = first_row + t;
                    cell_step(L, dir, 1, NULL, I, gates + (size_t)(t - t0) * rows, hb, cb,
                              cell_scratch);
                    memcpy(out + row * O + (size_t)dir * hs, hb, sizeof(float) * hs);
                }
            }
            for (int t = len; t < steps; t++) {
                const size_t row = first_row + t;
                memset(out + row * O + (size_t)dir * hs, 0, sizeof(float) * hs);
            }
        }
    }
}
