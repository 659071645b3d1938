/* ppnn keygen: the client's keys. secret.key stays with the client (mode 0600, directory 0700);
 * relin.key (and galois.key for channel-wise packing) go to the server.
 *
 * public.key is written only on request (--public-key). No ppnn command reads it: the server
 * evaluates with relin.key/galois.key alone, and `ppnn encrypt` uses seeded secret-key
 * encryption (half the upload of public-key ciphertexts). It exists for encryptors that must
 * not hold the secret key — a capture device or a second site encrypting through the library
 * (ckks_public_key_load + ckks_encrypt_pk) for the key owner to decrypt. */
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "ppnn/ckks_io.h"
#include "ppnn/hnn.h"
#include "ppnn/nn.h"

static const char *usage_text =
    "usage: ppnn keygen [--params n13|n14] --out KEYDIR [--rotations S1,S2,...]\n"
    "                   [--model M.ppnn --packing element|channel|auto [--count B]\n"
    "                   [--costs FILE] [--threads T]] [--public-key]\n"
    "Creates KEYDIR/secret.key (mode 0600: never give it to the server) and relin.key (for\n"
    "the server). --public-key also writes public.key, for encryptors that must not hold the\n"
    "secret key (library: ckks_encrypt_pk); no ppnn command needs it. --rotations also\n"
    "creates galois.key for those slot rotations (channel-wise packing). --packing channel\n"
    "--model M adds exactly the rotations the channel-wise plan of M needs (element-wise\n"
    "packing needs none). Parameters: n13 = N 8192, 5 levels, 4096 images per batch\n"
    "(default); n14 = N 16384, deeper networks, 8192 images per batch. All presets are\n"
    "128-bit secure.\n"
    "--packing auto --model M: the keys `encrypt --packing auto` needs. With --count B, the\n"
    "packing the cost model chooses for B images (--costs FILE from `ppnn bench costs\n"
    "--json`, T server threads, default this machine's cores): Galois keys only if that is\n"
    "channel-wise. Without --count: Galois keys whenever some batch size would be channel-wise\n"
    "(the choice for one image), so encrypt --packing auto can pick either later.\n";

/* Appends the rotation steps of the channel-wise plan of model_path to steps (steps already
 * listed are skipped). Returns 0 or the CLI exit code after printing the error. */
static int add_plan_steps(const ckks_params *params, const char *model_path, int *steps,
                          size_t max, size_t *n)
{
    nn_model m;
    ppnn_status st = nn_model_load(&m, model_path);
    if (st)
        return cli_fail("keygen", st);
    hnn_channel_plan *plan = NULL;
    st = hnn_channel_plan_new(&plan, &m, params);
    nn_model_free(&m);
    if (st)
        return cli_fail("keygen", st);
    size_t np = hnn_channel_rotations(NULL, 0, plan);
    int *ps = malloc((np + 1) * sizeof *ps);
    if (!ps) {
        hnn_channel_plan_free(plan);
        return cli_error("keygen", "out of memory");
    }
    hnn_channel_rotations(ps, np, plan);
    hnn_channel_plan_free(plan);
    int rc = 0;
    for (size_t i = 0; i < np && !rc; i++) {
        size_t k = 0;
        while (k < *n && steps[k] != ps[i])
            k++;
        if (k < *n)
            continue;
        if (*n == max)
            rc = cli_error("keygen", "more than %zu rotation steps", max);
        else
            steps[(*n)++] = ps[i];
    }
    free(ps);
    return rc;
}

/* --packing auto: *channel = 1 when the keys must let the server run channel-wise: the
 * choice for `count` images, or (count 0) for one image, the count most favourable to
 * channel-wise (its time grows with the images, element-wise's is flat within a batch). */
static int auto_wants_galois(int *channel, const ckks_params *params, const char *model_path,
                             const char *costs, size_t count, size_t threads)
{
    nn_model m;
    ppnn_status st = nn_model_load(&m, model_path);
    if (st)
        return cli_fail("keygen", st);
    int packing = CLI_PACK_ELEMENT;
    char why[1024];
    int rc = cli_packing_auto("keygen", &packing, why, sizeof why, &m, params, costs,
                              count ? count : 1, (int)threads);
    nn_model_free(&m);
    *channel = packing == CLI_PACK_CHANNEL;
    if (!rc)
        fprintf(stderr, "keygen: packing: %s\nkeygen: %s\n", why, count ? (*channel ? "Galois keys included for "
                                                  "channel-wise packing"
                                                : "no Galois keys: element-wise packing")
                                      : (*channel ? "Galois keys included: encrypt --packing "
                                                    "auto may choose either packing"
                                                  : "no Galois keys: element-wise packing even "
                                                    "for one image"));
    return rc;
}

/* Parses "1,-2,3" into at most max steps. */
static int parse_steps(const char *s, int *steps, size_t max, size_t *n)
{
    *n = 0;
    while (*s) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || *n == max || v == 0 || v > 65535 || v < -65535)
            return -1;
        steps[(*n)++] = (int)v;
        s = end;
        if (*s == ',')
            s++;
        else if (*s)
            return -1;
    }
    return 0;
}

