/* Chooses the kernel set once, at import, after a CPU feature check (numpy's habit), never
 * from build flags alone, so that one build runs on every CPU of its architecture:
 *   x86-64   generic (SSE2 baseline), avx2 when cpuid reports AVX2 and FMA, avx512 when it
 *            also reports AVX-512F and the OS saves the 512-bit registers, avx512vnni when
 *            it reports AVX-512BW and AVX-512 VNNI too (the int8 product on vpdpbusd);
 *            avxvnni between avx512 and avx2 when it reports AVX-VNNI (vpdpbusd on 256 bits)
 *   aarch64  generic, neon (every aarch64 CPU: Pi 3/4), dotprod when the kernel's hwcaps
 *            report ASIMDDP (Cortex-A76 of the Pi 5; not the A53/A72 of the Pi 3/4)
 *   armv7    generic (VFP), neon when the hwcaps report NEON (Pi 2/3/4 on 32-bit Pi OS)
 * Python's lstmlite.cpu_info() reports the choice; LSTMLITE_KERNELS=<name> forces a set. */
#include <string.h>

#include "kernels.h"

#if (defined(__aarch64__) || defined(__arm__)) && defined(__linux__)
#include <sys/auxv.h>
/* The hwcap bits, spelled out so that old C libraries' headers are not needed. */
#if defined(__aarch64__)
#define LL_HWCAP_ASIMD (1UL << 1)    /* AT_HWCAP, arch/arm64/include/uapi/asm/hwcap.h */
#define LL_HWCAP_ASIMDDP (1UL << 20)
#else
#define LL_HWCAP_NEON (1UL << 12)    /* AT_HWCAP, arch/arm/include/uapi/asm/hwcap.h */
#endif
#endif

const ll_kernel_table *ll_active_kernels = &ll_kernels_generic;

/* Best first: "auto" takes the first one the CPU runs. */
static const ll_kernel_table *const compiled_tables[] = {
    /* avx512 before avx2: on panel-packed weights neither has a scalar tail, a single step
     * costs the same or less 16 wide, and batches and sequences, whose products are bound by
     * arithmetic, run up to 1.6x faster (README). LSTMLITE_KERNELS=avx2 chooses avx2. */
#ifdef LL_HAVE_AVX512_KERNELS
    &ll_kernels_avx512vnni,
    &ll_kernels_avx512,
#endif
#ifdef LL_HAVE_AVX2_KERNELS
    &ll_kernels_avxvnni,
    &ll_kernels_avx2,
#endif
#ifdef LL_HAVE_DOTPROD_KERNELS
    &ll_kernels_dotprod,
#endif
#ifdef LL_HAVE_NEON_KERNELS
    &ll_kernels_neon,
#endif
    &ll_kernels_generic,
};
#define LL_TABLE_COUNT (sizeof compiled_tables / sizeof compiled_tables[0])

static const ll_kernel_table *find_table(const char *name)
{
    for (size_t i = 0; i < LL_TABLE_COUNT; i++)
        if (strcmp(name, compiled_tables[i]->name) == 0)
            return compiled_tables[i];
    return NULL;
}

const char *const *ll_kernels_compiled(void)
{
    static const char *names[LL_TABLE_COUNT + 1];
    for (size_t i = 0; i < LL_TABLE_COUNT; i++)
        names[i] = compiled_tables[i]->name;
    names[LL_TABLE_COUNT] = NULL;
    return names;
}

/* The x86-64 features probed, each through GCC's cpuid check (which takes a literal name; for
 * the AVX-512 ones it includes the OS's support (XGETBV) for the 512-bit state). */
#define LL_X86_FEATURES(X) X("avx2") X("fma") X("avxvnni") X("avx512f") X("avx512bw") X("avx512vnni")

static int have_feature(const char *feature)
{
#if defined(__x86_64__) || defined(_M_X64)
    __builtin_cpu_init();
#define LL_PROBE(name)                                                                     \
    if (strcmp(feature, name) == 0)                                                         \
        return __builtin_cpu_supports(name);
    LL_X86_FEATURES(LL_PROBE)
#undef LL_PROBE
#elif defined(__aarch64__) && defined(__linux__)
    const unsigned long hwcap = getauxval(AT_HWCAP);
    if (strcmp(feature, "neon") == 0)
        return (hwcap & LL_HWCAP_ASIMD) != 0;
    if (strcmp(feature, "asimddp") == 0)
        return (hwcap & LL_HWCAP_ASIMDDP) != 0;
#elif defined(__arm__) && defined(__linux__)
    const unsigned long hwcap = getauxval(AT_HWCAP);
    if (strcmp(feature, "neon") == 0)
        return (hwcap & LL_HWCAP_NEON) != 0;
#endif
    (void)feature;
    return 0;
}

const char *ll_cpu_features(void)
{
#define LL_NAME(name) name,
    static const char *const probed[] = {LL_X86_FEATURES(LL_NAME) "neon", "asimddp"};
#undef LL_NAME
    static char found[96];
    found[0] = '\0';
    for (size_t i = 0; i < sizeof probed / sizeof probed[0]; i++) {
        if (have_feature(probed[i])) {
            if (found[0])
                strcat(found, " ");
            strcat(found, probed[i]);
        }
    }
    return found;
}

int ll_kernels_supported(const char *name)
{
    const ll_kernel_table *table = find_table(name);
    if (table == NULL)
        return 0;
#ifdef LL_HAVE_AVX512_KERNELS
    if (table == &ll_kernels_avx512vnni)
        return ll_kernels_supported("avx512") && have_feature("avx512bw") &&
               have_feature("avx512vnni");
    if (table == &ll_kernels_avx512)
        return have_feature("avx512f") && have_feature("avx2") && have_feature("fma");
#endif
#ifdef LL_HAVE_AVX2_KERNELS
    if (table == &ll_kernels_avxvnni)
        return ll_kernels_supported("avx2") && have_feature("avxvnni");
    if (table == &ll_kernels_avx2)
        return have_feature("avx2") && have_feature("fma");
#endif
#ifdef LL_HAVE_DOTPROD_KERNELS
    if (table == &ll_kernels_dotprod)
        return have_feature("neon") && have_feature("asimddp");
#endif
#ifdef LL_HAVE_NEON_KERNELS
    if (table == &ll_kernels_neon)
        return have_feature("neon");
#endif
    return 1;
}

int ll_kernels_select(const char *name)
{
    if (name == NULL || name[0] == '\0' || strcmp(name, "auto") == 0) {
        for (size_t i = 0; i < LL_TABLE_COUNT; i++) {
            if (ll_kernels_supported(compiled_tables[i]->name)) {
                ll_active_kernels = compiled_tables[i];
                return 0;
            }
        }
        ll_active_kernels = &ll_kernels_generic;
        return 0;
    }
    if (!ll_kernels_supported(name))
        return -1;
    ll_active_kernels = find_table(name);
    return 0;
}

int ll_kernels_read_s8_panels(void)
{
    for (size_t i = 0; i < LL_TABLE_COUNT; i++)
        if ((compiled_tables[i]->gemm_s8_panels || compiled_tables[i]->gemm_s8_panels_scaled) &&
            ll_kernels_supported(compiled_tables[i]->name))
            return 1;
    return 0;
}

const char *ll_kernels_active(void)
{
    return ll_active_kernels->name;
}
