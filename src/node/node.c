/* node.c: the node process -- the glue around the node driver (driver.h).
 *
 * The loop itself (drain a bounded batch, step the core, tick, persist in one transaction,
 * only then send, sleep on the doorbell) is the driver's, shared with the simulator. What is
 * left here belongs to the process: signals, the segment, the failure detector's view, the
 * clock, the failpoints (SIGKILL), publishing the live status and the final state. */
#include "node/node.h"

#include <errno.h>
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include <urcu/system.h>
#include <urcu/uatomic.h>

#include "common/log.h"
#include "common/pool.h"
#include "common/signals.h"
#include "common/util.h"
#include "ipc/doorbell.h"
#include "ipc/life.h"
#include "ipc/segment.h"
#include "node/driver.h"
#include "node/sm.h"
#include "node/transport.h"
#include "store/store.h"

_Static_assert(NODE_JOB_PLANE_MIN == SM_SNAP_HEADER_BYTES + NODE_JOB_STATE_BYTES,
               "the main job's plane takes its snapshot stream");

/* Virtual time: one core tick per 5 ms of wall time. An idle node wakes once per tick, so the
 * tick is what an idle pool costs: 16 nodes at 1 ms made 16k wake-ups/s, a quarter of all the
 * wake-ups of a busy run. Timeouts: election 60 ticks = 300 ms (a crash is reported at once by
 * the supervisor; this is for a hung leader), heartbeat 2 ticks = 10 ms. */
#define NODE_TICK_NS         5000000ull
#define NODE_ELECTION_TICKS  60
#define NODE_HEARTBEAT_TICKS 2
/* Entries the shm store keeps: the core's log bound plus a margin for one batch. */
#define NODE_SHM_ENTRIES_MAX (2u * PX_LOG_MAX)
/* A node's user area is a whole number of cache lines, so the next node's never shares one. */
#define NODE_USER_ALIGN_BYTES 64ull
/* The failpoint stream's seed: the node id above the low 32 bits, where a small --seed and
 * the incarnation live, so ids and incarnations never cancel out. */
#define NODE_FP_SEED_ID_SHIFT 32

/* Failpoints for crash tests: PAXOS_FAILPOINT=WHERE:N makes the node SIGKILL itself with
 * probability 1/N per batch (seeded by --seed, id and incarnation); the supervisor restarts it
 * like any crashed node. WHERE is
 *   before-persist  between receiving a batch and persisting it (the batch is lost),
 *   after-persist   between persisting it and sending any of its messages (they are lost),
 *   mid-send        after handing the k-th of its messages to the transport, 1 <= k < count
 *                   (uniform), the first k pushed into the rings first: the rest is lost. */
enum failpoint { FP_NONE, FP_BEFORE_PERSIST, FP_AFTER_PERSIST, FP_MID_SEND, FP_SPIN, FP_BLOCK };
/* spin:ID and block:ID: node ID's first incarnation, after this many persisted batches, stops
 * making progress for good: busy in a loop (spin) or asleep (block). What the hang watch must
 * tell from a node that only waits for a CPU. */
#define NODE_FP_STUCK_AFTER 200

struct node {
    const struct node_args *a;
    enum failpoint fp;
    uint64_t fp_one_in;
    uint64_t fp_rng;
    uint32_t fp_kill_at; /* mid-send: die after this many sends of the flush point, 0 = not */
    struct transport *t;
    struct store *store;
    struct px_node *core;
    struct driver drv;
    bool drv_ready; /* drv initialised (driver_fini needed) */
    struct pool_shared *pool;
    struct pool_node_shared *me;
    struct ipc_ctl *ctl;                     /* this node's control block: the heartbeat it bumps */
    uint64_t elections_base;                 /* elections won by earlier incarnations of this id */
    uint64_t batches_base, records_base;     /* the same for persisted batches and records */
    uint32_t peer_incarnation[PX_NODES_MAX]; /* as of the last membership look */
    bool peer_incarnation_known;
};

/* The commands' part of a node's command area. */
static uint64_t shm_cmd_area(uint32_t cmd_bytes, uint32_t window, uint16_t nodes)
{
    if (cmd_bytes <= CMD_INLINE_BYTES)
        return 0;
    uint64_t live = (uint64_t)payload_window_for(cmd_bytes, window) + NODE_SHM_RETAINED;
    uint64_t need = store_shm_arena_for(cmd_bytes, live);
    uint64_t cap = NODE_SHM_ARENA_TOTAL / (nodes > 0 ? nodes : 1);
    cap = (cap < NODE_SHM_ARENA_CAP ? cap : NODE_SHM_ARENA_CAP) & ~63ull;
    return need < cap ? need : cap;
}

