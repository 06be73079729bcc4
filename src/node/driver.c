/* driver.c: the node driver (driver.h). Pure glue between the core, the transport and the
 * store: no clock, no randomness, no printing of its own -- everything it needs is given. */
#include "node/driver.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/persist.h"

static bool fp_hit(struct driver *d, enum driver_fp where, const struct driver_flush *f)
{
    return d->env.failpoint != NULL && d->env.failpoint(d->env.ctx, where, f);
}

static void trace(struct driver *d, bool send, const struct px_msg *m)
{
    if (d->env.trace != NULL)
        d->env.trace(d->env.ctx, send, m);
}

/* Internal status of make_room: the backlog cannot take another core call's output, so the
 * iteration stops stepping (driver.h, "backlog"). Never returned by the driver_* calls. */
#define DRIVER_STALLED 2

/* One pass of offering committed messages: the destinations found full stay full for the rest
 * of the pass, so every later message to them queues behind (per-destination order). */
struct send_pass {
    uint64_t full[2]; /* bit per destination slot: nodes, the client (nodes), broadcast (+1) */
    bool congested;   /* px_node_congested already told in this pass */
};

static uint32_t dest_slot(const struct driver *d, uint16_t to)
{
    uint32_t slot = to == PX_TO_ALL ? d->cfg.nodes + 1u : to;
    PX_ASSERT(slot <= d->cfg.nodes + 1u);
    return slot;
}

/* Offers one committed message: true when the transport took it, false when its destination's
 * outbox is full (the caller keeps it). */
static bool offer(struct driver *d, struct send_pass *p, const struct px_msg *m)
{
    uint32_t slot = dest_slot(d, m->to);
    uint64_t bit = 1ull << (slot % 64u);
    if (p->full[slot / 64u] & bit)
        return false;
    int rc = transport_send(d->t, m);
    if (rc == -ENOBUFS) {
        /* The outbox is full: tell the core to send less, push what the rings take, and try
         * once more. Never wait here: the peers drain only if we keep draining them. */
        if (!p->congested)
            px_node_congested(d->core);
        p->congested = true;
        (void)transport_flush(d->t);
        rc = transport_send(d->t, m);
    }
    if (rc == -ENOBUFS) {
        p->full[slot / 64u] |= bit;
        return false;
    }
    PX_ASSERT(rc == 0);
    trace(d, true, m);
    return true;
}

/* The key of the bytes an item needs ahead of it: a value's command, a push's, a SNAPSHOT's
 * state, a CLIENT_REPLY's result (library pools: when the plane holds one); 0 for none. */
static uint64_t item_key(const struct driver *d, const struct px_msg *m)
{
    if (m->type == PX_MSG_DATA && (m->flags & PAYLOAD_FLAG_PUSH))
        return m->ballot;
    if (d->sm != NULL && !d->cfg.sm_job && m->type == PX_MSG_CLIENT_REPLY) {
        uint64_t key = cmd_result_key(&m->u.client_reply.value);
        return payload_get(&d->pay, key) != NULL ? key : 0;
    }
    return payload_key_of(m);
}

/* Offers a committed message with what must go ahead of it: the rest of its command's DATA
 * stream, from item->off on (payload.h). True when the message itself went; false when a full
 * outbox stopped it or its stream (item->off says how far the stream got). A message whose
 * command this node no longer holds is not sent (stats.cmd_lost) and counts as gone. */
static bool offer_item(struct driver *d, struct send_pass *p, struct driver_out *item)
{
    uint64_t key = item_key(d, &item->m);
    bool push = item->m.type == PX_MSG_DATA;
    if (key != 0) {
        const struct payload_entry *e = payload_get(&d->pay, key);
        if (e == NULL) {
            d->stats.cmd_lost++;
            return true;
        }
        if (item->off == 0 && !push && payload_sent_has(&d->pay, item->m.to, key))
            item->off = payload_stream_len(e->len); /* the destination has it: once per link */
        while (item->off < payload_stream_len(e->len)) {
            struct px_msg c;
            uint32_t off = item->off;
            (void)payload_chunks(e, item->m.from, item->m.to, &off, &c, 1);
            if (!offer(d, p, &c))
                return false;
            item->off = off;
            d->pay.stats.chunks_out++;
            if (item->off == payload_stream_len(e->len))
                payload_sent_add(&d->pay, item->m.to, key);
        }
    }
    if (push)
        return true; /* a stream alone: nothing follows it */
    return offer(d, p, &item->m);
}

/* A message with a command leaves the backlog: its bytes need not stay for it. */
static void backlog_release(struct driver *d, const struct px_msg *m)
{
    uint64_t key = item_key(d, m);
    if (key != 0 && payload_get(&d->pay, key) != NULL)
        payload_unpin(&d->pay, key);
}

/* A peer wants the bytes of key (it dropped a message for want of them): push the stream to it
 * alone, unless a push of it is on its way already or the key is gone here. */
static void take_want(struct driver *d, const struct px_msg *w)
{
    uint64_t key = w->ballot;
    if (key == 0 || w->from >= d->cfg.nodes || payload_get(&d->pay, key) == NULL)
        return;
    payload_sent_forget(&d->pay, w->from, key);
    for (uint32_t i = 0; i < d->pushes_len; i++)
        if (d->pushes[i].m.to == w->from && d->pushes[i].m.ballot == key)
            return;
    if (d->pushes_len == PAYLOAD_WANTS_MAX)
        return; /* full: the peer asks again at the next retransmission */
    struct driver_out *item = &d->pushes[d->pushes_len++];
    memset(item, 0, sizeof(*item));
    item->m.type = PX_MSG_DATA;
    item->m.flags = PAYLOAD_FLAG_PUSH;
    item->m.from = d->cfg.id;
    item->m.to = w->from;
    item->m.ballot = key;
    payload_pin(&d->pay, key);
    d->pay.stats.pushes++;
}

/* The pushes first (what peers wait for), then this batch's WANTs (a WANT the transport
 * refuses is dropped: the peer asks again at the next retransmission). */
static void send_pushes_and_wants(struct driver *d, struct send_pass *p)
{
    uint32_t kept = 0;
    for (uint32_t i = 0; i < d->pushes_len; i++) {
        if (offer_item(d, p, &d->pushes[i]))
            backlog_release(d, &d->pushes[i].m);
        else
            d->pushes[kept++] = d->pushes[i];
    }
    d->pushes_len = kept;
    for (uint32_t i = 0; i < d->pay.wants_len; i++)
        if (offer(d, p, &d->pay.wants[i]))
            d->pay.stats.wants_out++;
    d->pay.wants_len = 0;
}

