/* node.c: the node process loop.
 *
 *   drain inbound messages (bounded batch) -> step the core for each -> tick the core
 *   -> persist what the core asks (one transaction for the whole batch: group commit)
 *   -> only then push the batch's outbound messages -> sleep on the doorbell when idle.
 *
 * Persist-before-send holds because messages are queued only after store_commit returns. */
#include "node/node.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include <urcu/system.h>
#include <urcu/uatomic.h>

#include "ipc/segment.h"
#include "common/log.h"
#include "node/persist.h"
#include "common/pool.h"
#include "store/store.h"
#include "node/transport.h"
#include "common/util.h"

/* Inbound messages stepped per iteration before persisting and sending: large enough to
 * amortise one commit over many accepts, small enough to keep round latency low. */
#define NODE_BATCH_MAX 512
/* Virtual time: one core tick per 5 ms of wall time. An idle node wakes once per tick, so the
 * tick is what an idle pool costs: 16 nodes at 1 ms made 16k wake-ups/s, a quarter of all the
 * wake-ups of a busy run. Timeouts: election 60 ticks = 300 ms (a crash is reported at once by
 * the supervisor; this is for a hung leader), heartbeat 2 ticks = 10 ms. At most
 * NODE_TICKS_BURST_MAX ticks are delivered at once after a long sleep. */
#define NODE_TICK_NS         5000000ull
#define NODE_TICKS_BURST_MAX 16
#define NODE_ELECTION_TICKS  60
#define NODE_HEARTBEAT_TICKS 2
/* Entries the shm store keeps: the core's log bound plus a margin for one batch. */
#define NODE_SHM_ENTRIES_MAX (2u * PX_LOG_MAX)

/* Failpoints for crash tests: PAXOS_FAILPOINT=before-persist:N or after-persist:N makes the
 * node SIGKILL itself, with probability 1/N per batch (seeded by --seed, id and incarnation),
 * between receiving a batch and persisting it, or between persisting it and sending its
 * messages. The supervisor restarts it like any crashed node. */
enum failpoint { FP_NONE, FP_BEFORE_PERSIST, FP_AFTER_PERSIST };

struct node {
    const struct node_args *a;
    enum failpoint fp;
    uint64_t fp_one_in;
    uint64_t fp_rng;
    struct transport *t;
    struct store *store;
    struct px_node *core;
    struct px_ready *ready;
    struct pool_shared *pool;
    struct pool_node_shared *me;
    uint64_t epoch_seen;
    uint64_t alive_seen;
    uint64_t next_tick_ns;
    uint64_t elections_base;
    uint64_t loops, waits;
    /* loop iterations, doorbell sleeps (for the debug summary) */ /* elections won by earlier
                                                                      incarnations of this id */
    uint64_t applied_persisted;
};

uint64_t node_user_bytes(enum store_kind store)
{
    uint64_t bytes = sizeof(struct pool_node_shared);
    if (store == STORE_SHM)
        bytes += store_shm_bytes(NODE_SHM_ENTRIES_MAX);
    return (bytes + 63) & ~63ull;
}

void node_px_config(const struct node_config *cfg, struct px_config *out)
{
    memset(out, 0, sizeof(*out));
    out->id = cfg->id;
    out->nodes = cfg->nodes;
    memcpy(out->roles, cfg->roles, sizeof(out->roles));
    out->window_max = cfg->window;
    out->rotate_every = cfg->rotate;
    out->election_ticks = NODE_ELECTION_TICKS;
    out->heartbeat_ticks = NODE_HEARTBEAT_TICKS;
    out->seed = cfg->seed * 0x9e3779b97f4a7c15ull + cfg->id;
    out->batch = true; /* ACCEPTED ranges and DECIDE coalesced per batch (px_node_flush) */
}

static int failpoint_parse(struct node *nd)
{
    const char *v = getenv("PAXOS_FAILPOINT");
    if (v == NULL || v[0] == '\0')
        return 0;
    const char *colon = strchr(v, ':');
    char *end = NULL;
    unsigned long long n = colon ? strtoull(colon + 1, &end, 10) : 0;
    if (colon == NULL || n == 0 || *end != '\0')
        goto bad;
    if (strncmp(v, "before-persist:", 15) == 0)
        nd->fp = FP_BEFORE_PERSIST;
    else if (strncmp(v, "after-persist:", 14) == 0)
        nd->fp = FP_AFTER_PERSIST;
    else
        goto bad;
    nd->fp_one_in = n;
    nd->fp_rng = nd->a->cfg.seed ^ ((uint64_t)nd->a->cfg.id << 32) ^ nd->a->cfg.incarnation;
    return 0;
bad:
    fprintf(stderr,
            "paxos-shm: PAXOS_FAILPOINT: '%s' is not before-persist:N or "
            "after-persist:N (N >= 1)\n",
            v);
    return -EINVAL;
}

