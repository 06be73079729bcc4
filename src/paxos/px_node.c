/* px_node.c: a node's entry points (step, tick, submit, ...), its log ring and the bounded
 * output helpers shared by the role modules. Every entry call: px_begin (fix this call's output
 * limits), the role handler, px_end (continue bounded work: promise stream, apply, proposals,
 * and without cfg->batch the coalesced ACCEPTED / DECIDE). */
#include <errno.h>
#include <string.h>

#include "px_internal.h"
#include "px_mix.h"

/* xorshift64*: the seeded back-off stream (no rand(): replayable in the simulator). */
uint64_t px_rand(struct px_node *n)
{
    PX_ASSERT(n->rng != 0); /* xorshift's one fixed point: the stream would be all zeros */
    uint64_t r = px_xorshift64star(&n->rng);
    PX_ASSERT(n->rng != 0);
    return r;
}

bool px_has_role(const struct px_node *n, uint16_t node, uint64_t role)
{
    PX_ASSERT(role != 0);
    PX_ASSERT((role & ~(uint64_t)(PX_ROLE_PROPOSER | PX_ROLE_ACCEPTOR | PX_ROLE_LEARNER)) == 0);
    return node < n->cfg.nodes && (n->cfg.roles[node] & role) != 0;
}

bool px_is_alive(const struct px_node *n, uint16_t node)
{
    PX_ASSERT(n->cfg.nodes <= PX_NODES_MAX);
    PX_ASSERT((n->alive_mask >> n->cfg.id) & 1u); /* a node never sees itself down */
    return node < n->cfg.nodes && ((n->alive_mask >> node) & 1u);
}

static uint32_t count_acceptors(const struct px_config *cfg)
{
    uint32_t k = 0;
    PX_ASSERT(cfg->nodes <= PX_NODES_MAX);
    for (uint16_t i = 0; i < cfg->nodes; i++)
        k += (cfg->roles[i] & PX_ROLE_ACCEPTOR) != 0;
    PX_ASSERT(k <= cfg->nodes);
    return k;
}

static uint32_t quorum_of(const struct px_config *cfg)
{
#ifdef PX_BUG_QUORUM_ONE
    (void)cfg;
    return 1; /* planted bug: one acceptance "decides" */
#else
    uint32_t acceptors = count_acceptors(cfg);
    PX_ASSERT(acceptors >= 1);
    uint32_t q = acceptors / 2 + 1;
    PX_ASSERT(2 * q > acceptors); /* two quorums always share an acceptor */
    return q;
#endif
}

/* --- invariants --- */

/* What holds between entry calls; checked at the end of every one (and after init and load),
 * so it holds at the start of the next without a second check on the hot path. */
static void px_check_invariants(const struct px_node *n)
{
    /* log: base <= chosen_hi + 1 (only chosen entries are truncated), the store was told of
     * no truncation beyond the base, and nothing is applied or known decided that is not
     * chosen */
    PX_ASSERT(n->base >= 1);
    PX_ASSERT(n->base - 1 <= n->chosen_hi);
    PX_ASSERT(n->trunc_sent <= n->base - 1);
    PX_ASSERT(n->fib.applied <= n->chosen_hi);
    PX_ASSERT(n->dec_hi <= n->chosen_hi);
    /* acceptor: a promise is a ballot seen; a pending ACCEPTED range is a range */
    PX_ASSERT(n->promised <= n->max_seen);
    PX_ASSERT(n->ack_ballot == 0 || n->ack_lo <= n->ack_hi);
    /* proposer: own ballots carry the own id; a leader's commit < next, its window >= 1 */
    PX_ASSERT(n->ballot == 0 || px_ballot_node(n->ballot) == n->cfg.id);
    PX_ASSERT(n->state == PX_FOLLOWER || n->ballot <= n->max_seen);
    PX_ASSERT(n->state != PX_LEADER || n->commit < n->next);
    PX_ASSERT(n->state != PX_LEADER || n->leader == n->cfg.id);
    PX_ASSERT(n->state != PX_LEADER || n->cwnd >= 1);
    PX_ASSERT(n->state != PX_LEADER || n->cwnd <= n->cfg.window_max);
    PX_ASSERT(n->q_len <= PX_QUEUE_MAX);
    PX_ASSERT(n->q_head < PX_QUEUE_MAX);
    /* learner: a snapshot in progress never has more parts than clients */
    PX_ASSERT(n->snap_got <= n->snap_want);
    PX_ASSERT(n->snap_want <= PX_CLIENTS_MAX);
}

