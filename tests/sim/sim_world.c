/* sim_world.c: the simulated pool -- its nodes, the client and time.
 *
 * Every node runs through the real node driver (src/node/driver.c), the loop of the node
 * process, over a simulated transport (sim_net.c) and a memory store (sim_store.c). What the
 * simulator gives the driver instead of the process glue: a clock in ticks (one per activation
 * that ticks), the failure detector's view (every death and restart is known at once), the
 * client's values, the checker (env.committed: after the commit, before the sends) and a
 * failpoint hook that crashes the node deterministically before the commit (the batch is lost),
 * after it (its messages are lost) or part way through the sends (the rest is lost).
 */
#include "sim.h"
#include "ipc/check.h"
#include "px_mix.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

const char *const sim_fault_names[SIM_F_COUNT] = {
    "drops",       "duplicates", "reorders",       "delays",         "partitions",   "crashes",
    "restarts",    "lagging",    "leader changes", "rotations",      "role changes", "ring full",
    "outbox full", "lagged",     "hangs",          "client crashes", "lost stores",
};

/* --- PRNG (splitmix64: tiny, full period, good enough for fault draws) --- */

uint64_t sim_rng_next(struct sim_rng *r)
{
    return px_splitmix64(&r->s);
}

uint64_t sim_rng_below(struct sim_rng *r, uint64_t n)
{
    PX_ASSERT(n > 0);
    return sim_rng_next(r) % n;
}

bool sim_rng_chance(struct sim_rng *r, double p)
{
    if (p <= 0.0)
        return false;
    return (double)(sim_rng_next(r) >> 11) * (1.0 / 9007199254740992.0) < p;
}

uint64_t sim_fib(uint32_t k)
{
    uint64_t a = 0, b = 1; /* F(0), F(1) */
    for (uint32_t i = 0; i < k; i++) {
        uint64_t t = a + b;
        a = b;
        b = t;
    }
    return a;
}

static void *sim_xrealloc(void *p, size_t bytes)
{
    void *q = realloc(p, bytes);
    if (q == NULL) {
        fprintf(stderr, "px_sim: out of memory (%zu bytes)\n", bytes);
        abort();
    }
    return q;
}

/* --- message names (trace and scripts) --- */

static const char *const sim_msg_names[PX_MSG_TYPE_COUNT] = {
    "none",          "prepare", "promise-entry", "promise",     "nack",          "accept",
    "accepted",      "decide",  "ack",           "catchup-req", "catchup-entry", "snapshot",
    "snapshot-part", "client",  "client-reply",  "heartbeat",   "takeover",      "data",
};

const char *sim_msg_name(uint8_t type)
{
    return type < PX_MSG_TYPE_COUNT ? sim_msg_names[type] : "?";
}

int sim_msg_type_parse(const char *name)
{
    for (int t = 1; t < PX_MSG_TYPE_COUNT; t++)
        if (strcmp(name, sim_msg_names[t]) == 0)
            return t;
    return -1;
}

/* A CLIENT_REPLY tells the client its request was decided at an instance: it must name a
 * submitted request with its own increment, and the value chosen there if the checker knows. */
/* --sm: the result the tiny state machine returns for the command applied at `index`: status
 * index % 4, index % 9 bytes (sim_sm_apply). A reply's result must be that, or missing. */
static void sim_sm_check_result(struct sim *s, const struct px_msg *m, px_inst_t index)
{
    uint64_t key = cmd_result_key(&m->u.client_reply.value);
    const struct payload_entry *e = payload_get(&s->client_pay, key);
    if (e == NULL) {
        s->results_lost++;
        return;
    }
    if (s->sm_lib != NULL) { /* the user's results: theirs to check, not the tiny one's */
        s->results_ok++;
        return;
    }
    uint32_t status = e->len >= 4 ? (uint32_t)e->bytes[0] | (uint32_t)e->bytes[1] << 8 |
                                        (uint32_t)e->bytes[2] << 16 | (uint32_t)e->bytes[3] << 24
                                  : UINT32_MAX;
    if (index != 0 && (e->len != 4u + index % 9 || status != index % 4))
        sim_violate(s, SIM_V_CLIENT,
                    "node %u replied to (%u,%u) decided at %llu with a result of %u bytes, status"
                    " %u: the state machine returned %llu bytes, status %llu",
                    m->from, px_value_client(&m->u.client_reply.value), m->u.client_reply.value.seq,
                    (unsigned long long)index, e->len, status, (unsigned long long)(index % 9),
                    (unsigned long long)(index % 4));
    s->results_ok++;
}

