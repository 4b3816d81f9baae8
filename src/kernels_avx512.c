/* The portable kernel source compiled for AVX-512 (x86-64 servers and desktops since Skylake-X
 * and Zen 4): the float product's vectors are 16 wide, so a batch of streams or the steps
 * of a sequence, whose product is bound by arithmetic rather than by reading the weights, run
 * up to twice as fast as with AVX2. The int8 product is the AVX2 set's (kernels_avx2.c).
 * Chosen at run time only when the CPU and the OS support AVX-512F (dispatch.c). */
#include "kernels.h"

#ifdef LL_HAVE_AVX512_KERNELS
#pragma GCC target("avx512f,avx2,fma")

#define LL_GEMV_S8 ll_gemv_s8_avx2
#define LL_GEMM_WIDTH 16
#define LL_GEMM_COLS 8 /* 8 sums (and 8 broadcasts) of the 32 zmm registers */
/* an empty asm that claims to change w: GCC must keep it in one register rather than fold
 * its load into every multiply-add (gemm_f32_panels.h) */
#define LL_GEMM_IN_REGISTER(w) __asm__("" : "+v"(w))
#define LL_KERNEL_SUFFIX avx512
#include "kernels_impl.h"
#endif
