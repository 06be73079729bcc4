/* star.c: the star pattern over the point-to-point rings (star.h). */
#include "star.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/hist.h"
#include "common/util.h"
#include "ipc/doorbell.h"
#include "ipc/ring.h"
#include "ipc/segment.h"

enum { STAR_ROUND = 1, STAR_ACK, STAR_STOP };

struct star_msg {
    uint32_t type;
    uint32_t from;
    uint64_t instance; /* ROUND: the round; ACK: highest round received */
    uint64_t decided;  /* ROUND: the leader's decided index when it was sent */
    unsigned char pad[IPC_SLOT_BYTES - 24];
};
_Static_assert(sizeof(struct star_msg) == IPC_SLOT_BYTES, "one slot");

/* Messages taken from one ring per pop: the node loop's batch. */
#define STAR_BATCH_MAX 512
/* Rounds the leader keeps for followers that lag behind the quorum: a follower further behind
 * than this stops the leader from starting rounds (backpressure, nothing is dropped). */
#define STAR_LOG_MAX 65536u
/* Sleep bound: nothing here needs a timer, it only bounds the damage of a bug. */
#define STAR_WAIT_NS   1000000ull
#define STAR_NODES_MAX 64

static void follower(struct ipc_segment *seg, uint32_t self)
{
    static struct star_msg in[STAR_BATCH_MAX];
    struct ipc_ring *down = ipc_segment_ring(seg, 0, self);
    struct ipc_ring *up = ipc_segment_ring(seg, self, 0);
    struct ipc_doorbell *bell = &ipc_segment_ctl(seg, self)->bell;
    struct ipc_doorbell *leader_bell = &ipc_segment_ctl(seg, 0)->bell;
    uint64_t hi = 0, acked = 0;
    for (;;) {
        uint32_t n = ipc_ring_pop(down, in, STAR_BATCH_MAX);
        for (uint32_t i = 0; i < n; i++) {
            if (in[i].type == STAR_STOP)
                _exit(0);
            hi = in[i].instance;
        }
        /* One cumulative acknowledgement per batch; a full ring keeps it for the next pass
         * (cumulative, so the later one replaces it: nothing is lost). */
        if (hi > acked) {
            struct star_msg ack = {.type = STAR_ACK, .from = self, .instance = hi};
            if (ipc_ring_push(up, &ack, 1) == 1) {
                acked = hi;
                ipc_doorbell_ring(leader_bell);
            }
        }
        if (n > 0)
            continue;
        ipc_doorbell_prepare(bell);
        if (!ipc_ring_empty(down)) {
            ipc_doorbell_cancel(bell);
            continue;
        }
        /* An acknowledgement still owed (its ring was full) is retried after the timeout. */
        ipc_doorbell_wait(bell, STAR_WAIT_NS);
    }
}

/* The decided index: the highest round held by a majority (the leader holds every round). */
static uint64_t quorum_index(const uint64_t *acked, uint32_t nodes)
{
    uint32_t need = nodes / 2; /* followers besides the leader */
    uint64_t v[STAR_NODES_MAX];
    uint32_t k = nodes - 1;
    memcpy(v, acked + 1, k * sizeof(v[0]));
    /* Partial selection sort, descending, up to position need - 1. */
    for (uint32_t i = 0; i < need; i++) {
        uint32_t m = i;
        for (uint32_t j = i + 1; j < k; j++)
            if (v[j] > v[m])
                m = j;
        uint64_t t = v[i];
        v[i] = v[m];
        v[m] = t;
    }
    return v[need - 1];
}

struct leader_state {
    struct ipc_segment *seg;
    uint32_t nodes, window;
    uint64_t rounds, next, decided, msgs;
    uint64_t sent_to[STAR_NODES_MAX]; /* next round to push to follower f */
    uint64_t acked[STAR_NODES_MAX];
    struct star_msg *log; /* round r at r % STAR_LOG_MAX */
    uint64_t *sent_ns;    /* round r at r % window */
    struct hist *h;
};

/* Pushes to follower f what it has not been given yet; rings its doorbell once if any. */
static bool push_follower(struct leader_state *s, uint32_t f)
{
    struct ipc_ring *r = ipc_segment_ring(s->seg, 0, f);
    uint64_t before = s->sent_to[f];
    while (s->sent_to[f] < s->next) {
        uint32_t at = (uint32_t)(s->sent_to[f] % STAR_LOG_MAX);
        uint64_t len = s->next - s->sent_to[f];
        if (len > STAR_LOG_MAX - at)
            len = STAR_LOG_MAX - at;
        uint32_t k = ipc_ring_push(r, &s->log[at], (uint32_t)len);
        s->sent_to[f] += k;
        if (k < len)
            break; /* full: the rest waits in the log */
    }
    if (s->sent_to[f] == before)
        return false;
    ipc_doorbell_ring(&ipc_segment_ctl(s->seg, f)->bell);
    return true;
}

static uint64_t slowest_sent(const struct leader_state *s)
{
    uint64_t m = s->next;
    for (uint32_t f = 1; f < s->nodes; f++)
        if (s->sent_to[f] < m)
            m = s->sent_to[f];
    return m;
}

