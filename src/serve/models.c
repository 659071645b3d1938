/* The models a server offers: every DIR/<name>.ppnn, planned for each parameter preset once at
 * start (a model that fits neither is listed with its reason and refused at submission). */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#include "serve_inner.h"

static const char *const presets[2] = {"n13", "n14"};

void srv_models_free(srv_models *ms)
{
    if (!ms)
        return;
    for (size_t i = 0; i < ms->count; i++) {
        for (int k = 0; k < 2; k++)
            hnn_plan_free(ms->v[i].plan[k]);
        nn_model_free(&ms->v[i].m);
    }
    free(ms->v);
    for (int k = 0; k < 2; k++)
        ckks_params_free(ms->params[k]);
    memset(ms, 0, sizeof *ms);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const srv_model *)a)->name, ((const srv_model *)b)->name);
}

ppnn_status srv_models_load(srv_models *ms, const char *dir)
{
    memset(ms, 0, sizeof *ms);
    ppnn_status st;
    for (int k = 0; k < 2; k++) {
        ckks_spec spec;
        ms->preset_names[k] = presets[k];
        if ((st = ckks_preset(&spec, presets[k])) || (st = ckks_params_new(&ms->params[k], &spec)))
            goto fail;
    }
    DIR *d = opendir(dir);
    if (!d) {
        st = ppnn_fail(PPNN_ERR_IO, "cannot read the models directory %s", dir);
        goto fail;
    }
    struct dirent *e;
    size_t cap = 0;
    st = PPNN_OK;
    while (!st && (e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n <= 5 || strcmp(e->d_name + n - 5, ".ppnn") != 0)
            continue;
        char name[SRV_NAME_MAX + 1];
        if (n - 5 > SRV_NAME_MAX)
            continue;
        memcpy(name, e->d_name, n - 5);
        name[n - 5] = 0;
        if (!srv_valid_name(name))
            continue;
        if (ms->count == cap) {
            cap = cap ? 2 * cap : 8;
            srv_model *v = realloc(ms->v, cap * sizeof *v);
            if (!v) {
                st = ppnn_fail(PPNN_ERR_NOMEM, "out of memory");
                break;
            }
            ms->v = v;
        }
        srv_model *m = &ms->v[ms->count];
        memset(m, 0, sizeof *m);
        memcpy(m->name, name, n - 4);
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if ((st = nn_model_load(&m->m, path)))
            break;
        ms->count++;
        for (int k = 0; k < 2; k++)
            if (hnn_plan_for_params(&m->plan[k], &m->m, ms->params[k], NULL) != PPNN_OK)
                m->plan[k] = NULL;
    }
    closedir(d);
    if (st)
        goto fail;
    if (ms->count)
        qsort(ms->v, ms->count, sizeof *ms->v, by_name);
    return PPNN_OK;
fail:
    srv_models_free(ms);
    return st;
}

const srv_model *srv_models_find(const srv_models *ms, const char *name)
{
    for (size_t i = 0; i < ms->count; i++)
        if (!strcmp(ms->v[i].name, name))
            return &ms->v[i];
    return NULL;
}

int srv_models_preset(const srv_models *ms, const uint8_t param_id[32])
{
    for (int k = 0; k < 2; k++)
        if (ms->params[k] && !memcmp(ms->params[k]->id, param_id, 32))
            return k;
    return -1;
}

char *srv_models_json(const srv_models *ms)
{
    cJSON *root = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(root, "models");
    for (size_t i = 0; i < ms->count; i++) {
        const srv_model *m = &ms->v[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", m->name);
        cJSON *shape = cJSON_AddArrayToObject(o, "input_shape");
        cJSON_AddItemToArray(shape, cJSON_CreateNumber(m->m.input.c));
        cJSON_AddItemToArray(shape, cJSON_CreateNumber(m->m.input.h));
        cJSON_AddItemToArray(shape, cJSON_CreateNumber(m->m.input.w));
        cJSON_AddStringToObject(o, "packing", "element");
        cJSON *ps = cJSON_AddArrayToObject(o, "presets");
        for (int k = 0; k < 2; k++) {
            if (!m->plan[k])
                continue;
            cJSON *p = cJSON_CreateObject();
            cJSON_AddStringToObject(p, "preset", presets[k]);
            cJSON_AddNumberToObject(p, "depth", (double)m->plan[k]->depth);
            cJSON_AddNumberToObject(p, "input_ciphertexts", (double)m->plan[k]->n_inputs);
            cJSON_AddNumberToObject(p, "outputs", (double)m->plan[k]->n_outputs);
            cJSON_AddNumberToObject(p, "max_images", (double)ms->params[k]->slots);
            cJSON_AddNumberToObject(p, "max_upload_bytes",
                                    (double)ckks_batch_max_bytes(ms->params[k],
                                                                 m->plan[k]->n_inputs));
            cJSON_AddItemToArray(ps, p);
        }
        /* The preset a client should pick: the smallest that fits (fastest). */
        cJSON_AddStringToObject(o, "preset", m->plan[0] ? presets[0] : m->plan[1] ? presets[1]
                                                                                 : "none");
        cJSON_AddNumberToObject(o, "depth", m->plan[0] ? (double)m->plan[0]->depth
                                            : m->plan[1] ? (double)m->plan[1]->depth : -1);
        cJSON_AddItemToArray(arr, o);
    }
    char *txt = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return txt;
}
