/* sim_world.c: the simulated pool -- nodes, their durable stores, the network and the client.
 *
 * A node activation mirrors the real node loop: step a bounded batch (client values, inbound
 * messages, one tick), persist ready->recs and px_node_fib() as one transaction, check, then
 * send ready->msgs. A crash can hit before the commit (everything of the batch is lost), after
 * it (the messages are lost) or part way through the sends.
 */
#include "sim.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

const char *const sim_fault_names[SIM_F_COUNT] = {
    "drops",    "duplicates", "reorders",       "delays",    "partitions",   "crashes",
    "restarts", "lagging",    "leader changes", "rotations", "role changes",
};

/* --- PRNG (splitmix64: tiny, full period, good enough for fault draws) --- */

uint64_t sim_rng_next(struct sim_rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uint64_t sim_rng_below(struct sim_rng *r, uint64_t n)
{
    PX_ASSERT(n > 0);
    return sim_rng_next(r) % n;
}

bool sim_rng_chance(struct sim_rng *r, double p)
{
    if (p <= 0.0)
        return false;
    return (double)(sim_rng_next(r) >> 11) * (1.0 / 9007199254740992.0) < p;
}

uint64_t sim_fib(uint32_t k)
{
    uint64_t a = 0, b = 1; /* F(0), F(1) */
    for (uint32_t i = 0; i < k; i++) {
        uint64_t t = a + b;
        a = b;
        b = t;
    }
    return a;
}

static void *sim_xrealloc(void *p, size_t bytes)
{
    void *q = realloc(p, bytes);
    if (q == NULL) {
        fprintf(stderr, "px_sim: out of memory (%zu bytes)\n", bytes);
        abort();
    }
    return q;
}

/* --- message names (trace and scripts) --- */

static const char *const sim_msg_names[PX_MSG_TYPE_COUNT] = {
    "none",          "prepare", "promise-entry", "promise",     "nack",          "accept",
    "accepted",      "decide",  "ack",           "catchup-req", "catchup-entry", "snapshot",
    "snapshot-part", "client",  "client-reply",  "heartbeat",   "takeover",
};

const char *sim_msg_name(uint8_t type)
{
    return type < PX_MSG_TYPE_COUNT ? sim_msg_names[type] : "?";
}

int sim_msg_type_parse(const char *name)
{
    for (int t = 1; t < PX_MSG_TYPE_COUNT; t++)
        if (strcmp(name, sim_msg_names[t]) == 0)
            return t;
    return -1;
}

static void sim_trace_msg(struct sim *s, const char *what, const struct px_msg *m, uint16_t to)
{
    if (!s->trace)
        return;
    fprintf(s->out, "t=%llu %s %s %u->%u b=%llu.%u i=%llu a=%llu b=%llu c=%llu v=(%u,%u,+%llu)\n",
            (unsigned long long)s->now, what, sim_msg_name(m->type), m->from, to,
            (unsigned long long)px_ballot_counter(m->ballot), px_ballot_node(m->ballot),
            (unsigned long long)m->instance, (unsigned long long)m->a, (unsigned long long)m->b,
            (unsigned long long)m->c, m->value.client_id, m->value.seq,
            (unsigned long long)m->value.increment);
}

/* --- network: a min-heap of envelopes keyed by (due, order) --- */

static bool sim_env_before(const struct sim_env *x, const struct sim_env *y)
{
    if (x->due != y->due)
        return x->due < y->due;
    if (x->order != y->order)
        return x->order < y->order;
    return x->seq < y->seq;
}

static void sim_heap_sift_down(struct sim *s, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        if (l < s->heap_len && sim_env_before(&s->heap[l], &s->heap[m]))
            m = l;
        if (l + 1 < s->heap_len && sim_env_before(&s->heap[l + 1], &s->heap[m]))
            m = l + 1;
        if (m == i)
            return;
        struct sim_env t = s->heap[i];
        s->heap[i] = s->heap[m];
        s->heap[m] = t;
        i = m;
    }
}

