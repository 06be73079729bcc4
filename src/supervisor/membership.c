/* membership.c: the process table and the failure detector. The supervisor learns of a node's
 * death at once (SIGCHLD, then waitpid), marks it down in the segment, detaches it from every
 * broadcast ring and restarts it with the same id and the next incarnation. A node that exits
 * by itself met a failure it reported (storage, setup) and stops the run. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <urcu/system.h>
#include <urcu/uatomic.h>

#include "common/log.h"
#include "common/pool.h"
#include "common/util.h"
#include "ipc/bcast.h"
#include "ipc/doorbell.h"
#include "ipc/segment.h"
#include "node/driver.h"
#include "node/node.h"
#include "store/store.h"
#include "supervisor/restart.h"
#include "supervisor/sup.h"

/* Nodes get this long to publish their final state after `stop` before SIGKILL. */
#define SUP_STOP_NS (5ull * 1000 * 1000 * 1000)
/* Nodes get this long to load their stores and elect a leader at start (a large sqlite log
 * takes seconds to load on a loaded machine). */
#define SUP_LOAD_NS (6 * SUP_STOP_NS)
/* Poll period while waiting for nodes to load or to stop: these waits last up to seconds, a
 * millisecond between looks costs nothing and delays the outcome by at most that. */
#define SUP_POLL_NS (1000l * 1000)

/* Records node i in the registry (sqlite store only). A failure here is reported once and
 * stops nothing: the nodes table describes the pool, the nodes' own stores hold the state (the
 * client's record in the same file is another matter: record.c ends the run when it fails). */
static void registry_note(struct sup *s, uint16_t i)
{
    const struct sup_proc *p = &s->members.procs[i];
    if (s->env.registry == NULL || s->members.note_failed)
        return;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t now_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
    if (store_registry_update(s->env.registry, i, cli_roles(s->cfg, i), p->pid, p->incarnation,
                              p->restarts, now_ms) != 0) {
        fprintf(stderr, "paxos-shm: %s\n", store_registry_errmsg(s->env.registry));
        s->members.note_failed = true;
    }
}

void sup_members_note_all(struct sup *s)
{
    for (uint16_t i = 0; i < s->cfg->nodes; i++)
        if (sup_net_local(s, i)) /* another host's registry records its own nodes */
            registry_note(s, i);
}

void sup_members_load(struct sup *s)
{
    /* Stable node ids: a kept data directory continues each id's incarnations and restarts. */
    for (uint16_t i = 0; i < s->cfg->nodes; i++) {
        struct store_node_info info;
        if (store_registry_get(s->env.registry, i, &info) == 0) {
            s->members.procs[i].incarnation = info.incarnation;
            s->members.procs[i].restarts = info.restarts;
        }
    }
}

bool sup_up(const struct sup *s, uint16_t i)
{
    PX_ASSERT(i < s->cfg->nodes);
    if (!sup_net_local(s, i))
        return sup_net_remote_up(s, i);
    return s->members.procs[i].pid > 0;
}

bool sup_alive(const struct sup *s, uint16_t i)
{
    PX_ASSERT(i < s->cfg->nodes);
    const struct sup_proc *p = &s->members.procs[i];
    return p->pid > 0 && !p->hung && !p->gone;
}

bool sup_settled(const struct sup *s, uint16_t i)
{
    PX_ASSERT(i < s->cfg->nodes);
    if (!sup_net_local(s, i))
        return sup_net_remote_settled(s, i);
    const struct sup_proc *p = &s->members.procs[i];
    return p->pid > 0 && !p->killing && !p->hung && !p->gone &&
           CMM_LOAD_SHARED(sup_node_shared(s, i)->loaded_incarnation) == p->incarnation;
}

uint16_t sup_leader(const struct sup *s)
{
    for (uint16_t i = 0; i < s->cfg->nodes; i++)
        if (sup_alive(s, i) && CMM_LOAD_SHARED(sup_node_shared(s, i)->is_leader))
            return i;
    return PX_NODE_NONE;
}

