/* ppnn compare: the report (DIR/compare.md), its plots (DIR/amortized.svg, DIR/accuracy.svg)
 * and the headline deltas against the paper's. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "compare.h"
#include "svg.h"

/* BEAA (arXiv 2403.10920), element-wise vs channel-wise at 4096 images: +1.65 accuracy points
 * and -99.5 % amortized inference time. */
#define PAPER_ACC_DELTA 1.65
#define PAPER_TIME_DELTA (-99.5)

static double elem_amortized_ms(const cmp_results *r, size_t i, const cmp_config *c)
{
    return 1e3 * r->elem_server[i] / (double)c->batches[i];
}

static double chan_amortized_ms(const cmp_results *r, size_t i, const cmp_config *c)
{
    return 1e3 * r->chan_total[i] / (double)c->batches[i];
}

static void write_tables(FILE *f, const cmp_config *c, const cmp_results *r)
{
    static const char *names[CMP_NMODELS] = {"ReLU teacher", "element-wise + KD (BEAA)",
                                             "channel-wise + KD"};
    fprintf(f, "## Accuracy (%s test set)\n\n", c->data);
    fprintf(f, "| model | plaintext (%zu images) | encrypted | images encrypted | plaintext on "
               "those images | agreement | max abs logit error |\n|---|---|---|---|---|---|---|\n",
            r->test_count);
    for (int k = 0; k < CMP_NMODELS; k++) {
        fprintf(f, "| %s | %.2f %% |", names[k], r->plain_acc[k]);
        int e = k - 1;
        if (k == CMP_TEACHER || (k == CMP_ELEMENT && !r->elem_measured))
            fprintf(f, " %s | | | | |\n", k == CMP_TEACHER ? "(not encrypted: ReLU)"
                                                           : "not measured");
        else
            fprintf(f, " %.2f %% | %zu | %.2f %% | %.2f %% | %.3g |\n", r->enc_acc[e],
                    r->enc_count[e], r->enc_plain_acc[e], r->agree[e], r->max_err[e]);
    }
    if (r->elem_measured)
        fprintf(f, "\nElement-wise logit error: measured max %.3g; the planner's "
                   "high-probability estimate %.3g, its worst-case bound %.3g "
                   "(docs/precision.md).\n", r->max_err[0], r->elem_est_err, r->elem_bound_err);
    if (r->elem_measured)
        fprintf(f, "\nEncrypted accuracy on the first %zu test images, which both packings "
                   "encrypted: element-wise %.2f %%, channel-wise %.2f %%.\n",
                r->sample_count, r->elem_acc_sample, r->chan_acc_sample);
    fprintf(f, "\n## Inference time per batch (server)\n\n");
    fprintf(f, "Element-wise: measured (one run per batch size; client encryption in its own "
               "column). Channel-wise: **extrapolated linearly** from %zu images evaluated in "
               "parallel over images on %d threads in %.2f s: total(B) = ceil(B/T) * T * "
               "wall/n.\n\n",
            r->enc_count[1], r->threads, r->chan_wall);
    fprintf(f, "| batch | element total (s) | element ms/image | element client encryption (s) "
               "| channel total (s, extrapolated) | channel ms/image (extrapolated) | time "
               "delta |\n|---|---|---|---|---|---|---|\n");
    for (size_t i = 0; i < c->nbatches; i++) {
        fprintf(f, "| %zu |", c->batches[i]);
        if (r->elem_measured)
            fprintf(f, " %.3f | %.4f | %.3f |", r->elem_server[i], elem_amortized_ms(r, i, c),
                    r->elem_encrypt[i]);
        else
            fprintf(f, " not measured | not measured | not measured |");
        fprintf(f, " %.3f | %.3f |", r->chan_total[i], chan_amortized_ms(r, i, c));
        if (r->elem_measured)
            fprintf(f, " %+.2f %% |\n",
                    100.0 * (elem_amortized_ms(r, i, c) / chan_amortized_ms(r, i, c) - 1.0));
        else
            fprintf(f, " |\n");
    }
    fprintf(f, "\n## Automatic packing (`--packing auto`)\n\nCost model (%s operation costs): "
               "one element-wise batch %.3f s and one channel-wise image %.4f s single-thread "
               "predicted; element-wise predicted no slower from **%zu images** on %d threads.\n\n"
               "| batch | auto chooses | measured faster | auto's time (s, measured) | lower "
               "envelope (s) | auto vs envelope |\n|---|---|---|---|---|---|\n",
            r->costs_from_file ? c->costs : "built-in", r->pred_elem_batch, r->pred_chan_image,
            r->pred_crossover, r->threads);
    size_t on_env = 0, worst_b = 0;
    double worst = 0;
    for (size_t i = 0; i < c->nbatches; i++) {
        const char *ch = hnn_packing_name(r->choice[i]);
        if (!r->elem_measured) {
            fprintf(f, "| %zu | %s | (element-wise not measured) | |\n", c->batches[i], ch);
            continue;
        }
        int ce = r->elem_server[i] <= r->chan_total[i];
        double t = r->choice[i] == HNN_PACK_CHANNEL ? r->chan_total[i] : r->elem_server[i];
        double env = ce ? r->elem_server[i] : r->chan_total[i];
        on_env += t <= env;
        if (t / env - 1 > worst)
            worst = t / env - 1, worst_b = c->batches[i];
        fprintf(f, "| %zu | %s | %s | %.3f | %.3f | %+.1f %% |\n", c->batches[i], ch,
                ce ? "element-wise" : "channel-wise", t, env, 100.0 * (t / env - 1));
    }
    /* The auto curve of amortized.svg is this column: on the lower envelope of the two
     * measured curves wherever the cost model picks the packing that measured faster. */
    if (r->elem_measured) {
        fprintf(f, "\nThe auto curve lies on the lower envelope of the two measured curves at "
                   "%zu of %zu batch sizes", on_env, c->nbatches);
        if (worst > 0)
            fprintf(f, "; where the cost model picks the slower packing, the worst case is %zu "
                       "images, %+.1f %% over the envelope", worst_b, 100.0 * worst);
        fprintf(f, ".\n");
    }
    const hnn_channel_stats *s = &r->chan_stats;
    fprintf(f, "\nChannel-wise per image: %zu rotations (%zu Galois keys, made in %.2f s), %zu "
               "plaintext products, %zu relinearizations, %zu levels; %.0f MB of encoded "
               "plaintexts; single-image latency %.3f s, client encryption %.4f s.\n",
            s->rotations, s->distinct_steps, r->chan_keygen, s->mul_plain, s->relins, s->levels,
            (double)s->plaintext_bytes / 1e6, r->chan_latency, r->chan_encrypt);
}

