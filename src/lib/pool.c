/* pool.c: the public API's pool (include/paxos-shm/paxos_shm.h) on the supervisor's parts
 * (src/supervisor/sup.h). The embedding process is the supervisor: it owns the segment and the
 * data dir, forks the nodes (each runs the caller's state machine, node/node.h sm), restarts
 * those that die, and is the pool's one client, whose requests are the caller's commands.
 *
 * The client: one request identity per pool opening (client id from the registry's run id, so
 * a continued data dir never mistakes a new request for an old one), seq 1, 2, ... per command.
 * At most `window` commands in flight, and the newest seq less than PX_DEDUP_SPAN past the
 * oldest one not completed (the state machine's exactly-once window). A command not completed
 * in time, or outstanding when the leader died, is sent again with the same identity: the core
 * applies it once. Its result arrives as a stream ahead of the reply (common/cmd.h
 * cmd_result_key), assembled by a payload plane of the client's own. */
#include "paxos-shm/paxos_shm.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <urcu/system.h>

#include "common/cmd.h"
#include "common/log.h"
#include "common/pool.h"
#include "common/util.h"
#include "ipc/check.h"
#include "node/driver.h"
#include "node/node.h"
#include "node/payload.h"
#include "node/transport.h"
#include "supervisor/client.h"
#include "supervisor/sup.h"

/* Requests tracked: the exactly-once span; a window is at most half of it. */
#define LIB_SLOTS      PX_DEDUP_SPAN
#define LIB_WINDOW_MAX (PX_DEDUP_SPAN / 2u)
#define LIB_BATCH_MAX  1024
/* A request not completed this long after it went (plus its share of the bytes in flight at
 * LIB_NS_PER_BYTE) goes again. */
#define LIB_RESUBMIT_NS CLIENT_RESUBMIT_NS
#define LIB_NS_PER_BYTE 200ull
#define LIB_WAIT_NS     (1000ull * 1000)
#define LIB_CHAOS_SPAN  1000u
/* Requests one durable high-water mark of the client's record covers (sup_record_lib): one
 * registry write per 4096 commands. */
#define LIB_HWM_CHUNK 4096u
/* How long a command answered without a result by a leader that is no learner waits for the
 * lowest learner's report of it. */
#define LIB_RESULT_WAIT_NS (500ull * 1000 * 1000)
/* How long pxs_open waits, once a leader is elected, for the learners to stand at the same log
 * index (settle_learners). */
#define LIB_SETTLE_NS (2000ull * 1000 * 1000)

struct lib_req {
    uint32_t seq; /* 0: free */
    uint32_t len;
    uint8_t *cmd; /* len bytes (NULL when 0) */
    uint32_t crc;
    pxs_done_fn done;
    void *arg;
    uint64_t due_ns; /* 0: never sent; else sent again at this time */
    /* Chosen at `index`, answered by a node that is no learner (no result): the lowest learner
     * sends the result (node/driver.c report_result); completed without one at wait_ns. */
    uint64_t wait_ns;
    uint64_t index;
};

struct pxs_pool {
    struct sup *s;
    struct cli_config cfg;
    struct pxs_state_machine sm;
    uint32_t client_id;
    uint32_t window;
    uint32_t command_max;          /* the caller's: commands longer are refused at submit */
    uint32_t next_seq, oldest_seq; /* next to hand out; oldest not completed */
    uint32_t hwm_seq;              /* durable high-water mark: no seq above it has gone out */
    uint64_t base;                 /* requests of earlier runs on the data dir (record.run.base) */
    uint32_t inflight;
    uint64_t bytes_inflight;
    uint64_t done, resubmits, max_instance;
    bool failed, closing;
    bool in_done; /* a completion runs: pxs_poll, pxs_call and pxs_close are refused */
    struct lib_req slots[LIB_SLOTS];
    struct payload_plane rx; /* results */
    struct {
        bool active;
        uint32_t seq;
        struct payload_entry e;
        uint32_t off;
        struct px_msg m;
    } stream;
};

