/* supervisor.c: the paxos-shm supervisor process.
 *
 * Setup (one cleanup ladder in sup_run): stale segments -> data directory -> segment -> fork
 * the nodes. Run: submit the client's rounds to the leader, read the replies, restart any
 * node that dies (perfect failure detector: SIGCHLD), inject chaos kills. End: wait for every
 * learner to apply the last decided instance, stop the nodes, verify their final states. */
#define _FILE_OFFSET_BITS 64
#include "supervisor/supervisor.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <urcu/system.h>
#include <urcu/uatomic.h>

#include "supervisor/client.h"
#include "ipc/bcast.h"
#include "ipc/doorbell.h"
#include "ipc/segment.h"
#include "common/log.h"
#include "node/node.h"
#include "common/pool.h"
#include "supervisor/report.h"
#include "store/store.h"
#include "node/transport.h"
#include "common/util.h"

/* After the last reply, learners get this long to apply the last decided instance. */
#define SUP_CONVERGE_NS (20ull * 1000 * 1000 * 1000)
/* Nodes get this long to publish their final state after `stop` before SIGKILL. */
#define SUP_STOP_NS (5ull * 1000 * 1000 * 1000)
/* Replies read per loop iteration. */
#define SUP_BATCH_MAX   1024
#define SUP_PROGRESS_NS (250ull * 1000 * 1000)

static volatile sig_atomic_t got_signal;
static volatile sig_atomic_t got_sigchld;

static void on_signal(int sig)
{
    got_signal = sig;
}

static void on_sigchld(int sig)
{
    (void)sig;
    got_sigchld = 1;
}

struct sup {
    const struct cli_config *cfg;
    char seg_name[64];
    struct ipc_segment *seg;
    struct pool_shared *pool;
    struct transport *t;
    struct sock_mesh *mesh;
    struct client *client;
    struct report rep;
    char data_dir[PATH_MAX];
    bool data_dir_fresh;
    struct store_registry *registry;
    uint16_t target;
    bool stopping;
    int fatal; /* nonzero: the exit code of a runtime failure */
    uint64_t rng;
    uint64_t *kill_at; /* sorted round counts at which chaos kills a node */
    uint32_t kills_next;
};

static struct pool_node_shared *node_shared(struct sup *s, uint16_t i)
{
    return ipc_segment_user(s->seg, i);
}

static bool has_role(const struct cli_config *c, uint16_t i, unsigned role)
{
    return (cli_roles(c, i) & role) != 0;
}

/* Records node i in the registry (sqlite store only). A failure here is reported once and
 * stops nothing: the registry describes the pool, the nodes' own stores hold the state. */
static void registry_note(struct sup *s, uint16_t i)
{
    const struct report_node *rn = &s->rep.nodes[i];
    if (s->registry == NULL)
        return;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t now_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
    if (store_registry_update(s->registry, i, cli_roles(s->cfg, i), rn->pid, rn->incarnation,
                              rn->restarts, now_ms) != 0) {
        fprintf(stderr, "paxos-shm: %s\n", store_registry_errmsg(s->registry));
        store_registry_close(s->registry);
        s->registry = NULL;
    }
}

/* --- membership: the supervisor is the failure detector ------------------------------------ */

static void set_alive(struct sup *s, uint16_t i, bool up)
{
    CMM_STORE_SHARED(ipc_segment_ctl(s->seg, i)->alive, up ? 1u : 0u);
    uint64_t mask = CMM_LOAD_SHARED(s->pool->alive_mask);
    mask = up ? mask | (1ull << i) : mask & ~(1ull << i);
    CMM_STORE_SHARED(s->pool->alive_mask, mask);
    cmm_smp_wmb(); /* alive flags before the epoch bump; pairs with check_membership's rmb */
    uatomic_add(&s->pool->membership_epoch, 1);
    if (!up) {
        /* A dead consumer must not gate any producer's broadcast ring. */
        for (uint16_t p = 0; p < s->cfg->nodes; p++)
            if (p != i)
                ipc_bcast_detach(ipc_segment_bcast(s->seg, p), i);
    }
    for (uint16_t p = 0; p < s->cfg->nodes; p++)
        ipc_doorbell_ring(&ipc_segment_ctl(s->seg, p)->bell);
}

