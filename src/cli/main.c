/* ppnn: privacy-preserving neural-network inference (RNS-CKKS, BEAA element-wise packing).
 * Dispatches to one subcommand per file (cmd_*.c). */
#include <string.h>

#include "cli.h"

static const cli_command commands[] = {
    {"demo", "run the main job end to end on a built-in default", cmd_demo},
    {"data", "load a dataset split and print its statistics", cmd_data},
    {"train", "train a plaintext model (ReLU teacher or polynomial student, distillation)", cmd_train},
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
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(fp, "  %-10s %s\n", commands[i].name, commands[i].summary);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "ppnn: error: unknown command '%s' (ppnn --help lists them)\n", argv[1]);
    return 2;
}
