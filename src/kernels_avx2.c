/* The same kernel source as kernels_generic.c, compiled for AVX2 + FMA (Haswell, Zen and
 * later). Chosen at run time only when the CPU reports both features (dispatch.c). */
#include "kernels.h"

#ifdef LL_HAVE_AVX2_KERNELS
#pragma GCC target("avx2,fma")
#define LL_KERNEL_SUFFIX avx2
#include "kernels_impl.h"
#endif
