/* transport_shm.c: the node's transport over the ipc segment.
 *
 * Sources of endpoint `self`: the point-to-point ring from every other endpoint (nodes and the
 * supervisor) and, for a node, the broadcast ring of every other node. Destinations: one
 * point-to-point ring per endpoint, plus this node's own broadcast ring for PX_TO_ALL.
 * Every destination has a bounded FIFO outbox in process memory that absorbs a full ring. */
#include "node/transport.h"
#include "common/util.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <urcu/system.h>

#include "ipc/bcast.h"
#include "ipc/doorbell.h"
#include "ipc/ring.h"
#include "ipc/segment.h"

/* Per-destination outbox: a window's worth of ACCEPTs plus control traffic. A full outbox makes
 * send return -ENOBUFS; the node loop then flushes before stepping more input. */
#define OUTBOX_MAX 4096
/* Messages taken from one source before moving to the next: the driver's whole batch
 * (DRIVER_BATCH_MAX), so the leader takes a window's client requests in two reads and the
 * followers wake for fewer, larger batches (16 nodes: 20% fewer futex waits per round than at
 * 256). A busy source can fill one receive call; the start rotates every call and the driver
 * reads again at once after a batch, so the others wait one iteration at most. */
#define RECV_PER_SOURCE_MAX 512
/* A broadcast blocked this long by an attached consumer that does not read (stopped, hung)
 * detaches it: the consumer learns "lagged" on its next read and catches up. */
#define BCAST_STALL_NS (200ull * 1000 * 1000)

struct outbox {
    uint32_t head, tail; /* tail - head = queued; indices mod OUTBOX_MAX */
    bool urgent;         /* a queued message lacks PX_FLAG_LAZY: wake its reader */
    struct px_msg *msgs;
};

struct shm_transport {
    struct transport base;
    struct ipc_segment *seg;
    uint16_t self, nodes;
    uint32_t dests;      /* nodes + 1 (client) + 1 (broadcast) */
    uint32_t recv_start; /* rotates for fairness */
    uint64_t bcast_blocked_since_ns;
    struct outbox *out;
};

static struct shm_transport *to_shm(struct transport *t)
{
    return (struct shm_transport *)t;
}

static bool is_node(const struct shm_transport *s)
{
    return s->self < s->nodes;
}

/* Source k in [0, 2 * nodes + 1): k <= nodes is the point-to-point ring from endpoint k,
 * k > nodes is the broadcast ring of node k - nodes - 1. */
static uint32_t sources(const struct shm_transport *s)
{
    return is_node(s) ? 2u * s->nodes + 1u : s->nodes;
}

static uint32_t recv_source(struct shm_transport *s, uint32_t k, struct px_msg *out, uint32_t max)
{
    if (k <= s->nodes) {
        if (k == s->self)
            return 0;
        static_assert(sizeof(*out) == IPC_SLOT_BYTES, "one ring slot per message");
        uint32_t n = ipc_ring_pop(ipc_segment_ring(s->seg, k, s->self), out, max);
        return transport_check_in(&s->base, (uint16_t)k, out, n);
    }
    uint32_t producer = k - s->nodes - 1;
    if (producer == s->self)
        return 0;
    struct ipc_bcast *b = ipc_segment_bcast(s->seg, producer);
    static_assert(sizeof(*out) == IPC_SLOT_BYTES, "one bcast slot per message");
    struct ipc_bcast_read_result r = ipc_bcast_read(b, s->self, out, max);
    if (r.lagged) {
        /* Explicit, never silent: count it, re-attach at the head; the core notices the gap
         * from the next decided-up-to it sees and catches up from a peer. */
        s->base.stats.lagged++;
        s->base.stats.missed += r.missed;
        ipc_bcast_reattach(b, s->self);
        return 0;
    }
    return transport_check_in(&s->base, (uint16_t)producer, out, r.n);
}