static_assert(PXS_SHM_SNAPSHOT_ENTRIES_MAX == NODE_SHM_SNAP_ENTRIES_MAX, "");
static_assert(PXS_SNAPSHOT_LOG_ENTRIES_DEFAULT == DRIVER_SM_SNAP_INSTANCES, "");
static_assert(PXS_SNAPSHOT_LOG_BYTES_DEFAULT == DRIVER_SM_SNAP_BYTES, "");

static bool one_open; /* the supervisor's signal handling and SIGCHLD are the process's */

void pxs_config_init(struct pxs_config *c)
{
    if (c == NULL)
        return;
    memset(c, 0, sizeof(*c));
    c->size = sizeof(*c);
    c->nodes = 3;
    c->window = 64;
    c->command_max = PXS_COMMAND_MAX_DEFAULT;
    c->store = PXS_STORE_SQLITE;
    c->shm_state_max = PXS_SHM_STATE_MAX_DEFAULT;
    c->snapshot_log_bytes = PXS_SNAPSHOT_LOG_BYTES_DEFAULT;
    c->snapshot_log_entries = PXS_SNAPSHOT_LOG_ENTRIES_DEFAULT;
}

static int bad(const char *what)
{
    fprintf(stderr, "paxos-shm: pxs_open: %s\n", what);
    return -EINVAL;
}

/* The supervisor's configuration of c (checked). */
static int config_of(const struct pxs_config *c, struct cli_config *out)
{
    if (c->size < offsetof(struct pxs_config, quiet) + sizeof(c->quiet))
        return bad("config.size is not set (call pxs_config_init first)");
    if (c->nodes < 1 || c->nodes > PXS_NODES_MAX)
        return bad("config.nodes must be 1..64");
    uint32_t p = c->proposers ? c->proposers : c->nodes;
    uint32_t a = c->acceptors ? c->acceptors : c->nodes;
    uint32_t l = c->learners ? c->learners : c->nodes;
    if (p > c->nodes || a > c->nodes || l > c->nodes)
        return bad("config.proposers, acceptors and learners must be 0..nodes");
    if (c->window < 1 || c->window > LIB_WINDOW_MAX)
        return bad("config.window must be 1..128");
    if (c->command_max > PXS_COMMAND_MAX_LIMIT)
        return bad("config.command_max must be at most 64 MiB");
    if (c->store != PXS_STORE_SQLITE && c->store != PXS_STORE_SHM)
        return bad("config.store must be PXS_STORE_SQLITE or PXS_STORE_SHM");
    /* A caller built against a header without shm_state_max gets the default. */
    bool has_state_max =
        c->size >= offsetof(struct pxs_config, shm_state_max) + sizeof(c->shm_state_max);
    uint64_t state_max =
        has_state_max && c->shm_state_max != 0 ? c->shm_state_max : PXS_SHM_STATE_MAX_DEFAULT;
    if (c->store == PXS_STORE_SHM && c->data_dir != NULL)
        return bad("config.data_dir: the shm store keeps nothing after pxs_close (use "
                   "PXS_STORE_SQLITE to keep a log)");
    if (c->store == PXS_STORE_SHM &&
        !node_shm_arena_fits(c->command_max > CMD_INLINE_BYTES ? c->command_max : CMD_INLINE_BYTES,
                             c->window, (uint16_t)c->nodes, state_max))
        return bad("config.store PXS_STORE_SHM: command_max, shm_state_max and nodes need more "
                   "room than the segment may reserve (4 GiB in all): use PXS_STORE_SQLITE, "
                   "shorter commands, a smaller state or fewer nodes");
    /* The same for the snapshot policy. */
    bool has_policy = c->size >= offsetof(struct pxs_config, reserved) + sizeof(c->reserved);
    uint64_t snap_bytes = has_policy ? c->snapshot_log_bytes : 0;
    uint32_t snap_entries = has_policy ? c->snapshot_log_entries : 0;
    if (c->store == PXS_STORE_SHM && snap_entries == PXS_SNAPSHOT_LOG_ENTRIES_DEFAULT)
        snap_entries = 0; /* pxs_config_init's: the store's own default */
    if (c->store == PXS_STORE_SHM && snap_entries > PXS_SHM_SNAPSHOT_ENTRIES_MAX)
        return bad("config.snapshot_log_entries: the shm store's log holds 8192 entries, a "
                   "snapshot must come within 2048");
    if (has_policy && c->reserved != 0)
        return bad("config.reserved must be 0");
    if (c->timeout_s > CLI_TIMEOUT_MAX)
        return bad("config.timeout_s must be at most 86400");
    if (c->data_dir != NULL) { /* an existing directory this process may write in */
        struct stat st;
        int e = stat(c->data_dir, &st) != 0        ? errno
                : !S_ISDIR(st.st_mode)             ? ENOTDIR
                : access(c->data_dir, W_OK | X_OK) ? errno
                                                   : 0;
        if (e != 0) {
            fprintf(stderr, "paxos-shm: pxs_open: config.data_dir %s: %s\n", c->data_dir,
                    strerror(e));
            return -e;
        }
    }
    memset(out, 0, sizeof(*out));
    out->nodes = c->nodes;
    out->proposers = p;
    out->acceptors = a;
    out->learners = l;
    out->rounds = LIB_CHAOS_SPAN; /* chaos moments are counted in completed commands */
    out->window = c->window;
    out->command_bytes = c->command_max > CMD_INLINE_BYTES ? c->command_max : CMD_INLINE_BYTES;
    out->ring_slots = 4096;
    out->seed = c->seed ? c->seed : 1;
    out->chaos_kills = c->chaos_kills;
    out->timeout_s = c->timeout_s;
    out->store = c->store == PXS_STORE_SHM ? CLI_STORE_SHM : CLI_STORE_SQLITE;
    out->sm_state_max = c->store == PXS_STORE_SHM ? state_max : 0;
    out->sm_snap_bytes = snap_bytes;
    out->sm_snap_entries = snap_entries;
    out->sync = CLI_SYNC_NORMAL;
    out->transport = CLI_TRANSPORT_SHM;
    out->data_dir = c->data_dir;
    out->keep_data = c->data_dir != NULL;
    out->quiet = c->quiet != 0;
    return 0;
}

