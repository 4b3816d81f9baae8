/*
 * The loop structure of the int8 product acc[m] = W[m,:] . x, shared by the SIMD kernel sets
 * so that each writes only its inner operation: four rows at a time (one prepared load of x
 * feeds four rows), LL_S8_WIDTH values per step, a scalar tail, then the leftover rows. The
 * sums are exact int32 in every set (see kernels.h for the range contract).
 *
 * The includer defines, then includes this file once per function:
 *   LL_S8_NAME            the function's name
 *   LL_S8_ACC             the accumulator type (int32 lanes)
 *   LL_S8_XOP             the type of a prepared slice of x
 *   LL_S8_WIDTH           int8 values per step
 *   LL_S8_ZERO()          a zero accumulator
 *   LL_S8_LOADX(p)        LL_S8_WIDTH values of x at p, prepared
 *   LL_S8_DOT(a, w, xop)  a plus the products of LL_S8_WIDTH weights at w with xop
 *   LL_S8_HSUM(a)         the int32 sum of a's lanes
 */
static void LL_S8_NAME(int M, int K, const int8_t *restrict W, const int8_t *restrict x,
                       int32_t *restrict acc)
{
    const size_t ld = (size_t)K;
    int m = 0;
    for (; m + 4 <= M; m += 4) {
        const int8_t *w0 = W + (size_t)m * ld, *w1 = w0 + ld, *w2 = w1 + ld, *w3 = w2 + ld;
        LL_S8_ACC a0 = LL_S8_ZERO(), a1 = a0, a2 = a0, a3 = a0;
        int k = 0;
        for (; k + LL_S8_WIDTH <= K; k += LL_S8_WIDTH) {
            const LL_S8_XOP xv = LL_S8_LOADX(x + k);
            a0 = LL_S8_DOT(a0, w0 + k, xv);
            a1 = LL_S8_DOT(a1, w1 + k, xv);
            a2 = LL_S8_DOT(a2, w2 + k, xv);
            a3 = LL_S8_DOT(a3, w3 + k, xv);
        }
        int32_t s0 = LL_S8_HSUM(a0), s1 = LL_S8_HSUM(a1), s2 = LL_S8_HSUM(a2),
                s3 = LL_S8_HSUM(a3);
        for (; k < K; k++) {
            const int32_t xk = x[k];
            s0 += w0[k] * xk;
            s1 += w1[k] * xk;
            s2 += w2[k] * xk;
            s3 += w3[k] * xk;
        }
        acc[m] = s0;
        acc[m + 1] = s1;
        acc[m + 2] = s2;
        acc[m + 3] = s3;
    }
    for (; m < M; m++) {
        const int8_t *w0 = W + (size_t)m * ld;
        LL_S8_ACC a0 = LL_S8_ZERO();
        int k = 0;
        for (; k + LL_S8_WIDTH <= K; k += LL_S8_WIDTH)
            a0 = LL_S8_DOT(a0, w0 + k, LL_S8_LOADX(x + k));
        int32_t s0 = LL_S8_HSUM(a0);
        for (; k < K; k++)
            s0 += w0[k] * (int32_t)x[k];
        acc[m] = s0;
    }
}

#undef LL_S8_NAME
#undef LL_S8_ACC
#undef LL_S8_XOP
#undef LL_S8_WIDTH
#undef LL_S8_ZERO
#undef LL_S8_LOADX
#undef LL_S8_DOT
#undef LL_S8_HSUM
