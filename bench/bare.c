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
#include "node/payload.h"

enum { BARE_ACCEPT = 1, BARE_COMMIT, BARE_ACCEPTED, BARE_STOP, BARE_DATA };

struct bare_msg {
    uint32_t type;
    uint32_t from;
    uint64_t instance; /* ACCEPT: the round; ACCEPTED: highest received; COMMIT: decided;
                          DATA: the round whose command it carries */
    uint64_t commit;   /* ACCEPT: piggybacked decided index; DATA: the chunk's index */
    unsigned char pad[IPC_SLOT_BYTES - 24]; /* DATA: PAYLOAD_CHUNK_BYTES of the command */
};
_Static_assert(sizeof(struct bare_msg) == IPC_SLOT_BYTES, "one slot");
_Static_assert(IPC_SLOT_BYTES - 24 >= PAYLOAD_CHUNK_BYTES, "a chunk fits a slot");

/* Batch sizes: the same order as the node loop's batch. */
#define BARE_BATCH_MAX 512
/* Rounds started in one batch: a whole window (the largest the CLI takes). */
#define BARE_SEND_MAX 1024
#define BARE_WAIT_NS  1000000ull
/* Slots one batch of the leader publishes at most when rounds carry DATA slots. */
#define BARE_DATA_BATCH_MAX 2048

/* DATA slots per round (0: 8-byte commands, none), set by bare_run before the pool forks. */
static uint32_t bare_chunks;

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
        bool answer = false;
        for (uint32_t i = 0; i < r.n; i++) {
            if (in[i].type == BARE_STOP)
                _exit(0);
            if (in[i].type == BARE_ACCEPT) {
                hi = in[i].instance;
                committed = in[i].commit;
            } else if (in[i].type == BARE_COMMIT) {
                committed = in[i].instance;
            }
            answer |= in[i].type != BARE_DATA;
        }
        (void)committed;
        if (!answer)
            continue; /* DATA slots alone: nothing to acknowledge yet */
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

/* The client of rounds with long commands: streams each round's DATA slots to the leader, as
 * fast as its ring takes them (the leader takes them only within the window). */
static void client(struct ipc_segment *seg, uint32_t self, uint64_t rounds)
{
    static struct bare_msg out[BARE_BATCH_MAX];
    static const unsigned char bytes[PAYLOAD_CHUNK_BYTES] = {0x5a};
    struct ipc_ring *up = ipc_segment_ring(seg, self, 0);
    struct ipc_doorbell *bell = &ipc_segment_ctl(seg, self)->bell;
    struct ipc_doorbell *to = &ipc_segment_ctl(seg, 0)->bell;
    uint32_t cap = ipc_ring_capacity(up), chunk = 0;
    uint64_t round = 1;
    while (round <= rounds) {
        uint32_t n = 0;
        while (n < BARE_BATCH_MAX && round <= rounds) {
            out[n].type = BARE_DATA;
            out[n].from = self;
            out[n].instance = round;
            out[n].commit = chunk;
            memcpy(out[n].pad, bytes, PAYLOAD_CHUNK_BYTES);
            n++;
            if (++chunk == bare_chunks) {
                chunk = 0;
                round++;
            }
        }
        uint32_t done = 0;
        while (done < n) {
            uint32_t k = ipc_ring_push(up, out + done, n - done);
            done += k;
            if (k > 0)
                ipc_doorbell_ring(to);
            if (done < n) { /* full: sleep until the leader takes some */
                ipc_doorbell_prepare(bell);
                if (ipc_ring_count(up) < cap)
                    ipc_doorbell_cancel(bell);
                else
                    ipc_doorbell_wait(bell, BARE_WAIT_NS);
            }
        }
    }
}

