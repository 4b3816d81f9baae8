/*
 * C test harness for the kernels, without Python: each cell, float32 and int8, against a
 * double-precision reference written here from the equations, for every kernel set compiled
 * in that the CPU runs, at sizes that are not multiples of the vector width; every set's int8
 * sums against exact integer arithmetic (so every set gives the generic set's integers bit for
 * bit); batched steps and sequence runs against single steps, bit for bit; and the check that
 * a step never calls malloc. Built and run by tests/test_c_harness.py,
 * natively and, cross-compiled for aarch64 and armv7, under qemu-user.
 *
 *   cc -O2 -std=c11 -Isrc tests/c/test_kernels.c src/{dispatch,kernels_generic,kernels_avx2,
 *      kernels_avx512,
 *      kernels_neon,kernels_dotprod,int8,activations,lstm,gru,rnn,dense,model}.c -lm
 *      -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc -o test_kernels && ./test_kernels
 *
 * It prints one line per kernel set, "kernels <name>: <n> checks", then "<p> passed, <f> failed".
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"

/* ---- allocation counter (linked with -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc) ---- */
static long allocations;
void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n) { allocations++; return __real_malloc(n); }
void *__wrap_calloc(size_t n, size_t m) { allocations++; return __real_calloc(n, m); }
void *__wrap_realloc(void *p, size_t n) { allocations++; return __real_realloc(p, n); }

static int passed, failed;

static void check(int ok, const char *what, const char *kernels, double err)
{
    if (ok) {
        passed++;
    } else {
        failed++;
        printf("FAIL %s [%s]: error %.3g\n", what, kernels, err);
    }
}

static unsigned long long rng_state = 88172645463325252ULL;
static double uniform(void) /* xorshift64: the same numbers on every platform */
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (double)(rng_state >> 11) / 9007199254740992.0 * 2.0 - 1.0;
}

static float *random_floats(size_t n, double scale)
{
    float *p = __real_malloc(sizeof(float) * (n ? n : 1));
    for (size_t i = 0; i < n; i++)
        p[i] = (float)(uniform() * scale);
    return p;
}

static double sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }

static double max_error(const float *a, const double *b, int n)
{
    double e = 0.0;
    for (int i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= e)) /* catches NaN */
            e = d;
    }
    return e;
}

/* y = W x (+ y) in double */
static void ref_gemv(int M, int K, const float *W, const double *x, double *y)
{
    for (int m = 0; m < M; m++)
        for (int k = 0; k < K; k++)
            y[m] += (double)W[(size_t)m * K + k] * x[k];
}

/* Packs the layer as a Model does (ll_layer_pack), once its dtype is final; the caller frees
 * the buffer returned (NULL when there is nothing to pack). */
static void *pack(ll_layer *L)
{
    const size_t bytes = ll_layer_packed_bytes(L);
    void *buffer = bytes ? aligned_alloc(64, bytes) : NULL;
    ll_layer_pack(L, buffer);
    return buffer;
}

static ll_layer make_recurrent(int kind, int I, int H, int P, int with_peephole)
{
    const int G = kind == LL_LAYER_LSTM ? 4 : kind == LL_LAYER_GRU ? 3 : 1;
    ll_layer L;
    memset(&L, 0, sizeof L);
    L.kind = kind;
    L.input_size = I;
    L.hidden_size = H;
    L.proj_size = P;
    L.num_directions = 1;
    L.linear_before_reset = 1;
    L.clip = INFINITY;
    L.act[0][0].kind = kind == LL_LAYER_RNN ? LL_ACT_TANH : LL_ACT_SIGMOID;
    L.act[0][1].kind = LL_ACT_TANH;
    L.act[0][2].kind = LL_ACT_TANH;
    const int Hout = P ? P : H;
    L.w_ih[0] = random_floats((size_t)G * H * I, 1.0 / sqrt(I));
    L.w_hh[0] = random_floats((size_t)G * H * Hout, 1.0 / sqrt(Hout));
    L.b_ih[0] = random_floats((size_t)G * H, 0.5);
    L.b_hh[0] = random_floats((size_t)G * H, 0.5);
    if (P)
        L.w_hr[0] = random_floats((size_t)P * H, 1.0 / sqrt(H));
    if (with_peephole)
        L.peephole[0] = random_floats((size_t)3 * H, 0.5);
    return L;
}

/* A layer's weights as these tests make them: a recurrent layer's (direction 0) or a Dense's
 * and Conv1d's (the fields a layer does not use are NULL) */
static void free_layer(ll_layer *L)
{
    free((void *)L->weight);
    free((void *)L->bias);
    free((void *)L->q_weight);
    free((void *)L->s_weight);
    free((void *)L->w_ih[0]);
    free((void *)L->w_hh[0]);
    free((void *)L->b_ih[0]);
    free((void *)L->b_hh[0]);
    free((void *)L->w_hr[0]);
    free((void *)L->peephole[0]);
    free((void *)L->q_ih[0]);
    free((void *)L->q_hh[0]);
    free((void *)L->q_hr[0]);
    free((void *)L->s_ih[0]);
    free((void *)L->s_hh[0]);
    free((void *)L->s_hr[0]);
}

