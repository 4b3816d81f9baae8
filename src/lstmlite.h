/*
 * lstmlite: the compiled core. Plain C on raw pointers; no allocation, no locks, no Python.
 *
 * Conventions (one engine convention; the converters map every framework onto it):
 *   - float32 arithmetic, row-major (C order) weights, PyTorch shapes and gate orders:
 *       LSTM  w_ih (4H, I), w_hh (4H, P_or_H), biases (4H)   gates i, f, g, o
 *       GRU   w_ih (3H, I), w_hh (3H, H),      biases (3H)   gates r, z, n
 *       RNN   w_ih (H, I),  w_hh (H, H),       biases (H)
 *   - LSTM peepholes (3, H) in ONNX's order i, o, f; projection w_hr (P, H) (PyTorch proj_size).
 *   - Bidirectional layers hold one set of pointers per direction: [0] forward, [1] reverse.
 *   - A layer's weight matrices are float32 or int8 (weight_dtype). int8 matrices are
 *     symmetric per output row: W[m,k] = q[m,k] * scale[m], q in -127..127 (never -128: the
 *     AVX2 kernel's sign trick relies on it). Their products run as dynamic quantization:
 *     the vector is quantized per step (ll_quantize_s8), the dot products are exact int32,
 *     and the gates, cell state and outputs stay float32.
 *   - Every function that needs working memory takes it from the caller; the *_bytes()
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
    LL_LAYER_NORMALIZE = 5,
    LL_LAYER_CONV1D = 6,
    LL_LAYER_MAGNITUDE = 7,
    LL_LAYER_MEAN = 8,
    LL_LAYER_ELEMENTWISE = 9
};

/* Padding of a Conv1d layer's input positions (PyTorch's padding_mode, ONNX Pad's modes).
 * These numbers are also stored in .lstm files: never reuse a removed number. */
enum ll_pad_mode {
    LL_PAD_ZEROS = 0,     /* 0 outside the input */
    LL_PAD_REFLECT = 1,   /* x[-i] = x[i], x[L-1+i] = x[L-1-i] (pads < L) */
    LL_PAD_REPLICATE = 2, /* the edge value (ONNX "edge") */
    LL_PAD_CIRCULAR = 3   /* x[-i] = x[L-i] (ONNX "wrap"; pads <= L) */
};

/* Tensor dtypes. These numbers are also the dtype ids of the .lstm file format: never reuse a
 * removed number. float16 is a storage type only (widened to float32 on load); a layer's
 * weight_dtype is LL_DTYPE_FLOAT32 or LL_DTYPE_INT8. ll_dtype_name() is the table of names. */
enum ll_dtype {
    LL_DTYPE_FLOAT32 = 0,
    LL_DTYPE_FLOAT16 = 1,
    LL_DTYPE_INT8 = 2,
    LL_DTYPE_COUNT = 3
};

