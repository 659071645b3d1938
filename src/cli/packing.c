/* --packing element|channel|auto, the same in keygen, encrypt, infer, decrypt and submit.
 * The policy (which packing for how many images) is hnn_packing_decide; this file reads the
 * option, the costs file and the packing a batch file records, and prints the decision.
 *
 * Consistency: the packing is decided once, by whoever knows the images (encrypt, or keygen
 * given --count), and the batch file records it (ckks_batch_info.packing). infer, decrypt and
 * submit with --packing auto follow the file; with element or channel they check it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "ppnn/ckks_io.h"
#include "ppnn/hnn.h"

int cli_parse_packing(const char *cmd, const char *s, int *packing)
{
    static const char *const names[] = {"element", "channel", "auto"};
    for (int k = 0; k < 3; k++)
        if (!strcmp(s, names[k])) {
            *packing = k;
            return 0;
        }
    return cli_error(cmd, "--packing must be element, channel or auto, not '%s'", s);
}

const char *cli_arg_value(int argc, char **argv, const char *name)
{
    const size_t n = strlen(name);
    const char *v = NULL; /* the last one wins, as with getopt */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--"))
            break;
        if (strncmp(a, "--", 2) || strncmp(a + 2, name, n))
            continue;
        if (a[2 + n] == '=')
            v = a + 3 + n;
        else if (!a[2 + n] && i + 1 < argc)
            v = argv[++i];
    }
    return v;
}

int cli_dispatch_packing(const char *cmd, int argc, char **argv, int *packing, int *is_auto)
{
    *packing = CLI_PACK_ELEMENT;
    *is_auto = 0;
    const char *v = cli_arg_value(argc, argv, "packing"), *in = cli_arg_value(argc, argv, "in");
    int asked = CLI_PACK_ELEMENT;
    if (!v)
        return 0;
    if (cli_parse_packing(cmd, v, &asked))
        return 1;
    if (!in) {
        if (asked == CLI_PACK_AUTO)
            return cli_error(cmd, "--packing auto follows the batch file: --in FILE is required");
        *packing = asked;
        return 0;
    }
    *is_auto = asked == CLI_PACK_AUTO;
    return cli_follow_packing(cmd, in, asked, packing);
}

int cli_file_packing(const char *cmd, const char *path, int *packing)
{
    ckks_batch_set *s = NULL;
    ckks_params *params = NULL;
    ppnn_status st = ckks_batch_set_open(&s, &params, path);
    if (st)
        return cli_fail(cmd, st);
    ckks_batch_info info;
    ckks_batch_set_info(&info, s, SIZE_MAX);
    ckks_batch_set_close(s);
    ckks_params_free(params);
    *packing = info.packing == CKKS_PACKING_CHANNEL ? CLI_PACK_CHANNEL : CLI_PACK_ELEMENT;
    return 0;
}

int cli_follow_packing(const char *cmd, const char *path, int asked, int *packing)
{
    if (cli_file_packing(cmd, path, packing))
        return 1;
    static const char *const names[] = {"element", "channel"};
    if (asked != CLI_PACK_AUTO && asked != *packing)
        return cli_error(cmd, "%s is %s-wise batch (encrypt decided); drop --packing %s or "
                         "use --packing auto, which follows the file", path,
                         *packing == CLI_PACK_CHANNEL ? "a channel" : "an element",
                         names[asked]);
    return 0;
}

void cli_announce_packing(const char *cmd, const char *path, int packing)
{
    fprintf(stderr, "%s: packing: %s (recorded in %s)\n", cmd,
            packing == CLI_PACK_CHANNEL ? "channel-wise" : "element-wise", path);
}

ppnn_status cli_read_costs(hnn_op_costs *c, const char *path, unsigned logn)
{
    if (!path) {
        hnn_op_costs_default(c, logn);
        return PPNN_OK;
    }
    uint8_t *buf = NULL;
    size_t len = 0;
    ppnn_status st = ppnn_read_file(&buf, &len, path, 1u << 20);
    if (!st)
        st = hnn_op_costs_parse(c, (const char *)buf, len);
    free(buf);
    if (st)
        ppnn_error_context("--costs %s", path);
    return st;
}

int cli_load_costs(const char *cmd, hnn_op_costs *c, const char *path, unsigned logn)
{
    ppnn_status st = cli_read_costs(c, path, logn);
    return st ? cli_fail(cmd, st) : 0;
}

int cli_packing_auto(const char *cmd, int *out, char *why, size_t len, const nn_model *m,
                     const ckks_params *params, const char *costs_path, size_t images,
                     int threads)
{
    hnn_op_costs c;
    if (cli_load_costs(cmd, &c, costs_path, params->logn))
        return 1;
    hnn_packing_auto d;
    ppnn_status st = hnn_packing_decide(&d, m, m, params, NULL, &c, images, threads);
    if (st) {
        if (costs_path)
            ppnn_error_context("--costs %s", costs_path);
        return cli_fail(cmd, st);
    }
    snprintf(why, len, "%s [%s costs]", d.reason, costs_path ? costs_path : "built-in");
    *out = d.choice.packing == HNN_PACK_CHANNEL ? CLI_PACK_CHANNEL : CLI_PACK_ELEMENT;
    return 0;
}
