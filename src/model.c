/* Sizes, the step of a whole model, and whole-sequence runs of one layer. */
#include <limits.h>
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
    case LL_LAYER_MAGNITUDE:
        return L->hidden_size;
    case LL_LAYER_CONV1D:
        return L->hidden_size * ll_conv1d_out_length(L);
    case LL_LAYER_MEAN:
        return L->channels;
    default:
        return L->input_size;
    }
}

int ll_layer_gate_rows(const ll_layer *L)
{
    const int G = L->kind == LL_LAYER_LSTM ? 4 : L->kind == LL_LAYER_GRU ? 3 : 1;
    return G * L->hidden_size;
}

/* Y[n*ldy + :] = b_ih + b_hh + W_ih X[n] (LSTM, RNN) or b_ih + W_ih X[n] (GRU, whose b_hh
 * goes with the recurrent product that r multiplies) for N columns of gate rows: the part of
 * a step that does not depend on the state, the bias summed once by ll_layer_pack. A stream
 * step computes it for its frames, a sequence run for many steps at once; the same
 * operations either way. */
static void input_gates(const ll_layer *L, int dir, int N, const float *X, int ldx, float *Y,
                        int ldy, ll_int8_work work)
{
    const int rows = ll_layer_gate_rows(L);
    const ll_matrix w_ih = {L->packed_ih[dir], L->q_ih[dir], L->s_ih[dir], L->sums_ih[dir],
                            L->panels_ih[dir]};
    const float *bias = L->gate_bias[dir];
    for (int n = 0; n < N; n++) {
        float *y = Y + (size_t)n * ldy;
        if (bias)
            memcpy(y, bias, sizeof(float) * rows);
        else
            memset(y, 0, sizeof(float) * rows);
    }
    ll_matrix_acc(w_ih, rows, N, L->input_size, X, ldx, Y, ldy, work);
}

/* A recurrent layer's scratch: the input part of the gates for `columns` columns (the streams
 * of a step, or the steps of a sequence chunk) with the int8 work of their product, then the
 * cell's own scratch for `streams` columns. One layout for sizing and carving, both paths. */
typedef struct {
    size_t gates, int8[3], cell, bytes;
} recurrent_parts;

static size_t cell_scratch_bytes(const ll_layer *L, int B)
{
    switch (L->kind) {
    case LL_LAYER_LSTM:
        return ll_lstm_scratch_bytes(L, B);
    case LL_LAYER_GRU:
        return ll_gru_scratch_bytes(L, B);
    default:
        return ll_rnn_scratch_bytes(L, B);
    }
}

static recurrent_parts recurrent_layout(const ll_layer *L, int columns, int streams)
{
    const int rows = ll_layer_gate_rows(L);
    size_t next = 0;
    recurrent_parts parts = {0};
    parts.gates = ll_scratch_take(&next, (size_t)columns * rows * sizeof(float));
    ll_int8_work_take(&next, L, columns, L->input_size, rows, parts.int8);
    parts.cell = ll_scratch_take(&next, cell_scratch_bytes(L, streams));
    parts.bytes = next;
    return parts;
}

size_t ll_layer_scratch_bytes(const ll_layer *L, int batch)
{
    if (ll_layer_is_recurrent(L))
        return recurrent_layout(L, batch, batch).bytes;
    if (L->kind == LL_LAYER_CONV1D)
        return ll_conv1d_scratch_bytes(L, batch);
    return L->kind == LL_LAYER_DENSE ? ll_dense_scratch_bytes(L, batch) : 0;
}

/* Bytes of an (rows, cols) matrix in the layer's weight dtype as the product reads it, with
 * its scales (packed float32 is the same size as row-major; int8 panels are padded to whole
 * panels of 16 rows and groups of 4 inputs). */
