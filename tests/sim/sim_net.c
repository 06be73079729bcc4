/* sim_net.c: the simulated network, the rings on top of it, and each node's transport
 * (struct transport_ops, the interface the node driver sees).
 *
 * Network: a min-heap of envelopes keyed by (due tick, order), with the seeded faults: drop,
 * duplicate, reorder, delay spikes, latency jitter, partitions (a cut link loses what arrives).
 *
 * Rings, modelled as the real ones (ipc/ring.h, ipc/bcast.h, src/node/transport_shm.c):
 * - point-to-point: one ring per directed link, ring_slots messages; a message holds its slot
 *   from the push until the receiver reads it (in flight, or delivered and not read yet);
 * - broadcast: one ring per producer, bcast_slots messages per consumer; the producer gates on
 *   the slowest attached consumer. A broadcast blocked SIM_BCAST_STALL_TICKS by a consumer a
 *   full ring behind detaches that consumer: its unread messages are gone (an epoch on each
 *   envelope marks them), what is published while it is detached skips it, and its next read
 *   reports `lagged, missed = k` and re-attaches it. A dead consumer is detached at once (the
 *   supervisor does that);
 * - outbox: per destination, outbox_max messages in the sender's process memory. A send with
 *   an empty outbox and a free slot goes straight into the ring (so a crash in the middle of
 *   the sends loses exactly the rest); otherwise it queues behind, and a full outbox refuses it
 *   with -ENOBUFS. transport flush pushes the outboxes into the rings. A crash loses them.
 * Duplicates the network makes hold no slot: they are a fault of the wire, not of the ring.
 */
#include "sim.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void sim_trace_msg(struct sim *s, const char *what, const struct px_msg *m, uint16_t to)
{
    if (!s->trace)
        return;
    if (m->type == PX_MSG_DATA) { /* payload.h: ballot = the command's key, instance = off | len */
        fprintf(s->out, "t=%llu %s data%s %u->%u cmd=(%u,%u) off=%u len=%u\n",
                (unsigned long long)s->now, what,
                m->flags & PAYLOAD_FLAG_WANT   ? "-want"
                : m->flags & PAYLOAD_FLAG_PUSH ? "-push"
                                               : "",
                m->from, to, (unsigned)(m->ballot >> PX_REQUEST_CLIENT_SHIFT), (unsigned)m->ballot,
                (unsigned)(m->instance >> 32), (unsigned)m->instance);
        return;
    }
    const struct px_msg_words *w = &m->u.words; /* every slot, whatever the type uses */
    fprintf(s->out, "t=%llu %s %s %u->%u b=%llu.%u i=%llu a=%llu b=%llu c=%llu v=(%u,%u,+%llu)\n",
            (unsigned long long)s->now, what, sim_msg_name(m->type), m->from, to,
            (unsigned long long)px_ballot_counter(m->ballot), px_ballot_node(m->ballot),
            (unsigned long long)m->instance, (unsigned long long)w->a, (unsigned long long)w->b,
            (unsigned long long)w->c, w->value.client_id, w->value.seq,
            (unsigned long long)w->value.word);
}

static void *sim_net_realloc(void *p, size_t bytes)
{
    void *q = realloc(p, bytes);
    if (q == NULL) {
        fprintf(stderr, "px_sim: out of memory (%zu bytes)\n", bytes);
        abort();
    }
    return q;
}

/* --- the wire: a min-heap of envelopes keyed by (due, order) --- */

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
        s->heap = sim_net_realloc(s->heap, s->heap_cap * sizeof(*s->heap));
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

/* Puts one copy on the wire (and maybe a duplicate). Returns true when the original is on
 * it: only then does it hold a ring slot. */
