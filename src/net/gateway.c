/* gateway.c: the bridge between one host's rings and the other hosts (gateway.h). */
#include "net/gateway.h"

#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <urcu/system.h>
#include <urcu/uatomic.h>

#include "common/pool.h"
#include "common/signals.h"
#include "common/util.h"
#include "ipc/bcast.h"
#include "ipc/doorbell.h"
#include "ipc/ring.h"
#include "ipc/segment.h"
#include "net/link.h"
#include "net/wire.h"

/* Messages queued per other host when its link is at the high-water mark: the same bound as
 * a node's outbox per destination. */
#define GW_OUTBOX_MAX 4096
/* Messages queued per local ring when the ring is full; a full queue stops reading the link. */
#define GW_PEND_MAX 1024
/* A broadcast this host produces for a remote node, blocked this long by a local reader that
 * does not read, detaches that reader (as transport_shm does for its own broadcasts). */
#define GW_BCAST_STALL_NS (200ull * 1000 * 1000)
/* Idle sleep bounds: what is queued behind a high-water mark is retried this often (the link
 * cannot wake us when it drains); otherwise the doorbells or the status period wake us. */
#define GW_RETRY_NS (1000ull * 1000)

struct gw_queue {
    uint32_t head, tail; /* tail - head = queued */
    struct px_msg *q;
};

/* The latest status frame of a host, handed from the inbound thread to the main thread. */
struct gw_status_in {
    bool fresh;
    uint32_t flags, count;
    struct net_node_status nodes[NET_NODES_MAX];
};

struct gw {
    const struct gateway_args *a;
    const struct net_pool *pool;
    struct net_shared *sh;
    struct ipc_segment *seg;
    struct net_link *link;
    uint32_t self, hosts;
    uint16_t nodes, client;      /* client = nodes: the client's endpoint id */
    bool first;                  /* this host runs the client */
    uint16_t rep[NET_HOSTS_MAX]; /* per other host: the cursor its broadcasts are read with */
    struct gw_queue out[NET_HOSTS_MAX];
    bool up[NET_HOSTS_MAX];
    uint64_t heard_ns[NET_HOSTS_MAX]; /* inbound thread writes, main thread reads */
    pthread_mutex_t lock;             /* guards status_in */
    struct gw_status_in *status_in;   /* [hosts] */
    struct gw_queue *pend;            /* inbound: [(nodes + 1) * (nodes + 2)], lazily filled */
    uint64_t bcast_blocked_since_ns[NET_NODES_MAX];
    uint64_t status_seq, last_status_ns;
    unsigned char *frame_out, *frame_in;
    uint32_t bad_named; /* hosts already named on stderr, one bit each */
};

static volatile sig_atomic_t gw_quit;

static void on_term(int sig)
{
    (void)sig;
    gw_quit = 1;
}

static bool quitting(const struct gw *g)
{
    return gw_quit || CMM_LOAD_SHARED(g->sh->quit);
}

static bool is_local(const struct gw *g, uint32_t endpoint)
{
    if (endpoint == g->client)
        return g->first;
    return g->pool->host_of[endpoint] == g->self;
}

static uint32_t host_of(const struct gw *g, uint32_t endpoint)
{
    return endpoint == g->client ? 0 : g->pool->host_of[endpoint];
}

static void stat_add(uint64_t *field, uint64_t n)
{
    if (n)
        uatomic_add(field, n);
}

/* --- bounded queues ----------------------------------------------------------------------- */

static uint32_t q_len(const struct gw_queue *q)
{
    return q->tail - q->head;
}

static void q_put(struct gw_queue *q, uint32_t cap, const struct px_msg *m)
{
    PX_ASSERT(q_len(q) < cap);
    q->q[q->tail % cap] = *m;
    q->tail++;
}

/* --- marking remote nodes up and down (main thread only) ---------------------------------- */

