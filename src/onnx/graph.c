/* Graph loading and validation: protobuf unpacking under an allocation budget, the value
 * table (every initializer, input and node output has one id), single assignment, the one
 * data input and output, and a topological order (cycles refused). */
#include <stdlib.h>
#include <string.h>

#include "onnx/inner.h"

/* protobuf-c allocates per repeated element and per string; a hostile file can still ask for
 * more than it holds (packed repeated fields are counted before they are read). Every
 * allocation is charged against a budget proportional to the file size. */
static void *budget_alloc(void *data, size_t size)
{
    onnx_alloc_budget *b = data;
    if (size > b->limit - b->used)
        return NULL;
    /* Remember the size in front of the block so free can give it back. */
    size_t *p = malloc(size + sizeof(size_t) * 2);
    if (!p)
        return NULL;
    p[0] = size;
    b->used += size;
    return p + 2;
}

static void budget_free(void *data, void *ptr)
{
    onnx_alloc_budget *b = data;
    if (!ptr)
        return;
    size_t *p = (size_t *)ptr - 2;
    b->used -= p[0];
    free(p);
}

void onnx_allocator_init(ProtobufCAllocator *a, onnx_alloc_budget *b, size_t limit)
{
    b->used = 0, b->limit = limit;
    a->alloc = budget_alloc, a->free = budget_free, a->allocator_data = b;
}

/* The unpacked structures of a message need at most ~8 machine words per byte of input
 * (each element of a packed float field costs 4 bytes on both sides; a 2-byte empty
 * sub-message costs its struct of ~200 bytes). 256 bytes per input byte plus 1 MB of slack
 * is generous for real models and still bounds hostile ones. */
static size_t budget_for(size_t len) { return len * 256 + ((size_t)1 << 20); }

static uint64_t hash_name(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    while (*s)
        h = (h ^ (unsigned char)*s++) * 1099511628211ull;
    return h;
}

size_t onnx_graph_find(const onnx_graph *g, const char *name)
{
    if (!name || !g->nslots)
        return SIZE_MAX;
    for (size_t i = hash_name(name) & (g->nslots - 1);; i = (i + 1) & (g->nslots - 1)) {
        size_t v = g->slots[i];
        if (!v)
            return SIZE_MAX;
        if (!strcmp(g->names[v - 1], name))
            return v - 1;
    }
}

static ppnn_status add_name(onnx_graph *g, const char *name, const char *what)
{
    if (!name || !name[0])
        return ppnn_fail(PPNN_ERR_FORMAT, "%s: %s without a name", g->file, what);
    if (onnx_graph_find(g, name) != SIZE_MAX)
        return ppnn_fail(PPNN_ERR_FORMAT, "%s: value '%s' (%s) defined twice", g->file, name,
                         what);
    size_t id = g->nvalues++;
    g->names[id] = name;
    size_t i = hash_name(name) & (g->nslots - 1);
    while (g->slots[i])
        i = (i + 1) & (g->nslots - 1);
    g->slots[i] = id + 1;
    return PPNN_OK;
}

void onnx_graph_free(onnx_graph *g)
{
    if (!g)
        return;
    for (size_t i = 0; i < g->nbound; i++)
        if (g->bound[i])
            onnx__tensor_proto__free_unpacked(g->bound[i], NULL);
    free(g->bound);
    if (g->model)
        onnx__model_proto__free_unpacked(g->model, NULL);
    free(g->order), free(g->names), free(g->slots), free(g->init);
    memset(g, 0, sizeof *g);
}

static int is_default_domain(const char *d) { return !d || !d[0] || !strcmp(d, "ai.onnx"); }

static ppnn_status unpack(onnx_graph *g, const uint8_t *buf, size_t len)
{
    ProtobufCAllocator a;
    onnx_alloc_budget b;
    onnx_allocator_init(&a, &b, budget_for(len));
    Onnx__ModelProto *m = onnx__model_proto__unpack(&a, len, buf);
    if (!m)
        return ppnn_fail(PPNN_ERR_FORMAT, "%s: not an ONNX model (malformed protobuf%s)",
                         g->file, b.used >= b.limit / 2 ? ", or sizes beyond the file" : "");
    /* The budgeted pass proved the sizes sane; unpack again with the default allocator so
     * the graph owns a message it can free without keeping the budget alive. */
    onnx__model_proto__free_unpacked(m, &a);
    g->model = onnx__model_proto__unpack(NULL, len, buf);
    if (!g->model)
        return ppnn_fail(PPNN_ERR_NOMEM, "%s: out of memory parsing the model", g->file);
    return PPNN_OK;
}