static bool sent_one(struct driver *d, struct driver_flush *f)
{
    f->sent++;
    return fp_hit(d, DRIVER_FP_AFTER_SEND, f);
}

/* ---- library pools (cfg.sm) ----
 * A learner runs the pool's state machine (node/sm.h) beside the core. After every core call
 * (sm_after) it is fed the call's applied entries at once -- process memory may run ahead of
 * durability: a crash loses both -- and a snapshot the call installed replaces its state (the
 * bytes came ahead of the SNAPSHOT message, under the key that message named). SNAPSHOT messages
 * the call made get the state machine's snapshot in the payload plane, streamed ahead of them
 * like a command (payload_value_of); one the state machine cannot serve (not at its instance,
 * or this node runs none) is dropped with its parts, and the learner asks again. At a flush
 * point whose batch installed a snapshot, or truncates the log past the last durable snapshot
 * once the log since it is long enough (cfg.sm_snap_*: a snapshot costs the whole state), a
 * snapshot at the applied index goes into the batch's transaction. A TRUNCATE above the last
 * durable snapshot is clamped to it while the state machine applied more than that snapshot
 * holds: the store keeps the log from that snapshot up to the applied index, which a restart
 * replays (sm_flush_snapshot). A CLIENT_REPLY is sent with its
 * result ahead of it (sm_attach_result) once the state machine applied its instance: until
 * then it is held (DRIVER_HELD_MAX). */

/* Puts the result of the request m answers into the plane, so that offer_item streams it to
 * the client ahead of m (cmd_result_key). No result cached: m goes alone (result_lost). */
static void sm_attach_result(struct driver *d, const struct px_msg *m)
{
    const struct sm_result *res = sm_result(d->sm, cmd_key(&m->u.client_reply.value));
    if (res == NULL)
        return;
    uint64_t key = cmd_result_key(&m->u.client_reply.value);
    if (payload_get(&d->pay, key) == NULL) {
        sm_result_bytes(res, d->sm_result_buf);
        if (payload_put(&d->pay, key, d->sm_result_buf, 4u + res->len) != 0)
            return; /* no room: the reply goes without it */
    }
    payload_sent_forget(&d->pay, m->to, key); /* the client keeps a result until its reply */
}

/* A library pool whose leader is no learner: its CLIENT_REPLY goes without a result, so the
 * lowest learner (cfg.learners_mask) sends one of its own for each command it applied, with
 * the result ahead of it (send_held). The client completes on whichever reply carries the
 * result, and waits a little for it after a reply without one from a node that is no learner
 * (src/lib/pool.c). A full hold list, or a leader unknown here: no report (result_lost). */
static void report_result(struct driver *d, const struct px_applied *a)
{
    uint64_t mask = d->cfg.learners_mask;
    if (mask == 0 || (unsigned)__builtin_ctzll(mask) != d->cfg.id)
        return; /* not the reporter */
    uint16_t leader = px_node_leader(d->core);
    if (leader == PX_NODE_NONE || leader >= 64 || (mask >> leader) & 1u ||
        d->held_len >= DRIVER_HELD_MAX)
        return;
    struct driver_out item = {.off = 0};
    item.m.type = PX_MSG_CLIENT_REPLY;
    item.m.from = d->cfg.id;
    item.m.to = d->cfg.nodes; /* the client's endpoint */
    item.m.instance = a->instance;
    item.m.u.client_reply.value = a->value;
    d->held[d->held_len++] = item;
}

/* Offers the held CLIENT_REPLYs whose instance the state machine applied (their results
 * first). reserved: 0 held, 1 released and pinning its result, 2 released without one. True
 * when the failpoint hook said the process dies. */
static bool send_held(struct driver *d, struct send_pass *p, struct driver_flush *f)
{
    uint32_t kept = 0;
    for (uint32_t i = 0; i < d->held_len; i++) {
        struct driver_out *it = &d->held[i];
        if (it->reserved == 0 && it->m.instance > d->sm->index) {
            d->held[kept++] = *it;
            continue;
        }
        if (it->reserved == 0)
            sm_attach_result(d, &it->m);
        if (!offer_item(d, p, it)) {
            if (it->reserved == 0) {
                uint64_t key = item_key(d, &it->m);
                if (key != 0)
                    payload_pin(&d->pay, key);
                it->reserved = key != 0 ? 1 : 2;
            }
            d->held[kept++] = *it;
            continue;
        }
        if (it->reserved == 1)
            payload_unpin(&d->pay, cmd_result_key(&it->m.u.client_reply.value));
        if (sent_one(d, f)) {
            d->held_len = kept; /* what follows is lost with the process anyway */
            return true;
        }
    }
    d->held_len = kept;
    return false;
}

/* The snapshot installed at X: the state machine takes the bytes the SNAPSHOT named. */
static int sm_install(struct driver *d, px_inst_t x)
{
    const struct payload_entry *e =
        d->sm_snap_inst == x ? payload_get(&d->pay, d->sm_snap_key) : NULL;
    if (e == NULL) {
        snprintf(d->sm->err, sizeof(d->sm->err), "the state machine's snapshot at %llu is not here",
                 (unsigned long long)x);
        return -ENODATA;
    }
    int rc = sm_restore(d->sm, x, e->bytes, e->len);
    payload_drop(&d->pay, d->sm_snap_key);
    return rc == -EBADMSG ? -ENODATA : rc;
}

/* CMD_KEY_SNAPSHOT | the instance's bits 32..55 at 38..61 | node << 32 | its low 32 bits. */
static uint64_t sm_snapshot_key(uint16_t node, px_inst_t inst)
{
    return CMD_KEY_SNAPSHOT | ((inst >> 32) & 0xffffffull) << 38 | (uint64_t)node << 32 |
           (uint32_t)inst;
}

/* A SNAPSHOT the core made: 0 when the state machine's snapshot now goes ahead of it, 1 when it
 * must be dropped, or a callback's failure. */
