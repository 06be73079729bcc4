/* px_proposer.c: proposer and distinguished leader (Multi-Paxos, "Paxos Made Simple" 3).
 *
 * Phase 1 runs once per leadership for every instance from the first one this node lacks;
 * promises report accepted entries, the highest ballot per instance is adopted (P2c), gaps up
 * to the highest report become no-ops. Phase 2 then pipelines up to cwnd instances (AIMD).
 * Elections: the lowest-ranked live proposer campaigns first, others wait rank * election_ticks
 * plus seeded jitter, so duelling proposers settle instead of livelocking. */
#include <errno.h>
#include <string.h>

#include "px_internal.h"

/* Position of this node among the live proposers other than the current leader, by id. */
static uint32_t live_rank(const struct px_node *n)
{
    uint32_t r = 0;
    for (uint16_t p = 0; p < n->cfg.id; p++)
        if (p != n->leader && px_is_alive(n, p) && px_has_role(n, p, PX_ROLE_PROPOSER))
            r++;
    PX_ASSERT(r < n->cfg.nodes);
    return r;
}

void px_proposer_reset_timer(struct px_node *n, bool leader_lost)
{
    uint32_t e = n->cfg.election_ticks;
    PX_ASSERT(e >= PX_ELECTION_TICKS_MIN); /* config_ok */
    uint32_t jitter = (uint32_t)(px_rand(n) % (e / PX_ELECTION_JITTER_DIV + 1));
    n->elapsed = 0;
    n->timeout = (leader_lost ? 0 : e) + live_rank(n) * e + jitter + 1;
    PX_ASSERT(n->timeout > n->elapsed); /* a timer that is reset has not fired */
}

static void forward_queue(struct px_node *n, uint16_t to, struct px_ready *out)
{
    PX_ASSERT(to < n->cfg.nodes);
    while (n->q_len > 0 && to != n->cfg.id && px_room_msgs(n, out) > PX_FORWARD_RESERVE) {
        struct px_msg *m = px_out_msg(n, out, PX_MSG_CLIENT, to);
        PX_ASSERT(m != NULL); /* room checked by the loop */
        m->u.client.value = n->queue[n->q_head];
        m->flags |= 1u << PX_FLAG_HOPS_SHIFT;
        n->q_head = (n->q_head + 1) % PX_QUEUE_MAX;
        n->q_len--;
    }
}

void px_proposer_step_down(struct px_node *n, struct px_ready *out)
{
    (void)out;
    if (n->state == PX_FOLLOWER)
        return;
    n->state = PX_FOLLOWER;
    n->handing_over = false;
    if (n->leader == n->cfg.id)
        n->leader = PX_NODE_NONE;
    px_proposer_reset_timer(n, false);
    PX_ASSERT(n->state == PX_FOLLOWER);
    PX_ASSERT(n->leader != n->cfg.id);
}

void px_proposer_observe(struct px_node *n, px_ballot_t b, struct px_ready *out)
{
    if (b > n->max_seen)
        n->max_seen = b;
    if (n->state != PX_FOLLOWER && b > n->ballot)
        px_proposer_step_down(n, out); /* a higher ballot exists: ours cannot win */
    PX_ASSERT(n->max_seen >= b);       /* ballots seen only grow */
    PX_ASSERT(n->state == PX_FOLLOWER || n->ballot >= b);
}

void px_proposer_heard_leader(struct px_node *n, px_ballot_t b, struct px_ready *out)
{
    px_proposer_observe(n, b, out);
    if (b < n->leader_ballot || px_ballot_node(b) == n->cfg.id)
        return; /* a deposed leader's late message */
    if (n->state != PX_FOLLOWER)
        return; /* a lower ballot than ours (observe stepped us down otherwise) */
    bool changed = n->leader != px_ballot_node(b);
    n->leader = px_ballot_node(b);
    n->leader_ballot = b;
    if (changed)
        px_proposer_reset_timer(n, false);
    if (n->q_len > 0)
        forward_queue(n, n->leader, out); /* values held while there was no leader to take them */
    n->elapsed = 0;
    PX_ASSERT(n->leader_ballot == b);
    PX_ASSERT(n->leader == px_ballot_node(b));
}

/* First instance this node does not know decided: phase 1 starts there. A proposer that is
 * no learner applies nothing and needs no chosen value: it also starts past what it knows is
 * chosen (chosen_hi: its decisions, DECIDEs, truncation reports) and some learner's state
 * machine holds (hint_seen, the leaders' truncation hint: every live learner applied that
 * far), so no learner can need it to propose those instances again to learn them. Without
 * this its only knowledge was the DECIDED flags of its ring: after a truncation report or a
 * restart its PREPARE asked every acceptor for every entry above that acceptor's truncation
 * point, decided or not; under rotation each campaign streamed the whole untruncated log
 * and re-proposed it, and with small rings phase 1 outlasted its timeout. Above the hint it
 * still asks: decided flags are not durable on nodes that are no learners, so re-proposing
 * is how a learner that missed those decisions learns them once their holders restarted. */