static uint32_t shm_recv(struct transport *t, struct px_msg *out, uint32_t max)
{
    struct shm_transport *s = to_shm(t);
    uint32_t n = 0, count = sources(s);
    for (uint32_t i = 0; i < count && n < max; i++) {
        uint32_t k = (s->recv_start + i) % count;
        uint32_t want = max - n < RECV_PER_SOURCE_MAX ? max - n : RECV_PER_SOURCE_MAX;
        n += recv_source(s, k, out + n, want);
    }
    s->recv_start = (s->recv_start + 1) % count;
    t->stats.received += n;
    return n;
}

static bool peer_alive(struct shm_transport *s, uint32_t endpoint)
{
    return CMM_LOAD_SHARED(ipc_segment_ctl(s->seg, endpoint)->alive) != 0;
}

static int shm_send(struct transport *t, const struct px_msg *m)
{
    struct shm_transport *s = to_shm(t);
    PX_ASSERT(m->from == s->self);
    uint32_t d;
    if (m->to == PX_TO_ALL) {
        if (!is_node(s) || s->nodes == 1)
            return 0; /* nobody else to tell */
        d = s->nodes + 1u;
    } else {
        PX_ASSERT(m->to <= s->nodes);
        PX_ASSERT(m->to != s->self);
        d = m->to;
        if (!peer_alive(s, d)) {
            t->stats.drops++; /* a down peer: the only loss allowed, counted */
            return 0;
        }
    }
    struct outbox *o = &s->out[d];
    if (o->tail - o->head == OUTBOX_MAX)
        return -ENOBUFS;
    struct px_msg *q = &o->msgs[o->tail % OUTBOX_MAX];
    *q = *m;
    transport_seal(q); /* final from here on: the check covers outbox, ring and copy out */
    o->tail++;
    o->urgent |= (m->flags & PX_FLAG_LAZY) == 0; /* the core's decision */
    return 0;
}

/* Pushes the contiguous part of the outbox that does not wrap, then the rest. */
static uint32_t push_some(struct shm_transport *s, uint32_t d, struct outbox *o)
{
    uint32_t pushed_total = 0;
    while (o->tail != o->head) {
        uint32_t start = o->head % OUTBOX_MAX;
        uint32_t len = o->tail - o->head;
        if (len > OUTBOX_MAX - start)
            len = OUTBOX_MAX - start;
        uint32_t pushed;
        if (d == s->nodes + 1u) {
            struct ipc_bcast *b = ipc_segment_bcast(s->seg, s->self);
            unsigned flags = 0;
            if (s->bcast_blocked_since_ns != 0 &&
                util_now_ns() - s->bcast_blocked_since_ns > BCAST_STALL_NS)
                flags = IPC_BCAST_DETACH_LAGGARDS;
            static_assert(sizeof(o->msgs[0]) == IPC_SLOT_BYTES, "one message per bcast slot");
            pushed = ipc_bcast_publish(b, &o->msgs[start], len, flags);
            if (pushed == 0 && s->bcast_blocked_since_ns == 0)
                s->bcast_blocked_since_ns = util_now_ns();
            if (pushed > 0)
                s->bcast_blocked_since_ns = 0;
        } else {
            static_assert(sizeof(o->msgs[0]) == IPC_SLOT_BYTES, "one message per ring slot");
            pushed = ipc_ring_push(ipc_segment_ring(s->seg, s->self, d), &o->msgs[start], len);
        }
        o->head += pushed;
        pushed_total += pushed;
        if (pushed < len) {
            s->base.stats.ring_full++;
            break;
        }
    }
    return pushed_total;
}

static void wake(struct shm_transport *s, uint32_t d)
{
    if (d == s->nodes + 1u) {
        for (uint32_t p = 0; p < s->nodes; p++)
            if (p != s->self)
                ipc_doorbell_ring(&ipc_segment_ctl(s->seg, p)->bell);
    } else {
        ipc_doorbell_ring(&ipc_segment_ctl(s->seg, d)->bell);
    }
}

/* Pushes every outbox first and rings the doorbells after, broadcast readers first: a wake
 * can hand the CPU to the woken reader at once (two cores, many processes), and the messages
 * to the other destinations should not wait behind that. One ring per destination per flush,
 * and ipc_doorbell_ring makes the syscall only for a reader that announced sleep. */