static bool start_rounds(struct leader_state *s)
{
    uint64_t low = slowest_sent(s), now = 0;
    bool any = false;
    while (s->next <= s->rounds && s->next - s->decided <= s->window &&
           s->next - low < STAR_LOG_MAX) {
        if (!any)
            now = util_now_ns(); /* one clock read per batch: they leave together */
        s->log[s->next % STAR_LOG_MAX] =
            (struct star_msg){.type = STAR_ROUND, .instance = s->next, .decided = s->decided};
        s->sent_ns[s->next % s->window] = now;
        s->next++;
        any = true;
    }
    return any;
}

static bool drain_acks(struct leader_state *s)
{
    static struct star_msg in[STAR_BATCH_MAX];
    bool got = false;
    for (uint32_t f = 1; f < s->nodes; f++) {
        uint32_t k = ipc_ring_pop(ipc_segment_ring(s->seg, f, 0), in, STAR_BATCH_MAX);
        for (uint32_t i = 0; i < k; i++)
            if (in[i].instance > s->acked[f])
                s->acked[f] = in[i].instance;
        s->msgs += k;
        got |= k > 0;
    }
    if (got) {
        uint64_t q = quorum_index(s->acked, s->nodes);
        uint64_t t = util_now_ns();
        for (uint64_t i = s->decided + 1; i <= q; i++)
            hist_add(s->h, t - s->sent_ns[i % s->window]);
        if (q > s->decided)
            s->decided = q;
    }
    return got;
}

static bool acks_waiting(struct leader_state *s)
{
    for (uint32_t f = 1; f < s->nodes; f++)
        if (!ipc_ring_empty(ipc_segment_ring(s->seg, f, 0)))
            return true;
    return false;
}

static void leader(struct leader_state *s, struct bench_pool_report *out)
{
    struct ipc_doorbell *bell = &ipc_segment_ctl(s->seg, 0)->bell;
    uint64_t start = util_now_ns();
    while (s->decided < s->rounds) {
        bool work = start_rounds(s);
        for (uint32_t f = 1; f < s->nodes; f++) {
            uint64_t before = s->sent_to[f];
            if (push_follower(s, f)) {
                s->msgs += s->sent_to[f] - before;
                work = true;
            }
        }
        work |= drain_acks(s);
        if (work)
            continue;
        ipc_doorbell_prepare(bell);
        if (acks_waiting(s))
            ipc_doorbell_cancel(bell);
        else
            ipc_doorbell_wait(bell, STAR_WAIT_NS);
    }
    double secs = (double)(util_now_ns() - start) / 1e9;
    struct star_msg stop = {.type = STAR_STOP};
    for (uint32_t f = 1; f < s->nodes; f++) {
        struct ipc_ring *r = ipc_segment_ring(s->seg, 0, f);
        while (s->sent_to[f] < s->next) /* everything started reaches it before the stop */
            if (!push_follower(s, f))
                ipc_doorbell_ring(&ipc_segment_ctl(s->seg, f)->bell);
        while (ipc_ring_push(r, &stop, 1) == 0)
            ipc_doorbell_ring(&ipc_segment_ctl(s->seg, f)->bell);
        ipc_doorbell_ring(&ipc_segment_ctl(s->seg, f)->bell);
    }
    out->rounds_per_s = (double)s->rounds / secs;
    out->latency_p50 = (double)hist_quantile(s->h, 0.5) / 1000.0;
    out->latency_p99 = (double)hist_quantile(s->h, 0.99) / 1000.0;
    out->latency_p999 = (double)hist_quantile(s->h, 0.999) / 1000.0;
    out->msgs = s->msgs;
}

static void leader_main(struct ipc_segment *seg, uint32_t nodes, uint32_t window, uint64_t rounds,
                        struct bench_pool_report *out)
{
    static struct leader_state s;
    s.seg = seg;
    s.nodes = nodes;
    s.window = window;
    s.rounds = rounds;
    s.next = 1;
    for (uint32_t f = 0; f < nodes; f++)
        s.sent_to[f] = 1;
    s.log = malloc(STAR_LOG_MAX * sizeof(*s.log));
    s.sent_ns = calloc(window, sizeof(*s.sent_ns));
    s.h = calloc(1, sizeof(*s.h));
    if (s.log == NULL || s.sent_ns == NULL || s.h == NULL)
        _exit(3);
    leader(&s, out);
}

int star_run(uint32_t nodes, uint32_t window, uint64_t rounds, uint32_t ring_slots,
             struct bare_result *out)
{
    if (nodes < 2 || nodes > STAR_NODES_MAX || window < 1 || rounds < 1) {
        fprintf(stderr, "star: nodes 2..%d, window and rounds >= 1\n", STAR_NODES_MAX);
        return -EINVAL;
    }
    char name[IPC_SEGMENT_NAME_MAX], err[256];
    snprintf(name, sizeof(name), "/paxos-shm-%d-star", (int)getpid());
    struct ipc_layout l = {
        .endpoints = nodes,
        .ring_slots = ring_slots,
        .user_bytes = 64 * ((sizeof(struct bench_pool_report) + 63) / 64),
    };
    struct ipc_segment *seg = NULL;
    int rc = ipc_segment_create(name, &l, &seg, err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "star: %s\n", err);
        return rc;
    }
    const struct bench_pool p = {.nodes = nodes,
                                 .window = window,
                                 .rounds = rounds,
                                 .leader = leader_main,
                                 .follower = follower};
    rc = bench_pool_run(seg, &p, out);
    ipc_segment_close(seg);
    ipc_segment_unlink(name);
    if (rc != 0)
        fprintf(stderr, "star: %u nodes failed\n", nodes);
    return rc;
}