static px_inst_t first_undecided(struct px_node *n)
{
    px_inst_t i = n->fib.applied + 1 > n->base ? n->fib.applied + 1 : n->base;
    px_inst_t held = n->chosen_hi < n->hint_seen ? n->chosen_hi : n->hint_seen;
    if (!px_has_role(n, n->cfg.id, PX_ROLE_LEARNER) && held + 1 > i)
        i = held + 1;
    PX_ASSERT(i >= n->base);
    PX_ASSERT(i > n->fib.applied);
    for (;;) {
        const struct px_entry *e = px_log_get(n, i);
        if (e == NULL || !(e->flags & PX_E_DECIDED))
            return i;
        i++;
    }
}

/* `trunc`: a reporter dropped every instance <= trunc, so they are chosen. */
static void note_trunc(struct px_node *n, px_inst_t trunc)
{
    PX_ASSERT(n->state == PX_CANDIDATE || trunc == n->base - 1);
    px_note_chosen(n, trunc);
    if (trunc >= n->p1_start)
        n->p1_start = trunc + 1; /* chosen below: learned by catch-up, never re-proposed */
    PX_ASSERT(n->p1_start > trunc);
}

/* Merges one reported entry (ballot, or PX_BALLOT_DECIDED) into the candidate's proposals:
 * the highest ballot per instance wins (P2c). False if the ring cannot hold it. */
static bool merge_report(struct px_node *n, px_inst_t i, px_ballot_t ballot,
                         const struct px_value *v, px_inst_t trunc, struct px_ready *out)
{
    note_trunc(n, trunc);
    if (i < n->p1_start || i < n->base)
        return true; /* chosen (below the base: truncated here since phase 1 began) */
    struct px_entry *e = px_log_make(n, i, out);
    if (e == NULL)
        return false;
    if (!(e->flags & PX_E_REPORTED) || ballot > e->prop_ballot) {
        e->prop_ballot = ballot;
        e->prop_value = *v;
        e->flags |= PX_E_REPORTED;
    }
    if (i > n->p1_max)
        n->p1_max = i;
    PX_ASSERT(e->flags & PX_E_REPORTED);
    PX_ASSERT(e->prop_ballot >= ballot); /* P2c: the highest report per instance wins */
    return true;
}

static void merge_own_entries(struct px_node *n, struct px_ready *out)
{
    PX_ASSERT(n->state == PX_CANDIDATE);
    PX_ASSERT(n->promised == n->ballot); /* its own promise counts only for its own ballot */
    px_note_chosen(n, n->base - 1);
    for (px_inst_t i = n->p1_from > n->base ? n->p1_from : n->base; i <= n->log_hi; i++) {
        const struct px_entry *e = px_log_get(n, i);
        if (e == NULL || !(e->flags & (PX_E_ACCEPTED | PX_E_DECIDED)))
            continue;
        px_ballot_t b = (e->flags & PX_E_DECIDED) ? PX_BALLOT_DECIDED : e->acc_ballot;
        struct px_value v = e->acc_value;
        (void)merge_report(n, i, b, &v, n->base - 1, out);
    }
}

static void send_heartbeat(struct px_node *n, struct px_ready *out);
static void become_leader(struct px_node *n, struct px_ready *out);

static void count_promise(struct px_node *n, uint16_t from, struct px_ready *out)
{
    PX_ASSERT(from < n->cfg.nodes);
    PX_ASSERT(px_has_role(n, from, PX_ROLE_ACCEPTOR)); /* only acceptors make a quorum */
    if ((n->promise_mask >> from) & 1u)
        return;
    n->promise_mask |= 1ull << from;
    n->promise_count++;
    if (n->promise_count >= n->quorum)
        become_leader(n, out);
}

