/* px_cluster.c: see px_cluster.h. */
#include <stdlib.h>
#include <string.h>

#include "px_cluster.h"
#include "px_mix.h"

void *pxc_xcalloc(size_t n, size_t size);
void *pxc_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n, size);
    if (p == NULL)
        abort();
    return p;
}

uint64_t pxc_fib_number(uint32_t k)
{
    uint64_t a = 0, b = 1;
    for (uint32_t i = 0; i < k; i++) {
        uint64_t t = a + b;
        a = b;
        b = t;
    }
    return a;
}

uint64_t pxc_digest_step(uint64_t digest, px_inst_t instance, uint32_t client, uint32_t seq,
                         uint64_t word)
{
    digest = px_mix64(digest ^ instance);
    digest = px_mix64(digest ^ ((uint64_t)client << 32 | seq));
    return px_mix64(digest ^ word);
}

uint64_t pxc_digest_run(px_inst_t first, uint32_t n, uint32_t client, uint32_t seq0,
                        const uint64_t *words, uint64_t word0)
{
    uint64_t d = 0;
    for (uint32_t k = 0; k < n; k++)
        d = pxc_digest_step(d, first + k, client, seq0 + k, words != NULL ? words[k] : word0);
    return d;
}

/* Feeds a node's reference state machine what its core applied in this ready. */
static void pxc_sm_feed(struct pxc_sm *sm, const struct px_ready *r)
{
    if (r->snapshot != 0) {
        sm->valid = false; /* the core's history was replaced without the entries */
        return;
    }
    for (uint32_t i = 0; i < r->apply_len; i++) {
        const struct px_applied *a = &r->apply[i];
        sm->applied = a->instance;
        if (a->value.client_id == 0 || a->duplicate)
            continue;
        sm->value += a->value.word;
        sm->requests++;
        sm->digest = pxc_digest_step(sm->digest, a->instance, px_value_client(&a->value),
                                     a->value.seq, a->value.word);
    }
}

struct pxc *pxc_new(uint16_t n, const uint64_t *roles, uint32_t window_max, uint32_t rotate)
{
    struct pxc *c = pxc_xcalloc(1, sizeof(*c));
    c->n = n;
    c->cfg.nodes = n;
    c->cfg.window_max = window_max;
    c->cfg.rotate_every = rotate;
    c->cfg.election_ticks = 10;
    c->cfg.heartbeat_ticks = 3;
    c->cfg.seed = 42;
    for (uint16_t i = 0; i < n; i++)
        c->cfg.roles[i] = roles ? roles[i] : PX_ROLE_PROPOSER | PX_ROLE_ACCEPTOR | PX_ROLE_LEARNER;
    c->ready = pxc_xcalloc(1, sizeof(*c->ready));
    c->q = pxc_xcalloc(PXC_QUEUE_MAX, sizeof(*c->q));
    for (uint16_t i = 0; i < n; i++) {
        c->node[i].st.recs = pxc_xcalloc(PXC_RECS_MAX, sizeof(struct px_rec));
        c->node[i].st.sm = (struct pxc_sm){.valid = true, .value = 1}; /* F(1), nothing applied */
        pxc_start_node(c, i);
    }
    return c;
}

void pxc_free(struct pxc *c)
{
    for (uint16_t i = 0; i < c->n; i++) {
        free(c->node[i].mem);
        free(c->node[i].st.recs);
    }
    free(c->q);
    free(c->ready);
    free(c);
}