static void set_alive(struct sup *s, uint16_t i, bool up)
{
    struct ipc_segment *seg = s->env.seg;
    struct pool_shared *pool = s->env.pool;
    CMM_STORE_SHARED(ipc_segment_ctl(seg, i)->alive, up ? 1u : 0u);
    /* Atomic: with --pool the gateway updates the bits of the remote nodes concurrently. */
    if (up)
        uatomic_or(&pool->alive_mask, 1ull << i);
    else
        uatomic_and(&pool->alive_mask, ~(1ull << i));
    cmm_smp_wmb(); /* alive flags before the epoch bump; pairs with check_membership's rmb */
    uatomic_add(&pool->membership_epoch, 1);
    if (!up) {
        /* A dead consumer must not gate any producer's broadcast ring. */
        for (uint16_t p = 0; p < s->cfg->nodes; p++)
            if (p != i)
                ipc_bcast_detach(ipc_segment_bcast(seg, p), i);
    }
    for (uint16_t p = 0; p < s->cfg->nodes; p++)
        ipc_doorbell_ring(&ipc_segment_ctl(seg, p)->bell);
}

/* The node's own configuration, built from the command line once per start. */
static void node_config_of(const struct sup *s, uint16_t i, struct node_config *out)
{
    const struct cli_config *c = s->cfg;
    memset(out, 0, sizeof(*out));
    out->id = i;
    out->nodes = (uint16_t)c->nodes;
    for (uint16_t p = 0; p < c->nodes; p++)
        out->roles[p] = cli_roles(c, p);
    out->window = c->window;
    out->sm = s->sm != NULL ? s->sm : s->job;
    out->job = s->sm == NULL;
    out->cmd_bytes = c->command_bytes;
    out->sm_state_max = c->sm_state_max;
    out->sm_snap_bytes = c->sm_snap_bytes;
    out->sm_snap_entries = c->sm_snap_entries;
    out->rotate = c->rotate;
    out->seed = c->seed;
    out->store = c->store == CLI_STORE_SHM ? STORE_SHM : STORE_SQLITE;
    out->sync = c->sync == CLI_SYNC_FULL ? STORE_SYNC_FULL : STORE_SYNC_NORMAL;
    out->data_dir = s->env.data_dir[0] ? s->env.data_dir : NULL;
    out->incarnation = s->members.procs[i].incarnation;
    out->pool_id = s->env.pool_id;
    out->epoch = s->env.epoch;
    /* An incarnation of this run loaded the store: a restart finds it, or refuses. */
    out->store_must_exist = CMM_LOAD_SHARED(sup_node_shared(s, i)->loaded_incarnation) != 0;
}

int sup_spawn(struct sup *s, uint16_t i)
{
    struct sup_proc *p = &s->members.procs[i];
    PX_ASSERT(p->pid == 0);
    p->incarnation++;
    struct node_args a = {.seg = s->env.seg, .mesh = s->env.mesh};
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
        sup_lock_close_in_child(s);
        _exit(node_run(&a));
    }
    p->pid = pid;
    p->started_ns = util_now_ns();
    p->killing = false;
    p->hung = false;
    p->progress_ns = 0;
    CMM_STORE_SHARED(ipc_segment_ctl(s->env.seg, i)->pid, pid);
    CMM_STORE_SHARED(ipc_segment_ctl(s->env.seg, i)->incarnation, p->incarnation);
    set_alive(s, i, true);
    registry_note(s, i);
    LOG(LOG_INFO, "node %u incarnation %u is pid %d", i, p->incarnation, (int)pid);
    return 0;
}

/* Keeps the counters of an incarnation that is gone (the next one starts from zero). */
static void bank_counters(struct sup *s, uint16_t i)
{
    struct pool_node_shared *ns = sup_node_shared(s, i);
    struct sup_counters *b = &s->members.procs[i].banked;
    b->msgs += CMM_LOAD_SHARED(ns->msgs_sent);
    b->ring_full += CMM_LOAD_SHARED(ns->ring_full);
    b->drops += CMM_LOAD_SHARED(ns->drops);
    b->lagged += CMM_LOAD_SHARED(ns->lagged);
    b->bad_messages += CMM_LOAD_SHARED(ns->bad_messages);
    b->requests_dropped += CMM_LOAD_SHARED(ns->requests_dropped);
    b->cmd_torn += CMM_LOAD_SHARED(ns->cmd_streams_torn);
    b->cmd_missing += CMM_LOAD_SHARED(ns->cmd_missing);
    CMM_STORE_SHARED(ns->cmd_streams_torn, 0);
    CMM_STORE_SHARED(ns->cmd_missing, 0);
    CMM_STORE_SHARED(ns->msgs_sent, 0);
    CMM_STORE_SHARED(ns->ring_full, 0);
    CMM_STORE_SHARED(ns->drops, 0);
    CMM_STORE_SHARED(ns->lagged, 0);
    CMM_STORE_SHARED(ns->bad_messages, 0);
    CMM_STORE_SHARED(ns->requests_dropped, 0);
    /* A dead leader leads no more: the client must not take its stale flag for the new
     * incarnation's (which clears it only once it runs). */
    CMM_STORE_SHARED(ns->is_leader, 0);
}

