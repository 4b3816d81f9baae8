/*
 * The one dispatch point between the cells and the arithmetic that dominates a step: the
 * matrix products (float32 and int8, one or many columns) and the elementwise activations. Every kernel set
 * implements this table; the generic set is always built and is the reference the others are
 * tested against (the int8 products bit for bit, the float ones within rounding).
 */
#ifndef LSTMLITE_KERNELS_H
#define LSTMLITE_KERNELS_H

#include <string.h>

#include "lstmlite.h"

typedef struct {
    const char *name;
    /* Y[n*ldy + m] += W[m,:] . X[n*ldx + :] for m < M, n < N: W an (M, K) matrix packed by
     * ll_pack_f32, X holds N vectors of K floats (ldx apart), Y N vectors of M sums (ldy
     * apart). One pass over W serves every column (a batch of streams, or the time steps
     * of a sequence), and each column gets exactly the arithmetic, hence the bits, it
     * would get with N = 1: the batch and sequence paths equal the single step bit for bit. */
    void (*gemm_acc)(int M, int N, int K, const float *W, const float *X, int ldx, float *Y,
                     int ldy);
    /* acc[n*ldacc + m] = W[m,:] . X[n*ldx + :] for m < M, n < N, exactly, in int32. W
     * row-major (M, K) and X hold values in -127..127 (never -128) and K <= LL_INT8_MAX_K, so
     * no sum can overflow; every set returns the same integers. W_sums[m] = sum_k W[m,k]
     * (ll_row_sums_s8, made when the model is built), for the sets that multiply x + 128
     * (unsigned bytes) and subtract 128 W_sums[m]; the others do not read it. */
    void (*gemm_s8)(int M, int N, int K, const int8_t *W, const int32_t *W_sums,
                    const int8_t *X, int ldx, int32_t *acc, int ldacc);
    /* x[i] = sigmoid(clip(x[i])) / tanh(clip(x[i])) in place; clip INFINITY = none. */
    void (*sigmoid)(float *x, int n, float clip);
    void (*tanh)(float *x, int n, float clip);
    /* y[i] = exp(x[i]); used by softmax, Elu and Softplus. */
    void (*exp)(const float *x, float *y, int n);
    /* gemm_s8's contract on W in panels (ll_pack_s8_panels) instead of row-major; NULL
     * in the sets without a four-byte dot product instruction (vpdpbusd, sdot), which read
     * the row-major W. ll_s8_product takes it where the set has it and the matrix has panels. */
    void (*gemm_s8_panels)(int M, int N, int K, const uint8_t *panels, const int8_t *X,
                           int ldx, int32_t *acc, int ldacc);
    /* y[m] += s[m] * (sx * acc[m]) for m < M with acc[m] = W[m,:] . x, one column x, W in
     * panels: gemm_s8_panels with N = 1 and scale_acc_s8 in one pass, with their bits (exact
     * sums, then the same float operations in the same order, unfused); acc is M int32 of
     * scratch. NULL where the set has no such pass (ll_matrix_acc then calls the two). */
    void (*gemm_s8_panels_scaled)(int M, int K, const uint8_t *panels, const int8_t *x,
                                  int32_t *acc, const float *s, float sx, float *y);
    /* ll_quantize_s8, and y[m] += s[m] * (sx * acc[m]) for m < M (the float side of an int8
     * product): int8.c's code at the set's vector width, the same bits on every set */
    float (*quantize_s8)(const float *x, int n, int8_t *q);
    void (*scale_acc_s8)(int M, const int32_t *acc, const float *s, float sx, float *y);
} ll_kernel_table;

extern const ll_kernel_table ll_kernels_generic;
/* int8.c's quantizer and float side compiled for the target's baseline (int8.c) */
float ll_quantize_s8_baseline(const float *x, int n, int8_t *q);
void ll_scale_acc_s8_baseline(int M, const int32_t *acc, const float *s, float sx, float *y);
#if defined(__x86_64__) || defined(_M_X64)
#define LL_HAVE_AVX2_KERNELS 1
#define LL_HAVE_AVX512_KERNELS 1
float ll_quantize_s8_avx2(const float *x, int n, int8_t *q);
void ll_scale_acc_s8_avx2(int M, const int32_t *acc, const float *s, float sx, float *y);
float ll_quantize_s8_avx512(const float *x, int n, int8_t *q);
void ll_scale_acc_s8_avx512(int M, const int32_t *acc, const float *s, float sx, float *y);
extern const ll_kernel_table ll_kernels_avx2;
extern const ll_kernel_table ll_kernels_avx512;
extern const ll_kernel_table ll_kernels_avx512vnni;
extern const ll_kernel_table ll_kernels_avxvnni;
/* the AVX2 set's int8 products, which the AVX-512 set without VNNI shares */
void ll_gemm_s8_avx2(int M, int N, int K, const int8_t *W, const int32_t *W_sums,
                     const int8_t *X, int ldx, int32_t *acc, int ldacc);