/* The snapshots' part: three records of up to state_max bytes (node.h). */
static uint64_t shm_snap_area(uint64_t state_max)
{
    if (state_max == 0)
        return 0;
    uint64_t rec = store_shm_record_bytes(0) + sizeof(struct store_sm_snap) + state_max;
    return 3 * ((rec + 63) & ~63ull);
}

uint64_t node_shm_arena_bytes(uint32_t cmd_bytes, uint32_t window, uint16_t nodes,
                              uint64_t state_max)
{
    return shm_cmd_area(cmd_bytes, window, nodes) + shm_snap_area(state_max);
}

uint32_t node_shm_window(uint32_t cmd_bytes, uint32_t window, uint16_t nodes)
{
    uint32_t w = payload_window_for(cmd_bytes, window);
    if (cmd_bytes <= CMD_INLINE_BYTES)
        return w;
    uint64_t half = shm_cmd_area(cmd_bytes, window, nodes) / store_shm_record_bytes(cmd_bytes) / 2;
    uint64_t fit = half > NODE_SHM_TRUNCATE_SLACK ? half - NODE_SHM_TRUNCATE_SLACK : 0;
    return fit < 1 ? 0 : fit < w ? (uint32_t)fit : w;
}

bool node_shm_arena_fits(uint32_t cmd_bytes, uint32_t window, uint16_t nodes, uint64_t state_max)
{
    return node_shm_window(cmd_bytes, window, nodes) >= 1 &&
           state_max <= UINT32_MAX - sizeof(struct store_sm_snap) - 64 &&
           (uint64_t)nodes * shm_snap_area(state_max) <= NODE_SHM_ARENA_TOTAL;
}

uint64_t node_user_bytes(enum store_kind store, uint32_t cmd_bytes, uint32_t window, uint16_t nodes,
                         uint64_t state_max)
{
    uint64_t bytes = sizeof(struct pool_node_shared);
    if (store == STORE_SHM)
        bytes += store_shm_bytes(NODE_SHM_ENTRIES_MAX) +
                 node_shm_arena_bytes(cmd_bytes, window, nodes, state_max);
    return (bytes + NODE_USER_ALIGN_BYTES - 1) & ~(NODE_USER_ALIGN_BYTES - 1);
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
    /* the golden-ratio step spreads a small --seed over 64 bits before the id is added */
    out->seed = cfg->seed * PX_SPLITMIX64_GAMMA + cfg->id;
    out->batch = true; /* ACCEPTED ranges and DECIDE coalesced per batch (px_node_flush) */
}

struct failpoint_name {
    const char *prefix;
    enum failpoint fp;
};

/* Bit i: node i learns. */
static uint64_t learners_mask(const struct node_config *c)
{
    uint64_t m = 0;
    for (uint16_t i = 0; i < c->nodes && i < 64; i++)
        if (c->roles[i] & PX_ROLE_LEARNER)
            m |= 1ull << i;
    return m;
}

static int failpoint_parse(struct node *nd)
{
    static const struct failpoint_name names[] = {
        {"before-persist:", FP_BEFORE_PERSIST},
        {"after-persist:", FP_AFTER_PERSIST},
        {"mid-send:", FP_MID_SEND},
        {"spin:", FP_SPIN},
        {"block:", FP_BLOCK},
    };
    const char *v = getenv("PAXOS_FAILPOINT");
    if (v == NULL || v[0] == '\0')
        return 0;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        size_t len = strlen(names[i].prefix);
        if (strncmp(v, names[i].prefix, len) != 0)
            continue;
        char *end = NULL;
        errno = 0;
        unsigned long long n = strtoull(v + len, &end, 10);
        bool stuck = names[i].fp == FP_SPIN || names[i].fp == FP_BLOCK;
        if (errno != 0 || end == v + len || *end != '\0' || (n == 0 && !stuck))
            break;
        if (stuck && (n != nd->a->cfg.id || nd->a->cfg.incarnation != 1))
            return 0; /* another node's, or a restart: runs normally */
        nd->fp = names[i].fp;
        nd->fp_one_in = n;
        nd->fp_rng = nd->a->cfg.seed ^ ((uint64_t)nd->a->cfg.id << NODE_FP_SEED_ID_SHIFT) ^
                     nd->a->cfg.incarnation;
        return 0;
    }
    fprintf(stderr,
            "paxos-shm: PAXOS_FAILPOINT: '%s' is not before-persist:N, after-persist:N, "
            "mid-send:N (N >= 1), spin:ID or block:ID\n",
            v);
    return -EINVAL;
}

