/* ppnn data: load a dataset split and print statistics (counts, class histogram, pixel mean). */
#include <getopt.h>
#include <string.h>

#include "cli.h"
#include "ppnn/data.h"

static const char *usage_text =
    "usage: ppnn data [--data mnist|fashion|DIR] [--split train|test] [--offset K] [--count N]\n"
    "Loads images and labels, validates them, and prints counts, the class histogram and pixel\n"
    "statistics (after normalisation to [0,1]).\n";

/* Prints statistics of a loaded set; shared with the demo. */
void cli_print_data_stats(const data_set *ds, const char *name, const char *split);
void cli_print_data_stats(const data_set *ds, const char *name, const char *split)
{
    size_t hist[DATA_NUM_CLASSES] = {0};
    double sum = 0, sumsq = 0;
    size_t npx = ds->count * ds->channels * ds->rows * ds->cols;
    for (size_t i = 0; i < ds->count; i++)
        hist[ds->labels[i]]++;
    for (size_t i = 0; i < npx; i++) {
        double v = ds->pixels[i] / 255.0;
        sum += v;
        sumsq += v * v;
    }
    double mean = npx ? sum / (double)npx : 0;
    if (ds->channels == 1)
        printf("%s/%s: %zu images of %zux%zu from %s\n", name, split, ds->count, ds->rows,
               ds->cols, ds->source);
    else
        printf("%s/%s: %zu images of %zux%zux%zu from %s\n", name, split, ds->count,
               ds->channels, ds->rows, ds->cols, ds->source);
    printf("  pixel mean %.4f, std %.4f (normalised to [0,1])\n", mean,
           npx ? __builtin_sqrt(sumsq / (double)npx - mean * mean) : 0.0);
    printf("  classes:");
    for (int c = 0; c < DATA_NUM_CLASSES; c++)
        printf(" %d:%zu", c, hist[c]);
    printf("\n");
}

int cmd_data(int argc, char **argv)
{
    const char *data = "mnist", *split_s = "test";
    size_t offset = 0, count = 0;
    static const struct option opts[] = {{"data", 1, 0, 'd'},  {"split", 1, 0, 's'},
                                         {"offset", 1, 0, 'o'}, {"count", 1, 0, 'n'},
                                         {"help", 0, 0, 'h'},  {0, 0, 0, 0}};
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'd': data = optarg; break;
        case 's': split_s = optarg; break;
        case 'o':
            if (cli_parse_size("data", "--offset", optarg, 0, 1u << 30, &offset))
                return 1;
            break;
        case 'n':
            if (cli_parse_size("data", "--count", optarg, 1, 1u << 30, &count))
                return 1;
            break;
        case 'h': fputs(usage_text, stdout); return 0;
        default: return cli_usage_error("data", argc, argv);
        }
    }
    if (optind != argc)
        return cli_error("data", "unexpected argument '%s'", argv[optind]);
    data_split split;
    ppnn_status st = data_split_parse(&split, split_s);
    if (st)
        return cli_fail("data", st);
    data_set ds;
    if ((st = data_load(&ds, data, split, offset, count)))
        return cli_fail("data", st);
    cli_print_data_stats(&ds, data, split_s);
    data_set_free(&ds);
    return 0;
}