/* ---- int8 ---- */

/* Symmetric per-row int8 of a float matrix, as lstmlite's quantize() does it. */
static void quantize_rows(const float *W, int rows, int cols, const int8_t **q_out,
                          const float **s_out)
{
    int8_t *q = __real_malloc((size_t)rows * cols + 1);
    float *s = __real_malloc(sizeof(float) * (size_t)rows);
    for (int m = 0; m < rows; m++) {
        float peak = 0;
        for (int k = 0; k < cols; k++)
            peak = fabsf(W[(size_t)m * cols + k]) > peak ? fabsf(W[(size_t)m * cols + k]) : peak;
        s[m] = peak > 0 ? peak / 127.0f : 1.0f;
        for (int k = 0; k < cols; k++)
            q[(size_t)m * cols + k] = (int8_t)lrintf(W[(size_t)m * cols + k] / s[m]);
    }
    *q_out = q;
    *s_out = s;
}

/* The engine's per-step rule, written again from its contract (lstmlite.h): q = round half
 * to even of the float32 product x * (127 / peak); scale = peak / 127. rintf of a product
 * cannot be contracted into a fused multiply-add, so this matches on every target. */
static double ref_quantize(const double *x, int n, int *q)
{
    float peak = 0;
    for (int i = 0; i < n; i++)
        peak = fabsf((float)x[i]) > peak ? fabsf((float)x[i]) : peak;
    const float inv = 127.0f / peak;
    if (peak == 0) {
        for (int i = 0; i < n; i++)
            q[i] = 0;
        return 0.0;
    }
    for (int i = 0; i < n; i++)
        q[i] = (int)rintf((float)x[i] * inv);
    return peak / 127.0f;
}

/* y += (q * s) x through the quantization of x, in exact integers and double */
static void ref_int8_gemv(int M, int K, const int8_t *q, const float *s, const double *x,
                          double *y)
{
    int *qx = calloc((size_t)K + 1, sizeof(int));
    const double sx = ref_quantize(x, K, qx);
    for (int m = 0; m < M; m++) {
        long long acc = 0;
        for (int k = 0; k < K; k++)
            acc += (long long)q[(size_t)m * K + k] * qx[k];
        y[m] += (double)s[m] * sx * (double)acc;
    }
    free(qx);
}

static void make_int8(ll_layer *L)
{
    const int G = L->kind == LL_LAYER_LSTM ? 4 : L->kind == LL_LAYER_GRU ? 3 : 1;
    const int H = L->hidden_size, P = L->proj_size, Hout = P ? P : H;
    L->weight_dtype = LL_DTYPE_INT8;
    quantize_rows(L->w_ih[0], G * H, L->input_size, &L->q_ih[0], &L->s_ih[0]);
    quantize_rows(L->w_hh[0], G * H, Hout, &L->q_hh[0], &L->s_hh[0]);
    if (P)
        quantize_rows(L->w_hr[0], P, H, &L->q_hr[0], &L->s_hr[0]);
}

/* Every set's int8 product equals exact integer arithmetic, hence the generic set's, at
 * sizes around the vector widths (16, 32) and at the extremes of the range, for one column
 * and for several (the batched and sequence paths); on row-major W, and on VNNI panels for
 * the sets that read them (M around the 16-row panels, K around the groups of 4). */