/* Moments of the chaos kills, in commands completed: config.chaos_every apart when set. */
static void chaos_moments(struct sup *s, const struct pxs_config *c)
{
    bool has_every = c->size >= offsetof(struct pxs_config, chaos_every) + sizeof(c->chaos_every);
    if (!has_every || c->chaos_every == 0 || s->chaos.kill_at == NULL)
        return;
    for (uint32_t i = 0; i < s->cfg->chaos_kills; i++)
        s->chaos.kill_at[i] = (uint64_t)(i + 1) * c->chaos_every;
}

static int check_sm(const struct pxs_state_machine *sm)
{
    if (sm->size < offsetof(struct pxs_state_machine, digest) + sizeof(sm->digest))
        return bad("state_machine.size is not sizeof(struct pxs_state_machine)");
    if (sm->apply == NULL || sm->snapshot == NULL || sm->restore == NULL)
        return bad("state_machine.apply, snapshot and restore are required");
    return 0;
}

static int spawn_all(struct sup *s)
{
    for (uint16_t i = 0; i < s->cfg->nodes; i++)
        if (sup_spawn(s, i) != 0)
            return -1;
    return 0;
}

static void free_pool(struct pxs_pool *p)
{
    for (uint32_t i = 0; i < LIB_SLOTS; i++)
        free(p->slots[i].cmd);
    payload_fini(&p->rx);
    free(p->s);
    free(p);
    one_open = false;
}

/* A pool started on a data dir where a learner stopped behind the others (a signal ended the
 * last run between two learners' applies) catches that learner up first: otherwise it would
 * catch up from a peer's snapshot taken after this run's first commands, and the results of
 * those commands would be lost when it is the learner that reports them. Waits until every
 * running learner applied the same index (up to LIB_SETTLE_NS; then goes on: a learner that
 * lags loses results, as the header allows). False when a stop signal came. */
