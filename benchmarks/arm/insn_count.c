/*
 * A qemu-user TCG plugin (plugin API version 1, qemu 7.2) that counts the guest instructions
 * a program executes and writes the total to a file when it exits:
 *
 *   qemu-aarch64 -cpu cortex-a72 -plugin ./insn_count.so,outfile=count.txt ./prog
 *
 * Each translated block adds its instruction count to one counter every time it runs (an
 * inline add, no helper call). A program may mark the region to count with two system calls
 * whose first argument is -1 and second LL_MARK (python_step.py calls os.lseek(-1, LL_MARK,
 * 0), which fails harmlessly): then only the instructions between the two marks are written,
 * not those of starting the interpreter and importing the libraries, which vary from run to
 * run by more than a few steps cost. Built by bench_arm.py against the qemu-plugin.h of the
 * installed qemu's Debian source package. The guest must run one thread at a time: the
 * counter is shared and the inline add is not atomic (the peers are run on one thread).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <qemu-plugin.h>

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

#define LL_MARK 0x4C53544DULL /* "LSTM" */

static uint64_t executed;
static uint64_t marks[2];
static int marked;
static char outfile[4096];

static void syscall_seen(qemu_plugin_id_t id, unsigned int vcpu, int64_t number, uint64_t a1,
                         uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5, uint64_t a6,
                         uint64_t a7, uint64_t a8)
{
    if ((int32_t)a1 == -1 && a2 == LL_MARK && marked < 2)
        marks[marked++] = executed;
}

static void translated(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &executed,
                                             qemu_plugin_tb_n_insns(tb));
}

static void at_exit(qemu_plugin_id_t id, void *unused)
{
    const uint64_t counted = marked == 2 ? marks[1] - marks[0] : executed;
    FILE *out = outfile[0] ? fopen(outfile, "w") : NULL;
    if (out) {
        fprintf(out, "%" PRIu64 "\n", counted);
        fclose(out);
    } else {
        char line[64];
        snprintf(line, sizeof line, "insns: %" PRIu64 "\n", counted);
        qemu_plugin_outs(line);
    }
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info,
                                           int argc, char **argv)
{
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], "outfile=", 8) == 0) {
            strncpy(outfile, argv[i] + 8, sizeof outfile - 1);
        } else {
            fprintf(stderr, "insn_count: unknown argument %s (expected outfile=PATH)\n",
                    argv[i]);
            return -1;
        }
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, translated);
    qemu_plugin_register_vcpu_syscall_cb(id, syscall_seen);
    qemu_plugin_register_atexit_cb(id, at_exit, NULL);
    return 0;
}