/* The node's own configuration, built from the command line once per start. */
static void node_config_of(struct sup *s, uint16_t i, struct node_config *out)
{
    const struct cli_config *c = s->cfg;
    memset(out, 0, sizeof(*out));
    out->id = i;
    out->nodes = (uint16_t)c->nodes;
    for (uint16_t p = 0; p < c->nodes; p++)
        out->roles[p] = cli_roles(c, p);
    out->window = c->window;
    out->rotate = c->rotate;
    out->seed = c->seed;
    out->store = c->store == CLI_STORE_SHM ? STORE_SHM : STORE_SQLITE;
    out->sync = c->sync == CLI_SYNC_FULL ? STORE_SYNC_FULL : STORE_SYNC_NORMAL;
    out->data_dir = s->data_dir[0] ? s->data_dir : NULL;
    out->incarnation = s->rep.nodes[i].incarnation;
}

static int spawn(struct sup *s, uint16_t i)
{
    struct report_node *rn = &s->rep.nodes[i];
    rn->incarnation++;
    struct node_args a = {.seg = s->seg, .mesh = s->mesh};
    node_config_of(s, i, &a.cfg);
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "paxos-shm: fork node %u: %s\n", i, strerror(errno));
        return -errno;
    }
    if (pid == 0) {
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        _exit(node_run(&a));
    }
    rn->pid = pid;
    rn->killing = false;
    CMM_STORE_SHARED(ipc_segment_ctl(s->seg, i)->pid, pid);
    CMM_STORE_SHARED(ipc_segment_ctl(s->seg, i)->incarnation, rn->incarnation);
    set_alive(s, i, true);
    registry_note(s, i);
    LOG(LOG_INFO, "node %u incarnation %u is pid %d", i, rn->incarnation, (int)pid);
    return 0;
}

/* Keeps the counters of an incarnation that is gone (the next one starts from zero). */
static void bank_counters(struct sup *s, uint16_t i)
{
    struct pool_node_shared *ns = node_shared(s, i);
    struct report_node *rn = &s->rep.nodes[i];
    rn->msgs_banked += CMM_LOAD_SHARED(ns->msgs_sent);
    rn->ring_full_banked += CMM_LOAD_SHARED(ns->ring_full);
    rn->drops_banked += CMM_LOAD_SHARED(ns->drops);
    rn->lagged_banked += CMM_LOAD_SHARED(ns->lagged);
    rn->bad_messages_banked += CMM_LOAD_SHARED(ns->bad_messages);
    CMM_STORE_SHARED(ns->bad_messages, 0);
    CMM_STORE_SHARED(ns->msgs_sent, 0);
    CMM_STORE_SHARED(ns->ring_full, 0);
    CMM_STORE_SHARED(ns->drops, 0);
    CMM_STORE_SHARED(ns->lagged, 0);
}

static void reap(struct sup *s)
{
    got_sigchld = 0;
    for (;;) {
        int st = 0;
        pid_t pid = waitpid(-1, &st, WNOHANG);
        if (pid <= 0)
            return;
        uint16_t i;
        for (i = 0; i < s->cfg->nodes; i++)
            if (s->rep.nodes[i].pid == pid)
                break;
        if (i == s->cfg->nodes)
            continue;
        struct report_node *rn = &s->rep.nodes[i];
        rn->pid = 0;
        bank_counters(s, i);
        set_alive(s, i, false);
        if (WIFEXITED(st) && WEXITSTATUS(st) == NODE_EXIT_STOPPED && s->stopping)
            continue;
        if (WIFEXITED(st)) {
            /* A node that exits by itself met a failure it reported (storage, setup). */
            fprintf(stderr, "paxos-shm: node %u exited with status %d; stopping the run\n", i,
                    WEXITSTATUS(st));
            s->fatal = EXIT_RUNTIME;
            continue;
        }
        LOG(LOG_INFO, "node %u died (signal %d)", i, WTERMSIG(st));
        if (s->stopping || s->fatal)
            continue;
        rn->restarts++;
        s->rep.restarts++;
        if (spawn(s, i) != 0)
            s->fatal = EXIT_RUNTIME;
    }
}