/* --- bounded output --- */

static void px_begin(struct px_node *n, struct px_ready *out)
{
    PX_ASSERT(out->msgs_len <= PX_READY_MSGS_MAX);
    PX_ASSERT(out->recs_len <= PX_READY_RECS_MAX);
    PX_ASSERT(out->apply_len <= PX_READY_APPLY_MAX);
#ifdef PX_BUG_REPLY_BEFORE_PERSIST
    /* planted bug: the acceptor records of the previous batch go out only in the next one
     * (an empty ready: the caller already sent the replies that depended on them) */
    if (out->recs_len == 0 && out->msgs_len == 0 && out->apply_len == 0) {
        for (uint32_t i = 0; i < n->deferred_len; i++)
            out->recs[out->recs_len++] = n->deferred[i];
        n->deferred_len = 0;
    }
#endif
    uint32_t m = out->msgs_len + PX_STEP_OUTPUT_MAX;
    uint32_t r = out->recs_len + PX_STEP_OUTPUT_MAX;
    uint32_t a = out->apply_len + PX_STEP_OUTPUT_MAX;
    n->lim_msgs = m < PX_READY_MSGS_MAX ? m : PX_READY_MSGS_MAX;
    n->lim_recs = r < PX_READY_RECS_MAX ? r : PX_READY_RECS_MAX;
    n->lim_apply = a < PX_READY_APPLY_MAX ? a : PX_READY_APPLY_MAX;
    PX_ASSERT(n->lim_msgs >= out->msgs_len);
    PX_ASSERT(n->lim_recs >= out->recs_len);
}

uint32_t px_room_msgs(const struct px_node *n, const struct px_ready *out)
{
    PX_ASSERT(n->lim_msgs <= PX_READY_MSGS_MAX);
    return out->msgs_len < n->lim_msgs ? n->lim_msgs - out->msgs_len : 0;
}

uint32_t px_room_recs(const struct px_node *n, const struct px_ready *out)
{
    PX_ASSERT(n->lim_recs <= PX_READY_RECS_MAX);
    return out->recs_len < n->lim_recs ? n->lim_recs - out->recs_len : 0;
}

uint32_t px_room_apply(const struct px_node *n, const struct px_ready *out)
{
    PX_ASSERT(n->lim_apply <= PX_READY_APPLY_MAX);
    return out->apply_len < n->lim_apply ? n->lim_apply - out->apply_len : 0;
}

/* Messages whose receiver need not be woken (PX_FLAG_LAZY): what they carry (a decided-up-to,
 * a heartbeat, a learner's applied index) is picked up at the reader's next wake-up -- its next
 * urgent message or its next tick -- and nothing on the client's path waits for them. A round
 * at window 1 saves one context switch per follower (the DECIDE after the ACCEPT). */
static bool px_msg_lazy(uint8_t type)
{
    PX_ASSERT(type > PX_MSG_NONE);
    PX_ASSERT(type < PX_MSG_TYPE_COUNT);
    return type == PX_MSG_DECIDE || type == PX_MSG_HEARTBEAT || type == PX_MSG_ACK;
}

struct px_msg *px_out_msg(struct px_node *n, struct px_ready *out, uint8_t type, uint16_t to)
{
    if (px_room_msgs(n, out) == 0)
        return NULL;
    PX_ASSERT(to != n->cfg.id);
    PX_ASSERT(to <= PX_CLIENT_NODE(&n->cfg) || to == PX_TO_ALL);
    PX_ASSERT(out->msgs_len < PX_READY_MSGS_MAX); /* room before the grab */
    struct px_msg *m = &out->msgs[out->msgs_len++];
    memset(m, 0, sizeof(*m));
    m->type = type;
    m->flags = px_msg_lazy(type) ? PX_FLAG_LAZY : 0;
    m->from = n->cfg.id;
    m->to = to;
    return m;
}

struct px_rec *px_out_rec(struct px_node *n, struct px_ready *out, uint8_t type)
{
    PX_ASSERT(type >= PX_REC_PROMISE);
    PX_ASSERT(type <= PX_REC_TRUNCATE);
    if (px_room_recs(n, out) == 0)
        return NULL;
    PX_ASSERT(out->recs_len < PX_READY_RECS_MAX); /* room before the grab */
    struct px_rec *r = &out->recs[out->recs_len++];
    memset(r, 0, sizeof(*r));
    r->type = type;
    return r;
}