static void sim_heap_push(struct sim *s, const struct sim_env *e)
{
    if (s->heap_len == s->heap_cap) {
        s->heap_cap = s->heap_cap ? 2 * s->heap_cap : 256;
        s->heap = sim_xrealloc(s->heap, s->heap_cap * sizeof(*s->heap));
    }
    size_t i = s->heap_len++;
    s->heap[i] = *e;
    while (i > 0 && sim_env_before(&s->heap[i], &s->heap[(i - 1) / 2])) {
        struct sim_env t = s->heap[i];
        s->heap[i] = s->heap[(i - 1) / 2];
        s->heap[(i - 1) / 2] = t;
        i = (i - 1) / 2;
    }
}

static struct sim_env sim_heap_pop(struct sim *s)
{
    PX_ASSERT(s->heap_len > 0);
    struct sim_env top = s->heap[0];
    s->heap[0] = s->heap[--s->heap_len];
    sim_heap_sift_down(s, 0);
    return top;
}

static void sim_enqueue(struct sim *s, const struct px_msg *m, uint16_t to, bool faults)
{
    if (s->heap_len >= SIM_NET_MAX) {
        s->faults[SIM_F_DROP]++; /* the network is full: a lost message, as on a full ring */
        return;
    }
    if (faults && sim_rng_chance(&s->rng, s->p_drop)) {
        s->faults[SIM_F_DROP]++;
        sim_trace_msg(s, "drop", m, to);
        return;
    }
    struct sim_env e = {.to = to, .m = *m, .seq = ++s->send_seq};
    e.m.to = m->to; /* keep PX_TO_ALL visible to the receiver */
    uint32_t span = s->lat_max - s->lat_min + 1;
    e.due = s->now + s->lat_min + (faults ? sim_rng_below(&s->rng, span) : 0);
    e.order = e.seq;
    if (faults && sim_rng_chance(&s->rng, s->p_delay)) {
        e.due += 1 + sim_rng_below(&s->rng, s->delay_max);
        s->faults[SIM_F_DELAY]++;
    }
    if (faults && sim_rng_chance(&s->rng, s->p_reorder))
        e.order = sim_rng_below(&s->rng, e.seq + 1); /* overtakes messages sent before it */
    sim_heap_push(s, &e);
    if (faults && sim_rng_chance(&s->rng, s->p_dup)) {
        e.seq = ++s->send_seq;
        e.due += sim_rng_below(&s->rng, 4);
        sim_heap_push(s, &e);
        s->faults[SIM_F_DUP]++;
    }
}

void sim_send(struct sim *s, const struct px_msg *m, bool faults)
{
    PX_ASSERT(m->from < s->n);
    if (m->to != PX_TO_ALL) {
        PX_ASSERT(m->to <= s->n); /* a node, or the client endpoint cfg.nodes */
        sim_trace_msg(s, "send", m, m->to);
        sim_enqueue(s, m, m->to, faults);
        return;
    }
    sim_trace_msg(s, "send", m, PX_TO_ALL);
    for (uint16_t j = 0; j < s->n; j++)
        if (j != m->from)
            sim_enqueue(s, m, j, faults); /* each delivery faulted on its own: lossy broadcast */
}

static void sim_inbox_push(struct sim_node *nd, const struct sim_env *e)
{
    if (nd->inbox_len == nd->inbox_cap) {
        nd->inbox_cap = nd->inbox_cap ? 2 * nd->inbox_cap : 64;
        nd->inbox = sim_xrealloc(nd->inbox, nd->inbox_cap * sizeof(*nd->inbox));
    }
    nd->inbox[nd->inbox_len++] = *e;
}

/* A CLIENT_REPLY tells the client its request was decided at an instance: it must name a
 * submitted request with its own increment, and the value chosen there if the checker knows. */