static int sm_snapshot_attach(struct driver *d, struct px_msg *m)
{
    if (d->sm == NULL || d->sm->index != m->instance)
        return 1;
    /* Sent as one stream (at most CMD_BYTES_MAX), so gathered whole first, up to that. */
    int rc = sm_snapshot_max(d->sm, CMD_BYTES_MAX);
    if (rc == -ENOMEM || rc == -EFBIG) {
        sm_buf_trim(d->sm);
        return 1;
    }
    if (rc != 0)
        return rc;
    /* The key names the state: this node's at this instance (the same bytes in any incarnation,
     * the state machine being deterministic), so a key a peer still holds from an earlier
     * incarnation of this node never names other bytes. */
    uint64_t key = sm_snapshot_key(d->cfg.id, m->instance);
    if (d->sm_snap_out != key)
        payload_drop(&d->pay, d->sm_snap_out); /* the previous one, unless a stream needs it */
    int prc = payload_put(&d->pay, key, d->sm->buf, (uint32_t)d->sm->buf_len);
    sm_buf_trim(d->sm); /* the plane has its copy */
    if (prc != 0 && prc != -EEXIST)
        return 1;
    d->sm_snap_next++;
    d->sm_snap_out = key;
    m->u.snapshot.reserved_value =
        (struct px_value){.word = key, .client_id = PX_VALUE_PAYLOAD, .seq = 0};
    return 0;
}

/* The ready's SNAPSHOT messages made since the last look: each gets its bytes or is dropped,
 * with the SNAPSHOT_PARTs that follow it. */
static int sm_snapshots_out(struct driver *d)
{
    struct px_ready *r = d->ready;
    if (r->snapshots_len == d->sm_snaps_seen) {
        d->sm_msgs_seen = r->msgs_len; /* none new: nothing to look at */
        return 0;
    }
    d->sm_snaps_seen = r->snapshots_len;
    uint32_t w = d->sm_msgs_seen;
    bool dropping = false;
    for (uint32_t i = d->sm_msgs_seen; i < r->msgs_len; i++) {
        struct px_msg *m = &r->msgs[i];
        if (m->type == PX_MSG_SNAPSHOT) {
            int rc = sm_snapshot_attach(d, m);
            if (rc < 0)
                return rc;
            dropping = rc == 1;
            d->stats.sm_snapshots_dropped += dropping;
        } else if (m->type != PX_MSG_SNAPSHOT_PART) {
            dropping = false;
        }
        if (dropping)
            continue;
        if (w != i)
            r->msgs[w] = *m;
        w++;
    }
    r->msgs_len = w;
    d->sm_msgs_seen = w;
    return 0;
}

/* After every core call of a library pool: feed what it applied, take what it installed, serve
 * the snapshots it sends. 0, -ENODATA (a command's or a snapshot's bytes are gone: restart),
 * SM_FAILED (a callback failed: restart) or -ENOMEM. */
static int sm_after(struct driver *d)
{
    if (d->cfg.sm == NULL)
        return 0;
    struct px_ready *r = d->ready;
    if (r->snapshot == d->sm_install_seen && r->apply_len == d->sm_fed &&
        r->snapshots_len == d->sm_snaps_seen) {
        d->sm_msgs_seen = r->msgs_len; /* the call applied, installed and served nothing */
        return 0;
    }
    int rc = 0;
    if (d->sm != NULL && r->snapshot != d->sm_install_seen) {
        d->sm_install_seen = r->snapshot;
        if (r->snapshot > d->sm->index)
            rc = sm_install(d, r->snapshot);
    }
    for (; d->sm != NULL && rc == 0 && d->sm_fed < r->apply_len; d->sm_fed++) {
        const struct px_applied *a = &r->apply[d->sm_fed];
        const struct payload_entry *e =
            cmd_has_payload(&a->value) ? payload_get(&d->pay, cmd_key(&a->value)) : NULL;
        uint64_t applied_before = d->sm->applied;
        rc =
            sm_apply(d->sm, a, e != NULL ? e->bytes : NULL, e != NULL ? e->len : 0, !d->cfg.sm_job);
        if (rc == 0 && d->sm->applied > applied_before && !d->cfg.sm_job)
            report_result(d, a);
    }
    if (rc == 0 && d->sm != NULL && d->sm->index != px_node_history(d->core)->applied) {
        snprintf(d->sm->err, sizeof(d->sm->err),
                 "the state machine stands at %llu, the core applied %llu",
                 (unsigned long long)d->sm->index,
                 (unsigned long long)px_node_history(d->core)->applied);
        rc = -ENODATA;
    }
    return rc != 0 ? rc : sm_snapshots_out(d);
}

/* The batch's TRUNCATEs as the store gets them: clamped to `upto`, and gone when that leaves
 * one at or below what the store has dropped already (it would change nothing, and a batch of
 * nothing else is no batch). */
static void sm_pass_truncates(struct driver *d, px_inst_t upto)
{
    struct px_ready *r = d->ready;
    uint32_t w = 0;
    for (uint32_t i = 0; i < r->recs_len; i++) {
        struct px_rec rec = r->recs[i];
        if (rec.type == PX_REC_TRUNCATE && rec.instance > upto)
            rec.instance = upto;
        if (rec.type == PX_REC_TRUNCATE && rec.instance <= d->sm_trunc_stored)
            continue;
        if (rec.type == PX_REC_TRUNCATE)
            d->sm_trunc_stored = rec.instance;
        r->recs[w++] = rec;
    }
    r->recs_len = w;
}

/* At a flush point of a library pool: *with gets whether the batch takes a snapshot (its
 * header into *snap; persist streams the state, sm_snapshot_into): one installed, or a
 * truncation past the last durable snapshot once that is due (driver_config.sm_snap_*). 0. */