static void failpoint(struct node *nd, enum failpoint where)
{
    if (nd->fp != where)
        return;
    if (util_splitmix64(&nd->fp_rng) % nd->fp_one_in == 0)
        raise(SIGKILL);
}

/* Persists the ready's records and the applied state in one transaction, then queues the
 * messages. The order is the safety rule of the whole system: nothing is sent before the
 * record behind it is durable. */
static int flush_ready(struct node *nd)
{
    struct px_ready *r = nd->ready;
    const struct px_fib *fib = px_node_fib(nd->core);
    bool fib_changed = fib->applied != nd->applied_persisted;
    if (r->recs_len > 0 || fib_changed) {
        failpoint(nd, FP_BEFORE_PERSIST);
        int rc = persist_ready(nd->store, r, fib_changed ? fib : NULL);
        if (rc != 0) {
            fprintf(stderr, "paxos-shm: node %u: %s\n", nd->a->cfg.id, store_errmsg(nd->store));
            return rc;
        }
        nd->applied_persisted = fib->applied;
        nd->me->batches++;
        nd->me->records += r->recs_len;
        failpoint(nd, FP_AFTER_PERSIST);
    }
    for (uint32_t i = 0; i < r->msgs_len; i++) {
        const struct px_msg *m = &r->msgs[i];
        LOG(LOG_TRACE, "send type=%u to=%u ballot=%llx inst=%llu", m->type, m->to,
            (unsigned long long)m->ballot, (unsigned long long)m->instance);
        while (transport_send(nd->t, m) == -ENOBUFS) {
            /* The outbox is full: push what the rings take, tell the core to send less. */
            px_node_congested(nd->core);
            if (transport_flush(nd->t) > 0)
                transport_wait(nd->t, 100000);
        }
    }
    px_ready_clear(r);
    return 0;
}

static bool ready_short(const struct px_ready *r)
{
    return r->recs_len + PX_STEP_OUTPUT_MAX > PX_READY_RECS_MAX ||
           r->msgs_len + PX_STEP_OUTPUT_MAX > PX_READY_MSGS_MAX ||
           r->apply_len + PX_STEP_OUTPUT_MAX > PX_READY_APPLY_MAX;
}

/* Peers that died or came back since the last look (the supervisor is the failure detector). */
static void check_membership(struct node *nd)
{
    uint64_t epoch = CMM_LOAD_SHARED(nd->pool->membership_epoch);
    if (epoch == nd->epoch_seen)
        return;
    cmm_smp_rmb(); /* pairs with the supervisor's wmb between alive_mask and the epoch bump */
    uint64_t alive = CMM_LOAD_SHARED(nd->pool->alive_mask);
    uint64_t changed = alive ^ nd->alive_seen;
    for (uint16_t p = 0; p < nd->a->cfg.nodes; p++) {
        if (p == nd->a->cfg.id || !(changed & (1ull << p)))
            continue;
        bool up = (alive >> p) & 1u;
        LOG(LOG_INFO, "peer %u is %s", p, up ? "up" : "down");
        if (!up)
            nd->t->ops->peer_down(nd->t, p);
        if (ready_short(nd->ready) && flush_ready(nd) != 0)
            return;
        px_node_peer_status(nd->core, p, up, nd->ready);
    }
    nd->alive_seen = alive;
    nd->epoch_seen = epoch;
}

static int step_batch(struct node *nd, struct px_msg *in, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        if (ready_short(nd->ready) && flush_ready(nd) != 0)
            return -EIO;
        const struct px_msg *m = &in[i];
        LOG(LOG_TRACE, "recv type=%u from=%u ballot=%llx inst=%llu", m->type, m->from,
            (unsigned long long)m->ballot, (unsigned long long)m->instance);
        px_node_step(nd->core, m, nd->ready);
    }
    return 0;
}

static void tick(struct node *nd)
{
    uint64_t now = util_now_ns();
    unsigned ticks = 0;
    while (now >= nd->next_tick_ns && ticks < NODE_TICKS_BURST_MAX) {
        if (ready_short(nd->ready) && flush_ready(nd) != 0)
            return;
        px_node_tick(nd->core, nd->ready);
        nd->next_tick_ns += NODE_TICK_NS;
        ticks++;
    }
    if (now >= nd->next_tick_ns)
        nd->next_tick_ns = now + NODE_TICK_NS; /* we slept long: skip the backlog */
}

