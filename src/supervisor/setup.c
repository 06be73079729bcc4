/* setup.c: what a run sets up and tears down: stale segments -> data directory and registry ->
 * segment and the supervisor's transport; signal handlers; teardown in reverse order on every
 * exit path (normal, error, a stop signal: common/signals.h). */
#define _FILE_OFFSET_BITS 64
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <urcu/system.h>

#include "common/log.h"
#include "common/pool.h"
#include "common/signals.h"
#include "ipc/segment.h"
#include "node/node.h"
#include "node/transport.h"
#include "store/store.h"
#include "supervisor/client.h"
#include "supervisor/sup.h"

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

int sup_signal(void)
{
    return got_signal;
}

int sup_signal_exit(void)
{
    return got_signal ? EXIT_SIGNAL_BASE + got_signal : 0;
}

bool sup_take_sigchld(void)
{
    if (!got_sigchld)
        return false;
    got_sigchld = 0;
    return true;
}

/* The dispositions sup_install_signals replaced, for sup_restore_signals. */
static struct sigaction saved_actions[NSIG];
static bool saved_valid[NSIG];

static void save_action(int sig)
{
    saved_valid[sig] = sigaction(sig, NULL, &saved_actions[sig]) == 0;
}

void sup_restore_signals(void)
{
    for (int sig = 1; sig < NSIG; sig++)
        if (saved_valid[sig]) {
            sigaction(sig, &saved_actions[sig], NULL);
            saved_valid[sig] = false;
        }
    got_signal = 0;
    got_sigchld = 0;
}

void sup_install_signals(void)
{
    sigset_t keep;
    px_stop_signals(&keep);
    for (int sig = 1; sig < NSIG; sig++)
        if (sigismember(&keep, sig) == 1 || sig == SIGCHLD || sig == SIGXFSZ || sig == SIGPIPE)
            save_action(sig);
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_signal; /* no SA_RESTART: a signal cuts a doorbell wait short */
    sigset_t stop;
    px_stop_signals(&stop);
    for (int sig = 1; sig < NSIG; sig++)
        if (sigismember(&stop, sig) == 1)
            sigaction(sig, &sa, NULL);
    sa.sa_handler = on_sigchld;
    sa.sa_flags = SA_NOCLDSTOP;
    sigaction(SIGCHLD, &sa, NULL);
    signal(SIGXFSZ, SIG_IGN); /* a file-size limit is a clear storage error, not a death */
    signal(SIGPIPE, SIG_IGN); /* a closed stdout or pipe: the write fails and says so */
}

struct pool_node_shared *sup_node_shared(const struct sup *s, uint16_t i)
{
    PX_ASSERT(i < s->cfg->nodes);
    return ipc_segment_user(s->env.seg, i);
}