static int sm_flush_snapshot(struct driver *d, struct store_sm_snap *snap, bool *with)
{
    struct px_ready *r = d->ready;
    struct sm_node *n = d->sm;
    px_inst_t t = 0;
    for (uint32_t i = 0; i < r->recs_len; i++)
        if (r->recs[i].type == PX_REC_TRUNCATE && r->recs[i].instance > t)
            t = r->recs[i].instance;
    *with = false;
    if (t > d->truncate_asked)
        d->truncate_asked = t;
    /* The store's log lacks entries above the snapshot that the state machine applied: only a
     * snapshot now keeps the applied state durable. */
    bool gap = d->sm_trunc_stored > n->persisted && n->index > n->persisted;
    if (t <= n->persisted && r->snapshot == 0 && !gap) {
        sm_pass_truncates(d, UINT64_MAX);
        return 0;
    }
    uint64_t bytes_due =
        d->cfg.sm_snap_bytes > n->persisted_len ? d->cfg.sm_snap_bytes : n->persisted_len;
    /* t > index: the core let go of entries it did not apply (it lags and waits for a peer's
     * snapshot); a snapshot of what it applied lets the store follow, so that its log does not
     * fill while the core waits (the shm store holds PX_LOG_MAX instances). */
    bool due = r->snapshot != 0 || gap || (t > n->index && n->index > n->persisted) ||
               n->index - n->persisted >= d->cfg.sm_snap_instances || n->log_bytes >= bytes_due;
    px_inst_t a = due ? n->index : n->persisted;
    /* The store keeps the log from the snapshot on, up to what the state machine applied: a
     * restart replays that. Entries above it the core let go (it truncates past its own applied
     * index when it lags and waits for a peer's snapshot), and a restart would not replay them
     * either: the log it loads has a gap, so its core asks for a snapshot again. */
    sm_pass_truncates(d, a < n->index ? a : UINT64_MAX);
    if (!due)
        return 0;
    /* The state itself is streamed into the batch's transaction (sm_snapshot_into). */
    *snap = (struct store_sm_snap){.index = a,
                                   .cmd_digest = d->sm->cmd_digest,
                                   .applied = d->sm->applied,
                                   .fib = *px_node_history(d->core)};
    *with = true;
    return 0;
}

static int sm_store_sink(void *ctx, const void *chunk, size_t len)
{
    return store_sm_write(ctx, chunk, len);
}

/* persist_ready_sm's writer: the state machine's snapshot straight into the store, a chunk at a
 * time as its callback writes them (sqlite: rows of STORE_SM_PART_BYTES). */
static int sm_snapshot_into(void *ctx, struct store *s)
{
    struct driver *d = ctx;
    uint64_t len = 0;
    int rc = sm_snapshot_to(d->sm, sm_store_sink, s, &len);
    d->sm_snap_len = len;
    return rc;
}

/* Hands the committed messages to the transport: the backlog first (older messages keep their
 * place), then the ready's, in the core's order. What a full outbox refuses joins the backlog;
 * call_fits guarantees it has room. */
static int send_all(struct driver *d, struct driver_flush *f)
{
    struct send_pass p = {.full = {0, 0}, .congested = false};
    send_pushes_and_wants(d, &p);
    uint32_t kept = 0;
    for (uint32_t i = 0; i < d->backlog_len; i++) {
        if (!offer_item(d, &p, &d->backlog[i])) {
            d->backlog[kept++] = d->backlog[i];
            continue;
        }
        backlog_release(d, &d->backlog[i].m);
        if (sent_one(d, f)) {
            d->backlog_len = kept; /* what follows i is lost with the process anyway */
            return DRIVER_DIED;
        }
    }
    d->backlog_len = kept;
    if (d->held_len > 0 && send_held(d, &p, f))
        return DRIVER_DIED;
    const struct px_ready *r = d->ready;
    for (uint32_t i = 0; i < r->msgs_len; i++) {
        struct driver_out item = {.m = r->msgs[i], .off = 0};
        if (d->sm != NULL && !d->cfg.sm_job && item.m.type == PX_MSG_CLIENT_REPLY) {
            if (item.m.instance > d->sm->index && d->held_len < DRIVER_HELD_MAX) {
                d->held[d->held_len++] = item; /* not applied here yet: its result waits */
                continue;
            }
            d->stats.sm_replies_unheld += item.m.instance > d->sm->index;
            sm_attach_result(d, &item.m);
        }
        if (offer_item(d, &p, &item)) {
            if (sent_one(d, f))
                return DRIVER_DIED;
            continue;
        }
        PX_ASSERT(d->backlog_len < DRIVER_BACKLOG_MAX);
        uint64_t key = item_key(d, &item.m);
        if (key != 0)
            payload_pin(&d->pay, key); /* offer_item found it held */
        d->backlog[d->backlog_len++] = item;
        d->stats.backlogged++;
    }
    return 0;
}

/* The ready's applied entries that carry a command beside the value, to env.applied_cmd. */
static void applied_cmds(struct driver *d)
{
    if (d->env.applied_cmd == NULL)
        return;
    const struct px_ready *r = d->ready;
    for (uint32_t i = 0; i < r->apply_len; i++) {
        const struct px_applied *a = &r->apply[i];
        if (!cmd_has_payload(&a->value))
            continue;
        const struct payload_entry *e = payload_get(&d->pay, cmd_key(&a->value));
        d->env.applied_cmd(d->env.ctx, a, e != NULL ? e->bytes : NULL, e != NULL ? e->len : 0);
    }
}

/* A command this node sends at an instance (its own ACCEPT, a PROMISE_ENTRY, a CATCHUP_ENTRY)
 * is kept at least until that instance is truncated: the core may send it again (a resent
 * ACCEPT, the next catch-up). Persisting records notes only the instances this node stores; a
 * leader that is no acceptor stores none of its proposals, so a command it had noted at a lower
 * instance (its request accepted there before, then resubmitted and proposed anew) went with
 * that instance's truncation while the new ACCEPT was still in flight: every resend went
 * without it (stats.cmd_lost) and the instance was never decided (sim seed 2011). */
static void note_sent_cmds(struct driver *d)
{
    const struct px_ready *r = d->ready;
    for (uint32_t i = 0; i < r->msgs_len; i++) {
        uint64_t key = payload_key_of(&r->msgs[i]);
        if (key != 0 && r->msgs[i].type != PX_MSG_CLIENT && r->msgs[i].type != PX_MSG_SNAPSHOT)
            payload_note(&d->pay, key, r->msgs[i].instance);
    }
}

/* The flush point: persists the ready's records and the applied state in one transaction, then
 * hands its messages to the transport. The order is the safety rule of the whole system:
 * nothing is sent before the record behind it is durable. */
