#include "bare.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <urcu/system.h>

#include "common/hist.h"
#include "common/util.h"
#include "ipc/bcast.h"
#include "ipc/doorbell.h"
#include "ipc/ring.h"
#include "ipc/segment.h"

enum { BARE_ACCEPT = 1, BARE_COMMIT, BARE_ACCEPTED, BARE_STOP };

struct bare_msg {
    uint32_t type;
    uint32_t from;
    uint64_t instance; /* ACCEPT: the round; ACCEPTED: highest received; COMMIT: decided */
    uint64_t commit;   /* ACCEPT: piggybacked decided index */
    unsigned char pad[IPC_SLOT_BYTES - 24];
};
_Static_assert(sizeof(struct bare_msg) == IPC_SLOT_BYTES, "one slot");

/* Batch sizes: the same order as the node loop's batch. */
#define BARE_BATCH_MAX 512
/* Rounds started in one batch: a whole window (the largest the CLI takes). */
#define BARE_SEND_MAX 1024
#define BARE_WAIT_NS  1000000ull

static void wake_followers(struct ipc_segment *seg, uint32_t nodes)
{
    for (uint32_t p = 1; p < nodes; p++)
        ipc_doorbell_ring(&ipc_segment_ctl(seg, p)->bell);
}

static void follower(struct ipc_segment *seg, uint32_t self)
{
    static struct bare_msg in[BARE_BATCH_MAX];
    struct ipc_bcast *b = ipc_segment_bcast(seg, 0);
    struct ipc_ring *up = ipc_segment_ring(seg, self, 0);
    struct ipc_doorbell *bell = &ipc_segment_ctl(seg, self)->bell;
    uint64_t hi = 0, committed = 0;
    for (;;) {
        struct ipc_bcast_read_result r = ipc_bcast_read(b, self, in, BARE_BATCH_MAX);
        if (r.lagged)
            _exit(3); /* cannot happen: nobody detaches here */
        if (r.n == 0) {
            ipc_doorbell_prepare(bell);
            if (!ipc_bcast_empty(b, self)) {
                ipc_doorbell_cancel(bell);
                continue;
            }
            ipc_doorbell_wait(bell, BARE_WAIT_NS);
            continue;
        }
        for (uint32_t i = 0; i < r.n; i++) {
            if (in[i].type == BARE_STOP)
                _exit(0);
            if (in[i].type == BARE_ACCEPT) {
                hi = in[i].instance;
                committed = in[i].commit;
            } else if (in[i].type == BARE_COMMIT) {
                committed = in[i].instance;
            }
        }
        (void)committed;
        struct bare_msg ack = {.type = BARE_ACCEPTED, .from = self, .instance = hi};
        while (ipc_ring_push(up, &ack, 1) == 0)
            ipc_doorbell_ring(&ipc_segment_ctl(seg, 0)->bell);
        ipc_doorbell_ring(&ipc_segment_ctl(seg, 0)->bell);
    }
}

/* The decided index: the highest instance acknowledged by a quorum (the leader counts). */
static uint64_t quorum_index(const uint64_t *acked, uint32_t nodes, uint64_t sent)
{
    uint32_t need = nodes / 2 + 1 - 1; /* followers needed besides the leader */
    if (need == 0)
        return sent;
    uint64_t best = 0;
    for (uint32_t i = 1; i < nodes; i++) {
        uint32_t count = 0;
        for (uint32_t j = 1; j < nodes; j++)
            count += acked[j] >= acked[i];
        if (count >= need && acked[i] > best)
            best = acked[i];
    }
    return best;
}