static void campaign(struct px_node *n, struct px_ready *out)
{
    if (!px_has_role(n, n->cfg.id, PX_ROLE_PROPOSER) ||
        px_room_msgs(n, out) < PX_ROOM_CAMPAIGN_MSGS ||
        px_room_recs(n, out) < PX_ROOM_CAMPAIGN_RECS)
        return; /* retried on the next tick */
    px_ballot_t ballot_before = n->ballot;
    n->ballot = px_ballot_make(px_ballot_counter(n->max_seen) + 1, n->cfg.id);
    PX_ASSERT(n->ballot > n->max_seen);   /* above every ballot seen: never reused */
    PX_ASSERT(n->ballot > ballot_before); /* own ballots are monotonic */
    n->max_seen = n->ballot;
    n->state = PX_CANDIDATE;
    n->leader = PX_NODE_NONE;
    n->elapsed = 0;
    n->p1_from = first_undecided(n);
    n->p1_start = n->p1_from;
    n->p1_max = n->p1_from - 1;
    n->promise_mask = 0;
    n->promise_count = 0;
    memset(n->promises, 0, sizeof(n->promises));
    for (px_inst_t i = n->base; i <= n->log_hi; i++) {
        struct px_entry *e = px_log_get(n, i);
        if (e != NULL)
            e->flags &= (uint16_t) ~(PX_E_REPORTED | PX_E_PROPOSED);
    }
    n->stats.campaigns++;
    PX_ASSERT(n->p1_from >= n->base);
    PX_ASSERT(n->p1_from > n->fib.applied); /* phase 1 never re-opens what is applied */
    struct px_msg *m = px_out_msg(n, out, PX_MSG_PREPARE, PX_TO_ALL);
    PX_ASSERT(m != NULL); /* room checked above */
    m->ballot = n->ballot;
    m->instance = n->p1_from;
    if (px_has_role(n, n->cfg.id, PX_ROLE_ACCEPTOR)) {
        if (px_acceptor_promise_local(n, n->ballot, out)) { /* records the ballot */
            merge_own_entries(n, out);
            count_promise(n, n->cfg.id, out);
        }
    } else {
        /* Ballots must be unique: a proposer that is no acceptor still makes its ballot
         * durable before the PREPARE goes out, so after a restart it never reuses it. */
        struct px_rec *r = px_out_rec(n, out, PX_REC_PROMISE);
        PX_ASSERT(r != NULL); /* room checked above */
        r->ballot = n->ballot;
    }
}

void px_proposer_promise_entry(struct px_node *n, const struct px_msg *m, struct px_ready *out)
{
    PX_ASSERT(m->type == PX_MSG_PROMISE_ENTRY); /* m->u.promise_entry is this message's part */
    if (n->state != PX_CANDIDATE || m->ballot != n->ballot || m->instance == 0)
        return;
    PX_ASSERT(m->from < PX_NODES_MAX);
    struct px_promise_slot *s = &n->promises[m->from];
    if (m->u.promise_entry.seq == 1)
        *s = (struct px_promise_slot){.ballot = n->ballot, .next_seq = 1};
    if (s->ballot != n->ballot || m->u.promise_entry.seq != s->next_seq) {
        s->ballot = n->ballot;
        s->broken = true; /* lost, duplicated or reordered entry */
    } else {
        s->next_seq++;
    }
    px_ballot_t b =
        (m->flags & PX_FLAG_DECIDED) ? PX_BALLOT_DECIDED : m->u.promise_entry.accepted_ballot;
    if (!merge_report(n, m->instance, b, &m->u.promise_entry.value, m->u.promise_entry.truncated,
                      out))
        s->broken = true; /* could not hold it: do not count this promise */
    PX_ASSERT(s->ballot == n->ballot);
}

void px_proposer_promise(struct px_node *n, const struct px_msg *m, struct px_ready *out)
{
    PX_ASSERT(m->type == PX_MSG_PROMISE); /* m->u.promise is this message's part */
    if (n->state != PX_CANDIDATE || m->ballot != n->ballot ||
        !px_has_role(n, m->from, PX_ROLE_ACCEPTOR))
        return;
    const struct px_promise_slot *s = &n->promises[m->from];
    uint64_t entries = m->u.promise.entries;
    bool complete = entries == 0
                        ? (s->ballot != n->ballot || (!s->broken && s->next_seq == 1))
                        : (s->ballot == n->ballot && !s->broken && s->next_seq == entries + 1);
    if (!complete)
        return; /* an incomplete promise is not counted; phase 1 times out and retries */
    PX_ASSERT(m->ballot == n->ballot);
    note_trunc(n, m->u.promise.truncated);
    count_promise(n, m->from, out);
    PX_ASSERT((n->promise_mask >> m->from) & 1u);
}

void px_proposer_nack(struct px_node *n, const struct px_msg *m, struct px_ready *out)
{
    PX_ASSERT(m->type == PX_MSG_NACK); /* m->u.nack is this message's part */
    if (m->ballot > n->max_seen)
        n->max_seen = m->ballot;
    if (n->state != PX_FOLLOWER && m->u.nack.rejected_ballot == n->ballot && m->ballot > n->ballot)
        px_proposer_step_down(n, out);
    PX_ASSERT(n->max_seen >= m->ballot);
}