static void test_gemm_s8(const char *kernels)
{
    /* (M, K, N): K around the slice widths (16, 32, 64), their halves and their tails, M
     * around the tiles' 4 rows, N around their 1, 2, 4 columns and the 64-column blocks */
    const int sizes[][3] = {{1, 1, 1},    {3, 5, 2},     {4, 16, 1},   {5, 31, 3},
                            {7, 32, 4},   {9, 33, 1},    {13, 64, 5},  {256, 40, 8},
                            {33, 129, 2}, {8, 515, 3},   {6, 63, 7},   {11, 65, 9},
                            {4, 127, 6},  {17, 128, 11}, {10, 24, 67}, {3, 200, 130},
                            /* K of half a NEON slice and more, but under a slice */
                            {9, 8, 1},    {8, 12, 2},    {12, 15, 5},  {8, 40, 1},
                            /* one column longer than NEON's 512 inputs of broadcasts at a
                             * time, whole panels and a partial one */
                            {20, 600, 1}, {32, 1030, 1}};
    const ll_kernel_table *K = ll_active_kernels;
    for (unsigned i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        const int M = sizes[i][0], D = sizes[i][1], N = sizes[i][2];
        for (int extreme = 0; extreme < 2; extreme++) {
            int8_t *W = __real_malloc((size_t)M * D), *X = __real_malloc((size_t)N * D);
            int32_t *acc = __real_malloc(sizeof(int32_t) * M * N);
            for (size_t j = 0; j < (size_t)M * D; j++)
                W[j] = extreme ? (uniform() < 0 ? -127 : 127) : (int8_t)lrint(uniform() * 127);
            for (size_t k = 0; k < (size_t)N * D; k++)
                X[k] = extreme ? (uniform() < 0 ? -127 : 127) : (int8_t)lrint(uniform() * 127);
            if (extreme) /* the largest sum the contract allows: every product +127*127 */
                for (size_t j = 0; j < (size_t)D; j++)
                    W[j] = X[j];
            int32_t *sums = __real_malloc(sizeof(int32_t) * M);
            ll_row_sums_s8(M, D, W, sums);
            uint8_t *panels = __real_malloc(ll_s8_panels_bytes(M, D));
            ll_pack_s8_panels(M, D, W, panels);
            /* the row-major product, then the one a layer's step calls, which takes the
             * panels where the set reads them (the same checks in every set) */
            const ll_matrix A = {NULL, W, NULL, sums, panels};
            for (int layout = 0; layout < 2; layout++) {
                if (layout)
                    ll_s8_product(A, M, N, D, X, D, acc, M);
                else
                    K->gemm_s8(M, N, D, W, sums, X, D, acc, M);
                long long worst = 0;
                for (int n = 0; n < N; n++) {
                    for (int m = 0; m < M; m++) {
                        long long exact = 0;
                        for (int k = 0; k < D; k++)
                            exact += (long long)W[(size_t)m * D + k] * X[(size_t)n * D + k];
                        const long long d = llabs(exact - acc[(size_t)n * M + m]);
                        worst = d > worst ? d : worst;
                    }
                }
                char what[80];
                snprintf(what, sizeof what, "int8 product M=%d K=%d N=%d%s%s", M, D, N,
                         extreme ? " at +-127" : "", layout ? " (ll_s8_product)" : "");
                check(worst == 0, what, kernels, (double)worst);
            }
            {
                /* a stream's product and its float side as a layer's step takes them (in one
                 * pass where the set has it): the bits of the exact sums through the set's
                 * own scale_acc_s8, for every column */
                float *s = random_floats((size_t)M, 1e-2), *y = random_floats((size_t)M, 1.0);
                float *expected = __real_malloc(sizeof(float) * M);
                int32_t *exact = __real_malloc(sizeof(int32_t) * M);
                int same = 1;
                for (int n = 0; n < N; n++) {
                    const float sx = 0.5f + (float)n / 7.0f;
                    for (int m = 0; m < M; m++) {
                        long long sum = 0;
                        for (int k = 0; k < D; k++)
                            sum += (long long)W[(size_t)m * D + k] * X[(size_t)n * D + k];
                        exact[m] = (int32_t)sum;
                    }
                    memcpy(expected, y, sizeof(float) * M);
                    K->scale_acc_s8(M, exact, s, sx, expected);
                    if (K->gemm_s8_panels_scaled) {
                        K->gemm_s8_panels_scaled(M, D, panels, X + (size_t)n * D, acc, s, sx, y);
                    } else {
                        ll_s8_product(A, M, 1, D, X + (size_t)n * D, D, acc, M);
                        K->scale_acc_s8(M, acc, s, sx, y);
                    }
                    same &= memcmp(expected, y, sizeof(float) * M) == 0;
                }
                char what[96];
                snprintf(what, sizeof what, "int8 step's product and float side M=%d K=%d%s", M,
                         D, extreme ? " at +-127" : "");
                check(same, what, kernels, 0);
                free(s);
                free(y);
                free(expected);
                free(exact);
            }
            free(panels);
            free(W);
            free(X);
            free(acc);
            free(sums);
        }
    }
}

/* The float product of N columns: within rounding of double, and every column the same bits
 * as that column alone (N = 1), at sizes around the vector widths and the column blocks. */
static void test_gemm(const char *kernels)
{
    /* M across whole panels, groups of panels and a partial last panel; N through every
     * tile width (8, 4, 2, 1 columns) */
    const int sizes[][3] = {{1, 1, 1}, {5, 3, 2}, {4, 8, 3}, {9, 17, 5}, {16, 40, 8},
                            {7, 129, 7}, {12, 2100, 9}, {149, 33, 15}, {256, 64, 1},
                            {130, 7, 17}, {48, 5, 6}};
    const ll_kernel_table *K = ll_active_kernels;
    for (unsigned i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        const int M = sizes[i][0], D = sizes[i][1], N = sizes[i][2];
        float *W = random_floats((size_t)M * D, 1.0), *X = random_floats((size_t)N * D, 1.0);
        float *Y = random_floats((size_t)N * M, 1.0), *y1 = calloc((size_t)M, sizeof(float));
        float *Y0 = calloc((size_t)N * M, sizeof(float));
        float *packed = calloc((size_t)M * D, sizeof(float));
        memcpy(Y0, Y, sizeof(float) * N * M);
        ll_pack_f32(M, D, W, packed);
        double *ref = calloc((size_t)M, sizeof(double)), *xd = calloc((size_t)D, sizeof(double));
        K->gemm_acc(M, N, D, packed, X, D, Y, M);
        double worst = 0;
        int same = 1;
        for (int n = 0; n < N; n++) {
            for (int k = 0; k < D; k++)
                xd[k] = X[(size_t)n * D + k];
            for (int m = 0; m < M; m++)
                ref[m] = Y0[(size_t)n * M + m];
            ref_gemv(M, D, W, xd, ref);
            /* a sum is one chain of D multiply-adds of terms up to 1 in size: at most
             * about one float32 rounding unit (at 1) per term */
            const double e = max_error(Y + (size_t)n * M, ref, M) / (D + 1);
            worst = e > worst ? e : worst;
            memcpy(y1, Y0 + (size_t)n * M, sizeof(float) * M);
            K->gemm_acc(M, 1, D, packed, X + (size_t)n * D, D, y1, M);
            same &= memcmp(y1, Y + (size_t)n * M, sizeof(float) * M) == 0;
        }
        char what[80];
        snprintf(what, sizeof what, "float product M=%d K=%d N=%d", M, D, N);
        check(worst <= 1.2e-7, what, kernels, worst);
        snprintf(what, sizeof what, "float product M=%d K=%d N=%d: columns as alone", M, D, N);
        check(same, what, kernels, 0);
        free(W);
        free(X);
        free(Y);
        free(Y0);
        free(packed);
        free(y1);
        free(ref);
        free(xd);
    }
}