void sim_client_receive(struct sim *s, const struct px_msg *m)
{
    if (s->sm_on && m->type == PX_MSG_DATA) {
        (void)payload_rx_data(&s->client_pay, m);
        return;
    }
    if (m->type != PX_MSG_CLIENT_REPLY)
        return;
    const struct px_value *v = &m->u.client_reply.value;
    uint32_t c = px_value_client(v), q = v->seq, round = 0;
    if (c >= 1 && c <= s->clients && q >= 1 && q <= SIM_ROUNDS_MAX)
        round = (uint32_t)s->seq_round[c][q];
    if (round == 0 || s->req[round].increment != v->word) {
        sim_violate(s, SIM_V_VALIDITY,
                    "node %u replied (%u,%u,+%llu) decided at %llu: not a submitted request",
                    m->from, c, q, (unsigned long long)v->word, (unsigned long long)m->instance);
        return;
    }
    const struct sim_inst *in = m->instance < s->inst_cap ? &s->inst[m->instance] : NULL;
    if (in != NULL && in->chosen &&
        (in->value.client_id != v->client_id || in->value.seq != q || in->value.word != v->word)) {
        sim_violate(s, SIM_V_AGREEMENT,
                    "node %u replied (%u,%u) decided at %llu, chosen was (%u,%u)", m->from, c, q,
                    (unsigned long long)m->instance, px_value_client(&in->value), in->value.seq);
        return;
    }
    s->req[round].replied = true;
    if (s->sm_on)
        sim_sm_check_result(s, m, s->req[round].decided != 0 ? s->req[round].decided : m->instance);
    if (s->cc.on)
        sim_cc_receive(s, m);
}

/* --- the node process: what the driver is given --- */

static uint64_t sim_node_now(void *ctx)
{
    const struct sim_node *nd = ctx;
    return nd->clock;
}

static void sim_node_membership(void *ctx, struct driver_view *out)
{
    const struct sim_node *nd = ctx;
    out->alive_mask = nd->s->alive_mask;
    out->epoch = nd->s->membership_epoch;
    out->restarted_mask = 0; /* the simulator tells every live node of a death at once */
}

static void sim_trace_death(const struct sim_node *nd, uint32_t sent, uint32_t total)
{
    const struct sim *s = nd->s;
    if (!s->trace)
        return;
    if (nd->crash_at == SIM_CP_BEFORE_COMMIT)
        fprintf(s->out, "t=%llu node %u dies before committing its batch\n",
                (unsigned long long)s->now, nd->id);
    else
        fprintf(s->out, "t=%llu node %u dies after %u of %u sends\n", (unsigned long long)s->now,
                nd->id, sent, total);
}

/* A script's crash point applies to the first flush point where it loses something: one that
 * persists (before or after the commit), or one with more than `after` sends (mid-send). */
static bool sim_armed_fits(const struct sim_node *nd, const struct driver_flush *f)
{
    if (nd->crash_armed == SIM_CP_MID_SEND)
        return f->msgs > nd->crash_armed_after;
    return nd->crash_armed != SIM_CP_NONE && f->persists;
}

/* The crash points of one flush point are drawn when it begins; true = the node dies here.
 * Before the commit nothing of the batch left the node, so it is not checked. */
static bool sim_node_failpoint(void *ctx, enum driver_fp where, const struct driver_flush *f)
{
    struct sim_node *nd = ctx;
    struct sim *s = nd->s;
    bool dies = false;
    if (where == DRIVER_FP_BEFORE_PERSIST) {
        nd->crash_at = SIM_CP_NONE;
        if (s->crash_ok && sim_rng_chance(&s->rng, s->p_crash_mid))
            nd->crash_at = (uint8_t)(1 + sim_rng_below(&s->rng, 3));
        nd->crash_after = 0;
        if (nd->crash_at == SIM_CP_MID_SEND && f->msgs > 0)
            nd->crash_after = (uint32_t)sim_rng_below(&s->rng, f->msgs);
        if (s->crash_ok && sim_armed_fits(nd, f)) {
            nd->crash_at = nd->crash_armed;
            nd->crash_after = nd->crash_armed_after;
            nd->crash_armed = SIM_CP_NONE;
        }
        dies = nd->crash_at == SIM_CP_BEFORE_COMMIT;
    } else if (where == DRIVER_FP_AFTER_PERSIST) {
        dies = nd->crash_at == SIM_CP_BEFORE_SEND ||
               (nd->crash_at == SIM_CP_MID_SEND && nd->crash_after == 0);
    } else {
        dies = nd->crash_at == SIM_CP_MID_SEND && f->sent == nd->crash_after;
    }
    if (dies)
        sim_trace_death(nd, f->sent, f->msgs);
    return dies;
}

/* The checker sees each batch where it becomes the truth: durable, not yet sent. */
static void sim_node_committed(void *ctx, const struct px_ready *r)
{
    struct sim_node *nd = ctx;
    struct sim *s = nd->s;
    sim_check_commit(s, nd->id, r, nd->promised_before);
    for (uint32_t k = 0; k < r->apply_len; k++)
        sim_check_apply(s, nd->id, &r->apply[k], r->snapshot);
    if (r->snapshot > nd->last_applied)
        nd->last_applied = r->snapshot; /* installed: the state check below verifies it */
    sim_check_state(s, nd->id);
    nd->promised_before = nd->st.promised;
}