void ll_gemm_s8_panels_scaled_avx2(int M, int K, const uint8_t *panels, const int8_t *x,
                                   int32_t *acc, const float *s, float sx, float *y);
#endif
#if defined(__aarch64__)
#define LL_HAVE_NEON_KERNELS 1
#define LL_HAVE_DOTPROD_KERNELS 1
extern const ll_kernel_table ll_kernels_neon;
extern const ll_kernel_table ll_kernels_dotprod;
#endif
#if defined(__arm__) && defined(__linux__)
#define LL_HAVE_NEON_KERNELS 1
extern const ll_kernel_table ll_kernels_neon;
#endif
#if defined(__aarch64__)
/* the neon set's int8 step on panels (smull/smlal/sadalp), which aarch64's generic set
 * shares: NEON is aarch64's baseline */
void ll_gemm_s8_panels_scaled_neon(int M, int K, const uint8_t *panels, const int8_t *x,
                                   int32_t *acc, const float *s, float sx, float *y);
#endif

/* Packed float32 weights, the form every set's gemm_acc reads: rows in panels of
 * LL_PANEL_ROWS, each panel k-major (the panel's 16 weights of input k, then of k + 1, ...);
 * the last M % 16 rows form a narrower panel, M % 16 weights per input. No padding: a packed
 * (M, K) matrix is M K floats, like the row-major one. A whole panel is 16 K floats, so in a
 * buffer that starts on 64 bytes every whole panel does too. */
#define LL_PANEL_ROWS 16
/* packed (M K floats) = W (M, K) row-major, packed. */
void ll_pack_f32(int M, int K, const float *W, float *packed);

/* The portable int8 product (the generic set's, and the reference of the others):
 * acc[n*ldacc + m] = W[m,:] . X[n*ldx + :], the gemm_s8 contract above. */
void ll_gemm_s8_portable(int M, int N, int K, const int8_t *W, const int32_t *W_sums,
                         const int8_t *X, int ldx, int32_t *acc, int ldacc);
/* sums[m] = sum_k W[m,k] for W (M, K) int8: the W_sums of gemm_s8. */
void ll_row_sums_s8(int M, int K, const int8_t *W, int32_t *sums);

/* int8 weights in panels, the form gemm_s8_panels and gemm_s8_panels_scaled read: rows in
 * panels of LL_S8_PANEL_ROWS, each panel a run of 64-byte groups, group g holding inputs
 * 4g .. 4g + 3 of the panel's 16 rows, row by row (byte 4 r + j is W[16 panel + r, 4 g + j]),
 * each weight stored + LL_S8_PANEL_OFFSET: on x86 + 128 as an unsigned byte, for vpdpbusd
 * (unsigned weights times signed inputs) and for (v)pmaddwd without VNNI (unsigned bytes
 * widen to int16 with no sign to extend); on ARM as it is, a signed byte, for sdot (signed
 * times signed) and smull (kernels_neon.c). Rows past M and inputs past K are 0 (which, in either form, adds nothing: the
 * inputs past K are zero), so every panel is whole: ll_s8_panels_bytes(M, K) bytes,
 * starting on 64 bytes in a buffer that does. int8 weights are then held twice (row-major for the other
 * sets and inspection, panels for the product), as float32 ones are (arrays and packed). */
#define LL_S8_PANEL_ROWS 16
#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__)
#define LL_S8_PANEL_OFFSET 128
#else
#define LL_S8_PANEL_OFFSET 0
#endif
static inline size_t ll_s8_panels_bytes(int M, int K)
{
    return (size_t)((M + LL_S8_PANEL_ROWS - 1) / LL_S8_PANEL_ROWS) * LL_S8_PANEL_ROWS *
           (size_t)((K + 3) / 4) * 4;
}
void ll_pack_s8_panels(int M, int K, const int8_t *W, uint8_t *panels);