static size_t matrix_bytes(const ll_layer *L, size_t rows, size_t cols)
{
    /* a Conv1d's groups are matrices of their own, each in whole panels */
    const size_t groups = L->kind == LL_LAYER_CONV1D ? (size_t)L->groups : 1;
    if (L->weight_dtype == LL_DTYPE_INT8) { /* bytes, a scale and a sum per row */
        const size_t bytes = ll_kernels_read_s8_panels()
                                 ? groups * ll_s8_panels_bytes((int)(rows / groups), (int)cols)
                                 : rows * cols;
        return bytes + rows * (sizeof(float) + sizeof(int32_t));
    }
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
        const size_t rows = (size_t)ll_layer_gate_rows(L), P = (size_t)ll_layer_h_size(L);
        per_direction = matrix_bytes(L, rows, I) + matrix_bytes(L, rows, P);
        /* the gate bias (ll_layer_pack), and GRU's b_hh, which stays apart */
        per_direction += L->gate_bias[0] ? rows * f : 0;
        per_direction += L->kind == LL_LAYER_GRU && L->b_hh[0] ? rows * f : 0;
        if (L->kind == LL_LAYER_LSTM) {
            per_direction += L->proj_size > 0 ? matrix_bytes(L, P, H) : 0;
            per_direction += L->peephole[0] ? 3 * H * f : 0;
        }
        return per_direction * (size_t)L->num_directions;
    }
    case LL_LAYER_DENSE:
        return matrix_bytes(L, H, I) + (L->bias ? H * f : 0);
    case LL_LAYER_CONV1D:
        if (L->fft_bins) /* the FFT's tables instead of the basis */
            return ll_conv1d_fft_tables_bytes(L) + (L->bias ? H * f : 0);
        return matrix_bytes(L, H, (size_t)L->channels / L->groups * L->kernel_size) +
               (L->bias ? H * f : 0);
    case LL_LAYER_NORMALIZE:
        return 2 * I * f;
    default: /* Magnitude, Mean, Elementwise: no weights */
        return 0;
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

/* The recurrent part of a step of layer L's direction dir for B columns (the cell files);
 * gates holds their input part (input_gates) and is overwritten. */
static void cell_step(const ll_layer *L, int dir, int B, float *gates, float *h, float *c,
                      void *scratch)
{
    switch (L->kind) {
    case LL_LAYER_LSTM:
        ll_lstm_cell(L, dir, B, gates, h, c, scratch);
        break;
    case LL_LAYER_GRU:
        ll_gru_cell(L, dir, B, gates, h, scratch);
        break;
    default:
        ll_rnn_cell(L, dir, B, gates, h, scratch);
        break;
    }
}

static void position_apply(const ll_layer *L, int N, const float *X, int ldx, float *Y,
                           int ldy, void *scratch)
{
    switch (L->kind) {
    case LL_LAYER_DENSE:
        ll_dense_apply(L, N, X, ldx, Y, ldy, scratch);
        break;
    case LL_LAYER_CONV1D:
        ll_conv1d_apply(L, N, X, ldx, Y, ldy, scratch);
        break;
    case LL_LAYER_MAGNITUDE:
        ll_magnitude_apply(L, N, X, ldx, Y, ldy);
        break;
    case LL_LAYER_MEAN:
        ll_mean_apply(L, N, X, ldx, Y, ldy);
        break;
    case LL_LAYER_ELEMENTWISE:
        ll_elementwise_apply(L, N, X, ldx, Y, ldy);
        break;
    default:
        ll_normalize_apply(L, N, X, ldx, Y, ldy);
        break;
    }
}

void ll_model_step(const ll_model *M, int batch, const float *x, float *state, void *scratch,
                   float *out)
{
    const size_t width = (size_t)batch * max_width(M);
    float *buffers[2] = {(float *)scratch, (float *)scratch + width};
    void *layer_scratch = (unsigned char *)scratch + ll_scratch_round(2 * width * sizeof(float));
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
            const recurrent_parts parts = recurrent_layout(L, batch, batch);
            float *gates = LL_SCRATCH_AT(layer_scratch, parts.gates, float);
            input_gates(L, 0, batch, in, ld, gates, ll_layer_gate_rows(L),
                        ll_int8_work_at(L, layer_scratch, parts.int8));
            cell_step(L, 0, batch, gates, h, c,
                      LL_SCRATCH_AT(layer_scratch, parts.cell, unsigned char));
            layer_state += (size_t)batch * (hs + cs);
            in = h;
            ld = hs;
        } else {
            float *y = buffers[next_buffer];
            const int O = ll_layer_output_size(L);
            next_buffer ^= 1;
            position_apply(L, batch, in, ld, y, O, layer_scratch);
            in = y;
            ld = O;
        }
    }
    memcpy(out, in, sizeof(float) * (size_t)batch * out_size); /* here ld == out_size */
}

/* ---- whole sequences ----
 * A recurrent layer's input part of the gates (input_gates) does not depend on the state:
 * it is computed for LL_SEQUENCE_COLUMNS columns at once, one pass over W_ih for them, and
 * each step then does only the recurrent product. The columns are 16 steps of one sequence,
 * or, where up to LL_SEQUENCE_GROUP consecutive sequences have the same length, a few steps
 * of each of them; such a group then steps its recurrence together, as a batched stream
 * does, one pass over W_hh per step for the group. Both sizes bound the scratch (the same
 * for any batch and T). Every column gets the operations of a stream step, in the same
 * order, so run() and step() agree bit for bit. */