static bool settle_learners(struct sup *s)
{
    uint64_t deadline = util_now_ns() + LIB_SETTLE_NS;
    for (;;) {
        if (sup_take_sigchld())
            sup_reap(s);
        if (sup_signal() || s->fatal)
            return false;
        uint64_t lo = UINT64_MAX, hi = 0;
        for (uint16_t i = 0; i < s->cfg->nodes; i++) {
            if (!sup_has_role(s->cfg, i, PX_ROLE_LEARNER) || s->members.procs[i].pid <= 0)
                continue;
            uint64_t a = CMM_LOAD_SHARED(sup_node_shared(s, i)->applied);
            lo = a < lo ? a : lo;
            hi = a > hi ? a : hi;
        }
        if (lo >= hi || util_now_ns() > deadline)
            return true;
        struct timespec ts = {0, 1000l * 1000};
        nanosleep(&ts, NULL);
    }
}

int pxs_open(const struct pxs_config *c, const struct pxs_state_machine *sm, struct pxs_pool **out)
{
    if (c == NULL || sm == NULL || out == NULL)
        return -EINVAL;
    if (one_open)
        return -EBUSY;
    struct pxs_pool *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return -ENOMEM;
    int rc = config_of(c, &p->cfg);
    if (rc == 0)
        rc = check_sm(sm);
    if (rc != 0) {
        free(p);
        return rc;
    }
    /* PAXOS_LOG and PAXOS_LOG_TIME as for the command: a bad value is one line on stderr and
     * errors only (nodes read the same values when they start). */
    (void)log_init("supervisor");
    memcpy(&p->sm, sm, sizeof(p->sm));
    p->command_max = c->command_max;
    p->sm.size = sizeof(p->sm);
    p->s = calloc(1, sizeof(*p->s));
    uint32_t result_room = PXS_RESULT_MAX + 4u;
    if (p->s == NULL || payload_init(&p->rx, (uint16_t)c->nodes, (uint16_t)c->nodes, result_room,
                                     (uint64_t)LIB_SLOTS * result_room) != 0) {
        free(p->s);
        free(p);
        return -ENOMEM;
    }
    one_open = true;
    struct sup *s = p->s;
    s->env.lock_fd = -1;
    s->cfg = &p->cfg;
    s->sm = &p->sm;
    s->drive.leader = PX_NODE_NONE;
    s->drive.handed_to = PX_NODE_NONE;
    s->drive.client = malloc(sizeof(*s->drive.client));
    if (s->drive.client == NULL || sup_chaos_plan(s) != 0) {
        sup_teardown(s);
        free_pool(p);
        return -ENOMEM;
    }
    chaos_moments(s, c);
    client_init(s->drive.client, p->cfg.rounds, 1, 0); /* counts done commands for chaos */
    p->window = p->cfg.store == CLI_STORE_SHM
                    ? node_shm_window(p->cfg.command_bytes, p->cfg.window, (uint16_t)p->cfg.nodes)
                    : payload_window_for(p->cfg.command_bytes, p->cfg.window);
    sup_install_signals();
    bool ready = sup_setup_data_dir(s) == 0 && sup_setup_segment(s) == 0 &&
                 sup_watch_start(s) == 0 && sup_record_begin(s) == 0 && spawn_all(s) == 0;
    rc = ready ? sup_wait_loaded(s) : -1;
    if (ready && rc == 0 && !settle_learners(s))
        rc = -1;
    if (!ready || rc != 0) {
        int fatal = s->fatal;
        bool signalled = sup_signal() != 0; /* before sup_restore_signals forgets it */
        sup_kill_nodes(s);
        sup_record_end(s, "not started");
        sup_teardown(s);
        sup_restore_signals();
        free_pool(p);
        return fatal == EXIT_USAGE ? -EEXIST : signalled ? -EINTR : -EIO;
    }
    /* A new identity per opening: ids above every earlier run's evict theirs first. */
    p->client_id = (uint32_t)((uint64_t)s->env.epoch % ((1u << 30) - 2u)) + 1u;
    p->next_seq = p->oldest_seq = 1;
    p->base = s->record.run.base;
    *out = p;
    return 0;
}

static struct lib_req *slot_of(struct pxs_pool *p, uint32_t seq)
{
    return &p->slots[seq % LIB_SLOTS];
}