static int flush_point(struct driver *d)
{
    struct px_ready *r = d->ready;
    const struct px_history *fib = px_node_history(d->core);
    bool fib_changed = fib->applied != d->applied_persisted;
    struct store_sm_snap snap;
    bool with_snap = false;
    if (d->sm != NULL) {
        int rc = sm_flush_snapshot(d, &snap, &with_snap);
        if (rc != 0)
            return rc;
    }
    struct driver_flush f = {
        .persists = r->recs_len > 0 || fib_changed || with_snap,
        .msgs = d->backlog_len + r->msgs_len,
    };
    if (fp_hit(d, DRIVER_FP_BEFORE_PERSIST, &f))
        return DRIVER_DIED;
    d->batch_cmd_bytes = 0;
    if (f.persists) {
        int rc = with_snap ? persist_ready_sm(d->store, r, fib_changed ? fib : NULL, &d->pay, &snap,
                                              sm_snapshot_into, d)
                           : persist_ready(d->store, r, fib_changed ? fib : NULL, &d->pay);
        if (rc != 0)
            return rc;
        if (with_snap) {
            d->sm->persisted = snap.index;
            d->sm->persisted_len = d->sm_snap_len + SM_SNAP_HEADER_BYTES;
            d->sm->log_bytes = 0;
        }
        d->applied_persisted = fib->applied;
        d->stats.batches++;
        d->stats.records += r->recs_len;
    }
    applied_cmds(d);
    note_sent_cmds(d);
    if (d->env.committed != NULL)
        d->env.committed(d->env.ctx, r);
    if (fp_hit(d, DRIVER_FP_AFTER_PERSIST, &f))
        return DRIVER_DIED;
    int rc = send_all(d, &f);
    if (rc != 0)
        return rc;
    /* Only now may truncated commands go: a message of this batch may still have needed one. */
    for (uint32_t i = 0; i < r->recs_len; i++)
        if (r->recs[i].type == PX_REC_TRUNCATE && r->recs[i].instance > d->truncate_seen)
            d->truncate_seen = r->recs[i].instance;
    if (d->truncate_asked > d->truncate_seen)
        d->truncate_seen = d->truncate_asked; /* the core's, not the store's clamped one */
    payload_truncate(&d->pay, d->truncate_seen);
    px_ready_clear(r);
    d->sm_fed = d->sm_msgs_seen = d->sm_snaps_seen = 0;
    d->sm_install_seen = 0;
    return 0;
}

/* Backlog room a core call leaves for one more that cannot wait (driver_set_roles). */
#define DRIVER_RESERVE PX_STEP_OUTPUT_MAX

/* Room for one more core call: PX_STEP_OUTPUT_MAX free slots in each array of the ready (px.h),
 * and room in the backlog for the ready's messages plus the call's plus `reserve`, should
 * every outbox refuse them. */
static bool call_fits_with(const struct driver *d, uint32_t reserve)
{
    const struct px_ready *r = d->ready;
    return r->recs_len + PX_STEP_OUTPUT_MAX <= PX_READY_RECS_MAX &&
           r->msgs_len + PX_STEP_OUTPUT_MAX <= PX_READY_MSGS_MAX &&
           r->apply_len + PX_STEP_OUTPUT_MAX <= PX_READY_APPLY_MAX &&
           d->backlog_len + r->msgs_len + PX_STEP_OUTPUT_MAX + reserve <= DRIVER_BACKLOG_MAX;
}

static bool call_fits(const struct driver *d)
{
    return call_fits_with(d, DRIVER_RESERVE);
}

/* Before every core call: runs the flush point early when there is no room. 0 (the call may
 * run), DRIVER_STALLED (the backlog is too full even after it), DRIVER_DIED or a store code. */
static int make_room(struct driver *d)
{
    if (call_fits(d))
        return 0;
    int rc = flush_point(d);
    if (rc != 0)
        return rc;
    PX_ASSERT(d->ready->msgs_len == 0 && d->ready->recs_len == 0);
    return call_fits(d) ? 0 : DRIVER_STALLED;
}

/* A peer went down: what waits for it in items[0..*len) (the backlog, the pushes) will never be
 * read. Returns how many were dropped. */
static uint32_t drop_items_to(struct driver *d, struct driver_out *items, uint32_t *len,
                              uint16_t peer)
{
    uint32_t kept = 0, dropped = 0;
    for (uint32_t i = 0; i < *len; i++) {
        if (items[i].m.to == peer) {
            dropped++;
            backlog_release(d, &items[i].m);
        } else {
            items[kept++] = items[i];
        }
    }
    *len = kept;
    return dropped;
}

/* Tells the transport, the backlog and the core that peer p went down or came back. */
static int tell_peer(struct driver *d, uint16_t p, bool up)
{
    int rc = make_room(d);
    if (rc != 0)
        return rc;
    if (d->env.peer != NULL)
        d->env.peer(d->env.ctx, p, up);
    if (!up) {
        d->t->ops->peer_down(d->t, p);
        d->stats.dropped += drop_items_to(d, d->backlog, &d->backlog_len, p);
        (void)drop_items_to(d, d->pushes, &d->pushes_len, p); /* streams alone: no message */
        payload_peer_down(&d->pay, p);
    }
    px_node_peer_status(d->core, p, up, d->ready);
    return sm_after(d);
}

/* Peers that died or came back since the last look (the failure detector is given). */
static int check_membership(struct driver *d)
{
    struct driver_view v;
    d->env.membership(d->env.ctx, &v);
    /* A peer replaced by a new process between two looks is up in both views, yet the old
     * process died: the core must hear it go down (its leader may be gone), then come back.
     * Kept even when the epoch looks unchanged (the restart may show before its epoch bump). */
    d->restarted_seen |= v.restarted_mask & d->alive_seen;
    if (v.epoch == d->epoch_seen && d->restarted_seen == 0)
        return 0;
    for (uint16_t p = 0; p < d->cfg.nodes; p++) {
        uint64_t bit = 1ull << p;
        if (p == d->cfg.id)
            continue;
        if (d->restarted_seen & bit) {
            int rc = tell_peer(d, p, false);
            if (rc != 0)
                return rc; /* restarted_seen keeps it for the next look */
            d->restarted_seen &= ~bit;
            d->alive_seen &= ~bit;
        }
        if (!((v.alive_mask ^ d->alive_seen) & bit))
            continue;
        int rc = tell_peer(d, p, (v.alive_mask & bit) != 0);
        if (rc != 0)
            return rc; /* alive_seen keeps the peers already told; the rest come next time */
        d->alive_seen ^= bit;
    }
    d->alive_seen = v.alive_mask;
    d->epoch_seen = v.epoch;
    return 0;
}