static void propose(struct px_node *n, struct px_entry *e, const struct px_value *v,
                    struct px_ready *out)
{
    PX_ASSERT(n->state == PX_LEADER);
    PX_ASSERT(e->instance == n->next);
    e->prop_ballot = n->ballot;
    e->prop_value = *v;
    e->flags |= PX_E_PROPOSED;
    e->acc_mask = 0;
    e->acc_count = 0;
    struct px_msg *m = px_out_msg(n, out, PX_MSG_ACCEPT, PX_TO_ALL);
    PX_ASSERT(m != NULL); /* room checked by px_proposer_pump */
    m->ballot = n->ballot;
    m->instance = e->instance;
    m->u.accept.value = *v;
    m->u.accept.decided_hi = n->commit;
    if (n->commit > n->decide_sent)
        n->decide_sent = n->commit;
    if (px_has_role(n, n->cfg.id, PX_ROLE_ACCEPTOR) &&
        px_acceptor_accept_local(n, n->ballot, e->instance, v, out)) {
        e->acc_mask |= 1ull << n->cfg.id;
        e->acc_count++;
    }
}

static void advance_commit(struct px_node *n, struct px_ready *out);

static void become_leader(struct px_node *n, struct px_ready *out)
{
    PX_ASSERT(n->state == PX_CANDIDATE);
    PX_ASSERT(n->promise_count >= n->quorum); /* phase 1 done: a quorum promised */
    /* The base moved past phase 1's start while the promises arrived (a snapshot installed
     * from a catch-up reply, a truncation hint): every instance below the base is chosen and
     * its slot is gone, so phase 2 starts at the base. */
    if (n->p1_start < n->base)
        n->p1_start = n->base;
    n->state = PX_LEADER;
    n->leader = n->cfg.id;
    n->leader_ballot = n->ballot;
    n->stats.elections_won++;
    n->commit = n->p1_start - 1;
    n->next = n->p1_start;
    px_note_chosen(n, n->commit);
    n->decide_sent = 0;
    /* Every instance phase 1 reported is re-proposed at once (one round trip for the whole
     * window the old leader left), then AIMD takes over from there. */
    uint32_t reported = n->p1_max >= n->p1_start ? (uint32_t)(n->p1_max - n->p1_start + 1) : 0;
    n->cwnd = reported > PX_CWND_INIT ? reported : PX_CWND_INIT;
    if (n->cwnd > n->cfg.window_max)
        n->cwnd = n->cfg.window_max;
    n->rotate_count = 0;
    n->handing_over = false;
    n->resend_commit = n->commit;
    n->resend_elapsed = 0;
    memset(n->acked, 0, sizeof(n->acked));
    PX_ASSERT(n->base <= n->commit + 1); /* base <= commit + 1 <= next */
    PX_ASSERT(n->commit < n->next);
    PX_ASSERT(n->cwnd >= 1);
    send_heartbeat(n, out);
}

/* The value for instance n->next, or false when there is nothing to propose yet. */
static bool next_value(struct px_node *n, const struct px_entry *e, struct px_value *v)
{
    (void)e; /* unused when the planted bug PX_BUG_NO_ADOPT compiles adoption out */
    PX_ASSERT(e->instance == n->next);
    PX_ASSERT(n->next >= n->p1_start); /* nothing below phase 1's start is proposed again */
    if (n->next <= n->p1_max) {
#ifndef PX_BUG_NO_ADOPT
        if (e->flags & PX_E_REPORTED) {
            *v = e->prop_value; /* P2c: the value of the highest-numbered report */
            return true;
        }
#endif
        if (n->q_len == 0) {
            *v = (struct px_value){0}; /* a gap: fill it with a no-op */
            return true;
        }
    } else if (n->q_len == 0) {
        return false;
    }
    PX_ASSERT(n->q_len > 0);
    *v = n->queue[n->q_head];
    n->q_head = (n->q_head + 1) % PX_QUEUE_MAX;
    n->q_len--;
    PX_ASSERT(n->q_len < PX_QUEUE_MAX);
    return true;
}

static void reply_client(struct px_node *n, px_inst_t i, const struct px_value *v,
                         struct px_ready *out);

/* Answers queued resubmissions this leader has already applied (reply instance 0: "applied
 * earlier"), so they do not take log slots. Bounded by the call's output room. */
static void skip_applied(struct px_node *n, struct px_ready *out)
{
    if (!px_has_role(n, n->cfg.id, PX_ROLE_LEARNER))
        return;
    PX_ASSERT(n->state == PX_LEADER);
    while (n->q_len > 0 && px_room_msgs(n, out) > PX_ROOM_PROPOSE_MSGS &&
           px_history_seen(&n->fib, &n->queue[n->q_head])) {
        reply_client(n, 0, &n->queue[n->q_head], out);
        n->q_head = (n->q_head + 1) % PX_QUEUE_MAX;
        n->q_len--;
    }
}