static void set_remote_alive(struct gw *g, uint16_t r, bool up)
{
    struct ipc_ctl *ctl = ipc_segment_ctl(g->seg, r);
    if ((CMM_LOAD_SHARED(ctl->alive) != 0) == up)
        return;
    CMM_STORE_SHARED(ctl->alive, up ? 1u : 0u);
    if (r != g->client) {
        struct pool_shared *pool = ipc_segment_user(g->seg, g->nodes);
        /* Atomic: the supervisor updates the bits of the local nodes concurrently. */
        if (up)
            uatomic_or(&pool->alive_mask, 1ull << r);
        else
            uatomic_and(&pool->alive_mask, ~(1ull << r));
        cmm_smp_wmb(); /* the mask before the epoch; pairs with the nodes' membership rmb */
        uatomic_add(&pool->membership_epoch, 1);
    }
    for (uint16_t p = 0; p < g->nodes; p++)
        if (is_local(g, p))
            ipc_doorbell_ring(&ipc_segment_ctl(g->seg, p)->bell);
}

static void host_down(struct gw *g, uint32_t h)
{
    g->up[h] = false;
    CMM_STORE_SHARED(g->sh->host_up[h], 0);
    uatomic_add(&g->sh->host_down, 1);
    fprintf(stderr, "paxos-shm: host %s: host %s is not heard; its nodes are down\n",
            g->pool->host[g->self].name, g->pool->host[h].name);
    for (uint16_t r = 0; r <= g->nodes; r++)
        if (!is_local(g, r) && host_of(g, r) == h)
            set_remote_alive(g, r, false);
    /* What was queued for it is lost like messages to a crashed node: counted. */
    stat_add(&g->sh->drops, q_len(&g->out[h]));
    g->out[h].head = g->out[h].tail;
}

/* Mirrors one remote node's status into this segment (the node's own area is unused here). */
static void mirror_node(struct gw *g, uint32_t h, const struct net_node_status *st)
{
    uint16_t r = st->id;
    struct pool_node_shared *ns = ipc_segment_user(g->seg, r);
    struct ipc_ctl *ctl = ipc_segment_ctl(g->seg, r);
    CMM_STORE_SHARED(ns->applied, st->applied);
    CMM_STORE_SHARED(ns->leader, st->leader);
    CMM_STORE_SHARED(ns->is_leader, st->is_leader);
    CMM_STORE_SHARED(ns->elections_won, st->elections_won);
    CMM_STORE_SHARED(ns->msgs_sent, st->msgs_sent);
    CMM_STORE_SHARED(ns->msgs_received, st->msgs_received);
    CMM_STORE_SHARED(ns->ring_full, st->ring_full);
    CMM_STORE_SHARED(ns->drops, st->drops);
    CMM_STORE_SHARED(ns->lagged, st->lagged);
    CMM_STORE_SHARED(ns->bad_messages, st->bad_messages);
    CMM_STORE_SHARED(ns->loaded_incarnation, st->loaded_incarnation);
    CMM_STORE_SHARED(ns->cmds_checked, st->cmds_checked);
    CMM_STORE_SHARED(ns->cmds_bad, st->cmds_bad);
    CMM_STORE_SHARED(ns->cmd_streams_torn, st->cmd_streams_torn);
    CMM_STORE_SHARED(ns->cmd_missing, st->cmd_missing);
    bool final = st->final_ok && st->final_seq != 0 && st->final_seq % 2 == 0;
    if (final && CMM_LOAD_SHARED(ns->final_seq) != st->final_seq) {
        /* The node's own sequence-word protocol (publish_final): odd, fields, even. */
        CMM_STORE_SHARED(ns->final_seq, st->final_seq - 1);
        cmm_smp_wmb();
        memcpy(&ns->final_fib, &st->final_fib, sizeof(ns->final_fib));
        CMM_STORE_SHARED(ns->final_sm_applied, st->final_sm_applied);
        CMM_STORE_SHARED(ns->final_sm_index, st->final_sm_index);
        CMM_STORE_SHARED(ns->final_sm_digest, st->final_sm_digest);
        CMM_STORE_SHARED(ns->final_cmd_digest, st->final_cmd_digest);
        CMM_STORE_SHARED(ns->final_ok, 1);
        cmm_smp_wmb();
        CMM_STORE_SHARED(ns->final_seq, st->final_seq);
    }
    CMM_STORE_SHARED(ctl->incarnation, st->incarnation);
    set_remote_alive(g, r, st->alive && g->up[h]);
}