/* Client values handed to this node directly, until the core's queue pushes back. */
static int take_submits(struct driver *d)
{
    struct px_value v;
    if (d->env.submit_next == NULL)
        return 0;
    while (d->env.submit_next(d->env.ctx, &v)) {
        int rc = make_room(d);
        if (rc != 0)
            return rc;
        if (cmd_has_payload(&v)) {
            uint32_t len = 0;
            const uint8_t *cmd =
                d->env.submit_cmd != NULL ? d->env.submit_cmd(d->env.ctx, &len) : NULL;
            int prc = cmd != NULL ? payload_put(&d->pay, cmd_key(&v), cmd, len) : -ENOSPC;
            if (prc != 0 && prc != -EEXIST)
                break; /* no room for its bytes: it waits like a value the queue refused */
            payload_touch(&d->pay, cmd_key(&v));
        }
        int src = px_node_submit(d->core, &v, d->ready);
        rc = sm_after(d);
        if (rc != 0)
            return rc;
        if (src == -EAGAIN)
            break; /* backpressure: the value stays with the caller for a later iteration */
        d->env.submit_taken(d->env.ctx);
    }
    return 0;
}

/* A catch-up reply that lost an entry for want of its command's bytes (dropped, a WANT on its
 * way) cannot fill the learner's gap, yet its last entry (PX_FLAG_LAST) would make the learner
 * ask again at once: the next reply loses the same entry, and every duplicated request starts
 * one more such chain, without end while the bytes are missing. So the reply's last entry
 * reaches the core without the flag, and the learner asks again on its retry timer, by when
 * the push has had time to arrive. */
static void catchup_torn(struct driver *d, struct px_msg *m, bool dropped)
{
    if (m->type != PX_MSG_CATCHUP_ENTRY || m->from >= d->cfg.nodes)
        return;
    uint64_t bit = 1ull << m->from;
    bool last = (m->flags & PX_FLAG_LAST) != 0;
    if (dropped && !last)
        d->catchup_torn |= bit;
    else if (last && (d->catchup_torn & bit)) {
        d->catchup_torn &= ~bit;
        if (!dropped)
            m->flags &= (uint8_t)~PX_FLAG_LAST;
    }
}

/* One read of up to `room` messages into the batch: DATA goes to the payload plane, a message
 * whose command did not arrive whole is lost, the rest joins the batch -- or, with `drop`, is
 * dropped (stats.dropped_in). Returns how many were read. */
static uint32_t read_some(struct driver *d, uint32_t room, bool drop)
{
    uint32_t n = room > 0 ? transport_recv(d->t, d->in + d->in_len, room) : 0;
    PX_ASSERT(n <= room);
    uint32_t kept = d->in_len;
    for (uint32_t i = d->in_len; i < d->in_len + n; i++) {
        struct px_msg *m = &d->in[i];
        if (payload_rx_data(&d->pay, m)) {
            if (m->flags & PAYLOAD_FLAG_WANT)
                take_want(d, m);
            continue;
        }
        if (drop || !payload_rx_admit(&d->pay, m)) {
            d->stats.dropped_in += drop;
            catchup_torn(d, m, true);
            continue;
        }
        if (d->cfg.sm != NULL && m->type == PX_MSG_SNAPSHOT && payload_value_of(m) == NULL) {
            d->stats.sm_snapshots_dropped++; /* no state machine's bytes: cannot be installed */
            continue;
        }
        catchup_torn(d, m, false);
        uint64_t key = payload_key_of(m);
        if (key != 0 && m->type == PX_MSG_CLIENT)
            payload_touch(&d->pay, key); /* it may be proposed again */
        else if (key != 0 && m->type != PX_MSG_SNAPSHOT)
            payload_note(&d->pay, key, m->instance); /* its instance keeps it */
        if (kept != i)
            d->in[kept] = *m;
        kept++;
    }
    d->in_len = kept;
    return n;
}

/* Reads what the batch has room for, even when this iteration cannot step it: reading frees
 * the senders' rings, which is what lets two nodes blocked on each other drain.
 * A stalled driver (its backlog had no room for a core call) reads on: into DRIVER_SPILL_MAX
 * more slots, then, with those full too, it drops what is not DATA (stats.dropped_in: lost as
 * if the network had lost it; the protocol sends it again). DATA is consumed as it is read, so
 * a peer's stream towards a stalled node always drains. Without this, nodes streaming long
 * commands to each other through small rings, each stalled with a batch full of messages it
 * could not step yet, read nothing and never drained each other: a long command's stream holds
 * far more than a ring and an outbox, and whatever the driver sends later to that destination
 * waits behind it in the backlog, which the backlog's bound (driver.h) does not foresee (sim
 * seed 534: 8-slot rings, all five nodes stalled for good, backlogs of about 1,560). */
static void drain_input(struct driver *d)
{
    if (d->in_head > 0) {
        memmove(d->in, d->in + d->in_head, (d->in_len - d->in_head) * sizeof(*d->in));
        d->in_len -= d->in_head;
        d->in_head = 0;
    }
    uint32_t room = d->cfg.batch_max > d->in_len ? d->cfg.batch_max - d->in_len : 0;
    uint32_t n = read_some(d, room, false);
    d->received = n;
    if (!d->stalled)
        return;
    uint32_t cap = d->cfg.batch_max + DRIVER_SPILL_MAX;
    for (uint32_t k = 0; k < DRIVER_SPILL_READS_MAX && n == room; k++) {
        bool drop = d->in_len >= cap;
        room = drop ? DRIVER_SPILL_MAX : cap - d->in_len;
        n = read_some(d, room, drop);
        d->received += n;
    }
}

static int step_input(struct driver *d)
{
    while (d->in_head < d->in_len) {
        int rc = make_room(d);
        if (rc != 0)
            return rc;
        const struct px_msg *m = &d->in[d->in_head];
        uint64_t key = payload_key_of(m);
        if (key != 0) {
            if (d->batch_cmd_bytes >= DRIVER_BATCH_CMD_BYTES) {
                rc = flush_point(d); /* the batch holds enough bytes: commit it first */
                if (rc != 0)
                    return rc;
            }
            const struct payload_entry *e = payload_get(&d->pay, key);
            d->batch_cmd_bytes += e != NULL ? e->len : 0;
            if (m->type == PX_MSG_SNAPSHOT) {
                d->sm_snap_inst = m->instance; /* its install takes these bytes */
                d->sm_snap_key = key;
            }
        }
        d->in_head++;
        trace(d, false, m);
        px_node_step(d->core, m, d->ready);
        rc = sm_after(d);
        if (rc != 0)
            return rc;
    }
    d->in_head = d->in_len = 0;
    return 0;
}

