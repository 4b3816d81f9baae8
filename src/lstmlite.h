/*
 * lstmlite: the compiled core. Plain C on raw pointers; no allocation, no locks, no Python.
 *
 * Conventions (one engine convention; the converters map every framework onto it):
 *   - float32 everywhere, row-major (C order) weights, PyTorch shapes and gate orders:
 *       LSTM  w_ih (4H, I), w_hh (4H, P_or_H), biases (4H)   gates i, f, g, o
 *       GRU   w_ih (3H, I), w_hh (3H, H),      biases (3H)   gates r, z, n
 *       RNN   w_ih (H, I),  w_hh (H, H),       biases (H)
 *   - LSTM peepholes (3, H) in ONNX's order i, o, f; projection w_hr (P, H) (PyTorch proj_size).
 *   - Bidirectional layers hold one set of pointers per direction: [0] forward, [1] reverse.
 *   - Every function that needs working memory takes it from the caller; the *_floats()
 *     functions beside them say how much (CMSIS-NN's get_buffer_size habit).
 */
#ifndef LSTMLITE_H
#define LSTMLITE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Layer kinds. These numbers are also the layer type ids of the .lstm file format: never
 * reuse a removed number. */
enum ll_layer_kind {
    LL_LAYER_LSTM = 1,
    LL_LAYER_GRU = 2,
    LL_LAYER_RNN = 3,
    LL_LAYER_DENSE = 4,
    LL_LAYER_NORMALIZE = 5
};

/* Activation kinds: ONNX's recurrent activation set plus the vector activations a Dense head
 * may end with. These numbers are also stored in .lstm files: never reuse a removed number.
 * ll_activation_name() is the one table of their names; Python builds its table from it. */
enum ll_activation_kind {
    LL_ACT_IDENTITY = 0,         /* x */
    LL_ACT_SIGMOID = 1,          /* 1 / (1 + e^-x) */
    LL_ACT_TANH = 2,             /* (1 - e^-2x) / (1 + e^-2x) */
    LL_ACT_RELU = 3,             /* max(0, x) */
    LL_ACT_HARD_SIGMOID = 4,     /* min(max(alpha*x + beta, 0), 1) */
    LL_ACT_LEAKY_RELU = 5,       /* x if x >= 0 else alpha*x */
    LL_ACT_THRESHOLDED_RELU = 6, /* x if x > alpha else 0 */
    LL_ACT_SCALED_TANH = 7,      /* alpha * tanh(beta*x) */
    LL_ACT_AFFINE = 8,           /* alpha*x + beta */
    LL_ACT_ELU = 9,              /* x if x >= 0 else alpha*(e^x - 1) */
    LL_ACT_SOFTSIGN = 10,        /* x / (1 + |x|) */
    LL_ACT_SOFTPLUS = 11,        /* log(1 + e^x) */
    LL_ACT_SOFTMAX = 12,         /* over the whole vector; Dense only */
    LL_ACT_LOG_SOFTMAX = 13,     /* over the whole vector; Dense only */
    LL_ACT_COUNT = 14
};

/* Normalize layer modes. */
enum ll_normalize_mode {
    LL_NORMALIZE_MEAN_STD = 0,   /* y = (x - a) / b   (a = mean, b = std) */
    LL_NORMALIZE_SCALE_OFFSET = 1 /* y = x * a + b    (a = scale, b = offset) */
};

typedef struct {
    int kind;     /* enum ll_activation_kind */
    float alpha;  /* meaning depends on kind (see the enum); unused ones are ignored */
    float beta;
} ll_activation;

/* Maximum number of activations a recurrent cell uses per direction (LSTM: f, g, h). */
#define LL_MAX_CELL_ACTIVATIONS 3