/* A stream's step on panels (the sets' gemm_s8_panels_scaled) prepares its column's inputs
 * once per call, group by group, for every panel to load; for up to LL_S8_COLUMN_GROUPS
 * groups at a time (512 inputs, a few KB of stack), a longer column going in parts. */
#define LL_S8_COLUMN_GROUPS 128
/* LL_UNFUSED(v): a float product v kept apart from the add after it. scale_acc_s8 (int8.c,
 * built without fused multiply-add) rounds the product first; the kernel files are built
 * with -ffp-contract=fast, and where their float side must give scale_acc_s8's bits they pass
 * the product through this empty asm, which GCC cannot look into to fuse. */
#if defined(__aarch64__)
#define LL_UNFUSED(v) __asm__("" : "+w"(v))
#elif defined(__x86_64__) || defined(_M_X64)
#define LL_UNFUSED(v) __asm__("" : "+x"(v))
#endif

/* The rows a stream's step on panels did not finish in its vector registers (a partial last
 * panel, or a column in parts): sums[r] for r < rows, one per row, modulo 2^32, are added to
 * what the column's earlier parts left in acc[r] (add); then either kept there for the next
 * part (!last), or, in the column's last part, less the panels' offset term corr (128 sum(x)
 * on x86, 0 on ARM), given the float side y[r] += s[r] * (sx * sum) with scale_acc_s8's
 * operations and rounding (int8.c, unfused): the bits of the separate passes. */
void ll_s8_column_rows(const int32_t *sums, int rows, int add, int last, uint32_t corr,
                       int32_t *acc, const float *s, float sx, float *y);
/* What the panels' offset adds to every row's sum against the column x of K values:
 * LL_S8_PANEL_OFFSET * sum(x), modulo 2^32 (0 on ARM) */
static inline uint32_t ll_s8_offset_term(const int8_t *x, int K)
{
    int32_t sum = 0;
    for (int k = 0; k < K; k++)
        sum += x[k];
    return (uint32_t)LL_S8_PANEL_OFFSET * (uint32_t)sum;
}
/* The four inputs of the column x's group that starts at k < K, as an int32's bytes in
 * memory order: zeros past K (against the panels' zero padding), nothing read past x + K. */
static inline int32_t ll_s8_group_bits(const int8_t *x, int K, int k)
{
    int32_t bits = 0;
    if (K - k >= 4)
        memcpy(&bits, x + k, 4);
    else
        memcpy(&bits, x + k, (size_t)(K - k));
    return bits;
}
/* Whether ll_layer_pack makes panels: some set this CPU runs reads them (dispatch.c). */
int ll_kernels_read_s8_panels(void);

/* The table in use; set once at import (ll_kernels_select), read by every cell. */
extern const ll_kernel_table *ll_active_kernels;

/* Scratch is carved into parts that each start at a multiple of 64 bytes (a cache line): a
 * cell computes the same offsets as its *_scratch_bytes() size query, from one function. */
#define LL_SCRATCH_ALIGN 64
static inline size_t ll_scratch_round(size_t bytes)
{
    return (bytes + (LL_SCRATCH_ALIGN - 1)) & ~(size_t)(LL_SCRATCH_ALIGN - 1);
}

/* Hands out the next part of a scratch buffer: returns its offset and advances `next` past
 * it, rounded up to the alignment. Sizing and carving go through the same calls. */
static inline size_t ll_scratch_take(size_t *next, size_t bytes)
{
    const size_t at = *next;
    *next += ll_scratch_round(bytes);
    return at;
}
#define LL_SCRATCH_AT(base, offset, type) ((type *)((unsigned char *)(base) + (offset)))

/* One weight matrix of a layer in its dtype: float32 w (packed), or int8 q with one scale and
 * one sum per row. */
typedef struct {
    const float *w;        /* float32 (M, K) packed (ll_pack_f32), or NULL for int8 */
    const int8_t *q;       /* int8 (M, K), or NULL for float32 */
    const float *s;        /* int8: M scales */
    const int32_t *sums;   /* int8: M row sums of q (ll_row_sums_s8) */
    const uint8_t *panels; /* int8: q in panels (ll_pack_s8_panels), or NULL */
} ll_matrix;