int pxs_submit(struct pxs_pool *p, const void *cmd, size_t len, pxs_done_fn done, void *arg)
{
    if (p == NULL || done == NULL || (cmd == NULL && len > 0))
        return -EINVAL;
    if (p->failed || p->closing)
        return -ESHUTDOWN;
    if (len > p->command_max)
        return -EMSGSIZE;
    if (p->inflight >= p->window || p->next_seq - p->oldest_seq >= PX_DEDUP_SPAN - 1u)
        return -EAGAIN;
    struct lib_req *r = slot_of(p, p->next_seq);
    PX_ASSERT(r->seq == 0);
    uint8_t *copy = NULL;
    if (len > 0) {
        copy = malloc(len);
        if (copy == NULL)
            return -ENOMEM;
        memcpy(copy, cmd, len);
    }
    *r = (struct lib_req){
        .seq = p->next_seq++, .len = (uint32_t)len, .cmd = copy, .done = done, .arg = arg};
    r->crc = len > CMD_LIB_INLINE_MAX ? ipc_crc32c(0, copy, (uint32_t)len) : 0;
    p->inflight++;
    p->bytes_inflight += len;
    return 0;
}

/* The value of request r. */
static struct px_value value_of(const struct pxs_pool *p, const struct lib_req *r)
{
    struct px_value v = {.client_id = p->client_id, .seq = r->seq};
    if (r->len <= CMD_LIB_INLINE_MAX) {
        v.word = cmd_lib_pack(r->cmd, r->len);
    } else {
        v.client_id |= PX_VALUE_PAYLOAD;
        memcpy(&v.word, r->cmd, sizeof(v.word));
    }
    return v;
}

/* Goes on with the command being streamed (its DATA, then its CLIENT message). True when it is
 * all handed over, or there is none; false when the outbox is full. */
static bool stream_on(struct pxs_pool *p)
{
    struct transport *t = p->s->env.t;
    if (!p->stream.active)
        return true;
    struct lib_req *r = slot_of(p, p->stream.seq);
    if (r->seq != p->stream.seq) {
        p->stream.active = false; /* completed meanwhile (an earlier copy was decided) */
        return true;
    }
    if (p->stream.m.to != p->s->drive.target || !sup_alive(p->s, p->stream.m.to)) {
        /* Its node died or lost the lead: a full ring to it would hold every later command
         * back. The receiver drops the torn stream whole; the command goes again when due. */
        p->stream.active = false;
        r->due_ns = util_now_ns();
        return true;
    }
    while (p->stream.off < payload_stream_len(p->stream.e.len)) {
        struct px_msg c;
        uint32_t off = p->stream.off;
        (void)payload_chunks(&p->stream.e, p->stream.m.from, p->stream.m.to, &off, &c, 1);
        if (transport_send(t, &c) != 0)
            return false;
        p->stream.off = off;
    }
    if (transport_send(t, &p->stream.m) != 0)
        return false;
    p->stream.active = false;
    return true;
}

/* Sends request r to the node requests go to. False when the outbox is full, or when its
 * identity could not be made durable first (the pool fails). */
static bool send_req(struct pxs_pool *p, struct lib_req *r, uint64_t now)
{
    struct sup *s = p->s;
    if (r->seq > p->hwm_seq) {
        uint32_t hwm = r->seq + LIB_HWM_CHUNK;
        if (sup_record_lib(s, p->base + hwm, p->base + p->oldest_seq - 1u) != 0) {
            p->failed = true;
            return false;
        }
        p->hwm_seq = hwm;
    }
    struct px_msg m;
    memset(&m, 0, sizeof(m));
    m.type = PX_MSG_CLIENT;
    m.from = (uint16_t)s->cfg->nodes;
    m.to = s->drive.target;
    m.u.client.value = value_of(p, r);
    if (r->due_ns != 0)
        p->resubmits++;
    r->due_ns = now + LIB_RESUBMIT_NS + p->bytes_inflight * LIB_NS_PER_BYTE;
    if (r->len <= CMD_LIB_INLINE_MAX)
        return transport_send(s->env.t, &m) == 0;
    p->stream.e = (struct payload_entry){
        .key = cmd_key(&m.u.client.value), .bytes = r->cmd, .len = r->len, .crc = r->crc};
    p->stream.off = 0;
    p->stream.m = m;
    p->stream.seq = r->seq;
    p->stream.active = true;
    return stream_on(p);
}