/* B streams stepped together equal each stream stepped alone, bit for bit, and a sequence
 * run (ll_layer_sequence, the input gates computed ahead in chunks) equals stepping it. */
static void test_batch_and_sequence(int kind, int I, int H, int P, int int8,
                                    const char *kernels)
{
    ll_layer L = make_recurrent(kind, I, H, P, kind == LL_LAYER_LSTM);
    if (int8)
        make_int8(&L);
    void *packed = pack(&L);
    ll_model model = {1, &L};
    const int B = 3, T = 37, Hout = P ? P : H, Cs = kind == LL_LAYER_LSTM ? H : 0;
    float *X = random_floats((size_t)B * T * I, 2.0);
    float *batch_state = calloc(ll_model_state_bytes(&model, B), 1);
    float *single_state = calloc(ll_model_state_bytes(&model, 1), 1);
    void *batch_scratch = calloc(ll_model_scratch_bytes(&model, B), 1);
    void *single_scratch = calloc(ll_model_scratch_bytes(&model, 1), 1);
    float *xb = calloc((size_t)B * I, sizeof(float)), *ob = calloc((size_t)B * Hout, 4);
    float *stepped = calloc((size_t)B * T * Hout, sizeof(float));
    float *o1 = calloc((size_t)Hout, sizeof(float));
    int batch_same = 1;
    long allocations_in_steps = 0;
    for (int t = 0; t < T; t++) {
        for (int b = 0; b < B; b++)
            memcpy(xb + (size_t)b * I, X + ((size_t)b * T + t) * I, sizeof(float) * I);
        const long before = allocations;
        ll_model_step(&model, B, xb, batch_state, batch_scratch, ob);
        allocations_in_steps += allocations - before;
        for (int b = 0; b < B; b++)
            memcpy(stepped + ((size_t)b * T + t) * Hout, ob + (size_t)b * Hout,
                   sizeof(float) * Hout);
    }
    for (int b = 0; b < B; b++) {
        memset(single_state, 0, ll_model_state_bytes(&model, 1));
        for (int t = 0; t < T; t++) {
            ll_model_step(&model, 1, X + ((size_t)b * T + t) * I, single_state, single_scratch,
                          o1);
            batch_same &= memcmp(o1, stepped + ((size_t)b * T + t) * Hout, 4 * Hout) == 0;
        }
    }
    /* the sequence, with a shorter second sequence to cross the chunk edges unevenly */
    float *out = calloc((size_t)B * T * Hout, sizeof(float));
    float *h = calloc((size_t)B * Hout, sizeof(float)), *c = calloc((size_t)B * H, 4);
    void *sequence_scratch = calloc(ll_layer_sequence_scratch_bytes(&L), 1);
    const int32_t lengths[3] = {T, 20, T};
    const long before = allocations;
    ll_layer_sequence(&L, B, T, X, out, lengths, h, Cs ? c : NULL, sequence_scratch);
    allocations_in_steps += allocations - before;
    int sequence_same = memcmp(out, stepped, sizeof(float) * T * Hout) == 0
                        && memcmp(out + (size_t)2 * T * Hout, stepped + (size_t)2 * T * Hout,
                                  sizeof(float) * T * Hout) == 0
                        && memcmp(out + (size_t)T * Hout, stepped + (size_t)T * Hout,
                                  sizeof(float) * 20 * Hout) == 0;
    char what[112];
    const char *name = kind == LL_LAYER_LSTM ? "LSTM" : kind == LL_LAYER_GRU ? "GRU" : "RNN";
    snprintf(what, sizeof what, "%s%s I=%d H=%d P=%d: 3 streams together = each alone",
             int8 ? "int8 " : "", name, I, H, P);
    check(batch_same, what, kernels, 0);
    snprintf(what, sizeof what, "%s%s I=%d H=%d P=%d: sequence run = steps", int8 ? "int8 " : "",
             name, I, H, P);
    check(sequence_same, what, kernels, 0);
    check(allocations_in_steps == 0, "no allocation in batched steps and sequence runs",
          kernels, (double)allocations_in_steps);
    free(X);
    free(batch_state);
    free(single_state);
    free(batch_scratch);
    free(single_scratch);
    free(xb);
    free(ob);
    free(stepped);
    free(o1);
    free(out);
    free(h);
    free(c);
    free(sequence_scratch);
    free_layer(&L);
    free(packed);
}