static void emit_truncate(struct px_node *n, struct px_ready *out);

static void px_end(struct px_node *n, struct px_ready *out)
{
    px_acceptor_continue(n, out);
    px_learner_apply(n, out);
    px_proposer_pump(n, out);
    if (!n->cfg.batch) {
        px_acceptor_flush(n, out);
        px_proposer_flush(n, out);
    }
    emit_truncate(n, out);
    PX_ASSERT(out->msgs_len <= n->lim_msgs);
    px_check_invariants(n);
}

/* --- log ring --- */

struct px_entry *px_log_get(struct px_node *n, px_inst_t i)
{
    if (i < n->base || i - n->base >= PX_LOG_MAX)
        return NULL;
    struct px_entry *e = &n->log[i % PX_LOG_MAX];
    PX_ASSERT(e->instance <= n->log_hi); /* a slot never holds an instance not yet stored */
    return e->instance == i ? e : NULL;
}

/* The slot for instance i, emptied if it held an older instance. NULL when i was truncated, or
 * when making room would drop an entry not known to be chosen (the caller backs off). */
struct px_entry *px_log_make(struct px_node *n, px_inst_t i, struct px_ready *out)
{
    PX_ASSERT(i > 0);
    if (i < n->base)
        return NULL;
    if (i - n->base >= PX_LOG_MAX) {
        px_inst_t need = i - PX_LOG_MAX;
        if (need > n->chosen_hi)
            return NULL;
        px_log_truncate(n, need, out);
    }
    struct px_entry *e = &n->log[i % PX_LOG_MAX];
    if (e->instance != i) {
        memset(e, 0, sizeof(*e));
        e->instance = i;
    }
    if (i > n->log_hi)
        n->log_hi = i;
    PX_ASSERT(i >= n->base);
    PX_ASSERT(i - n->base < PX_LOG_MAX);
    return e;
}

/* Drops every entry <= upto (all chosen: callers check). The store is told in steps. */
void px_log_truncate(struct px_node *n, px_inst_t upto, struct px_ready *out)
{
    if (upto < n->base)
        return;
    PX_ASSERT(upto <= n->chosen_hi);
    (void)out; /* the store hears of it at the end of the call (emit_truncate) */
    px_inst_t base_before = n->base;
    n->base = upto + 1;
    PX_ASSERT(n->base > base_before); /* the base only moves forward */
    n->stats.truncated++;
}

/* Tells the store to drop rows behind the log base, in steps: the durable log never spans
 * more than PX_LOG_MAX + PX_TRUNCATE_STEP instances, whatever path moved the base. */
static void emit_truncate(struct px_node *n, struct px_ready *out)
{
    if (n->base - 1 < n->trunc_sent + PX_TRUNCATE_STEP)
        return;
    struct px_rec *r = px_out_rec(n, out, PX_REC_TRUNCATE);
    if (r == NULL)
        return; /* next call */
    PX_ASSERT(n->base - 1 > n->trunc_sent);
    r->instance = n->base - 1;
    n->trunc_sent = n->base - 1;
    PX_ASSERT(n->trunc_sent <= n->chosen_hi);
}

void px_note_chosen(struct px_node *n, px_inst_t hi)
{
    px_inst_t before = n->chosen_hi;
    if (hi > n->chosen_hi)
        n->chosen_hi = hi;
    PX_ASSERT(n->chosen_hi >= before); /* what is chosen stays chosen */
    PX_ASSERT(n->chosen_hi >= hi);
}

/* --- init and restart --- */

size_t px_node_size(const struct px_config *cfg)
{
    (void)cfg;
    return sizeof(struct px_node);
}

static bool config_ok(const struct px_config *c)
{
    return c->nodes >= 1 && c->nodes <= PX_NODES_MAX && c->id < c->nodes && c->window_max >= 1 &&
           c->window_max <= PX_WINDOW_MAX && c->election_ticks >= PX_ELECTION_TICKS_MIN &&
           c->heartbeat_ticks >= 1 && c->heartbeat_ticks < c->election_ticks &&
           count_acceptors(c) >= 1;
}

