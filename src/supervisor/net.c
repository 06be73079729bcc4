/* net.c: the supervisor's part in a pool across hosts (--pool FILE --host NAME).
 *
 * Each host runs one supervisor. It builds the same segment as for one host, laid out for the
 * whole pool, forks only the nodes the pool file puts on its host, and forks the gateway
 * (src/net/gateway.h) that stands in for every node of the other hosts. The first host runs
 * the client, the membership view, convergence and verification exactly as for one host: the
 * remote nodes' liveness, applied index and final state reach its segment through the
 * gateway. The other hosts restart their own nodes, and on the first host's stop, stop them,
 * let the gateway hand their final states over, and exit when the first host says it is done
 * (or has been silent for SUP_NET_ORPHAN_NS after the stop). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <urcu/system.h>

#include "common/pool.h"
#include "common/util.h"
#include "ipc/bcast.h"
#include "ipc/segment.h"
#include "net/gateway.h"
#include "net/pool_file.h"
#include "net/wire.h"
#include "supervisor/report.h"
#include "supervisor/sup.h"

/* The gateway gets this long to listen and connect. */
#define SUP_NET_START_NS (5ull * 1000 * 1000 * 1000)
/* The first host waits this long for the other hosts' final states after the stop. */
#define SUP_NET_COLLECT_NS (15ull * 1000 * 1000 * 1000)
/* Another host, after the stop, gives up on the first host's "done" after this long; before
 * the stop, it stops its nodes once the first host has been silent this long. */
#define SUP_NET_ORPHAN_NS (10ull * 1000 * 1000 * 1000)
/* A gateway that dies is restarted like a node (its host's nodes keep running; what was in its
 * queues is lost and the protocol makes up for it); one that died this many times in a run is
 * given up on and the run stops. */
#define SUP_NET_GW_RESTARTS_MAX 16

struct sup_net {
    struct net_pool pool;
    uint32_t self;
    char secret[NET_KEY_TEXT_BYTES + 1];
    struct net_shared *sh; /* MAP_SHARED with the gateway */
    pid_t gw_pid;
    uint32_t gw_restarts;
    bool quitting; /* teardown: the gateway is told to quit, not restarted */
};

static struct sup_net net_storage; /* one pool per process, like struct sup */

int sup_net_load(struct sup *s, const struct cli_config *cfg, struct cli_config *out)
{
    struct sup_net *n = &net_storage;
    memset(n, 0, sizeof(*n));
    char err[PATH_MAX + 256];
    if (net_pool_load(cfg->pool_path, &n->pool, err, sizeof(err)) != 0) {
        fprintf(stderr, "paxos-shm: %s\n", err);
        return -1;
    }
    int h = net_pool_host_index(&n->pool, cfg->host_name);
    if (h < 0) {
        fprintf(stderr, "paxos-shm: --host %s: %s has no [host %s]\n", cfg->host_name,
                cfg->pool_path, cfg->host_name);
        return -1;
    }
    n->self = (uint32_t)h;
    if (n->pool.hosts > 1 &&
        net_pool_read_secret(&n->pool, n->self, n->secret, err, sizeof(err)) != 0) {
        fprintf(stderr, "paxos-shm: %s\n", err);
        return -1;
    }
    *out = *cfg;
    out->nodes = n->pool.nodes;
    out->proposers = n->pool.proposers;
    out->acceptors = n->pool.acceptors;
    out->learners = n->pool.learners;
    s->net = n;
    return 0;
}

bool sup_net_local(const struct sup *s, uint16_t i)
{
    return s->net == NULL || s->net->pool.host_of[i] == s->net->self;
}

bool sup_net_lost(const struct sup *s, uint16_t i)
{
    if (s->net == NULL || s->net->sh == NULL || sup_net_local(s, i))
        return false;
    uint32_t h = s->net->pool.host_of[i];
    return !(CMM_LOAD_SHARED(s->net->sh->host_flags[h]) & NET_ST_STOPPED);
}