struct sup_counters sup_counters_of(const struct sup *s, uint16_t i)
{
    const struct pool_node_shared *ns = sup_node_shared(s, i);
    struct sup_counters c = s->members.procs[i].banked;
    c.msgs += CMM_LOAD_SHARED(ns->msgs_sent);
    c.ring_full += CMM_LOAD_SHARED(ns->ring_full);
    c.drops += CMM_LOAD_SHARED(ns->drops);
    c.lagged += CMM_LOAD_SHARED(ns->lagged);
    c.bad_messages += CMM_LOAD_SHARED(ns->bad_messages);
    c.requests_dropped += CMM_LOAD_SHARED(ns->requests_dropped);
    c.cmd_torn += CMM_LOAD_SHARED(ns->cmd_streams_torn);
    c.cmd_missing += CMM_LOAD_SHARED(ns->cmd_missing);
    c.cmds_checked = CMM_LOAD_SHARED(ns->cmds_checked); /* the node keeps these across lives */
    c.cmds_bad = CMM_LOAD_SHARED(ns->cmds_bad);
    return c;
}

static int slot_of(const struct sup *s, pid_t pid)
{
    for (uint16_t i = 0; i < s->cfg->nodes; i++)
        if (s->members.procs[i].pid == pid)
            return i;
    return -1;
}

/* When node i's death was learned and whether it led then (restart.h holds a leader's restart). */
static void note_death(struct sup *s, uint16_t i)
{
    struct sup_proc *p = &s->members.procs[i];
    p->died_ns = util_now_ns();
    p->died_leading = s->drive.leader == i || CMM_LOAD_SHARED(sup_node_shared(s, i)->is_leader);
}

/* One child is gone with wait status st: mark it down; restart it if it was killed. */
static void on_death(struct sup *s, uint16_t i, int st)
{
    struct sup_proc *p = &s->members.procs[i];
    if (!p->gone) /* else it was noted when the death was announced */
        note_death(s, i);
    p->gone = false;
    p->pid = 0;
    bank_counters(s, i);
    set_alive(s, i, false);
    if (WIFEXITED(st) && WEXITSTATUS(st) == NODE_EXIT_STOPPED && s->members.stopping)
        return;
    bool asked = WIFEXITED(st) && WEXITSTATUS(st) == NODE_EXIT_RESTART;
    if (WIFEXITED(st) && !asked) {
        /* A node that exits by itself met a failure it reported (storage, setup). */
        fprintf(stderr, "paxos-shm: node %u exited with status %d; stopping the run\n", i,
                WEXITSTATUS(st));
        s->fatal = EXIT_RUNTIME;
        return;
    }
    if (asked) { /* it ended as a crash would (node.h): restarted like one, unless it keeps on */
        uint64_t at = CMM_LOAD_SHARED(sup_node_shared(s, i)->applied);
        bool quick = util_now_ns() - p->started_ns < SUP_ASKED_QUICK_NS;
        p->asked_in_a_row = !quick                                       ? 0
                            : p->asked_in_a_row > 0 && at == p->asked_at ? p->asked_in_a_row + 1
                                                                         : 1;
        p->asked_at = at;
        LOG(LOG_INFO, "node %u asked to be restarted (%u in a row at %llu)", i, p->asked_in_a_row,
            (unsigned long long)at);
        if (p->asked_in_a_row >= SUP_ASKED_RESTARTS_MAX) {
            fprintf(stderr,
                    "paxos-shm: node %u ended %u times in a row at log index %llu without "
                    "applying anything (its last line says why); stopping the run\n",
                    i, p->asked_in_a_row, (unsigned long long)at);
            s->fatal = EXIT_RUNTIME;
            return;
        }
    } else {
        p->asked_in_a_row = 0;
        LOG(LOG_INFO, "node %u died (signal %d)", i, WTERMSIG(st));
    }
    /* Killed (a failpoint, a stray signal) after the pool converged but before it saw the stop
     * and published its final state: restarted, it loads its durable state, sees the stop at
     * once and publishes that, so a crash at the very end is not a verification failure. Not
     * a node left out as hung, and not when the run itself was interrupted. Nor once a stop
     * signal arrived at all: a SIGTERM to the whole process group kills the nodes (they keep
     * its default) a moment before the supervisor's loop sees it. */
    bool stop_restart = s->members.stop_restart && !p->hung_at_end && sup_signal() == 0;
    if ((s->members.stopping && !stop_restart) || s->fatal || sup_signal() != 0)
        return;
    p->restarts++;
    s->members.restarts++;
    s->members.restarts_asked += asked;
    p->restart_due = true;
    if (!s->members.defer_restarts)
        sup_restart_due(s);
}