static void publish_status(struct node *nd)
{
    struct pool_node_shared *me = nd->me;
    const struct transport_stats *st = &nd->t->stats;
    CMM_STORE_SHARED(me->applied, px_node_fib(nd->core)->applied);
    CMM_STORE_SHARED(me->leader, px_node_leader(nd->core));
    bool leader = px_node_is_leader(nd->core);
    if (leader && !me->is_leader)
        LOG(LOG_INFO, "became leader");
    CMM_STORE_SHARED(me->is_leader, leader);
    CMM_STORE_SHARED(me->elections_won,
                     nd->elections_base + px_node_stats(nd->core)->elections_won);
    CMM_STORE_SHARED(me->msgs_sent, st->sent);
    CMM_STORE_SHARED(me->msgs_received, st->received);
    CMM_STORE_SHARED(me->ring_full, st->ring_full);
    CMM_STORE_SHARED(me->drops, st->drops);
    CMM_STORE_SHARED(me->lagged, st->lagged);
    CMM_STORE_SHARED(me->bad_messages, st->bad_messages);
}

static void log_summary(const struct node *nd)
{
    const struct px_stats *ps = px_node_stats(nd->core);
    const struct transport_stats *ts = &nd->t->stats;
    LOG(LOG_DEBUG,
        "loops %llu waits %llu received %llu sent %llu batches %llu records %llu | campaigns "
        "%llu won %llu proposed %llu resent %llu decided %llu nacks %llu catchup %llu "
        "snapshots %llu/%llu dropped %llu",
        (unsigned long long)nd->loops, (unsigned long long)nd->waits,
        (unsigned long long)ts->received, (unsigned long long)ts->sent,
        (unsigned long long)nd->me->batches, (unsigned long long)nd->me->records,
        (unsigned long long)ps->campaigns, (unsigned long long)ps->elections_won,
        (unsigned long long)ps->proposed, (unsigned long long)ps->resent,
        (unsigned long long)ps->decided, (unsigned long long)ps->nacks,
        (unsigned long long)ps->catchup_reqs, (unsigned long long)ps->snapshots_sent,
        (unsigned long long)ps->snapshots_installed, (unsigned long long)ps->dropped);
}

static void publish_final(struct node *nd)
{
    struct pool_node_shared *me = nd->me;
    /* Sequence word: odd while writing. The supervisor reads the fields only after seeing an
     * even, non-zero value before and after (and it reads after our exit anyway). */
    uatomic_add(&me->final_seq, 1);
    cmm_smp_wmb(); /* orders the odd seq before the fields; pairs with the reader's rmb */
    memcpy(&me->final_fib, px_node_fib(nd->core), sizeof(me->final_fib));
    CMM_STORE_SHARED(me->final_ok, 1);
    cmm_smp_wmb(); /* orders the fields before the even seq; pairs with the reader's rmb */
    uatomic_add(&me->final_seq, 1);
}

static void load_rec(void *ctx, const struct px_rec *r)
{
    px_node_load_rec(ctx, r);
}

static int node_open(struct node *nd, void **core_mem)
{
    const struct node_args *a = nd->a;
    struct px_config pc;
    node_px_config(&a->cfg, &pc);
    size_t bytes = px_node_size(&pc);
    if (posix_memalign(core_mem, 64, bytes) != 0)
        return -ENOMEM;
    if (px_node_init(*core_mem, bytes, &pc, &nd->core) != 0)
        return -EINVAL;

    char err[256] = "";
    struct store_params sp = {
        .kind = a->cfg.store,
        .dir = a->cfg.data_dir,
        .node_id = a->cfg.id,
        .nodes = a->cfg.nodes,
        .sync = a->cfg.sync,
        .shm_area = (char *)nd->me + sizeof(struct pool_node_shared),
        .shm_bytes = node_user_bytes(a->cfg.store) - sizeof(struct pool_node_shared),
    };
    int rc = store_open(&sp, &nd->store, err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "paxos-shm: node %u: %s\n", a->cfg.id, err);
        return rc;
    }
    struct px_durable d;
    memset(&d, 0, sizeof(d));
    /* Two passes: the promised ballot and the applied state first (px_node_load), then the
     * log entries on top of them (px_node_load_rec). */
    rc = store_load(nd->store, &d, NULL, NULL);
    if (rc == 0) {
        px_node_load(nd->core, &d);
        rc = store_load(nd->store, &d, load_rec, nd->core);
    }
    if (rc != 0) {
        fprintf(stderr, "paxos-shm: node %u: %s\n", a->cfg.id, store_errmsg(nd->store));
        return rc;
    }
    nd->applied_persisted = d.fib.applied;
    memcpy(&nd->me->recovered_fib, px_node_fib(nd->core), sizeof(nd->me->recovered_fib));
    cmm_smp_wmb(); /* the fib before the flag; pairs with the supervisor's rmb in wait_loaded */
    CMM_STORE_SHARED(nd->me->loaded_incarnation, a->cfg.incarnation);
    if (d.fib.applied > 0 || d.promised > 0)
        LOG(LOG_INFO, "recovered: promised %llx, applied %llu", (unsigned long long)d.promised,
            (unsigned long long)d.fib.applied);
    if (a->mesh)
        return transport_sock_create(a->mesh, a->seg, a->cfg.id, a->cfg.nodes, &nd->t);
    return transport_shm_create(a->seg, a->cfg.id, a->cfg.nodes, &nd->t);
}