const char *sup_net_host_name(const struct sup *s, uint16_t i)
{
    return s->net == NULL ? "" : s->net->pool.host[s->net->pool.host_of[i]].name;
}

bool sup_net_first(const struct sup *s)
{
    return s->net == NULL || s->net->self == 0;
}

bool sup_net_remote_up(const struct sup *s, uint16_t i)
{
    return CMM_LOAD_SHARED(ipc_segment_ctl(s->env.seg, i)->alive) != 0;
}

bool sup_net_remote_settled(const struct sup *s, uint16_t i)
{
    uint32_t inc = CMM_LOAD_SHARED(ipc_segment_ctl(s->env.seg, i)->incarnation);
    return sup_net_remote_up(s, i) && inc != 0 &&
           CMM_LOAD_SHARED(sup_node_shared(s, i)->loaded_incarnation) == inc;
}

/* Cursors that would gate a broadcast ring for ever: on a local node's ring, every remote
 * node's but the one each other host is read with; on a remote node's ring (the gateway
 * produces it), every remote node's. */
static void detach_unread_cursors(struct sup *s)
{
    const struct net_pool *p = &s->net->pool;
    uint64_t reps = 0;
    for (uint32_t h = 0; h < p->hosts; h++)
        if (h != s->net->self)
            reps |= 1ull << __builtin_ctzll(p->host[h].nodes_mask);
    for (uint16_t prod = 0; prod < p->nodes; prod++) {
        bool local = sup_net_local(s, prod);
        for (uint16_t c = 0; c < p->nodes; c++) {
            if (c == prod || sup_net_local(s, c) || (local && (reps >> c & 1u)))
                continue;
            ipc_bcast_detach(ipc_segment_bcast(s->env.seg, prod), c);
        }
    }
}

/* Forks the gateway and waits until it runs (listens and connects) or fails. */
static int gw_spawn(struct sup *s)
{
    struct sup_net *n = s->net;
    struct gateway_args a = {
        .pool = &n->pool, .self = n->self, .secret = n->secret, .seg = s->env.seg, .sh = n->sh};
    CMM_STORE_SHARED(n->sh->state, 0);
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "paxos-shm: fork gateway: %s\n", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        sup_lock_close_in_child(s);
        _exit(gateway_run(&a));
    }
    n->gw_pid = pid;
    uint64_t deadline = util_now_ns() + SUP_NET_START_NS;
    while (CMM_LOAD_SHARED(n->sh->state) == 0 && util_now_ns() < deadline && !sup_signal()) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    if (CMM_LOAD_SHARED(n->sh->state) != 1) {
        if (CMM_LOAD_SHARED(n->sh->state) == 0 && !sup_signal())
            fprintf(stderr, "paxos-shm: the gateway did not start\n");
        return -1;
    }
    return 0;
}