static void write_setup(FILE *f, const cmp_config *c, const cmp_results *r)
{
    char when[64];
    time_t now = time(NULL);
    strftime(when, sizeof when, "%Y-%m-%d %H:%M UTC", gmtime(&now));
    fprintf(f, "## Setup\n\n| item | value |\n|---|---|\n");
    fprintf(f, "| date | %s |\n| machine | %s |\n| threads | %d |\n", when, r->cpu, r->threads);
    fprintf(f, "| parameters | %s: N = %zu, %zu slots, %zu levels, log2(QP) = %u (128-bit) |\n",
            c->preset, r->n, r->slots, r->levels, r->logqp);
    if (!strcmp(c->arch, "deep"))
        fprintf(f, "| network | deep: conv 5x5 (8 ch) - act - avgpool 2 - conv 5x5 (16 ch) - act "
                   "- avgpool 2 - dense 100 - act - dense 10 |\n");
    else
        fprintf(f, "| network | CryptoNets: conv 5x5/2 (5 ch) - act - dense 100 - act - dense "
                   "10 |\n");
    fprintf(f, "| teacher | %s (ReLU) |\n", c->teacher_arch);
    char imgs[32];
    snprintf(imgs, sizeof imgs, c->count ? "first %zu" : "all", c->count);
    int given = 0;
    for (int k = 0; k < CMP_NMODELS; k++)
        given += c->given[k] != NULL;
    if (given < CMP_NMODELS)
        fprintf(f, "| training%s | %s, %s training images, teacher %zu epoch(s), students %zu "
                   "epoch(s) (Adam, KD T = 4, alpha = 0.5) |\n",
                given ? " (models not given)" : "", c->data, imgs, c->teacher_epochs,
                c->epochs);
    if (given)
        fprintf(f, "| training (given models) | not by this run: how they were trained is not "
                   "known to compare (see where they come from) |\n");
    for (int k = 0; k < CMP_NMODELS; k++)
        fprintf(f, "| model %d | %s (%s) |\n", k, r->model_path[k],
                c->given[k] ? "given" : r->cached[k] ? "reused" : "trained by this run");
    fprintf(f, "\n## Commands\n\n```\n%s\n```\n\n", c->command);
}