int cmd_keygen(int argc, char **argv)
{
    const char *preset = "n13", *out = NULL, *rot = NULL, *model = NULL, *packing = "element";
    const char *costs = NULL;
    size_t count = 0, threads = 0;
    int want_pk = 0;
    static const struct option opts[] = {{"params", 1, 0, 'p'},  {"out", 1, 0, 'o'},
                                         {"rotations", 1, 0, 'r'}, {"model", 1, 0, 'm'},
                                         {"packing", 1, 0, 'k'}, {"public-key", 0, 0, 'P'},
                                         {"count", 1, 0, 'n'},   {"costs", 1, 0, 'C'},
                                         {"threads", 1, 0, 't'},
                                         {"help", 0, 0, 'h'},    {0, 0, 0, 0}};
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'p': preset = optarg; break;
        case 'o': out = optarg; break;
        case 'r': rot = optarg; break;
        case 'm': model = optarg; break;
        case 'k': packing = optarg; break;
        case 'P': want_pk = 1; break;
        case 'C': costs = optarg; break;
        case 'n':
            if (cli_parse_size("keygen", "--count", optarg, 1, 1u << 30, &count))
                return 1;
            break;
        case 't':
            if (cli_parse_size("keygen", "--threads", optarg, 1, 1024, &threads))
                return 1;
            break;
        case 'h': fputs(usage_text, stdout); return 0;
        default: return cli_usage_error("keygen", argc, argv);
        }
    }
    if (optind != argc)
        return cli_error("keygen", "unexpected argument '%s'", argv[optind]);
    if (!out)
        return cli_error("keygen", "--out KEYDIR is required");
    int pack;
    if (cli_parse_packing("keygen", packing, &pack))
        return 1;
    if (pack == CLI_PACK_ELEMENT && model)
        return cli_error("keygen", "--model is only used with --packing channel or auto");
    if (pack != CLI_PACK_ELEMENT && !model)
        return cli_error("keygen", "--packing %s needs --model M.ppnn (%s)", packing,
                         pack == CLI_PACK_AUTO ? "the cost model compares its two plans"
                                             : "its rotations");
    if (pack != CLI_PACK_AUTO && (count || costs || threads))
        return cli_error("keygen", "--count, --costs and --threads are only used with "
                         "--packing auto");
    int steps[256];
    size_t nsteps = 0;
    if (rot && parse_steps(rot, steps, 256, &nsteps))
        return cli_error("keygen", "--rotations: '%s' is not a list of non-zero integers", rot);

    ckks_spec spec;
    ppnn_status st = ckks_preset(&spec, preset);
    if (st)
        return cli_fail("keygen", st);
    ckks_params *params = NULL;
    if ((st = ckks_params_new(&params, &spec)))
        return cli_fail("keygen", st);
    int channel = pack == CLI_PACK_CHANNEL;
    if (pack == CLI_PACK_AUTO && auto_wants_galois(&channel, params, model, costs, count, threads)) {
        ckks_params_free(params);
        return 1;
    }
    if (channel && add_plan_steps(params, model, steps, 256, &nsteps)) {
        ckks_params_free(params);
        return 1;
    }
    /* Every path is checked before any work: a long KEYDIR is refused, never truncated. */
    enum { PUB, RELIN, GAL, SEC };
    static const char *names[4] = {CLI_PUBLIC_KEY, CLI_RELIN_KEY, CLI_GALOIS_KEY, CLI_SECRET_KEY};
    char path[4][PATH_MAX];
    for (int i = 0; i < 4 && !st; i++)
        st = cli_key_path(path[i], sizeof path[i], out, names[i]);
    if (st || cli_make_dir("keygen", out, 0700)) {
        ckks_params_free(params);
        return st ? cli_fail("keygen", st) : 1;
    }
    double t0 = ppnn_now();
    ckks_secret_key sk;
    ckks_public_key pk;
    ckks_relin_key rk;
    ckks_galois_keys gk;
    memset(&pk, 0, sizeof pk);
    memset(&rk, 0, sizeof rk);
    memset(&gk, 0, sizeof gk);
    uint8_t kid[CKKS_KEY_ID_BYTES];
    int rc = 1;
    if ((st = ckks_keygen_secret(&sk, params))) {
        ckks_params_free(params);
        return cli_fail("keygen", st);
    }
    ckks_key_id(kid, &sk);
    if ((want_pk && (st = ckks_keygen_public(&pk, &sk))) || (st = ckks_keygen_relin(&rk, &sk)) ||
        (nsteps && (st = ckks_keygen_galois(&gk, &sk, steps, nsteps, 0)))) {
        cli_fail("keygen", st);
        goto done;
    }
    /* Evaluation keys first, the secret key last: a failure never leaves a secret key whose
     * evaluation keys are missing. */
    if (want_pk && (st = ckks_public_key_save(path[PUB], &pk, kid))) {
        cli_fail("keygen", st);
        goto done;
    }
    if ((st = ckks_relin_key_save(path[RELIN], &rk, kid))) {
        cli_fail("keygen", st);
        goto done;
    }
    if (nsteps) {
        if ((st = ckks_galois_keys_save(path[GAL], &gk, kid))) {
            cli_fail("keygen", st);
            goto done;
        }
    }
    if ((st = ckks_secret_key_save(path[SEC], &sk))) {
        cli_fail("keygen", st);
        goto done;
    }
    fprintf(stderr, "keygen: %s (N = %zu, %zu primes, log2(QP) = %u <= %u), keys in %s/ (%.2f s)\n",
            preset, params->n, params->nq + 1, params->logqp, ckks_max_logqp(params->logn), out,
            ppnn_now() - t0);
    fprintf(stderr, "keygen: give the server %s%s; keep %s private%s\n", CLI_RELIN_KEY,
            nsteps ? " and " CLI_GALOIS_KEY : "", CLI_SECRET_KEY,
            want_pk ? "; " CLI_PUBLIC_KEY " is for encryptors without the secret key" : "");
    rc = 0;
done:
    ckks_galois_keys_free(&gk);
    ckks_relin_key_free(&rk);
    ckks_public_key_free(&pk);
    ckks_secret_key_free(&sk);
    ckks_params_free(params);
    return rc;
}
