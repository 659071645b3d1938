/* IDX reader and dataset loader: real files, and every kind of bad input. */
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "ppnn/data.h"
#include "testutil.h"

static size_t make_idx(uint8_t *buf, uint8_t type, uint8_t ndims, const uint32_t *dims,
                       const uint8_t *payload, size_t plen)
{
    size_t n = 0;
    buf[n++] = 0;
    buf[n++] = 0;
    buf[n++] = type;
    buf[n++] = ndims;
    for (int i = 0; i < ndims; i++) {
        buf[n++] = (uint8_t)(dims[i] >> 24);
        buf[n++] = (uint8_t)(dims[i] >> 16);
        buf[n++] = (uint8_t)(dims[i] >> 8);
        buf[n++] = (uint8_t)dims[i];
    }
    memcpy(buf + n, payload, plen);
    return n + plen;
}

static void write_gz(const char *path, const uint8_t *buf, size_t len)
{
    gzFile g = gzopen(path, "wb");
    CHECK(g != NULL);
    CHECK(gzwrite(g, buf, (unsigned)len) == (int)len);
    gzclose(g);
}

static void test_parse_good(void)
{
    uint8_t payload[2 * 3 * 4], buf[256];
    for (size_t i = 0; i < sizeof payload; i++)
        payload[i] = (uint8_t)i;
    uint32_t dims[3] = {2, 3, 4};
    size_t n = make_idx(buf, 8, 3, dims, payload, sizeof payload);
    data_idx idx;
    CHECK_OK(data_idx_parse(&idx, buf, n, "mem"));
    CHECK(idx.count == 2 && idx.item_size == 12 && idx.ndims == 3);
    CHECK(memcmp(idx.values, payload, sizeof payload) == 0);
    data_idx_free(&idx);
    data_idx_free(NULL);
}

static void test_parse_bad(void)
{
    uint8_t payload[24] = {0}, buf[256];
    uint32_t dims[3] = {2, 3, 4};
    size_t n = make_idx(buf, 8, 3, dims, payload, sizeof payload);
    data_idx idx;
    /* truncated anywhere: header, dims, payload */
    for (size_t cut = 0; cut < n; cut += 3)
        CHECK_ERR(data_idx_parse(&idx, buf, cut, "mem"), PPNN_ERR_FORMAT);
    /* extra trailing bytes */
    uint8_t big[300];
    memcpy(big, buf, n);
    big[n] = 7;
    CHECK_ERR(data_idx_parse(&idx, big, n + 1, "mem"), PPNN_ERR_FORMAT);
    /* wrong magic */
    buf[0] = 1;
    CHECK_ERR(data_idx_parse(&idx, buf, n, "mem"), PPNN_ERR_FORMAT);
    buf[0] = 0;
    /* wrong element type (0x0D = float) */
    buf[2] = 0x0D;
    CHECK_ERR(data_idx_parse(&idx, buf, n, "mem"), PPNN_ERR_FORMAT);
    buf[2] = 8;
    /* zero or too many dims */
    buf[3] = 0;
    CHECK_ERR(data_idx_parse(&idx, buf, n, "mem"), PPNN_ERR_FORMAT);
    buf[3] = 9;
    CHECK_ERR(data_idx_parse(&idx, buf, n, "mem"), PPNN_ERR_FORMAT);
    /* dims whose product overflows 64 bits: 4 dims of 2^32-1 */
    uint32_t huge[4] = {0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu};
    n = make_idx(buf, 8, 4, huge, payload, 8);
    CHECK_ERR(data_idx_parse(&idx, buf, n, "mem"), PPNN_ERR_FORMAT);
    CHECK(strstr(ppnn_last_error(), "overflow") != NULL);
    /* dims that claim more data than present (must not allocate from them) */
    uint32_t lie[3] = {60000, 28, 28};
    n = make_idx(buf, 8, 3, lie, payload, sizeof payload);
    CHECK_ERR(data_idx_parse(&idx, buf, n, "mem"), PPNN_ERR_FORMAT);
    CHECK(strstr(ppnn_last_error(), "truncated") != NULL);
}

/* Headers declaring huge images are refused before their data is read or allocated: a 200x200
 * item in memory, and a gzip bomb (a few hundred KB inflating to one 8192x8192 "image", which
 * `encrypt` would turn into 256 MB of floats and 2^26 ciphertexts). */