static bool sim_node_submit_next(void *ctx, struct px_value *v)
{
    const struct sim_node *nd = ctx;
    if (nd->subq_head == nd->subq_len)
        return false;
    *v = nd->subq[nd->subq_head];
    return true;
}

/* The head value's command: its bytes, made from its request (sim_cmd.c). */
static const uint8_t *sim_node_submit_cmd(void *ctx, uint32_t *len)
{
    struct sim_node *nd = ctx;
    struct sim *s = nd->s;
    PX_ASSERT(nd->subq_head < nd->subq_len);
    const struct px_value *v = &nd->subq[nd->subq_head];
    const struct sim_req *q = &s->req[s->seq_round[px_value_client(v)][v->seq]];
    PX_ASSERT(q->cmd_len <= s->cmds.max);
    if (nd->cmd_buf == NULL) {
        nd->cmd_buf = malloc(s->cmds.max);
        PX_ASSERT(nd->cmd_buf != NULL);
    }
    sim_cmd_fill(cmd_key(v), v->word, q->cmd_len, nd->cmd_buf);
    *len = q->cmd_len;
    return nd->cmd_buf;
}

static void sim_node_applied_cmd(void *ctx, const struct px_applied *a, const uint8_t *cmd,
                                 uint32_t len)
{
    struct sim_node *nd = ctx;
    sim_check_cmd(nd->s, nd->id, a, cmd, len);
}

static void sim_node_submit_taken(void *ctx)
{
    struct sim_node *nd = ctx;
    PX_ASSERT(nd->subq_head < nd->subq_len);
    if (++nd->subq_head == nd->subq_len)
        nd->subq_head = nd->subq_len = 0;
}

/* Output the node holds that is not on the wire yet (its outboxes). */
static bool sim_node_pending(const struct sim_node *nd)
{
    return nd->up && sim_tp_queued(nd->tp) > 0;
}

static bool sim_node_busy(const struct sim_node *nd)
{
    return nd->inbox_len > 0 || nd->subq_len > 0 || sim_node_pending(nd);
}

/* --sm: the tiny state machine of a node (struct pxs_state_machine): a hash chain of the
 * commands it applied with their indexes, their count, and the chain so far as each result. */
static int sim_sm_apply(void *ctx, uint64_t index, const void *cmd, size_t len, const void **result,
                        size_t *result_len)
{
    struct sim_node *nd = ctx;
    nd->sm_hash = px_mix64(nd->sm_hash ^ index);
    nd->sm_hash = px_mix64(nd->sm_hash ^ ipc_crc32c(0, cmd, len) ^ ((uint64_t)len << 32));
    nd->sm_count++;
    memcpy(nd->sm_result, &nd->sm_hash, sizeof(nd->sm_result));
    *result = nd->sm_result;
    *result_len = (size_t)(index % 9);
    return (int)(index % 4);
}

static int sim_sm_snapshot(void *ctx, struct pxs_writer *w)
{
    struct sim_node *nd = ctx;
    int rc = w->write(w, &nd->sm_hash, sizeof(nd->sm_hash));
    return rc != 0 ? rc : w->write(w, &nd->sm_count, sizeof(nd->sm_count));
}

static int sim_sm_restore(void *ctx, struct pxs_reader *r)
{
    struct sim_node *nd = ctx;
    uint8_t b[16];
    size_t have = 0;
    long n;
    while (have < sizeof(b) && (n = r->read(r, b + have, sizeof(b) - have)) > 0)
        have += (size_t)n;
    if (have != sizeof(b) || r->read(r, b, 1) != 0)
        return -EBADMSG;
    memcpy(&nd->sm_hash, b, 8);
    memcpy(&nd->sm_count, b + 8, 8);
    return 0;
}

static uint64_t sim_sm_digest(void *ctx)
{
    const struct sim_node *nd = ctx;
    return nd->sm_hash ^ nd->sm_count;
}

/* --sm-lib: a fresh instance of the user's state machine for this incarnation of the node. A
 * factory that fails, or hands out a state machine the driver cannot run, ends the run (exit 2:
 * the state machine is unusable, no seed can judge it). */
