/* bench/death: how soon a parent can know that a child died. A child takes a life lock
 * (ipc/life.h) as every node does, touches some memory and sleeps; the parent SIGKILLs it and
 * times (1) the life lock's release as a watcher sees it (ipc_life_watch) and (2) waitpid's
 * return (the SIGCHLD path). Prints the median and the range of each over --kills runs. A
 * program, not a test: it prints figures and asserts no timing. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_util.h"
#include "common/util.h"
#include "ipc/life.h"

/* Shared memory the child writes before it is killed: about what a node touches of the
 * segment. */
#define DEATH_CHILD_BYTES (6u << 20)
#define DEATH_KILLS_MAX   1000u

static double median_of(double *v, unsigned n, double *lo, double *hi)
{
    qsort(v, n, sizeof(double), bench_cmp_double);
    *lo = v[0];
    *hi = v[n - 1];
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv)
{
    unsigned kills = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 10) : 20;
    if (kills < 1 || kills > DEATH_KILLS_MAX) {
        fprintf(stderr, "usage: death [KILLS 1..%u]\n", DEATH_KILLS_MAX);
        return 2;
    }
    struct ipc_life *l =
        mmap(NULL, sizeof(*l), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (l == MAP_FAILED || ipc_life_init(l) != 0) {
        fprintf(stderr, "death: shared life lock: %s\n", strerror(errno));
        return 1;
    }
    static double lock_us[DEATH_KILLS_MAX], reap_us[DEATH_KILLS_MAX];
    uint32_t seen = 0;
    const int quit = 0;
    for (unsigned k = 0; k < kills; k++) {
        pid_t pid = fork();
        if (pid < 0) {
            fprintf(stderr, "death: fork: %s\n", strerror(errno));
            return 1;
        }
        if (pid == 0) {
            if (ipc_life_hold(l, k + 1) != 0)
                _exit(2);
            char *mem = mmap(NULL, DEATH_CHILD_BYTES, PROT_READ | PROT_WRITE,
                             MAP_SHARED | MAP_ANONYMOUS, -1, 0);
            if (mem != MAP_FAILED)
                memset(mem, 1, DEATH_CHILD_BYTES);
            for (;;)
                pause();
        }
        while (__atomic_load_n(&l->incarnation, __ATOMIC_ACQUIRE) != k + 1)
            usleep(100);
        usleep(20000); /* the child has settled in its sleep */
        uint64_t t0 = util_now_ns();
        kill(pid, SIGKILL);
        if (ipc_life_watch(l, &seen, &quit) != 1 || seen != k + 1) {
            fprintf(stderr, "death: the life lock did not report kill %u\n", k + 1);
            return 1;
        }
        uint64_t t1 = util_now_ns();
        waitpid(pid, NULL, 0);
        uint64_t t2 = util_now_ns();
        lock_us[k] = (double)(t1 - t0) / 1e3;
        reap_us[k] = (double)(t2 - t0) / 1e3;
    }
    double lo, hi, m = median_of(lock_us, kills, &lo, &hi);
    printf("SIGKILL -> life lock released: median %7.1f us (%.1f .. %.1f), %u kills\n", m, lo, hi,
           kills);
    m = median_of(reap_us, kills, &lo, &hi);
    printf("SIGKILL -> waitpid returns:    median %7.1f us (%.1f .. %.1f)\n", m, lo, hi);
    return 0;
}