static void complete(struct pxs_pool *p, struct lib_req *r, const struct pxs_outcome *o);

/* Sends what was never sent and what is due again (every outstanding one when the leader
 * changed), oldest first; long commands one stream at a time. Completes, with result_lost,
 * what was chosen but whose result did not come in time; returns how many. */
static int send_due(struct pxs_pool *p, uint64_t now)
{
    int completed = 0;
    bool all = p->s->drive.resend;
    p->s->drive.resend = false;
    if (all)
        for (uint32_t q = p->oldest_seq; q != p->next_seq; q++)
            if (slot_of(p, q)->seq == q && slot_of(p, q)->due_ns != 0 &&
                slot_of(p, q)->wait_ns == 0)
                slot_of(p, q)->due_ns = now; /* due now */
    for (uint32_t q = p->oldest_seq; q != p->next_seq; q++) {
        struct lib_req *r = slot_of(p, q);
        if (r->seq == q && r->wait_ns != 0) { /* chosen: only its result is awaited */
            if (now >= r->wait_ns) {
                struct pxs_outcome o = {.index = r->index, .result_lost = 1};
                if (r->index > p->max_instance)
                    p->max_instance = r->index;
                p->done++;
                complete(p, r, &o);
                completed++;
            }
            continue;
        }
        if (r->seq != q || (r->due_ns != 0 && r->due_ns > now))
            continue;
        if (!stream_on(p))
            return completed;
        if (!send_req(p, r, now))
            return completed; /* the outbox is full: due again at its new time, or sooner */
    }
    return completed;
}

static void complete(struct pxs_pool *p, struct lib_req *r, const struct pxs_outcome *o)
{
    pxs_done_fn done = r->done;
    void *arg = r->arg;
    p->inflight--;
    p->bytes_inflight -= r->len;
    free(r->cmd);
    memset(r, 0, sizeof(*r));
    while (p->oldest_seq != p->next_seq && slot_of(p, p->oldest_seq)->seq != p->oldest_seq)
        p->oldest_seq++;
    bool nested = p->in_done;
    p->in_done = true;
    done(arg, o);
    p->in_done = nested;
}

/* A CLIENT_REPLY: completes its request, with the result streamed ahead of it if one came. */
static int take_reply(struct pxs_pool *p, const struct px_msg *m)
{
    const struct px_value *v = &m->u.client_reply.value;
    if (px_value_client(v) != p->client_id)
        return 0; /* not ours: an earlier opening's */
    struct lib_req *r = slot_of(p, v->seq);
    uint64_t key = cmd_result_key(v);
    if (r->seq != v->seq || v->seq == 0) {
        payload_drop(&p->rx, key); /* a second reply of one completed already */
        return 0;
    }
    struct pxs_outcome o = {.err = 0, .index = m->instance};
    const struct payload_entry *e = payload_get(&p->rx, key);
    if ((e == NULL || e->len < 4) && m->from < p->s->cfg->nodes &&
        !sup_has_role(p->s->cfg, m->from, PX_ROLE_LEARNER) && p->s->cfg->learners > 0) {
        if (r->wait_ns == 0) { /* the lowest learner's report of the result is on its way */
            r->wait_ns = util_now_ns() + LIB_RESULT_WAIT_NS;
            r->index = m->instance;
        }
        return 0;
    }
    if (o.index == 0)
        o.index = r->index;
    if (e != NULL && e->len >= 4) {
        o.status = (int)((uint32_t)e->bytes[0] | (uint32_t)e->bytes[1] << 8 |
                         (uint32_t)e->bytes[2] << 16 | (uint32_t)e->bytes[3] << 24);
        o.result = e->len > 4 ? e->bytes + 4 : NULL;
        o.result_len = e->len - 4;
    } else {
        o.result_lost = 1;
    }
    if (m->instance > p->max_instance)
        p->max_instance = m->instance;
    p->done++;
    complete(p, r, &o);
    payload_drop(&p->rx, key);
    return 1;
}