int px_node_init(void *mem, size_t mem_bytes, const struct px_config *cfg, struct px_node **out)
{
    if (mem == NULL || cfg == NULL || out == NULL || mem_bytes < sizeof(struct px_node) ||
        (uintptr_t)mem % _Alignof(struct px_node) != 0 || !config_ok(cfg))
        return -EINVAL;
    struct px_node *n = mem;
    memset(n, 0, sizeof(*n));
    n->cfg = *cfg;
    n->alive_mask = cfg->nodes == PX_NODES_MAX ? UINT64_MAX : (1ull << cfg->nodes) - 1;
    n->quorum = quorum_of(cfg);
    uint64_t s = cfg->seed ^ ((uint64_t)cfg->id << PX_SEED_ID_SHIFT);
    n->rng = px_splitmix64(&s) | 1u; /* xorshift state must not be 0 */
    px_history_init(&n->fib);
    n->base = 1;
    n->leader = PX_NODE_NONE;
    n->state = PX_FOLLOWER;
    px_proposer_reset_timer(n, false);
    PX_ASSERT(n->quorum >= 1);
    PX_ASSERT(n->rng != 0);
    PX_ASSERT((n->alive_mask >> cfg->id) & 1u);
    PX_ASSERT(n->leader == PX_NODE_NONE); /* a fresh node knows no leader */
    px_check_invariants(n);
    *out = n;
    return 0;
}

void px_node_load(struct px_node *n, const struct px_durable *d)
{
    PX_ASSERT(n->state == PX_FOLLOWER); /* loaded before the first input */
    if (d->promised > n->promised)
        n->promised = d->promised;
    if (n->promised > n->max_seen)
        n->max_seen = n->promised;
    n->fib = d->fib; /* all zero: a fresh node (px_history_init) */
    px_note_chosen(n, n->fib.applied);
    if (n->fib.applied >= n->base)
        n->base = n->fib.applied + 1;
    if (n->log_hi < n->fib.applied)
        n->log_hi = n->fib.applied;
    n->dec_scan = n->fib.applied;
    PX_ASSERT(n->promised >= d->promised);
    px_check_invariants(n);
}

static void load_entry(struct px_node *n, const struct px_rec *r)
{
    /* Entries below a base that moved past them were chosen (the invariant of truncation), so
     * sliding the ring forward over them is safe. */
    if (r->instance >= n->base + PX_LOG_MAX)
        px_note_chosen(n, r->instance - PX_LOG_MAX);
    struct px_entry *e = px_log_make(n, r->instance, NULL);
    if (e == NULL)
        return;
    PX_ASSERT(e->instance == r->instance);
    if (r->type == PX_REC_DECIDED) {
        e->acc_value = r->value;
        e->flags |= PX_E_DECIDED;
        px_note_chosen(n, r->instance);
        return;
    }
    if ((e->flags & PX_E_ACCEPTED) && e->acc_ballot > r->ballot)
        return;
    e->acc_ballot = r->ballot;
    if (!(e->flags & PX_E_DECIDED))
        e->acc_value = r->value;
    e->flags |= PX_E_ACCEPTED;
}

void px_node_load_rec(struct px_node *n, const struct px_rec *r)
{
    PX_ASSERT(n->state == PX_FOLLOWER); /* records are replayed before the first input */
    switch (r->type) {
    case PX_REC_PROMISE:
        if (r->ballot > n->promised)
            n->promised = r->ballot;
        if (n->promised > n->max_seen)
            n->max_seen = n->promised;
        PX_ASSERT(n->promised >= r->ballot); /* a promise only rises, in any record order */
        break;
    case PX_REC_ACCEPTED:
    case PX_REC_DECIDED:
        if (r->instance > 0 && r->instance >= n->base)
            load_entry(n, r);
        if (r->ballot > n->max_seen)
            n->max_seen = r->ballot;
        break;
    case PX_REC_TRUNCATE:
        px_note_chosen(n, r->instance);
        px_log_truncate(n, r->instance, NULL);
        if (r->instance > n->trunc_sent)
            n->trunc_sent = r->instance;
        PX_ASSERT(n->base > r->instance); /* the ring holds nothing the store dropped */
        break;
    default:
        break; /* unknown record: a newer store format; nothing the core needs */
    }
    px_check_invariants(n);
}

/* --- entry points --- */