static void sim_client_receive(struct sim *s, const struct px_msg *m)
{
    if (m->type != PX_MSG_CLIENT_REPLY)
        return;
    uint32_t c = m->value.client_id, q = m->value.seq, round = 0;
    if (c >= 1 && c <= s->clients && q >= 1 && q <= SIM_ROUNDS_MAX)
        round = (uint32_t)s->seq_round[c][q];
    if (round == 0 || s->req[round].increment != m->value.increment) {
        sim_violate(s, SIM_V_VALIDITY,
                    "node %u replied (%u,%u,+%llu) decided at %llu: not a submitted request",
                    m->from, c, q, (unsigned long long)m->value.increment,
                    (unsigned long long)m->instance);
        return;
    }
    const struct sim_inst *in = m->instance < s->inst_cap ? &s->inst[m->instance] : NULL;
    if (in != NULL && in->chosen &&
        (in->value.client_id != c || in->value.seq != q ||
         in->value.increment != m->value.increment)) {
        sim_violate(s, SIM_V_AGREEMENT,
                    "node %u replied (%u,%u) decided at %llu, chosen was (%u,%u)", m->from, c, q,
                    (unsigned long long)m->instance, in->value.client_id, in->value.seq);
        return;
    }
    s->req[round].replied = true;
}

/* Hand one envelope to its endpoint, or lose it to a partition or a dead node. */
static void sim_arrive(struct sim *s, const struct sim_env *e)
{
    uint16_t from = e->m.from, to = e->to;
    if (s->blocked[from][to]) {
        sim_trace_msg(s, "cut", &e->m, to);
        return;
    }
    if (e->seq < s->link_last_seq[from][to])
        s->faults[SIM_F_REORDER]++; /* observed: overtaken by a later send on this link */
    else
        s->link_last_seq[from][to] = e->seq;
    if (to == s->n) {
        sim_client_receive(s, &e->m);
        return;
    }
    if (!s->node[to].up)
        return;
    sim_inbox_push(&s->node[to], e);
}

/* --- durable store --- */

static void sim_store_grow(struct sim_store *st, px_inst_t i)
{
    if (i < st->cap)
        return;
    size_t cap = st->cap ? st->cap : 64;
    while (cap <= i)
        cap *= 2;
    st->acc = sim_xrealloc(st->acc, cap * sizeof(*st->acc));
    st->dec = sim_xrealloc(st->dec, cap * sizeof(*st->dec));
    memset(st->acc + st->cap, 0, (cap - st->cap) * sizeof(*st->acc));
    memset(st->dec + st->cap, 0, (cap - st->cap) * sizeof(*st->dec));
    st->cap = cap;
}

static void sim_store_truncate(struct sim_store *st, px_inst_t upto)
{
    if (upto <= st->truncated)
        return;
    for (px_inst_t i = st->truncated + 1; i <= upto && i < st->cap; i++) {
        memset(&st->acc[i], 0, sizeof(st->acc[i]));
        memset(&st->dec[i], 0, sizeof(st->dec[i]));
    }
    st->truncated = upto;
}

/* Persist one record, checking that an acceptor's promise only ever grows. */
static void sim_store_apply(struct sim *s, uint16_t id, const struct px_rec *r)
{
    struct sim_store *st = &s->node[id].st;
    switch (r->type) {
    case PX_REC_PROMISE:
        if (r->ballot < st->promised)
            sim_violate(s, SIM_V_PROMISE, "node %u persisted promise %llx below its promise %llx",
                        id, (unsigned long long)r->ballot, (unsigned long long)st->promised);
        st->promised = r->ballot;
        break;
    case PX_REC_ACCEPTED:
        PX_ASSERT(r->instance > 0);
        sim_store_grow(st, r->instance);
        if (r->ballot < st->promised || r->ballot < st->acc[r->instance].ballot)
            sim_violate(s, SIM_V_PROMISE,
                        "node %u accepted instance %llu at ballot %llx below promise %llx", id,
                        (unsigned long long)r->instance, (unsigned long long)r->ballot,
                        (unsigned long long)st->promised);
        st->acc[r->instance] = (struct sim_slot){r->ballot, r->value};
        sim_note_accepted(s, id, r);
        break;
    case PX_REC_DECIDED:
        PX_ASSERT(r->instance > 0);
        sim_store_grow(st, r->instance);
        st->dec[r->instance] = (struct sim_slot){1, r->value};
        break;
    case PX_REC_TRUNCATE:
        sim_store_truncate(st, r->instance);
        break;
    default:
        sim_violate(s, SIM_V_PERSIST, "node %u: unknown record type %u", id, r->type);
    }
}

/* --- node activation: step, commit, check, send --- */