/* The largest reduction length an int8 product accepts: 127 * 127 * K must fit in int32. */
#define LL_INT8_MAX_K 133143

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
    LL_ACT_SOFTMAX = 12,         /* over the whole vector; Dense and Elementwise only */
    LL_ACT_LOG_SOFTMAX = 13,     /* over the whole vector; Dense and Elementwise only */
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
    int weight_dtype;      /* LL_DTYPE_FLOAT32: w_ih, w_hh, w_hr, weight are used;
                              LL_DTYPE_INT8: q_* with their per-row scales s_* instead */
    const float *w_ih[2];  /* per direction, see the shapes above */
    const float *w_hh[2];
    const float *b_ih[2];  /* may be NULL (zero bias) */
    const float *b_hh[2];  /* may be NULL (zero bias) */
    const float *w_hr[2];  /* LSTM projection (P, H) or NULL */
    const float *peephole[2]; /* LSTM peepholes (3, H) in i, o, f order, or NULL */
    /* int8 weight matrices (same shapes as w_ih, w_hh, w_hr) and their scales, one float per
     * row: W[m, k] = q[m, k] * s[m]. Biases and peepholes stay float32. */
    const int8_t *q_ih[2];
    const int8_t *q_hh[2];
    const int8_t *q_hr[2];
    const float *s_ih[2];
    const float *s_hh[2];
    const float *s_hr[2];
    /* Set by ll_layer_pack before a layer is stepped, from the arrays above: the float32
     * matrices as the kernels read them, packed in panels (kernels.h; NULL for int8), the
     * int8 matrices' row sums and, where a kernel set this CPU runs reads them, their VNNI
     * panels (NULL for float32), and the bias of a recurrent layer's input gates,
     * b_ih + b_hh (GRU: b_ih; NULL if none). */
    const float *packed_ih[2];
    const float *packed_hh[2];
    const float *packed_hr[2];
    const float *packed_weight;
    const int32_t *sums_ih[2];
    const int32_t *sums_hh[2];
    const int32_t *sums_hr[2];
    const int32_t *sums_weight;
    const uint8_t *panels_ih[2]; /* int8 matrices in panels (kernels.h), where made */
    const uint8_t *panels_hh[2];
    const uint8_t *panels_hr[2];
    const uint8_t *panels_weight;
    const float *gate_bias[2];
    /* Dense: y = act(weight x + bias), weight (H, I) (or q_weight * s_weight), bias (H) or NULL */
    const float *weight;
    const int8_t *q_weight;
    const float *s_weight;
    const float *bias;
    ll_activation dense_act;
    /* Normalize: see enum ll_normalize_mode; a and b have I elements */
    int normalize_mode;
    const float *norm_a;
    const float *norm_b;
    /* Conv1d: the step's input viewed as (channels, length), channel-major as ONNX and
     * PyTorch lay it out (input_size = channels * length); output (hidden_size, out_length)
     * channel-major, out_length = (length + pad_begin + pad_end - dilation (kernel_size - 1)
     * - 1) / stride + 1. weight (hidden_size, channels / groups * kernel_size): PyTorch's
     * (out, in / groups, kernel) with the last two axes flattened, or its int8 form in q_weight
     * and s_weight (a scale per output channel); bias (hidden_size) or NULL; dense_act any
     * elementwise activation. Positions outside the input are padded by pad_mode.
     * Mean: the mean over the `length` positions of each of `channels` channels, (channels,
     * length) -> (channels). */
    int channels;
    int length;
    int kernel_size;
    int stride;
    int dilation;
    int groups;
    int pad_begin;
    int pad_end;
    int pad_mode;       /* enum ll_pad_mode */
    /* Conv1d whose weight is a windowed DFT basis (an STFT written as a Conv: one input
     * channel, one group, no dilation, a power-of-two kernel N >= 4): rows k < fft_bins are
     * window[n] cos(2 pi k n / N), rows fft_bins + k are fft_sign * window[n] sin(2 pi k n /
     * N), hidden_size = 2 fft_bins <= N + 2. Such a layer is computed as an FFT of the
     * windowed patches (the window is row 0 of weight), in float32; 0 = a product. */
    int fft_bins;
    int fft_sign;
    const float *fft_tables; /* set by ll_layer_pack (conv.c's FFT tables) */
    /* Magnitude: the modulus of complex values whose real and imaginary parts are two blocks
     * of the input (an STFT's real and imaginary channels): `channels` rows of n = hidden_size
     * / channels values each, row r of a block starting r * length after the block's offset:
     * y[r n + i] = sqrt(x[offsets[0] + r length + i]^2 + x[offsets[1] + r length + i]^2). */
    int offsets[2];
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
/* Bytes of scratch one step of `batch` streams of this layer needs (cell buffers, quantized
 * vectors, int32 sums); every part starts at a multiple of 64 bytes from the start. */
size_t ll_layer_scratch_bytes(const ll_layer *layer, int batch);
/* Bytes of the layer's weights, biases and scales as the kernels read them (float32
 * matrices packed, int8 row sums, the gate bias summed: see ll_layer_pack). */
size_t ll_layer_weight_bytes(const ll_layer *layer);

/* Rows of a recurrent layer's gate block: 4H (LSTM), 3H (GRU), H (RNN). */
int ll_layer_gate_rows(const ll_layer *layer);
/* Bytes ll_layer_pack needs (a multiple of 64; 0 for Normalize). */
size_t ll_layer_packed_bytes(const ll_layer *layer);
/* Fills buffer (ll_layer_packed_bytes bytes, aligned to 64) with what the layer's kernels
 * read besides its arrays and points the layer's packed_*, sums_* and gate_bias at it: the
 * float32 matrices packed, the int8 matrices' row sums, the summed gate bias. Every layer is packed once before it is stepped; the
 * buffer must outlive every use of the layer. */
void ll_layer_pack(ll_layer *layer, void *buffer);

/* Bytes of the float32 state of a stream of `batch` elements: for every recurrent layer in
 * order, h (batch, h_size) then c (batch, c_size). */
size_t ll_model_state_bytes(const ll_model *model, int batch);
/* Bytes of scratch ll_model_step needs for `batch` streams (a buffer aligned to at least 16
 * bytes). */
size_t ll_model_scratch_bytes(const ll_model *model, int batch);

/* ---- streaming ---- */
/* One time step of every layer for `batch` independent streams: x (batch, I) -> out (batch, O).
 * Updates state in place. Only forward layers (the caller checks). Each layer's products are
 * one pass over its weights for all streams; every stream gets the bits it would get alone. */
void ll_model_step(const ll_model *model, int batch, const float *x, float *state,
                   void *scratch, float *out);

/* ---- whole sequences ---- */
/* Bytes of scratch ll_layer_sequence needs, whatever the batch and the number of steps: the
 * input part of the gates is computed a fixed number of columns at a time, and at most 8
 * sequences (consecutive, of one length) step their recurrence together. */