/* Reads what came; waits up to wait_ns when nothing did. Returns completions. */
static int pump(struct pxs_pool *p, uint64_t wait_ns)
{
    static struct px_msg in[LIB_BATCH_MAX];
    struct transport *t = p->s->env.t;
    transport_flush(t);
    uint32_t n = transport_recv(t, in, LIB_BATCH_MAX);
    int got = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (in[i].type == PX_MSG_DATA)
            (void)payload_rx_data(&p->rx, &in[i]);
        else if (in[i].type == PX_MSG_CLIENT_REPLY)
            got += take_reply(p, &in[i]);
    }
    if (n == 0 && wait_ns > 0)
        transport_wait(t, wait_ns);
    return got;
}

/* One pass of the pool: deaths and restarts, chaos, the leader, sends, replies. */
static int pass(struct pxs_pool *p, uint64_t wait_ns)
{
    struct sup *s = p->s;
    if (p->failed || sup_should_stop(s)) {
        p->failed = true;
        return -ESHUTDOWN;
    }
    uint64_t now = util_now_ns();
    sup_drive_track(s);
    s->drive.client->done = p->done;
    sup_chaos_step(s);
    int completed = send_due(p, now);
    sup_restart_due(s);
    return completed + pump(p, completed > 0 ? 0 : wait_ns);
}

int pxs_poll(struct pxs_pool *p, int timeout_ms)
{
    if (p == NULL)
        return -EINVAL;
    if (p->in_done)
        return -EDEADLK;
    if (p->failed)
        return -ESHUTDOWN;
    uint64_t deadline = timeout_ms >= 0    ? util_now_ns() + (uint64_t)timeout_ms * 1000000ull
                        : p->cfg.timeout_s ? util_now_ns() + p->cfg.timeout_s * 1000000000ull
                                           : UINT64_MAX;
    int total = 0;
    for (;;) {
        uint64_t now = util_now_ns();
        uint64_t wait = now < deadline ? deadline - now : 0;
        int rc = pass(p, wait < LIB_WAIT_NS ? wait : LIB_WAIT_NS);
        if (rc < 0)
            return total > 0 ? total : rc;
        total += rc;
        if (total > 0 || util_now_ns() >= deadline)
            return total;
    }
}

struct call_wait {
    bool done;
    struct pxs_outcome *out;
    void *buf;
    size_t cap;
};

static void call_done(void *arg, const struct pxs_outcome *o)
{
    struct call_wait *w = arg;
    *w->out = *o;
    size_t n = o->result_len < w->cap ? o->result_len : w->cap;
    if (n > 0)
        memcpy(w->buf, o->result, n);
    w->out->result = n > 0 ? w->buf : NULL;
    w->done = true;
}

static void forget_done(void *arg, const struct pxs_outcome *o)
{
    (void)arg;
    (void)o;
}

int pxs_call(struct pxs_pool *p, const void *cmd, size_t len, void *result, size_t cap,
             struct pxs_outcome *out)
{
    if (p == NULL || out == NULL || (result == NULL && cap > 0))
        return -EINVAL;
    if (p->in_done)
        return -EDEADLK;
    struct call_wait w = {.out = out, .buf = result, .cap = cap};
    int rc;
    while ((rc = pxs_submit(p, cmd, len, call_done, &w)) == -EAGAIN) {
        int prc = pxs_poll(p, 10);
        if (prc < 0)
            return prc;
    }
    if (rc != 0)
        return rc;
    uint32_t seq = p->next_seq - 1u;
    uint64_t deadline = p->cfg.timeout_s ? util_now_ns() + p->cfg.timeout_s * 1000000000ull : 0;
    while (!w.done) {
        int prc = pxs_poll(p, 10);
        if (prc >= 0 && !w.done && deadline != 0 && util_now_ns() > deadline)
            prc = -ETIMEDOUT; /* still in flight: its outcome is not known */
        if (prc < 0 && !w.done) {
            /* The pool failed, or the wait timed out: the command's completion comes long
             * after w is gone (pxs_close cancels it if nothing else does). */
            struct lib_req *r = slot_of(p, seq);
            if (r->seq == seq)
                r->done = forget_done;
            return prc;
        }
    }
    return 0;
}