enum sim_crash_point { SIM_CP_NONE, SIM_CP_BEFORE_COMMIT, SIM_CP_BEFORE_SEND, SIM_CP_MID_SEND };

static void sim_crash_node(struct sim *s, uint16_t id, bool notify);

/* Commit the batch in s->ready and send it; returns false if the node died on the way. */
static bool sim_commit(struct sim *s, uint16_t id, px_ballot_t promised_before, bool may_crash)
{
    struct sim_node *nd = &s->node[id];
    struct px_ready *r = s->ready;
    enum sim_crash_point cp = SIM_CP_NONE;
    if (may_crash && sim_rng_chance(&s->rng, s->p_crash_mid))
        cp = (enum sim_crash_point)(1 + sim_rng_below(&s->rng, 3));
    if (cp == SIM_CP_BEFORE_COMMIT) {
        /* Nothing of this batch left the node: it is not observable, so not checked. */
        if (s->trace)
            fprintf(s->out, "t=%llu node %u dies before committing its batch\n",
                    (unsigned long long)s->now, id);
        px_ready_clear(r);
        sim_crash_node(s, id, true);
        return false;
    }
    for (uint32_t k = 0; k < r->recs_len; k++)
        sim_store_apply(s, id, &r->recs[k]);
    nd->st.fib = *px_node_fib(nd->px);
    sim_check_commit(s, id, r, promised_before);
    for (uint32_t k = 0; k < r->apply_len; k++)
        sim_check_apply(s, id, &r->apply[k], r->snapshot);
    if (r->snapshot > nd->last_applied)
        nd->last_applied = r->snapshot; /* installed: the state check below verifies it */
    sim_check_state(s, id);
    uint32_t total = r->msgs_len, sends = total;
    if (cp == SIM_CP_BEFORE_SEND)
        sends = 0;
    else if (cp == SIM_CP_MID_SEND && sends > 0)
        sends = (uint32_t)sim_rng_below(&s->rng, sends);
    for (uint32_t k = 0; k < sends; k++)
        sim_send(s, &r->msgs[k], true);
    px_ready_clear(r);
    if (cp != SIM_CP_NONE) {
        if (s->trace)
            fprintf(s->out, "t=%llu node %u dies after %u of %u sends\n",
                    (unsigned long long)s->now, id, sends, total);
        sim_crash_node(s, id, true);
        return false;
    }
    return true;
}

/* After one core call: commit early only when the ready may not hold another call's output
 * plus the flush's (the caller's side of PX_STEP_OUTPUT_MAX). Returns false if the node died. */
static bool sim_after_call(struct sim *s, uint16_t id, px_ballot_t *promised_before)
{
    const struct px_ready *r = s->ready;
    const uint32_t need = 2 * PX_STEP_OUTPUT_MAX;
    if (PX_READY_MSGS_MAX - r->msgs_len >= need && PX_READY_RECS_MAX - r->recs_len >= need &&
        PX_READY_APPLY_MAX - r->apply_len >= need)
        return true; /* room for one more call: keep batching (group commit) */
    px_node_flush(s->node[id].px, s->ready);
    bool alive = sim_commit(s, id, *promised_before, true);
    *promised_before = s->node[id].st.promised;
    return alive;
}

static bool sim_activate_submits(struct sim *s, uint16_t id, px_ballot_t *pb)
{
    struct sim_node *nd = &s->node[id];
    size_t k = 0;
    while (k < nd->subq_len && nd->up) {
        if (px_node_submit(nd->px, &nd->subq[k], s->ready) == -EAGAIN) {
            if (!sim_after_call(s, id, pb))
                return false;
            break; /* backpressure: keep the rest for a later activation */
        }
        k++;
        if (!sim_after_call(s, id, pb))
            return false;
    }
    if (k > 0) /* (memmove of a NULL, never-grown queue is undefined even for 0 bytes) */
        memmove(nd->subq, nd->subq + k, (nd->subq_len - k) * sizeof(*nd->subq));
    nd->subq_len -= k;
    return true;
}

