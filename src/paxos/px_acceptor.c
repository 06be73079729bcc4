/* px_acceptor.c: the acceptor ("Paxos Made Simple" 2.2, P1a and phase 2b).
 *
 * Promises and acceptances are durable before any reply: the PX_REC_PROMISE / PX_REC_ACCEPTED
 * record goes into the same ready as the reply, whose records the caller persists before it
 * sends. A long promise is streamed over several calls; ACCEPTED is cumulative ([lo, hi]) and,
 * with cfg->batch, coalesced until px_node_flush. */
#include "px_internal.h"

/* The acceptor's own records (the planted bug PX_BUG_REPLY_BEFORE_PERSIST holds them back to
 * the next call, so the reply goes out before they are durable). */
static struct px_rec *acc_rec(struct px_node *n, struct px_ready *out, uint8_t type)
{
#ifdef PX_BUG_REPLY_BEFORE_PERSIST
    (void)out;
    if (n->deferred_len >= PX_STEP_OUTPUT_MAX)
        return NULL;
    struct px_rec *r = &n->deferred[n->deferred_len++];
    *r = (struct px_rec){.type = type};
    return r;
#else
    PX_ASSERT(type == PX_REC_PROMISE || type == PX_REC_ACCEPTED);
    return px_out_rec(n, out, type);
#endif
}

void px_acceptor_nack(struct px_node *n, const struct px_msg *m, struct px_ready *out)
{
    PX_ASSERT(m->type == PX_MSG_PREPARE || m->type == PX_MSG_ACCEPT || m->type == PX_MSG_HEARTBEAT);
    PX_ASSERT(m->ballot < n->promised); /* only a ballot below the promise is refused */
    struct px_msg *r = px_out_msg(n, out, PX_MSG_NACK, m->from);
    if (r == NULL)
        return;
    r->ballot = n->promised;
    r->u.nack.rejected_ballot = m->ballot;
    n->stats.nacks++;
}

/* Raises the promise to b (durably). False when the record does not fit this call. */
static bool raise_promise(struct px_node *n, px_ballot_t b, struct px_ready *out)
{
    PX_ASSERT(b >= n->promised);
    if (b == n->promised)
        return true;
    struct px_rec *r = acc_rec(n, out, PX_REC_PROMISE);
    if (r == NULL)
        return false;
    r->ballot = b;
    n->promised = b;
    if (b > n->max_seen)
        n->max_seen = b;
    PX_ASSERT(n->promised == b);
    PX_ASSERT(n->promised <= n->max_seen);
    return true;
}

void px_acceptor_prepare(struct px_node *n, const struct px_msg *m, struct px_ready *out)
{
    PX_ASSERT(m->type == PX_MSG_PREPARE);
    if (m->ballot < n->promised) {
        px_acceptor_nack(n, m, out); /* P1a: never promise below a promise */
        return;
    }
    if (px_room_msgs(n, out) == 0 || !raise_promise(n, m->ballot, out)) {
        n->stats.dropped++; /* as if the PREPARE was lost; the proposer retries */
        return;
    }
    PX_ASSERT(n->promised == m->ballot); /* P1a: promised before the promise goes out */
    px_acceptor_flush(n, out);           /* acks of the old ballot first: they stay true */
    n->pout = (struct px_promise_out){
        .active = true,
        .to = m->from,
        .ballot = m->ballot,
        .from = m->instance,
        .next = m->instance,
    };
    px_acceptor_continue(n, out);
    PX_ASSERT(!n->pout.active || n->pout.ballot == n->promised);
}

bool px_acceptor_promise_local(struct px_node *n, px_ballot_t b, struct px_ready *out)
{
    PX_ASSERT(px_ballot_node(b) == n->cfg.id); /* only for the own campaign */
    if (b < n->promised)
        return false;
    bool ok = raise_promise(n, b, out);
    PX_ASSERT(!ok || n->promised == b);
    return ok;
}

static void promise_entry(struct px_node *n, const struct px_entry *e, struct px_ready *out)
{
    PX_ASSERT(n->pout.active);
    PX_ASSERT(e->flags & (PX_E_ACCEPTED | PX_E_DECIDED)); /* only what it holds is reported */
    struct px_msg *r = px_out_msg(n, out, PX_MSG_PROMISE_ENTRY, n->pout.to);
    PX_ASSERT(r != NULL);                   /* room checked by the caller */
    PX_ASSERT(e->instance >= n->pout.from); /* the stream reports from its PREPARE's instance */
    r->ballot = n->pout.ballot;
    r->instance = e->instance;
    r->u.promise_entry.value = e->acc_value;
    if (e->flags & PX_E_DECIDED)
        r->flags |= PX_FLAG_DECIDED;
    else
        r->u.promise_entry.accepted_ballot = e->acc_ballot;
    r->u.promise_entry.seq = ++n->pout.seq;
    r->u.promise_entry.truncated = n->base - 1;
}

/* Streams the active promise: every accepted (or decided) entry >= from, numbered, then the
 * PROMISE with the count. Continues on the next call when this call's output is full. A newer
 * PREPARE replaces the stream (its proposer sees an incomplete promise and ignores it). */