static void step_leader_msg(struct px_node *n, const struct px_msg *m, struct px_ready *out)
{
    PX_ASSERT(m->type == PX_MSG_ACCEPT || m->type == PX_MSG_DECIDE || m->type == PX_MSG_HEARTBEAT);
    PX_ASSERT(m->from < n->cfg.nodes);
    px_proposer_heard_leader(n, m->ballot, out);
    switch (m->type) {
    case PX_MSG_ACCEPT:
        /* the piggybacked decision first: it may free ring slots for this instance */
        if (m->u.accept.decided_hi > 0)
            px_learner_decide(n, m->ballot, m->u.accept.decided_hi, m->from, out);
        if (px_has_role(n, n->cfg.id, PX_ROLE_ACCEPTOR))
            px_acceptor_accept(n, m, out);
        else
            px_learner_accept_seen(n, m, out);
        break;
    case PX_MSG_DECIDE:
        px_learner_decide(n, m->ballot, m->u.decide.hi, m->from, out);
        break;
    default: /* PX_MSG_HEARTBEAT */
        if (m->ballot < n->promised && px_has_role(n, n->cfg.id, PX_ROLE_ACCEPTOR))
            px_acceptor_nack(n, m, out); /* a deposed leader learns it at once */
        px_learner_decide(n, m->ballot, m->u.heartbeat.decided_hi, m->from, out);
        px_learner_heartbeat(n, m, out);
        break;
    }
}

static void step_peer(struct px_node *n, const struct px_msg *m, struct px_ready *out)
{
    PX_ASSERT(m->from < n->cfg.nodes); /* checked by px_node_step */
    PX_ASSERT(m->from != n->cfg.id);
    switch (m->type) {
    case PX_MSG_PREPARE:
        px_proposer_observe(n, m->ballot, out);
        if (px_has_role(n, n->cfg.id, PX_ROLE_ACCEPTOR))
            px_acceptor_prepare(n, m, out);
        break;
    case PX_MSG_PROMISE_ENTRY:
        px_proposer_promise_entry(n, m, out);
        break;
    case PX_MSG_PROMISE:
        px_proposer_promise(n, m, out);
        break;
    case PX_MSG_NACK:
        px_proposer_nack(n, m, out);
        break;
    case PX_MSG_ACCEPT:
    case PX_MSG_DECIDE:
    case PX_MSG_HEARTBEAT:
        step_leader_msg(n, m, out);
        break;
    case PX_MSG_ACCEPTED:
        px_proposer_accepted(n, m, out);
        break;
    case PX_MSG_ACK:
        px_proposer_ack(n, m);
        break;
    case PX_MSG_CATCHUP_REQ:
        px_learner_catchup_req(n, m, out);
        break;
    case PX_MSG_CATCHUP_ENTRY:
        px_learner_catchup_entry(n, m, out);
        break;
    case PX_MSG_SNAPSHOT:
        px_learner_snapshot(n, m, out);
        break;
    case PX_MSG_SNAPSHOT_PART:
        px_learner_snapshot_part(n, m, out);
        break;
    case PX_MSG_TAKEOVER:
        px_proposer_takeover(n, m, out);
        break;
    default:
        n->stats.dropped++; /* CLIENT_REPLY or an unknown type: not for a node */
        break;
    }
}

void px_node_step(struct px_node *n, const struct px_msg *m, struct px_ready *out)
{
    PX_ASSERT(m != NULL);
    px_begin(n, out);
    if (m->type == PX_MSG_CLIENT) {
        uint32_t hops = (m->flags & PX_FLAG_HOPS) >> PX_FLAG_HOPS_SHIFT;
        if (px_proposer_client(n, &m->u.client.value, hops, out) != 0) {
            n->stats.dropped++; /* queue full: the client resubmits after its timeout */
            n->stats.requests_dropped++;
        }
    } else if (m->from >= n->cfg.nodes || m->from == n->cfg.id) {
        n->stats.dropped++;
    } else {
        step_peer(n, m, out);
    }
    px_end(n, out);
}

void px_node_tick(struct px_node *n, struct px_ready *out)
{
    uint32_t elapsed_before = n->elapsed;
    px_begin(n, out);
    px_learner_tick(n, out);
    px_proposer_tick(n, out);
    px_end(n, out);
    PX_ASSERT(n->state == PX_LEADER || n->elapsed <= elapsed_before + 1); /* one unit of time */
}

