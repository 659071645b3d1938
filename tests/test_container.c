/* The file container and bit packing: round trips and every kind of corruption. */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "testutil.h"

static const uint8_t PID[PPNN_PARAM_ID_BYTES] = {1, 2, 3};

static void test_round_trip_and_corruption(void)
{
    uint8_t payload[1000];
    randombytes_buf(payload, sizeof payload);
    char path[512];
    snprintf(path, sizeof path, "%s/obj.bin", tu_tmpdir());
    ppnn_file_writer fw;
    CHECK_OK(ppnn_file_create(&fw, path, 0600, "TEST", 1, PID, sizeof payload));
    CHECK_OK(ppnn_file_put(&fw, payload, 400));
    CHECK_OK(ppnn_file_put(&fw, payload + 400, 600));
    CHECK_OK(ppnn_file_finish(&fw));
    struct stat st;
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);

    ppnn_file_view v;
    CHECK_OK(ppnn_file_open(&v, path, "TEST", 1, 1 << 20));
    CHECK(v.payload_len == sizeof payload && memcmp(v.payload, payload, sizeof payload) == 0);
    CHECK(memcmp(v.param_id, PID, sizeof PID) == 0 && v.version == 1);
    uint8_t *whole = malloc(v.buf_len);
    size_t len = v.buf_len;
    memcpy(whole, v.buf, len);
    ppnn_file_close(&v);
    ppnn_file_close(NULL);

    CHECK_ERR(ppnn_file_open(&v, path, "KEYS", 1, 1 << 20), PPNN_ERR_FORMAT);
    CHECK_ERR(ppnn_file_open(&v, path, "TEST", 1, 100), PPNN_ERR_FORMAT);
    CHECK_ERR(ppnn_file_open(&v, "/nonexistent/x", "TEST", 1, 100), PPNN_ERR_IO);

    /* every truncation is refused */
    for (size_t cut = 0; cut < len; cut += 37) {
        uint8_t *b = malloc(len);
        memcpy(b, whole, cut);
        CHECK_ERR(ppnn_file_parse(&v, b, cut, "mem", "TEST", 1), PPNN_ERR_FORMAT);
    }
    /* every single-byte corruption is refused */
    for (size_t pos = 0; pos < len; pos += 13) {
        uint8_t *b = malloc(len);
        memcpy(b, whole, len);
        b[pos] ^= 0x40;
        CHECK_ERR(ppnn_file_parse(&v, b, len, "mem", "TEST", 1), PPNN_ERR_FORMAT);
    }
    /* trailing garbage */
    uint8_t *b = malloc(len + 1);
    memcpy(b, whole, len);
    b[len] = 0;
    CHECK_ERR(ppnn_file_parse(&v, b, len + 1, "mem", "TEST", 1), PPNN_ERR_FORMAT);
    /* future version (checksum recomputed so only the version is wrong) */
    b = malloc(len);
    memcpy(b, whole, len);
    b[12] = 2;
    crypto_generichash(b + len - 32, 32, b, len - 32, NULL, 0);
    CHECK_ERR(ppnn_file_parse(&v, b, len, "mem", "TEST", 1), PPNN_ERR_FORMAT);
    CHECK(strstr(ppnn_last_error(), "version") != NULL);
    free(whole);

    /* a writer that does not deliver its declared payload leaves no file */
    char p2[512];
    snprintf(p2, sizeof p2, "%s/short.bin", tu_tmpdir());
    CHECK_OK(ppnn_file_create(&fw, p2, 0644, "TEST", 1, NULL, 10));
    CHECK_OK(ppnn_file_put(&fw, payload, 5));
    CHECK_ERR(ppnn_file_finish(&fw), PPNN_ERR_PARAM);
    CHECK(stat(p2, &st) != 0);
    CHECK_OK(ppnn_file_create(&fw, p2, 0644, "TEST", 1, NULL, 10));
    ppnn_file_abort(&fw);
    CHECK(stat(p2, &st) != 0);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "ls %s | grep -c tmp >/dev/null", tu_tmpdir());
    CHECK(system(cmd) != 0); /* no temp files left behind */
}

static void test_reader(void)
{
    uint8_t buf[20];
    ppnn_put_u32(buf, 0xdeadbeef);
    ppnn_put_u64(buf + 4, 0x0123456789abcdefull);
    ppnn_put_f64(buf + 12, -2.5);
    ppnn_reader r;
    ppnn_reader_init(&r, buf, sizeof buf, "mem");
    uint32_t a;
    uint64_t b;
    double c;
    CHECK_OK(ppnn_read_u32(&r, &a));
    CHECK_OK(ppnn_read_u64(&r, &b));
    CHECK_OK(ppnn_read_f64(&r, &c));
    CHECK(a == 0xdeadbeef && b == 0x0123456789abcdefull && c == -2.5);
    CHECK_OK(ppnn_reader_end(&r));
    CHECK_ERR(ppnn_read_u32(&r, &a), PPNN_ERR_FORMAT);
    ppnn_reader_init(&r, buf, sizeof buf, "mem");
    CHECK_OK(ppnn_read_u32(&r, &a));
    CHECK_ERR(ppnn_reader_end(&r), PPNN_ERR_FORMAT);
    const uint8_t *span;
    CHECK_ERR(ppnn_read_span(&r, &span, SIZE_MAX), PPNN_ERR_FORMAT);
}