static void sim_sm_make(struct sim *s, struct sim_node *nd)
{
    memset(&nd->sm, 0, sizeof(nd->sm));
    int rc = s->sm_lib->make(nd->id, &nd->sm);
    const char *why = NULL;
    if (rc != 0)
        why = rc < 0 ? strerror(-rc) : "not 0 or a negative errno";
    else if (nd->sm.size < offsetof(struct pxs_state_machine, digest) ||
             nd->sm.size > sizeof(nd->sm))
        why = "its size is not sizeof(struct pxs_state_machine)";
    else if (nd->sm.apply == NULL || nd->sm.snapshot == NULL || nd->sm.restore == NULL)
        why = "apply, snapshot and restore are required";
    if (why != NULL) {
        fprintf(stderr, "px_sim: %s: pxs_sim_state_machine(%u) returned %d: %s\n", s->sm_lib->path,
                nd->id, rc, why);
        fflush(stdout);
        exit(2);
    }
    if (nd->sm.size < sizeof(nd->sm)) /* an older header: the fields it lacks stay empty */
        memset((char *)&nd->sm + nd->sm.size, 0, sizeof(nd->sm) - nd->sm.size);
    nd->sm_made = true;
}

/* --sm-lib: the node's process is gone, and its instance with it. */
static void sim_sm_drop(struct sim *s, struct sim_node *nd)
{
    if (!nd->sm_made)
        return;
    nd->sm_made = false;
    if (s->sm_lib->free != NULL)
        s->sm_lib->free(nd->id, &nd->sm);
}

static const uint32_t sim_snap_instances[4] = {0, 100, 1000, DRIVER_SM_SNAP_INSTANCES};
static const uint64_t sim_snap_bytes[4] = {0, 0, 4096, DRIVER_SM_SNAP_BYTES};

/* The process starts: a fresh core, its store handle and transport, the driver over them, and
 * the durable state loaded through the store (px_node_load, px_node_load_rec). */
static void sim_node_start(struct sim *s, uint16_t id)
{
    struct sim_node *nd = &s->node[id];
    struct px_config c = s->cfg;
    c.id = id;
    c.seed = s->opt.seed * 0x100000001b3ull + id * PX_SPLITMIX64_GAMMA + nd->incarnation;
    int rc = px_node_init(nd->mem, nd->mem_bytes, &c, &nd->px);
    PX_ASSERT(rc == 0);
    nd->store = sim_store_open(s, id);
    nd->tp = sim_tp_create(s, id);
    /* With long commands the driver takes the longest the client submits; the table's budget
     * is the default (512 MiB), far above what a seed holds. */
    const struct driver_config dc = {
        .id = id,
        .nodes = s->n,
        .batch_max = SIM_BATCH_MAX,
        .tick_ns = 1,
        .cmd_max = s->sm_on                         ? CMD_BYTES_MAX
                   : s->cmds.max > CMD_INLINE_BYTES ? s->cmds.max
                                                    : 0,
        .sm = s->sm_on ? &nd->sm : NULL,
        .learner = (s->cfg.roles[id] & PX_ROLE_LEARNER) != 0,
        /* When learners snapshot, by the seed (no draw: other seeds' runs stay as they were):
         * at every truncation step, after 100 or 1000 entries or the state's size in bytes,
         * or as a node process does (so seldom that a seed's restarts replay long logs). */
        .sm_snap_instances = sim_snap_instances[s->opt.seed % 4],
        .sm_snap_bytes = sim_snap_bytes[s->opt.seed % 4],
    };
    if (s->sm_on && s->sm_lib != NULL) {
        sim_sm_make(s, nd);
    } else {
        nd->sm = (struct pxs_state_machine){.size = sizeof(nd->sm),
                                            .ctx = nd,
                                            .apply = sim_sm_apply,
                                            .snapshot = sim_sm_snapshot,
                                            .restore = sim_sm_restore,
                                            .digest = sim_sm_digest};
    }
    nd->sm_hash = nd->sm_count = 0; /* process memory: empty at every start */
    const struct driver_env env = {
        .ctx = nd,
        .now_ns = sim_node_now,
        .membership = sim_node_membership,
        .failpoint = sim_node_failpoint,
        .committed = sim_node_committed,
        .submit_next = sim_node_submit_next,
        .submit_taken = sim_node_submit_taken,
        .submit_cmd = sim_node_submit_cmd,
        .applied_cmd = sim_node_applied_cmd,
    };
    rc = driver_init(&nd->drv, &dc, &env, nd->px, nd->tp, nd->store);
    PX_ASSERT(rc == 0);
    struct px_durable d;
    rc = driver_recover(&nd->drv, &d);
    PX_ASSERT(rc == 0); /* the memory store cannot fail */
    nd->promised_before = nd->st.promised;
    nd->last_applied = nd->st.fib.applied;
    nd->up = true;
    s->alive_mask |= 1ull << id;
    s->membership_epoch++;
    rc = driver_start(&nd->drv); /* crash_ok is false: no failpoint fires */
    PX_ASSERT(rc == 0);
}

/* --- node activation, crashes and restarts --- */

static void sim_crash_node(struct sim *s, uint16_t id, bool notify);