/* A majority of the acceptors is up without node i. */
static bool quorum_without(const struct sup *s, uint16_t i)
{
    uint32_t acceptors = 0, up = 0;
    for (uint16_t p = 0; p < s->cfg->nodes; p++) {
        if (!sup_has_role(s->cfg, p, PX_ROLE_ACCEPTOR))
            continue;
        acceptors++;
        if (p == i)
            continue;
        up += sup_net_local(s, p) ? sup_alive(s, p) && !s->members.procs[p].killing : sup_up(s, p);
    }
    return up > acceptors / 2;
}

/* The restart of node i waits for the fail-over its death started (restart.h). */
static bool restart_holds(const struct sup *s, uint16_t i)
{
    const struct sup_proc *p = &s->members.procs[i];
    const struct sup_restart_view v = {.now_ns = util_now_ns(),
                                       .died_ns = p->died_ns,
                                       .died_leading = p->died_leading,
                                       .decided_ns = s->drive.decided_ns,
                                       .quorum_without = quorum_without(s, i),
                                       .drive_running = s->members.defer_restarts};
    return sup_restart_holds(&v);
}

void sup_restart_due(struct sup *s)
{
    for (uint16_t i = 0; i < s->cfg->nodes; i++) {
        struct sup_proc *p = &s->members.procs[i];
        if (!p->restart_due || restart_holds(s, i))
            continue;
        p->restart_due = false;
        if ((s->members.stopping && !s->members.stop_restart) || s->fatal || sup_signal() != 0)
            continue;
        if (sup_spawn(s, i) != 0)
            s->fatal = EXIT_RUNTIME;
    }
}

void sup_take_early_deaths(struct sup *s)
{
    struct sup_watch *w = &s->members.watch;
    if (CMM_LOAD_SHARED(w->dead_mask) == 0)
        return;
    uint64_t mask = uatomic_xchg(&w->dead_mask, 0);
    cmm_smp_rmb(); /* the bits before the incarnations; pairs with watch_node's wmb */
    for (uint16_t i = 0; i < s->cfg->nodes; i++) {
        struct sup_proc *p = &s->members.procs[i];
        if (!(mask & (1ull << i)))
            continue;
        /* An older incarnation's notice, or one already reaped: SIGCHLD did the work. */
        uint32_t dead = uatomic_read(&w->dead_incarnation[i]);
        if (p->pid <= 0 || p->gone || dead != p->incarnation || s->members.stopping)
            continue;
        p->gone = true;
        note_death(s, i);
        /* It leads no more; the dead process can no longer write the flag. */
        CMM_STORE_SHARED(sup_node_shared(s, i)->is_leader, 0);
        LOG(LOG_INFO, "node %u incarnation %u died (its life lock was released)", i, dead);
        set_alive(s, i, false);
    }
}