static void apply_status(struct gw *g, uint32_t h, const struct gw_status_in *in)
{
    if (!g->up[h]) {
        g->up[h] = true;
        CMM_STORE_SHARED(g->sh->host_up[h], 1);
        if (h == 0 && !g->first)
            set_remote_alive(g, g->client, true);
    }
    for (uint32_t i = 0; i < in->count; i++)
        mirror_node(g, h, &in->nodes[i]);
    CMM_STORE_SHARED(g->sh->host_flags[h], in->flags);
    if (h == 0 && !g->first && (in->flags & NET_ST_STOP)) {
        struct pool_shared *pool = ipc_segment_user(g->seg, g->nodes);
        if (!CMM_LOAD_SHARED(pool->stop))
            CMM_STORE_SHARED(pool->stop, 1); /* the supervisor stops its nodes */
    }
}

/* Takes the statuses the inbound thread left, and marks silent hosts down. */
static void membership_step(struct gw *g, uint64_t now)
{
    for (uint32_t h = 0; h < g->hosts; h++) {
        if (h == g->self)
            continue;
        struct gw_status_in *in = &g->status_in[h];
        pthread_mutex_lock(&g->lock);
        if (in->fresh) {
            in->fresh = false;
            apply_status(g, h, in);
        }
        pthread_mutex_unlock(&g->lock);
        /* The inbound thread may have heard the host after `now` was read: not silence. */
        uint64_t heard = uatomic_read(&g->heard_ns[h]);
        if (g->up[h] && heard < now && now - heard > NET_HOST_DEAD_NS)
            host_down(g, h);
    }
}

/* --- status out (main thread) ------------------------------------------------------------- */

static void fill_node_status(struct gw *g, uint16_t i, struct net_node_status *st)
{
    const struct pool_node_shared *ns = ipc_segment_user(g->seg, i);
    const struct ipc_ctl *ctl = ipc_segment_ctl(g->seg, i);
    memset(st, 0, sizeof(*st));
    st->id = i;
    st->alive = (uint16_t)CMM_LOAD_SHARED(ctl->alive);
    st->incarnation = CMM_LOAD_SHARED(ctl->incarnation);
    st->loaded_incarnation = CMM_LOAD_SHARED(ns->loaded_incarnation);
    st->elections_won = CMM_LOAD_SHARED(ns->elections_won);
    st->leader = CMM_LOAD_SHARED(ns->leader);
    st->is_leader = CMM_LOAD_SHARED(ns->is_leader);
    st->applied = CMM_LOAD_SHARED(ns->applied);
    const struct net_banked *b = &g->sh->banked[i];
    st->msgs_sent = CMM_LOAD_SHARED(b->msgs) + CMM_LOAD_SHARED(ns->msgs_sent);
    st->msgs_received = CMM_LOAD_SHARED(ns->msgs_received);
    st->ring_full = CMM_LOAD_SHARED(b->ring_full) + CMM_LOAD_SHARED(ns->ring_full);
    st->drops = CMM_LOAD_SHARED(b->drops) + CMM_LOAD_SHARED(ns->drops);
    st->lagged = CMM_LOAD_SHARED(b->lagged) + CMM_LOAD_SHARED(ns->lagged);
    st->bad_messages = CMM_LOAD_SHARED(b->bad_messages) + CMM_LOAD_SHARED(ns->bad_messages);
    st->cmds_checked = CMM_LOAD_SHARED(ns->cmds_checked);
    st->cmds_bad = CMM_LOAD_SHARED(ns->cmds_bad);
    st->cmd_streams_torn = CMM_LOAD_SHARED(b->cmd_torn) + CMM_LOAD_SHARED(ns->cmd_streams_torn);
    st->cmd_missing = CMM_LOAD_SHARED(b->cmd_missing) + CMM_LOAD_SHARED(ns->cmd_missing);
    /* The final state under the node's sequence word: copied only when it was stable. */
    uint64_t seq = uatomic_read(&ns->final_seq);
    cmm_smp_rmb(); /* pairs with publish_final's wmb */
    if (seq != 0 && seq % 2 == 0 && CMM_LOAD_SHARED(ns->final_ok)) {
        memcpy(&st->final_fib, &ns->final_fib, sizeof(st->final_fib));
        st->final_sm_applied = CMM_LOAD_SHARED(ns->final_sm_applied);
        st->final_sm_index = CMM_LOAD_SHARED(ns->final_sm_index);
        st->final_sm_digest = CMM_LOAD_SHARED(ns->final_sm_digest);
        st->final_cmd_digest = CMM_LOAD_SHARED(ns->final_cmd_digest);
        cmm_smp_rmb();
        if (uatomic_read(&ns->final_seq) == seq) {
            st->final_ok = 1;
            st->final_seq = seq;
        }
    }
}