static void test_quantize(const char *kernels)
{
    float x[5] = {0.5f, -2.0f, 1.0f, 0.0f, 2.0f};
    int8_t q[5];
    float s = ll_quantize_s8(x, 5, q);
    check(s == 2.0f / 127.0f && q[1] == -127 && q[4] == 127 && q[3] == 0 && q[0] == 32,
          "quantize: scale peak/127, q = round(x*127/peak)", kernels, s);
    float zeros[3] = {0, 0, 0};
    s = ll_quantize_s8(zeros, 3, q);
    check(s == 0.0f && q[0] == 0 && q[2] == 0, "quantize: zeros give scale 0", kernels, s);
    float with_nan[3] = {1.0f, NAN, 2.0f};
    s = ll_quantize_s8(with_nan, 3, q);
    check(isnan(s) && q[0] == 0, "quantize: NaN gives a NaN scale", kernels, s);
    float with_inf[2] = {1.0f, -INFINITY};
    s = ll_quantize_s8(with_inf, 2, q);
    check(isnan(s), "quantize: infinity gives a NaN scale", kernels, s);
    float tiny[2] = {1e-38f, -1e-39f};
    s = ll_quantize_s8(tiny, 2, q);
    check(s == 0.0f, "quantize: a peak whose inverse overflows counts as zero", kernels, s);
}

/* One reference step of L in double; h (Hout) and c (H) updated in place. */
static void ref_step(const ll_layer *L, const double *x, double *h, double *c)
{
    const int H = L->hidden_size, I = L->input_size, P = L->proj_size;
    const int Hout = P ? P : H;
    const int G = L->kind == LL_LAYER_LSTM ? 4 : L->kind == LL_LAYER_GRU ? 3 : 1;
    double *gx = calloc((size_t)G * H, sizeof(double));
    double *gh = calloc((size_t)G * H, sizeof(double));
    const int int8 = L->weight_dtype == LL_DTYPE_INT8;
    for (int j = 0; j < G * H; j++) {
        gx[j] = L->b_ih[0][j];
        gh[j] = L->b_hh[0][j];
    }
    if (int8) {
        ref_int8_gemv(G * H, I, L->q_ih[0], L->s_ih[0], x, gx);
        ref_int8_gemv(G * H, Hout, L->q_hh[0], L->s_hh[0], h, gh);
    } else {
        ref_gemv(G * H, I, L->w_ih[0], x, gx);
        ref_gemv(G * H, Hout, L->w_hh[0], h, gh);
    }
    if (L->kind == LL_LAYER_LSTM) {
        const float *p = L->peephole[0];
        double *full = calloc((size_t)H, sizeof(double));
        for (int j = 0; j < H; j++) {
            double i = sigmoid(gx[j] + gh[j] + (p ? p[j] * c[j] : 0));
            double f = sigmoid(gx[H + j] + gh[H + j] + (p ? p[2 * H + j] * c[j] : 0));
            double g = tanh(gx[2 * H + j] + gh[2 * H + j]);
            c[j] = f * c[j] + i * g;
            double o = sigmoid(gx[3 * H + j] + gh[3 * H + j] + (p ? p[H + j] * c[j] : 0));
            full[j] = o * tanh(c[j]);
        }
        if (P) {
            for (int k = 0; k < P; k++)
                h[k] = 0;
            if (int8)
                ref_int8_gemv(P, H, L->q_hr[0], L->s_hr[0], full, h);
            else
                ref_gemv(P, H, L->w_hr[0], full, h);
        } else {
            memcpy(h, full, sizeof(double) * H);
        }
        free(full);
    } else if (L->kind == LL_LAYER_GRU) {
        for (int j = 0; j < H; j++) {
            double r = sigmoid(gx[j] + gh[j]);
            double z = sigmoid(gx[H + j] + gh[H + j]);
            double n = tanh(gx[2 * H + j] + r * gh[2 * H + j]);
            gx[j] = (1 - z) * n + z * h[j]; /* h is still read by the other units */
        }
        memcpy(h, gx, sizeof(double) * H);
    } else {
        for (int j = 0; j < H; j++)
            h[j] = tanh(gx[j] + gh[j]);
    }
    free(gx);
    free(gh);
}

