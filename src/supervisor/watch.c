/* watch.c: the early death notice. One thread per local node blocks on the node's life lock
 * (ipc/life.h), which the kernel releases while the node is still exiting, 1 to 2 ms before the
 * SIGCHLD that membership.c reaps. The thread only records which incarnation died and rings
 * the supervisor's doorbell; the main thread announces the death (sup_take_early_deaths), so the
 * process table and the segment's membership keep one writer. SIGCHLD still does everything
 * else (reap, bank counters, restart) and remains the notice for a death the lock misses. */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <time.h>

#include <urcu/system.h>
#include <urcu/uatomic.h>

#include "common/log.h"
#include "ipc/doorbell.h"
#include "ipc/life.h"
#include "ipc/segment.h"
#include "supervisor/sup.h"

/* While the watchers start, the supervisor looks this often whether all of them run. */
#define SUP_WATCH_START_POLL_NS (100l * 1000)
/* Stack per watcher: it calls the life-lock functions and nothing else. */
#define SUP_WATCH_STACK_BYTES (64u * 1024)

struct sup_watcher {
    struct sup_watch *w;
    struct ipc_life *life;
    struct ipc_doorbell *bell; /* the supervisor's */
    uint16_t node;
};

static struct sup_watcher watchers[CLI_NODES_MAX];

static void *watch_node(void *arg)
{
    struct sup_watcher *me = arg;
    uint32_t seen = 0;
    uatomic_inc(&me->w->started);
    for (;;) {
        int rc = ipc_life_watch(me->life, &seen, &me->w->quit);
        if (rc != 1) {
            if (rc < 0) /* SIGCHLD remains the notice for this node */
                LOG(LOG_ERROR, "watch node %u: %s", me->node, strerror(-rc));
            return NULL;
        }
        /* The incarnation before the bit: pairs with the xchg in sup_take_early_deaths. */
        uatomic_set(&me->w->dead_incarnation[me->node], seen);
        cmm_smp_wmb();
        uatomic_or(&me->w->dead_mask, 1ull << me->node);
        ipc_doorbell_ring(me->bell);
    }
}

int sup_watch_start(struct sup *s)
{
    struct sup_watch *w = &s->members.watch;
    pthread_attr_t attr;
    sigset_t all, old;
    if (pthread_attr_init(&attr) != 0)
        return -ENOMEM;
    pthread_attr_setstacksize(&attr, SUP_WATCH_STACK_BYTES);
    /* Signals stay with the main thread: its waits are the ones a signal must cut short. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = 0;
    for (uint16_t i = 0; i < s->cfg->nodes && rc == 0; i++) {
        if (!sup_net_local(s, i))
            continue;
        watchers[i] =
            (struct sup_watcher){.w = w,
                                 .life = &ipc_segment_ctl(s->env.seg, i)->life,
                                 .bell = &ipc_segment_ctl(s->env.seg, s->cfg->nodes)->bell,
                                 .node = i};
        rc = pthread_create(&w->threads[i], &attr, watch_node, &watchers[i]);
        w->running[i] = rc == 0;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        fprintf(stderr, "paxos-shm: start a death watcher: %s\n", strerror(rc));
        return -rc;
    }
    /* Every process the supervisor forks later (nodes, the gateway) must not inherit a lock a
     * thread held while it started (a sanitizer's allocator deadlocked a forked gateway so):
     * the supervisor forks only once every watcher runs, and a running watcher takes no lock
     * but the life locks. */
    uint32_t created = 0;
    for (uint16_t i = 0; i < s->cfg->nodes; i++)
        created += w->running[i];
    while (uatomic_read(&w->started) < created) {
        const struct timespec ts = {0, SUP_WATCH_START_POLL_NS};
        nanosleep(&ts, NULL);
    }
    return 0;
}

void sup_watch_stop(struct sup *s)
{
    struct sup_watch *w = &s->members.watch;
    CMM_STORE_SHARED(w->quit, 1);
    for (uint16_t i = 0; i < s->cfg->nodes; i++)
        if (w->running[i])
            ipc_life_nudge(watchers[i].life);
    for (uint16_t i = 0; i < s->cfg->nodes; i++) {
        if (w->running[i])
            pthread_join(w->threads[i], NULL);
        w->running[i] = false;
    }
}
