/* The service's pieces below HTTP: routes, bearer parsing, ids, tokens (hashed, keyed, unique
 * names), and the job store's state machine (idempotency, claim order, restart re-queue,
 * deletion, TTL expiry). The network paths are tests/cli_serve.sh. */
#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "serve/serve_inner.h"
#include "testutil.h"

static const char *ID = "0123456789abcdef0123456789abcdef";

static int route(const char *method, const char *path, srv_route_kind want)
{
    srv_route r;
    srv_route_parse(&r, method, path);
    return r.kind == want;
}

static void test_routes(void)
{
    char p[128];
    CHECK(route("GET", "/v1/health", SRV_R_HEALTH));
    CHECK(route("GET", "/v1/models", SRV_R_MODELS));
    CHECK(route("POST", "/v1/keys", SRV_R_KEY_PUT));
    CHECK(route("POST", "/v1/jobs", SRV_R_JOB_SUBMIT));
    CHECK(route("GET", "/v1/jobs", SRV_R_JOB_LIST));
    snprintf(p, sizeof p, "/v1/jobs/%s", ID);
    CHECK(route("GET", p, SRV_R_JOB_STATUS));
    CHECK(route("DELETE", p, SRV_R_JOB_DELETE));
    CHECK(route("PUT", p, SRV_R_BAD_METHOD));
    srv_route r;
    srv_route_parse(&r, "GET", p);
    CHECK(!strcmp(r.id, ID));
    snprintf(p, sizeof p, "/v1/jobs/%s/result", ID);
    CHECK(route("GET", p, SRV_R_JOB_RESULT));
    snprintf(p, sizeof p, "/v1/keys/%s", ID);
    CHECK(route("GET", p, SRV_R_KEY_GET));
    CHECK(route("DELETE", "/v1/models", SRV_R_BAD_METHOD));
    /* ids: exactly 32 lower-case hex digits */
    CHECK(route("GET", "/v1/jobs/0123456789ABCDEF0123456789abcdef", SRV_R_NONE));
    CHECK(route("GET", "/v1/jobs/0123456789abcdef0123456789abcde", SRV_R_NONE));
    CHECK(route("GET", "/v1/jobs/0123456789abcdef0123456789abcdef0", SRV_R_NONE));
    CHECK(route("GET", "/v1/jobs/../../etc/passwd", SRV_R_NONE));
    snprintf(p, sizeof p, "/v1/jobs/%s/result/x", ID);
    CHECK(route("GET", p, SRV_R_NONE));
    CHECK(route("GET", "/v2/jobs", SRV_R_NONE));
    CHECK(route("GET", "", SRV_R_NONE));
    CHECK(route("GET", "//", SRV_R_NONE));
    CHECK(srv_bearer("Bearer abc") && !strcmp(srv_bearer("Bearer abc"), "abc"));
    CHECK(!srv_bearer("Basic abc") && !srv_bearer("Bearer ") && !srv_bearer(NULL));
    CHECK(srv_valid_name("client-1.a_b") && !srv_valid_name("") && !srv_valid_name(".x") &&
          !srv_valid_name("a/b") && !srv_valid_name("a b"));
    char id[SRV_ID_HEX + 1], id2[SRV_ID_HEX + 1];
    srv_random_id(id);
    srv_random_id(id2);
    CHECK(srv_valid_id(id) && strcmp(id, id2) != 0);
}

static size_t nclients;
static void count_client(void *ctx, const char *name, double created, size_t jobs)
{
    (void)ctx, (void)name, (void)created, (void)jobs;
    nclients++;
}