/* --- chaos ----------------------------------------------------------------------------------- */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int chaos_plan(struct sup *s)
{
    uint32_t k = s->cfg->chaos_kills;
    if (k == 0)
        return 0;
    s->kill_at = calloc(k, sizeof(uint64_t));
    if (s->kill_at == NULL)
        return -ENOMEM;
    for (uint32_t i = 0; i < k; i++)
        s->kill_at[i] = util_splitmix64(&s->rng) % s->cfg->rounds;
    qsort(s->kill_at, k, sizeof(uint64_t), cmp_u64);
    return 0;
}

static uint16_t current_leader(struct sup *s)
{
    for (uint16_t i = 0; i < s->cfg->nodes; i++)
        if (s->rep.nodes[i].pid > 0 && CMM_LOAD_SHARED(node_shared(s, i)->is_leader))
            return i;
    return PX_NODE_NONE;
}

/* Picks a victim: the leader on the first kill and one in three afterwards, anyone otherwise,
 * never leaving fewer than a majority of acceptors up unless --chaos-any. */
static int chaos_victim(struct sup *s)
{
    const struct cli_config *c = s->cfg;
    uint32_t up_acceptors = 0;
    for (uint16_t i = 0; i < c->nodes; i++)
        if (s->rep.nodes[i].pid > 0 && !s->rep.nodes[i].killing && has_role(c, i, PX_ROLE_ACCEPTOR))
            up_acceptors++;
    uint16_t leader = current_leader(s);
    uint16_t pick;
    if (leader != PX_NODE_NONE && (s->kills_next == 0 || util_splitmix64(&s->rng) % 3 == 0))
        pick = leader;
    else
        pick = (uint16_t)(util_splitmix64(&s->rng) % c->nodes);
    if (s->rep.nodes[pick].pid <= 0 || s->rep.nodes[pick].killing)
        return -1;
    if (has_role(c, pick, PX_ROLE_ACCEPTOR) && !c->chaos_any &&
        up_acceptors - 1 < c->acceptors / 2 + 1)
        return -1;
    return pick;
}

static void chaos(struct sup *s)
{
    while (s->kill_at && s->kills_next < s->cfg->chaos_kills &&
           s->client->done >= s->kill_at[s->kills_next]) {
        int v = chaos_victim(s);
        if (v < 0)
            return; /* try again on the next iteration */
        bool was_leader = CMM_LOAD_SHARED(node_shared(s, (uint16_t)v)->is_leader) != 0;
        LOG(LOG_INFO, "chaos: SIGKILL node %d%s", v, was_leader ? " (leader)" : "");
        if (kill(s->rep.nodes[v].pid, SIGKILL) != 0)
            return;
        s->rep.nodes[v].killing = true;
        s->rep.chaos_kills++;
        if (was_leader)
            s->rep.chaos_leader_kills++;
        s->kills_next++;
    }
}

/* --- the client loop ---------------------------------------------------------------------------
 */

/* Where requests go: the node that says it leads, else the last target if it is up, else the
 * first proposer that is up (a non-leader forwards to the leader it knows). */
static void update_target(struct sup *s)
{
    uint16_t leader = current_leader(s);
    if (leader != PX_NODE_NONE) {
        s->target = leader;
        return;
    }
    if (s->rep.nodes[s->target].pid > 0 && has_role(s->cfg, s->target, PX_ROLE_PROPOSER))
        return;
    for (uint16_t i = 0; i < s->cfg->proposers; i++) {
        if (s->rep.nodes[i].pid > 0) {
            s->target = i;
            return;
        }
    }
}