static void send_status(struct gw *g)
{
    struct net_hdr *hdr = (struct net_hdr *)g->frame_out;
    struct net_status *st = (struct net_status *)(hdr + 1);
    struct net_node_status *ns = (struct net_node_status *)(st + 1);
    uint32_t count = 0;
    for (uint16_t i = 0; i < g->nodes; i++)
        if (is_local(g, i))
            fill_node_status(g, i, &ns[count++]);
    const struct pool_shared *pool = ipc_segment_user(g->seg, g->nodes);
    memset(st, 0, sizeof(*st));
    if (g->first) {
        st->flags |= CMM_LOAD_SHARED(pool->stop) ? NET_ST_STOP : 0;
        st->flags |= CMM_LOAD_SHARED(g->sh->done) ? NET_ST_DONE : 0;
    } else {
        st->flags |= CMM_LOAD_SHARED(g->sh->stopped) ? NET_ST_STOPPED : 0;
    }
    st->seq = ++g->status_seq;
    *hdr = (struct net_hdr){.magic = NET_MAGIC,
                            .version = NET_VERSION,
                            .kind = NET_KIND_STATUS,
                            .host = (uint16_t)g->self,
                            .count = count};
    size_t len = sizeof(*hdr) + sizeof(*st) + count * sizeof(*ns);
    for (uint32_t h = 0; h < g->hosts; h++) {
        if (h == g->self)
            continue;
        if (net_link_send(g->link, h, g->frame_out, len) == 0)
            uatomic_add(&g->sh->frames_sent, 1);
        else
            uatomic_add(&g->sh->status_dropped, 1); /* superseded by the next one */
    }
}

/* --- outbound: rings -> link (main thread) ------------------------------------------------ */

/* Pops what local endpoint s queued for remote endpoint r into the outbox of r's host. */
static uint32_t take_ring(struct gw *g, uint16_t s, uint16_t r, struct px_msg *tmp)
{
    uint32_t h = host_of(g, r);
    struct gw_queue *o = &g->out[h];
    struct ipc_ring *ring = ipc_segment_ring(g->seg, s, r);
    uint32_t room = GW_OUTBOX_MAX - q_len(o);
    if (!g->up[h])
        room = NET_FRAME_MSGS_MAX; /* drained and dropped: a message to a down node */
    if (room > NET_FRAME_MSGS_MAX)
        room = NET_FRAME_MSGS_MAX;
    uint32_t n = room ? ipc_ring_pop(ring, tmp, room) : 0;
    if (!g->up[h]) {
        stat_add(&g->sh->drops, n);
        return n;
    }
    for (uint32_t k = 0; k < n; k++)
        q_put(o, GW_OUTBOX_MAX, &tmp[k]);
    return n;
}

