/* Client tokens: creation, keyed hashing, and the CLI-facing token management.
 * Why a keyed BLAKE2b and not crypto_pwhash: see serve_inner.h (256-bit tokens). */
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "serve_inner.h"

#define TOKEN_PREFIX "ppnn_"

int srv_valid_name(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > SRV_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || (c == '.' && i > 0)))
            return 0;
    }
    return 1;
}

void srv_random_id(char id[SRV_ID_HEX + 1])
{
    uint8_t raw[SRV_ID_HEX / 2];
    randombytes_buf(raw, sizeof raw);
    sodium_bin2hex(id, SRV_ID_HEX + 1, raw, sizeof raw);
}

void srv_token_hash(uint8_t hash[32], const uint8_t key[32], const char *token, size_t len)
{
    crypto_generichash(hash, 32, (const uint8_t *)token, len, key, 32);
}

/* The hashing key: created once (0600) on first use, then read. It is written under a
 * temporary name and link()ed into place, so a reader never sees a short key and two processes
 * racing to create it agree (link fails for the loser, which then reads the winner's). */
ppnn_status srv_token_key_load(uint8_t key[32], const char *state_dir)
{
    if (sodium_init() < 0)
        return ppnn_fail(PPNN_ERR_UNSUPPORTED, "libsodium failed to initialise");
    char path[1024], tmp[1100];
    snprintf(path, sizeof path, "%s/token.key", state_dir);
    if (access(path, F_OK) != 0) {
        snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
        int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd < 0)
            return ppnn_fail(PPNN_ERR_IO, "cannot create %s: %s", tmp, strerror(errno));
        uint8_t k[32];
        randombytes_buf(k, sizeof k);
        int ok = write(fd, k, sizeof k) == (ssize_t)sizeof k && fsync(fd) == 0;
        sodium_memzero(k, sizeof k);
        close(fd);
        int e = ok && link(tmp, path) != 0 ? errno : 0;
        unlink(tmp);
        if (!ok || (e && e != EEXIST))
            return ppnn_fail(PPNN_ERR_IO, "cannot write %s: %s", path, strerror(ok ? e : EIO));
    }
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return ppnn_fail(PPNN_ERR_IO, "cannot read %s: %s", path, strerror(errno));
    struct stat sb;
    ssize_t got = fstat(fd, &sb) == 0 && sb.st_size == 32 ? read(fd, key, 32) : -1;
    close(fd);
    if (got != 32)
        return ppnn_fail(PPNN_ERR_FORMAT, "%s: not a 32-byte token key", path);
    return PPNN_OK;
}

static ppnn_status open_state(srv_store **s, uint8_t key[32], const char *state_dir)
{
    if (mkdir(state_dir, 0700) != 0 && errno != EEXIST)
        return ppnn_fail(PPNN_ERR_IO, "cannot create %s: %s", state_dir, strerror(errno));
    ppnn_status st = srv_token_key_load(key, state_dir);
    return st ? st : srv_store_open(s, state_dir);
}

ppnn_status srv_token_add(char token[SRV_TOKEN_CHARS + 1], const char *state_dir,
                          const char *name)
{
    if (!srv_valid_name(name))
        return ppnn_fail(PPNN_ERR_PARAM, "client name '%s' must be 1..%d characters of "
                         "A-Z a-z 0-9 _ - .", name, SRV_NAME_MAX);
    uint8_t key[32], raw[32], hash[32];
    srv_store *s = NULL;
    ppnn_status st = open_state(&s, key, state_dir);
    if (st)
        return st;
    randombytes_buf(raw, sizeof raw);
    memcpy(token, TOKEN_PREFIX, strlen(TOKEN_PREFIX));
    sodium_bin2base64(token + strlen(TOKEN_PREFIX), SRV_TOKEN_CHARS + 1 - strlen(TOKEN_PREFIX),
                      raw, sizeof raw, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    srv_token_hash(hash, key, token, strlen(token));
    sodium_memzero(raw, sizeof raw);
    sodium_memzero(key, sizeof key);
    st = srv_store_client_add(s, name, hash);
    if (st)
        sodium_memzero(token, SRV_TOKEN_CHARS + 1);
    srv_store_close(s);
    return st;
}

ppnn_status srv_token_revoke(const char *state_dir, const char *name)
{
    uint8_t key[32];
    srv_store *s = NULL;
    ppnn_status st = open_state(&s, key, state_dir);
    sodium_memzero(key, sizeof key);
    if (st)
        return st;
    st = srv_store_client_revoke(s, name);
    srv_store_close(s);
    return st;
}

ppnn_status srv_token_list(const char *state_dir,
                           void (*fn)(void *ctx, const char *name, double created, size_t jobs),
                           void *ctx)
{
    uint8_t key[32];
    srv_store *s = NULL;
    ppnn_status st = open_state(&s, key, state_dir);
    sodium_memzero(key, sizeof key);
    if (st)
        return st;
    st = srv_store_client_list(s, fn, ctx);
    srv_store_close(s);
    return st;
}
