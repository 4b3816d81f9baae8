/* Chooses the kernel set once, at import, after a CPU feature check (numpy's habit): the
 * portable set is the baseline; AVX2+FMA is taken only where the CPU reports both. Python's
 * lstmlite.cpu_info() reports the choice; LSTMLITE_KERNELS=generic forces the portable set. */
#include <string.h>

#include "kernels.h"

const ll_kernel_table *ll_active_kernels = &ll_kernels_generic;

static const ll_kernel_table *find_table(const char *name)
{
    if (strcmp(name, "generic") == 0)
        return &ll_kernels_generic;
#ifdef LL_HAVE_AVX2_KERNELS
    if (strcmp(name, "avx2") == 0)
        return &ll_kernels_avx2;
#endif
    return NULL;
}

int ll_kernels_supported(const char *name)
{
    const ll_kernel_table *table = find_table(name);
    if (table == NULL)
        return 0;
#ifdef LL_HAVE_AVX2_KERNELS
    if (table == &ll_kernels_avx2) {
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    }
#endif
    return 1;
}

int ll_kernels_select(const char *name)
{
    if (name == NULL || name[0] == '\0' || strcmp(name, "auto") == 0) {
        ll_active_kernels = &ll_kernels_generic;
#ifdef LL_HAVE_AVX2_KERNELS
        if (ll_kernels_supported("avx2"))
            ll_active_kernels = &ll_kernels_avx2;
#endif
        return 0;
    }
    if (!ll_kernels_supported(name))
        return -1;
    ll_active_kernels = find_table(name);
    return 0;
}

const char *ll_kernels_active(void)
{
    return ll_active_kernels->name;
}