static bool sim_enqueue(struct sim *s, const struct px_msg *m, uint16_t to, bool faults,
                        uint8_t ring, uint32_t epoch)
{
    if (s->heap_len >= SIM_NET_MAX) {
        s->faults[SIM_F_DROP]++; /* the wire is full: a lost message */
        return false;
    }
    if (faults && sim_rng_chance(&s->rng, s->p_drop)) {
        s->faults[SIM_F_DROP]++;
        sim_trace_msg(s, "drop", m, to);
        return false;
    }
    struct sim_env e = {.to = to, .m = *m, .seq = ++s->send_seq, .ring = ring, .epoch = epoch};
    s->data_sent += m->type == PX_MSG_DATA;
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
    if (m->type == PX_MSG_DATA) {                    /* a stream keeps its order on its link */
        uint64_t *last = &s->data_due[m->from][to][ring == SIM_RING_BCAST];
        if (e.due < *last)
            e.due = *last;
        e.order = e.seq;
        *last = e.due;
    }
    sim_heap_push(s, &e);
    if (faults && sim_rng_chance(&s->rng, s->p_dup)) {
        e.seq = ++s->send_seq;
        s->data_sent += m->type == PX_MSG_DATA;
        e.due += sim_rng_below(&s->rng, 4);
        e.ring = SIM_RING_NONE;
        sim_heap_push(s, &e);
        s->faults[SIM_F_DUP]++;
    }
    return true;
}

void sim_send(struct sim *s, const struct px_msg *m, bool faults)
{
    PX_ASSERT(m->from < s->n);
    if (m->to != PX_TO_ALL) {
        PX_ASSERT(m->to <= s->n); /* a node, or the client endpoint cfg.nodes */
        sim_trace_msg(s, "send", m, m->to);
        (void)sim_enqueue(s, m, m->to, faults, SIM_RING_NONE, 0);
        return;
    }
    sim_trace_msg(s, "send", m, PX_TO_ALL);
    for (uint16_t j = 0; j < s->n; j++)
        if (j != m->from)
            (void)sim_enqueue(s, m, j, faults, SIM_RING_NONE, 0);
}

/* --- rings --- */

static bool sim_is_bcast(const struct sim *s, uint32_t dest)
{
    return dest == s->n + 1u;
}

/* An envelope the broadcast ring overwrote (its consumer was detached since it was sent). */
static bool sim_stale(const struct sim *s, const struct sim_env *e)
{
    return e->ring == SIM_RING_BCAST && e->epoch != s->bcast[e->m.from].c[e->to].epoch;
}

/* The envelope leaves its ring: read, or lost on the way (partition, dead receiver). */
static void sim_release(struct sim *s, const struct sim_env *e)
{
    if (e->ring == SIM_RING_P2P) {
        PX_ASSERT(s->ring_used[e->m.from][e->to] > 0);
        s->ring_used[e->m.from][e->to]--;
    } else if (e->ring == SIM_RING_BCAST && !sim_stale(s, e)) {
        PX_ASSERT(s->bcast[e->m.from].c[e->to].unread > 0);
        s->bcast[e->m.from].c[e->to].unread--;
    }
}

static bool sim_ring_room(const struct sim *s, uint16_t from, uint32_t dest)
{
    if (!sim_is_bcast(s, dest))
        return s->ring_used[from][dest] < s->ring_slots;
    for (uint16_t c = 0; c < s->n; c++) {
        const struct sim_bcast_cursor *k = &s->bcast[from].c[c];
        if (c != from && k->attached && k->unread >= s->bcast_slots)
            return false; /* the slowest attached consumer gates the producer */
    }
    return true;
}

static void sim_ring_push(struct sim *s, uint16_t from, uint32_t dest, const struct px_msg *m)
{
    if (!sim_is_bcast(s, dest)) {
        sim_trace_msg(s, "send", m, (uint16_t)dest);
        if (sim_enqueue(s, m, (uint16_t)dest, true, SIM_RING_P2P, 0))
            s->ring_used[from][dest]++;
        return;
    }
    struct sim_bcast *b = &s->bcast[from];
    b->stalled = false;
    sim_trace_msg(s, "send", m, PX_TO_ALL);
    for (uint16_t c = 0; c < s->n; c++) { /* each delivery faulted on its own */
        struct sim_bcast_cursor *k = &b->c[c];
        if (c == from)
            continue;
        if (!k->attached)
            k->missed++; /* published while it was detached: reported on its next read */
        else if (sim_enqueue(s, m, c, true, SIM_RING_BCAST, k->epoch))
            k->unread++;
    }
}