void px_acceptor_continue(struct px_node *n, struct px_ready *out)
{
    struct px_promise_out *p = &n->pout;
    if (!p->active || p->ballot != n->promised) {
        p->active = false;
        return;
    }
    if (p->next < n->base)
        p->next = n->base;
    PX_ASSERT(p->next >= p->from);
    while (p->next <= n->log_hi) {
        if (px_room_msgs(n, out) <= PX_ROOM_SPARE_MSGS)
            return; /* keep one slot: the stream resumes on the next call */
        const struct px_entry *e = px_log_get(n, p->next);
        if (e != NULL && (e->flags & (PX_E_ACCEPTED | PX_E_DECIDED)))
            promise_entry(n, e, out);
        p->next++;
    }
    struct px_msg *r = px_out_msg(n, out, PX_MSG_PROMISE, p->to);
    if (r == NULL)
        return;
    r->ballot = p->ballot;
    r->instance = p->from;
    r->u.promise.entries = p->seq;
    r->u.promise.truncated = n->base - 1;
    p->active = false;
    PX_ASSERT(r->ballot == n->promised);
}

void px_acceptor_flush(struct px_node *n, struct px_ready *out)
{
    if (n->ack_ballot == 0)
        return;
    PX_ASSERT(n->ack_lo <= n->ack_hi);
    PX_ASSERT(px_ballot_node(n->ack_ballot) < n->cfg.nodes); /* a leader's ballot */
    struct px_msg *r = px_out_msg(n, out, PX_MSG_ACCEPTED, px_ballot_node(n->ack_ballot));
    if (r == NULL)
        return; /* stays pending: sent on a later flush */
    r->ballot = n->ack_ballot;
    r->instance = n->ack_lo;
    r->u.accepted.hi = n->ack_hi;
    n->ack_ballot = 0;
}

/* Acknowledges (b, i): at once, or merged into the pending range (cfg->batch). */
static void ack(struct px_node *n, px_ballot_t b, px_inst_t i, struct px_ready *out)
{
    PX_ASSERT(i > 0);
    PX_ASSERT(b >= n->promised); /* P2b: acknowledge only where no higher promise exists */
    if (n->ack_ballot == b && i == n->ack_hi + 1) {
        n->ack_hi = i;
    } else if (!(n->ack_ballot == b && i >= n->ack_lo && i <= n->ack_hi)) {
        px_acceptor_flush(n, out);
        if (n->ack_ballot != 0)
            return; /* no room for the old range: this ack is lost, the leader resends */
        n->ack_ballot = b;
        n->ack_lo = i;
        n->ack_hi = i;
    }
    if (!n->cfg.batch)
        px_acceptor_flush(n, out);
    PX_ASSERT(n->ack_ballot == 0 || n->ack_lo <= n->ack_hi);
}

/* Accepts (b, i, v) into the log with its record. False if it cannot (ring full of undecided
 * entries, or no room for the records this call). */
static bool accept_entry(struct px_node *n, px_ballot_t b, px_inst_t i, const struct px_value *v,
                         struct px_ready *out)
{
    if (px_room_recs(n, out) < PX_ROOM_ACCEPT_RECS || !raise_promise(n, b, out))
        return false;
    PX_ASSERT(n->promised == b); /* raised above: promise >= accepted ballot */
    struct px_entry *e = px_log_make(n, i, out);
    if (e == NULL)
        return false;
    PX_ASSERT(e->instance == i);
    if (!(e->flags & PX_E_DECIDED))
        e->acc_value = *v; /* a decided entry keeps its value (P2c: equal anyway) */
    e->acc_ballot = b;
    e->flags |= PX_E_ACCEPTED;
    PX_ASSERT(e->acc_ballot <= n->promised); /* promise >= accepted ballot */
    struct px_rec *r = acc_rec(n, out, PX_REC_ACCEPTED);
    if (r != NULL) {
        r->instance = i;
        r->ballot = b;
        r->value = *v;
    }
    if (b == n->dec_ballot && i <= n->dec_hi && !(e->flags & PX_E_DECIDED))
        px_learner_decided(n, i, &e->acc_value); /* the DECIDE for it came first */
    return true;
}

void px_acceptor_accept(struct px_node *n, const struct px_msg *m, struct px_ready *out)
{
    PX_ASSERT(m->type == PX_MSG_ACCEPT); /* m->u.accept is this message's part */
    if (m->ballot < n->promised) {
        px_acceptor_nack(n, m, out); /* P1a: accept only if no higher promise */
        return;
    }
    if (m->instance == 0) {
        n->stats.dropped++;
        return;
    }
    if (m->instance < n->base) {
        /* Chosen and truncated here; the leader's value is the chosen one (P2c), so the ack
         * is true without a new record. */
        ack(n, m->ballot, m->instance, out);
        return;
    }
    if (px_room_msgs(n, out) < PX_ROOM_ACCEPT_MSGS ||
        !accept_entry(n, m->ballot, m->instance, &m->u.accept.value, out)) {
        n->stats.dropped++;
        return;
    }
    PX_ASSERT(n->promised == m->ballot); /* P2b: accepted at the ballot promised */
    ack(n, m->ballot, m->instance, out);
}

bool px_acceptor_accept_local(struct px_node *n, px_ballot_t b, px_inst_t i,
                              const struct px_value *v, struct px_ready *out)
{
    PX_ASSERT(px_ballot_node(b) == n->cfg.id); /* the leader's own proposal */
    PX_ASSERT(i > 0);
    if (b < n->promised)
        return false;
    return accept_entry(n, b, i, v, out);
}
