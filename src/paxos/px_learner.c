/* px_learner.c: the learner ("Paxos Made Simple" 2.3 and 3): learns decisions from the
 * leader's cumulative DECIDE (also piggybacked on ACCEPT and HEARTBEAT), applies them strictly
 * in instance order to its px_history, acknowledges its applied index, and fills gaps by catch-up
 * (decided entries in batches, or a snapshot where the peer truncated them). */
#include <string.h>

#include "px_internal.h"

static bool is_learner(const struct px_node *n)
{
    PX_ASSERT(n->cfg.id < n->cfg.nodes);
    return px_has_role(n, n->cfg.id, PX_ROLE_LEARNER);
}

void px_learner_decided(struct px_node *n, px_inst_t i, const struct px_value *v)
{
    PX_ASSERT(i > 0);
    px_note_chosen(n, i);
    PX_ASSERT(n->chosen_hi >= i);
    struct px_entry *e = px_log_make(n, i, NULL);
    if (e == NULL)
        return; /* already truncated (applied or in a snapshot) */
    PX_ASSERT(e->instance == i);
    e->acc_value = *v;
    e->flags |= PX_E_DECIDED;
}

/* A learner that is not an acceptor remembers the leader's proposals it saw, so a later
 * DECIDE of the same ballot tells it the value without another message. */
void px_learner_accept_seen(struct px_node *n, const struct px_msg *m, struct px_ready *out)
{
    if (!is_learner(n) || m->instance == 0)
        return;
    PX_ASSERT(m->type == PX_MSG_ACCEPT);
    struct px_entry *e = px_log_make(n, m->instance, out);
    if (e == NULL || (e->flags & PX_E_DECIDED))
        return;
    if ((e->flags & PX_E_ACCEPTED) && e->acc_ballot > m->ballot)
        return;
    e->acc_ballot = m->ballot;
    e->acc_value = m->u.accept.value;
    e->flags |= PX_E_ACCEPTED;
    PX_ASSERT(e->acc_ballot == m->ballot);
    if (m->ballot == n->dec_ballot && m->instance <= n->dec_hi)
        px_learner_decided(n, m->instance, &m->u.accept.value);
}

/* DECIDE(b, hi): every instance <= hi is chosen. Where this node holds the value of that same
 * ballot b (accepted, or seen in ACCEPT(b, i, v)), that value is the chosen one: leader b only
 * announces instances a quorum accepted at b. Other values (older ballots) prove nothing. */
void px_learner_decide(struct px_node *n, px_ballot_t b, px_inst_t hi, uint16_t from,
                       struct px_ready *out)
{
    (void)out;
    px_ballot_t dec_ballot_before = n->dec_ballot;
    px_note_chosen(n, hi);
    if (b < n->dec_ballot)
        return;
    if (b != n->dec_ballot) {
        n->dec_ballot = b;
        n->dec_hi = 0;
        n->dec_scan = n->fib.applied > n->base - 1 ? n->fib.applied : n->base - 1;
    }
    if (hi > n->dec_hi)
        n->dec_hi = hi;
    px_inst_t i = n->dec_scan + 1 > n->base ? n->dec_scan + 1 : n->base;
    px_inst_t end = hi < n->base + PX_LOG_MAX - 1 ? hi : n->base + PX_LOG_MAX - 1;
    for (; i <= end; i++) { /* only the ring can hold values: a far-behind learner scans it once */
        struct px_entry *e = px_log_get(n, i);
        if (e != NULL && (e->flags & PX_E_ACCEPTED) && !(e->flags & PX_E_DECIDED) &&
            e->acc_ballot == b)
            px_learner_decided(n, i, &e->acc_value);
    }
    if (hi > n->dec_scan)
        n->dec_scan = hi;
    (void)from;
    PX_ASSERT(n->dec_ballot >= dec_ballot_before); /* DECIDE ballots only move up */
    PX_ASSERT(n->dec_hi >= hi);
}