static bool sim_activate_msgs(struct sim *s, uint16_t id, px_ballot_t *pb)
{
    struct sim_node *nd = &s->node[id];
    size_t budget = nd->lag ? 1 + sim_rng_below(&s->rng, 2) : SIM_BATCH_MAX;
    size_t k = 0;
    while (k < nd->inbox_len && k < budget) {
        struct px_msg m = nd->inbox[k++].m;
        if (s->trace)
            sim_trace_msg(s, "recv", &m, id);
        px_node_step(nd->px, &m, s->ready);
        if (!sim_after_call(s, id, pb))
            return false;
    }
    if (k > 0)
        memmove(nd->inbox, nd->inbox + k, (nd->inbox_len - k) * sizeof(*nd->inbox));
    nd->inbox_len -= k;
    return true;
}

void sim_activate(struct sim *s, uint16_t id, bool tick)
{
    struct sim_node *nd = &s->node[id];
    if (!nd->up)
        return;
    s->steps++;
    px_ready_clear(s->ready);
    px_ballot_t pb = nd->st.promised;
    if (!sim_activate_submits(s, id, &pb) || !sim_activate_msgs(s, id, &pb))
        return;
    if (tick) {
        px_node_tick(nd->px, s->ready);
        if (!sim_after_call(s, id, &pb))
            return;
    }
    px_node_flush(nd->px, s->ready);
    (void)sim_commit(s, id, pb, true);
}

/* Tell every live node that peer id died or came back (the supervisor's failure detector). */
static void sim_notify_peers(struct sim *s, uint16_t id, bool alive)
{
    for (uint16_t j = 0; j < s->n; j++) {
        if (j == id || !s->node[j].up)
            continue;
        px_ready_clear(s->ready);
        px_ballot_t pb = s->node[j].st.promised;
        px_node_peer_status(s->node[j].px, id, alive, s->ready);
        px_node_flush(s->node[j].px, s->ready);
        (void)sim_commit(s, j, pb, false);
    }
}

static void sim_crash_node(struct sim *s, uint16_t id, bool notify)
{
    struct sim_node *nd = &s->node[id];
    PX_ASSERT(nd->up);
    nd->up = false;
    nd->inbox_len = 0;
    nd->subq_len = 0;
    nd->was_leader = false;
    memset(nd->mem, 0xa5, nd->mem_bytes); /* the process is gone: nothing of it may survive */
    s->faults[SIM_F_CRASH]++;
    if (s->trace)
        fprintf(s->out, "t=%llu crash %u\n", (unsigned long long)s->now, id);
    if (notify)
        sim_notify_peers(s, id, false);
}

void sim_crash(struct sim *s, uint16_t id)
{
    if (s->node[id].up)
        sim_crash_node(s, id, true);
}

static void sim_node_boot(struct sim *s, uint16_t id)
{
    struct sim_node *nd = &s->node[id];
    struct px_config c = s->cfg;
    c.id = id;
    c.seed = s->opt.seed * 0x100000001b3ull + id * 0x9e3779b97f4a7c15ull + nd->incarnation;
    int rc = px_node_init(nd->mem, nd->mem_bytes, &c, &nd->px);
    PX_ASSERT(rc == 0);
}

void sim_restart(struct sim *s, uint16_t id)
{
    struct sim_node *nd = &s->node[id];
    if (nd->up)
        return;
    nd->incarnation++;
    sim_node_boot(s, id);
    struct px_durable d = {.promised = nd->st.promised, .fib = nd->st.fib};
    px_node_load(nd->px, &d);
    if (nd->st.truncated > 0) {
        struct px_rec t = {.type = PX_REC_TRUNCATE, .instance = nd->st.truncated};
        px_node_load_rec(nd->px, &t);
    }
    for (px_inst_t i = nd->st.truncated + 1; i < nd->st.cap; i++) {
        if (nd->st.acc[i].ballot != 0) {
            struct px_rec r = {.type = PX_REC_ACCEPTED,
                               .instance = i,
                               .ballot = nd->st.acc[i].ballot,
                               .value = nd->st.acc[i].value};
            px_node_load_rec(nd->px, &r);
        }
        if (nd->st.dec[i].ballot != 0) {
            struct px_rec r = {.type = PX_REC_DECIDED, .instance = i, .value = nd->st.dec[i].value};
            px_node_load_rec(nd->px, &r);
        }
    }
    nd->up = true;
    nd->last_applied = nd->st.fib.applied;
    nd->lag = 0;
    s->faults[SIM_F_RESTART]++;
    if (s->trace)
        fprintf(s->out, "t=%llu restart %u (incarnation %u, promised %llx, applied %llu)\n",
                (unsigned long long)s->now, id, nd->incarnation,
                (unsigned long long)nd->st.promised, (unsigned long long)nd->st.fib.applied);
    for (uint16_t p = 0; p < s->n; p++) {
        if (p == id || s->node[p].up || !nd->up)
            continue;
        px_ready_clear(s->ready);
        px_ballot_t pb = nd->st.promised;
        px_node_peer_status(nd->px, p, false, s->ready);
        px_node_flush(nd->px, s->ready);
        (void)sim_commit(s, id, pb, false);
    }
    sim_notify_peers(s, id, true);
}