/* Completes every outstanding request with err (the pool closes without them). */
static void cancel_all(struct pxs_pool *p, int err)
{
    for (uint32_t q = p->oldest_seq; q != p->next_seq; q++) {
        struct lib_req *r = slot_of(p, q);
        if (r->seq != q)
            continue;
        struct pxs_outcome o = {.err = err, .result_lost = 1};
        complete(p, r, &o);
    }
}

static const char *outcome_of(int code)
{
    switch (code) {
    case PXS_EXIT_VERIFIED:
        return "VERIFIED";
    case PXS_EXIT_VERIFY_FAILED:
        return "VERIFICATION FAILED";
    default:
        return code > PXS_EXIT_SIGNAL_BASE ? "stopped by a signal" : "runtime failure";
    }
}

int pxs_close(struct pxs_pool *p, struct pxs_report *r)
{
    if (p == NULL || p->in_done)
        return PXS_EXIT_USAGE; /* nothing done: a completion cannot close its own pool */
    struct sup *s = p->s;
    p->closing = true;
    uint64_t deadline =
        s->cfg->timeout_s ? util_now_ns() + s->cfg->timeout_s * 1000000000ull : UINT64_MAX;
    int code = 0;
    while (p->inflight > 0 && !p->failed && util_now_ns() < deadline)
        (void)pass(p, LIB_WAIT_NS);
    if (p->inflight > 0) {
        if (!p->failed)
            fprintf(stderr, "paxos-shm: pxs_close: %u commands not completed within %u s\n",
                    p->inflight, s->cfg->timeout_s);
        code = PXS_EXIT_RUNTIME;
    }
    uint32_t decided_seq = p->oldest_seq - 1u; /* every one up to it completed */
    cancel_all(p, -ECANCELED);
    if (p->max_instance > s->drive.max_instance)
        s->drive.max_instance = p->max_instance;
    if (code == 0 && !p->failed && !sup_converge(s))
        code = PXS_EXIT_RUNTIME;
    sup_stop_nodes(s);
    sup_collect(s);
    sup_members_note_all(s);
    if (sup_signal())
        code = sup_signal_exit();
    else if (s->fatal && code == 0)
        code = s->fatal;
    else if (p->failed && code == 0)
        code = PXS_EXIT_RUNTIME;
    if (code == 0) {
        sup_verify_lib(s, p->done);
        code = s->verify.verified ? PXS_EXIT_VERIFIED : PXS_EXIT_VERIFY_FAILED;
        for (uint16_t i = 0; i < s->cfg->nodes && code != 0; i++)
            if (s->verify.nodes[i].learner && strcmp(s->verify.nodes[i].verdict, "ok") != 0)
                fprintf(stderr, "paxos-shm: learner %u: %s\n", i, s->verify.nodes[i].verdict);
    }
    if (p->hwm_seq > 0)
        (void)sup_record_lib(s, p->base + p->hwm_seq, p->base + decided_seq);
    sup_record_end(s, outcome_of(code));
    if (r != NULL && r->size >= sizeof(*r)) {
        const struct sup_node_end *ref = NULL;
        for (uint16_t i = 0; i < s->cfg->nodes && ref == NULL; i++)
            if (s->verify.nodes[i].learner && s->verify.nodes[i].final_ok)
                ref = &s->verify.nodes[i];
        memset(r, 0, sizeof(*r));
        r->size = sizeof(*r);
        r->learners = s->verify.learners;
        r->learners_agree = s->verify.learners_ok;
        if (ref != NULL) {
            r->applied = ref->sm_applied;
            r->index = ref->sm_index;
            r->digest = ref->cmd_digest;
            r->sm_digest = ref->sm_digest;
        }
        r->restarts = s->members.restarts;
        r->chaos_kills = s->chaos.kills;
    }
    if (!s->cfg->quiet)
        printf("paxos-shm: %s: %" PRIu64 " commands completed, %u of %u learners agree, %u "
               "restarts, %u chaos kills, %" PRIu64 " resubmits\n",
               outcome_of(code), p->done, s->verify.learners_ok, s->verify.learners,
               s->members.restarts, s->chaos.kills, p->resubmits);
    sup_teardown(s);
    sup_restore_signals();
    free_pool(p);
    return code;
}