/* The next live peer after `after`, by id. Any node may hold what a learner lacks: learners
 * and the leader hold decided entries, a former learner still holds its state machine. */
static uint16_t next_peer(const struct px_node *n, uint16_t after)
{
    PX_ASSERT(after < n->cfg.nodes);
    for (uint16_t k = 1; k <= n->cfg.nodes; k++) {
        uint16_t p = (uint16_t)((after + k) % n->cfg.nodes);
        if (p != n->cfg.id && px_is_alive(n, p))
            return p;
    }
    PX_ASSERT(n->cfg.nodes == 1 || n->alive_mask == 1ull << n->cfg.id); /* nobody else up */
    return PX_NODE_NONE;
}

/* Whom to ask: the leader (its log holds every recent decision) on every other try
 * (PX_CATCHUP_LEADER_EVERY_REQS), else the live peers in turn, so an unanswered request never
 * repeats to the same silent peer. */
static uint16_t catchup_target(struct px_node *n)
{
    uint16_t l = px_node_leader(n);
    if (n->catchup_tries++ % PX_CATCHUP_LEADER_EVERY_REQS == 0 && l < n->cfg.nodes &&
        l != n->cfg.id && px_is_alive(n, l))
        return l;
    uint16_t p = next_peer(n, n->catchup_peer < n->cfg.nodes ? n->catchup_peer : n->cfg.id);
    if (p != PX_NODE_NONE)
        n->catchup_peer = p;
    PX_ASSERT(p == PX_NODE_NONE || p < n->cfg.nodes);
    PX_ASSERT(p != n->cfg.id);
    return p;
}

static void request_catchup(struct px_node *n, struct px_ready *out)
{
    uint16_t to = catchup_target(n);
    if (to == PX_NODE_NONE)
        return;
    PX_ASSERT(n->fib.applied < n->chosen_hi); /* only a real gap is asked for */
    struct px_msg *m = px_out_msg(n, out, PX_MSG_CATCHUP_REQ, to);
    if (m == NULL)
        return;
    m->instance = n->fib.applied + 1;
    n->catchup_wait = PX_CATCHUP_RETRY_TICKS;
    n->stats.catchup_reqs++;
}

static void apply_one(struct px_node *n, px_inst_t i, const struct px_value *v,
                      struct px_ready *out)
{
    PX_ASSERT(px_room_apply(n, out) > 0); /* room before the grab */
    PX_ASSERT(px_room_recs(n, out) > 0);
#ifndef PX_BUG_APPLY_OUT_OF_ORDER
    PX_ASSERT(i == n->fib.applied + 1); /* strictly in instance order */
#endif
    PX_ASSERT(i <= n->chosen_hi);
    bool dup = px_history_apply(&n->fib, i, v);
    struct px_applied *a = &out->apply[out->apply_len++];
    a->instance = i;
    a->value = *v;
    a->duplicate = dup;
    struct px_rec *r = px_out_rec(n, out, PX_REC_DECIDED);
    PX_ASSERT(r != NULL);
    r->instance = i;
    r->value = *v;
}

static void send_ack(struct px_node *n, uint16_t to, struct px_ready *out)
{
    PX_ASSERT(to < n->cfg.nodes);
    struct px_msg *r = px_out_msg(n, out, PX_MSG_ACK, to);
    if (r == NULL)
        return;
    r->instance = n->fib.applied;
    n->ack_sent = n->fib.applied;
    PX_ASSERT(n->ack_sent <= n->chosen_hi);
}

#ifdef PX_BUG_APPLY_OUT_OF_ORDER
/* planted bug: apply every decided entry as soon as it is known, skipping gaps */
static void apply_out_of_order(struct px_node *n, struct px_ready *out)
{
    for (px_inst_t i = n->fib.applied + 2; i <= n->chosen_hi && i < n->base + PX_LOG_MAX; i++) {
        const struct px_entry *e = px_log_get(n, i);
        if (e == NULL || !(e->flags & PX_E_DECIDED))
            continue;
        if (px_room_apply(n, out) == 0 || px_room_recs(n, out) <= PX_ROOM_SPARE_RECS)
            return;
        apply_one(n, i, &e->acc_value, out);
    }
}
#endif