static bool failpoint_roll(struct node *nd)
{
    return px_splitmix64(&nd->fp_rng) % nd->fp_one_in == 0;
}

/* The driver's failpoint hook: a hit kills the process on the spot, so it never returns true.
 * before-persist and after-persist roll once per batch that persists (as before mid-send
 * existed); mid-send rolls once per flush point with at least two messages. */
static bool node_failpoint(void *ctx, enum driver_fp where, const struct driver_flush *f)
{
    struct node *nd = ctx;
    if ((nd->fp == FP_SPIN || nd->fp == FP_BLOCK) && where == DRIVER_FP_AFTER_PERSIST &&
        f->persists && ++nd->fp_kill_at >= NODE_FP_STUCK_AFTER) {
        for (volatile uint64_t spins = 0;; spins++)
            if (nd->fp == FP_BLOCK)
                pause();
    }
    if (nd->fp == FP_BEFORE_PERSIST && where == DRIVER_FP_BEFORE_PERSIST && f->persists &&
        failpoint_roll(nd))
        raise(SIGKILL);
    if (nd->fp == FP_AFTER_PERSIST && where == DRIVER_FP_AFTER_PERSIST && f->persists &&
        failpoint_roll(nd))
        raise(SIGKILL);
    if (nd->fp != FP_MID_SEND)
        return false;
    if (where == DRIVER_FP_AFTER_PERSIST) {
        nd->fp_kill_at = 0;
        if (f->msgs >= 2 && failpoint_roll(nd))
            nd->fp_kill_at = 1 + (uint32_t)(px_splitmix64(&nd->fp_rng) % (f->msgs - 1));
    } else if (where == DRIVER_FP_AFTER_SEND && f->sent == nd->fp_kill_at) {
        /* The outbox is process memory: push the first k into the rings, then die. */
        (void)transport_flush(nd->t);
        raise(SIGKILL);
    }
    return false;
}

static uint64_t node_now_ns(void *ctx)
{
    (void)ctx;
    return util_now_ns();
}

/* The supervisor is the failure detector: it writes alive_mask, then bumps the epoch. */
static void node_membership(void *ctx, struct driver_view *out)
{
    struct node *nd = ctx;
    out->epoch = CMM_LOAD_SHARED(nd->pool->membership_epoch);
    cmm_smp_rmb(); /* pairs with the supervisor's wmb between alive_mask and the epoch bump */
    out->alive_mask = CMM_LOAD_SHARED(nd->pool->alive_mask);
    /* A peer killed and restarted between two looks leaves the alive mask as it was: its new
     * incarnation shows the death (the supervisor writes it before the epoch bump). */
    out->restarted_mask = 0;
    for (uint16_t p = 0; p < nd->a->cfg.nodes; p++) {
        uint32_t inc = CMM_LOAD_SHARED(ipc_segment_ctl(nd->a->seg, p)->incarnation);
        if (nd->peer_incarnation_known && inc != nd->peer_incarnation[p])
            out->restarted_mask |= 1ull << p;
        nd->peer_incarnation[p] = inc;
    }
    nd->peer_incarnation_known = true;
}

static void node_peer(void *ctx, uint16_t peer, bool up)
{
    (void)ctx;
    LOG(LOG_INFO, "peer %u is %s", peer, up ? "up" : "down");
}

static void node_trace(void *ctx, bool send, const struct px_msg *m)
{
    (void)ctx;
    LOG(LOG_TRACE, "%s type=%u %s=%u ballot=%llx inst=%llu", send ? "send" : "recv", m->type,
        send ? "to" : "from", send ? m->to : m->from, (unsigned long long)m->ballot,
        (unsigned long long)m->instance);
}

/* An applied command that travelled beside its value: every byte must be what the client
 * made (payload_fib_fill), on every learner. */