size_t ll_layer_sequence_scratch_bytes(const ll_layer *layer);
/* Runs one layer over whole sequences: in (batch, T, I) -> out (batch, T, O).
 * lengths: NULL (all T) or per batch element 0..T; steps at or past a length produce zeros
 * from a recurrent layer and leave its state alone; position-wise layers process every step.
 * h: (num_directions, batch, h_size) and c: (num_directions, batch, c_size) hold the initial
 * state on entry and the final state on return (NULL c for GRU/RNN, NULL both for others). */
void ll_layer_sequence(const ll_layer *layer, int batch, int steps, const float *in,
                       float *out, const int32_t *lengths, float *h, float *c, void *scratch);

/* ---- single layers (used by the above; exposed for the C test harness) ---- */
/* The recurrent part of one step of direction `dir` for B streams. gates: the input part of
 * the gates, (B, gate rows: 4H LSTM, 3H GRU, H RNN), b_ih + b_hh + W_ih x (GRU: b_ih + W_ih
 * x), overwritten; h (B, h_size) and c (B, H) updated in place; scratch of the cell file's
 * *_scratch_bytes(layer, B). ll_model_step and ll_layer_sequence compute the gates. */
void ll_lstm_cell(const ll_layer *layer, int dir, int B, float *gates, float *h, float *c,
                  void *scratch);
void ll_gru_cell(const ll_layer *layer, int dir, int B, float *gates, float *h,
                 void *scratch);
void ll_rnn_cell(const ll_layer *layer, int dir, int B, float *gates, float *h,
                 void *scratch);
/* N positions: X (N, I) rows ldx apart -> Y (N, O) rows ldy apart. */
void ll_dense_apply(const ll_layer *layer, int N, const float *X, int ldx, float *Y, int ldy,
                    void *scratch);
void ll_normalize_apply(const ll_layer *layer, int N, const float *X, int ldx, float *Y,
                        int ldy);
/* Conv1d, Magnitude and Mean (conv.c): the same contract, one column at a time. */
int ll_conv1d_out_length(const ll_layer *layer);
void ll_conv1d_apply(const ll_layer *layer, int N, const float *X, int ldx, float *Y, int ldy,
                     void *scratch);
void ll_magnitude_apply(const ll_layer *layer, int N, const float *X, int ldx, float *Y,
                        int ldy);
void ll_mean_apply(const ll_layer *layer, int N, const float *X, int ldx, float *Y, int ldy);
/* Elementwise (dense.c): y = dense_act(x), input_size features (an activation with no layer
 * before it to carry it: after a recurrent layer, a Mean, the input). */
void ll_elementwise_apply(const ll_layer *layer, int N, const float *X, int ldx, float *Y,
                          int ldy);

/* ---- int8 ---- */
/* Quantizes n floats to int8 with one symmetric scale: q[i] = round_half_even(x[i] * inv)
 * with inv = 127 / max|x| (a float32 division), so q lies in -127..127. Returns the scale
 * max|x| / 127 (x ~= q * scale). An all-zero vector (or one whose peak is too small for
 * 127 / peak to be finite) gives q = 0 and scale 0; a vector holding NaN or infinity gives
 * q = 0 and scale NaN, so the products it feeds become NaN, as they would in float32.
 * Compiled once for every kernel set, without fused multiply-add, so that every set sees
 * the same q and tests can reproduce it in NumPy. */
float ll_quantize_s8(const float *x, int n, int8_t *q);
/* The name of a dtype id ("float32", "float16", "int8"), or NULL. */
const char *ll_dtype_name(int dtype);

/* ---- activations ---- */
/* The name of an activation kind ("Sigmoid", ...), or NULL past LL_ACT_COUNT. */
const char *ll_activation_name(int kind);
/* Applies an activation in place to n floats; clip (INFINITY = none) bounds the input first.
 * Softmax kinds act on the n floats as one vector. */
void ll_activate(const ll_activation *act, float clip, float *x, int n);

/* ---- kernel dispatch ---- */
/* The kernel set in use: "generic", "avx2" (x86-64), "neon" (aarch64, armv7), "dotprod"
 * (aarch64 with the dot product extension). */
const char *ll_kernels_active(void);
/* The names of the kernel sets compiled into this build, NULL-terminated. */
const char *const *ll_kernels_compiled(void);
/* The CPU features the dispatcher looked for and found, space-separated (e.g. "avx2 fma",
 * "neon asimddp"), or "" when none. */
const char *ll_cpu_features(void);
/* Chooses a kernel set by name, or the best this CPU runs for "auto" or NULL.
 * Returns 0, or -1 if that set is not compiled in or this CPU cannot run it. */
int ll_kernels_select(const char *name);
/* 1 if the CPU runs the named kernel set. */
int ll_kernels_supported(const char *name);

#ifdef __cplusplus
}
#endif
#endif