/* Producer `from` stops waiting for consumer c: what c has not read is gone. */
void sim_bcast_detach(struct sim *s, uint16_t from, uint16_t c)
{
    struct sim_bcast_cursor *k = &s->bcast[from].c[c];
    if (!k->attached)
        return;
    k->attached = false;
    k->missed += k->unread;
    k->unread = 0;
    k->epoch++;
}

/* A broadcast blocked for SIM_BCAST_STALL_TICKS detaches the consumers a full ring behind
 * (transport_shm.c: BCAST_STALL_NS and IPC_BCAST_DETACH_LAGGARDS). */
static void sim_bcast_unstall(struct sim *s, uint16_t from)
{
    struct sim_bcast *b = &s->bcast[from];
    if (!b->stalled || s->now - b->stalled_since < SIM_BCAST_STALL_TICKS)
        return;
    for (uint16_t c = 0; c < s->n; c++)
        if (c != from && b->c[c].attached && b->c[c].unread >= s->bcast_slots)
            sim_bcast_detach(s, from, c);
}

/* --- arrival and reading --- */

static void sim_inbox_push(struct sim_node *nd, const struct sim_env *e)
{
    if (nd->inbox_len == nd->inbox_cap) {
        nd->inbox_cap = nd->inbox_cap ? 2 * nd->inbox_cap : 64;
        nd->inbox = sim_net_realloc(nd->inbox, nd->inbox_cap * sizeof(*nd->inbox));
    }
    nd->inbox[nd->inbox_len++] = *e;
}

/* Hand one envelope to its endpoint, or lose it to a partition or a dead node. */
void sim_arrive(struct sim *s, const struct sim_env *e)
{
    uint16_t from = e->m.from, to = e->to;
    if (sim_stale(s, e))
        return; /* overwritten in the ring: counted in the consumer's missed */
    if (s->blocked[from][to]) {
        sim_trace_msg(s, "cut", &e->m, to);
        sim_release(s, e);
        return;
    }
    if (e->seq < s->link_last_seq[from][to])
        s->faults[SIM_F_REORDER]++; /* observed: overtaken by a later send on this link */
    else
        s->link_last_seq[from][to] = e->seq;
    if (to == s->n) {
        sim_release(s, e); /* the client reads at once */
        sim_client_receive(s, &e->m);
        return;
    }
    if (!s->node[to].up) {
        sim_release(s, e);
        return;
    }
    sim_inbox_push(&s->node[to], e);
}

void sim_deliver_due(struct sim *s)
{
    while (s->heap_len > 0 && s->heap[0].due <= s->now) {
        struct sim_env e = sim_heap_pop(s);
        sim_arrive(s, &e);
    }
}

/* Scripts: take the first count in-flight envelopes that match, in network order. -1 matches
 * anything. Returns how many matched; they are delivered, or lost when drop. */
size_t sim_net_take(struct sim *s, int from, int to, int type, size_t count, bool drop)
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
        if (!drop) {
            sim_arrive(s, &take[k]);
            continue;
        }
        sim_trace_msg(s, "drop", &take[k].m, take[k].to);
        if (!sim_stale(s, &take[k]))
            sim_release(s, &take[k]);
    }
    free(keep);
    free(take);
    return nt;
}

/* Node id died: what it had received and not read is gone, and no broadcast waits for it. */
void sim_net_crash(struct sim *s, uint16_t id)
{
    struct sim_node *nd = &s->node[id];
    for (size_t k = 0; k < nd->inbox_len; k++)
        if (!sim_stale(s, &nd->inbox[k]))
            sim_release(s, &nd->inbox[k]);
    nd->inbox_len = 0;
    for (uint16_t p = 0; p < s->n; p++)
        if (p != id)
            sim_bcast_detach(s, p, id);
    s->bcast[id].stalled = false; /* the producer's own stall clock lived in its process */
}

/* --- the transport of one node --- */

/* One destination's outbox: [head, len) queued, in send order; grows up to outbox_max. */
struct sim_outbox {
    struct px_msg *m;
    uint32_t head, len, cap;
};