static void test_bitpack(void)
{
    enum { N = 1000 };
    uint64_t v[N], w[N];
    uint8_t packed[N * 8 + 8];
    for (unsigned bits = 1; bits <= 64; bits++) {
        uint64_t bound = bits == 64 ? ~(uint64_t)0 : ((uint64_t)1 << bits) - 1;
        randombytes_buf(v, sizeof v);
        for (size_t i = 0; i < N; i++)
            v[i] = bits == 64 ? v[i] % bound : v[i] & bound; /* < bound except bits==64 edge */
        for (size_t i = 0; i < N; i++)
            if (v[i] >= bound)
                v[i] = bound - 1;
        size_t nb = ppnn_packed_bytes(N, bits);
        CHECK(nb == (N * bits + 7) / 8);
        ppnn_bitpack(packed, v, N, bits);
        CHECK_OK(ppnn_bitunpack(w, packed, N, bits, bound, "mem"));
        CHECK(memcmp(v, w, sizeof v) == 0);
    }
    /* a value >= bound is refused */
    uint64_t q = 1000003;
    for (size_t i = 0; i < N; i++)
        v[i] = i * 997 % q;
    v[N - 1] = q;
    ppnn_bitpack(packed, v, N, 20);
    CHECK_ERR(ppnn_bitunpack(w, packed, N, 20, q, "mem"), PPNN_ERR_FORMAT);
    /* non-zero padding bits are refused: 3 values of 5 bits = 15 bits, 1 padding bit */
    uint64_t s[3] = {1, 2, 3};
    ppnn_bitpack(packed, s, 3, 5);
    CHECK_OK(ppnn_bitunpack(w, packed, 3, 5, 32, "mem"));
    packed[1] |= 0x80;
    CHECK_ERR(ppnn_bitunpack(w, packed, 3, 5, 32, "mem"), PPNN_ERR_FORMAT);
}

/* Bit i of a little-endian bit string (the format's definition, independent of the code). */
static uint64_t ref_bits(const uint8_t *in, size_t bit, unsigned bits)
{
    uint64_t x = 0;
    for (unsigned k = 0; k < bits; k++)
        x |= (uint64_t)(in[(bit + k) / 8] >> ((bit + k) % 8) & 1) << k;
    return x;
}

/* Packing against the definition at every width and at counts around the 8-value groups of
 * the fixed-width path: value i at bits [i·bits, (i+1)·bits), zero padding, and not a byte
 * written past ppnn_packed_bytes (the guard bytes after it keep their pattern). */
static void test_bitpack_layout(void)
{
    enum { N = 75 };
    uint64_t v[N];
    uint8_t packed[N * 8 + 16];
    const size_t counts[] = {0, 1, 7, 8, 9, 15, 16, 17, 64, 75};
    for (unsigned bits = 1; bits <= 64; bits++) {
        const uint64_t mask = bits == 64 ? ~(uint64_t)0 : ((uint64_t)1 << bits) - 1;
        randombytes_buf(v, sizeof v);
        for (size_t i = 0; i < N; i++)
            v[i] &= mask;
        for (size_t c = 0; c < sizeof counts / sizeof *counts; c++) {
            const size_t n = counts[c], nb = ppnn_packed_bytes(n, bits);
            memset(packed, 0xa5, sizeof packed);
            ppnn_bitpack(packed, v, n, bits);
            size_t bad = 0;
            for (size_t i = 0; i < n; i++)
                bad += ref_bits(packed, i * bits, bits) != v[i];
            for (size_t b = n * bits; b < nb * 8; b++)
                bad += (packed[b / 8] >> (b % 8)) & 1;
            for (size_t k = nb; k < sizeof packed; k++)
                bad += packed[k] != 0xa5;
            CHECK_MSG(bad == 0, "bitpack %u bits, %zu values: %zu wrong bits/bytes", bits, n, bad);
        }
    }
}

/* The unpacker against the bit-by-bit definition, at every width and at lengths whose packed
 * size is below, at and above the 8-byte loads of the fast path (bits <= 57) and the tail;
 * a value >= bound is reported at its own index wherever it lies, also in the fast region. */