/* Tell every live node that a peer died or came back (the supervisor's failure detector). */
static void sim_notify_peers(struct sim *s, uint16_t id)
{
    for (uint16_t j = 0; j < s->n; j++) {
        const struct sim_node *nd = &s->node[j];
        if (j == id || !nd->up || (nd->hang_until != 0 && s->now < nd->hang_until))
            continue; /* a hung node sees the change when it runs again (driver_run_once) */
        int rc = driver_poll_membership(&s->node[j].drv);
        PX_ASSERT(rc == 0);
    }
}

static bool sim_node_runs(struct sim *s, struct sim_node *nd);

void sim_activate(struct sim *s, uint16_t id, bool tick)
{
    struct sim_node *nd = &s->node[id];
    if (!nd->up || !sim_node_runs(s, nd))
        return; /* a hung process runs no code at all, whoever asks */
    s->steps++;
    if (tick)
        nd->clock++; /* one tick_ns: the driver ticks the core once */
    s->crash_ok = true;
    int rc = driver_run_once(&nd->drv);
    /* Like the node process, which loops over its rings until they are empty and only then
     * sleeps until the next tick: more iterations while the last one read a full batch. A
     * lagging node stays slow (one iteration, one or two messages). */
    for (uint32_t k = 1; rc == 0 && k < SIM_RUNS_PER_TICK_MAX && !nd->lag &&
                         nd->drv.received >= SIM_BATCH_MAX && nd->inbox_len > 0;
         k++)
        rc = driver_run_once(&nd->drv);
    s->crash_ok = false;
    if (rc == DRIVER_DIED) {
        sim_crash_node(s, id, true);
        return;
    }
    if (rc == -ENODATA) { /* persist_ready: a record's command is not in the node's table */
        sim_violate(s, SIM_V_COMMAND,
                    "node %u cannot persist its batch: the bytes of a command it must store are "
                    "gone (persist_ready: -ENODATA; the node process would exit)",
                    id);
        return;
    }
    PX_ASSERT(rc == 0);
}

static void sim_crash_node(struct sim *s, uint16_t id, bool notify)
{
    struct sim_node *nd = &s->node[id];
    PX_ASSERT(nd->up);
    nd->up = false;
    s->alive_mask &= ~(1ull << id);
    s->membership_epoch++;
    sim_net_crash(s, id);
    nd->subq_head = nd->subq_len = 0;
    nd->was_leader = false;
    nd->hang_until = 0;
    nd->crash_armed = SIM_CP_NONE;
    /* The process is gone: its driver, outboxes and open batch with it, and nothing of its
     * memory may survive. */
    driver_fini(&nd->drv);
    nd->tp->ops->destroy(nd->tp);
    store_close(nd->store);
    sim_sm_drop(s, nd);
    nd->tp = NULL;
    nd->store = NULL;
    memset(nd->mem, 0xa5, nd->mem_bytes);
    s->faults[SIM_F_CRASH]++;
    if (s->trace)
        fprintf(s->out, "t=%llu crash %u\n", (unsigned long long)s->now, id);
    if (notify)
        sim_notify_peers(s, id);
}

void sim_crash(struct sim *s, uint16_t id)
{
    if (s->node[id].up)
        sim_crash_node(s, id, true);
}

void sim_crash_at(struct sim *s, uint16_t id, enum sim_crash_point point, uint32_t after)
{
    PX_ASSERT(id < s->n && point != SIM_CP_NONE);
    s->node[id].crash_armed = (uint8_t)point;
    s->node[id].crash_armed_after = after;
}

void sim_restart(struct sim *s, uint16_t id)
{
    struct sim_node *nd = &s->node[id];
    if (nd->up)
        return;
    nd->incarnation++;
    nd->lag = 0;
    nd->hang_until = 0;
    s->faults[SIM_F_RESTART]++;
    if (s->trace)
        fprintf(s->out, "t=%llu restart %u (incarnation %u, promised %llx, applied %llu)\n",
                (unsigned long long)s->now, id, nd->incarnation,
                (unsigned long long)nd->st.promised, (unsigned long long)nd->st.fib.applied);
    sim_node_start(s, id);
    sim_notify_peers(s, id);
}

/* Every node gets the same role change at once (the supervisor's broadcast); a node that is
 * down gets it with its configuration when it restarts. */
void sim_set_roles(struct sim *s, uint16_t id, uint64_t roles)
{
    s->cfg.roles[id] = roles;
    for (uint16_t j = 0; j < s->n; j++) {
        if (!s->node[j].up)
            continue;
        int rc = driver_set_roles(&s->node[j].drv, id, roles);
        PX_ASSERT(rc == 0);
    }
    s->faults[SIM_F_ROLES]++;
    if (s->trace)
        fprintf(s->out, "t=%llu roles of %u = %c%c%c\n", (unsigned long long)s->now, id,
                roles & PX_ROLE_PROPOSER ? 'P' : '-', roles & PX_ROLE_ACCEPTOR ? 'A' : '-',
                roles & PX_ROLE_LEARNER ? 'L' : '-');
}