static void test_huge_items(void)
{
    enum { SIDE = 200 };
    uint8_t *buf = calloc(1, 16 + SIDE * SIDE);
    uint32_t d[3] = {1, SIDE, SIDE};
    size_t n = make_idx(buf, 8, 3, d, buf + 16, 0) + SIDE * SIDE;
    data_idx idx;
    CHECK_ERR(data_idx_parse(&idx, buf, n, "mem"), PPNN_ERR_FORMAT);
    CHECK(strstr(ppnn_last_error(), "limit") != NULL);
    free(buf);
    const size_t side = 8192, rows_per_write = 256;
    char path[600];
    snprintf(path, sizeof path, "%s/bomb-idx3-ubyte.gz", tu_tmpdir());
    gzFile g = gzopen(path, "wb9");
    uint8_t head[16];
    uint32_t bd[3] = {1, (uint32_t)side, (uint32_t)side};
    CHECK(make_idx(head, 8, 3, bd, head, 0) == 16 && gzwrite(g, head, 16) == 16);
    uint8_t *zeros = calloc(side, rows_per_write);
    for (size_t r = 0; r < side; r += rows_per_write)
        CHECK(gzwrite(g, zeros, (unsigned)(side * rows_per_write)) == (int)(side * rows_per_write));
    gzclose(g);
    free(zeros);
    CHECK_ERR(data_idx_read(&idx, path), PPNN_ERR_FORMAT);
    CHECK(strstr(ppnn_last_error(), "limit") != NULL);
}

/* Builds a 4-file dataset directory with `nimg` images and `nlab` labels. */
static const char *make_dataset(const char *sub, uint32_t nimg, uint32_t nlab, uint8_t badlabel,
                                int gz)
{
    static char dir[512];
    snprintf(dir, sizeof dir, "%s/%s", tu_tmpdir(), sub);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", dir);
    CHECK(system(cmd) == 0);
    uint8_t *buf = malloc(16 + nimg * 4 + 16), payload[64];
    for (int split = 0; split < 2; split++) {
        const char *pre = split ? "t10k" : "train";
        uint32_t d[3] = {nimg, 2, 2};
        uint8_t *px = malloc(nimg * 4 + 1);
        for (uint32_t i = 0; i < nimg * 4; i++)
            px[i] = (uint8_t)(i * 7);
        size_t n = make_idx(buf, 8, 3, d, px, nimg * 4);
        free(px);
        char path[700];
        snprintf(path, sizeof path, "%s/%s-images-idx3-ubyte%s", dir, pre, gz ? ".gz" : "");
        if (gz)
            write_gz(path, buf, n);
        else {
            FILE *fp = fopen(path, "wb");
            fwrite(buf, 1, n, fp);
            fclose(fp);
        }
        for (uint32_t i = 0; i < nlab && i < sizeof payload; i++)
            payload[i] = (uint8_t)(i % 10);
        if (badlabel && nlab > 1)
            payload[1] = badlabel;
        uint32_t dl[1] = {nlab};
        n = make_idx(buf, 8, 1, dl, payload, nlab);
        snprintf(path, sizeof path, "%s/%s-labels-idx1-ubyte%s", dir, pre, gz ? ".gz" : "");
        if (gz)
            write_gz(path, buf, n);
        else {
            FILE *fp = fopen(path, "wb");
            fwrite(buf, 1, n, fp);
            fclose(fp);
        }
    }
    free(buf);
    return dir;
}