/* Every node gets the same role change at once (the supervisor's broadcast); a node that is
 * down gets it with its configuration when it restarts. */
void sim_set_roles(struct sim *s, uint16_t id, uint64_t roles)
{
    s->cfg.roles[id] = roles;
    for (uint16_t j = 0; j < s->n; j++) {
        if (!s->node[j].up)
            continue;
        px_ready_clear(s->ready);
        px_ballot_t pb = s->node[j].st.promised;
        px_node_set_roles(s->node[j].px, id, roles, s->ready);
        px_node_flush(s->node[j].px, s->ready);
        (void)sim_commit(s, j, pb, false);
    }
    s->faults[SIM_F_ROLES]++;
    if (s->trace)
        fprintf(s->out, "t=%llu roles of %u = %c%c%c\n", (unsigned long long)s->now, id,
                roles & PX_ROLE_PROPOSER ? 'P' : '-', roles & PX_ROLE_ACCEPTOR ? 'A' : '-',
                roles & PX_ROLE_LEARNER ? 'L' : '-');
}

void sim_block(struct sim *s, uint16_t from, uint16_t to, bool blocked)
{
    s->blocked[from][to] = blocked;
}

void sim_heal(struct sim *s)
{
    memset(s->blocked, 0, sizeof(s->blocked));
}

/* --- the client --- */

static bool sim_is_proposer(const struct sim *s, uint16_t id)
{
    return (s->cfg.roles[id] & PX_ROLE_PROPOSER) != 0;
}

uint16_t sim_pick_proposer(struct sim *s, uint16_t avoid)
{
    uint16_t cand[SIM_NODES_MAX];
    uint16_t k = 0;
    /* Half the time follow what a live proposer believes about the leader, like a real client
     * redirected by a NACK; otherwise any live proposer but the one that timed out. */
    if (sim_rng_chance(&s->rng, 0.5)) {
        for (uint16_t j = 0; j < s->n; j++) {
            if (!s->node[j].up || !sim_is_proposer(s, j))
                continue;
            uint16_t l = px_node_leader(s->node[j].px);
            if (l < s->n && l != avoid && s->node[l].up && sim_is_proposer(s, l))
                return l;
        }
    }
    for (uint16_t j = 0; j < s->n; j++)
        if (s->node[j].up && sim_is_proposer(s, j) && j != avoid)
            cand[k++] = j;
    if (k == 0)
        for (uint16_t j = 0; j < s->n; j++)
            if (sim_is_proposer(s, j))
                cand[k++] = j;
    PX_ASSERT(k > 0);
    return cand[sim_rng_below(&s->rng, k)];
}

static void sim_submit_round(struct sim *s, uint32_t round, int to)
{
    struct sim_req *q = &s->req[round];
    uint16_t t = to >= 0 ? (uint16_t)to : sim_pick_proposer(s, q->sent_at ? q->target : 0xffff);
    q->target = t;
    q->sent_at = s->now ? s->now : 1;
    if (s->trace)
        fprintf(s->out, "t=%llu submit round %u (client %u seq %u) to %u%s\n",
                (unsigned long long)s->now, round, q->client_id, q->seq, t,
                s->node[t].up ? "" : " (down: lost)");
    struct sim_node *nd = &s->node[t];
    if (!nd->up)
        return;
    if (nd->subq_len == nd->subq_cap) {
        nd->subq_cap = nd->subq_cap ? 2 * nd->subq_cap : 16;
        nd->subq = sim_xrealloc(nd->subq, nd->subq_cap * sizeof(*nd->subq));
    }
    nd->subq[nd->subq_len++] =
        (struct px_value){.increment = q->increment, .client_id = q->client_id, .seq = q->seq};
}