static void test_cell(int kind, int I, int H, int P, int peephole, int int8,
                      const char *kernels)
{
    ll_layer L = make_recurrent(kind, I, H, P, peephole);
    if (int8)
        make_int8(&L);
    void *packed = pack(&L);
    ll_model model = {1, &L};
    const int Hout = P ? P : H, steps = 25;
    float *state = calloc(ll_model_state_bytes(&model, 1), 1);
    void *scratch = calloc(ll_model_scratch_bytes(&model, 1), 1);
    float *out = calloc((size_t)Hout, sizeof(float));
    double *h = calloc((size_t)Hout, sizeof(double)), *c = calloc((size_t)H, sizeof(double));
    double *xd = calloc((size_t)I, sizeof(double));
    double worst = 0;
    long allocations_in_steps = 0;
    for (int t = 0; t < steps; t++) {
        float *x = random_floats((size_t)I, t % 5 == 4 ? 20.0 : 1.0);
        for (int k = 0; k < I; k++)
            xd[k] = x[k];
        if (int8) {
            /* int8: the reference starts every step from the engine's state, so both quantize
             * the same floats; a free-running double reference would drift by 1e-7 and then
             * round some q the other way at a tie, a 1e-3 effect that says nothing. */
            for (int k = 0; k < Hout; k++)
                h[k] = state[k];
            if (kind == LL_LAYER_LSTM)
                for (int k = 0; k < H; k++)
                    c[k] = state[Hout + k];
        }
        const long before = allocations;
        ll_model_step(&model, 1, x, state, scratch, out);
        allocations_in_steps += allocations - before;
        ref_step(&L, xd, h, c);
        double e = max_error(out, h, Hout);
        if (int8 && P) {
            /* the projection quantizes o * tanh(c), which the engine computes with its own
             * tanh, so one element may round the other way at a tie: that moves h[m] by
             * s_hr[m] * q_hr[m, k] * s_full <= s_hr[m] (|q_hr| <= 127 and, as
             * |o * tanh(c)| < 1, s_full < 1/127). Allow one such step, nothing more. */
            double one_step = 0;
            for (int m = 0; m < P; m++)
                one_step = L.s_hr[0][m] > one_step ? L.s_hr[0][m] : one_step;
            e = e > one_step ? e - one_step : 0.0;
        }
        worst = e > worst ? e : worst;
        free(x);
    }
    char what[96];
    snprintf(what, sizeof what, "%s%s I=%d H=%d P=%d peephole=%d", int8 ? "int8 " : "",
             kind == LL_LAYER_LSTM ? "LSTM" : kind == LL_LAYER_GRU ? "GRU" : "RNN", I, H, P,
             peephole);
    /* int8: the reference repeats the quantization from the engine's own state, so only
     * float32 rounding remains (and, with a projection, the one step allowed above) */
    check(worst <= 1e-5, what, kernels, worst);
    check(allocations_in_steps == 0, "no allocation in ll_model_step", kernels,
          (double)allocations_in_steps);
    free(state);
    free(scratch);
    free(out);
    free(h);
    free(c);
    free(xd);
    free_layer(&L);
    free(packed);
}

static void test_softmax_dense(int int8, const char *kernels)
{
    const int I = 19, O = 11;
    ll_layer L;
    memset(&L, 0, sizeof L);
    L.kind = LL_LAYER_DENSE;
    L.input_size = I;
    L.hidden_size = O;
    L.num_directions = 1;
    L.weight = random_floats((size_t)O * I, 3.0);
    L.bias = random_floats(O, 1.0);
    L.dense_act.kind = LL_ACT_SOFTMAX;
    if (int8) {
        L.weight_dtype = LL_DTYPE_INT8;
        quantize_rows(L.weight, O, I, &L.q_weight, &L.s_weight);
    }
    void *packed = pack(&L);
    float *x = random_floats(I, 5.0), y[11];
    unsigned char scratch[512];
    double xd[19], ref[11] = {0}, max = -INFINITY, sum = 0;
    for (int k = 0; k < I; k++)
        xd[k] = x[k];
    for (int m = 0; m < O; m++)
        ref[m] = L.bias[m];
    if (int8)
        ref_int8_gemv(O, I, L.q_weight, L.s_weight, xd, ref);
    else
        ref_gemv(O, I, L.weight, xd, ref);
    for (int m = 0; m < O; m++)
        max = ref[m] > max ? ref[m] : max;
    for (int m = 0; m < O; m++)
        sum += (ref[m] = exp(ref[m] - max));
    for (int m = 0; m < O; m++)
        ref[m] /= sum;
    check(ll_layer_scratch_bytes(&L, 1) <= sizeof scratch, "Dense scratch size", kernels, 0);
    ll_dense_apply(&L, 1, x, I, y, O, scratch);
    double e = max_error(y, ref, O);
    check(e <= 1e-6, int8 ? "int8 Dense softmax" : "Dense softmax", kernels, e);
    free_layer(&L);
    free(packed);
    free(x);
}

/* A Conv1d (conv.c) against a double reference written from its contract (lstmlite.h): each
 * output position's patch gathered with the pad mode, multiplied by the group's rows, bias,
 * activation; int8 through each patch's own quantization. Shapes with odd sizes, groups,
 * stride > kernel, dilation, every pad mode, and 16+ output channels (whole panels); the
 * step allocates nothing. Then the Magnitude and Mean layers after it. */
static int ref_source(int i, int n, int mode)
{
    if (i >= 0 && i < n)
        return i;
    if (mode == LL_PAD_REFLECT)
        return i < 0 ? -i : 2 * (n - 1) - i;
    if (mode == LL_PAD_REPLICATE)
        return i < 0 ? 0 : n - 1;
    if (mode == LL_PAD_CIRCULAR)
        return i < 0 ? i + n : i - n;
    return -1;
}