int px_node_submit(struct px_node *n, const struct px_value *v, struct px_ready *out)
{
    PX_ASSERT(v != NULL);
    px_begin(n, out);
    int rc = px_proposer_client(n, v, 0, out);
    px_end(n, out);
    PX_ASSERT(rc == 0 || rc == -EAGAIN);
    return rc;
}

void px_node_peer_status(struct px_node *n, uint16_t peer, bool alive, struct px_ready *out)
{
    px_begin(n, out);
    if (peer < n->cfg.nodes && peer != n->cfg.id) {
        if (alive) {
            n->alive_mask |= 1ull << peer;
        } else {
            n->alive_mask &= ~(1ull << peer);
            px_proposer_peer_down(n, peer, out);
        }
    }
    px_end(n, out);
    PX_ASSERT(peer >= n->cfg.nodes || peer == n->cfg.id || ((n->alive_mask >> peer) & 1u) == alive);
}

void px_node_congested(struct px_node *n)
{
    uint32_t before = n->cwnd;
    n->cwnd = n->cwnd > 1 ? n->cwnd / PX_CWND_DECREASE_DIV : 1;
    PX_ASSERT(n->cwnd >= 1);
    PX_ASSERT(n->cwnd <= before || before == 0);
}

void px_node_flush(struct px_node *n, struct px_ready *out)
{
    px_begin(n, out);
    px_acceptor_continue(n, out);
    px_learner_apply(n, out);
    px_proposer_pump(n, out);
    px_acceptor_flush(n, out);
    px_proposer_flush(n, out);
    emit_truncate(n, out);
    PX_ASSERT(n->ack_ballot == 0 || px_room_msgs(n, out) == 0); /* flushed, unless no room */
    px_check_invariants(n);
}

bool px_node_pending(const struct px_node *n)
{
    if (n->pout.active && n->pout.ballot == n->promised)
        return true; /* px_acceptor_continue streams the rest */
    const struct px_entry *e = px_log_get((struct px_node *)n, n->fib.applied + 1);
    if (px_has_role(n, n->cfg.id, PX_ROLE_LEARNER) && e != NULL && (e->flags & PX_E_DECIDED))
        return true; /* px_learner_apply stopped at its output bound */
    if (n->state != PX_LEADER)
        return false;
    e = px_log_get((struct px_node *)n, n->commit + 1);
    if (n->commit + 1 < n->next && e != NULL && (e->flags & PX_E_PROPOSED) &&
        e->acc_count >= n->quorum)
        return true; /* advance_commit stopped at its output bound */
    return !n->handing_over && n->q_len > 0 && n->next - 1 - n->commit < n->cwnd &&
           n->next - n->base < PX_LOG_MAX; /* the pump stopped at its output bound */
}

void px_node_set_roles(struct px_node *n, uint16_t node, uint64_t roles, struct px_ready *out)
{
    px_begin(n, out);
    if (node < n->cfg.nodes) {
        n->cfg.roles[node] = roles;
        if (count_acceptors(&n->cfg) >= 1)
            n->quorum = quorum_of(&n->cfg);
        PX_ASSERT(n->quorum >= 1); /* the last acceptor never leaves the quorum empty */
        if (node == n->cfg.id && !(roles & PX_ROLE_PROPOSER))
            px_proposer_step_down(n, out);
    }
    px_end(n, out);
    PX_ASSERT(node >= n->cfg.nodes || n->cfg.roles[node] == roles);
    PX_ASSERT(!(node == n->cfg.id && !(roles & PX_ROLE_PROPOSER)) || n->state == PX_FOLLOWER);
}

void px_ready_clear(struct px_ready *r)
{
    r->recs_len = 0;
    r->msgs_len = 0;
    r->apply_len = 0;
    r->snapshots_len = 0;
    r->snapshot = 0;
}

const struct px_history *px_node_history(const struct px_node *n)
{
    return &n->fib;
}

uint16_t px_node_leader(const struct px_node *n)
{
    PX_ASSERT(n->leader == PX_NODE_NONE || n->leader < n->cfg.nodes);
    return n->state == PX_LEADER ? n->cfg.id : n->leader;
}

bool px_node_is_leader(const struct px_node *n)
{
    PX_ASSERT(n->state != PX_LEADER || n->leader == n->cfg.id);
    return n->state == PX_LEADER;
}

bool px_node_queued(const struct px_node *n, const struct px_value *v)
{
    return px_proposer_queued(n, v);
}

const struct px_stats *px_node_stats(const struct px_node *n)
{
    return &n->stats;
}
