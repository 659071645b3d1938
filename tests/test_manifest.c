/* The names manifest: round trip (names with commas, quotes, UTF-8), and refusal of truncated,
 * corrupted and inconsistent files. */
#include <stdlib.h>
#include <string.h>

#include "ppnn/data.h"
#include "testutil.h"

static void test_round_trip(void)
{
    char *names[3] = {"scans/a, b.png", "q\"uote\".npy[2]", "\xc3\xa9t\xc3\xa9.dcm"};
    data_images im = {3, 1, 28, 28, NULL, names};
    uint8_t kid[DATA_MANIFEST_KEY_ID_BYTES];
    for (int i = 0; i < DATA_MANIFEST_KEY_ID_BYTES; i++)
        kid[i] = (uint8_t)(0xf0 + i);
    char path[600];
    snprintf(path, sizeof path, "%s/b.ct.names.json", tu_tmpdir());
    CHECK_OK(data_manifest_save(path, &im, kid));
    data_manifest m;
    CHECK_OK(data_manifest_load(&m, path));
    CHECK(m.count == 3 && m.shape.c == 1 && m.shape.h == 28 && m.shape.w == 28);
    CHECK(memcmp(m.key_id, kid, sizeof kid) == 0);
    for (int i = 0; i < 3 && m.names; i++)
        CHECK(strcmp(m.names[i], names[i]) == 0);
    data_manifest_free(&m);
    data_manifest_free(NULL);

    /* Truncated anywhere: refused. */
    uint8_t *buf;
    size_t len;
    CHECK_OK(ppnn_read_file(&buf, &len, path, 1 << 20));
    for (size_t cut = 0; cut + 2 < len; cut++) { /* the last bytes are "}\n" */
        ppnn_status st = data_manifest_parse(&m, buf, cut, "cut.json");
        CHECK_MSG(st != PPNN_OK && strstr(ppnn_last_error(), "cut.json") && !m.names,
                  "cut at %zu accepted", cut);
        if (!st)
            data_manifest_free(&m);
    }
    free(buf);
}

static void refuse(const char *json, const char *needle)
{
    data_manifest m;
    ppnn_fail(PPNN_OK, "%s", "");
    ppnn_status st = data_manifest_parse(&m, (const uint8_t *)json, strlen(json), "m.json");
    CHECK_MSG(st != PPNN_OK && strstr(ppnn_last_error(), needle) && !m.names, "%s -> %s", json,
              ppnn_last_error());
    if (!st)
        data_manifest_free(&m);
}

#define KID "\"key_id\": \"000102030405060708090a0b0c0d0e0f\""

static void test_corrupted(void)
{
    refuse("[]", "not a JSON object");
    refuse("{\"format\": \"other\", \"version\": 1}", "format");
    refuse("{\"format\": \"ppnn-names\", \"version\": 2, " KID ", \"images\": 1, \"shape\": [1,2,2],"
           " \"names\": [\"a\"]}", "version");
    refuse("{\"format\": \"ppnn-names\", \"version\": 1, \"key_id\": \"00zz\", \"images\": 1, "
           "\"shape\": [1,2,2], \"names\": [\"a\"]}", "key_id");
    refuse("{\"format\": \"ppnn-names\", \"version\": 1, " KID ", \"images\": 2, \"shape\": [1,2,2],"
           " \"names\": [\"a\"]}", "disagree");
    refuse("{\"format\": \"ppnn-names\", \"version\": 1, " KID ", \"images\": 1.5, \"shape\": "
           "[1,2,2], \"names\": [\"a\"]}", "disagree");
    refuse("{\"format\": \"ppnn-names\", \"version\": 1, " KID ", \"images\": 1, \"shape\": [0,2,2],"
           " \"names\": [\"a\"]}", "shape");
    refuse("{\"format\": \"ppnn-names\", \"version\": 1, " KID ", \"images\": 1, \"shape\": [1,2],"
           " \"names\": [\"a\"]}", "shape");
    refuse("{\"format\": \"ppnn-names\", \"version\": 1, " KID ", \"images\": 1, \"shape\": [1,2,2],"
           " \"names\": [7]}", "not a string");
    refuse("{\"format\": \"ppnn-names\", \"version\": 1, " KID ", \"images\": 1e300, \"shape\": "
           "[1,2,2], \"names\": [\"a\"]}", "disagree");
    const char *good = "{\"format\": \"ppnn-names\", \"version\": 1, " KID ", \"images\": 1, "
                       "\"shape\": [1,2,2], \"names\": [\"a\"]}";
    data_manifest m;
    CHECK_OK(data_manifest_parse(&m, (const uint8_t *)good, strlen(good), "good.json"));
    CHECK(m.count == 1 && m.key_id[15] == 0x0f);
    data_manifest_free(&m);
}

int main(void)
{
    test_round_trip();
    test_corrupted();
    return tu_finish("test_manifest");
}
