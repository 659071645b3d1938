/* ppnn: privacy-preserving neural-network inference (RNS-CKKS, BEAA element-wise packing).
 * Dispatches to one subcommand per file (cmd_*.c). */
#include <malloc.h>
#include <string.h>

#include "cli.h"

static const cli_command commands[] = {
    {"demo", "run the main job end to end on a built-in default", cmd_demo},
    {"data", "load a dataset split and print its statistics", cmd_data},
    {"train", "train a plaintext model (ReLU teacher or polynomial student, distillation)", cmd_train},
    {"import", "import an ONNX model (polynomial activations) as a ppnn model", cmd_import},
    {"eval", "plaintext accuracy of a model file on a dataset split", cmd_eval},
    {"keygen", "client: make a secret key and the server's evaluation keys", cmd_keygen},
    {"encrypt", "client: encrypt a batch of images (one image per slot)", cmd_encrypt},
    {"infer", "server: run a model on an encrypted batch (evaluation keys only)", cmd_infer},
    {"serve", "server: the network service (HTTPS, job queue; ppnn serve token add ...)", cmd_serve},
    {"submit", "client: send a batch to a ppnn server and fetch the result", cmd_submit},
    {"decrypt", "client: decrypt encrypted logits into predictions", cmd_decrypt},
    {"bench", "single-thread micro-benchmarks (ppnn bench ckks)", cmd_bench},
    {"compare", "element-wise (BEAA) vs channel-wise packing: accuracy and time report", cmd_compare},
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *fp)
{
    fprintf(fp, "usage: ppnn COMMAND [OPTIONS]   (ppnn COMMAND --help for details)\n\n"
                "Classify images on an untrusted server without it seeing them: RNS-CKKS\n"
                "homomorphic encryption with element-wise batch packing (BEAA, arXiv 2403.10920).\n\n"
                "commands:\n");
    fputs("Every command refuses to replace an existing file of another kind (e.g. a secret key\n"
          "with ciphertexts) unless given --force, and never writes over one of its inputs.\n\n",
          fp);
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(fp, "  %-10s %s\n", commands[i].name, commands[i].summary);
}

int main(int argc, char **argv)
{
    /* Ciphertexts are 64 KiB .. a few MiB each and live for one tile or one stage: a fixed mmap
     * threshold hands every one back to the kernel when freed. glibc's default raises the
     * threshold after the first such free, after which they come from arenas that fragment
     * and keep the memory (the deep net at n14 then peaked 1.8 GB above its schedule). */
    mallopt(M_MMAP_THRESHOLD, 256 * 1024);
    /* Setting the mmap threshold also fixes the trim threshold at 128 KiB: every free of the
     * per-call scratch below 256 KiB (encoder and encryption rows, key-switch digits) gave the
     * top of the heap back, and the next call faulted it in again (25 k faults per 784
     * encryptions). 32 MiB of free heap kept for reuse is small beside a ciphertext set. */
    mallopt(M_TRIM_THRESHOLD, 32 * 1024 * 1024);
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    /* --force (any command): replace an existing output file of another kind (ppnn/util.h,
     * "paths"). Taken out here so that every command accepts it the same way. */
    int force = 0, n = 2, options = 1;
    for (int i = 2; i < argc; i++) {
        if (options && !strcmp(argv[i], "--"))
            options = 0;
        if (options && !strcmp(argv[i], "--force"))
            force = 1;
        else
            argv[n++] = argv[i];
    }
    for (int i = n; i < argc; i++)
        argv[i] = NULL;
    argc = n;
    ppnn_paths_begin(force);
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "ppnn: error: unknown command '%s' (ppnn --help lists them)\n", argv[1]);
    return 2;
}