#define LL_SEQUENCE_COLUMNS 16
#define LL_SEQUENCE_GROUP 8

size_t ll_layer_sequence_scratch_bytes(const ll_layer *L)
{
    if (ll_layer_is_recurrent(L))
        return recurrent_layout(L, LL_SEQUENCE_COLUMNS, LL_SEQUENCE_GROUP).bytes;
    return ll_layer_scratch_bytes(L, LL_SEQUENCE_COLUMNS);
}

void ll_layer_sequence(const ll_layer *L, int batch, int steps, const float *in, float *out,
                       const int32_t *lengths, float *h, float *c, void *scratch)
{
    const int I = L->input_size, O = ll_layer_output_size(L);

    if (!ll_layer_is_recurrent(L)) {
        const size_t positions = (size_t)batch * steps;
        for (size_t p = 0; p < positions; p += LL_SEQUENCE_COLUMNS) {
            const int n = positions - p < LL_SEQUENCE_COLUMNS ? (int)(positions - p)
                                                              : LL_SEQUENCE_COLUMNS;
            position_apply(L, n, in + p * I, I, out + p * O, O, scratch);
        }
        return;
    }

    const int hs = ll_layer_h_size(L), cs = ll_layer_c_size(L);
    const int rows = ll_layer_gate_rows(L);
    const recurrent_parts parts = recurrent_layout(L, LL_SEQUENCE_COLUMNS, LL_SEQUENCE_GROUP);
    float *gates = LL_SCRATCH_AT(scratch, parts.gates, float);
    const ll_int8_work work = ll_int8_work_at(L, scratch, parts.int8);
    void *cell_scratch = LL_SCRATCH_AT(scratch, parts.cell, unsigned char);
    for (int dir = 0; dir < L->num_directions; dir++) {
        /* the second direction of a bidirectional layer, or a reverse layer, runs backwards */
        const int backwards = dir == 1 || L->reverse;
        for (int b0 = 0; b0 < batch;) {
            /* the group: sequences b0 .. b0 + G - 1, all of length len */
            const int len = lengths ? lengths[b0] : steps;
            /* a group's columns are steps * I floats apart, an int stride of the products */
            const int groups = (size_t)steps * I <= INT_MAX;
            int G = 1;
            while (groups && G < LL_SEQUENCE_GROUP && b0 + G < batch &&
                   (lengths ? lengths[b0 + G] : steps) == len)
                G++;
            const int chunk = LL_SEQUENCE_COLUMNS / G; /* steps per chunk */
            float *hg = h + ((size_t)dir * batch + b0) * hs;
            float *cg = cs ? c + ((size_t)dir * batch + b0) * cs : NULL;
            for (int s0 = 0; s0 < len; s0 += chunk) {
                const int n = len - s0 < chunk ? len - s0 : chunk;
                /* the chunk covers time steps [t0, t0 + n), in processing order; the gates of
                 * step t0 + i of sequence b0 + g are row i G + g of the chunk's gates */
                const int t0 = backwards ? len - s0 - n : s0;
                if (G == 1) /* the n steps of one sequence: rows I apart */
                    input_gates(L, dir, n, in + ((size_t)b0 * steps + t0) * I, I, gates, rows,
                                work);
                else /* each step: the group's G sequences, rows steps * I apart */
                    for (int i = 0; i < n; i++)
                        input_gates(L, dir, G, in + ((size_t)b0 * steps + t0 + i) * I,
                                    steps * I, gates + (size_t)i * G * rows, rows, work);
                for (int i = 0; i < n; i++) {
                    const int t = backwards ? t0 + n - 1 - i : t0 + i;
                    cell_step(L, dir, G, gates + (size_t)(t - t0) * G * rows, hg, cg,
                              cell_scratch);
                    for (int g = 0; g < G; g++)
                        memcpy(out + ((size_t)(b0 + g) * steps + t) * O + (size_t)dir * hs,
                               hg + (size_t)g * hs, sizeof(float) * hs);
                }
            }
            for (int g = 0; g < G; g++)
                for (int t = len; t < steps; t++)
                    memset(out + ((size_t)(b0 + g) * steps + t) * O + (size_t)dir * hs, 0,
                           sizeof(float) * hs);
            b0 += G;
        }
    }
}
