/* libFuzzer harness for the service's request handling (src/serve/): routing and bearer
 * parsing, the long poll's wait value, the status JSON the client parses, and the streaming
 * upload verifier fed in fuzzer-chosen chunks. The first byte picks the target; for uploads,
 * bit 7 of it reseals the input (payload length, and the BLAKE2b checksum or, for a chunked
 * batch frame, every ciphertext digest and the top hash) so mutations reach past the checks. */
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "serve/serve_inner.h"

static void fuzz_route(const uint8_t *d, size_t n)
{
    char *s = malloc(n + 1);
    if (!s)
        return;
    memcpy(s, d, n);
    s[n] = 0;
    char *path = strchr(s, '\n');
    if (path)
        *path++ = 0;
    char *auth = path ? strchr(path, '\n') : NULL;
    if (auth)
        *auth++ = 0;
    srv_route r;
    srv_route_parse(&r, s, path ? path : "/");
    if (r.id[0] && !srv_valid_id(r.id))
        abort();
    const char *tok = srv_bearer(auth);
    if (tok && !*tok)
        abort();
    (void)srv_valid_name(s);
    double w; /* the long poll's ?wait= value */
    if (srv_parse_wait(&w, s) == 0 && !(w >= 0 && w <= SRV_WAIT_MAX))
        abort();
    free(s);
}

static void fuzz_status(const uint8_t *d, size_t n)
{
    char *s = malloc(n + 1);
    if (!s)
        return;
    memcpy(s, d, n);
    s[n] = 0;
    srv_status st;
    if (srv_parse_status(&st, s) == 0 && (st.progress < 0 || st.progress > 1))
        abort();
    free(s);
}

static void fuzz_upload(const uint8_t *d, size_t n, int reseal)
{
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf)
        return;
    memcpy(buf, d, n);
    const int chunked = n >= PPNN_FILE_HEADER_BYTES + PPNN_FILE_TRAILER_BYTES &&
                        memcmp(buf + 8, CKKS_KIND_BATCH, 4) == 0 &&
                        ppnn_get_u32(buf + 12) == CKKS_BATCH_FILE_VERSION;
    if (reseal && chunked) {
        ppnn_chunked_reseal(buf, n); /* every ciphertext digest and the top hash */
    } else if (reseal && n >= PPNN_FILE_HEADER_BYTES + PPNN_FILE_TRAILER_BYTES) {
        ppnn_put_u64(buf + 48, n - PPNN_FILE_HEADER_BYTES - PPNN_FILE_TRAILER_BYTES);
        crypto_generichash(buf + n - 32, 32, buf, n - 32, NULL, 0);
    }
    srv_upload u;
    memset(&u, 0, sizeof u);
    u.fd = -1;
    u.limit = 1 << 20;
    u.kinds = CKKS_KIND_BATCH;
    /* The key-id check at a data-chosen offset (all-zero expected id). */
    static const uint8_t zero_id[CKKS_KEY_ID_BYTES];
    u.key_id = zero_id;
    u.key_id_off = PPNN_FILE_HEADER_BYTES + (n ? buf[0] : 0);
    ppnn_file_check_init(&u.check, "fuzz");
    ppnn_file_check_chunked(&u.check, CKKS_KIND_BATCH, CKKS_BATCH_FILE_VERSION, 64,
                            CKKS_CHUNK_NOUN);
    /* Chunk sizes from the data itself: 1 + byte value. */
    size_t off = 0, k = 0;
    while (off < n && !u.status) {
        size_t len = 1 + (size_t)buf[k++ % n];
        if (len > n - off)
            len = n - off;
        srv_upload_check(&u, buf + off, len);
        off += len;
    }
    if (!u.status && ppnn_file_check_finish(&u.check) == PPNN_OK) {
        /* Accepted: it must really be a whole, correctly sealed batch container: a chunked
         * frame whose top hash and every ciphertext digest the reader accepts too. */
        ppnn_chunked ch;
        if (!chunked || memcmp(buf + 8, CKKS_KIND_BATCH, 4) != 0 ||
            ppnn_chunked_view(&ch, buf, n, "fuzz", CKKS_CHUNK_NOUN) != PPNN_OK)
            abort();
        for (uint64_t i = 0; i < ch.count; i++)
            if (ppnn_chunk_verify(&ch, i, buf + ch.offset[i], "fuzz") != PPNN_OK)
                abort();
        ppnn_chunked_free(&ch);
    }
    ppnn_file_check_free(&u.check);
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || sodium_init() < 0)
        return 0;
    switch (data[0] & 3) {
    case 0: fuzz_route(data + 1, size - 1); break;
    case 1: fuzz_status(data + 1, size - 1); break;
    default: fuzz_upload(data + 1, size - 1, data[0] >> 7); break;
    }
    return 0;
}