static void leader(struct ipc_segment *seg, uint32_t nodes, uint32_t window, uint64_t rounds,
                   struct bench_pool_report *out)
{
    static struct bare_msg batch[BARE_DATA_BATCH_MAX], in[BARE_BATCH_MAX];
    struct ipc_bcast *b = ipc_segment_bcast(seg, 0);
    struct ipc_doorbell *bell = &ipc_segment_ctl(seg, 0)->bell;
    /* Rounds with long commands: the client's DATA slots come in on its ring (endpoint
     * `nodes`) and go out on the broadcast ring ahead of their round's ACCEPT. */
    struct ipc_ring *from_client = bare_chunks ? ipc_segment_ring(seg, nodes, 0) : NULL;
    struct ipc_doorbell *client_bell = bare_chunks ? &ipc_segment_ctl(seg, nodes)->bell : NULL;
    uint32_t have = 0; /* DATA slots of round `next` taken and sent on */
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
        uint32_t n = 0, accepts = 0, took = 0;
        uint64_t now = 0;
        uint32_t max = bare_chunks ? BARE_DATA_BATCH_MAX : BARE_SEND_MAX;
        while (next <= rounds && next - decided <= window && n < max) {
            if (have < bare_chunks) {
                uint32_t want = bare_chunks - have, room = max - 1 - n; /* 1 for the ACCEPT */
                uint32_t k = ipc_ring_pop(from_client, batch + n, want < room ? want : room);
                n += k;
                have += k;
                took += k;
                if (have < bare_chunks)
                    break; /* the client's ring is empty for now, or the batch is full */
            }
            if (accepts == 0)
                now = util_now_ns();
            batch[n++] =
                (struct bare_msg){.type = BARE_ACCEPT, .instance = next, .commit = decided};
            sent_ns[next % window] = now;
            next++;
            have = 0;
            accepts++;
        }
        if (took > 0)
            ipc_doorbell_ring(client_bell);
        /* The COMMIT alone when no ACCEPT carries it, never inside a stream. */
        if (accepts == 0 && have == 0 && commit_sent < decided)
            batch[n++] = (struct bare_msg){.type = BARE_COMMIT, .instance = decided};
        if (n > 0) {
            if (accepts > 0 || have == 0)
                commit_sent = decided;
            uint32_t done = 0;
            while (done < n) {
                done += ipc_bcast_publish(b, batch + done, n - done, 0);
                wake_followers(seg, nodes);
            }
            msgs += n + took; /* what went out, and the DATA slots that came in */
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
            if (!any && from_client && next <= rounds && next - decided <= window)
                any = !ipc_ring_empty(from_client);
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
    pid_t pids[65] = {0};
    uint32_t procs = p->nodes + (p->client ? 1 : 0);
    int failed = 0;
    for (uint32_t i = 0; i < procs && i < 65; i++) {
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
            else if (i == p->nodes)
                p->client(seg, i, p->rounds);
            else
                p->follower(seg, i);
            _exit(0);
        }
    }
    for (uint32_t i = 0; i < procs && i < 65; i++) {
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

uint32_t bare_chunks_for(uint32_t command_bytes)
{
    if (command_bytes <= CMD_INLINE_BYTES)
        return 0;
    return (payload_stream_len(command_bytes) + PAYLOAD_CHUNK_BYTES - 1) / PAYLOAD_CHUNK_BYTES;
}

int bare_run(uint32_t nodes, uint32_t window, uint64_t rounds, uint32_t ring_slots,
             uint32_t command_bytes, struct bare_result *out)
{
    char name[IPC_SEGMENT_NAME_MAX], err[256];
    snprintf(name, sizeof(name), "/paxos-shm-%d-bare", (int)getpid());
    bare_chunks = bare_chunks_for(command_bytes);       /* the forked processes inherit it */
    window = payload_window_for(command_bytes, window); /* as paxos-shm's client does */
    uint32_t pool = nodes < 2 ? 2 : nodes;
    struct ipc_layout l = {
        /* With DATA slots the client is one more endpoint (`nodes`), reading no broadcast. */
        .endpoints = bare_chunks ? nodes + 1 : pool,
        .ring_slots = ring_slots,
        .bcast_slots = ring_slots,
        .bcast_producers = bare_chunks ? nodes : pool,
        .user_bytes = 64 * ((sizeof(struct bench_pool_report) + 63) / 64),
    };
    struct ipc_segment *seg = NULL;
    int rc = ipc_segment_create(name, &l, &seg, err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "throughput: bare ceiling: %s\n", err);
        return rc;
    }
    const struct bench_pool p = {.nodes = nodes,
                                 .window = window,
                                 .rounds = rounds,
                                 .leader = leader,
                                 .follower = follower,
                                 .client = bare_chunks ? client : NULL};
    rc = bench_pool_run(seg, &p, out);
    ipc_segment_close(seg);
    ipc_segment_unlink(name);
    if (rc != 0)
        fprintf(stderr, "throughput: bare ceiling with %u nodes failed\n", nodes);
    return rc;
}