static void leader(struct ipc_segment *seg, uint32_t nodes, uint32_t window, uint64_t rounds,
                   struct bench_pool_report *out)
{
    static struct bare_msg batch[BARE_SEND_MAX], in[BARE_BATCH_MAX];
    struct ipc_bcast *b = ipc_segment_bcast(seg, 0);
    struct ipc_doorbell *bell = &ipc_segment_ctl(seg, 0)->bell;
    uint64_t acked[64] = {0};
    uint64_t *sent_ns = calloc(window, sizeof(uint64_t));
    struct hist *h = calloc(1, sizeof(*h));
    if (sent_ns == NULL || h == NULL)
        _exit(3);
    uint64_t next = 1, decided = 0, commit_sent = 0, msgs = 0;
    uint64_t start = util_now_ns();
    while (decided < rounds) {
        /* Everything the window allows leaves as one batch (one wake of each follower), with
         * one clock read: the messages leave together. */
        uint32_t n = 0;
        uint64_t now = 0;
        while (next <= rounds && next - decided <= window && n < BARE_SEND_MAX) {
            if (n == 0)
                now = util_now_ns();
            batch[n] = (struct bare_msg){.type = BARE_ACCEPT, .instance = next, .commit = decided};
            sent_ns[next % window] = now;
            next++;
            n++;
        }
        if (n == 0 && commit_sent < decided) {
            batch[n++] = (struct bare_msg){.type = BARE_COMMIT, .instance = decided};
        }
        if (n > 0) {
            commit_sent = decided;
            uint32_t done = 0;
            while (done < n) {
                done += ipc_bcast_publish(b, batch + done, n - done, 0);
                wake_followers(seg, nodes);
            }
            msgs += n;
        }
        bool got = false;
        for (uint32_t f = 1; f < nodes; f++) {
            uint32_t k = ipc_ring_pop(ipc_segment_ring(seg, f, 0), in, BARE_BATCH_MAX);
            for (uint32_t i = 0; i < k; i++)
                if (in[i].instance > acked[f])
                    acked[f] = in[i].instance;
            msgs += k;
            got |= k > 0;
        }
        uint64_t q = quorum_index(acked, nodes, next - 1);
        uint64_t t = util_now_ns();
        for (uint64_t i = decided + 1; i <= q; i++)
            hist_add(h, t - sent_ns[i % window]);
        if (q > decided)
            decided = q;
        if (!got && n == 0) {
            ipc_doorbell_prepare(bell);
            bool any = false;
            for (uint32_t f = 1; f < nodes && !any; f++)
                any = !ipc_ring_empty(ipc_segment_ring(seg, f, 0));
            if (any)
                ipc_doorbell_cancel(bell);
            else
                ipc_doorbell_wait(bell, BARE_WAIT_NS);
        }
    }
    double secs = (double)(util_now_ns() - start) / 1e9;
    struct bare_msg stop = {.type = BARE_STOP};
    while (nodes > 1 && ipc_bcast_publish(b, &stop, 1, 0) == 0)
        wake_followers(seg, nodes);
    wake_followers(seg, nodes);
    out->rounds_per_s = (double)rounds / secs;
    out->latency_p50 = (double)hist_quantile(h, 0.5) / 1000.0;
    out->latency_p99 = (double)hist_quantile(h, 0.99) / 1000.0;
    out->latency_p999 = (double)hist_quantile(h, 0.999) / 1000.0;
    out->msgs = msgs;
    free(sent_ns);
    free(h);
}

int bench_pool_run(struct ipc_segment *seg, const struct bench_pool *p, struct bare_result *out)
{
    struct bench_pool_report *sh = ipc_segment_user(seg, 0);
    struct rusage before, after;
    getrusage(RUSAGE_CHILDREN, &before);
    pid_t pids[64] = {0};
    int failed = 0;
    for (uint32_t i = 0; i < p->nodes && i < 64; i++) {
        fflush(NULL);
        pids[i] = fork();
        if (pids[i] < 0) {
            failed = 1;
            break;
        }
        if (pids[i] == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (i == 0)
                p->leader(seg, p->nodes, p->window, p->rounds, sh);
            else
                p->follower(seg, i);
            _exit(0);
        }
    }
    for (uint32_t i = 0; i < p->nodes && i < 64; i++) {
        int st = 0;
        if (pids[i] > 0 && (waitpid(pids[i], &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st)))
            failed = 1;
    }
    getrusage(RUSAGE_CHILDREN, &after);
    if (failed)
        return -EIO;
    out->rounds_per_s = sh->rounds_per_s;
    out->latency_us_p50 = sh->latency_p50;
    out->latency_us_p99 = sh->latency_p99;
    out->latency_us_p999 = sh->latency_p999;
    out->msgs_per_round = (double)sh->msgs / (double)p->rounds;
    out->cpu_s = (double)(after.ru_utime.tv_sec - before.ru_utime.tv_sec) +
                 (double)(after.ru_stime.tv_sec - before.ru_stime.tv_sec) +
                 (double)(after.ru_utime.tv_usec - before.ru_utime.tv_usec) / 1e6 +
                 (double)(after.ru_stime.tv_usec - before.ru_stime.tv_usec) / 1e6;
    return 0;
}

int bare_run(uint32_t nodes, uint32_t window, uint64_t rounds, uint32_t ring_slots,
             struct bare_result *out)
{
    char name[IPC_SEGMENT_NAME_MAX], err[256];
    snprintf(name, sizeof(name), "/paxos-shm-%d-bare", (int)getpid());
    struct ipc_layout l = {
        .endpoints = nodes < 2 ? 2 : nodes,
        .ring_slots = ring_slots,
        .bcast_slots = ring_slots,
        .bcast_producers = nodes < 2 ? 2 : nodes,
        .user_bytes = 64 * ((sizeof(struct bench_pool_report) + 63) / 64),
    };
    struct ipc_segment *seg = NULL;
    int rc = ipc_segment_create(name, &l, &seg, err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "throughput: bare ceiling: %s\n", err);
        return rc;
    }
    const struct bench_pool p = {
        .nodes = nodes, .window = window, .rounds = rounds, .leader = leader, .follower = follower};
    rc = bench_pool_run(seg, &p, out);
    ipc_segment_close(seg);
    ipc_segment_unlink(name);
    if (rc != 0)
        fprintf(stderr, "throughput: bare ceiling with %u nodes failed\n", nodes);
    return rc;
}