void sim_client_submit(struct sim *s, uint32_t count, int to)
{
    for (uint32_t k = 0; k < count && s->submitted < s->rounds; k++)
        sim_submit_round(s, ++s->submitted, to);
}

/* The client's window is a sliding span, like TCP's: round r goes out only while r is fewer
 * than `window` rounds past the oldest round not yet applied. Counting outstanding requests
 * instead would let one stuck request fall more than PX_DEDUP_SPAN seqs behind the newest,
 * which the core's exactly-once table cannot represent (px.h, struct px_dedup). */
static void sim_client_step(struct sim *s)
{
    while (s->oldest <= s->submitted && s->req[s->oldest].done_at)
        s->oldest++;
    for (uint32_t r = s->oldest; r <= s->submitted; r++) {
        struct sim_req *q = &s->req[r];
        if (!q->done_at && s->now - q->sent_at >= s->resubmit_ticks)
            sim_submit_round(s, r, -1);
    }
    while (s->submitted < s->rounds && s->submitted + 1 - s->oldest < s->window)
        sim_submit_round(s, ++s->submitted, -1);
}

void sim_set_rounds(struct sim *s, uint32_t rounds, uint32_t clients, uint32_t window)
{
    PX_ASSERT(rounds <= SIM_ROUNDS_MAX && clients >= 1 && clients <= SIM_CLIENTS_MAX);
    PX_ASSERT(window >= 1 && window < PX_DEDUP_SPAN);
    s->rounds = rounds;
    s->oldest = 1;
    s->clients = clients;
    s->window = window;
    for (uint32_t r = 1; r <= rounds; r++) {
        struct sim_req *q = &s->req[r];
        memset(q, 0, sizeof(*q));
        q->client_id = (r - 1) % clients + 1;
        q->seq = (r - 1) / clients + 1;
        q->increment = sim_fib(r - 1); /* round r proposes F(r-1) */
        s->seq_round[q->client_id][q->seq] = r;
    }
}

/* --- time --- */

static void sim_deliver_due(struct sim *s)
{
    while (s->heap_len > 0 && s->heap[0].due <= s->now) {
        struct sim_env e = sim_heap_pop(s);
        sim_arrive(s, &e);
    }
}

void sim_tick(struct sim *s, bool deliver, bool tick_nodes, bool client)
{
    s->now++;
    if (client)
        sim_client_step(s);
    if (deliver)
        sim_deliver_due(s);
    uint16_t order[SIM_NODES_MAX];
    for (uint16_t j = 0; j < s->n; j++)
        order[j] = j;
    for (uint16_t j = s->n; j > 1; j--) { /* Fisher-Yates: nodes run in a seeded order */
        uint16_t k = (uint16_t)sim_rng_below(&s->rng, j);
        uint16_t t = order[j - 1];
        order[j - 1] = order[k];
        order[k] = t;
    }
    for (uint16_t j = 0; j < s->n && s->viol == SIM_V_NONE; j++) {
        struct sim_node *nd = &s->node[order[j]];
        if (!nd->up)
            continue;
        if (nd->lag && s->now >= nd->lag_until)
            nd->lag = 0;
        if (nd->lag && s->now % nd->lag != 0)
            continue; /* a slow process: it runs every lag-th tick only */
        if (tick_nodes || nd->inbox_len > 0 || nd->subq_len > 0)
            sim_activate(s, order[j], tick_nodes);
    }
    sim_check_leaders(s);
}

/* Scripts: deliver (or drop) the first count in-flight messages that match, in network order,
 * then let the receivers step them. -1 matches anything. Returns how many matched. */