static void test_tokens(const char *state)
{
    char t1[SRV_TOKEN_CHARS + 1], t2[SRV_TOKEN_CHARS + 1];
    CHECK_OK(srv_token_add(t1, state, "alice"));
    CHECK_OK(srv_token_add(t2, state, "bob"));
    CHECK(strlen(t1) == SRV_TOKEN_CHARS);
    CHECK(!strncmp(t1, "ppnn_", 5) && strcmp(t1, t2) != 0);
    CHECK_ERR(srv_token_add(t2, state, "alice"), PPNN_ERR_PARAM);
    CHECK_ERR(srv_token_add(t2, state, "no/slash"), PPNN_ERR_PARAM);
    uint8_t key[32], key2[32], h[32];
    CHECK_OK(srv_token_key_load(key, state));
    CHECK_OK(srv_token_key_load(key2, state));
    CHECK(!memcmp(key, key2, 32)); /* created once, then read */
    char kp[1024];
    struct stat sb;
    snprintf(kp, sizeof kp, "%s/token.key", state);
    CHECK(stat(kp, &sb) == 0 && (sb.st_mode & 0777) == 0600);
    srv_store *s = NULL;
    CHECK_OK(srv_store_open(&s, state));
    srv_token_hash(h, key, t1, strlen(t1));
    int64_t alice = srv_store_client_by_hash(s, h);
    CHECK(alice > 0);
    /* the hash is keyed: the same token under another key is unknown */
    key2[0] ^= 1;
    srv_token_hash(h, key2, t1, strlen(t1));
    CHECK(srv_store_client_by_hash(s, h) == 0);
    t1[10] ^= 1;
    srv_token_hash(h, key, t1, strlen(t1));
    CHECK(srv_store_client_by_hash(s, h) == 0);
    t1[10] ^= 1;
    nclients = 0;
    CHECK_OK(srv_token_list(state, count_client, NULL));
    CHECK(nclients == 2);
    CHECK_OK(srv_token_revoke(state, "alice"));
    CHECK_ERR(srv_token_revoke(state, "alice"), PPNN_ERR_PARAM);
    srv_token_hash(h, key, t1, strlen(t1));
    CHECK(srv_store_client_by_hash(s, h) == 0);
    nclients = 0;
    CHECK_OK(srv_token_list(state, count_client, NULL));
    CHECK(nclients == 1);
    srv_store_close(s);
}

static void job(srv_job *j, int64_t client)
{
    memset(j, 0, sizeof *j);
    srv_random_id(j->id);
    j->client = client;
    snprintf(j->model, sizeof j->model, "m");
    memcpy(j->key_id, ID, SRV_ID_HEX + 1);
}