static int node_loop(struct node *nd)
{
    static struct px_msg in[NODE_BATCH_MAX];
    nd->next_tick_ns = util_now_ns() + NODE_TICK_NS;
    for (;;) {
        nd->loops++;
        if (CMM_LOAD_SHARED(nd->pool->stop)) {
            log_summary(nd);
            publish_final(nd);
            return NODE_EXIT_STOPPED;
        }
        check_membership(nd);
        uint32_t n = transport_recv(nd->t, in, NODE_BATCH_MAX);
        if (step_batch(nd, in, n) != 0)
            return NODE_EXIT_FAILED;
        tick(nd);
        px_node_flush(nd->core, nd->ready);
        if (flush_ready(nd) != 0)
            return NODE_EXIT_FAILED;
        uint32_t queued = transport_flush(nd->t);
        publish_status(nd);
        if (n == 0) {
            uint64_t now = util_now_ns();
            uint64_t until_tick = nd->next_tick_ns > now ? nd->next_tick_ns - now : 0;
            if (queued > 0 && until_tick > 100000)
                until_tick = 100000; /* a ring was full: retry soon */
            if (until_tick > 0) {
                nd->waits++;
                transport_wait(nd->t, until_tick);
            }
        }
    }
}

int node_run(const struct node_args *a)
{
    /* Die with the supervisor; if it is already gone, stop now. */
    pid_t parent = getppid();
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || parent == 1)
        return NODE_EXIT_FAILED;
    signal(SIGINT, SIG_IGN); /* the supervisor stops us on Ctrl-C */
    signal(SIGTERM, SIG_DFL);
    signal(SIGCHLD, SIG_DFL);
    signal(SIGXFSZ, SIG_IGN); /* a file-size limit is a clear storage error, not a death */
    log_set_node(a->cfg.id, a->cfg.incarnation);

    uint16_t nodes = a->cfg.nodes;
    struct node nd = {.a = a};
    nd.pool = ipc_segment_user(a->seg, nodes);
    nd.me = ipc_segment_user(a->seg, a->cfg.id);
    nd.alive_seen = CMM_LOAD_SHARED(nd.pool->alive_mask);
    nd.elections_base = CMM_LOAD_SHARED(nd.me->elections_won);
    CMM_STORE_SHARED(nd.me->is_leader, 0);
    nd.epoch_seen = CMM_LOAD_SHARED(nd.pool->membership_epoch);
    nd.ready = malloc(sizeof(*nd.ready));
    void *core_mem = NULL;
    int code = NODE_EXIT_FAILED;
    if (nd.ready == NULL || failpoint_parse(&nd) != 0)
        goto out;
    px_ready_clear(nd.ready);
    if (node_open(&nd, &core_mem) != 0)
        goto out;
    /* Peers that are down right now. */
    for (uint16_t p = 0; p < nodes; p++)
        if (p != a->cfg.id && !((nd.alive_seen >> p) & 1u))
            px_node_peer_status(nd.core, p, false, nd.ready);
    LOG(LOG_INFO, "started (pid %d)", (int)getpid());
    code = node_loop(&nd);
out:
    if (nd.store)
        store_close(nd.store);
    if (nd.t)
        nd.t->ops->destroy(nd.t);
    free(core_mem);
    free(nd.ready);
    return code;
}