static void hand_over(struct px_node *n, struct px_ready *out);
static px_inst_t learners_max_ack(const struct px_node *n);

void px_proposer_pump(struct px_node *n, struct px_ready *out)
{
    if (n->state != PX_LEADER)
        return;
    PX_ASSERT(n->leader == n->cfg.id);
    PX_ASSERT(n->cwnd >= 1); /* a window of 0 would stall the leader for good */
    if (n->handing_over) {
        /* No new proposals, but the decisions a full output cut short continue here: the
         * hand-over waits for them, and no further ACCEPTED may come to trigger them. */
        advance_commit(n, out);
        hand_over(n, out);
        return;
    }
    while (n->next - 1 - n->commit < n->cwnd && px_room_msgs(n, out) >= PX_ROOM_PROPOSE_MSGS &&
           px_room_recs(n, out) >= PX_ROOM_PROPOSE_RECS) {
        if (n->next - n->base >= PX_LOG_MAX && n->next - PX_LOG_MAX > learners_max_ack(n))
            break; /* the ring is full of entries no learner applied yet: backpressure */
        struct px_entry *e = px_log_make(n, n->next, out);
        if (e == NULL)
            break; /* the ring is full of undecided entries: backpressure */
        PX_ASSERT(!(e->flags & PX_E_PROPOSED)); /* never two proposals for one slot */
        skip_applied(n, out);
        struct px_value v;
        if (!next_value(n, e, &v))
            break;
        propose(n, e, &v, out);
        n->next++;
        n->stats.proposed++;
    }
    advance_commit(n, out); /* a lone acceptor (or a planted quorum of one) decides at once */
    PX_ASSERT(n->state != PX_LEADER || n->commit < n->next);
}

/* CLIENT_REPLY(client_id, seq, instance); instance 0 = applied at an earlier instance. */
static void reply_client(struct px_node *n, px_inst_t i, const struct px_value *v,
                         struct px_ready *out)
{
    if (v->client_id == 0)
        return;
    PX_ASSERT(n->state == PX_LEADER);
    struct px_msg *m = px_out_msg(n, out, PX_MSG_CLIENT_REPLY, PX_CLIENT_NODE(&n->cfg));
    PX_ASSERT(m != NULL); /* room checked by the callers */
    PX_ASSERT(i <= n->commit);
    m->u.client_reply.value = *v;
    m->instance = i;
}

static void advance_commit(struct px_node *n, struct px_ready *out)
{
    PX_ASSERT(n->state == PX_LEADER);
    PX_ASSERT(n->commit < n->next);
    while (n->commit + 1 < n->next && px_room_msgs(n, out) > PX_ROOM_SPARE_MSGS) {
        struct px_entry *e = px_log_get(n, n->commit + 1);
        if (e == NULL) {
            /* Our in-flight entry was dropped because this node learned (catch-up, snapshot)
             * that it is chosen beyond our commit: a newer leader exists. */
            px_proposer_step_down(n, out);
            return;
        }
        if (!(e->flags & PX_E_PROPOSED) || e->acc_count < n->quorum)
            break;
        PX_ASSERT(e->prop_ballot == n->ballot); /* decided by this leadership's quorum */
        PX_ASSERT(e->acc_mask != 0);            /* the quorum's acceptors are on record */
        n->commit++;
        px_note_chosen(n, n->commit);
        px_learner_decided(n, n->commit, &e->prop_value);
        reply_client(n, n->commit, &e->prop_value, out);
        n->stats.decided++;
        if (n->cwnd < n->cfg.window_max)
            n->cwnd++;
        if (n->commit > n->p1_max)
            n->rotate_count++; /* only new instances: re-decided phase 1 ones are no progress */
    }
    if (n->cfg.rotate_every > 0 && n->rotate_count >= n->cfg.rotate_every && !n->handing_over)
        n->handing_over = true;
}

void px_proposer_accepted(struct px_node *n, const struct px_msg *m, struct px_ready *out)
{
    PX_ASSERT(m->type == PX_MSG_ACCEPTED); /* m->u.accepted is this message's part */
    if (n->state != PX_LEADER || m->ballot != n->ballot ||
        !px_has_role(n, m->from, PX_ROLE_ACCEPTOR))
        return;
    PX_ASSERT(m->from < n->cfg.nodes);
    uint64_t bit = 1ull << m->from;
    px_inst_t lo = m->instance > n->commit + 1 ? m->instance : n->commit + 1;
    px_inst_t hi = m->u.accepted.hi < n->next ? m->u.accepted.hi : n->next - 1;
    for (px_inst_t i = lo; i <= hi; i++) {
        struct px_entry *e = px_log_get(n, i);
        if (e != NULL && (e->flags & PX_E_PROPOSED) && !(e->acc_mask & bit)) {
            e->acc_mask |= bit;
            e->acc_count++;
            PX_ASSERT(e->acc_count <= n->cfg.nodes);
        }
    }
    advance_commit(n, out);
}