static void test_store(const char *state)
{
    srv_store *s = NULL;
    CHECK_OK(srv_store_open(&s, state));
    uint8_t pid[32] = {7};
    CHECK_OK(srv_store_key_put(s, 1, ID, "relin", pid));
    uint8_t got[32] = {0};
    CHECK(srv_store_key_get(s, 1, ID, got) == 1 && got[0] == 7);
    CHECK(srv_store_key_get(s, 2, ID, NULL) == 0); /* keys are per client */
    srv_job a, b, c, x;
    char existing[SRV_ID_HEX + 1];
    job(&a, 1), job(&b, 1), job(&c, 2);
    CHECK_OK(srv_store_job_add(s, &a, "k1", existing));
    CHECK(!existing[0]);
    CHECK_OK(srv_store_job_add(s, &b, "k1", existing)); /* same Idempotency-Key: no new job */
    CHECK(!strcmp(existing, a.id) && srv_store_job_exists(s, a.id) && !srv_store_job_exists(s, b.id));
    CHECK(srv_store_job_by_idem(s, 1, "k1", existing) && !strcmp(existing, a.id));
    CHECK(!srv_store_job_by_idem(s, 2, "k1", existing)); /* idempotency keys are per client */
    CHECK_OK(srv_store_job_add(s, &b, "", existing));
    CHECK_OK(srv_store_job_add(s, &c, "k1", existing));
    CHECK(!existing[0]);
    CHECK(srv_store_count(s, "queued") == 3);
    /* a client sees only its own jobs */
    CHECK(srv_store_job_get(s, &x, 1, a.id) == 0 && srv_store_job_get(s, &x, 2, a.id) == 1);
    /* claims in submission order */
    CHECK(srv_store_job_claim(s, &x) && !strcmp(x.id, a.id) && !strcmp(x.state, "queued"));
    CHECK(srv_store_job_get(s, &x, 1, a.id) == 0 && !strcmp(x.state, "running"));
    CHECK(srv_store_queue_position(s, x.seq + 100) == 2);
    /* a restart re-queues the running job; it is claimed first again */
    srv_store_close(s);
    CHECK_OK(srv_store_open(&s, state));
    CHECK(srv_store_requeue_running(s) == 1);
    CHECK(srv_store_job_claim(s, &x) && !strcmp(x.id, a.id));
    CHECK_OK(srv_store_job_finish(s, a.id, "done", NULL));
    CHECK(srv_store_job_get(s, &x, 1, a.id) == 0 && !strcmp(x.state, "done"));
    /* deleting a running job: it stays deleted when its worker finishes */
    CHECK(srv_store_job_claim(s, &x) && !strcmp(x.id, b.id));
    CHECK_OK(srv_store_job_delete(s, 1, b.id));
    CHECK_ERR(srv_store_job_delete(s, 1, b.id), PPNN_ERR_PARAM);
    CHECK_ERR(srv_store_job_delete(s, 1, c.id), PPNN_ERR_PARAM); /* not its job */
    CHECK_OK(srv_store_job_finish(s, b.id, "done", NULL));
    CHECK(srv_store_job_get(s, &x, 1, b.id) == 1);
    /* expiry: deleted jobs, and results fetched before the cut-off */
    char ids[8][SRV_ID_HEX + 1];
    double now = srv_wall_now();
    CHECK(srv_store_expired(s, ids, 8, now) == 1 && !strcmp(ids[0], b.id));
    CHECK_OK(srv_store_job_set(s, a.id, "fetched", now - 10));
    CHECK(srv_store_expired(s, ids, 8, now - 20) == 1);
    CHECK(srv_store_expired(s, ids, 8, now) == 2);
    CHECK_OK(srv_store_job_forget(s, a.id));
    CHECK_OK(srv_store_job_forget(s, b.id));
    CHECK(!srv_store_job_exists(s, a.id) && !srv_store_job_exists(s, b.id));
    char *json = srv_store_jobs_json(s, 2);
    CHECK(json && strstr(json, c.id) && !strstr(json, a.id));
    free(json);
    srv_store_close(s);
}

/* A small single-batch input file at path (4 ciphertexts at logn 12). */
static ckks_params *write_batch(const char *path)
{
    ckks_spec spec;
    memset(&spec, 0, sizeof spec);
    spec.logn = 12, spec.nq = 2, spec.q_bits[0] = 30, spec.q_bits[1] = 24, spec.p_bits = 30;
    spec.scale = ldexp(1, 24);
    ckks_params *p = NULL;
    CHECK_OK(ckks_params_new(&p, &spec));
    ckks_secret_key sk = {0};
    CHECK_OK(ckks_keygen_secret(&sk, p));
    ckks_plaintext pt = {0};
    const double v[2] = {0.25, -0.5};
    CHECK_OK(ckks_encode(&pt, p, v, 2, p->nq - 1, p->scale));
    ckks_ciphertext ct[4];
    memset(ct, 0, sizeof ct);
    for (int i = 0; i < 4; i++)
        CHECK_OK(ckks_encrypt_sk(&ct[i], &sk, &pt));
    ckks_batch_info info;
    memset(&info, 0, sizeof info);
    ckks_key_id(info.key_id, &sk);
    info.packing = CKKS_PACKING_ELEMENT, info.role = CKKS_BATCH_INPUT;
    info.shape[0] = 1, info.shape[1] = 2, info.shape[2] = 2;
    const uint64_t images = 2;
    ckks_batch_set_writer *w = NULL;
    CHECK_OK(ckks_batch_set_create(&w, path, p, &info, 1, &images));
    CHECK_OK(ckks_batch_set_append(w, ct, 4));
    CHECK_OK(ckks_batch_set_finish(w));
    for (int i = 0; i < 4; i++)
        ckks_ct_free(&ct[i]);
    ckks_pt_free(&pt);
    ckks_secret_key_free(&sk);
    return p;
}