static int write_plots(const cmp_config *c, const cmp_results *r)
{
    char path[1200];
    double x[CMP_MAX_BATCHES], ye[CMP_MAX_BATCHES], yc[CMP_MAX_BATCHES], ya[CMP_MAX_BATCHES];
    for (size_t i = 0; i < c->nbatches; i++) {
        x[i] = (double)c->batches[i];
        ye[i] = r->elem_measured ? elem_amortized_ms(r, i, c) : 0;
        yc[i] = chan_amortized_ms(r, i, c);
        /* --packing auto: the measured time of the packing the cost model picks */
        ya[i] = r->choice[i] == HNN_PACK_CHANNEL || !r->elem_measured ? yc[i] : ye[i];
    }
    /* Series in the same order (hence colours) as the accuracy bars: element-wise first (an
     * empty series when not measured, so the colours never shift). */
    svg_series s[3] = {{r->elem_measured ? "element-wise (BEAA, measured)"
                                         : "element-wise (not measured)",
                        x, ye, r->elem_measured ? c->nbatches : 0, 0},
                       {"channel-wise (extrapolated)", x, yc, c->nbatches, 1},
                       {"--packing auto (cost model's choice)", x, ya,
                        r->elem_measured ? c->nbatches : 0, 1}};
    snprintf(path, sizeof path, "%s/amortized.svg", c->out);
    ppnn_status st = svg_write_loglog(path, "Amortized inference time", "batch size (images)",
                                      "ms per image", s, 3);
    if (st)
        return cli_fail("compare", st);
    /* Encrypted bars on the images both packings encrypted (the first sample_count). */
    char plain_lbl[64], enc_lbl[64];
    snprintf(plain_lbl, sizeof plain_lbl, "plaintext (%zu images)", r->test_count);
    snprintf(enc_lbl, sizeof enc_lbl, "encrypted (first %zu images)",
             r->elem_measured ? r->sample_count : r->enc_count[1]);
    const char *groups[2] = {plain_lbl, enc_lbl};
    const char *series[2] = {"element-wise + KD", "channel-wise + KD"};
    double v[4] = {r->plain_acc[CMP_ELEMENT], r->plain_acc[CMP_CHANNEL],
                   r->elem_measured ? r->elem_acc_sample : 0,
                   r->elem_measured ? r->chan_acc_sample : r->enc_acc[1]};
    double lo = 100;
    for (int i = 0; i < 4; i++)
        lo = v[i] > 0 ? fmin(lo, v[i]) : lo;
    lo = fmax(0, floor(lo / 5) * 5 - 5);
    snprintf(path, sizeof path, "%s/accuracy.svg", c->out);
    if ((st = svg_write_bars(path, "Accuracy (%)", "accuracy (%)", groups, 2, series, 2, v, lo,
                             100)))
        return cli_fail("compare", st);
    return 0;
}

int cmp_write_report(const cmp_config *c, const cmp_results *r)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/compare.md", c->out);
    ppnn_wfile w;
    ppnn_status st = ppnn_wfile_open(&w, path, 0644);
    if (st)
        return cli_fail("compare", st);
    FILE *f = w.fp;
    size_t last = c->nbatches - 1;
    double dacc = r->plain_acc[CMP_ELEMENT] - r->plain_acc[CMP_CHANNEL];
    double dtime = 100.0 * (elem_amortized_ms(r, last, c) / chan_amortized_ms(r, last, c) - 1.0);
    fprintf(f, "# Element-wise (BEAA) vs channel-wise packing: %s, %s net\n\n", c->data,
            c->arch);
    fprintf(f, "## Headline (paper: arXiv 2403.10920)\n\n| delta, element-wise minus "
               "channel-wise | ppnn | paper |\n|---|---|---|\n");
    fprintf(f, "| test accuracy (%zu test images, plaintext forward pass of the models) | "
               "%+.2f points | %+.2f points |\n", r->test_count, dacc, PAPER_ACC_DELTA);
    if (r->elem_measured) {
        fprintf(f, "| encrypted accuracy on the same first %zu test images | %+.2f points | |\n",
                r->sample_count, r->elem_acc_sample - r->chan_acc_sample);
        fprintf(f, "| amortized time at batch %zu | %+.2f %% | %+.1f %% (batch 4096) |\n\n",
                c->batches[last], dtime, PAPER_TIME_DELTA);
    } else {
        fprintf(f, "| amortized time | element-wise not measured | %+.1f %% |\n\n",
                PAPER_TIME_DELTA);
    }
    fprintf(f, "![amortized time](amortized.svg)\n![accuracy](accuracy.svg)\n\n");
    write_tables(f, c, r);
    fputc('\n', f);
    write_setup(f, c, r);
    if ((st = ppnn_wfile_commit(&w)))
        return cli_fail("compare", st);
    if (write_plots(c, r))
        return 1;
    printf("accuracy delta (element - channel, %zu test images): %+.2f points (paper %+.2f)\n",
           r->test_count, dacc, PAPER_ACC_DELTA);
    if (r->elem_measured)
        printf("amortized time delta at batch %zu: %+.2f %% (paper %+.1f %% at 4096)\n",
               c->batches[last], dtime, PAPER_TIME_DELTA);
    else
        printf("amortized time delta: element-wise not measured (paper %+.1f %% at 4096)\n",
               PAPER_TIME_DELTA);
    printf("report: %s (plots amortized.svg, accuracy.svg)\n", path);
    return 0;
}