bool sup_has_role(const struct cli_config *c, uint16_t i, unsigned role)
{
    return (cli_roles(c, i) & role) != 0;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* --data-dir DIR must be an existing, writable directory. */
static int check_data_dir(const char *dir)
{
    struct stat st;
    if (stat(dir, &st) != 0) {
        fprintf(stderr, "paxos-shm: --data-dir %s: %s\n", dir, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        fprintf(stderr, "paxos-shm: --data-dir %s: not a directory\n", dir);
        return -1;
    }
    if (access(dir, W_OK | X_OK) != 0) {
        fprintf(stderr, "paxos-shm: --data-dir %s: %s\n", dir, strerror(errno));
        return -1;
    }
    return 0;
}

static int make_fresh_dir(struct sup_env *e)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(e->data_dir, sizeof(e->data_dir), "%s/paxos-shm-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    if (mkdtemp(e->data_dir) == NULL) {
        fprintf(stderr, "paxos-shm: cannot create a data directory %s: %s\n", e->data_dir,
                strerror(errno));
        e->data_dir[0] = '\0';
        return -1;
    }
    e->data_dir_fresh = true;
    return 0;
}

/* One pool per data dir: DIR/lock is flock()ed for the whole run and holds the pid of its
 * holder. flock is per open file description and dies with the process that holds it (a
 * SIGKILLed supervisor frees it at once); the nodes, forked from the supervisor, close their
 * copy (sup_lock_close_in_child) so that a node that outlives its supervisor never holds it. A
 * second supervisor is refused at once, naming the holder. */
static int lock_data_dir(struct sup_env *e)
{
    char path[PATH_MAX + 8];
    snprintf(path, sizeof(path), "%s/lock", e->data_dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) {
        fprintf(stderr, "paxos-shm: data dir %s cannot hold the pool's files: creating %s: %s\n",
                e->data_dir, path, strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int why = errno;
        char pid[32] = "";
        ssize_t got = pread(fd, pid, sizeof(pid) - 1, 0);
        pid[got > 0 ? got : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        if (why == EWOULDBLOCK)
            fprintf(stderr, "paxos-shm: --data-dir %s is in use by process %s (it holds %s)\n",
                    e->data_dir, pid[0] ? pid : "(unknown)", path);
        else
            fprintf(stderr, "paxos-shm: %s: lock: %s\n", path, strerror(why));
        close(fd);
        return -1;
    }
    char pid[32];
    int n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n) {
        fprintf(stderr, "paxos-shm: %s: %s\n", path, strerror(errno));
        close(fd);
        return -1;
    }
    e->lock_fd = fd;
    return 0;
}

void sup_lock_close_in_child(struct sup *s)
{
    if (s->env.lock_fd >= 0)
        close(s->env.lock_fd);
}

int sup_setup_data_dir(struct sup *s)
{
    const struct cli_config *c = s->cfg;
    struct sup_env *e = &s->env;
    if (c->store != CLI_STORE_SQLITE)
        return 0;
    if (c->data_dir) {
        if (check_data_dir(c->data_dir) != 0)
            return -1;
        snprintf(e->data_dir, sizeof(e->data_dir), "%s", c->data_dir);
    } else if (make_fresh_dir(e) != 0) {
        return -1;
    }
    if (lock_data_dir(e) != 0)
        return -1;
    char err[STORE_ERR_MAX] = "";
    /* Before any store is opened: a link would make a store write outside the directory. */
    if (store_sqlite_check_files(e->data_dir, (uint16_t)c->nodes, err, sizeof(err)) != 0) {
        fprintf(stderr, "paxos-shm: %s\n", err);
        return -1;
    }
    enum store_sync sync = c->sync == CLI_SYNC_FULL ? STORE_SYNC_FULL : STORE_SYNC_NORMAL;
    if (store_registry_open(e->data_dir, (uint16_t)c->nodes, sync, &e->registry, err,
                            sizeof(err))) {
        fprintf(stderr, "paxos-shm: %s\n", err);
        return -1;
    }
    sup_members_load(s);
    return sup_identity_check(s);
}

static int setup_transport(struct sup *s)
{
    const struct cli_config *c = s->cfg;
    struct sup_env *e = &s->env;
    if (c->transport == CLI_TRANSPORT_SOCKET) {
        int rc = transport_sock_mesh_create((uint16_t)(c->nodes + 1), &e->mesh);
        if (rc == 0)
            rc = transport_sock_create(e->mesh, e->seg, (uint16_t)c->nodes, (uint16_t)c->nodes,
                                       &e->t);
        if (rc != 0)
            fprintf(stderr, "paxos-shm: socket transport: %s\n", strerror(-rc));
        return rc;
    }
    return transport_shm_create(e->seg, (uint16_t)c->nodes, (uint16_t)c->nodes, &e->t);
}

int sup_setup_segment(struct sup *s)
{
    const struct cli_config *c = s->cfg;
    struct sup_env *e = &s->env;
    unsigned stale = 0;
    if (ipc_segment_clean_stale(&stale) == 0 && stale > 0)
        LOG(LOG_INFO, "removed %u stale segment(s) of dead supervisors", stale);
    ipc_segment_name(e->seg_name, sizeof(e->seg_name), getpid());
    uint64_t user =
        node_user_bytes(c->store == CLI_STORE_SHM ? STORE_SHM : STORE_SQLITE, c->command_bytes,
                        c->window, (uint16_t)c->nodes, c->sm_state_max);
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
    if (ipc_segment_create(e->seg_name, &l, &e->seg, err, sizeof(err)) != 0) {
        fprintf(stderr, "paxos-shm: %s\n", err);
        e->seg_name[0] = '\0';
        return -1;
    }
    e->pool = ipc_segment_user(e->seg, (uint32_t)c->nodes);
    CMM_STORE_SHARED(ipc_segment_ctl(e->seg, c->nodes)->alive, 1u);
    CMM_STORE_SHARED(ipc_segment_ctl(e->seg, c->nodes)->pid, getpid());
    return setup_transport(s);
}

void sup_teardown(struct sup *s)
{
    struct sup_env *e = &s->env;
    sup_net_teardown(s);
    sup_kill_nodes(s);
    if (e->seg)
        sup_watch_stop(s); /* the nodes are gone: every watcher returns within IPC_LIFE_LOOK_NS */
    if (e->t)
        e->t->ops->destroy(e->t);
    transport_sock_mesh_destroy(e->mesh);
    if (e->seg)
        ipc_segment_close(e->seg);
    if (e->seg_name[0])
        ipc_segment_unlink(e->seg_name);
    if (e->registry) {
        sup_identity_note(s);
        store_registry_close(e->registry);
        e->registry = NULL;
    }
    if (e->discard_registry)
        store_registry_remove(e->data_dir);
    if (e->lock_fd >= 0)
        close(e->lock_fd); /* the nodes are gone */
    e->lock_fd = -1;
    if (e->data_dir_fresh && !s->cfg->keep_data)
        nftw(e->data_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    else if (e->data_dir_fresh && !s->cfg->quiet)
        fprintf(stderr, "paxos-shm: data kept in %s\n", e->data_dir);
    sup_chaos_free(s);
    sup_failover_free(s);
    free(s->drive.client);
    free(s->drive.stream.buf);
}
