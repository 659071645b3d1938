/* ppnn demo: the main job end to end. Today: load and validate both datasets and print their
 * statistics — the largest part of the pipeline that exists. Grows into keygen -> encrypt ->
 * infer -> decrypt as the layers land (see the issues). */
#include <getopt.h>
#include <string.h>

#include "cli.h"
#include "ppnn/data.h"

void cli_print_data_stats(const data_set *ds, const char *name, const char *split);

static const char *usage_text = "usage: ppnn demo [--data mnist|fashion|DIR]\n";

int cmd_demo(int argc, char **argv)
{
    const char *data = "mnist";
    static const struct option opts[] = {{"data", 1, 0, 'd'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'd': data = optarg; break;
        case 'h': fputs(usage_text, stdout); return 0;
        default: fputs(usage_text, stderr); return 2;
        }
    }
    const char *splits[2] = {"train", "test"};
    for (int s = 0; s < 2; s++) {
        data_set ds;
        ppnn_status st = data_load(&ds, data, (data_split)s, 0, 0);
        if (st)
            return cli_fail("demo", st);
        cli_print_data_stats(&ds, data, splits[s]);
        data_set_free(&ds);
    }
    return 0;
}