void sim_block(struct sim *s, uint16_t from, uint16_t to, bool blocked)
{
    s->blocked[from][to] = blocked;
}

void sim_heal(struct sim *s)
{
    memset(s->blocked, 0, sizeof(s->blocked));
}

/* --- the client --- */

static bool sim_is_proposer(const struct sim *s, uint16_t id)
{
    return (s->cfg.roles[id] & PX_ROLE_PROPOSER) != 0;
}

uint16_t sim_pick_proposer(struct sim *s, uint16_t avoid)
{
    uint16_t cand[SIM_NODES_MAX];
    uint16_t k = 0;
    /* Half the time follow what a live proposer believes about the leader, like a real client
     * redirected by a NACK; otherwise any live proposer but the one that timed out. */
    if (sim_rng_chance(&s->rng, 0.5)) {
        for (uint16_t j = 0; j < s->n; j++) {
            if (!s->node[j].up || !sim_is_proposer(s, j))
                continue;
            uint16_t l = px_node_leader(s->node[j].px);
            if (l < s->n && l != avoid && s->node[l].up && sim_is_proposer(s, l))
                return l;
        }
    }
    for (uint16_t j = 0; j < s->n; j++)
        if (s->node[j].up && sim_is_proposer(s, j) && j != avoid)
            cand[k++] = j;
    if (k == 0)
        for (uint16_t j = 0; j < s->n; j++)
            if (sim_is_proposer(s, j))
                cand[k++] = j;
    PX_ASSERT(k > 0);
    return cand[sim_rng_below(&s->rng, k)];
}

void sim_submit_round(struct sim *s, uint32_t round, int to)
{
    struct sim_req *q = &s->req[round];
    uint16_t t = to >= 0 ? (uint16_t)to : sim_pick_proposer(s, q->sent_at ? q->target : 0xffff);
    q->target = t;
    q->sent_at = s->now ? s->now : 1;
    if (s->trace)
        fprintf(s->out, "t=%llu submit round %u (client %u seq %u) to %u%s\n",
                (unsigned long long)s->now, round, q->client_id, q->seq, t,
                s->node[t].up ? "" : " (down: lost)");
    struct sim_node *nd = &s->node[t];
    if (!nd->up)
        return;
    if (nd->subq_len == nd->subq_cap) {
        nd->subq_cap = nd->subq_cap ? 2 * nd->subq_cap : 16;
        nd->subq = sim_xrealloc(nd->subq, nd->subq_cap * sizeof(*nd->subq));
    }
    uint32_t flag = q->cmd_len > CMD_INLINE_BYTES ? PX_VALUE_PAYLOAD : 0u;
    nd->subq[nd->subq_len++] =
        (struct px_value){.word = q->increment, .client_id = q->client_id | flag, .seq = q->seq};
}

void sim_client_submit(struct sim *s, uint32_t count, int to)
{
    for (uint32_t k = 0; k < count && s->submitted < s->rounds; k++)
        sim_submit_round(s, ++s->submitted, to);
}

/* The client's window is a sliding span, like TCP's: round r goes out only while r is fewer
 * than `window` rounds past the oldest round not yet applied. Counting outstanding requests
 * instead would let one stuck request fall more than PX_DEDUP_SPAN seqs behind the newest,
 * which the core's exactly-once table cannot represent (px.h, struct px_dedup). */
static void sim_client_step(struct sim *s)
{
    while (s->oldest <= s->submitted && s->req[s->oldest].done_at)
        s->oldest++;
    for (uint32_t r = s->oldest; r <= s->submitted; r++) {
        struct sim_req *q = &s->req[r];
        if (!q->done_at && s->now - q->sent_at >= s->resubmit_ticks)
            sim_submit_round(s, r, -1);
    }
    while (s->submitted < s->rounds && s->submitted + 1 - s->oldest < s->window)
        sim_submit_round(s, ++s->submitted, -1);
}

void sim_set_rounds(struct sim *s, uint32_t rounds, uint32_t clients, uint32_t window)
{
    PX_ASSERT(rounds <= SIM_ROUNDS_MAX && clients >= 1 && clients <= SIM_CLIENTS_MAX);
    PX_ASSERT(window >= 1 && window < PX_DEDUP_SPAN);
    s->rounds = rounds;
    s->oldest = 1;
    s->clients = clients;
    s->window = window;
    s->cmd_bytes = s->cmd_chunks = 0;
    for (uint32_t r = 1; r <= rounds; r++) {
        struct sim_req *q = &s->req[r];
        memset(q, 0, sizeof(*q));
        q->client_id = (r - 1) % clients + 1;
        q->seq = (r - 1) / clients + 1;
        q->increment = sim_fib(r - 1); /* round r proposes F(r-1) */
        s->seq_round[q->client_id][q->seq] = r;
        struct px_value v = {.client_id = q->client_id, .seq = q->seq};
        q->cmd_len = sim_cmd_len(s, cmd_key(&v));
        if (q->cmd_len > CMD_INLINE_BYTES) {
            s->cmd_bytes += q->cmd_len;
            s->cmd_chunks +=
                (payload_stream_len(q->cmd_len) + PAYLOAD_CHUNK_BYTES - 1) / PAYLOAD_CHUNK_BYTES;
        }
    }
}