/* The next live proposer after this node, by id, wrapping; PX_NODE_NONE if there is none. */
static uint16_t rotation_target(const struct px_node *n)
{
    for (uint16_t k = 1; k < n->cfg.nodes; k++) {
        uint16_t p = (uint16_t)((n->cfg.id + k) % n->cfg.nodes);
        if (px_is_alive(n, p) && px_has_role(n, p, PX_ROLE_PROPOSER)) {
            PX_ASSERT(p != n->cfg.id);
            return p;
        }
    }
    return PX_NODE_NONE;
}

/* Planned rotation: no new proposals; once the in-flight ones are decided, ask the next
 * proposer to campaign, give it the queued values and step down. */
static void hand_over(struct px_node *n, struct px_ready *out)
{
    uint16_t to = rotation_target(n);
    if (to == PX_NODE_NONE) {
        n->handing_over = false; /* nobody to hand to: keep leading */
        n->rotate_count = 0;
        return;
    }
    if (n->commit + 1 < n->next || px_room_msgs(n, out) < PX_ROOM_HANDOVER_MSGS)
        return;
    PX_ASSERT(n->commit + 1 == n->next); /* nothing in flight is left behind */
    px_proposer_flush(n, out); /* learners get the last decisions before the leader goes */
    struct px_msg *m = px_out_msg(n, out, PX_MSG_TAKEOVER, to);
    PX_ASSERT(m != NULL); /* room checked above */
    m->ballot = n->ballot;
    m->instance = n->commit;
    n->state = PX_FOLLOWER;
    n->handing_over = false;
    n->leader = to;
    forward_queue(n, to, out);
    px_proposer_reset_timer(n, false);
    n->timeout += n->cfg.election_ticks; /* give the successor time to win */
}

/* A learner more than PX_CAMPAIGN_LAG_MAX (px.h) behind what it knows is chosen (restarted,
 * partitioned, slow): its phase 1 would cost about that many promise entries per acceptor. */
static bool far_behind(const struct px_node *n)
{
    return px_has_role(n, n->cfg.id, PX_ROLE_LEARNER) &&
           n->chosen_hi > n->fib.applied + PX_CAMPAIGN_LAG_MAX;
}

/* The leader asks this node to campaign now (planned rotation). A successor far behind hands
 * the request back (handed_back = 1) instead, so the up-to-date former leader campaigns at once; a
 * request handed back is never returned again, so two lagging nodes cannot bounce it. */
void px_proposer_takeover(struct px_node *n, const struct px_msg *m, struct px_ready *out)
{
    PX_ASSERT(m->type == PX_MSG_TAKEOVER);
    px_proposer_observe(n, m->ballot, out);
    if (n->state != PX_FOLLOWER || !px_has_role(n, n->cfg.id, PX_ROLE_PROPOSER))
        return;
    if (far_behind(n) && m->u.takeover.handed_back == 0) {
        struct px_msg *r = px_out_msg(n, out, PX_MSG_TAKEOVER, m->from);
        if (r != NULL) {
            r->ballot = m->ballot;
            r->u.takeover.handed_back = 1;
        }
        return; /* no room: the election timers elect someone */
    }
    campaign(n, out);
}

void px_proposer_ack(struct px_node *n, const struct px_msg *m)
{
    PX_ASSERT(m->type == PX_MSG_ACK);
    PX_ASSERT(m->from < n->cfg.nodes);
    if (m->instance > n->acked[m->from])
        n->acked[m->from] = m->instance;
    PX_ASSERT(n->acked[m->from] >= m->instance); /* acknowledged indexes only grow */
}

/* The highest index any learner (live or not) acknowledged: beyond it no learner holds the
 * state, so a snapshot could not replace the entries. UINT64_MAX when there are no learners. */
static px_inst_t learners_max_ack(const struct px_node *n)
{
    px_inst_t m = 0;
    bool any = false;
    for (uint16_t p = 0; p < n->cfg.nodes; p++) {
        if (!px_has_role(n, p, PX_ROLE_LEARNER))
            continue;
        any = true;
        px_inst_t a = p == n->cfg.id ? n->fib.applied : n->acked[p];
        if (a > m)
            m = a;
    }
    PX_ASSERT(!any || m != UINT64_MAX);
    return any ? m : UINT64_MAX;
}

