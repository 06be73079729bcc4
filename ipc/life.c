/* life.c: an endpoint's life as a robust lock; the protocol is described in life.h. */
#include "ipc/life.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>

#include <urcu/futex.h>
#include <urcu/system.h>
#include <urcu/uatomic.h>

#include "ipc/ipc_assert.h"

int ipc_life_init(struct ipc_life *l)
{
    IPC_ASSERT(l != NULL);
    memset(l, 0, sizeof(*l));
    pthread_mutexattr_t a;
    int rc = pthread_mutexattr_init(&a);
    if (rc == 0)
        rc = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    if (rc == 0)
        rc = pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    if (rc == 0)
        rc = pthread_mutex_init(&l->mutex, &a);
    pthread_mutexattr_destroy(&a);
    IPC_ASSERT(l->incarnation == 0); /* no holder yet */
    return -rc;
}

int ipc_life_hold(struct ipc_life *l, uint32_t incarnation)
{
    IPC_ASSERT(l != NULL);
    IPC_ASSERT(incarnation != 0); /* 0 means "none published" */
    int rc = pthread_mutex_lock(&l->mutex);
    if (rc == EOWNERDEAD) /* the last holder died and no watcher took the mutex since */
        rc = pthread_mutex_consistent(&l->mutex);
    if (rc != 0)
        return -rc;
    /* The mutex is ours before the incarnation shows: a watcher that sees this incarnation
     * and then blocks on the mutex is woken by our death, never by our start. */
    uatomic_set(&l->incarnation, incarnation);
    cmm_smp_mb();
    (void)futex_async((int32_t *)&l->incarnation, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
    return 0;
}

void ipc_life_nudge(struct ipc_life *l)
{
    IPC_ASSERT(l != NULL);
    (void)futex_async((int32_t *)&l->incarnation, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

/* CLOCK_REALTIME now + IPC_LIFE_LOOK_NS: pthread_mutex_timedlock's clock. */
static struct timespec look_deadline(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    uint64_t ns = (uint64_t)t.tv_nsec + IPC_LIFE_LOOK_NS;
    t.tv_sec += (time_t)(ns / 1000000000u);
    t.tv_nsec = (long)(ns % 1000000000u);
    IPC_ASSERT(t.tv_nsec >= 0 && t.tv_nsec < 1000000000L);
    return t;
}

int ipc_life_watch(struct ipc_life *l, uint32_t *seen, const int *quit)
{
    IPC_ASSERT(l != NULL);
    IPC_ASSERT(seen != NULL && quit != NULL);
    for (;;) {
        if (CMM_LOAD_SHARED(*quit))
            return 0;
        uint32_t inc = uatomic_read(&l->incarnation);
        if (inc == *seen) {
            /* No new holder yet: sleep until one publishes (or the look period ends). */
            const struct timespec ts = {.tv_sec = (time_t)(IPC_LIFE_LOOK_NS / 1000000000u),
                                        .tv_nsec = (long)(IPC_LIFE_LOOK_NS % 1000000000u)};
            (void)futex_async((int32_t *)&l->incarnation, FUTEX_WAIT, (int32_t)inc, &ts, NULL, 0);
            continue;
        }
        struct timespec deadline = look_deadline();
        int rc = pthread_mutex_timedlock(&l->mutex, &deadline);
        if (rc == ETIMEDOUT)
            continue; /* still alive: look at quit, then block again */
        if (rc != 0 && rc != EOWNERDEAD)
            return -rc;
        /* EOWNERDEAD: the holder died. Its incarnation is what it published last (read under
         * the mutex: no later holder can publish while we hold it). 0: the mutex was free, the
         * holder released it without dying; nothing to report for it. */
        uint32_t dead = uatomic_read(&l->incarnation);
        bool died = rc == EOWNERDEAD;
        if (died)
            rc = pthread_mutex_consistent(&l->mutex); /* only EINVAL: not ours, a bug */
        IPC_ASSERT(rc == 0);
        rc = pthread_mutex_unlock(&l->mutex); /* only EPERM: not ours, a bug */
        IPC_ASSERT(rc == 0);
        *seen = dead;
        if (died)
            return 1;
    }
}