size_t sim_deliver_matching(struct sim *s, int from, int to, int type, size_t count, bool drop)
{
    struct sim_env *keep = malloc((s->heap_len + 1) * sizeof(*keep));
    struct sim_env *take = malloc((s->heap_len + 1) * sizeof(*take));
    PX_ASSERT(keep != NULL && take != NULL);
    size_t nk = 0, nt = 0;
    while (s->heap_len > 0) {
        struct sim_env e = sim_heap_pop(s);
        bool match = (from < 0 || e.m.from == from) && (to < 0 || e.to == to) &&
                     (type < 0 || e.m.type == type) && nt < count;
        if (match)
            take[nt++] = e;
        else
            keep[nk++] = e;
    }
    for (size_t k = 0; k < nk; k++)
        sim_heap_push(s, &keep[k]);
    for (size_t k = 0; k < nt; k++) {
        if (drop)
            sim_trace_msg(s, "drop", &take[k].m, take[k].to);
        else
            sim_arrive(s, &take[k]);
    }
    free(keep);
    free(take);
    for (uint16_t j = 0; j < s->n && !drop; j++)
        if (s->node[j].up && (s->node[j].inbox_len > 0 || s->node[j].subq_len > 0))
            sim_activate(s, j, false);
    sim_check_leaders(s);
    return nt;
}

bool sim_quiet(const struct sim *s)
{
    if (s->heap_len > 0)
        return false;
    for (uint16_t j = 0; j < s->n; j++)
        if (s->node[j].inbox_len > 0 || s->node[j].subq_len > 0)
            return false;
    return true;
}

/* Every request applied, every (live, unless all) learner up and holding the same state. */
bool sim_converged(const struct sim *s, bool all)
{
    if (s->done < s->submitted)
        return false;
    const struct px_fib *ref = NULL;
    for (uint16_t j = 0; j < s->n; j++) {
        if (!(s->cfg.roles[j] & PX_ROLE_LEARNER))
            continue;
        if (!s->node[j].up && all)
            return false;
        if (!s->node[j].up)
            continue;
        const struct px_fib *f = px_node_fib(s->node[j].px);
        if (f->requests != s->submitted)
            return false;
        if (ref != NULL &&
            (f->applied != ref->applied || f->value != ref->value || f->digest != ref->digest))
            return false;
        ref = f;
    }
    return true;
}

int sim_init(struct sim *s, const struct px_config *cfg, uint64_t seed, FILE *out, bool trace)
{
    memset(s, 0, sizeof(*s));
    s->rng.s = seed;
    s->opt.seed = seed;
    s->cfg = *cfg;
    s->n = cfg->nodes;
    s->out = out;
    s->trace = trace;
    s->last_leader = PX_NODE_NONE;
    s->lat_min = s->lat_max = 1;
    s->delay_max = 1;
    s->resubmit_ticks = 4 * cfg->election_ticks + 20;
    PX_ASSERT(s->n >= 1 && s->n <= SIM_NODES_MAX);
    s->ready = calloc(1, sizeof(*s->ready));
    if (s->ready == NULL)
        return -ENOMEM;
    for (uint16_t j = 0; j < s->n; j++) {
        if (cfg->roles[j] & PX_ROLE_ACCEPTOR)
            s->acceptors++;
        struct sim_node *nd = &s->node[j];
        struct px_config c = *cfg;
        c.id = j;
        nd->mem_bytes = (px_node_size(&c) + 63) / 64 * 64;
        nd->mem = aligned_alloc(64, nd->mem_bytes);
        if (nd->mem == NULL)
            return -ENOMEM;
        memset(nd->mem, 0xa5, nd->mem_bytes); /* px_node_init must not rely on zeroed memory */
        sim_node_boot(s, j);
        nd->up = true;
        nd->st.fib = *px_node_fib(nd->px);
    }
    return 0;
}

void sim_free(struct sim *s)
{
    for (uint16_t j = 0; j < s->n; j++) {
        struct sim_node *nd = &s->node[j];
        free(nd->mem);
        free(nd->inbox);
        free(nd->subq);
        free(nd->st.acc);
        free(nd->st.dec);
    }
    for (size_t i = 0; i < s->inst_cap; i++)
        free(s->inst[i].accs);
    free(s->inst);
    free(s->heap);
    free(s->ready);
}