static void node_applied_cmd(void *ctx, const struct px_applied *a, const uint8_t *cmd,
                             uint32_t len)
{
    struct node *nd = ctx;
    struct pool_node_shared *me = nd->me;
    bool ok = cmd != NULL && len >= CMD_INLINE_BYTES &&
              payload_fib_check(cmd_key(&a->value), a->value.word, cmd, len);
    CMM_STORE_SHARED(me->cmds_checked, me->cmds_checked + 1);
    if (!ok) {
        CMM_STORE_SHARED(me->cmds_bad, me->cmds_bad + 1);
        LOG(LOG_ERROR, "instance %llu: command of %u bytes %s", (unsigned long long)a->instance,
            len, cmd == NULL ? "not here" : "differs from what the client sent");
    }
}

static void publish_status(struct node *nd)
{
    struct pool_node_shared *me = nd->me;
    const struct transport_stats *st = &nd->t->stats;
    CMM_STORE_SHARED(me->applied, px_node_history(nd->core)->applied);
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
    CMM_STORE_SHARED(me->batches, nd->batches_base + nd->drv.stats.batches);
    CMM_STORE_SHARED(me->records, nd->records_base + nd->drv.stats.records);
    CMM_STORE_SHARED(me->bad_messages, st->bad_messages);
    CMM_STORE_SHARED(me->requests_dropped, px_node_stats(nd->core)->requests_dropped);
    const struct payload_stats *ps = &nd->drv.pay.stats;
    CMM_STORE_SHARED(me->cmd_streams_torn, ps->streams_torn + ps->streams_bad);
    CMM_STORE_SHARED(me->cmd_missing, ps->missing + nd->drv.stats.cmd_lost);
}

