/* life.h: an endpoint's life as a lock that the kernel releases the moment the endpoint dies.
 *
 * Why: a parent learns of a child's death from SIGCHLD (or waitpid), which the kernel sends only
 * after it has torn down the child's address space; a robust mutex is released much earlier in
 * the same exit (the kernel walks the dying thread's robust list before it drops its memory).
 * bench/death measures both on a 2-core VM: medians of 0.2-0.3 ms after SIGKILL for the lock,
 * 1.5-1.8 ms for waitpid. A fail-over cannot start before the death is known, so this is the
 * earliest notice a watcher on the same machine can have.
 *
 * Protocol (holder = the endpoint process, single-threaded; watcher = one thread of another
 * process, e.g. the supervisor):
 *   creator: ipc_life_init, once, before any holder or watcher uses the block.
 *   holder:  ipc_life_hold(l, incarnation) once at start: takes the mutex, then publishes its
 *            incarnation (release) and wakes the watcher. It never releases the mutex: its
 *            death does (the mutex is robust: the next taker gets EOWNERDEAD).
 *   watcher: ipc_life_watch(l, &seen, quit) loops: it waits until an incarnation other than
 *            `seen` is published, then blocks on the mutex until that holder dies, marks the
 *            mutex consistent, releases it and reports the incarnation that died.
 * A holder that dies before it published its incarnation is not reported (its parent still
 * learns of it by SIGCHLD); nor is one whose successor took the mutex before the watcher did.
 * The notice is an early hint, never the only one.
 */
#ifndef IPC_LIFE_H
#define IPC_LIFE_H

#include <pthread.h>
#include <stdint.h>

struct ipc_life {
    pthread_mutex_t mutex; /* robust, process-shared: held by the running holder */
    uint32_t incarnation;  /* the holder's, published after it took the mutex; a futex word */
    uint32_t reserved0;
};

/* Creator: a robust, process-shared mutex, no holder. 0 or a negative errno. */
int ipc_life_init(struct ipc_life *l);
/* Holder, once per process start: takes the mutex (recovering it from a holder that died
 * before any watcher took it), then publishes `incarnation` (nonzero) and wakes the watcher.
 * 0 or a negative errno. */
int ipc_life_hold(struct ipc_life *l, uint32_t incarnation);
/* Watcher: returns 1 when the holder of an incarnation other than *seen died (*seen = that
 * incarnation), 0 once *quit is nonzero (looked at least every IPC_LIFE_LOOK_NS), or a
 * negative errno. */
int ipc_life_watch(struct ipc_life *l, uint32_t *seen, const int *quit);
/* Wakes a watcher waiting for the next incarnation, so that it sees *quit. */
void ipc_life_nudge(struct ipc_life *l);

/* How often a waiting watcher looks at its quit flag: a watcher of a live holder wakes this
 * often (a timed lock), 10 wake-ups per second per endpoint; quitting takes at most this. */
#define IPC_LIFE_LOOK_NS (100ull * 1000 * 1000)

#endif
