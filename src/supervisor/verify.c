/* verify.c: the end-state check. After the nodes stopped, reads what each one published and
 * checks every learner against what the client recorded and computed itself (G = base + R
 * global rounds): its exactly-once table holds exactly the requests of rounds 1..G (the
 * cross-check of the client's record against the learners' own), its state machine stands at
 * the index the core applied, applied G requests and reports the value F(G + 1) mod 2^64 (the
 * supervisor computes F itself: the check does not rest on the state machine's code), and all
 * learners hold the same history (digest and count). */
#include <inttypes.h>
#include <stdio.h>
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
        if (n->final_ok) {
            memcpy(&n->fib, &ns->final_fib, sizeof(n->fib));
            n->sm_applied = CMM_LOAD_SHARED(ns->final_sm_applied);
            n->sm_index = CMM_LOAD_SHARED(ns->final_sm_index);
            n->sm_digest = CMM_LOAD_SHARED(ns->final_sm_digest);
            n->cmd_digest = CMM_LOAD_SHARED(ns->final_cmd_digest);
        }
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
    switch (client_table_check(&n->fib, c->base + c->rounds)) {
    case CLIENT_TABLE_UNKNOWN:
        return "UNKNOWN REQUESTS";
    case CLIENT_TABLE_MISSING:
        return "MISSING REQUESTS";
    case CLIENT_TABLE_AGREES:
        break;
    }
    if (n->sm_index != n->fib.applied)
        return "BEHIND"; /* its state machine did not reach what its core applied */
    if (n->sm_digest != s->verify.expected_value)
        return "WRONG VALUE";
    if (n->fib.requests != c->base + c->rounds || n->sm_applied != c->base + c->rounds)
        return "WRONG REQUEST COUNT";
    if (!client_same_history(&n->fib, &ref->fib))
        return "DIVERGED";
    if (CMM_LOAD_SHARED(sup_node_shared(s, (uint16_t)(n - s->verify.nodes))->cmds_bad) > 0)
        return "WRONG COMMAND BYTES"; /* a long command applied with bytes the client never sent */
    return "ok";
}

/* One line per lost host: which learners could not be checked, and what the others showed. */
static void say_lost(const struct sup *s)
{
    const struct sup_verify *v = &s->verify;
    for (uint16_t i = 0; i < s->cfg->nodes; i++) {
        if (strcmp(v->nodes[i].verdict ? v->nodes[i].verdict : "", "host lost") != 0)
            continue;
        bool first = true;
        for (uint16_t j = 0; j < i; j++)
            first &= !(strcmp(v->nodes[j].verdict ? v->nodes[j].verdict : "", "host lost") == 0 &&
                       strcmp(sup_net_host_name(s, j), sup_net_host_name(s, i)) == 0);
        if (!first)
            continue;
        char ids[CLI_NODES_MAX * 4] = "";
        size_t len = 0;
        for (uint16_t j = i; j < s->cfg->nodes; j++)
            if (strcmp(v->nodes[j].verdict ? v->nodes[j].verdict : "", "host lost") == 0 &&
                strcmp(sup_net_host_name(s, j), sup_net_host_name(s, i)) == 0)
                len += (size_t)snprintf(ids + len, sizeof(ids) - len, "%s%u", len ? "," : "", j);
        fprintf(stderr,
                "paxos-shm: host %s was lost: its learners %s sent no final state; the %u"
                " learners reached %s\n",
                sup_net_host_name(s, i), ids, v->learners,
                v->verified ? "verified" : "did not all verify");
    }
}

void sup_verify(struct sup *s)
{
    struct sup_verify *v = &s->verify;
    const struct client *c = s->drive.client;
    v->ran = true;
    v->expected_value = client_fib(c->base + c->rounds + 1);
    const struct sup_node_end *ref = reference(v, s->cfg->nodes);
    v->learners = v->learners_ok = v->hung = 0;
    for (uint16_t i = 0; i < s->cfg->nodes; i++) {
        struct sup_node_end *n = &v->nodes[i];
        if (!n->learner) {
            n->verdict = n->verdict ? n->verdict : "not a learner";
            continue;
        }
        if (s->members.procs[i].hung_at_end) {
            n->verdict = "hung"; /* left out: README, "Hung nodes" */
            v->hung++;
            continue;
        }
        if (!n->final_ok && sup_net_lost(s, i)) {
            n->verdict = "host lost"; /* it may hold the same state: nobody can tell */
            v->lost++;
            continue;
        }
        v->learners++;
        n->verdict = verdict_of(s, n, ref);
        v->learners_ok += strcmp(n->verdict, "ok") == 0;
    }
    if (c->bad_replies > 0)
        fprintf(stderr,
                "paxos-shm: %" PRIu64 " replies carried a value the client did not submit\n",
                c->bad_replies);
    v->verified = v->learners > 0 && v->learners_ok == v->learners && c->bad_replies == 0;
    if (v->lost > 0)
        say_lost(s);
}

static const char *verdict_lib(const struct sup_node_end *n, const struct sup_node_end *ref,
                               uint64_t done)
{
    if (!n->final_ok)
        return n->verdict ? n->verdict : "no final state";
    if (n->sm_index != ref->sm_index)
        return "BEHIND"; /* it stopped at another log index than the first learner */
    if (n->sm_applied != ref->sm_applied || n->fib.requests != ref->fib.requests)
        return "WRONG REQUEST COUNT";
    if (n->cmd_digest != ref->cmd_digest || !client_same_history(&n->fib, &ref->fib))
        return "DIVERGED"; /* other commands, or the same in another order */
    if (n->sm_digest != ref->sm_digest)
        return "STATE DIFFERS"; /* the same commands, another state: apply is not deterministic */
    if (n->sm_applied < done)
        return "MISSING REQUESTS"; /* fewer applied than the client saw completed */
    return "ok";
}

void sup_verify_lib(struct sup *s, uint64_t done)
{
    struct sup_verify *v = &s->verify;
    v->ran = true;
    const struct sup_node_end *ref = reference(v, s->cfg->nodes);
    v->learners = v->learners_ok = v->hung = 0;
    for (uint16_t i = 0; i < s->cfg->nodes; i++) {
        struct sup_node_end *n = &v->nodes[i];
        if (!n->learner) {
            n->verdict = n->verdict ? n->verdict : "not a learner";
            continue;
        }
        if (s->members.procs[i].hung_at_end) {
            n->verdict = "hung";
            v->hung++;
            continue;
        }
        v->learners++;
        n->verdict = ref != NULL ? verdict_lib(n, ref, done) : "no final state";
        v->learners_ok += strcmp(n->verdict, "ok") == 0;
    }
    v->verified = v->learners > 0 && v->learners_ok == v->learners;
}