/* Opens batch 0 of path, trusting sum when given, and reads it; the first failure. */
static ppnn_status open_reader(ckks_params *p, const char *path, const uint8_t *sum)
{
    ckks_batch_set *set = NULL;
    ckks_params *pp = p;
    ppnn_status st = ckks_batch_set_open(&set, &pp, path);
    if (st)
        return st;
    if (sum)
        ckks_batch_set_trust(set, sum);
    /* Every ciphertext read, as the worker's run does (each verified by its digest unless
     * the trusted top hash stands for them). */
    ckks_batch_reader *r = NULL;
    st = ckks_batch_reader_open(&r, set, 0);
    for (size_t i = 0; !st && i < ckks_batch_reader_count(r); i++) {
        size_t level, size;
        double scale;
        ckks_batch_reader_meta(r, i, &level, &size, &scale);
        ckks_ciphertext ct = {0};
        st = ckks_batch_reader_get(&ct, r, i, level);
        ckks_ct_free(&ct);
    }
    ckks_batch_reader_close(r);
    ckks_batch_set_close(set);
    return st;
}

static void flip_byte(const char *path, off_t at)
{
    int fd = open(path, O_RDWR);
    uint8_t b = 0;
    CHECK(fd >= 0 && pread(fd, &b, 1, at) == 1);
    b ^= 0x40;
    CHECK(pwrite(fd, &b, 1, at) == 1);
    close(fd);
}

/* The worker's trust in an upload (srv_upload_record / srv_upload_trusted) and the library hook
 * it uses (ckks_batch_set_trust): the checksum the server verified stands for the re-hash only
 * while the file is the one it wrote; any change of identity means a full verification. */