static void test_bitunpack_paths(void)
{
    enum { MAXN = 97 };
    uint64_t v[MAXN], w[MAXN];
    uint8_t packed[MAXN * 8 + 8];
    for (unsigned bits = 1; bits <= 64; bits++)
        for (size_t n = 1; n <= MAXN; n += n < 20 ? 1 : 11) {
            size_t nb = ppnn_packed_bytes(n, bits);
            randombytes_buf(packed, nb);
            if ((n * bits) % 8) /* zero padding: a valid encoding */
                packed[nb - 1] &= (uint8_t)((1u << ((n * bits) % 8)) - 1);
            uint64_t maxv = 0;
            for (size_t i = 0; i < n; i++) {
                v[i] = ref_bits(packed, i * bits, bits);
                maxv = v[i] > maxv ? v[i] : maxv;
            }
            uint64_t bound = maxv == ~(uint64_t)0 ? maxv : maxv + 1;
            if (maxv == ~(uint64_t)0)
                continue; /* no bound admits it */
            CHECK_OK(ppnn_bitunpack(w, packed, n, bits, bound, "mem"));
            CHECK(memcmp(v, w, n * sizeof *v) == 0);
            /* the largest value (its first occurrence) is out of range for bound maxv */
            size_t first = 0;
            while (v[first] != maxv)
                first++;
            if (maxv == 0)
                continue;
            CHECK_ERR(ppnn_bitunpack(w, packed, n, bits, maxv, "mem"), PPNN_ERR_FORMAT);
            char want[64];
            snprintf(want, sizeof want, "coefficient %zu out of range", first);
            CHECK(strstr(ppnn_last_error(), want) != NULL);
            if ((n * bits) % 8) { /* a set padding bit */
                packed[nb - 1] |= 0x80;
                CHECK_ERR(ppnn_bitunpack(w, packed, n, bits, bound, "mem"), PPNN_ERR_FORMAT);
                CHECK(strstr(ppnn_last_error(), "padding") != NULL);
            }
        }
}

/* Feeds buf to a streaming check in chunks of `chunk` bytes; returns finish's status (or the
 * first update failure). */
static ppnn_status stream_check(ppnn_file_check *c, const uint8_t *buf, size_t len, size_t chunk)
{
    ppnn_file_check_init(c, "stream");
    ppnn_status st = PPNN_OK;
    for (size_t off = 0; off < len && !st; off += chunk)
        st = ppnn_file_check_update(c, buf + off, len - off < chunk ? len - off : chunk);
    if (!st)
        st = ppnn_file_check_finish(c);
    ppnn_file_check_free(c);
    return st;
}

/* The streaming verifier (uploads) accepts exactly what ppnn_file_parse accepts, whatever the
 * chunking, and reports the header fields as soon as the header is in. */
static void test_stream_check(void)
{
    uint8_t payload[700];
    randombytes_buf(payload, sizeof payload);
    char path[512];
    snprintf(path, sizeof path, "%s/stream.bin", tu_tmpdir());
    ppnn_file_writer fw;
    CHECK_OK(ppnn_file_create(&fw, path, 0644, "TEST", 1, PID, sizeof payload));
    CHECK_OK(ppnn_file_put(&fw, payload, sizeof payload));
    CHECK_OK(ppnn_file_finish(&fw));
    uint8_t *whole;
    size_t len;
    CHECK_OK(ppnn_read_file(&whole, &len, path, 1 << 20));
    ppnn_file_check c;
    const size_t chunks[] = {1, 7, 56, 57, 1000, 100000};
    for (size_t i = 0; i < sizeof chunks / sizeof chunks[0]; i++)
        CHECK_OK(stream_check(&c, whole, len, chunks[i]));
    /* header fields after the first 56 bytes */
    ppnn_file_check_init(&c, "stream");
    CHECK_OK(ppnn_file_check_update(&c, whole, 56));
    CHECK(c.header_ok && !strcmp(c.kind, "TEST") && c.version == 1 &&
          c.payload_len == sizeof payload && c.total == len && !memcmp(c.param_id, PID, sizeof PID));
    ppnn_file_check_free(&c);
    /* truncations: missing bytes at finish */
    for (size_t cut = 0; cut < len; cut += 29) {
        CHECK_ERR(stream_check(&c, whole, cut, 13), PPNN_ERR_FORMAT);
        CHECK(strstr(ppnn_last_error(), "truncated") != NULL);
    }
    /* every single-byte corruption (the checksum covers the header too) */
    for (size_t pos = 0; pos < len; pos += 11) {
        whole[pos] ^= 0x20;
        CHECK_ERR(stream_check(&c, whole, len, 64), PPNN_ERR_FORMAT);
        whole[pos] ^= 0x20;
    }
    whole[len - 1] ^= 1;
    CHECK_ERR(stream_check(&c, whole, len, 64), PPNN_ERR_FORMAT);
    CHECK(strstr(ppnn_last_error(), "checksum") != NULL);
    whole[len - 1] ^= 1;
    /* trailing data */
    uint8_t *longer = malloc(len + 5);
    memcpy(longer, whole, len);
    memset(longer + len, 0, 5);
    CHECK_ERR(stream_check(&c, longer, len + 5, 100), PPNN_ERR_FORMAT);
    CHECK(strstr(ppnn_last_error(), "trailing") != NULL);
    free(longer);
    free(whole);
}

int main(void)
{
    if (sodium_init() < 0)
        return 2;
    test_round_trip_and_corruption();
    test_stream_check();
    test_reader();
    test_bitpack();
    test_bitpack_layout();
    test_bitunpack_paths();
    return tu_finish("test_container");
}