/* Applies decided entries in instance order (bounded per call; the rest on the next call)
 * and asks for the first missing one when the log has a gap. */
void px_learner_apply(struct px_node *n, struct px_ready *out)
{
    if (!is_learner(n))
        return;
    px_inst_t before = n->fib.applied;
#ifdef PX_BUG_APPLY_OUT_OF_ORDER
    apply_out_of_order(n, out);
#endif
    bool gap = false;
    while (px_room_apply(n, out) > 0 && px_room_recs(n, out) > PX_ROOM_SPARE_RECS) {
        px_inst_t i = n->fib.applied + 1;
        const struct px_entry *e = px_log_get(n, i);
        if (e == NULL || !(e->flags & PX_E_DECIDED)) {
            gap = true;
            break;
        }
        apply_one(n, i, &e->acc_value, out);
    }
    PX_ASSERT(n->fib.applied >= before); /* applied only moves forward */
    PX_ASSERT(n->fib.applied <= n->chosen_hi);
    if (n->fib.applied != before)
        n->catchup_tries = 0; /* progress: the leader first again */
    uint16_t l = n->leader;
    if (n->fib.applied >= n->ack_sent + PX_ACK_EVERY && n->state == PX_FOLLOWER &&
        l < n->cfg.nodes && px_is_alive(n, l))
        send_ack(n, l, out);
    /* Only a real gap needs a peer; a full output just continues on the next call. */
    if (gap && n->fib.applied < n->chosen_hi && n->catchup_wait == 0 && !n->snap_active)
        request_catchup(n, out);
}

static void send_snapshot(struct px_node *n, uint16_t to, struct px_ready *out)
{
    uint32_t parts = 0;
    for (uint32_t k = 0; k < PX_CLIENTS_MAX; k++)
        parts += n->fib.clients[k].client_id != 0;
    PX_ASSERT(parts <= PX_CLIENTS_MAX);
    if (px_room_msgs(n, out) < PX_SNAPSHOT_HEADER_MSGS + parts + PX_ROOM_SPARE_MSGS)
        return;
    struct px_msg *m = px_out_msg(n, out, PX_MSG_SNAPSHOT, to);
    PX_ASSERT(m != NULL); /* room checked above */
    out->snapshots_len++;
    m->instance = n->fib.applied;
    m->u.snapshot.digest = n->fib.digest;
    m->u.snapshot.requests = n->fib.requests;
    m->snapshot_parts = parts;
    uint32_t idx = 0;
    for (uint32_t k = 0; k < PX_CLIENTS_MAX; k++) {
        const struct px_dedup *d = &n->fib.clients[k];
        if (d->client_id == 0)
            continue;
        struct px_msg *p = px_out_msg(n, out, PX_MSG_SNAPSHOT_PART, to);
        PX_ASSERT(p != NULL); /* room for every part checked above */
        p->instance = n->fib.applied;
        p->u.snapshot_part.client_id = d->client_id;
        p->u.snapshot_part.seq_low = d->seq_low;
        p->u.snapshot_part.index = idx++;
        p->part_seen0 = d->seen[0];
        p->u.snapshot_part.seen1 = d->seen[1];
        p->u.snapshot_part.seen2 = d->seen[2];
        p->u.snapshot_part.seen3 = d->seen[3];
    }
    PX_ASSERT(idx == parts);
    n->stats.snapshots_sent++;
}

/* Serves a learner: decided entries from m->instance (one bounded batch), or a snapshot of
 * the state machine where those entries were truncated here. */