static bool submit(struct sup *s, const struct px_value *v)
{
    struct px_msg m;
    memset(&m, 0, sizeof(m));
    m.type = PX_MSG_CLIENT;
    m.from = (uint16_t)s->cfg->nodes;
    m.to = s->target;
    m.value = *v;
    return transport_send(s->t, &m) == 0;
}

static void progress(struct sup *s, uint64_t start_ns, uint64_t now, bool final)
{
    if (s->cfg->quiet || !isatty(STDERR_FILENO))
        return;
    if (final) {
        fprintf(stderr, "\r\033[K");
        return;
    }
    double secs = (double)(now - start_ns) / 1e9;
    fprintf(stderr, "\r\033[Kpaxos-shm: %" PRIu64 "/%" PRIu64 " rounds, %.0f rounds/s, leader %d",
            s->client->done, s->cfg->rounds, secs > 0 ? (double)s->client->done / secs : 0.0,
            s->target);
}

static bool should_stop(struct sup *s)
{
    if (got_sigchld)
        reap(s);
    return got_signal || s->fatal;
}

static void handle_replies(struct sup *s, struct px_msg *in, uint32_t n, uint64_t now)
{
    for (uint32_t i = 0; i < n; i++) {
        if (in[i].type == PX_MSG_CLIENT_REPLY)
            client_decided(s->client, &in[i].value, in[i].instance, now);
    }
}

/* Pushes what is queued, reads the replies, and sleeps up to 1 ms when there were none. */
static void pump(struct sup *s)
{
    static struct px_msg in[SUP_BATCH_MAX];
    transport_flush(s->t);
    uint32_t n = transport_recv(s->t, in, SUP_BATCH_MAX);
    handle_replies(s, in, n, util_now_ns());
    if (n == 0)
        transport_wait(s->t, 1000000);
}

/* Returns 0 when every round is decided, or the exit code that ended the run early. */
static int drive(struct sup *s, uint64_t start_ns)
{
    struct px_value v;
    uint64_t last_progress = 0, last_overdue = start_ns;
    uint64_t deadline = s->cfg->timeout_s ? start_ns + s->cfg->timeout_s * 1000000000ull : 0;
    while (!client_finished(s->client)) {
        if (should_stop(s))
            return s->fatal ? s->fatal : -1;
        uint64_t now = util_now_ns();
        if (deadline && now > deadline) {
            fprintf(stderr,
                    "paxos-shm: timed out after %u s with %" PRIu64 " of %" PRIu64
                    " rounds decided\n",
                    s->cfg->timeout_s, s->client->done, s->cfg->rounds);
            return EXIT_RUNTIME;
        }
        update_target(s);
        chaos(s);
        while (client_next(s->client, now, &v))
            if (!submit(s, &v))
                break; /* outbox full: resubmitted on timeout */
        if (now - last_overdue > CLIENT_RESUBMIT_NS / 4) {
            struct px_value again[64];
            uint32_t k = client_overdue(s->client, now, again, 64);
            for (uint32_t i = 0; i < k; i++)
                (void)submit(s, &again[i]);
            last_overdue = now;
        }
        if (now - last_progress > SUP_PROGRESS_NS) {
            progress(s, start_ns, now, false);
            last_progress = now;
        }
        pump(s);
    }
    return 0;
}

/* Waits until every learner that is up has applied the same index, at least the highest
 * instance a reply reported. Returns true when they converged in time. */
static bool converge(struct sup *s)
{
    uint64_t deadline = util_now_ns() + SUP_CONVERGE_NS;
    while (util_now_ns() < deadline) {
        if (should_stop(s))
            return false;
        uint64_t lo = UINT64_MAX, hi = 0;
        bool all_up = true;
        for (uint16_t i = 0; i < s->cfg->nodes; i++) {
            if (!has_role(s->cfg, i, PX_ROLE_LEARNER))
                continue;
            if (s->rep.nodes[i].pid <= 0)
                all_up = false;
            uint64_t a = CMM_LOAD_SHARED(node_shared(s, i)->applied);
            lo = a < lo ? a : lo;
            hi = a > hi ? a : hi;
        }
        if (all_up && lo == hi && lo >= s->client->max_instance)
            return true;
        pump(s);
    }
    return false;
}