static void test_upload_trust(void)
{
    char path[600], copy[600], rec[SRV_IN_CHECK_MAX];
    snprintf(path, sizeof path, "%s/job.in", tu_tmpdir());
    snprintf(copy, sizeof copy, "%s/job.copy", tu_tmpdir());
    ckks_params *p = write_batch(path);
    struct stat sb;
    CHECK(stat(path, &sb) == 0);
    uint8_t sum[32], got[32], other[32];
    int fd = open(path, O_RDONLY);
    CHECK(fd >= 0 && pread(fd, sum, 32, sb.st_size - 32) == 32);
    close(fd);
    int64_t mt = (int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec;
    srv_upload_record(rec, sum, (uint64_t)sb.st_size, (uint64_t)sb.st_ino, mt);
    CHECK(srv_upload_trusted(got, rec, path) == 1 && !memcmp(got, sum, 32));
    /* malformed records are never trusted */
    CHECK(!srv_upload_trusted(got, "", path) && !srv_upload_trusted(got, NULL, path));
    char bad[SRV_IN_CHECK_MAX + 2];
    snprintf(bad, sizeof bad, "%s:", rec);
    CHECK(!srv_upload_trusted(got, bad, path));
    snprintf(bad, sizeof bad, "%s", rec);
    bad[5] = 'x';
    CHECK(!srv_upload_trusted(got, bad, path));
    /* another size, inode or mtime: not the file the server wrote */
    srv_upload_record(bad, sum, (uint64_t)sb.st_size + 1, (uint64_t)sb.st_ino, mt);
    CHECK(!srv_upload_trusted(got, bad, path));
    srv_upload_record(bad, sum, (uint64_t)sb.st_size, (uint64_t)sb.st_ino + 1, mt);
    CHECK(!srv_upload_trusted(got, bad, path));
    srv_upload_record(bad, sum, (uint64_t)sb.st_size, (uint64_t)sb.st_ino, mt + 1);
    CHECK(!srv_upload_trusted(got, bad, path));
    CHECK(!srv_upload_trusted(got, rec, copy)); /* no file */

    /* The library hook: the intact file opens either way. */
    CHECK_OK(open_reader(p, path, NULL));
    CHECK_OK(open_reader(p, path, sum));
    /* A body byte changed (tables and top hash intact): the ciphertext's digest refuses it;
     * under a trusted top hash the bodies' digests are skipped (which is why the worker trusts only a file whose identity is
     * unchanged: srv_upload_trusted above). */
    flip_byte(path, sb.st_size / 2);
    CHECK_ERR(open_reader(p, path, NULL), PPNN_ERR_FORMAT);
    CHECK_OK(open_reader(p, path, sum));
    /* A trusted top hash that is not the file's stored one: every body verified, refused. */
    memcpy(other, sum, 32);
    other[0] ^= 1;
    CHECK_ERR(open_reader(p, path, other), PPNN_ERR_FORMAT);
    ckks_params_free(p);
}

/* A sealed container of `len` bytes (header taken from a real batch file, random payload,
 * BLAKE2b trailer); caller frees. */
static uint8_t *make_container(size_t len, const char *kind)
{
    char path[600];
    snprintf(path, sizeof path, "%s/hdr.ct", tu_tmpdir());
    ckks_params_free(write_batch(path));
    uint8_t *buf = malloc(len);
    int fd = open(path, O_RDONLY);
    CHECK(buf && fd >= 0 && read(fd, buf, PPNN_FILE_HEADER_BYTES) == PPNN_FILE_HEADER_BYTES);
    close(fd);
    memcpy(buf + 8, kind, 4);
    ppnn_put_u64(buf + 48, len - PPNN_FILE_HEADER_BYTES - PPNN_FILE_TRAILER_BYTES);
    randombytes_buf(buf + PPNN_FILE_HEADER_BYTES, len - PPNN_FILE_HEADER_BYTES - 32);
    crypto_generichash(buf + len - 32, 32, buf, len - 32, NULL, 0);
    return buf;
}

/* Feeds buf in uneven chunks (1 .. 40 000 bytes, never aligned to the ring's slots). */
static void feed_all(srv_upload *u, const uint8_t *buf, size_t len)
{
    for (size_t off = 0, k = 0; off < len; k++) {
        size_t c = 1 + (k * 7919) % 40000;
        c = c < len - off ? c : len - off;
        srv_upload_feed(u, buf + off, c);
        off += c;
    }
}

static size_t tmp_files(const char *state)
{
    char dir[700];
    snprintf(dir, sizeof dir, "%s/tmp", state);
    DIR *d = opendir(dir);
    size_t n = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        n += e->d_name[0] != '.';
    if (d)
        closedir(d);
    return n;
}

/* The upload's three stages (serve_inner.h): a body of many ring slots fed in uneven chunks is
 * stored byte for byte, and the record holds the checksum of exactly those bytes; a byte
 * changed in flight is refused at the end and leaves no file; a secret key is refused from its
 * header and not one byte of it reaches the disk (a slot is written only after its check);
 * too many bytes are 413; an abandoned upload leaves nothing. */
static void test_upload_stream(const char *state)
{
    char tmpdir[700], dst[700];
    snprintf(tmpdir, sizeof tmpdir, "%s/tmp", state);
    mkdir(tmpdir, 0700);
    snprintf(dst, sizeof dst, "%s/stream.in", tu_tmpdir());
    const size_t len = 5 * SRV_UP_SLOTS * SRV_UP_SLOT_BYTES / 2 + 12345; /* 2.5 laps */
    uint8_t *buf = make_container(len, CKKS_KIND_BATCH);
    srv_upload u;
    CHECK_OK(srv_upload_open(&u, state, len, CKKS_KIND_BATCH, "stream"));
    CHECK(u.pipe != NULL); /* the threaded path is the one under test */
    feed_all(&u, buf, len);
    CHECK(srv_upload_commit(&u, dst) == 0);
    uint8_t *got = NULL;
    size_t glen = 0;
    CHECK_OK(ppnn_read_file(&got, &glen, dst, len + 1));
    CHECK(glen == len && got && !memcmp(got, buf, len) && u.stored == len);
    char hex[65];
    sodium_bin2hex(hex, sizeof hex, buf + len - 32, 32);
    CHECK(!strncmp(u.record, "b2:", 3) && !strncmp(u.record + 3, hex, 64));
    free(got);
    CHECK(tmp_files(state) == 0);

    /* a byte changed in flight: the checksum fails at the end, nothing is left */
    unlink(dst);
    buf[len / 2] ^= 1;
    CHECK_OK(srv_upload_open(&u, state, len, CKKS_KIND_BATCH, "stream"));
    feed_all(&u, buf, len);
    CHECK(srv_upload_commit(&u, dst) == 1 && u.status == 400 && access(dst, F_OK) != 0);
    CHECK(tmp_files(state) == 0);
    free(buf);

    /* a secret key: refused on its header; not a byte of it was written */
    buf = make_container(len, CKKS_KIND_SECRET);
    CHECK_OK(srv_upload_open(&u, state, len, CKKS_KIND_RELIN " " CKKS_KIND_GALOIS, "key"));
    feed_all(&u, buf, len);
    for (int t = 0; t < 1000 && !srv_upload_refused(&u); t++)
        usleep(1000);
    CHECK(srv_upload_refused(&u) == 403);
    CHECK(srv_upload_commit(&u, dst) == 1 && u.status == 403 && access(dst, F_OK) != 0);
    CHECK(u.stored == 0); /* counted by the writer, whose thread the commit joined */
    CHECK(tmp_files(state) == 0);
    free(buf);

    /* a batch of an older format (version 2: BLAKE2b-256 digests; 1: one checksum): refused on
     * its header, 415, in one line naming the version and saying to re-encrypt */
    for (uint32_t ver = 1; ver < CKKS_BATCH_FILE_VERSION; ver++) {
        buf = make_container(len, CKKS_KIND_BATCH);
        ppnn_put_u32(buf + 12, ver);
        crypto_generichash(buf + len - 32, 32, buf, len - 32, NULL, 0);
        CHECK_OK(srv_upload_open(&u, state, len, CKKS_KIND_BATCH, "stream"));
        feed_all(&u, buf, len);
        CHECK(srv_upload_commit(&u, dst) == 1 && u.status == 415 && access(dst, F_OK) != 0);
        char want[64];
        snprintf(want, sizeof want, "'CBAT' format version %u (this server reads %d", ver,
                 CKKS_BATCH_FILE_VERSION);
        CHECK_MSG(strstr(u.error, want) && strstr(u.error, "re-encrypt") && !strchr(u.error, '\n'),
                  "message: %s", u.error);
        CHECK(tmp_files(state) == 0);
        free(buf);
    }

    /* more bytes than the limit: 413; abandoned half way: nothing left */
    buf = make_container(len, CKKS_KIND_BATCH);
    CHECK_OK(srv_upload_open(&u, state, len - 1, CKKS_KIND_BATCH, "stream"));
    feed_all(&u, buf, len);
    CHECK(srv_upload_commit(&u, dst) == 1 && u.status == 413);
    CHECK_OK(srv_upload_open(&u, state, len, CKKS_KIND_BATCH, "stream"));
    feed_all(&u, buf, len / 2);
    srv_upload_abort(&u);
    CHECK(tmp_files(state) == 0 && access(dst, F_OK) != 0);
    free(buf);
}

int main(void)
{
    if (sodium_init() < 0)
        return 2;
    char state[600];
    snprintf(state, sizeof state, "%s/state", tu_tmpdir());
    test_routes();
    test_tokens(state);
    test_store(state);
    test_upload_trust();
    test_upload_stream(state);
    return tu_finish("test_serve");
}