/* Rows [row0, ...) of a matrix of K columns. A packed float32 matrix, or int8 panels, has
 * its rows from row0 on only where it was packed in two parts, rows [0, row0) and the rest
 * (ll_layer_pack does so for GRU's W_hh); panels also where row0 is a multiple of 16. */
static inline ll_matrix ll_matrix_rows(ll_matrix A, int row0, int K)
{
    const size_t offset = (size_t)row0 * (size_t)K;
    ll_matrix rows = {A.w ? A.w + offset : NULL, A.q ? A.q + offset : NULL,
                      A.s ? A.s + row0 : NULL, A.sums ? A.sums + row0 : NULL,
                      A.panels ? A.panels + ll_s8_panels_bytes(row0, K) : NULL};
    return rows;
}

/* acc[n*ldacc + m] = A.q[m,:] . X[n*ldx + :], exactly (gemm_s8's contract), by the active
 * set: on A's panels where it has them and the set reads panels, else on the row-major q. */
void ll_s8_product(ll_matrix A, int M, int N, int K, const int8_t *X, int ldx, int32_t *acc,
                   int ldacc);

/* Working memory of the int8 products of up to N columns of up to K values into up to M
 * rows: the quantized columns, their scales and the int32 sums. Unused (NULL) in float32. */
typedef struct {
    int8_t *qx;     /* (N, K) */
    float *sx;      /* (N) */
    int32_t *acc;   /* (N, M) */
} ll_int8_work;

/* Takes the parts of ll_int8_work for N columns, K values, M rows with ll_scratch_take, and
 * finds them again in a scratch buffer; nothing (NULL pointers) for a float32 layer. */
void ll_int8_work_take(size_t *next, const ll_layer *layer, int N, int K, int M,
                       size_t offsets[3]);
ll_int8_work ll_int8_work_at(const ll_layer *layer, void *scratch, const size_t offsets[3]);
/* For a scratch that is nothing but that work (Dense, RNN): its bytes, and the work in it. */
size_t ll_int8_work_bytes(const ll_layer *layer, int N, int K, int M);
ll_int8_work ll_int8_work_alone(const ll_layer *layer, void *scratch, int N, int K, int M);

/* Y[n*ldy + m] += A[m,:] . X[n*ldx + :] for m < M, n < N, in A's dtype. int8: each column of X
 * is quantized (ll_quantize_s8) into work, the sums are exact int32, and
 * Y += s[m] * (sx[n] * acc) in float32 (int8.c). Every column gets the bits it gets alone. */
void ll_matrix_acc(ll_matrix A, int M, int N, int K, const float *X, int ldx, float *Y,
                   int ldy, ll_int8_work work);
/* ll_matrix_acc of a matrix packed in two parts, rows [0, row0) and [row0, M) (GRU's W_hh,
 * ll_layer_pack), both parts by the same columns: int8 quantizes the columns once. */
void ll_matrix_acc_two_parts(ll_matrix A, int row0, int M, int N, int K, const float *X,
                             int ldx, float *Y, int ldy, ll_int8_work work);

/* A recurrent layer's recurrent matrix for one direction. */
static inline ll_matrix ll_matrix_hh(const ll_layer *L, int dir)
{
    ll_matrix A = {L->packed_hh[dir], L->q_hh[dir], L->s_hh[dir], L->sums_hh[dir],
                   L->panels_hh[dir]};
    return A;
}

/* Scratch bytes of one step of `batch` streams of each layer kind (the cell files); for the
 * recurrent kinds, what the recurrent part needs (model.c adds the input gates). */
size_t ll_lstm_scratch_bytes(const ll_layer *layer, int batch);
size_t ll_gru_scratch_bytes(const ll_layer *layer, int batch);
size_t ll_rnn_scratch_bytes(const ll_layer *layer, int batch);
size_t ll_dense_scratch_bytes(const ll_layer *layer, int batch);
/* A Conv1d's scratch for N columns (streams, or a sequence's steps): their patches meet the
 * weights in one product. */
size_t ll_conv1d_scratch_bytes(const ll_layer *layer, int N);
/* A DFT Conv1d's FFT tables (conv.c), made by ll_layer_pack. */
size_t ll_conv1d_fft_tables_bytes(const ll_layer *layer);
void ll_conv1d_fft_tables(const ll_layer *layer, float *tables);

#endif