struct sim_tp {
    struct transport base;
    struct sim *s;
    uint16_t id;
    uint32_t blocked_on; /* the destination whose full outbox refused the last send */
    struct sim_outbox out[SIM_ENDPOINTS_MAX + 1]; /* nodes, the client, the broadcast ring */
};

static struct sim_tp *sim_tp_of(struct transport *t)
{
    return (struct sim_tp *)t;
}

static uint32_t sim_outbox_count(const struct sim_outbox *o)
{
    return o->len - o->head;
}

static void sim_outbox_push(struct sim_outbox *o, const struct px_msg *m, uint32_t max)
{
    PX_ASSERT(sim_outbox_count(o) < max);
    if (o->len == o->cap && o->head > 0) {
        memmove(o->m, o->m + o->head, (o->len - o->head) * sizeof(*o->m));
        o->len -= o->head;
        o->head = 0;
    }
    if (o->len == o->cap) {
        o->cap = o->cap ? 2 * o->cap : 8;
        o->m = sim_net_realloc(o->m, o->cap * sizeof(*o->m));
    }
    o->m[o->len++] = *m;
}

static void sim_outbox_clear(struct transport *t, struct sim_outbox *o)
{
    t->stats.drops += sim_outbox_count(o);
    o->head = o->len = 0;
}

static uint32_t sim_tp_recv(struct transport *t, struct px_msg *out, uint32_t max)
{
    struct sim_tp *tp = sim_tp_of(t);
    struct sim *s = tp->s;
    struct sim_node *nd = &s->node[tp->id];
    for (uint16_t p = 0; p < s->n; p++) { /* explicit, never silent: count it, re-attach */
        struct sim_bcast_cursor *k = &s->bcast[p].c[tp->id];
        if (p == tp->id || k->attached)
            continue;
        t->stats.lagged++;
        t->stats.missed += k->missed;
        s->faults[SIM_F_LAGGED]++;
        if (s->trace)
            fprintf(s->out, "t=%llu node %u lagged on %u's broadcast, missed %llu\n",
                    (unsigned long long)s->now, tp->id, p, (unsigned long long)k->missed);
        k->missed = 0;
        k->attached = true;
    }
    if (nd->lag) { /* a slow process: one or two messages at a time */
        uint32_t budget = 1 + (uint32_t)sim_rng_below(&s->rng, 2);
        max = max < budget ? max : budget;
    }
    size_t k = 0;
    uint32_t n = 0;
    while (k < nd->inbox_len && n < max) {
        const struct sim_env *e = &nd->inbox[k++];
        if (sim_stale(s, e))
            continue;
        sim_release(s, e);
        out[n++] = e->m;
        sim_trace_msg(s, "recv", &e->m, tp->id);
    }
    if (k > 0)
        memmove(nd->inbox, nd->inbox + k, (nd->inbox_len - k) * sizeof(*nd->inbox));
    nd->inbox_len -= k;
    t->stats.received += n;
    return n;
}

static int sim_tp_send(struct transport *t, const struct px_msg *m)
{
    struct sim_tp *tp = sim_tp_of(t);
    struct sim *s = tp->s;
    PX_ASSERT(m->from == tp->id);
    uint32_t d = s->n + 1u;
    if (m->to != PX_TO_ALL) {
        PX_ASSERT(m->to <= s->n); /* a node, or the client endpoint cfg.nodes */
        PX_ASSERT(m->to != tp->id);
        d = m->to;
        if (d < s->n && !s->node[d].up) {
            t->stats.drops++; /* a down peer: the only loss allowed, counted */
            sim_trace_msg(s, "drop", m, m->to);
            return 0;
        }
    } else if (s->n == 1) {
        return 0; /* nobody else to tell */
    }
    struct sim_outbox *o = &tp->out[d];
    if (sim_outbox_count(o) == 0 && sim_ring_room(s, tp->id, d)) {
        sim_ring_push(s, tp->id, d, m);
        t->stats.sent++;
        return 0;
    }
    if (sim_outbox_count(o) == s->outbox_max) {
        tp->blocked_on = d;
        s->faults[SIM_F_OUTBOX_FULL]++;
        return -ENOBUFS;
    }
    t->stats.ring_full++;
    s->faults[SIM_F_RING_FULL]++;
    sim_outbox_push(o, m, s->outbox_max);
    return 0;
}

