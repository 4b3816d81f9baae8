/*
 * C test harness for the kernels, without Python: each cell against a double-precision
 * reference written here from the equations, for every kernel set the CPU runs, at sizes that
 * are not multiples of the vector width; and the check that a step never calls malloc.
 * Built and run by tests/test_c_harness.py (and, later, under qemu-user for ARM).
 *
 *   cc -O2 -std=c11 -Isrc tests/c/test_kernels.c src/{dispatch,kernels_generic,kernels_avx2,
 *      activations,lstm,gru,rnn,dense,model}.c -lm -Wl,--wrap=malloc,--wrap=calloc,
 *      --wrap=realloc -o test_kernels && ./test_kernels
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lstmlite.h"

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

static void free_layer(ll_layer *L)
{
    free((void *)L->w_ih[0]);
    free((void *)L->w_hh[0]);
    free((void *)L->b_ih[0]);
    free((void *)L->b_hh[0]);
    free((void *)L->w_hr[0]);
    free((void *)L->peephole[0]);
}

/* One reference step of L in double; h (Hout) and c (H) updated in place. */
static void ref_step(const ll_layer *L, const double *x, double *h, double *c)
{
    const int H = L->hidden_size, I = L->input_size, P = L->proj_size;
    const int Hout = P ? P : H;
    const int G = L->kind == LL_LAYER_LSTM ? 4 : L->kind == LL_LAYER_GRU ? 3 : 1;
    double *gx = calloc((size_t)G * H, sizeof(double));
    double *gh = calloc((size_t)G * H, sizeof(double));
    for (int j = 0; j < G * H; j++) {
        gx[j] = L->b_ih[0][j];
        gh[j] = L->b_hh[0][j];
    }
    ref_gemv(G * H, I, L->w_ih[0], x, gx);
    ref_gemv(G * H, Hout, L->w_hh[0], h, gh);
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

static void test_cell(int kind, int I, int H, int P, int peephole, const char *kernels)
{
    ll_layer L = make_recurrent(kind, I, H, P, peephole);
    ll_model model = {1, &L};
    const int Hout = P ? P : H, steps = 25;
    float *state = calloc(ll_model_state_floats(&model, 1), sizeof(float));
    float *scratch = calloc(ll_model_scratch_floats(&model), sizeof(float));
    float *out = calloc((size_t)Hout, sizeof(float));
    double *h = calloc((size_t)Hout, sizeof(double)), *c = calloc((size_t)H, sizeof(double));
    double *xd = calloc((size_t)I, sizeof(double));
    double worst = 0;
    long allocations_in_steps = 0;
    for (int t = 0; t < steps; t++) {
        float *x = random_floats((size_t)I, t % 5 == 4 ? 20.0 : 1.0);
        for (int k = 0; k < I; k++)
            xd[k] = x[k];
        const long before = allocations;
        ll_model_step(&model, 1, x, state, scratch, out);
        allocations_in_steps += allocations - before;
        ref_step(&L, xd, h, c);
        double e = max_error(out, h, Hout);
        worst = e > worst ? e : worst;
        free(x);
    }
    char what[96];
    snprintf(what, sizeof what, "%s I=%d H=%d P=%d peephole=%d",
             kind == LL_LAYER_LSTM ? "LSTM" : kind == LL_LAYER_GRU ? "GRU" : "RNN", I, H, P,
             peephole);
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
}

static void test_softmax_dense(const char *kernels)
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
    float *x = random_floats(I, 5.0), y[11];
    double xd[19], ref[11] = {0}, max = -INFINITY, sum = 0;
    for (int k = 0; k < I; k++)
        xd[k] = x[k];
    for (int m = 0; m < O; m++)
        ref[m] = L.bias[m];
    ref_gemv(O, I, L.weight, xd, ref);
    for (int m = 0; m < O; m++)
        max = ref[m] > max ? ref[m] : max;
    for (int m = 0; m < O; m++)
        sum += (ref[m] = exp(ref[m] - max));
    for (int m = 0; m < O; m++)
        ref[m] /= sum;
    ll_dense_apply(&L, x, y);
    double e = max_error(y, ref, O);
    check(e <= 1e-6, "Dense softmax", kernels, e);
    free((void *)L.weight);
    free((void *)L.bias);
    free(x);
}

int main(void)
{
    const char *sets[] = {"generic", "avx2"};
    for (unsigned s = 0; s < sizeof sets / sizeof sets[0]; s++) {
        if (ll_kernels_select(sets[s]) != 0) {
            printf("kernel set %s: not available here\n", sets[s]);
            continue;
        }
        const int sizes[][2] = {{1, 1}, {3, 5}, {17, 13}, {40, 64}, {64, 129}};
        for (unsigned i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
            const int I = sizes[i][0], H = sizes[i][1];
            test_cell(LL_LAYER_LSTM, I, H, 0, 0, sets[s]);
            test_cell(LL_LAYER_LSTM, I, H + 1, H / 2, 1, sets[s]);
            test_cell(LL_LAYER_GRU, I, H, 0, 0, sets[s]);
            test_cell(LL_LAYER_RNN, I, H, 0, 0, sets[s]);
        }
        test_softmax_dense(sets[s]);
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