void pxc_start_node(struct pxc *c, uint16_t id)
{
    struct pxc_node *nd = &c->node[id];
    struct px_config cfg = c->cfg;
    cfg.id = id;
    size_t bytes = px_node_size(&cfg);
    free(nd->mem);
    if (posix_memalign(&nd->mem, 64, bytes) != 0)
        abort();
    if (px_node_init(nd->mem, bytes, &cfg, &nd->px) != 0)
        abort();
    px_node_load(nd->px, &nd->st.d);
    for (size_t i = 0; i < nd->st.recs_len; i++)
        px_node_load_rec(nd->px, &nd->st.recs[i]);
    nd->up = true;
    nd->applied_len = 0;
    for (uint16_t p = 0; p < c->n; p++) {
        if (p != id && !c->node[p].up) {
            px_ready_clear(c->ready);
            px_node_peer_status(nd->px, p, false, c->ready);
            pxc_process(c, id);
        }
    }
    for (uint16_t p = 0; p < c->n; p++) {
        if (p != id && c->node[p].up) {
            px_node_peer_status(c->node[p].px, id, true, c->ready);
            pxc_process(c, p);
        }
    }
}

void pxc_crash(struct pxc *c, uint16_t id)
{
    c->node[id].up = false;
    for (uint16_t p = 0; p < c->n; p++) {
        if (p != id && c->node[p].up) {
            px_node_peer_status(c->node[p].px, id, false, c->ready);
            pxc_process(c, p);
        }
    }
}

static void enqueue(struct pxc *c, uint16_t to, const struct px_msg *m)
{
    if (c->filter != NULL && c->filter(m, to, c->filter_ctx))
        return;
    if (c->q_len == PXC_QUEUE_MAX)
        abort();
    struct pxc_env *e = &c->q[(c->q_head + c->q_len) % PXC_QUEUE_MAX];
    e->to = to;
    e->m = *m;
    c->q_len++;
}

void pxc_process(struct pxc *c, uint16_t id)
{
    struct pxc_node *nd = &c->node[id];
    struct px_ready *r = c->ready;
    px_node_flush(nd->px, r);
    /* 1. persist */
    for (uint32_t i = 0; i < r->recs_len; i++) {
        if (nd->st.recs_len == PXC_RECS_MAX)
            abort();
        nd->st.recs[nd->st.recs_len++] = r->recs[i];
        if (r->recs[i].type == PX_REC_PROMISE && r->recs[i].ballot > nd->st.d.promised)
            nd->st.d.promised = r->recs[i].ballot;
    }
    nd->st.d.fib = *px_node_history(nd->px);
    pxc_sm_feed(&nd->st.sm, r);
    /* 2. send */
    for (uint32_t i = 0; i < r->msgs_len; i++) {
        const struct px_msg *m = &r->msgs[i];
        c->sent_by_type[m->type]++;
        if (m->to == PX_CLIENT_NODE(&c->cfg)) {
            if (c->replies_len < PXC_REPLIES_MAX)
                c->replies[c->replies_len++] = *m;
        } else if (m->to == PX_TO_ALL) {
            for (uint16_t p = 0; p < c->n; p++)
                if (p != id)
                    enqueue(c, p, m);
        } else {
            enqueue(c, m->to, m);
        }
    }
    /* 3. applied */
    for (uint32_t i = 0; i < r->apply_len && nd->applied_len < PXC_APPLIED_MAX; i++)
        nd->applied[nd->applied_len++] = r->apply[i];
    px_ready_clear(r);
}

bool pxc_deliver_one(struct pxc *c)
{
    if (c->q_len == 0)
        return false;
    struct pxc_env e = c->q[c->q_head];
    c->q_head = (c->q_head + 1) % PXC_QUEUE_MAX;
    c->q_len--;
    if (!c->node[e.to].up)
        return true;
    px_node_step(c->node[e.to].px, &e.m, c->ready);
    pxc_process(c, e.to);
    c->delivered++;
    return true;
}

size_t pxc_run(struct pxc *c, size_t max_msgs)
{
    size_t k = 0;
    while (k < max_msgs && pxc_deliver_one(c))
        k++;
    return k;
}

void pxc_drop_queue(struct pxc *c)
{
    c->q_head = 0;
    c->q_len = 0;
}

void pxc_tick(struct pxc *c, uint16_t id)
{
    if (!c->node[id].up)
        return;
    px_node_tick(c->node[id].px, c->ready);
    pxc_process(c, id);
}