static uint32_t sim_tp_flush(struct transport *t)
{
    struct sim_tp *tp = sim_tp_of(t);
    struct sim *s = tp->s;
    uint32_t queued = 0;
    for (uint32_t d = 0; d <= s->n + 1u; d++) {
        struct sim_outbox *o = &tp->out[d];
        if (sim_outbox_count(o) == 0)
            continue;
        if (d < s->n && !s->node[d].up) {
            sim_outbox_clear(t, o);
            continue;
        }
        if (sim_is_bcast(s, d))
            sim_bcast_unstall(s, tp->id);
        uint32_t pushed = 0;
        while (sim_outbox_count(o) > 0 && sim_ring_room(s, tp->id, d)) {
            sim_ring_push(s, tp->id, d, &o->m[o->head++]);
            pushed++;
        }
        t->stats.sent += pushed;
        struct sim_bcast *b = &s->bcast[tp->id];
        if (sim_is_bcast(s, d) && pushed == 0 && !b->stalled) {
            b->stalled = true; /* the stall clock starts */
            b->stalled_since = s->now;
        }
        if (sim_outbox_count(o) == 0)
            o->head = o->len = 0;
        queued += sim_outbox_count(o);
    }
    return queued;
}

/* In the simulator nothing else runs while a node is inside its activation: a node that waits
 * there for its rings to drain waits forever. The driver only waits in driver_idle, which the
 * simulator never calls; a test may install wait_hook to run the other nodes meanwhile. */
static void sim_tp_wait(struct transport *t, uint64_t timeout_ns)
{
    (void)timeout_ns;
    struct sim_tp *tp = sim_tp_of(t);
    struct sim *s = tp->s;
    if (s->wait_hook != NULL) {
        s->wait_hook(s, tp->id, tp->blocked_on);
        return;
    }
    sim_violate(s, SIM_V_LIVENESS,
                "node %u waits inside its activation for room towards %u: nothing else runs "
                "meanwhile, so nothing ever drains",
                tp->id, tp->blocked_on);
    PX_ASSERT(s->wait_hook != NULL); /* leaves the endless wait (px_sim catches it) */
}

static void sim_tp_peer_down(struct transport *t, uint16_t peer)
{
    struct sim_tp *tp = sim_tp_of(t);
    PX_ASSERT(peer < tp->s->n);
    sim_outbox_clear(t, &tp->out[peer]);
}

static void sim_tp_destroy(struct transport *t)
{
    struct sim_tp *tp = sim_tp_of(t);
    for (uint32_t d = 0; d <= SIM_ENDPOINTS_MAX; d++)
        free(tp->out[d].m);
    free(tp);
}

static const struct transport_ops sim_tp_ops = {
    .recv = sim_tp_recv,
    .send = sim_tp_send,
    .flush = sim_tp_flush,
    .wait = sim_tp_wait,
    .peer_down = sim_tp_peer_down,
    .destroy = sim_tp_destroy,
};

struct transport *sim_tp_create(struct sim *s, uint16_t id)
{
    struct sim_tp *tp = calloc(1, sizeof(*tp));
    PX_ASSERT(tp != NULL);
    tp->base.ops = &sim_tp_ops;
    tp->s = s;
    tp->id = id;
    return &tp->base;
}

/* Messages the transport holds in its outbox towards node `to` (a broadcast reaches it too). */
uint32_t sim_tp_queued_to(struct transport *t, uint16_t to)
{
    struct sim_tp *tp = sim_tp_of(t);
    PX_ASSERT(to < tp->s->n);
    return sim_outbox_count(&tp->out[to]) + sim_outbox_count(&tp->out[tp->s->n + 1u]);
}

/* Messages the transport still holds in its outboxes. */
uint32_t sim_tp_queued(struct transport *t)
{
    struct sim_tp *tp = sim_tp_of(t);
    uint32_t n = 0;
    for (uint32_t d = 0; d <= SIM_ENDPOINTS_MAX; d++)
        n += sim_outbox_count(&tp->out[d]);
    return n;
}
