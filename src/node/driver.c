/* driver.c: the node driver (driver.h). Pure glue between the core, the transport and the
 * store: no clock, no randomness, no printing of its own -- everything it needs is given. */
#include "node/driver.h"

#include <errno.h>
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

/* Hands the committed messages to the transport, in the core's order. */
static int send_all(struct driver *d, struct driver_flush *f)
{
    const struct px_ready *r = d->ready;
    for (uint32_t i = 0; i < r->msgs_len; i++) {
        const struct px_msg *m = &r->msgs[i];
        trace(d, true, m);
        while (transport_send(d->t, m) == -ENOBUFS) {
            /* The outbox is full: push what the rings take, tell the core to send less. */
            px_node_congested(d->core);
            if (transport_flush(d->t) > 0)
                transport_wait(d->t, DRIVER_RETRY_NS);
        }
        f->sent++;
        if (fp_hit(d, DRIVER_FP_AFTER_SEND, f))
            return DRIVER_DIED;
    }
    return 0;
}

/* The flush point: persists the ready's records and the applied state in one transaction, then
 * hands its messages to the transport. The order is the safety rule of the whole system:
 * nothing is sent before the record behind it is durable. */
static int flush_point(struct driver *d)
{
    struct px_ready *r = d->ready;
    const struct px_fib *fib = px_node_fib(d->core);
    bool fib_changed = fib->applied != d->applied_persisted;
    struct driver_flush f = {.persists = r->recs_len > 0 || fib_changed, .msgs = r->msgs_len};
    if (fp_hit(d, DRIVER_FP_BEFORE_PERSIST, &f))
        return DRIVER_DIED;
    if (f.persists) {
        int rc = persist_ready(d->store, r, fib_changed ? fib : NULL);
        if (rc != 0)
            return rc;
        d->applied_persisted = fib->applied;
        d->stats.batches++;
        d->stats.records += r->recs_len;
    }
    if (d->env.committed != NULL)
        d->env.committed(d->env.ctx, r);
    if (fp_hit(d, DRIVER_FP_AFTER_PERSIST, &f))
        return DRIVER_DIED;
    int rc = send_all(d, &f);
    if (rc != 0)
        return rc;
    px_ready_clear(r);
    return 0;
}

/* Room for one more core call (px.h: PX_STEP_OUTPUT_MAX free slots in each array). */
static bool call_fits(const struct px_ready *r)
{
    return r->recs_len + PX_STEP_OUTPUT_MAX <= PX_READY_RECS_MAX &&
           r->msgs_len + PX_STEP_OUTPUT_MAX <= PX_READY_MSGS_MAX &&
           r->apply_len + PX_STEP_OUTPUT_MAX <= PX_READY_APPLY_MAX;
}

/* Before every core call: runs the flush point early when the ready is short of room. */
static int make_room(struct driver *d)
{
    if (call_fits(d->ready))
        return 0;
    int rc = flush_point(d);
    PX_ASSERT(rc != 0 || call_fits(d->ready));
    return rc;
}

/* Peers that died or came back since the last look (the failure detector is given). */
static int check_membership(struct driver *d)
{
    struct driver_view v;
    d->env.membership(d->env.ctx, &v);
    if (v.epoch == d->epoch_seen)
        return 0;
    uint64_t changed = v.alive_mask ^ d->alive_seen;
    for (uint16_t p = 0; p < d->cfg.nodes; p++) {
        if (p == d->cfg.id || !((changed >> p) & 1u))
            continue;
        bool up = (v.alive_mask >> p) & 1u;
        if (d->env.peer != NULL)
            d->env.peer(d->env.ctx, p, up);
        if (!up)
            d->t->ops->peer_down(d->t, p);
        int rc = make_room(d);
        if (rc != 0)
            return rc;
        px_node_peer_status(d->core, p, up, d->ready);
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
        if (px_node_submit(d->core, &v, d->ready) == -EAGAIN)
            break; /* backpressure: the value stays with the caller for a later iteration */
        d->env.submit_taken(d->env.ctx);
    }
    return 0;
}

static int step_input(struct driver *d)
{
    uint32_t n = transport_recv(d->t, d->in, d->cfg.batch_max);
    PX_ASSERT(n <= d->cfg.batch_max);
    d->received = n;
    for (uint32_t i = 0; i < n; i++) {
        int rc = make_room(d);
        if (rc != 0)
            return rc;
        trace(d, false, &d->in[i]);
        px_node_step(d->core, &d->in[i], d->ready);
    }
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
        d->next_tick += d->cfg.tick_ns;
        ticks++;
    }
    if (now >= d->next_tick)
        d->next_tick = now + d->cfg.tick_ns; /* slept long: skip the backlog of ticks */
    return 0;
}

/* px_node_flush (what the core coalesced over the batch), then the flush point. */
static int finish(struct driver *d)
{
    int rc = make_room(d);
    if (rc != 0)
        return rc;
    px_node_flush(d->core, d->ready);
    return flush_point(d);
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
    d->in = malloc(cfg->batch_max * sizeof(*d->in));
    if (d->ready == NULL || d->in == NULL) {
        driver_fini(d);
        return -ENOMEM;
    }
    px_ready_clear(d->ready);
    return 0;
}

static void load_rec(void *ctx, const struct px_rec *r)
{
    px_node_load_rec(ctx, r);
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
    rc = store_load(d->store, out, load_rec, d->core);
    if (rc != 0)
        return rc;
    d->applied_persisted = out->fib.applied;
    return 0;
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
    }
    d->next_tick = d->env.now_ns(d->env.ctx) + d->cfg.tick_ns;
    return finish(d);
}

int driver_run_once(struct driver *d)
{
    PX_ASSERT(d->ready->msgs_len == 0 && d->ready->recs_len == 0);
    d->stats.loops++;
    d->received = 0;
    int rc = check_membership(d);
    if (rc == 0)
        rc = take_submits(d);
    if (rc == 0)
        rc = step_input(d);
    if (rc == 0)
        rc = tick(d);
    if (rc == 0)
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
    uint64_t now = d->env.now_ns(d->env.ctx);
    uint64_t until_tick = d->next_tick > now ? d->next_tick - now : 0;
    if (d->queued > 0 && until_tick > DRIVER_RETRY_NS)
        until_tick = DRIVER_RETRY_NS; /* a ring was full: retry soon */
    if (until_tick > 0) {
        d->stats.waits++;
        transport_wait(d->t, until_tick);
    }
}

int driver_poll_membership(struct driver *d)
{
    int rc = check_membership(d);
    return rc != 0 ? rc : finish(d);
}

int driver_set_roles(struct driver *d, uint16_t node, uint64_t roles)
{
    PX_ASSERT(node < d->cfg.nodes);
    int rc = make_room(d);
    if (rc != 0)
        return rc;
    px_node_set_roles(d->core, node, roles, d->ready);
    return finish(d);
}

void driver_fini(struct driver *d)
{
    free(d->ready);
    free(d->in);
    d->ready = NULL;
    d->in = NULL;
}
