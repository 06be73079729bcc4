/* ipc_test.h: helpers shared by the ipc unit tests (header-only, static functions).
 * Test messages are IPC_SLOT_BYTES long and carry a stream id, a sequence number, a payload
 * derived from both, and a checksum over everything else, so a consumer can tell a lost,
 * duplicated, reordered or torn message. Children never call cmocka asserts (a failing assert
 * would longjmp into the child's copy of the test runner); they _exit with a status instead. */
#ifndef IPC_TEST_H
#define IPC_TEST_H

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <urcu/arch.h>
#include <urcu/uatomic.h>

#include "ipc/ring.h"
#include "paxos/px_mix.h"

struct ipc_test_msg {
    uint64_t stream;
    uint64_t seq;
    uint64_t payload[5];
    uint64_t sum;
};
_Static_assert(sizeof(struct ipc_test_msg) == IPC_SLOT_BYTES, "one slot");

/* A stateless hash: the splitmix64 number that follows state x (px_mix.h, the project's one
 * definition; x is a copy, nothing advances). */
static inline uint64_t ipc_test_mix(uint64_t x)
{
    return px_splitmix64(&x);
}

static inline uint64_t ipc_test_sum(const struct ipc_test_msg *m)
{
    uint64_t h = ipc_test_mix(m->stream) ^ ipc_test_mix(m->seq + 1);
    for (int i = 0; i < 5; i++)
        h = ipc_test_mix(h ^ m->payload[i]);
    return h;
}

static inline void ipc_test_fill(struct ipc_test_msg *m, uint64_t stream, uint64_t seq)
{
    m->stream = stream;
    m->seq = seq;
    for (int i = 0; i < 5; i++)
        m->payload[i] = ipc_test_mix(seq * 8 + (uint64_t)i + stream);
    m->sum = ipc_test_sum(m);
}

/* True if m is a whole message (checksum and payload consistent with its stream and seq). */
static inline bool ipc_test_whole(const struct ipc_test_msg *m)
{
    struct ipc_test_msg want;
    ipc_test_fill(&want, m->stream, m->seq);
    return memcmp(&want, m, sizeof(want)) == 0;
}

/* A MAP_SHARED anonymous mapping, inherited by fork; page-aligned, so line-aligned. */
static inline void *ipc_test_shared(size_t bytes)
{
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        perror("mmap");
        abort();
    }
    return p;
}

/* Forks a child that dies with its parent (so a killed test leaves no spinning process) and
 * runs fn(arg); the child's exit status is fn's return value. Returns the child's pid. */
static inline pid_t ipc_test_fork(int (*fn)(void *), void *arg)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        abort();
    }
    if (pid == 0) {
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
            _exit(90);
        _exit(fn(arg));
    }
    return pid;
}

static inline int ipc_test_status(int status)
{
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    return WIFSIGNALED(status) ? 100 + WTERMSIG(status) : 99;
}

/* Waits for pid; returns its exit status, or 100 + signal number if it was killed. */
static inline int ipc_test_wait(pid_t pid)
{
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            perror("waitpid");
            abort();
        }
    }
    return ipc_test_status(status);
}

/* Waits for the n children in pids; as soon as one fails, kills the others (they may be
 * spinning on the failed one forever). Returns 0, or the first failing child's status. */
static inline int ipc_test_wait_all(const pid_t *pids, int n)
{
    enum { WAIT_ALL_MAX = 64 };
    bool done[WAIT_ALL_MAX] = {false};
    int first_failure = 0, left = n;
    if (n > WAIT_ALL_MAX)
        abort();
    while (left > 0) {
        bool reaped = false;
        for (int i = 0; i < n; i++) {
            int status = 0;
            if (done[i] || waitpid(pids[i], &status, WNOHANG) != pids[i])
                continue;
            done[i] = true;
            reaped = true;
            left--;
            int rc = ipc_test_status(status);
            if (rc != 0 && first_failure == 0) {
                first_failure = rc;
                fprintf(stderr, "child %d failed with status %d\n", (int)pids[i], rc);
                for (int j = 0; j < n; j++) {
                    if (!done[j])
                        (void)kill(pids[j], SIGKILL);
                }
            }
        }
        if (!reaped)
            usleep(1000);
    }
    return first_failure;
}

static inline uint64_t ipc_test_now_ns(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        abort();
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Spin-then-yield backoff for busy loops: on 2 shared cores a pure spin would starve the
 * process it waits for. */
static inline void ipc_test_backoff(unsigned *spins)
{
    if (++*spins < 64) {
        caa_cpu_relax();
    } else {
        *spins = 0;
        sched_yield();
    }
}

#endif