void px_learner_catchup_req(struct px_node *n, const struct px_msg *m, struct px_ready *out)
{
    PX_ASSERT(m->type == PX_MSG_CATCHUP_REQ);
    px_inst_t from = m->instance;
    if (from == 0)
        return;
    if (from < n->base) {
        /* Any node whose state machine got that far serves it, whatever its roles now (a
         * former learner may be the only one left holding that state). */
        if (n->fib.applied >= from)
            send_snapshot(n, m->from, out);
        return;
    }
    struct px_msg *last = NULL;
    for (px_inst_t i = from;
         i < from + PX_CATCHUP_BATCH_MAX && px_room_msgs(n, out) > PX_ROOM_SPARE_MSGS; i++) {
        const struct px_entry *e = px_log_get(n, i);
        if (e == NULL || !(e->flags & PX_E_DECIDED))
            break;
        last = px_out_msg(n, out, PX_MSG_CATCHUP_ENTRY, m->from);
        PX_ASSERT(last != NULL); /* room checked by the loop */
        PX_ASSERT(i <= n->chosen_hi);
        last->instance = i;
        last->u.catchup_entry.value = e->acc_value;
    }
    if (last != NULL)
        last->flags |= PX_FLAG_LAST;
    PX_ASSERT(last == NULL || last->instance < from + PX_CATCHUP_BATCH_MAX); /* one batch */
}

void px_learner_catchup_entry(struct px_node *n, const struct px_msg *m, struct px_ready *out)
{
    PX_ASSERT(m->type == PX_MSG_CATCHUP_ENTRY); /* m->u.catchup_entry is this message's part */
    (void)out;
    if (!is_learner(n) || m->instance <= n->fib.applied)
        return;
    /* decisions are cumulative: a decided entry i means every instance <= i is chosen */
    px_note_chosen(n, m->instance);
    PX_ASSERT(m->instance > n->fib.applied);
    if (m->instance < n->base) {
        /* The ring dropped this part of the log (e.g. while this node was no learner): apply
         * the entry straight from the message when it is the next one. */
        if (m->instance == n->fib.applied + 1 && px_room_apply(n, out) > 0 &&
            px_room_recs(n, out) > PX_ROOM_SPARE_RECS)
            apply_one(n, m->instance, &m->u.catchup_entry.value, out);
    } else {
        struct px_entry *e = px_log_get(n, m->instance);
        if (e == NULL || !(e->flags & PX_E_DECIDED))
            px_learner_decided(n, m->instance, &m->u.catchup_entry.value);
    }
    if (m->flags & PX_FLAG_LAST)
        n->catchup_wait = 0; /* ask for the next batch at once if a gap remains */
    PX_ASSERT(n->fib.applied <= n->chosen_hi);
}

static void install_snapshot(struct px_node *n, struct px_ready *out)
{
    n->snap_active = false;
    if (n->snap.applied <= n->fib.applied)
        return; /* entries overtook the snapshot while its parts arrived: never go back */
    PX_ASSERT(n->snap_got == n->snap_want); /* only a complete snapshot */
    n->fib = n->snap;
    px_note_chosen(n, n->fib.applied);
    px_log_truncate(n, n->fib.applied, NULL);
    PX_ASSERT(n->base > n->fib.applied); /* the log holds nothing the snapshot replaced */
    if (n->dec_scan < n->fib.applied)
        n->dec_scan = n->fib.applied;
    out->snapshot = n->fib.applied;
    struct px_rec *r = n->base - 1 > n->trunc_sent ? px_out_rec(n, out, PX_REC_TRUNCATE) : NULL;
    if (r != NULL) {
        r->instance = n->base - 1; /* the store drops what the snapshot replaces */
        n->trunc_sent = n->base - 1;
    }
    n->catchup_wait = 0;
    n->stats.snapshots_installed++;
}