/* --- time --- */

/* A hung consumer: a live node that stops running (SIGSTOP) for a while. Its rings fill, the
 * broadcasts it blocks detach it, senders' outboxes fill; its clock runs on meanwhile. */
static void sim_maybe_hang(struct sim *s)
{
    if (s->p_hang <= 0.0 || s->now >= s->hang_end || !sim_rng_chance(&s->net_rng, s->p_hang))
        return;
    struct sim_node *nd = &s->node[sim_rng_below(&s->net_rng, s->n)];
    if (!nd->up || nd->hang_until > s->now)
        return;
    nd->hang_from = s->now;
    nd->hang_until = s->now + 10 + sim_rng_below(&s->net_rng, 150);
    if (nd->hang_until > s->hang_end)
        nd->hang_until = s->hang_end;
    s->faults[SIM_F_HANG]++;
    if (s->trace)
        fprintf(s->out, "t=%llu node %u hangs until t=%llu\n", (unsigned long long)s->now, nd->id,
                (unsigned long long)nd->hang_until);
}

void sim_hang(struct sim *s, uint16_t id, uint64_t ticks)
{
    struct sim_node *nd = &s->node[id];
    PX_ASSERT(id < s->n);
    if (!nd->up || ticks == 0)
        return;
    nd->hang_from = s->now;
    nd->hang_until = s->now + ticks;
    s->faults[SIM_F_HANG]++;
    if (s->trace)
        fprintf(s->out, "t=%llu node %u hangs until t=%llu\n", (unsigned long long)s->now, id,
                (unsigned long long)nd->hang_until);
}

/* False while the node hangs; when the hang ends, its clock catches up with the ticks it slept
 * (the driver delivers at most DRIVER_TICKS_BURST_MAX of them). */
static bool sim_node_runs(struct sim *s, struct sim_node *nd)
{
    if (nd->hang_until == 0)
        return true;
    if (s->now < nd->hang_until)
        return false;
    nd->clock += s->now - nd->hang_from - 1;
    nd->hang_until = 0;
    return true;
}

void sim_tick(struct sim *s, bool deliver, bool tick_nodes, bool client)
{
    s->now++;
    if (client && s->cc.on)
        sim_cc_step(s);
    else if (client)
        sim_client_step(s);
    if (deliver)
        sim_deliver_due(s);
    sim_maybe_hang(s);
    uint16_t order[SIM_NODES_MAX];
    for (uint16_t j = 0; j < s->n; j++)
        order[j] = j;
    for (uint16_t j = s->n; j > 1; j--) { /* Fisher-Yates: nodes run in a seeded order */
        uint16_t k = (uint16_t)sim_rng_below(&s->rng, j);
        uint16_t t = order[j - 1];
        order[j - 1] = order[k];
        order[k] = t;
    }
    for (uint16_t j = 0; j < s->n && s->viol == SIM_V_NONE; j++) {
        struct sim_node *nd = &s->node[order[j]];
        if (!nd->up || !sim_node_runs(s, nd))
            continue;
        if (nd->lag && s->now >= nd->lag_until)
            nd->lag = 0;
        if (nd->lag && s->now % nd->lag != 0)
            continue; /* a slow process: it runs every lag-th tick only */
        if (tick_nodes || sim_node_busy(nd))
            sim_activate(s, order[j], tick_nodes);
    }
    sim_check_leaders(s);
}

/* Scripts: deliver (or drop) the first count in-flight messages that match, in network order,
 * then let the receivers step them. -1 matches anything. Returns how many matched. */
size_t sim_deliver_matching(struct sim *s, int from, int to, int type, size_t count, bool drop)
{
    size_t nt = sim_net_take(s, from, to, type, count, drop);
    for (uint16_t j = 0; j < s->n && !drop; j++)
        if (s->node[j].up && sim_node_busy(&s->node[j]))
            sim_activate(s, j, false);
    sim_check_leaders(s);
    return nt;
}

bool sim_quiet(const struct sim *s)
{
    if (s->heap_len > 0)
        return false;
    for (uint16_t j = 0; j < s->n; j++)
        if (sim_node_busy(&s->node[j]))
            return false;
    return true;
}