/* Everything <= the result was applied by every live learner (the leader's own included), and
 * by at least one learner at all (when every learner is down, nothing is dropped). */
static px_inst_t truncation_hint(const struct px_node *n)
{
    px_inst_t h = n->commit;
    for (uint16_t p = 0; p < n->cfg.nodes; p++) {
        if (!px_is_alive(n, p) || !px_has_role(n, p, PX_ROLE_LEARNER))
            continue;
        px_inst_t a = p == n->cfg.id ? n->fib.applied : n->acked[p];
        if (a < h)
            h = a;
    }
    px_inst_t m = learners_max_ack(n);
    px_inst_t hint = h < m ? h : m;
    PX_ASSERT(hint <= n->commit); /* never beyond what this leader knows decided */
    return hint;
}

static void send_heartbeat(struct px_node *n, struct px_ready *out)
{
    PX_ASSERT(n->state == PX_LEADER);
    px_inst_t hint = truncation_hint(n);
    PX_ASSERT(hint <= n->chosen_hi);
    if (hint >= n->base - 1 + PX_TRUNCATE_STEP)
        px_log_truncate(n, hint, out);
    struct px_msg *m = px_out_msg(n, out, PX_MSG_HEARTBEAT, PX_TO_ALL);
    if (m == NULL)
        return;
    m->ballot = n->ballot;
    m->u.heartbeat.decided_hi = n->commit;
    m->u.heartbeat.truncate_hint = hint;
    if (hint > n->hint_seen)
        n->hint_seen = hint;
    n->decide_sent = n->commit;
    n->hb_elapsed = 0;
}

void px_proposer_flush(struct px_node *n, struct px_ready *out)
{
    if (n->state != PX_LEADER || n->commit <= n->decide_sent)
        return;
    PX_ASSERT(n->commit <= n->chosen_hi);
    struct px_msg *m = px_out_msg(n, out, PX_MSG_DECIDE, PX_TO_ALL);
    if (m == NULL)
        return;
    m->ballot = n->ballot;
    m->u.decide.hi = n->commit;
    n->decide_sent = n->commit;
    PX_ASSERT(n->decide_sent < n->next);
}

/* Retransmits the in-flight ACCEPTs when the commit point stalled (lost messages). */
static void resend(struct px_node *n, struct px_ready *out)
{
    if (n->commit != n->resend_commit || n->commit + 1 >= n->next) {
        n->resend_commit = n->commit;
        n->resend_elapsed = 0;
        return;
    }
    if (++n->resend_elapsed < PX_RESEND_TICKS)
        return;
    n->resend_elapsed = 0;
    for (px_inst_t i = n->commit + 1; i < n->next && px_room_msgs(n, out) >= PX_ROOM_PROPOSE_MSGS;
         i++) {
        const struct px_entry *e = px_log_get(n, i);
        if (e == NULL || !(e->flags & PX_E_PROPOSED)) {
            px_proposer_step_down(n, out); /* dropped: chosen under a newer leader */
            return;
        }
        if (e->acc_count >= n->quorum)
            continue;
        struct px_msg *m = px_out_msg(n, out, PX_MSG_ACCEPT, PX_TO_ALL);
        PX_ASSERT(m != NULL);                   /* room checked by the loop */
        PX_ASSERT(e->prop_ballot == n->ballot); /* the same proposal, never a new value */
        m->ballot = n->ballot;
        m->instance = i;
        m->u.accept.value = e->prop_value;
        m->u.accept.decided_hi = n->commit;
        n->stats.resent++;
    }
}

/* A proposer far behind catches up first: it waits PX_CAMPAIGN_DEFER_TIMEOUTS (px.h) more
 * election timeouts before it campaigns. */
static bool defer_campaign(const struct px_node *n)
{
    PX_ASSERT(n->state == PX_FOLLOWER);
    return far_behind(n) &&
           n->elapsed < n->timeout + PX_CAMPAIGN_DEFER_TIMEOUTS * n->cfg.election_ticks;
}

void px_proposer_tick(struct px_node *n, struct px_ready *out)
{
    PX_ASSERT(n->cfg.heartbeat_ticks < n->cfg.election_ticks); /* config_ok */
    switch (n->state) {
    case PX_LEADER:
        if (++n->hb_elapsed >= n->cfg.heartbeat_ticks)
            send_heartbeat(n, out);
        resend(n, out);
        break;
    case PX_CANDIDATE:
        if (++n->elapsed >= n->cfg.election_ticks)
            px_proposer_step_down(n, out); /* phase 1 stalled: back off, then retry */
        break;
    default:
        if (!px_has_role(n, n->cfg.id, PX_ROLE_PROPOSER))
            break;
        if (++n->elapsed >= n->timeout && !defer_campaign(n))
            campaign(n, out);
        break;
    }
}

