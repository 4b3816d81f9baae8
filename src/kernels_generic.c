/* The portable kernel set: always built, and the reference the SIMD sets are tested against.
 * Compiled for the baseline of the target (SSE2 on x86-64, NEON on aarch64). */
#include "kernels.h"

#define LL_KERNEL_SUFFIX generic
#include "kernels_impl.h"