/* Reads local node i's broadcasts for host h through h's cursor. */
static uint32_t take_bcast(struct gw *g, uint16_t i, uint32_t h, struct px_msg *tmp)
{
    struct gw_queue *o = &g->out[h];
    struct ipc_bcast *b = ipc_segment_bcast(g->seg, i);
    uint32_t room = g->up[h] ? GW_OUTBOX_MAX - q_len(o) : NET_FRAME_MSGS_MAX;
    if (room > NET_FRAME_MSGS_MAX)
        room = NET_FRAME_MSGS_MAX;
    if (room == 0)
        return 0;
    struct ipc_bcast_read_result rr = ipc_bcast_read(b, g->rep[h], tmp, room);
    if (rr.lagged) {
        /* The producer detached the cursor while this host's link was full: the missed
         * broadcasts never reach host h, and its nodes catch up as a lagged reader does. */
        uatomic_add(&g->sh->lagged, 1);
        stat_add(&g->sh->missed, rr.missed);
        ipc_bcast_reattach(b, g->rep[h]);
        return 1;
    }
    if (!g->up[h]) {
        stat_add(&g->sh->drops, rr.n);
        return rr.n;
    }
    for (uint32_t k = 0; k < rr.n; k++)
        q_put(o, GW_OUTBOX_MAX, &tmp[k]);
    return rr.n;
}

/* Sends the outbox of host h in frames; stops at the high-water mark. */
static void flush_host(struct gw *g, uint32_t h)
{
    struct gw_queue *o = &g->out[h];
    struct net_hdr *hdr = (struct net_hdr *)g->frame_out;
    struct px_msg *body = (struct px_msg *)(hdr + 1);
    while (q_len(o) > 0) {
        uint32_t n = q_len(o) < NET_FRAME_MSGS_MAX ? q_len(o) : NET_FRAME_MSGS_MAX;
        for (uint32_t k = 0; k < n; k++)
            body[k] = o->q[(o->head + k) % GW_OUTBOX_MAX];
        *hdr = (struct net_hdr){.magic = NET_MAGIC,
                                .version = NET_VERSION,
                                .kind = NET_KIND_MSGS,
                                .host = (uint16_t)g->self,
                                .count = n};
        int rc = net_link_send(g->link, h, g->frame_out, sizeof(*hdr) + n * sizeof(*body));
        if (rc != 0) {
            uatomic_add(&g->sh->hwm_full, 1); /* kept: retried on the next pass */
            return;
        }
        o->head += n;
        uatomic_add(&g->sh->frames_sent, 1);
        uatomic_add(&g->sh->msgs_sent, n);
    }
}

static uint32_t outbound_pass(struct gw *g, struct px_msg *tmp)
{
    uint32_t moved = 0;
    for (uint16_t s = 0; s <= g->nodes; s++) {
        if (!is_local(g, s))
            continue;
        for (uint16_t r = 0; r <= g->nodes; r++)
            if (r != s && !is_local(g, r))
                moved += take_ring(g, s, r, tmp);
        if (s == g->client)
            continue; /* the client has no broadcast ring */
        for (uint32_t h = 0; h < g->hosts; h++)
            if (h != g->self)
                moved += take_bcast(g, s, h, tmp);
    }
    for (uint32_t h = 0; h < g->hosts; h++)
        if (h != g->self)
            flush_host(g, h);
    return moved;
}

/* --- inbound: link -> rings (inbound thread) ---------------------------------------------- */

static struct gw_queue *pend_of(struct gw *g, uint16_t from, uint16_t to_slot)
{
    struct gw_queue *p = &g->pend[(uint32_t)from * (g->nodes + 2u) + to_slot];
    if (p->q == NULL)
        p->q = malloc(GW_PEND_MAX * sizeof(struct px_msg));
    return p->q ? p : NULL;
}

/* Moves what queue (from -> to_slot) holds into its ring; to_slot = nodes + 1 is the
 * broadcast ring of `from`. Returns what is left. */
