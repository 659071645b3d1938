/* Request routing: method and path to a route, ids validated (no I/O; fuzz/fuzz_http.c). */
#include <string.h>

#include "serve_inner.h"

int srv_valid_id(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++)
        if (n >= SRV_ID_HEX || !((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f')))
            return 0;
    return n == SRV_ID_HEX;
}

const char *srv_bearer(const char *h)
{
    static const char scheme[] = "Bearer ";
    if (!h || strncmp(h, scheme, sizeof scheme - 1) != 0)
        return NULL;
    h += sizeof scheme - 1;
    while (*h == ' ')
        h++;
    return *h ? h : NULL;
}

/* Takes the next path segment of p (after a '/') into seg; returns the rest or NULL. */
static const char *segment(char *seg, size_t cap, const char *p)
{
    if (*p != '/')
        return NULL;
    p++;
    size_t n = strcspn(p, "/");
    if (n == 0 || n >= cap)
        return NULL;
    memcpy(seg, p, n);
    seg[n] = 0;
    return p + n;
}

void srv_route_parse(srv_route *r, const char *method, const char *path)
{
    memset(r, 0, sizeof *r);
    int get = !strcmp(method, "GET"), post = !strcmp(method, "POST");
    int del = !strcmp(method, "DELETE");
    char a[16], b[SRV_ID_HEX + 2], c[16];
    const char *p = segment(a, sizeof a, path);
    if (!p || strcmp(a, "v1") != 0)
        return;
    if (!(p = segment(a, sizeof a, p)))
        return;
    int is_keys = !strcmp(a, "keys"), is_jobs = !strcmp(a, "jobs");
    if (!*p || !strcmp(p, "/")) {
        if (!strcmp(a, "health"))
            r->kind = get ? SRV_R_HEALTH : SRV_R_BAD_METHOD;
        else if (!strcmp(a, "models"))
            r->kind = get ? SRV_R_MODELS : SRV_R_BAD_METHOD;
        else if (is_keys)
            r->kind = post ? SRV_R_KEY_PUT : SRV_R_BAD_METHOD;
        else if (is_jobs)
            r->kind = post ? SRV_R_JOB_SUBMIT : get ? SRV_R_JOB_LIST : SRV_R_BAD_METHOD;
        return;
    }
    if (!(is_keys || is_jobs) || !(p = segment(b, sizeof b, p)) || !srv_valid_id(b))
        return;
    memcpy(r->id, b, SRV_ID_HEX + 1);
    if (!*p) {
        if (is_keys)
            r->kind = get ? SRV_R_KEY_GET : SRV_R_BAD_METHOD;
        else
            r->kind = get ? SRV_R_JOB_STATUS : del ? SRV_R_JOB_DELETE : SRV_R_BAD_METHOD;
        return;
    }
    if (is_jobs && (p = segment(c, sizeof c, p)) && !*p && !strcmp(c, "result")) {
        r->kind = get ? SRV_R_JOB_RESULT : SRV_R_BAD_METHOD;
        return;
    }
    r->id[0] = 0;
}