void pxc_tick_all(struct pxc *c)
{
    for (uint16_t i = 0; i < c->n; i++)
        pxc_tick(c, i);
}

bool pxc_until(struct pxc *c, bool (*cond)(struct pxc *c, void *ctx), void *ctx, uint32_t ticks)
{
    for (uint32_t t = 0; t <= ticks; t++) {
        pxc_run(c, 100000);
        if (cond(c, ctx))
            return true;
        pxc_tick_all(c);
    }
    return cond(c, ctx);
}

int pxc_submit(struct pxc *c, uint16_t id, uint32_t client_id, uint32_t seq, uint64_t inc)
{
    struct px_value v = {.word = inc, .client_id = client_id, .seq = seq};
    int rc = px_node_submit(c->node[id].px, &v, c->ready);
    pxc_process(c, id);
    return rc;
}

void pxc_campaign(struct pxc *c, uint16_t id)
{
    uint64_t before = px_node_stats(c->node[id].px)->campaigns;
    for (uint32_t t = 0; t < 1000; t++) {
        if (px_node_stats(c->node[id].px)->campaigns > before)
            return;
        pxc_tick(c, id);
    }
    abort();
}

int pxc_leader(const struct pxc *c)
{
    int l = -1;
    for (uint16_t i = 0; i < c->n; i++) {
        if (c->node[i].up && px_node_is_leader(c->node[i].px))
            l = l == -1 ? i : -2;
    }
    return l;
}

bool pxc_has_leader(struct pxc *c, void *ctx)
{
    (void)ctx;
    return pxc_leader(c) >= 0;
}

uint64_t pxc_applied_requests(const struct pxc *c, uint16_t id)
{
    return px_node_history(c->node[id].px)->requests;
}

struct px_config pxu_config(uint16_t id, uint16_t nodes)
{
    struct px_config cfg = {0};
    cfg.id = id;
    cfg.nodes = nodes;
    for (uint16_t i = 0; i < nodes; i++)
        cfg.roles[i] = PX_ROLE_PROPOSER | PX_ROLE_ACCEPTOR | PX_ROLE_LEARNER;
    cfg.window_max = 8;
    cfg.election_ticks = 10;
    cfg.heartbeat_ticks = 3;
    cfg.seed = 7;
    return cfg;
}

struct px_node *pxu_node_cfg(const struct px_config *cfg)
{
    void *mem = NULL;
    size_t bytes = px_node_size(cfg);
    if (posix_memalign(&mem, 64, bytes) != 0)
        abort();
    struct px_node *n = NULL;
    if (px_node_init(mem, bytes, cfg, &n) != 0)
        abort();
    return n;
}

struct px_node *pxu_node(uint16_t id, uint16_t nodes, bool batch)
{
    struct px_config cfg = pxu_config(id, nodes);
    cfg.batch = batch;
    return pxu_node_cfg(&cfg);
}

void pxu_free(struct px_node *n)
{
    free(n); /* px_node_init placed the node at the start of the block */
}

struct px_msg pxu_msg(uint8_t type, uint16_t from, uint16_t to, px_ballot_t b, px_inst_t i)
{
    struct px_msg m = {0};
    m.type = type;
    m.from = from;
    m.to = to;
    m.ballot = b;
    m.instance = i;
    return m;
}

struct px_ready *pxu_ready(void)
{
    return pxc_xcalloc(1, sizeof(struct px_ready));
}

int pxu_find(const struct px_ready *r, uint8_t type, uint32_t from)
{
    for (uint32_t i = from; i < r->msgs_len; i++)
        if (r->msgs[i].type == type)
            return (int)i;
    return -1;
}

uint32_t pxu_count(const struct px_ready *r, uint8_t type)
{
    uint32_t k = 0;
    for (uint32_t i = 0; i < r->msgs_len; i++)
        k += r->msgs[i].type == type;
    return k;
}