static int tick(struct driver *d)
{
    uint64_t now = d->env.now_ns(d->env.ctx);
    uint32_t ticks = 0;
    while (now >= d->next_tick && ticks < DRIVER_TICKS_BURST_MAX) {
        int rc = make_room(d);
        if (rc != 0)
            return rc;
        px_node_tick(d->core, d->ready);
        rc = sm_after(d);
        if (rc != 0)
            return rc;
        d->next_tick += d->cfg.tick_ns;
        ticks++;
    }
    if (now >= d->next_tick)
        d->next_tick = now + d->cfg.tick_ns; /* slept long: skip the backlog of ticks */
    return 0;
}

/* px_node_flush (what the core coalesced over the batch), then the flush point. Stalled, the
 * coalesced output stays in the core for a later flush (px_acceptor_flush, px_proposer_flush). */
static int finish(struct driver *d)
{
    int rc = make_room(d);
    if (rc == 0) {
        px_node_flush(d->core, d->ready);
        rc = sm_after(d);
        if (rc != 0)
            return rc;
    } else if (rc != DRIVER_STALLED) {
        return rc;
    }
    return flush_point(d);
}

/* The payload plane's keep hook: a command whose request waits in the core's queue stays, though
 * the instance it was recorded at is truncated. A client that resubmits a request long decided
 * (its reply was lost) hands the core a value it may propose again at a new instance; the
 * table held its bytes under the old instance, and once that was truncated the new ACCEPTED
 * record had no bytes to persist (persist_ready: -ENODATA, the node exits; sim seed 474). */
static bool keep_queued(void *ctx, uint64_t key)
{
    const struct driver *d = ctx;
    const struct px_value v = {.client_id = (uint32_t)(key >> PX_REQUEST_CLIENT_SHIFT),
                               .seq = (uint32_t)key};
    return px_node_queued(d->core, &v);
}

int driver_init(struct driver *d, const struct driver_config *cfg, const struct driver_env *env,
                struct px_node *core, struct transport *t, struct store *store)
{
    PX_ASSERT(cfg->id < cfg->nodes);
    PX_ASSERT(cfg->nodes <= PX_NODES_MAX);
    PX_ASSERT(cfg->batch_max >= 1 && cfg->batch_max <= DRIVER_BATCH_MAX);
    PX_ASSERT(cfg->tick_ns > 0);
    PX_ASSERT(env->now_ns != NULL && env->membership != NULL);
    PX_ASSERT((env->submit_next == NULL) == (env->submit_taken == NULL));
    PX_ASSERT(core != NULL && t != NULL && store != NULL);
    memset(d, 0, sizeof(*d));
    d->cfg = *cfg;
    d->env = *env;
    d->core = core;
    d->t = t;
    d->store = store;
    d->ready = malloc(sizeof(*d->ready));
    d->in = malloc((cfg->batch_max + 2u * DRIVER_SPILL_MAX) * sizeof(*d->in));
    d->backlog = malloc(DRIVER_BACKLOG_MAX * sizeof(*d->backlog));
    uint32_t cmd_max = cfg->cmd_max != 0 ? cfg->cmd_max : CMD_INLINE_BYTES;
    uint64_t budget = cfg->cmd_budget != 0 ? cfg->cmd_budget : PAYLOAD_BUDGET_DEFAULT;
    if (budget < cmd_max)
        budget = cmd_max;
    int prc = payload_init(&d->pay, cfg->id, cfg->nodes, cmd_max, budget);
    if (d->ready == NULL || d->in == NULL || d->backlog == NULL || prc != 0) {
        driver_fini(d);
        return -ENOMEM;
    }
    d->pay.keep = keep_queued;
    d->pay.keep_ctx = d;
    px_ready_clear(d->ready);
    if (cfg->sm != NULL && cfg->learner) {
        d->sm = malloc(sizeof(*d->sm));
        d->held = malloc(DRIVER_HELD_MAX * sizeof(*d->held));
        d->sm_result_buf = malloc(4u + PXS_RESULT_MAX);
        if (d->sm != NULL && sm_init(d->sm, cfg->sm, cfg->id) != 0) {
            free(d->sm);
            d->sm = NULL;
        }
        if (d->sm != NULL)
            d->sm->word_commands = cfg->sm_job;
        if (d->sm == NULL || d->held == NULL || d->sm_result_buf == NULL) {
            driver_fini(d);
            return -ENOMEM;
        }
    }
    return 0;
}

/* A record loaded from the store, and the bytes of its command when it has them beside it. */
static void load_rec(void *ctx, const struct px_rec *r, const void *cmd, uint32_t len)
{
    struct driver *d = ctx;
    /* A library pool's store keeps the log from its last snapshot on, maybe far more than the
     * core's ring: the core takes every entry <= instance - PX_LOG_MAX as chosen and slides
     * past it (px_node_load_rec), so their bytes go from the plane as the load moves on. */
    if (r->instance > PX_LOG_MAX && r->instance - PX_LOG_MAX >= d->load_trunc + 256) {
        d->load_trunc = r->instance - PX_LOG_MAX;
        payload_truncate(&d->pay, d->load_trunc);
    }
    if (cmd != NULL && cmd_has_payload(&r->value)) {
        uint64_t key = cmd_key(&r->value);
        if (payload_put(&d->pay, key, cmd, len) == 0 || payload_get(&d->pay, key) != NULL)
            payload_note(&d->pay, key, r->instance);
    }
    if (r->type == PX_REC_TRUNCATE && r->instance > d->truncate_seen)
        d->truncate_seen = d->sm_trunc_stored = r->instance;
    px_node_load_rec(d->core, r);
}

static long sm_store_source(void *ctx, void *buf, size_t cap)
{
    return store_sm_read(ctx, buf, cap);
}

static void sm_replay_each(void *ctx, const struct px_rec *r, const void *cmd, uint32_t len)
{
    sm_replay_rec(ctx, r, cmd, len);
}

/* A learner of a library pool: starts its state machine, restores the durable snapshot and
 * replays the log above it up to the core's applied index (node/sm.h). 0, SM_FAILED, -EBADMSG
 * (the store cannot give the state back) or a store code; sm->err says why. */