void sup_reap(struct sup *s)
{
    for (;;) {
        int st = 0;
        pid_t pid = waitpid(-1, &st, WNOHANG);
        if (pid <= 0)
            return;
        int i = slot_of(s, pid);
        if (i >= 0)
            on_death(s, (uint16_t)i, st);
        else
            sup_net_reaped(s, pid, st);
    }
}

int sup_wait_loaded(struct sup *s)
{
    uint64_t deadline = util_now_ns() + SUP_LOAD_NS;
    for (;;) {
        if (sup_take_sigchld())
            sup_reap(s);
        if (sup_signal() || s->fatal)
            return s->fatal ? s->fatal : -1;
        bool all = true;
        for (uint16_t i = 0; i < s->cfg->nodes; i++)
            all &= sup_net_local(s, i)
                       ? CMM_LOAD_SHARED(sup_node_shared(s, i)->loaded_incarnation) ==
                             s->members.procs[i].incarnation
                       : sup_net_remote_settled(s, i);
        if (all && sup_leader(s) != PX_NODE_NONE)
            break;
        if (util_now_ns() > deadline) {
            fprintf(stderr, "paxos-shm: nodes did not start and elect a leader within %llu s\n",
                    (unsigned long long)(SUP_LOAD_NS / 1000000000ull));
            return EXIT_RUNTIME;
        }
        struct timespec ts = {0, SUP_POLL_NS};
        nanosleep(&ts, NULL);
    }
    cmm_smp_rmb(); /* the flags before the fibs; pairs with node_open's wmb */
    return 0;
}

static bool any_running(const struct sup *s)
{
    for (uint16_t i = 0; i < s->cfg->nodes; i++)
        if (s->members.procs[i].pid > 0)
            return true;
    return false;
}

uint64_t sup_hung_ns(const struct sup *s, uint16_t i, uint64_t now_ns)
{
    const struct sup_proc *p = &s->members.procs[i];
    return p->hung && now_ns > p->progress_ns ? now_ns - p->progress_ns : 0;
}

/* What the kernel says of process pid: its state letter (R, S, D, T, t, Z, ...) and its CPU
 * time in ns (schedstat's first field). False when it could not be read (the process is gone
 * or /proc is not there: the caller then judges on silence alone). */
static bool proc_look(pid_t pid, char *state, uint64_t *cpu_ns)
{
    char path[64], buf[512];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return false;
    size_t got = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[got] = '\0';
    const char *close = strrchr(buf, ')'); /* the command name may hold spaces and parens */
    if (close == NULL || close[1] != ' ' || close[2] == '\0')
        return false;
    *state = close[2];
    snprintf(path, sizeof(path), "/proc/%d/schedstat", (int)pid);
    f = fopen(path, "re");
    if (f == NULL)
        return false;
    unsigned long long ns = 0;
    int n = fscanf(f, "%llu", &ns);
    fclose(f);
    *cpu_ns = (uint64_t)ns;
    return n == 1;
}

uint64_t sup_hang_ns(const struct cli_config *c)
{
    if (c->command_bytes <= CMD_INLINE_BYTES)
        return SUP_HANG_NS;
    /* One commit holds up to DRIVER_BATCH_CMD_BYTES, or one command if it is longer. */
    uint64_t commit =
        c->command_bytes > DRIVER_BATCH_CMD_BYTES ? c->command_bytes : DRIVER_BATCH_CMD_BYTES;
    return SUP_HANG_NS + commit * SUP_HANG_NS_PER_CMD_BYTE;
}

/* A node silent for at least sup_hang_ns: hung, or only waiting for the machine (sup.h). */
static bool judge_silent(struct sup_proc *p, uint64_t silence, const char **why)
{
    char state = '?';
    uint64_t cpu = 0;
    if (!proc_look(p->pid, &state, &cpu)) {
        *why = "no progress";
        return true;
    }
    if (state == 'T' || state == 't') {
        *why = "stopped";
        return true;
    }
    if (silence >= SUP_HANG_MAX_NS) {
        *why = "no progress for long";
        return true;
    }
    if (p->cpu_mark_at_ns != 0 && cpu - p->cpu_mark_ns >= SUP_HANG_CPU_NS) {
        *why = "given CPU without progress";
        return true;
    }
    if (state == 'S') {
        *why = "blocked";
        return true;
    }
    return false; /* runnable or in disk wait without the CPU: the machine is busy */
}