void px_learner_snapshot(struct px_node *n, const struct px_msg *m, struct px_ready *out)
{
    PX_ASSERT(m->type == PX_MSG_SNAPSHOT); /* m->u.snapshot is this message's part */
    if (!is_learner(n) || m->instance <= n->fib.applied || m->snapshot_parts > PX_CLIENTS_MAX)
        return;
    memset(&n->snap, 0, sizeof(n->snap));
    n->snap.applied = m->instance;
    n->snap.digest = m->u.snapshot.digest;
    n->snap.requests = m->u.snapshot.requests;
    n->snap_want = (uint32_t)m->snapshot_parts;
    n->snap_mask = 0;
    n->snap_got = 0;
    n->snap_active = true;
    PX_ASSERT(n->snap_want <= PX_CLIENTS_MAX);
    PX_ASSERT(n->snap.applied > n->fib.applied); /* a snapshot never goes back */
    if (n->snap_want == 0)
        install_snapshot(n, out);
}

void px_learner_snapshot_part(struct px_node *n, const struct px_msg *m, struct px_ready *out)
{
    PX_ASSERT(m->type == PX_MSG_SNAPSHOT_PART); /* m->u.snapshot_part is this message's part */
    uint64_t idx = m->u.snapshot_part.index;
    if (!n->snap_active || m->instance != n->snap.applied || idx >= n->snap_want)
        return;
    PX_ASSERT(idx < PX_CLIENTS_MAX);
    PX_ASSERT(n->snap_want <= PX_CLIENTS_MAX);
    struct px_dedup *d = &n->snap.clients[idx];
    d->client_id = m->u.snapshot_part.client_id;
    d->seq_low = m->u.snapshot_part.seq_low;
    d->seen[0] = m->part_seen0;
    d->seen[1] = m->u.snapshot_part.seen1;
    d->seen[2] = m->u.snapshot_part.seen2;
    d->seen[3] = m->u.snapshot_part.seen3;
    if (!((n->snap_mask >> idx) & 1u)) {
        n->snap_mask |= 1u << idx;
        n->snap_got++;
    }
    PX_ASSERT((n->snap_mask >> idx) & 1u);
    if (n->snap_got == n->snap_want)
        install_snapshot(n, out); /* only a complete snapshot is installed */
}

/* HEARTBEAT: acknowledge the applied index to the leader, and drop what every live learner
 * has applied (the leader's hint), never beyond what is chosen or, here, applied. */
void px_learner_heartbeat(struct px_node *n, const struct px_msg *m, struct px_ready *out)
{
    PX_ASSERT(m->type == PX_MSG_HEARTBEAT); /* m->u.heartbeat is this message's part */
    px_inst_t hint = m->u.heartbeat.truncate_hint;
    if (hint > n->hint_seen)
        n->hint_seen = hint; /* a fact whoever sent it: learners' state machines got that far */
    px_inst_t limit = hint < n->chosen_hi ? hint : n->chosen_hi;
    if (is_learner(n) && n->fib.applied < limit)
        limit = n->fib.applied;
    PX_ASSERT(limit <= n->chosen_hi);                     /* truncate only what is chosen */
    PX_ASSERT(!is_learner(n) || limit <= n->fib.applied); /* and, on a learner, applied */
    if (limit >= n->base - 1 + PX_TRUNCATE_STEP)
        px_log_truncate(n, limit, out);
    if (!is_learner(n))
        return;
    px_learner_apply(n, out); /* the heartbeat's decisions first: acknowledge them too */
    send_ack(n, m->from, out);
}

void px_learner_tick(struct px_node *n, struct px_ready *out)
{
    (void)out;
    PX_ASSERT(n->catchup_wait <= PX_CATCHUP_RETRY_TICKS);
    if (n->catchup_wait > 0)
        n->catchup_wait--; /* at 0 a request goes to the next peer (catchup_target) */
    if (n->snap_active && n->catchup_wait == 0)
        n->snap_active = false; /* parts lost: drop the partial snapshot, ask again */
    PX_ASSERT(!n->snap_active || n->catchup_wait > 0);
}