/* Every request applied, every (live, unless all) learner up and holding the same state. */
bool sim_client_all_out(const struct sim *s)
{
    return s->cc.on ? sim_cc_done(s) : s->submitted == s->rounds;
}

bool sim_converged(const struct sim *s, bool all)
{
    if (s->cc.on ? !sim_cc_done(s) : s->done < s->submitted)
        return false;
    const struct px_history *ref = NULL;
    for (uint16_t j = 0; j < s->n; j++) {
        if (!(s->cfg.roles[j] & PX_ROLE_LEARNER))
            continue;
        if (!s->node[j].up && all && !s->node[j].forgot)
            return false;
        if (!s->node[j].up)
            continue;
        const struct px_history *f = px_node_history(s->node[j].px);
        /* The supervisor's client: its own check says what must be there, once every learner
         * applied all a learner applied and all a reply named (without the replies, a learner
         * still catching up when no learner had applied anything was checked at once: seed
         * 469393, BUGS.md S14). */
        px_inst_t must = s->decided_max > s->cc.replied_max ? s->decided_max : s->cc.replied_max;
        if (s->cc.on ? f->applied < must : f->requests != s->submitted)
            return false;
        if (ref != NULL && (f->applied != ref->applied || f->requests != ref->requests ||
                            f->digest != ref->digest))
            return false;
        ref = f;
    }
    return true;
}

int sim_init(struct sim *s, const struct px_config *cfg, uint64_t seed, FILE *out, bool trace)
{
    return sim_init_cmds(s, cfg, seed, NULL, out, trace);
}

int sim_init_cmds(struct sim *s, const struct px_config *cfg, uint64_t seed,
                  const struct sim_cmds *cmds, FILE *out, bool trace)
{
    memset(s, 0, sizeof(*s));
    s->sm_on = cmds != NULL && cmds->sm;
    s->sm_lib = s->sm_on ? cmds->sm_lib : NULL;
    if (s->sm_on && payload_init(&s->client_pay, cfg->nodes, cfg->nodes, CMD_BYTES_MAX,
                                 PAYLOAD_BUDGET_DEFAULT) != 0)
        return -ENOMEM;
    if (cmds != NULL && cmds->max > 0) {
        PX_ASSERT(cmds->min <= cmds->max && cmds->max <= SIM_CMD_BYTES_MAX);
        s->cmds = *cmds;
    }
    s->rng.s = seed;
    s->opt.seed = seed;
    s->cfg = *cfg;
    s->n = cfg->nodes;
    s->out = out;
    s->trace = trace;
    s->last_leader = PX_NODE_NONE;
    s->lat_min = s->lat_max = 1;
    s->delay_max = 1;
    s->resubmit_ticks = 4 * cfg->election_ticks + 20;
    s->ring_slots = s->bcast_slots = SIM_RING_SLOTS_MAX;
    s->outbox_max = SIM_OUTBOX_MAX;
    PX_ASSERT(s->n >= 1 && s->n <= SIM_NODES_MAX);
    for (uint16_t p = 0; p < s->n; p++)
        for (uint16_t c = 0; c < s->n; c++)
            s->bcast[p].c[c].attached = c != p;
    for (uint16_t j = 0; j < s->n; j++) {
        if (cfg->roles[j] & PX_ROLE_ACCEPTOR)
            s->acceptors++;
        struct sim_node *nd = &s->node[j];
        struct px_config c = *cfg;
        c.id = j;
        nd->s = s;
        nd->id = j;
        nd->mem_bytes = (px_node_size(&c) + 63) / 64 * 64;
        nd->mem = aligned_alloc(64, nd->mem_bytes);
        if (nd->mem == NULL)
            return -ENOMEM;
        memset(nd->mem, 0xa5, nd->mem_bytes); /* px_node_init must not rely on zeroed memory */
        px_history_init(&nd->st.fib);
    }
    s->alive_mask = s->n == 64 ? UINT64_MAX : (1ull << s->n) - 1; /* everybody starts up */
    for (uint16_t j = 0; j < s->n; j++)
        sim_node_start(s, j);
    return 0;
}

void sim_free(struct sim *s)
{
    if (s->client_pay.tab != NULL)
        payload_fini(&s->client_pay);
    for (uint16_t j = 0; j < s->n; j++) {
        struct sim_node *nd = &s->node[j];
        if (nd->up) {
            driver_fini(&nd->drv);
            nd->tp->ops->destroy(nd->tp);
            store_close(nd->store);
            sim_sm_drop(s, nd);
        }
        free(nd->mem);
        free(nd->inbox);
        free(nd->subq);
        free(nd->cmd_buf);
        sim_store_free(&nd->st);
    }
    for (size_t i = 0; i < s->inst_cap; i++)
        free(s->inst[i].accs);
    free(s->inst);
    free(s->heap);
}