static void log_summary(const struct node *nd)
{
    const struct px_stats *ps = px_node_stats(nd->core);
    const struct transport_stats *ts = &nd->t->stats;
    const struct driver_stats *ds = &nd->drv.stats;
    LOG(LOG_DEBUG,
        "loops %llu waits %llu futex waits %llu woken %llu received %llu sent %llu batches %llu "
        "records %llu | campaigns "
        "%llu won %llu proposed %llu resent %llu decided %llu nacks %llu catchup %llu "
        "snapshots %llu/%llu dropped %llu",
        (unsigned long long)ds->loops, (unsigned long long)ds->waits,
        (unsigned long long)ipc_doorbell_wait_syscalls(&nd->ctl->bell),
        (unsigned long long)ipc_doorbell_wake_syscalls(&nd->ctl->bell),
        (unsigned long long)ts->received, (unsigned long long)ts->sent,
        (unsigned long long)ds->batches, (unsigned long long)ds->records,
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
    memcpy(&me->final_fib, px_node_history(nd->core), sizeof(me->final_fib));
    const struct sm_node *sm = nd->drv.sm;
    me->final_sm_applied = sm != NULL ? sm->applied : 0;
    me->final_sm_index = sm != NULL ? sm->index : 0;
    me->final_sm_digest = sm != NULL ? sm_digest(sm) : 0;
    me->final_cmd_digest = sm != NULL ? sm->cmd_digest : 0;
    CMM_STORE_SHARED(me->final_ok, 1);
    cmm_smp_wmb(); /* orders the fields before the even seq; pairs with the reader's rmb */
    uatomic_add(&me->final_seq, 1);
}

static int node_store_open(struct node *nd)
{
    const struct node_args *a = nd->a;
    char err[256] = "";
    struct store_params sp = {
        .kind = a->cfg.store,
        .dir = a->cfg.data_dir,
        .node_id = a->cfg.id,
        .nodes = a->cfg.nodes,
        .sync = a->cfg.sync,
        .shm_area = (char *)nd->me + sizeof(struct pool_node_shared),
        .shm_bytes = node_user_bytes(a->cfg.store, a->cfg.cmd_bytes, a->cfg.window, a->cfg.nodes,
                                     a->cfg.sm_state_max) -
                     sizeof(struct pool_node_shared),
        .shm_arena_bytes = a->cfg.store == STORE_SHM
                               ? node_shm_arena_bytes(a->cfg.cmd_bytes, a->cfg.window, a->cfg.nodes,
                                                      a->cfg.sm_state_max)
                               : 0,
        .shm_snap_max = a->cfg.sm_state_max,
        .pool_id = a->cfg.pool_id,
        .epoch = a->cfg.epoch,
        .must_exist = a->cfg.store_must_exist,
        .cmd_bytes = a->cfg.cmd_bytes,
        .job = a->cfg.job,
    };
    int rc = store_open(&sp, &nd->store, err, sizeof(err));
    if (rc != 0)
        fprintf(stderr, "paxos-shm: node %u: %s\n", a->cfg.id, err);
    return rc;
}

static int node_driver_init(struct node *nd)
{
    const struct driver_config dc = {
        .id = nd->a->cfg.id,
        .nodes = nd->a->cfg.nodes,
        .batch_max = DRIVER_BATCH_MAX,
        .tick_ns = NODE_TICK_NS,
        /* a library pool's snapshots and results travel in the plane too (any length) */
        .cmd_max = nd->a->cfg.sm != NULL && !nd->a->cfg.job    ? CMD_BYTES_MAX
                   : nd->a->cfg.cmd_bytes > NODE_JOB_PLANE_MIN ? nd->a->cfg.cmd_bytes
                                                               : NODE_JOB_PLANE_MIN,
        .cmd_budget = nd->a->cfg.cmd_bytes > CMD_INLINE_BYTES
                          ? payload_budget_for(nd->a->cfg.cmd_bytes, nd->a->cfg.window)
                          : 0,
        .sm = nd->a->cfg.sm,
        .sm_job = nd->a->cfg.job,
        .learner = (nd->a->cfg.roles[nd->a->cfg.id] & PX_ROLE_LEARNER) != 0,
        .learners_mask = learners_mask(&nd->a->cfg),
        /* pxs_config.snapshot_log_entries, at most NODE_SHM_SNAP_ENTRIES_MAX on shm */
        .sm_snap_instances = nd->a->cfg.sm_snap_entries != 0 ? nd->a->cfg.sm_snap_entries
                             : nd->a->cfg.store == STORE_SHM ? NODE_SHM_SNAP_ENTRIES_MAX
                                                             : DRIVER_SM_SNAP_INSTANCES,
        .sm_snap_bytes =
            nd->a->cfg.sm_snap_bytes != 0 ? nd->a->cfg.sm_snap_bytes : DRIVER_SM_SNAP_BYTES,
    };
    const struct driver_env env = {
        .ctx = nd,
        .now_ns = node_now_ns,
        .membership = node_membership,
        .failpoint = nd->fp != FP_NONE ? node_failpoint : NULL,
        .peer = node_peer,
        .trace = log_level_current >= LOG_TRACE ? node_trace : NULL,
        /* the main job's commands are checked byte for byte; a library pool's are the user's */
        .applied_cmd = nd->a->cfg.job ? node_applied_cmd : NULL,
    };
    int rc = driver_init(&nd->drv, &dc, &env, nd->core, nd->t, nd->store);
    nd->drv_ready = rc == 0;
    return rc;
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
    int rc = node_store_open(nd);
    if (rc != 0)
        return rc;
    if (a->mesh)
        rc = transport_sock_create(a->mesh, a->seg, a->cfg.id, a->cfg.nodes, &nd->t);
    else
        rc = transport_shm_create(a->seg, a->cfg.id, a->cfg.nodes, &nd->t);
    if (rc == 0)
        rc = node_driver_init(nd);
    if (rc != 0)
        return rc;
    struct px_durable d;
    rc = driver_recover(&nd->drv, &d);
    if (rc != 0) {
        const struct sm_node *sm = nd->drv.sm;
        if (sm != NULL && sm->err[0] != '\0')
            fprintf(stderr, "paxos-shm: node %u: state machine: %s\n", a->cfg.id, sm->err);
        else
            fprintf(stderr, "paxos-shm: node %u: %s\n", a->cfg.id, store_errmsg(nd->store));
        return rc;
    }
    if (nd->drv.sm != NULL && nd->drv.sm->index > 0)
        LOG(LOG_INFO, "state machine recovered at %llu (snapshot at %llu)",
            (unsigned long long)nd->drv.sm->index, (unsigned long long)nd->drv.sm->persisted);
    memcpy(&nd->me->recovered_fib, px_node_history(nd->core), sizeof(nd->me->recovered_fib));
    cmm_smp_wmb(); /* the fib before the flag; pairs with the supervisor's rmb in wait_loaded */
    CMM_STORE_SHARED(nd->me->loaded_incarnation, a->cfg.incarnation);
    if (d.fib.applied > 0 || d.promised > 0)
        LOG(LOG_INFO, "recovered: promised %llx, applied %llu", (unsigned long long)d.promised,
            (unsigned long long)d.fib.applied);
    return 0;
}

static int node_loop(struct node *nd)
{
    int rc = driver_start(&nd->drv);
    while (rc == 0) {
        if (CMM_LOAD_SHARED(nd->pool->stop)) {
            log_summary(nd);
            publish_final(nd);
            return NODE_EXIT_STOPPED;
        }
        rc = driver_run_once(&nd->drv);
        if (rc != 0)
            break;
        /* Progress for the supervisor's hang watch: at least once per tick (NODE_TICK_NS),
         * since an idle node wakes for every tick. Single writer: this node. */
        CMM_STORE_SHARED(nd->ctl->heartbeat, CMM_LOAD_SHARED(nd->ctl->heartbeat) + 1);
        publish_status(nd);
        driver_idle(&nd->drv);
    }
    /* The hook kills the process at a failpoint, so only a store failure ends up here. */
    PX_ASSERT(rc < 0);
    if (rc == -ENODATA) {
        /* A value it holds only in memory (a request queued long ago) lost its bytes: like a
         * crash before the persist, a restart drops that state and keeps the durable one. The
         * same for the bytes a state machine must apply (a command, a snapshot). */
        if (nd->drv.sm != NULL && nd->drv.sm->err[0] != '\0')
            LOG(LOG_INFO, "state machine: %s: restarting", nd->drv.sm->err);
        else
            LOG(LOG_INFO, "the bytes of a command to persist are gone: restarting");
        return NODE_EXIT_RESTART;
    }
    if (rc == -ENOSPC && store_shm_area_full(nd->store)) {
        /* Its shm store's command area (node_shm_arena_bytes): a restart keeps the durable
         * state, and the log's truncation frees the area meanwhile. */
        LOG(LOG_INFO, "%s: restarting", store_errmsg(nd->store));
        return NODE_EXIT_RESTART;
    }
    if (rc == SM_FAILED && nd->drv.sm != NULL) {
        fprintf(stderr, "paxos-shm: node %u: %s: restarting\n", nd->a->cfg.id, nd->drv.sm->err);
        return NODE_EXIT_RESTART;
    }
    fprintf(stderr, "paxos-shm: node %u: %s\n", nd->a->cfg.id, store_errmsg(nd->store));
    return NODE_EXIT_FAILED;
}

int node_run(const struct node_args *a)
{
    /* Die with the supervisor; if it is already gone, stop now. */
    pid_t parent = getppid();
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || parent == 1)
        return NODE_EXIT_FAILED;
    /* Ctrl-C, a hang-up or any stop signal to the process group: the supervisor stops us. */
    px_child_signals();
    signal(SIGTERM, SIG_DFL);
    signal(SIGCHLD, SIG_DFL);
    signal(SIGXFSZ, SIG_IGN); /* a file-size limit is a clear storage error, not a death */
    log_set_node(a->cfg.id, a->cfg.incarnation);

    struct node nd = {.a = a};
    nd.pool = ipc_segment_user(a->seg, a->cfg.nodes);
    nd.me = ipc_segment_user(a->seg, a->cfg.id);
    nd.ctl = ipc_segment_ctl(a->seg, a->cfg.id);
    /* Held for life: our death releases it before the kernel reaps us (ipc/life.h). */
    int held = ipc_life_hold(&nd.ctl->life, a->cfg.incarnation);
    if (held != 0) {
        fprintf(stderr, "paxos-shm: node %u: take its life lock: %s\n", a->cfg.id, strerror(-held));
        return NODE_EXIT_FAILED;
    }
    nd.elections_base = CMM_LOAD_SHARED(nd.me->elections_won);
    nd.batches_base = CMM_LOAD_SHARED(nd.me->batches);
    nd.records_base = CMM_LOAD_SHARED(nd.me->records);
    CMM_STORE_SHARED(nd.me->is_leader, 0);
    void *core_mem = NULL;
    int code = NODE_EXIT_FAILED;
    int orc = failpoint_parse(&nd);
    if (orc == 0)
        orc = node_open(&nd, &core_mem);
    if (orc == 0) {
        LOG(LOG_INFO, "started (pid %d)", (int)getpid());
        code = node_loop(&nd);
    } else if (orc == SM_FAILED && nd.drv.sm != NULL) {
        code = NODE_EXIT_RESTART; /* its start or restore failed: as if it crashed there */
    }
    if (nd.drv_ready)
        driver_fini(&nd.drv);
    if (nd.store)
        store_close(nd.store);
    if (nd.t)
        nd.t->ops->destroy(nd.t);
    free(core_mem);
    return code;
}