static void test_conv1d(int C, int Lin, int M, int K, int S, int D, int G, int P0, int P1,
                        int mode, int int8, const char *kernels)
{
    ll_layer L;
    memset(&L, 0, sizeof L);
    L.kind = LL_LAYER_CONV1D;
    L.channels = C;
    L.length = Lin;
    L.input_size = C * Lin;
    L.hidden_size = M;
    L.kernel_size = K;
    L.stride = S;
    L.dilation = D;
    L.groups = G;
    L.pad_begin = P0;
    L.pad_end = P1;
    L.pad_mode = mode;
    L.num_directions = 1;
    L.dense_act.kind = LL_ACT_RELU;
    const int Cg = C / G, Mg = M / G, patch = Cg * K;
    L.weight = random_floats((size_t)M * patch, 1.0 / sqrt(patch));
    L.bias = random_floats(M, 0.5);
    if (int8) {
        L.weight_dtype = LL_DTYPE_INT8;
        quantize_rows(L.weight, M, patch, &L.q_weight, &L.s_weight);
    }
    void *packed = pack(&L);
    const int Lout = ll_conv1d_out_length(&L), O = ll_layer_output_size(&L);
    float *x = random_floats((size_t)L.input_size, 2.0);
    float *y = __real_malloc(sizeof(float) * (size_t)O);
    double *ref = __real_malloc(sizeof(double) * (size_t)O);
    double *column = __real_malloc(sizeof(double) * (size_t)patch);
    void *scratch = aligned_alloc(64, ll_scratch_round(ll_layer_scratch_bytes(&L, 1) + 64));
    for (int g = 0; g < G; g++)
        for (int p = 0; p < Lout; p++) {
            for (int c = 0; c < Cg; c++)
                for (int k = 0; k < K; k++) {
                    const int at = ref_source(p * S + k * D - P0, Lin, mode);
                    column[c * K + k] = at < 0 ? 0.0 : x[(size_t)(g * Cg + c) * Lin + at];
                }
            double sums[64] = {0};
            if (int8)
                ref_int8_gemv(Mg, patch, L.q_weight + (size_t)g * Mg * patch,
                              L.s_weight + g * Mg, column, sums);
            else
                ref_gemv(Mg, patch, L.weight + (size_t)g * Mg * patch, column, sums);
            for (int m = 0; m < Mg; m++) {
                const double v = sums[m] + L.bias[g * Mg + m];
                ref[(size_t)(g * Mg + m) * Lout + p] = v > 0 ? v : 0;
            }
        }
    const long before = allocations;
    ll_conv1d_apply(&L, 1, x, L.input_size, y, O, scratch);
    char what[96];
    snprintf(what, sizeof what, "%sConv1d C%d L%d M%d K%d S%d D%d G%d pads %d,%d mode %d",
             int8 ? "int8 " : "", C, Lin, M, K, S, D, G, P0, P1, mode);
    const double e = max_error(y, ref, O);
    check(e <= (int8 ? 1e-5 : 1e-5) && allocations == before, what, kernels, e);

    /* the magnitude of its first and second halves of channels, then the mean of positions */
    if (M % 2 == 0) {
        ll_layer mag, mean;
        memset(&mag, 0, sizeof mag);
        memset(&mean, 0, sizeof mean);
        mag.kind = LL_LAYER_MAGNITUDE;
        mag.input_size = O;
        mag.hidden_size = O / 2;
        mag.offsets[1] = O / 2;
        mag.channels = 1;
        mean.kind = LL_LAYER_MEAN;
        mean.channels = M / 2;
        mean.length = Lout;
        mean.input_size = O / 2;
        float *z = __real_malloc(sizeof(float) * (size_t)O);
        float w[64];
        ll_magnitude_apply(&mag, 1, y, O, z, O / 2);
        ll_mean_apply(&mean, 1, z, O / 2, w, M / 2);
        double worst = 0;
        for (int c = 0; c < M / 2; c++) {
            double sum = 0;
            for (int p = 0; p < Lout; p++) {
                const double re = y[(size_t)c * Lout + p], im = y[(size_t)(c + M / 2) * Lout + p];
                sum += sqrt(re * re + im * im);
            }
            const double err = fabs(w[c] - sum / Lout) / (1.0 + fabs(sum / Lout));
            worst = err > worst ? err : worst;
        }
        check(worst <= 1e-6, "Magnitude then Mean", kernels, worst);
        free(z);
    }
    free_layer(&L);
    free(packed);
    free(x);
    free(y);
    free(ref);
    free(column);
    free(scratch);
}

/* A Conv1d whose weight is a windowed DFT basis, computed as an FFT (conv.c): the same
 * values as the product with the basis, in double, to float32 rounding of the spectrum. */