/* The failure detector is exact for crashes (and the hung-node watch errs only on liveness):
 * when it reports the leader down, the first live proposer by id campaigns in this very call,
 * with no timer. The others keep a timer, rank * election_ticks plus jitter, so the seeded
 * back-off still separates them if that campaign fails. A proposer far behind does not jump
 * the queue: its phase 1 would be long (far_behind), so it keeps its deferred timer. */
void px_proposer_peer_down(struct px_node *n, uint16_t peer, struct px_ready *out)
{
    PX_ASSERT(peer < n->cfg.nodes);
    PX_ASSERT(peer != n->cfg.id); /* checked by px_node_peer_status */
    if (n->state != PX_FOLLOWER)
        return;
    /* The dead peer led, or may have: no leader is known and the highest ballot seen is its
     * (a leader killed right after it won, before its first message reached us). Either way
     * the election must not wait for a timer. The death of any other peer changes nothing. */
    bool unheard_leader =
        n->leader == PX_NODE_NONE && n->max_seen != 0 && px_ballot_node(n->max_seen) == peer;
    if (peer != n->leader && !unheard_leader)
        return;
    px_proposer_reset_timer(n, true);
    n->leader = PX_NODE_NONE;
    if (live_rank(n) != 0 || !px_has_role(n, n->cfg.id, PX_ROLE_PROPOSER))
        return;
    if (!far_behind(n)) {
        campaign(n, out);
        return;
    }
    /* Far behind, its phase 1 would be long: the next live proposer is asked to campaign now
     * (handed_back = 1: it campaigns even if it is behind too) rather than wait its
     * rank's election timeout. */
    uint16_t to = rotation_target(n);
    struct px_msg *m = to == PX_NODE_NONE ? NULL : px_out_msg(n, out, PX_MSG_TAKEOVER, to);
    if (m == NULL)
        return; /* nobody to ask, or no room: the election timers elect someone */
    m->ballot = n->max_seen;
    m->instance = n->commit;
    m->u.takeover.handed_back = 1;
}

/* True when the request (client_id, seq) of v is already queued here. */
bool px_proposer_queued(const struct px_node *n, const struct px_value *v)
{
    PX_ASSERT(n->q_len <= PX_QUEUE_MAX);
    for (uint32_t k = 0; k < n->q_len; k++) {
        const struct px_value *q = &n->queue[(n->q_head + k) % PX_QUEUE_MAX];
        if (px_value_client(q) == px_value_client(v) && q->seq == v->seq)
            return true;
    }
    return false;
}

/* Queues a client value. A node that is no learner keeps one copy per request: it cannot tell
 * an applied request from a new one (skip_applied needs the state machine), so as leader it
 * proposed every copy -- a resubmission, a network duplicate -- each into an instance of its
 * own, and as a follower it forwarded them all on every hand-over. Under rotation the copies
 * outlived the leaderships and multiplied (seeds 201657, 409862, 466399: one request forwarded
 * 23,593 times). A learner's leader drops applied copies as it proposes and pays no scan. */
static int enqueue(struct px_node *n, const struct px_value *v)
{
    PX_ASSERT(n->q_head < PX_QUEUE_MAX);
    if (v->client_id != 0 && !px_has_role(n, n->cfg.id, PX_ROLE_LEARNER) &&
        px_proposer_queued(n, v))
        return 0; /* the copy already queued stands for it */
    if (n->q_len >= PX_QUEUE_MAX)
        return -EAGAIN;
    n->queue[(n->q_head + n->q_len) % PX_QUEUE_MAX] = *v;
    n->q_len++;
    PX_ASSERT(n->q_len <= PX_QUEUE_MAX);
    return 0;
}

int px_proposer_client(struct px_node *n, const struct px_value *v, uint32_t hops,
                       struct px_ready *out)
{
    if (n->state == PX_LEADER || n->state == PX_CANDIDATE)
        return enqueue(n, v);
    uint16_t l = n->leader;
    if (l != PX_NODE_NONE && l != n->cfg.id && px_is_alive(n, l) && hops < PX_HOPS_MAX &&
        px_room_msgs(n, out) > PX_ROOM_SPARE_MSGS) {
        struct px_msg *m = px_out_msg(n, out, PX_MSG_CLIENT, l);
        PX_ASSERT(m != NULL);                                      /* room checked above */
        PX_ASSERT(hops + 1 <= PX_FLAG_HOPS >> PX_FLAG_HOPS_SHIFT); /* fits the flag bits */
        m->u.client.value = *v;
        m->flags |= (uint8_t)((hops + 1) << PX_FLAG_HOPS_SHIFT);
        return 0;
    }
    return enqueue(n, v);
}