static int sm_recover(struct driver *d)
{
    struct sm_node *sm = d->sm;
    int rc = sm_start(sm);
    struct store_sm_snap h;
    uint64_t len = 0;
    bool found = false;
    if (rc == 0) {
        rc = store_sm_open(d->store, &h, &len, &found);
        if (rc != 0)
            snprintf(sm->err, sizeof(sm->err), "%s", store_errmsg(d->store));
    }
    struct sm_replay rp = {.n = sm, .upto = px_node_history(d->core)->applied};
    if (rc == 0 && found) {
        /* Streamed from the store (checked whole first): one part in memory, not the state. */
        rc = sm_restore_from(sm, h.index, h.cmd_digest, h.applied, sm_store_source, d->store, len);
        if (rc != 0 && rc != SM_FAILED && store_errmsg(d->store)[0] != '\0')
            snprintf(sm->err, sizeof(sm->err), "%s", store_errmsg(d->store));
        store_sm_close(d->store);
        rp.fib = h.fib;
        sm->persisted = h.index;
        sm->persisted_len = len + SM_SNAP_HEADER_BYTES;
    } else {
        px_history_init(&rp.fib);
    }
    if (rc == 0 && rp.upto > sm->index) {
        struct px_durable dur;
        rc = store_load(d->store, &dur, sm_replay_each, &rp);
        if (rc != 0)
            snprintf(sm->err, sizeof(sm->err), "%s", store_errmsg(d->store));
        else
            rc = sm_replay_end(&rp);
    }
    return rc;
}

int driver_recover(struct driver *d, struct px_durable *out)
{
    /* Two passes: the promised ballot and the applied state first (px_node_load), then the
     * log entries on top of them (px_node_load_rec). */
    memset(out, 0, sizeof(*out));
    int rc = store_load(d->store, out, NULL, NULL);
    if (rc != 0)
        return rc;
    px_node_load(d->core, out);
    rc = store_load(d->store, out, load_rec, d);
    if (rc != 0)
        return rc;
    d->applied_persisted = out->fib.applied;
    if (d->sm != NULL)
        d->sm->digest_v1 = store_sm_digest_version(d->store) == 1;
    return d->sm != NULL ? sm_recover(d) : 0;
}

int driver_start(struct driver *d)
{
    struct driver_view v;
    d->env.membership(d->env.ctx, &v);
    d->alive_seen = v.alive_mask;
    d->epoch_seen = v.epoch;
    for (uint16_t p = 0; p < d->cfg.nodes; p++) {
        if (p == d->cfg.id || ((v.alive_mask >> p) & 1u))
            continue;
        int rc = make_room(d);
        if (rc != 0)
            return rc;
        px_node_peer_status(d->core, p, false, d->ready);
        rc = sm_after(d);
        if (rc != 0)
            return rc;
    }
    d->next_tick = d->env.now_ns(d->env.ctx) + d->cfg.tick_ns;
    return finish(d);
}

int driver_run_once(struct driver *d)
{
    PX_ASSERT(d->ready->msgs_len == 0 && d->ready->recs_len == 0);
    PX_ASSERT(d->in_head <= d->in_len && d->in_len <= d->cfg.batch_max + DRIVER_SPILL_MAX);
    d->stats.loops++;
    int rc = check_membership(d);
    drain_input(d);
    if (rc == 0)
        rc = take_submits(d);
    if (rc == 0)
        rc = step_input(d);
    if (rc == 0)
        rc = tick(d);
    d->stalled = rc == DRIVER_STALLED;
    if (d->stalled)
        d->stats.stalls++;
    if (rc == 0 || rc == DRIVER_STALLED)
        rc = finish(d);
    if (rc != 0)
        return rc;
    d->queued = transport_flush(d->t);
    return 0;
}

void driver_idle(struct driver *d)
{
    if (d->received > 0)
        return;
    bool blocked = d->queued > 0 || d->backlog_len > 0 || d->pushes_len > 0 || d->held_len > 0;
    if (!blocked && px_node_pending(d->core))
        return; /* more work without new input: a sleep here would delay it by a tick */
    uint64_t now = d->env.now_ns(d->env.ctx);
    uint64_t until_tick = d->next_tick > now ? d->next_tick - now : 0;
    if (blocked && until_tick > DRIVER_RETRY_NS)
        until_tick = DRIVER_RETRY_NS; /* a ring was full: retry soon, pending work included */
    if (until_tick > 0) {
        d->stats.waits++;
        transport_wait(d->t, until_tick);
    }
}

int driver_poll_membership(struct driver *d)
{
    int rc = check_membership(d);
    if (rc != 0 && rc != DRIVER_STALLED)
        return rc;
    return finish(d); /* stalled: the next iteration tells the core the rest */
}

int driver_set_roles(struct driver *d, uint16_t node, uint64_t roles)
{
    PX_ASSERT(node < d->cfg.nodes);
    /* Every node must get the same change at once (px.h), so it cannot wait for the backlog:
     * it takes the reserve that ordinary calls leave. */
    int rc = call_fits(d) ? 0 : flush_point(d);
    if (rc != 0)
        return rc;
    PX_ASSERT(call_fits_with(d, 0));
    px_node_set_roles(d->core, node, roles, d->ready);
    rc = sm_after(d);
    return rc != 0 ? rc : finish(d);
}

bool driver_busy(const struct driver *d)
{
    return d->backlog_len > 0 || d->pushes_len > 0 || d->in_head < d->in_len ||
           px_node_pending(d->core);
}

uint32_t driver_backlog_to(const struct driver *d, uint16_t to)
{
    PX_ASSERT(to < d->cfg.nodes);
    uint32_t n = 0;
    for (uint32_t i = 0; i < d->backlog_len; i++)
        n += d->backlog[i].m.to == to || d->backlog[i].m.to == PX_TO_ALL;
    return n;
}

void driver_fini(struct driver *d)
{
    free(d->ready);
    free(d->in);
    free(d->backlog);
    if (d->pay.tab != NULL)
        payload_fini(&d->pay);
    d->ready = NULL;
    d->in = NULL;
    d->backlog = NULL;
    if (d->sm != NULL)
        sm_fini(d->sm);
    free(d->sm);
    free(d->held);
    free(d->sm_result_buf);
    d->sm = NULL;
    d->held = NULL;
    d->sm_result_buf = NULL;
}
