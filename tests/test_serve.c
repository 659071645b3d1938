/* The service's pieces below HTTP: routes, bearer parsing, ids, tokens (hashed, keyed, unique
 * names), and the job store's state machine (idempotency, claim order, restart re-queue,
 * deletion, TTL expiry). The network paths are tests/cli_serve.sh. */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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

int main(void)
{
    if (sodium_init() < 0)
        return 2;
    char state[600];
    snprintf(state, sizeof state, "%s/state", tu_tmpdir());
    test_routes();
    test_tokens(state);
    test_store(state);
    return tu_finish("test_serve");
}
