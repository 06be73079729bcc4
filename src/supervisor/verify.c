/* verify.c: the end-state check. After the nodes stopped, reads what each one published and
 * checks every learner against what the client computed itself: F(base + R + 1) mod 2^64, every
 * request applied exactly once, and all learners at the same applied index and digest. */
#include <string.h>

#include <urcu/system.h>
#include <urcu/uatomic.h>

#include "common/pool.h"
#include "supervisor/client.h"
#include "supervisor/sup.h"

void sup_collect(struct sup *s)
{
    for (uint16_t i = 0; i < s->cfg->nodes; i++) {
        const struct pool_node_shared *ns = sup_node_shared(s, i);
        struct sup_node_end *n = &s->verify.nodes[i];
        n->counters = sup_counters_of(s, i);
        n->elections = CMM_LOAD_SHARED(ns->elections_won);
        n->learner = sup_has_role(s->cfg, i, PX_ROLE_LEARNER);
        uint64_t seq = uatomic_read(&ns->final_seq);
        cmm_smp_rmb(); /* pairs with publish_final's second wmb */
        n->final_ok = seq != 0 && seq % 2 == 0 && CMM_LOAD_SHARED(ns->final_ok);
        if (n->final_ok)
            memcpy(&n->fib, &ns->final_fib, sizeof(n->fib));
        if (s->members.procs[i].did_not_stop)
            n->verdict = "did not stop";
    }
}

static const struct sup_node_end *reference(const struct sup_verify *v, uint32_t nodes)
{
    for (uint32_t i = 0; i < nodes; i++)
        if (v->nodes[i].learner && v->nodes[i].final_ok)
            return &v->nodes[i];
    return NULL;
}

static const char *verdict_of(const struct sup *s, const struct sup_node_end *n,
                              const struct sup_node_end *ref)
{
    const struct client *c = s->drive.client;
    if (!n->final_ok)
        return n->verdict ? n->verdict : "no final state";
    if (n->fib.value != s->verify.expected_value)
        return "WRONG VALUE";
    if (n->fib.requests != c->base + c->rounds)
        return "WRONG REQUEST COUNT";
    if (n->fib.digest != ref->fib.digest || n->fib.applied != ref->fib.applied)
        return "DIVERGED";
    return "ok";
}

void sup_verify(struct sup *s)
{
    struct sup_verify *v = &s->verify;
    const struct client *c = s->drive.client;
    v->ran = true;
    v->expected_value = client_fib(c->base + c->rounds + 1);
    const struct sup_node_end *ref = reference(v, s->cfg->nodes);
    v->learners = v->learners_ok = 0;
    for (uint16_t i = 0; i < s->cfg->nodes; i++) {
        struct sup_node_end *n = &v->nodes[i];
        if (!n->learner) {
            n->verdict = n->verdict ? n->verdict : "not a learner";
            continue;
        }
        v->learners++;
        n->verdict = verdict_of(s, n, ref);
        v->learners_ok += strcmp(n->verdict, "ok") == 0;
    }
    v->verified = v->learners > 0 && v->learners_ok == v->learners;
}

/* First global round not applied according to one client's dedup record. */
static uint64_t first_missing(const struct px_fib *f, uint32_t client_id)
{
    /* Seqs start at 1; px_fib_seen answers from the state machine's own exactly-once table,
     * and a client's seen seqs past a gap stay within PX_DEDUP_SPAN of its oldest unapplied. */
    struct px_value v = {.client_id = client_id, .seq = 1};
    for (uint32_t k = 0; k < PX_CLIENTS_MAX; k++)
        if (f->clients[k].client_id == client_id && f->clients[k].seq_low > 1)
            v.seq = f->clients[k].seq_low;
    while (px_fib_seen(f, &v))
        v.seq++;
    return (uint64_t)(v.seq - 1) * CLIENT_IDS + client_id;
}

uint64_t sup_earlier_rounds(const struct sup *s)
{
    const struct px_fib *best = NULL;
    for (uint16_t i = 0; i < s->cfg->nodes; i++) {
        const struct px_fib *f = &sup_node_shared(s, i)->recovered_fib;
        if (sup_has_role(s->cfg, i, PX_ROLE_LEARNER) &&
            (best == NULL || f->applied > best->applied))
            best = f;
    }
    if (best == NULL || best->requests == 0)
        return 0;
    uint64_t lo = UINT64_MAX;
    for (uint32_t c = 1; c <= CLIENT_IDS; c++) {
        uint64_t g = first_missing(best, c);
        lo = g < lo ? g : lo;
    }
    return lo - 1;
}