/* Tells the nodes to publish their final state and exit; kills those that do not. */
static void stop_nodes(struct sup *s)
{
    s->stopping = true;
    CMM_STORE_SHARED(s->pool->stop, 1);
    for (uint16_t i = 0; i < s->cfg->nodes; i++)
        ipc_doorbell_ring(&ipc_segment_ctl(s->seg, i)->bell);
    uint64_t deadline = util_now_ns() + SUP_STOP_NS;
    for (;;) {
        reap(s);
        bool any = false;
        for (uint16_t i = 0; i < s->cfg->nodes; i++)
            any |= s->rep.nodes[i].pid > 0;
        if (!any)
            return;
        if (util_now_ns() > deadline)
            break;
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    for (uint16_t i = 0; i < s->cfg->nodes; i++) {
        if (s->rep.nodes[i].pid > 0) {
            kill(s->rep.nodes[i].pid, SIGKILL);
            s->rep.nodes[i].verdict = "did not stop";
        }
    }
    for (uint16_t i = 0; i < s->cfg->nodes; i++) {
        if (s->rep.nodes[i].pid > 0) {
            waitpid(s->rep.nodes[i].pid, NULL, 0);
            s->rep.nodes[i].pid = 0;
        }
    }
}

static void collect(struct sup *s)
{
    struct report *r = &s->rep;
    r->msgs = r->ring_full = r->drops = r->lagged = 0;
    r->bad_messages = s->t->stats.bad_messages; /* the client's own */
    uint64_t elections = 0;
    for (uint16_t i = 0; i < s->cfg->nodes; i++) {
        struct pool_node_shared *ns = node_shared(s, i);
        struct report_node *n = &r->nodes[i];
        n->msgs = n->msgs_banked + CMM_LOAD_SHARED(ns->msgs_sent);
        n->ring_full = n->ring_full_banked + CMM_LOAD_SHARED(ns->ring_full);
        n->drops = n->drops_banked + CMM_LOAD_SHARED(ns->drops);
        n->lagged = n->lagged_banked + CMM_LOAD_SHARED(ns->lagged);
        n->bad_messages = n->bad_messages_banked + CMM_LOAD_SHARED(ns->bad_messages);
        r->bad_messages += n->bad_messages;
        n->elections = CMM_LOAD_SHARED(ns->elections_won);
        r->msgs += n->msgs;
        r->ring_full += n->ring_full;
        r->drops += n->drops;
        r->lagged += n->lagged;
        elections += n->elections;
        n->learner = has_role(s->cfg, i, PX_ROLE_LEARNER);
        uint64_t seq = uatomic_read(&ns->final_seq);
        cmm_smp_rmb(); /* pairs with publish_final's second wmb */
        n->final_ok = seq != 0 && seq % 2 == 0 && CMM_LOAD_SHARED(ns->final_ok);
        if (n->final_ok)
            memcpy(&n->fib, &ns->final_fib, sizeof(n->fib));
    }
    r->msgs += s->t->stats.sent;
    r->leader_changes = elections > 0 ? elections - 1 : 0;
    r->resubmits = s->client->resubmits;
}

/* The end state check: every learner holds F(base + R + 1) mod 2^64, has applied every request
 * exactly once, and all learners hold the same applied index and digest. */
static void verify(struct sup *s)
{
    struct report *r = &s->rep;
    r->expected_value = client_fib(r->base + s->cfg->rounds + 1);
    const struct report_node *ref = NULL;
    for (uint16_t i = 0; i < s->cfg->nodes; i++)
        if (r->nodes[i].learner && r->nodes[i].final_ok) {
            ref = &r->nodes[i];
            break;
        }
    r->learners = r->learners_ok = 0;
    for (uint16_t i = 0; i < s->cfg->nodes; i++) {
        struct report_node *n = &r->nodes[i];
        if (!n->learner) {
            n->verdict = n->verdict ? n->verdict : "not a learner";
            continue;
        }
        r->learners++;
        if (!n->final_ok)
            n->verdict = n->verdict ? n->verdict : "no final state";
        else if (n->fib.value != r->expected_value)
            n->verdict = "WRONG VALUE";
        else if (n->fib.requests != r->base + s->cfg->rounds)
            n->verdict = "WRONG REQUEST COUNT";
        else if (n->fib.digest != ref->fib.digest || n->fib.applied != ref->fib.applied)
            n->verdict = "DIVERGED";
        else
            n->verdict = "ok";
        r->learners_ok += strcmp(n->verdict, "ok") == 0;
    }
    r->verified = r->learners > 0 && r->learners_ok == r->learners;
    r->outcome = r->verified ? "VERIFIED" : "VERIFICATION FAILED";
}

/* Waits until every node has loaded its store and a leader is elected (the client starts only
 * then, so startup is not counted in rounds/s). Returns 0, or an exit code. */
static int wait_loaded(struct sup *s)
{
    uint64_t deadline = util_now_ns() + SUP_STOP_NS * 6;
    for (;;) {
        if (should_stop(s))
            return s->fatal ? s->fatal : -1;
        bool all = true;
        for (uint16_t i = 0; i < s->cfg->nodes; i++)
            all &= CMM_LOAD_SHARED(node_shared(s, i)->loaded_incarnation) ==
                   s->rep.nodes[i].incarnation;
        if (all && current_leader(s) != PX_NODE_NONE)
            break;
        if (util_now_ns() > deadline) {
            fprintf(stderr, "paxos-shm: nodes did not start and elect a leader within %llu s\n",
                    (unsigned long long)(SUP_STOP_NS * 6 / 1000000000ull));
            return EXIT_RUNTIME;
        }
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    cmm_smp_rmb(); /* the flags before the fibs; pairs with node_open's wmb */
    return 0;
}

/* First global round not applied according to one client's dedup record. */
static uint64_t first_missing(const struct px_fib *f, uint32_t client_id)
{
    /* Seqs start at 1; px_fib_seen answers from the state machine's own exactly-once table,
     * and a client's seen seqs past a gap stay within PX_DEDUP_SPAN of its oldest unapplied. */
    struct px_value v = {.client_id = client_id, .seq = 1};
    for (uint32_t k = 0; k < PX_CLIENTS_MAX; k++)
        if (f->clients[k].client_id == client_id && f->clients[k].seq_low > 1)
            v.seq = f->clients[k].seq_low;
    while (px_fib_seen(f, &v))
        v.seq++;
    return (uint64_t)(v.seq - 1) * CLIENT_IDS + client_id;
}

/* Rounds decided by earlier runs on this data: the longest prefix of global rounds that the
 * most advanced learner has applied (rounds applied beyond a gap are proposed again and
 * dropped as duplicates by the state machine, so nothing is counted twice). */
static uint64_t earlier_rounds(struct sup *s)
{
    const struct px_fib *best = NULL;
    for (uint16_t i = 0; i < s->cfg->nodes; i++) {
        const struct px_fib *f = &node_shared(s, i)->recovered_fib;
        if (has_role(s->cfg, i, PX_ROLE_LEARNER) && (best == NULL || f->applied > best->applied))
            best = f;
    }
    if (best == NULL || best->requests == 0)
        return 0;
    uint64_t lo = UINT64_MAX;
    for (uint32_t c = 1; c <= CLIENT_IDS; c++) {
        uint64_t g = first_missing(best, c);
        lo = g < lo ? g : lo;
    }
    return lo - 1;
}

/* --- setup and teardown ------------------------------------------------------------------------
 */

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int setup_data_dir(struct sup *s)
{
    const struct cli_config *c = s->cfg;
    if (c->store != CLI_STORE_SQLITE)
        return 0;
    if (c->data_dir) {
        struct stat st;
        if (stat(c->data_dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
            fprintf(stderr, "paxos-shm: --data-dir %s: %s\n", c->data_dir,
                    errno && stat(c->data_dir, &st) != 0 ? strerror(errno) : "not a directory");
            return -1;
        }
        if (access(c->data_dir, W_OK | X_OK) != 0) {
            fprintf(stderr, "paxos-shm: --data-dir %s: %s\n", c->data_dir, strerror(errno));
            return -1;
        }
        snprintf(s->data_dir, sizeof(s->data_dir), "%s", c->data_dir);
    } else {
        const char *tmp = getenv("TMPDIR");
        snprintf(s->data_dir, sizeof(s->data_dir), "%s/paxos-shm-XXXXXX",
                 tmp && tmp[0] ? tmp : "/tmp");
        if (mkdtemp(s->data_dir) == NULL) {
            fprintf(stderr, "paxos-shm: cannot create a data directory %s: %s\n", s->data_dir,
                    strerror(errno));
            s->data_dir[0] = '\0';
            return -1;
        }
        s->data_dir_fresh = true;
    }
    char err[256] = "";
    if (store_registry_open(s->data_dir, (uint16_t)c->nodes, &s->registry, err, sizeof(err))) {
        fprintf(stderr, "paxos-shm: %s\n", err);
        return -1;
    }
    /* Stable node ids: a kept data directory continues each id's incarnations and restarts. */
    for (uint16_t i = 0; i < c->nodes; i++) {
        struct store_node_info info;
        if (store_registry_get(s->registry, i, &info) == 0) {
            s->rep.nodes[i].incarnation = info.incarnation;
            s->rep.nodes[i].restarts = info.restarts;
        }
    }
    return 0;
}

static int setup_segment(struct sup *s)
{
    const struct cli_config *c = s->cfg;
    unsigned stale = 0;
    if (ipc_segment_clean_stale(&stale) == 0 && stale > 0)
        LOG(LOG_INFO, "removed %u stale segment(s) of dead supervisors", stale);
    ipc_segment_name(s->seg_name, sizeof(s->seg_name), getpid());
    uint64_t user = node_user_bytes(c->store == CLI_STORE_SHM ? STORE_SHM : STORE_SQLITE);
    if (user < sizeof(struct pool_shared))
        user = sizeof(struct pool_shared);
    struct ipc_layout l = {
        .endpoints = c->nodes + 1,
        .ring_slots = c->ring_slots,
        .bcast_slots = c->ring_slots,
        .bcast_producers = c->nodes,
        .user_bytes = user,
    };
    char err[256] = "";
    if (ipc_segment_create(s->seg_name, &l, &s->seg, err, sizeof(err)) != 0) {
        fprintf(stderr, "paxos-shm: %s\n", err);
        s->seg_name[0] = '\0';
        return -1;
    }
    s->pool = ipc_segment_user(s->seg, (uint32_t)c->nodes);
    CMM_STORE_SHARED(ipc_segment_ctl(s->seg, c->nodes)->alive, 1u);
    CMM_STORE_SHARED(ipc_segment_ctl(s->seg, c->nodes)->pid, getpid());
    for (uint16_t i = 0; i < c->nodes; i++)
        s->rep.nodes[i].learner = has_role(c, i, PX_ROLE_LEARNER);
    if (c->transport == CLI_TRANSPORT_SOCKET) {
        int rc = transport_sock_mesh_create((uint16_t)(c->nodes + 1), &s->mesh);
        if (rc == 0)
            rc = transport_sock_create(s->mesh, s->seg, (uint16_t)c->nodes, (uint16_t)c->nodes,
                                       &s->t);
        if (rc != 0)
            fprintf(stderr, "paxos-shm: socket transport: %s\n", strerror(-rc));
        return rc;
    }
    return transport_shm_create(s->seg, (uint16_t)c->nodes, (uint16_t)c->nodes, &s->t);
}

static void install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_signal; /* no SA_RESTART: a signal cuts a doorbell wait short */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sa.sa_handler = on_sigchld;
    sa.sa_flags = SA_NOCLDSTOP;
    sigaction(SIGCHLD, &sa, NULL);
    signal(SIGXFSZ, SIG_IGN); /* a file-size limit is a clear storage error, not a death */
}

static void teardown(struct sup *s)
{
    for (uint16_t i = 0; i < s->cfg->nodes; i++) {
        if (s->rep.nodes[i].pid > 0) {
            kill(s->rep.nodes[i].pid, SIGKILL);
            waitpid(s->rep.nodes[i].pid, NULL, 0);
            s->rep.nodes[i].pid = 0;
        }
    }
    if (s->t)
        s->t->ops->destroy(s->t);
    transport_sock_mesh_destroy(s->mesh);
    if (s->seg)
        ipc_segment_close(s->seg);
    if (s->seg_name[0])
        ipc_segment_unlink(s->seg_name);
    if (s->registry)
        store_registry_close(s->registry);
    if (s->data_dir_fresh && !s->cfg->keep_data)
        nftw(s->data_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    else if (s->data_dir_fresh && !s->cfg->quiet)
        fprintf(stderr, "paxos-shm: data kept in %s\n", s->data_dir);
    free(s->kill_at);
    free(s->client);
}

int sup_run(const struct cli_config *cfg)
{
    struct sup s;
    memset(&s, 0, sizeof(s));
    s.cfg = cfg;
    s.rep.cfg = cfg;
    s.rng = cfg->seed ^ 0x5eed5eed5eed5eedull;
    int code = EXIT_RUNTIME;
    s.client = malloc(sizeof(*s.client));
    if (s.client == NULL || chaos_plan(&s) != 0) {
        fprintf(stderr, "paxos-shm: out of memory\n");
        goto out;
    }
    install_signals();
    if (setup_data_dir(&s) != 0 || setup_segment(&s) != 0)
        goto out;
    for (uint16_t i = 0; i < cfg->nodes; i++)
        if (spawn(&s, i) != 0)
            goto out;
    int rc = wait_loaded(&s);
    s.rep.base = rc == 0 ? earlier_rounds(&s) : 0;
    client_init(s.client, cfg->rounds, cfg->window, s.rep.base);
    s.rep.latency_ns = &s.client->latency_ns;
    uint64_t start = util_now_ns();
    if (rc == 0)
        rc = drive(&s, start);
    s.rep.seconds = (double)(util_now_ns() - start) / 1e9;
    s.rep.rounds_done = s.client->done;
    progress(&s, start, 0, true);
    if (rc == 0 && !converge(&s)) {
        if (!got_signal && !s.fatal)
            fprintf(stderr, "paxos-shm: learners did not converge within %llu s\n",
                    (unsigned long long)(SUP_CONVERGE_NS / 1000000000ull));
    }
    stop_nodes(&s);
    collect(&s);
    for (uint16_t i = 0; i < cfg->nodes; i++)
        registry_note(&s, i); /* last activity: the end of this run */
    if (got_signal) {
        code = got_signal == SIGINT ? EXIT_SIGINT : EXIT_SIGTERM;
        s.rep.outcome = got_signal == SIGINT ? "interrupted (SIGINT)" : "terminated (SIGTERM)";
    } else if (rc != 0) {
        code = rc > 0 ? rc : EXIT_RUNTIME;
        s.rep.outcome = "runtime failure";
    } else {
        verify(&s);
        code = s.rep.verified ? EXIT_VERIFIED : EXIT_VERIFY_FAILED;
    }
    if (!cfg->quiet)
        report_print(&s.rep, stdout);
    if (cfg->json_path && report_json(&s.rep, cfg->json_path) != 0 && code == EXIT_VERIFIED)
        code = EXIT_RUNTIME;
out:
    teardown(&s);
    return code;
}