static uint32_t shm_flush(struct transport *t)
{
    struct shm_transport *s = to_shm(t);
    uint32_t queued = 0;
    uint64_t to_wake[2] = {0, 0}; /* bit per destination slot: nodes, the client, broadcast */
    static_assert(PX_NODES_MAX + 2 <= 128, "two words of destination bits");
    for (uint32_t d = 0; d < s->dests; d++) {
        struct outbox *o = &s->out[d];
        if (o->tail == o->head)
            continue;
        if (d <= s->nodes && !peer_alive(s, d)) {
            t->stats.drops += o->tail - o->head;
            o->head = o->tail;
            continue;
        }
        uint32_t pushed = push_some(s, d, o);
        if (pushed > 0) {
            t->stats.sent += pushed;
            if (o->urgent)
                to_wake[d / 64u] |= 1ull << (d % 64u);
            o->urgent = o->urgent && o->tail != o->head; /* wake again for what is left */
        }
        queued += o->tail - o->head;
    }
    uint32_t bcast = s->nodes + 1u;
    if (to_wake[bcast / 64u] & (1ull << (bcast % 64u)))
        wake(s, bcast);
    for (uint32_t d = 0; d <= s->nodes; d++)
        if (to_wake[d / 64u] & (1ull << (d % 64u)))
            wake(s, d);
    return queued;
}

static bool any_input(struct shm_transport *s)
{
    for (uint32_t k = 0; k <= s->nodes; k++)
        if (k != s->self && !ipc_ring_empty(ipc_segment_ring(s->seg, k, s->self)))
            return true;
    if (!is_node(s))
        return false;
    for (uint32_t p = 0; p < s->nodes; p++)
        if (p != s->self && !ipc_bcast_empty(ipc_segment_bcast(s->seg, p), s->self))
            return true;
    return false;
}

static void shm_wait(struct transport *t, uint64_t timeout_ns)
{
    struct shm_transport *s = to_shm(t);
    struct ipc_doorbell *bell = &ipc_segment_ctl(s->seg, s->self)->bell;
    /* Announce sleep, then re-check every source: a producer that published before seeing
     * the announcement is caught by the re-check, one after it makes the wake syscall. */
    ipc_doorbell_prepare(bell);
    if (any_input(s)) {
        ipc_doorbell_cancel(bell);
        return;
    }
    (void)ipc_doorbell_wait(bell, timeout_ns);
}

static void shm_peer_down(struct transport *t, uint16_t peer)
{
    struct shm_transport *s = to_shm(t);
    if (peer >= s->dests)
        return;
    struct outbox *o = &s->out[peer];
    t->stats.drops += o->tail - o->head;
    o->head = o->tail;
}

static void shm_destroy(struct transport *t)
{
    struct shm_transport *s = to_shm(t);
    if (s == NULL)
        return;
    for (uint32_t d = 0; d < s->dests; d++)
        free(s->out[d].msgs);
    free(s->out);
    free(s);
}

static const struct transport_ops shm_ops = {
    .recv = shm_recv,
    .send = shm_send,
    .flush = shm_flush,
    .wait = shm_wait,
    .peer_down = shm_peer_down,
    .destroy = shm_destroy,
};

int transport_shm_create(struct ipc_segment *seg, uint16_t self, uint16_t nodes,
                         struct transport **out)
{
    struct shm_transport *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return -ENOMEM;
    s->base.ops = &shm_ops;
    s->base.self = self;
    s->base.nodes = nodes;
    s->seg = seg;
    s->self = self;
    s->nodes = nodes;
    s->dests = nodes + 2u;
    s->out = calloc(s->dests, sizeof(*s->out));
    if (s->out == NULL)
        goto err;
    for (uint32_t d = 0; d < s->dests; d++) {
        /* Only destinations this endpoint can use get a buffer. */
        bool used = d != self && (d <= nodes || self < nodes);
        if (!used)
            continue;
        s->out[d].msgs = malloc(OUTBOX_MAX * sizeof(struct px_msg));
        if (s->out[d].msgs == NULL)
            goto err;
    }
    *out = &s->base;
    return 0;
err:
    shm_destroy(&s->base);
    return -ENOMEM;
}