static void test_conv1d_fft(int N, int bins, int sign, int stride, int pad, const char *kernels)
{
    const double pi = 3.14159265358979323846;
    ll_layer L;
    memset(&L, 0, sizeof L);
    L.kind = LL_LAYER_CONV1D;
    L.channels = 1;
    L.length = 3 * N + 5;
    L.input_size = L.length;
    L.hidden_size = 2 * bins;
    L.kernel_size = N;
    L.stride = stride;
    L.dilation = 1;
    L.groups = 1;
    L.pad_begin = pad;
    L.pad_end = pad;
    L.pad_mode = LL_PAD_REFLECT;
    L.num_directions = 1;
    L.fft_bins = bins;
    L.fft_sign = sign;
    float *weight = __real_malloc(sizeof(float) * 2 * bins * N);
    for (int k = 0; k < bins; k++)
        for (int n = 0; n < N; n++) {
            const double window = 0.5 - 0.5 * cos(2 * pi * n / N);
            weight[k * N + n] = (float)(window * cos(2 * pi * k * n / N));
            weight[(bins + k) * N + n] = (float)(sign * window * sin(2 * pi * k * n / N));
        }
    L.weight = weight;
    void *packed = pack(&L);
    const int Lout = ll_conv1d_out_length(&L), O = ll_layer_output_size(&L);
    float *x = random_floats((size_t)L.input_size, 1.0);
    float *y = __real_malloc(sizeof(float) * (size_t)O);
    double *ref = __real_malloc(sizeof(double) * (size_t)O);
    void *scratch = aligned_alloc(64, ll_scratch_round(ll_layer_scratch_bytes(&L, 1) + 64));
    double peak = 0;
    for (int p = 0; p < Lout; p++)
        for (int m = 0; m < 2 * bins; m++) {
            double sum = 0;
            for (int n = 0; n < N; n++) {
                const int at = ref_source(p * stride + n - pad, L.length, LL_PAD_REFLECT);
                sum += (double)weight[m * N + n] * x[at];
            }
            ref[(size_t)m * Lout + p] = sum;
            peak = fabs(sum) > peak ? fabs(sum) : peak;
        }
    const long before = allocations;
    ll_conv1d_apply(&L, 1, x, L.input_size, y, O, scratch);
    char what[64];
    snprintf(what, sizeof what, "Conv1d as an FFT N%d bins %d sign %d", N, bins, sign);
    const double e = max_error(y, ref, O) / (1.0 + peak);
    check(e <= 1e-6 && allocations == before, what, kernels, e);
    free(weight);
    free(packed);
    free(x);
    free(y);
    free(ref);
    free(scratch);
}

int main(void)
{
    const char *const *sets = ll_kernels_compiled();
    printf("cpu features: %s\n", ll_cpu_features());
    for (int s = 0; sets[s] != NULL; s++) {
        if (ll_kernels_select(sets[s]) != 0) {
            printf("kernels %s: not supported by this CPU\n", sets[s]);
            continue;
        }
        const int checks_before = passed + failed;
        const int sizes[][2] = {{1, 1}, {3, 5}, {17, 13}, {40, 64}, {64, 129}};
        for (int int8 = 0; int8 < 2; int8++) {
            for (unsigned i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
                const int I = sizes[i][0], H = sizes[i][1];
                test_cell(LL_LAYER_LSTM, I, H, 0, 0, int8, sets[s]);
                test_cell(LL_LAYER_LSTM, I, H + 1, H / 2, 1, int8, sets[s]);
                test_cell(LL_LAYER_GRU, I, H, 0, 0, int8, sets[s]);
                test_cell(LL_LAYER_RNN, I, H, 0, 0, int8, sets[s]);
            }
            test_softmax_dense(int8, sets[s]);
            test_batch_and_sequence(LL_LAYER_LSTM, 17, 13, 0, int8, sets[s]);
            test_batch_and_sequence(LL_LAYER_LSTM, 9, 12, 5, int8, sets[s]);
            test_batch_and_sequence(LL_LAYER_GRU, 40, 24, 0, int8, sets[s]);
            test_batch_and_sequence(LL_LAYER_RNN, 5, 9, 0, int8, sets[s]);
            /* C, L, M, K, stride, dilation, groups, pads, mode */
            test_conv1d(1, 200, 18, 64, 32, 1, 1, 0, 24, LL_PAD_REFLECT, int8, sets[s]);
            test_conv1d(13, 7, 20, 3, 1, 1, 1, 1, 1, LL_PAD_ZEROS, int8, sets[s]);
            test_conv1d(6, 11, 4, 3, 2, 2, 2, 2, 2, LL_PAD_REFLECT, int8, sets[s]);
            test_conv1d(4, 9, 6, 2, 5, 1, 2, 3, 1, LL_PAD_REPLICATE, int8, sets[s]);
            test_conv1d(9, 5, 33, 5, 3, 1, 3, 4, 5, LL_PAD_CIRCULAR, int8, sets[s]);
        }
        test_conv1d_fft(256, 129, -1, 128, 64, sets[s]); /* silero-vad's STFT */
        test_conv1d_fft(64, 20, 1, 16, 0, sets[s]);
        test_conv1d_fft(4, 3, -1, 1, 1, sets[s]);
        test_gemm_s8(sets[s]);
        test_gemm(sets[s]);
        test_quantize(sets[s]);
        printf("kernels %s: %d checks\n", sets[s], passed + failed - checks_before);
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