static uint32_t deliver(struct gw *g, uint16_t from, uint16_t to_slot, struct gw_queue *p)
{
    bool bcast = to_slot == g->nodes + 1u;
    while (q_len(p) > 0) {
        uint32_t start = p->head % GW_PEND_MAX;
        uint32_t len = q_len(p);
        if (len > GW_PEND_MAX - start)
            len = GW_PEND_MAX - start;
        uint32_t pushed;
        if (bcast) {
            struct ipc_bcast *b = ipc_segment_bcast(g->seg, from);
            uint64_t *since = &g->bcast_blocked_since_ns[from];
            unsigned flags = *since && util_now_ns() - *since > GW_BCAST_STALL_NS
                                 ? IPC_BCAST_DETACH_LAGGARDS
                                 : 0;
            pushed = ipc_bcast_publish(b, &p->q[start], len, flags);
            *since = pushed ? 0 : (*since ? *since : util_now_ns());
        } else if (!CMM_LOAD_SHARED(ipc_segment_ctl(g->seg, to_slot)->alive)) {
            pushed = len; /* a local node that is down: lost like any message to it */
            stat_add(&g->sh->drops, len);
        } else {
            pushed = ipc_ring_push(ipc_segment_ring(g->seg, from, to_slot), &p->q[start], len);
        }
        p->head += pushed;
        if (pushed > 0 && bcast) {
            for (uint16_t i = 0; i < g->nodes; i++)
                if (is_local(g, i))
                    ipc_doorbell_ring(&ipc_segment_ctl(g->seg, i)->bell);
        } else if (pushed > 0) {
            ipc_doorbell_ring(&ipc_segment_ctl(g->seg, to_slot)->bell);
        }
        if (pushed < len)
            break;
    }
    return q_len(p);
}

/* Retries every non-empty queue. True when one is too full to take another frame. */
static bool deliver_all(struct gw *g)
{
    bool blocked = false;
    uint32_t slots = (g->nodes + 1u) * (g->nodes + 2u);
    for (uint32_t k = 0; k < slots; k++) {
        struct gw_queue *p = &g->pend[k];
        if (p->q == NULL || q_len(p) == 0)
            continue;
        uint32_t left =
            deliver(g, (uint16_t)(k / (g->nodes + 2u)), (uint16_t)(k % (g->nodes + 2u)), p);
        blocked |= left > GW_PEND_MAX - NET_FRAME_MSGS_MAX;
    }
    return blocked;
}

static void name_bad_once(struct gw *g, uint32_t h, const char *what, const char *why)
{
    if (g->bad_named & (1u << h))
        return;
    g->bad_named |= 1u << h;
    fprintf(stderr,
            "paxos-shm: host %s: dropped a %s from host %s (%s); later ones are only counted\n",
            g->pool->host[g->self].name, what, g->pool->host[h].name, why);
}

static void take_msgs(struct gw *g, uint32_t h, const struct px_msg *msgs, uint32_t n)
{
    uint32_t good = 0;
    for (uint32_t k = 0; k < n; k++) {
        const char *why = NULL;
        if (!net_msg_check(g->pool, g->self, h, &msgs[k], &why)) {
            uatomic_add(&g->sh->bad_messages, 1);
            name_bad_once(g, h, "message", why);
            continue;
        }
        uint16_t to_slot = msgs[k].to == PX_TO_ALL ? (uint16_t)(g->nodes + 1u) : msgs[k].to;
        struct gw_queue *p = pend_of(g, msgs[k].from, to_slot);
        if (p == NULL || q_len(p) == GW_PEND_MAX) {
            /* Cannot happen while the reader stops at GW_PEND_MAX - one frame; out of memory
             * is the only way here, and then the loss is counted. */
            uatomic_add(&g->sh->drops, 1);
            continue;
        }
        q_put(p, GW_PEND_MAX, &msgs[k]);
        good++;
    }
    stat_add(&g->sh->msgs_received, good);
}