int sup_net_start(struct sup *s)
{
    struct sup_net *n = s->net;
    if (n == NULL || n->pool.hosts == 1)
        return 0;
    detach_unread_cursors(s);
    n->sh = mmap(NULL, sizeof(*n->sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (n->sh == MAP_FAILED) {
        n->sh = NULL;
        fprintf(stderr, "paxos-shm: gateway memory: %s\n", strerror(errno));
        return -1;
    }
    return gw_spawn(s);
}

void sup_net_reaped(struct sup *s, pid_t pid, int status)
{
    struct sup_net *n = s->net;
    if (n == NULL || pid != n->gw_pid)
        return;
    n->gw_pid = 0;
    if (s->fatal || n->quitting)
        return;
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    /* It printed why it failed (an address it cannot listen on): a restart would fail too. */
    bool failed = WIFEXITED(status) && CMM_LOAD_SHARED(n->sh->state) == -1;
    if (!failed && n->gw_restarts < SUP_NET_GW_RESTARTS_MAX && !sup_signal()) {
        n->gw_restarts++;
        fprintf(stderr,
                "paxos-shm: host %s: the gateway to the other hosts exited (status %d);"
                " restarted\n",
                n->pool.host[n->self].name, code);
        if (gw_spawn(s) == 0)
            return;
        if (sup_signal())
            return;
    }
    fprintf(stderr,
            "paxos-shm: host %s: the gateway to the other hosts exited (status %d%s); stopping"
            " the run\n",
            n->pool.host[n->self].name, code,
            failed                                      ? ""
            : n->gw_restarts >= SUP_NET_GW_RESTARTS_MAX ? ", too many restarts"
                                                        : "");
    s->fatal = EXIT_RUNTIME;
}

static bool remote_finals_in(const struct sup *s)
{
    /* Each other host says "stopped" once its nodes exited and its counters are final. */
    for (uint32_t h = 1; h < s->net->pool.hosts; h++)
        if (!(CMM_LOAD_SHARED(s->net->sh->host_flags[h]) & NET_ST_STOPPED))
            return false;
    for (uint16_t i = 0; i < s->cfg->nodes; i++) {
        if (sup_net_local(s, i) || !sup_has_role(s->cfg, i, PX_ROLE_LEARNER))
            continue;
        const struct pool_node_shared *ns = sup_node_shared(s, i);
        uint64_t seq = CMM_LOAD_SHARED(ns->final_seq);
        if (seq == 0 || seq % 2 != 0 || !CMM_LOAD_SHARED(ns->final_ok))
            return false;
    }
    return true;
}

void sup_net_collect(struct sup *s)
{
    struct sup_net *n = s->net;
    if (n == NULL || n->pool.hosts == 1)
        return;
    uint64_t deadline = util_now_ns() + SUP_NET_COLLECT_NS;
    while (!remote_finals_in(s) && util_now_ns() < deadline && !sup_signal()) {
        sup_reap(s);
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, NULL);
    }
    /* The report shows each remote node's incarnation as its host last told it. */
    for (uint16_t i = 0; i < s->cfg->nodes; i++)
        if (!sup_net_local(s, i))
            s->members.procs[i].incarnation =
                CMM_LOAD_SHARED(ipc_segment_ctl(s->env.seg, i)->incarnation);
}

/* Another host: hands its banked counters to the gateway's status. */
static void publish_banked(struct sup *s)
{
    for (uint16_t i = 0; i < s->cfg->nodes; i++) {
        if (!sup_net_local(s, i))
            continue;
        const struct sup_counters *c = &s->members.procs[i].banked;
        struct net_banked *b = &s->net->sh->banked[i];
        CMM_STORE_SHARED(b->msgs, c->msgs);
        CMM_STORE_SHARED(b->ring_full, c->ring_full);
        CMM_STORE_SHARED(b->drops, c->drops);
        CMM_STORE_SHARED(b->lagged, c->lagged);
        CMM_STORE_SHARED(b->bad_messages, c->bad_messages);
        CMM_STORE_SHARED(b->cmd_torn, c->cmd_torn);
        CMM_STORE_SHARED(b->cmd_missing, c->cmd_missing);
    }
}

/* Another host: true once the first host has said done, or was silent long after the stop. */
static bool released(const struct sup_net *n, uint64_t stopped_ns)
{
    if (CMM_LOAD_SHARED(n->sh->host_flags[0]) & NET_ST_DONE)
        return true;
    return util_now_ns() - stopped_ns > SUP_NET_ORPHAN_NS;
}

int sup_net_follow(struct sup *s)
{
    struct sup_net *n = s->net;
    uint64_t deadline = s->cfg->timeout_s ? util_now_ns() + s->cfg->timeout_s * 1000000000ull : 0;
    struct timespec ts = {0, 5000000};
    bool heard_first = false;
    uint64_t first_silent_ns = 0;
    while (!CMM_LOAD_SHARED(s->env.pool->stop)) {
        /* The first host runs the client: lost for good, nothing will ever stop this run. */
        uint64_t now = util_now_ns();
        if (CMM_LOAD_SHARED(n->sh->host_up[0])) {
            heard_first = true;
            first_silent_ns = 0;
        } else if (heard_first && first_silent_ns == 0) {
            first_silent_ns = now;
        } else if (heard_first && now - first_silent_ns > SUP_NET_ORPHAN_NS) {
            fprintf(stderr,
                    "paxos-shm: host %s: the first host %s has not been heard for %llu s;"
                    " stopping this host's nodes\n",
                    n->pool.host[n->self].name, n->pool.host[0].name,
                    (unsigned long long)(SUP_NET_ORPHAN_NS / 1000000000ull));
            return EXIT_RUNTIME;
        }
        if (sup_should_stop(s))
            return sup_signal() ? sup_signal_exit() : s->fatal;
        if (deadline && util_now_ns() > deadline) {
            fprintf(stderr, "paxos-shm: host %s: timed out after %u s waiting for the stop\n",
                    n->pool.host[n->self].name, s->cfg->timeout_s);
            return EXIT_RUNTIME;
        }
        publish_banked(s);
        nanosleep(&ts, NULL);
    }
    sup_stop_nodes(s);
    publish_banked(s);
    cmm_smp_wmb(); /* the counters before the flag the status carries */
    CMM_STORE_SHARED(n->sh->stopped, 1);
    uint64_t stopped_ns = util_now_ns();
    while (!released(n, stopped_ns) && !sup_signal() && !s->fatal) {
        sup_reap(s);
        nanosleep(&ts, NULL);
    }
    if (!s->cfg->quiet)
        printf("paxos-shm: host %s: nodes stopped, final states handed to host %s\n",
               n->pool.host[n->self].name, n->pool.host[0].name);
    if (sup_signal())
        return sup_signal_exit();
    return s->fatal ? s->fatal : EXIT_VERIFIED;
}

void sup_net_report(const struct sup *s, struct report_net *out)
{
    memset(out, 0, sizeof(*out));
    const struct sup_net *n = s->net;
    if (n == NULL || n->sh == NULL)
        return;
    const struct net_shared *sh = n->sh;
    out->hosts = n->pool.hosts;
    out->frames_sent = CMM_LOAD_SHARED(sh->frames_sent);
    out->frames_received = CMM_LOAD_SHARED(sh->frames_received);
    out->hwm_full = CMM_LOAD_SHARED(sh->hwm_full);
    out->drops = CMM_LOAD_SHARED(sh->drops);
    out->bad_frames = CMM_LOAD_SHARED(sh->bad_frames);
    out->bad_messages = CMM_LOAD_SHARED(sh->bad_messages);
    out->lagged = CMM_LOAD_SHARED(sh->lagged);
    out->missed = CMM_LOAD_SHARED(sh->missed);
    out->status_dropped = CMM_LOAD_SHARED(sh->status_dropped);
    out->host_down = CMM_LOAD_SHARED(sh->host_down);
    out->gateway_restarts = n->gw_restarts;
}

void sup_net_teardown(struct sup *s)
{
    struct sup_net *n = s->net;
    if (n == NULL || n->sh == NULL)
        return;
    n->quitting = true;
    if (n->gw_pid > 0) {
        if (n->self == 0) {
            /* Let two status periods carry "done" to the other hosts. */
            CMM_STORE_SHARED(n->sh->done, 1);
            struct timespec ts = {0, (long)(3 * NET_STATUS_NS)};
            nanosleep(&ts, NULL);
        }
        CMM_STORE_SHARED(n->sh->quit, 1);
        kill(n->gw_pid, SIGTERM);
        waitpid(n->gw_pid, NULL, 0);
        n->gw_pid = 0;
    }
    munmap(n->sh, sizeof(*n->sh));
    n->sh = NULL;
}