typedef struct {
    int kind;              /* enum ll_layer_kind */
    int input_size;        /* I: features read per step */
    int hidden_size;       /* H: recurrent units; Dense: output features */
    int proj_size;         /* LSTM only: P > 0 projects h to P features (PyTorch proj_size) */
    int num_directions;    /* 1, or 2 for bidirectional (forward, then reverse) */
    int reverse;           /* 1: the single direction runs from the last step to the first */
    int input_forget;      /* LSTM: couple the gates, f = 1 - i (ONNX input_forget) */
    int linear_before_reset; /* GRU: 1 = n uses r * (W_hn h + b_hn) (PyTorch); 0 = W_hn (r * h) */
    float clip;            /* bound on the input of every gate activation; INFINITY = none */
    ll_activation act[2][LL_MAX_CELL_ACTIVATIONS]; /* [direction][LSTM f,g,h | GRU f,g | RNN f] */
    const float *w_ih[2];  /* per direction, see the shapes above */
    const float *w_hh[2];
    const float *b_ih[2];  /* may be NULL (zero bias) */
    const float *b_hh[2];  /* may be NULL (zero bias) */
    const float *w_hr[2];  /* LSTM projection (P, H) or NULL */
    const float *peephole[2]; /* LSTM peepholes (3, H) in i, o, f order, or NULL */
    /* Dense: y = act(weight x + bias), weight (H, I), bias (H) or NULL */
    const float *weight;
    const float *bias;
    ll_activation dense_act;
    /* Normalize: see enum ll_normalize_mode; a and b have I elements */
    int normalize_mode;
    const float *norm_a;
    const float *norm_b;
} ll_layer;

typedef struct {
    int num_layers;
    const ll_layer *layers;
} ll_model;

/* ---- sizes ---- */
int ll_layer_output_size(const ll_layer *layer);
int ll_layer_is_recurrent(const ll_layer *layer);
/* Floats of recurrent state per batch element and direction: h (output width) then c (LSTM). */
int ll_layer_h_size(const ll_layer *layer);
int ll_layer_c_size(const ll_layer *layer);
/* Scratch floats one cell step of this layer needs. */
size_t ll_layer_scratch_floats(const ll_layer *layer);

/* State of a stream of `batch` elements: for every recurrent layer in order, h (batch, h_size)
 * then c (batch, c_size). */
size_t ll_model_state_floats(const ll_model *model, int batch);
size_t ll_model_scratch_floats(const ll_model *model);

/* ---- streaming ---- */
/* One time step of every layer for `batch` independent streams: x (batch, I) -> out (batch, O).
 * Updates state in place. Only forward layers (the caller checks). */
void ll_model_step(const ll_model *model, int batch, const float *x, float *state,
                   float *scratch, float *out);

/* ---- whole sequences ---- */
/* Runs one layer over whole sequences: in (batch, T, I) -> out (batch, T, O).
 * lengths: NULL (all T) or per batch element 0..T; steps at or past a length produce zeros
 * from a recurrent layer and leave its state alone; position-wise layers process every step.
 * h: (num_directions, batch, h_size) and c: (num_directions, batch, c_size) hold the initial
 * state on entry and the final state on return (NULL c for GRU/RNN, NULL both for others). */
void ll_layer_sequence(const ll_layer *layer, int batch, int steps, const float *in,
                       float *out, const int32_t *lengths, float *h, float *c, float *scratch);

/* ---- single cells (used by the above; exposed for the C test harness) ---- */
void ll_lstm_cell(const ll_layer *layer, int dir, const float *x, float *h, float *c,
                  float *scratch);
void ll_gru_cell(const ll_layer *layer, int dir, const float *x, float *h, float *scratch);
void ll_rnn_cell(const ll_layer *layer, int dir, const float *x, float *h, float *scratch);
void ll_dense_apply(const ll_layer *layer, const float *x, float *y);
void ll_normalize_apply(const ll_layer *layer, const float *x, float *y);

/* ---- activations ---- */
/* The name of an activation kind ("Sigmoid", ...), or NULL past LL_ACT_COUNT. */
const char *ll_activation_name(int kind);
/* Applies an activation in place to n floats; clip (INFINITY = none) bounds the input first.
 * Softmax kinds act on the n floats as one vector. */
void ll_activate(const ll_activation *act, float clip, float *x, int n);

/* ---- kernel dispatch ---- */
/* Names of the kernel sets compiled in, and the one in use ("generic", "avx2"). */
const char *ll_kernels_active(void);
/* Chooses a kernel set by name, or the best this CPU runs for "auto" or NULL.
 * Returns 0, or -1 if that set is not compiled in or this CPU cannot run it. */
int ll_kernels_select(const char *name);
/* 1 if the CPU runs the named kernel set. */
int ll_kernels_supported(const char *name);

#ifdef __cplusplus
}
#endif
#endif