static void take_frame(struct gw *g, uint32_t h, const unsigned char *buf, size_t len)
{
    struct net_hdr hdr;
    const char *why = NULL;
    if (net_frame_check(g->pool, g->self, h, buf, len, &hdr, &why) != 0) {
        uatomic_add(&g->sh->bad_frames, 1);
        name_bad_once(g, h, "frame", why);
        return;
    }
    uatomic_set(&g->heard_ns[h], util_now_ns());
    uatomic_add(&g->sh->frames_received, 1);
    if (hdr.kind == NET_KIND_MSGS) {
        take_msgs(g, h, (const struct px_msg *)(buf + sizeof(hdr)), hdr.count);
        return;
    }
    const struct net_status *st = (const struct net_status *)(buf + sizeof(hdr));
    const struct net_node_status *ns = (const struct net_node_status *)(st + 1);
    if (!net_status_check(g->pool, h, ns, hdr.count, &why)) {
        uatomic_add(&g->sh->bad_frames, 1);
        name_bad_once(g, h, "status", why);
        return;
    }
    pthread_mutex_lock(&g->lock);
    struct gw_status_in *in = &g->status_in[h];
    in->fresh = true;
    in->flags = st->flags;
    in->count = hdr.count;
    memcpy(in->nodes, ns, hdr.count * sizeof(*ns));
    pthread_mutex_unlock(&g->lock);
}

static void *inbound_thread(void *arg)
{
    struct gw *g = arg;
    while (!quitting(g)) {
        if (deliver_all(g)) {
            struct timespec ts = {0, 200000}; /* a local ring is full: its reader is busy */
            nanosleep(&ts, NULL);
            continue;
        }
        uint32_t h = 0;
        ssize_t n = net_link_recv(g->link, g->frame_in, NET_FRAME_BYTES_MAX, &h);
        if (n > 0) {
            take_frame(g, h, g->frame_in, (size_t)n);
            deliver_all(g);
        } else if (n < 0) {
            uatomic_add(&g->sh->bad_frames, 1);
        } else {
            net_link_wait(g->link, 5);
        }
    }
    return NULL;
}

/* --- idle wait on the doorbells of every endpoint this gateway stands in for --------------- */

static bool any_outbound(struct gw *g)
{
    for (uint16_t s = 0; s <= g->nodes; s++) {
        if (!is_local(g, s))
            continue;
        for (uint16_t r = 0; r <= g->nodes; r++)
            if (r != s && !is_local(g, r) && !ipc_ring_empty(ipc_segment_ring(g->seg, s, r)))
                return true;
        if (s == g->client)
            continue;
        for (uint32_t h = 0; h < g->hosts; h++)
            if (h != g->self && !ipc_bcast_empty(ipc_segment_bcast(g->seg, s), g->rep[h]))
                return true;
    }
    return false;
}

static void idle_wait(struct gw *g, uint64_t timeout_ns)
{
    struct futex_waitv w[IPC_ENDPOINTS_MAX];
    struct ipc_doorbell *bells[IPC_ENDPOINTS_MAX];
    uint32_t n = 0;
    for (uint16_t r = 0; r <= g->nodes; r++) {
        if (is_local(g, r))
            continue;
        bells[n] = &ipc_segment_ctl(g->seg, r)->bell;
        ipc_doorbell_prepare(bells[n]);
        w[n] = (struct futex_waitv){.val = 1, /* DOORBELL_SLEEPING */
                                    .uaddr = (uintptr_t)&bells[n]->word,
                                    .flags = FUTEX_32};
        n++;
    }
    /* The doorbell protocol (doorbell.h), over all of them at once: announce, re-check, then
     * sleep until any is rung (futex_waitv, Linux 5.16) or the timeout. */
    if (!any_outbound(g)) {
        struct timespec abs;
        clock_gettime(CLOCK_MONOTONIC, &abs);
        uint64_t t = (uint64_t)abs.tv_sec * 1000000000ull + (uint64_t)abs.tv_nsec + timeout_ns;
        abs.tv_sec = (time_t)(t / 1000000000ull);
        abs.tv_nsec = (long)(t % 1000000000ull);
        if (syscall(SYS_futex_waitv, w, n, 0, &abs, CLOCK_MONOTONIC) < 0 && errno == ENOSYS) {
            struct timespec ts = {0, 200000}; /* an older kernel: poll */
            nanosleep(&ts, NULL);
        }
    }
    for (uint32_t k = 0; k < n; k++)
        ipc_doorbell_cancel(bells[k]);
}