void sup_watch_hangs(struct sup *s)
{
    struct sup_members *m = &s->members;
    uint64_t now = util_now_ns();
    /* The watch itself was descheduled for a while: the nodes' silence proves nothing. */
    uint64_t hang_ns = sup_hang_ns(s->cfg);
    bool judge = m->watch_ns != 0 && now - m->watch_ns < hang_ns / 2;
    m->watch_ns = now;
    for (uint16_t i = 0; i < s->cfg->nodes; i++) {
        struct sup_proc *p = &m->procs[i];
        bool loaded = CMM_LOAD_SHARED(sup_node_shared(s, i)->loaded_incarnation) == p->incarnation;
        uint64_t hb = CMM_LOAD_SHARED(ipc_segment_ctl(s->env.seg, i)->heartbeat);
        bool moved = hb != p->heartbeat_seen;
        p->heartbeat_seen = hb;
        if (p->pid <= 0 || p->killing || p->gone || !loaded || moved || !judge ||
            p->progress_ns == 0) {
            p->progress_ns = now;
            p->cpu_mark_at_ns = 0;
            if (p->hung && moved) {
                p->hung = false;
                LOG(LOG_INFO, "node %u resumed", i);
                set_alive(s, i, true);
            }
            continue;
        }
        uint64_t silence = now - p->progress_ns;
        if (p->hung || silence < hang_ns / 2)
            continue;
        if (p->cpu_mark_at_ns == 0) {
            char state;
            if (proc_look(p->pid, &state, &p->cpu_mark_ns))
                p->cpu_mark_at_ns = now;
        }
        const char *why = NULL;
        if (silence > hang_ns && judge_silent(p, silence, &why)) {
            p->hung = true;
            m->hangs++;
            LOG(LOG_INFO, "node %u hung (%s for %llu ms)", i, why,
                (unsigned long long)(silence / 1000000));
            set_alive(s, i, false);
        }
    }
}

void sup_stop_nodes(struct sup *s)
{
    s->members.stopping = true;
    /* Left out of convergence: whatever it would publish now is behind. */
    for (uint16_t i = 0; i < s->cfg->nodes; i++) {
        struct sup_proc *p = &s->members.procs[i];
        if (p->pid > 0 && p->left_out) {
            p->hung_at_end = true;
            kill(p->pid, SIGKILL);
        }
    }
    CMM_STORE_SHARED(s->env.pool->stop, 1);
    for (uint16_t i = 0; i < s->cfg->nodes; i++)
        if (sup_net_local(s, i))
            ipc_doorbell_ring(&ipc_segment_ctl(s->env.seg, i)->bell);
    uint64_t deadline = util_now_ns() + SUP_STOP_NS;
    s->members.stop_restart = true;
    for (;;) {
        sup_reap(s);
        sup_restart_due(s);
        if (!any_running(s)) {
            s->members.stop_restart = false;
            return;
        }
        sup_watch_hangs(s); /* a node that only was slow moves again and stops */
        if (util_now_ns() > deadline)
            break;
        struct timespec ts = {0, SUP_POLL_NS};
        nanosleep(&ts, NULL);
    }
    s->members.stop_restart = false;
    /* Still hung after SUP_STOP_NS: it cannot stop; verification leaves it out (README).
     * Only local processes: a remote node is its own host's to stop. */
    for (uint16_t i = 0; i < s->cfg->nodes; i++) {
        struct sup_proc *p = &s->members.procs[i];
        p->hung_at_end |= p->pid > 0 && p->hung;
        p->did_not_stop = p->pid > 0 && !p->hung_at_end;
    }
    sup_kill_nodes(s);
}

void sup_kill_nodes(struct sup *s)
{
    for (uint16_t i = 0; i < s->cfg->nodes; i++)
        if (s->members.procs[i].pid > 0)
            kill(s->members.procs[i].pid, SIGKILL);
    for (uint16_t i = 0; i < s->cfg->nodes; i++) {
        if (s->members.procs[i].pid > 0) {
            waitpid(s->members.procs[i].pid, NULL, 0);
            s->members.procs[i].pid = 0;
        }
    }
}