static void test_dataset_dirs(void)
{
    data_set ds;
    const char *d = make_dataset("ok", 12, 12, 0, 0);
    CHECK_OK(data_load(&ds, d, DATA_SPLIT_TRAIN, 0, 0));
    CHECK(ds.count == 12 && ds.rows == 2 && ds.cols == 2);
    data_set_free(&ds);
    CHECK_OK(data_load(&ds, d, DATA_SPLIT_TEST, 5, 4));
    CHECK(ds.count == 4 && ds.labels[0] == 5 && ds.pixels[0] == (uint8_t)(20 * 7));
    data_set_free(&ds);
    CHECK_ERR(data_load(&ds, d, DATA_SPLIT_TEST, 10, 4), PPNN_ERR_PARAM);
    CHECK_ERR(data_load(&ds, d, DATA_SPLIT_TEST, 13, 0), PPNN_ERR_PARAM);

    d = make_dataset("okgz", 12, 12, 0, 1);
    CHECK_OK(data_load(&ds, d, DATA_SPLIT_TRAIN, 0, 0));
    CHECK(ds.count == 12);
    data_set_free(&ds);

    d = make_dataset("mismatch", 12, 11, 0, 0);
    CHECK_ERR(data_load(&ds, d, DATA_SPLIT_TRAIN, 0, 0), PPNN_ERR_FORMAT);
    CHECK(strstr(ppnn_last_error(), "labels") != NULL);

    d = make_dataset("badlabel", 12, 12, 10, 0);
    CHECK_ERR(data_load(&ds, d, DATA_SPLIT_TRAIN, 0, 0), PPNN_ERR_FORMAT);
    CHECK(strstr(ppnn_last_error(), "out of range") != NULL);

    CHECK_ERR(data_load(&ds, "/nonexistent/dir", DATA_SPLIT_TRAIN, 0, 0), PPNN_ERR_PARAM);
    data_split sp;
    CHECK_ERR(data_split_parse(&sp, "valid"), PPNN_ERR_PARAM);
    CHECK_OK(data_split_parse(&sp, "test"));
    CHECK(sp == DATA_SPLIT_TEST);
}

static void test_corrupted_gzip(void)
{
    uint8_t payload[400], buf[512];
    for (size_t i = 0; i < sizeof payload; i++)
        payload[i] = (uint8_t)(i * 13 + 1);
    uint32_t dims[3] = {4, 10, 10};
    size_t n = make_idx(buf, 8, 3, dims, payload, sizeof payload);
    const char *p = tu_write("good.gz", "", 0);
    write_gz(p, buf, n);
    uint8_t *gz;
    size_t gzlen;
    CHECK_OK(ppnn_read_file(&gz, &gzlen, p, 1 << 20));
    data_idx idx;
    CHECK_OK(data_idx_read(&idx, p));
    data_idx_free(&idx);
    /* flip a byte in the deflate stream: CRC or stream error */
    gz[gzlen / 2] ^= 0x5A;
    p = tu_write("flip.gz", gz, gzlen);
    CHECK_ERR(data_idx_read(&idx, p), PPNN_ERR_FORMAT);
    gz[gzlen / 2] ^= 0x5A;
    /* truncate the gzip stream */
    p = tu_write("trunc.gz", gz, gzlen - 9);
    CHECK_ERR(data_idx_read(&idx, p), PPNN_ERR_FORMAT);
    free(gz);
    CHECK_ERR(data_idx_read(&idx, "/nonexistent.idx"), PPNN_ERR_IO);
}

static void test_real(const char *name, size_t want_rows)
{
    data_set ds;
    char dir[512];
    if (data_resolve_dir(dir, sizeof dir, name) != PPNN_OK) {
        fprintf(stderr, "FAIL: dataset %s unavailable: %s (make test runs scripts/setup.sh)\n", name,
                ppnn_last_error());
        tu_failures++;
        return;
    }
    CHECK_OK(data_load(&ds, name, DATA_SPLIT_TRAIN, 0, 0));
    CHECK(ds.count == 60000 && ds.rows == want_rows && ds.cols == want_rows);
    size_t hist[10] = {0};
    for (size_t i = 0; i < ds.count; i++)
        hist[ds.labels[i]]++;
    for (int c = 0; c < 10; c++)
        CHECK(hist[c] > 5000);
    data_set_free(&ds);
    CHECK_OK(data_load(&ds, name, DATA_SPLIT_TEST, 0, 0));
    CHECK(ds.count == 10000);
    float *x = malloc(ds.rows * ds.cols * sizeof *x);
    data_normalize(x, ds.pixels, ds.rows * ds.cols);
    float mx = 0;
    for (size_t i = 0; i < ds.rows * ds.cols; i++) {
        CHECK(x[i] >= 0.0f && x[i] <= 1.0f);
        mx = x[i] > mx ? x[i] : mx;
    }
    CHECK(mx > 0.9f);
    free(x);
    data_set_free(&ds);
}

int main(void)
{
    test_parse_good();
    test_parse_bad();
    test_huge_items();
    test_dataset_dirs();
    test_corrupted_gzip();
    test_real("mnist", 28);
    test_real("fashion", 28);
    return tu_finish("test_idx");
}