static ppnn_status check_header(onnx_graph *g)
{
    const Onnx__ModelProto *m = g->model;
    if (!m->graph)
        return ppnn_fail(PPNN_ERR_FORMAT, "%s: model without a graph", g->file);
    g->g = m->graph;
    g->opset = -1;
    for (size_t i = 0; i < m->n_opset_import; i++)
        if (m->opset_import[i] && is_default_domain(m->opset_import[i]->domain))
            g->opset = m->opset_import[i]->version;
    if (g->opset < 0)
        g->opset = 1; /* IR version 2 models may omit it: opset 1 semantics */
    if (g->g->n_node > ONNX_MAX_NODES)
        return ppnn_fail(PPNN_ERR_FORMAT, "%s: %zu nodes (limit %d)", g->file, g->g->n_node,
                         ONNX_MAX_NODES);
    if (g->g->n_sparse_initializer)
        return ppnn_fail(PPNN_ERR_UNSUPPORTED, "%s: sparse initializers are not supported",
                         g->file);
    for (size_t i = 0; i < g->g->n_node; i++) {
        const Onnx__NodeProto *n = g->g->node[i];
        if (!n->op_type || !n->op_type[0])
            return ppnn_fail(PPNN_ERR_FORMAT, "%s: node %zu without an op_type", g->file, i);
        if (!is_default_domain(n->domain))
            return ppnn_fail(PPNN_ERR_UNSUPPORTED, "%s: node %zu '%s' (%s): operator domain "
                             "'%s' is not supported (only the default ONNX domain)", g->file, i,
                             n->name ? n->name : "", n->op_type, n->domain);
    }
    return PPNN_OK;
}

/* Rank of unnamed binding k among the unnamed bindings. */
static size_t positional(const onnx_import_opts *o, size_t k)
{
    size_t r = 0;
    for (size_t j = 0; j < k; j++)
        r += o->bindings[j].name == NULL;
    return r;
}

static ppnn_status build_table(onnx_graph *g, const onnx_import_opts *o)
{
    const Onnx__GraphProto *gr = g->g;
    size_t total = gr->n_initializer + gr->n_input + 1;
    for (size_t i = 0; i < gr->n_node; i++)
        total += gr->node[i]->n_output;
    size_t ns = 16;
    while (ns < 2 * total)
        ns *= 2;
    g->names = calloc(total, sizeof *g->names);
    g->slots = calloc(ns, sizeof *g->slots);
    g->init = calloc(total, sizeof *g->init);
    g->bound = calloc(o->nbindings + 1, sizeof *g->bound);
    if (!g->names || !g->slots || !g->init || !g->bound)
        return ppnn_fail(PPNN_ERR_NOMEM, "%s: out of memory", g->file);
    g->nslots = ns;
    ppnn_status st;
    for (size_t i = 0; i < gr->n_initializer; i++) {
        if ((st = add_name(g, gr->initializer[i]->name, "initializer")))
            return st;
        g->init[g->nvalues - 1] = gr->initializer[i];
    }
    g->data_input = SIZE_MAX;
    size_t nonconst = 0;
    for (size_t i = 0; i < gr->n_input; i++) {
        const char *nm = gr->input[i]->name;
        size_t id = onnx_graph_find(g, nm);
        if (id != SIZE_MAX)
            continue; /* an initializer also listed as input (IR < 4): a constant */
        if ((st = add_name(g, nm, "graph input")))
            return st;
        id = g->nvalues - 1;
        nonconst++;
        for (size_t k = 0; k < o->nbindings; k++) {
            /* Named bindings match by name; unnamed ones bind the 2nd, 3rd, ... non-constant
             * input in order (the conformance suite's input_1.pb, input_2.pb, ...). */
            if (o->bindings[k].name ? strcmp(o->bindings[k].name, nm) != 0
                                    : positional(o, k) + 2 != nonconst)
                continue;
            Onnx__TensorProto *t = onnx__tensor_proto__unpack(NULL, o->bindings[k].len,
                                                              o->bindings[k].tensor);
            if (!t)
                return ppnn_fail(PPNN_ERR_FORMAT, "%s: binding for '%s' is not a TensorProto",
                                 g->file, nm);
            g->bound[g->nbound++] = t;
            g->init[id] = t;
        }
        if (g->init[id])
            continue;
        if (g->data_input != SIZE_MAX)
            return ppnn_fail(PPNN_ERR_UNSUPPORTED, "%s: graph inputs '%s' and '%s' are both "
                             "non-constant: ppnn models take exactly one input tensor",
                             g->file, g->names[g->data_input], nm);
        g->data_input = id;
        g->data_info = gr->input[i];
    }
    if (g->data_input == SIZE_MAX)
        return ppnn_fail(PPNN_ERR_FORMAT, "%s: the graph has no (non-constant) input", g->file);
    for (size_t i = 0; i < gr->n_node; i++)
        for (size_t k = 0; k < gr->node[i]->n_output; k++)
            if (gr->node[i]->output[k][0] && (st = add_name(g, gr->node[i]->output[k],
                                                            "node output")))
                return st;
    if (gr->n_output != 1)
        return ppnn_fail(PPNN_ERR_UNSUPPORTED, "%s: the graph has %zu outputs; ppnn models have "
                         "exactly one (the logits)", g->file, gr->n_output);
    g->output = onnx_graph_find(g, gr->output[0]->name);
    if (g->output == SIZE_MAX)
        return ppnn_fail(PPNN_ERR_FORMAT, "%s: graph output '%s' is never computed", g->file,
                         gr->output[0]->name ? gr->output[0]->name : "");
    return PPNN_OK;
}