/* --- the process ---------------------------------------------------------------------------- */

static int gw_init(struct gw *g, const struct gateway_args *a)
{
    memset(g, 0, sizeof(*g));
    g->a = a;
    g->pool = a->pool;
    g->sh = a->sh;
    g->seg = a->seg;
    g->self = a->self;
    g->hosts = a->pool->hosts;
    g->nodes = (uint16_t)a->pool->nodes;
    g->client = g->nodes;
    g->first = a->self == 0;
    pthread_mutex_init(&g->lock, NULL);
    for (uint32_t h = 0; h < g->hosts; h++) {
        g->rep[h] = (uint16_t)__builtin_ctzll(a->pool->host[h].nodes_mask);
        if (h == g->self)
            continue;
        g->out[h].q = malloc(GW_OUTBOX_MAX * sizeof(struct px_msg));
        if (g->out[h].q == NULL)
            return -ENOMEM;
    }
    g->status_in = calloc(g->hosts, sizeof(*g->status_in));
    g->pend = calloc((g->nodes + 1u) * (g->nodes + 2u), sizeof(*g->pend));
    g->frame_out = malloc(NET_FRAME_BYTES_MAX);
    g->frame_in = malloc(NET_FRAME_BYTES_MAX);
    if (!g->status_in || !g->pend || !g->frame_out || !g->frame_in)
        return -ENOMEM;
    return 0;
}

static void gw_fini(struct gw *g)
{
    net_link_close(g->link);
    for (uint32_t h = 0; h < NET_HOSTS_MAX; h++)
        free(g->out[h].q);
    if (g->pend)
        for (uint32_t k = 0; k < (g->nodes + 1u) * (g->nodes + 2u); k++)
            free(g->pend[k].q);
    free(g->pend);
    free(g->status_in);
    free(g->frame_out);
    free(g->frame_in);
    pthread_mutex_destroy(&g->lock);
}

static void main_loop(struct gw *g)
{
    static struct px_msg tmp[NET_FRAME_MSGS_MAX];
    while (!quitting(g)) {
        uint64_t now = util_now_ns();
        membership_step(g, now);
        if (now - g->last_status_ns >= NET_STATUS_NS) {
            send_status(g);
            g->last_status_ns = now;
        }
        if (outbound_pass(g, tmp) > 0)
            continue;
        bool queued = false;
        for (uint32_t h = 0; h < g->hosts; h++)
            queued |= h != g->self && q_len(&g->out[h]) > 0;
        idle_wait(g, queued ? GW_RETRY_NS : NET_STATUS_NS / 2);
    }
}

int gateway_run(const struct gateway_args *a)
{
    pid_t parent = getppid();
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || parent == 1)
        return 3;
    px_child_signals(); /* the supervisor ends us, whatever reaches the process group */
    signal(SIGTERM, on_term);
    static struct gw g;
    char err[256] = "";
    int code = 3;
    if (gw_init(&g, a) != 0) {
        fprintf(stderr, "paxos-shm: gateway: out of memory\n");
    } else if (net_link_open(a->pool, a->self, a->secret, &g.link, err, sizeof(err)) != 0) {
        fprintf(stderr, "paxos-shm: %s\n", err);
    } else {
        pthread_t in;
        if (pthread_create(&in, NULL, inbound_thread, &g) != 0) {
            fprintf(stderr, "paxos-shm: gateway: cannot start a thread\n");
        } else {
            CMM_STORE_SHARED(a->sh->state, 1);
            main_loop(&g);
            gw_quit = 1;
            pthread_join(in, NULL);
            code = 0;
        }
    }
    if (code != 0)
        CMM_STORE_SHARED(a->sh->state, -1);
    gw_fini(&g);
    return code;
}