/* Kahn's algorithm over the producer relation, in O(nodes + edges) (consumer lists in CSR
 * form: a file of 10^5 nodes must not take quadratic time); a node left over lies on a
 * cycle. */
static ppnn_status topo_sort(onnx_graph *g)
{
    const Onnx__GraphProto *gr = g->g;
    const size_t N = gr->n_node;
    size_t E = 0;
    for (size_t i = 0; i < N; i++)
        E += gr->node[i]->n_input;
    size_t *producer = malloc((g->nvalues + 1) * sizeof *producer);
    size_t *indeg = calloc(N + 1, sizeof *indeg), *queue = malloc((N + 1) * sizeof *queue);
    size_t *start = calloc(N + 2, sizeof *start), *cons = malloc((E + 1) * sizeof *cons);
    size_t *edge_src = malloc((E + 1) * sizeof *edge_src), *edge_dst = malloc((E + 1) * sizeof *edge_dst);
    g->order = malloc((N + 1) * sizeof *g->order);
    ppnn_status st = PPNN_OK;
    if (!producer || !indeg || !queue || !start || !cons || !edge_src || !edge_dst || !g->order) {
        st = ppnn_fail(PPNN_ERR_NOMEM, "%s: out of memory", g->file);
        goto done;
    }
    for (size_t v = 0; v < g->nvalues; v++)
        producer[v] = SIZE_MAX;
    for (size_t i = 0; i < N; i++)
        for (size_t k = 0; k < gr->node[i]->n_output; k++) {
            size_t id = onnx_graph_find(g, gr->node[i]->output[k]);
            if (id != SIZE_MAX)
                producer[id] = i;
        }
    size_t ne = 0;
    for (size_t i = 0; i < N; i++)
        for (size_t k = 0; k < gr->node[i]->n_input; k++) {
            const char *in = gr->node[i]->input[k];
            if (!in[0])
                continue; /* an omitted optional input */
            size_t id = onnx_graph_find(g, in);
            if (id == SIZE_MAX) {
                st = ppnn_fail(PPNN_ERR_FORMAT, "%s: node %zu '%s' (%s) reads '%s', which is "
                               "never defined", g->file, i, gr->node[i]->name ? gr->node[i]->name
                               : "", gr->node[i]->op_type, in);
                goto done;
            }
            if (producer[id] != SIZE_MAX) {
                indeg[i]++;
                edge_src[ne] = producer[id], edge_dst[ne] = i, ne++;
                start[producer[id] + 1]++;
            }
        }
    for (size_t i = 0; i < N; i++)
        start[i + 1] += start[i];
    for (size_t e = 0; e < ne; e++) /* fill: start[src] is the cursor of src's list */
        cons[start[edge_src[e]]++] = edge_dst[e];
    for (size_t i = N; i > 0; i--) /* the fill advanced start[i] to start[i+1]: shift back */
        start[i] = start[i - 1];
    start[0] = 0;
    size_t head = 0, tail = 0, done_n = 0;
    for (size_t i = 0; i < N; i++)
        if (!indeg[i])
            queue[tail++] = i;
    while (head < tail) {
        size_t i = queue[head++];
        g->order[done_n++] = i;
        for (size_t e = start[i]; e < start[i + 1]; e++)
            if (--indeg[cons[e]] == 0)
                queue[tail++] = cons[e];
    }
    if (done_n != N) {
        size_t bad = 0;
        while (bad < N && !indeg[bad])
            bad++;
        st = ppnn_fail(PPNN_ERR_FORMAT, "%s: the graph has a cycle through node %zu '%s' (%s)",
                       g->file, bad, gr->node[bad]->name ? gr->node[bad]->name : "",
                       gr->node[bad]->op_type);
    }
done:
    free(producer), free(indeg), free(queue), free(start), free(cons), free(edge_src);
    free(edge_dst);
    return st;
}

ppnn_status onnx_graph_load(onnx_graph *g, const uint8_t *buf, size_t len, const char *file,
                            const onnx_import_opts *opts)
{
    memset(g, 0, sizeof *g);
    g->file = file ? file : "model.onnx";
    ppnn_status st;
    if (len == 0)
        return ppnn_fail(PPNN_ERR_FORMAT, "%s: empty file", g->file);
    if (len > ONNX_MAX_FILE)
        return ppnn_fail(PPNN_ERR_FORMAT, "%s: %zu bytes, more than the %zu accepted", g->file,
                         len, ONNX_MAX_FILE);
    if ((st = unpack(g, buf, len)) || (st = check_header(g)) || (st = build_table(g, opts)) ||
        (st = topo_sort(g))) {
        onnx_graph_free(g);
        return st;
    }
    return PPNN_OK;
}
