/* test_bcast.c: the broadcast ring (ipc/bcast.h): gating, detaching and exact lag reports in
 * one process, then 15 forked consumers, a SIGSTOPped consumer and a killed producer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "ipc/bcast.h"
#include "ipc_test.h"

/* 10 M messages, each checked by all 15 consumers. */
#define FANOUT_MSGS       UINT64_C(10000000)
#define FANOUT_CONSUMERS  15
#define FANOUT_SLOTS      4096u
#define BATCH_MAX         64u
#define KILL_ROUNDS       50
#define KILL_DELAY_US_MAX 3000
#define KILL_SEED         7u
/* Failed publishes before the restarts test's producer detaches a stalled consumer. */
#define STALL_TRIES 256u

static struct ipc_bcast *bcast_new(uint32_t slots, uint64_t consumers)
{
    void *mem = NULL;
    int rc = posix_memalign(&mem, IPC_LINE_BYTES, ipc_bcast_bytes(slots));
    assert_int_equal(rc, 0);
    return ipc_bcast_init(mem, slots, consumers);
}

/* Publishes messages seq first..first+n-1 of stream 1; returns how many were published. */
static uint32_t publish_seq(struct ipc_bcast *b, uint64_t first, uint32_t n, unsigned flags)
{
    struct ipc_test_msg m[BATCH_MAX];
    assert_true(n <= BATCH_MAX);
    for (uint32_t i = 0; i < n; i++)
        ipc_test_fill(&m[i], 1, first + i);
    return ipc_bcast_publish(b, m, n, flags);
}

/* Reads exactly n messages as consumer c and checks they are first..first+n-1. */
static void read_expect(struct ipc_bcast *b, uint32_t c, uint64_t first, uint32_t n)
{
    struct ipc_test_msg m[BATCH_MAX];
    assert_true(n <= BATCH_MAX);
    struct ipc_bcast_read_result r = ipc_bcast_read(b, c, m, BATCH_MAX);
    assert_false(r.lagged);
    assert_int_equal(r.n, n);
    for (uint32_t i = 0; i < n; i++) {
        assert_true(ipc_test_whole(&m[i]));
        assert_int_equal(m[i].seq, first + i);
    }
}

static void test_bcast_read_on_empty_returns_zero_and_not_lagged(void **state)
{
    (void)state;
    struct ipc_bcast *b = bcast_new(8, 0x6);
    struct ipc_test_msg m;
    assert_true(ipc_bcast_empty(b, 1));
    struct ipc_bcast_read_result r = ipc_bcast_read(b, 1, &m, 1);
    assert_int_equal(r.n, 0);
    assert_false(r.lagged);
    assert_int_equal(r.missed, 0);
    assert_int_equal(ipc_bcast_capacity(b), 8);
    free(b);
}

static void test_bcast_every_consumer_reads_every_message_in_order(void **state)
{
    (void)state;
    const uint32_t consumers[3] = {0, 2, 63};
    struct ipc_bcast *b = bcast_new(8, (1ull << 0) | (1ull << 2) | (1ull << 63));
    uint64_t seq = 0;
    for (int round = 0; round < 100; round++) {
        uint32_t n = 1 + (uint32_t)round % 8;
        assert_int_equal(publish_seq(b, seq, n, 0), n);
        for (int i = 0; i < 3; i++)
            read_expect(b, consumers[i], seq, n);
        seq += n;
        for (int i = 0; i < 3; i++)
            assert_true(ipc_bcast_empty(b, consumers[i]));
    }
    assert_int_equal(ipc_bcast_head(b), seq);
    free(b);
}

static void test_bcast_publish_stops_before_the_slowest_attached_consumer(void **state)
{
    (void)state;
    struct ipc_bcast *b = bcast_new(8, 0x6);
    assert_int_equal(publish_seq(b, 0, 8, 0), 8);
    assert_int_equal(publish_seq(b, 8, 1, 0), 0); /* both consumers are 8 behind */
    read_expect(b, 1, 0, 8);
    assert_int_equal(publish_seq(b, 8, 1, 0), 0); /* consumer 2 still gates */
    struct ipc_test_msg m[3];
    assert_int_equal(ipc_bcast_read(b, 2, m, 3).n, 3);
    assert_int_equal(publish_seq(b, 8, 5, 0), 3); /* exactly the room consumer 2 made */
    read_expect(b, 1, 8, 3);
    read_expect(b, 2, 3, 8);
    free(b);
}

static void test_bcast_publish_clips_a_batch_to_the_capacity(void **state)
{
    (void)state;
    struct ipc_bcast *b = bcast_new(4, 0x2);
    assert_int_equal(publish_seq(b, 0, 9, 0), 4);
    read_expect(b, 1, 0, 4);
    free(b);
}

static void test_bcast_detach_laggards_goes_on_and_laggard_reads_exact_missed_count(void **state)
{
    (void)state;
    struct ipc_bcast *b = bcast_new(8, 0x6);
    assert_int_equal(publish_seq(b, 0, 8, 0), 8);
    read_expect(b, 1, 0, 8);
    /* Consumer 2 is a full ring behind and blocks: detached, the publish goes on. */
    assert_int_equal(publish_seq(b, 8, 5, IPC_BCAST_DETACH_LAGGARDS), 5);
    assert_false(ipc_bcast_attached(b, 2));
    assert_true(ipc_bcast_attached(b, 1));
    assert_int_equal(b->detached_events, 1);
    assert_false(ipc_bcast_empty(b, 2)); /* a detached consumer has a lag to hear about */
    struct ipc_test_msg m[BATCH_MAX];
    struct ipc_bcast_read_result r = ipc_bcast_read(b, 2, m, BATCH_MAX);
    assert_true(r.lagged);
    assert_int_equal(r.n, 0);
    assert_int_equal(r.missed, 13);
    ipc_bcast_reattach(b, 2);
    assert_true(ipc_bcast_attached(b, 2));
    assert_int_equal(publish_seq(b, 13, 3, 0), 3);
    read_expect(b, 2, 13, 3);
    read_expect(b, 1, 8, 8);
    assert_int_equal(b->cursors[2].lagged_events, 1);
    assert_int_equal(b->cursors[2].missed_total, 13);
    free(b);
}

static void test_bcast_detach_laggards_spares_consumers_less_than_a_ring_behind(void **state)
{
    (void)state;
    struct ipc_bcast *b = bcast_new(8, 0x6);
    assert_int_equal(publish_seq(b, 0, 8, 0), 8);
    struct ipc_test_msg m[1];
    assert_int_equal(ipc_bcast_read(b, 1, m, 1).n, 1);
    assert_int_equal(ipc_bcast_read(b, 2, m, 1).n, 1);
    /* Both are 7 behind: room for 1, nobody is detached. */
    assert_int_equal(publish_seq(b, 8, 4, IPC_BCAST_DETACH_LAGGARDS), 1);
    assert_true(ipc_bcast_attached(b, 1));
    assert_true(ipc_bcast_attached(b, 2));
    read_expect(b, 1, 1, 8);
    read_expect(b, 2, 1, 8);
    free(b);
}

static void test_bcast_detached_consumer_stops_gating_and_is_told_on_next_read(void **state)
{
    (void)state;
    struct ipc_bcast *b = bcast_new(4, 0x3);
    assert_int_equal(publish_seq(b, 0, 4, 0), 4);
    read_expect(b, 0, 0, 4);
    assert_int_equal(publish_seq(b, 4, 4, 0), 0);
    ipc_bcast_detach(b, 1); /* the supervisor saw consumer 1 die */
    ipc_bcast_detach(b, 1); /* idempotent */
    assert_int_equal(publish_seq(b, 4, 4, 0), 4);
    struct ipc_test_msg m[4];
    struct ipc_bcast_read_result r = ipc_bcast_read(b, 1, m, 4);
    assert_true(r.lagged);
    assert_int_equal(r.missed, 8);
    read_expect(b, 0, 4, 4);
    free(b);
}

static void test_bcast_overrun_before_reattach_is_reported_again_exactly(void **state)
{
    (void)state;
    struct ipc_bcast *b = bcast_new(4, 0x2);
    ipc_bcast_detach(b, 1);
    assert_int_equal(publish_seq(b, 0, 3, 0), 3);
    struct ipc_test_msg m[4];
    struct ipc_bcast_read_result r = ipc_bcast_read(b, 1, m, 4);
    assert_true(r.lagged);
    assert_int_equal(r.missed, 3);
    /* Not yet re-attached: the producer runs more than a ring past the cursor. */
    assert_int_equal(publish_seq(b, 3, 4, 0), 4);
    assert_int_equal(publish_seq(b, 7, 1, 0), 1);
    ipc_bcast_reattach(b, 1);
    r = ipc_bcast_read(b, 1, m, 4);
    assert_true(r.lagged);
    assert_int_equal(r.missed, 5);
    ipc_bcast_reattach(b, 1);
    assert_int_equal(publish_seq(b, 8, 2, 0), 2);
    read_expect(b, 1, 8, 2);
    assert_int_equal(b->cursors[1].missed_total, 8);
    free(b);
}

/* A producer killed between its reserve store and its head store leaves reserve above head and
 * some slots overwritten; a consumer stopped in the middle of copying those slots (detached
 * meanwhile) must find, when it checks the reserve after its copy, a reserve that still covers
 * them, however little the restarted producer publishes first. The dead producer's state is
 * written directly: a process cannot be stopped between two of publish's stores on purpose. */
static void test_bcast_restarted_producer_never_lowers_the_reserve_of_a_dead_one(void **state)
{
    (void)state;
    enum { SLOTS = 8 };
    struct ipc_bcast *b = bcast_new(SLOTS, 0x2);
    assert_int_equal(publish_seq(b, 0, SLOTS, 0), SLOTS);
    struct ipc_test_msg m;
    assert_int_equal(ipc_bcast_read(b, 1, &m, 1).n, 1);
    uint64_t pos = b->cursors[1].pos; /* the consumer now copies [pos, head) */
    ipc_bcast_detach(b, 1);           /* ... and is detached while stopped */
    uint64_t head = ipc_bcast_head(b);
    /* The dead producer announced [head, head + SLOTS) and overwrote the first slots. */
    b->reserve = head + SLOTS;
    memset(b->slots, 0xdd, 3 * IPC_SLOT_BYTES);
    /* Its next incarnation publishes one message. */
    assert_int_equal(publish_seq(b, head, 1, 0), 1);
    /* The guard of the consumer's copy: the slots of [pos, head + SLOTS - capacity) were
     * overwritten, so it must read reserve > pos + capacity and report lagged. */
    assert_true(b->reserve >= head + SLOTS);
    assert_true(b->reserve > pos + SLOTS);
    free(b);
}

struct fanout_arg {
    struct ipc_bcast *b;
    uint32_t consumer;
    uint64_t msgs;
};

static int fanout_consumer(void *p)
{
    struct fanout_arg *a = p;
    struct ipc_test_msg m[BATCH_MAX];
    uint64_t next = 0;
    unsigned spins = 0;
    while (next < a->msgs) {
        struct ipc_bcast_read_result r = ipc_bcast_read(a->b, a->consumer, m, BATCH_MAX);
        if (r.lagged)
            return 5; /* flags 0: nobody may ever be detached */
        if (r.n == 0)
            ipc_test_backoff(&spins);
        for (uint32_t i = 0; i < r.n; i++) {
            if (!ipc_test_whole(&m[i]))
                return 2;
            if (m[i].seq != next)
                return 3;
            next++;
        }
    }
    return ipc_bcast_empty(a->b, a->consumer) ? 0 : 4;
}

static int fanout_producer(void *p)
{
    struct fanout_arg *a = p;
    struct ipc_test_msg m[BATCH_MAX];
    unsigned spins = 0;
    for (uint64_t seq = 0; seq < a->msgs;) {
        uint32_t n = 1 + (uint32_t)(ipc_test_mix(seq) % BATCH_MAX);
        if (n > a->msgs - seq)
            n = (uint32_t)(a->msgs - seq);
        for (uint32_t i = 0; i < n; i++)
            ipc_test_fill(&m[i], 1, seq + i);
        for (uint32_t done = 0; done < n;) {
            uint32_t k = ipc_bcast_publish(a->b, m + done, n - done, 0);
            if (k == 0)
                ipc_test_backoff(&spins);
            done += k;
        }
        seq += n;
    }
    return 0;
}

static void test_bcast_forked_15_consumers_each_read_every_message_in_order(void **state)
{
    (void)state;
    /* Producer endpoint 0, consumers 1..15 (cursor index = endpoint id). */
    uint64_t mask = ((UINT64_C(1) << (FANOUT_CONSUMERS + 1)) - 1) & ~UINT64_C(1);
    struct ipc_bcast *b =
        ipc_bcast_init(ipc_test_shared(ipc_bcast_bytes(FANOUT_SLOTS)), FANOUT_SLOTS, mask);
    struct fanout_arg args[FANOUT_CONSUMERS + 1];
    pid_t pids[FANOUT_CONSUMERS + 1];
    for (uint32_t c = 0; c <= FANOUT_CONSUMERS; c++) {
        args[c] = (struct fanout_arg){.b = b, .consumer = c, .msgs = FANOUT_MSGS};
        pids[c] = ipc_test_fork(c == 0 ? fanout_producer : fanout_consumer, &args[c]);
    }
    assert_int_equal(ipc_test_wait_all(pids, FANOUT_CONSUMERS + 1), 0);
    assert_int_equal(ipc_bcast_head(b), FANOUT_MSGS);
    for (uint32_t c = 1; c <= FANOUT_CONSUMERS; c++) {
        assert_int_equal(b->cursors[c].pos, FANOUT_MSGS);
        assert_int_equal(b->cursors[c].lagged_events, 0);
    }
    munmap(b, ipc_bcast_bytes(FANOUT_SLOTS));
}

/* Shared state of the SIGSTOP test. */
struct stop_ctl {
    struct ipc_bcast *b;
    uint64_t phase1, phase2, phase3; /* message counts of the three phases */
    uint32_t go_phase2;              /* parent -> producer */
    uint32_t phase2_done;            /* producer -> parent */
    uint32_t reattached;             /* consumer -> producer */
    uint32_t lag_reports;            /* consumer: lagged results seen */
    uint64_t missed;                 /* consumer: missed count reported */
    uint64_t read;                   /* consumer: messages read so far */
};

static int stop_publish(struct stop_ctl *s, uint64_t first, uint64_t count, unsigned flags)
{
    struct ipc_test_msg m[BATCH_MAX];
    unsigned spins = 0;
    for (uint64_t seq = first; seq < first + count;) {
        uint32_t n = BATCH_MAX;
        if (n > first + count - seq)
            n = (uint32_t)(first + count - seq);
        for (uint32_t i = 0; i < n; i++)
            ipc_test_fill(&m[i], 1, seq + i);
        uint32_t k = ipc_bcast_publish(s->b, m, n, flags);
        if (k == 0)
            ipc_test_backoff(&spins);
        seq += k;
    }
    return 0;
}

static int stop_producer(void *p)
{
    struct stop_ctl *s = p;
    unsigned spins = 0;
    stop_publish(s, 0, s->phase1, 0);
    while (!uatomic_read(&s->go_phase2))
        ipc_test_backoff(&spins);
    /* The consumer is stopped: only detaching it lets this phase finish. */
    stop_publish(s, s->phase1, s->phase2, IPC_BCAST_DETACH_LAGGARDS);
    uatomic_set(&s->phase2_done, 1);
    while (!uatomic_read(&s->reattached))
        ipc_test_backoff(&spins);
    /* Backpressure again: the re-attached consumer must get every one of these. */
    stop_publish(s, s->phase1 + s->phase2, s->phase3, 0);
    return 0;
}

static int stop_consumer(void *p)
{
    struct stop_ctl *s = p;
    struct ipc_test_msg m[BATCH_MAX];
    uint64_t next = 0, total = s->phase1 + s->phase2 + s->phase3;
    unsigned spins = 0;
    while (next < total) {
        struct ipc_bcast_read_result r = ipc_bcast_read(s->b, 1, m, BATCH_MAX);
        if (r.lagged) {
            if (uatomic_read(&s->lag_reports) != 0)
                return 6; /* exactly one lag: phase 3 is under backpressure */
            uatomic_set(&s->missed, r.missed);
            uatomic_set(&s->lag_reports, 1);
            next += r.missed;
            ipc_bcast_reattach(s->b, 1);
            uatomic_set(&s->reattached, 1);
            continue;
        }
        if (r.n == 0)
            ipc_test_backoff(&spins);
        for (uint32_t i = 0; i < r.n; i++) {
            if (!ipc_test_whole(&m[i]))
                return 2;
            if (m[i].seq != next)
                return 3; /* after the lag: the first message is old position + missed */
            next++;
        }
        uatomic_set(&s->read, next);
    }
    return 0;
}

static void
test_bcast_sigstopped_consumer_is_detached_then_reads_exact_missed_and_all_later(void **state)
{
    (void)state;
    enum { SLOTS = 256 };
    struct stop_ctl *s = ipc_test_shared(sizeof(*s));
    s->b = ipc_bcast_init(ipc_test_shared(ipc_bcast_bytes(SLOTS)), SLOTS, 0x2);
    s->phase1 = SLOTS / 2 + 3;
    s->phase2 = 5 * SLOTS + 17;
    s->phase3 = 2000 * SLOTS;
    pid_t consumer = ipc_test_fork(stop_consumer, s);
    pid_t producer = ipc_test_fork(stop_producer, s);
    unsigned spins = 0;
    while (uatomic_read(&s->read) < s->phase1)
        ipc_test_backoff(&spins);
    assert_int_equal(kill(consumer, SIGSTOP), 0);
    int status = 0;
    assert_int_equal(waitpid(consumer, &status, WUNTRACED), consumer);
    assert_true(WIFSTOPPED(status));
    uatomic_set(&s->go_phase2, 1);
    while (!uatomic_read(&s->phase2_done))
        ipc_test_backoff(&spins); /* the producer goes on although a consumer is stopped */
    assert_false(ipc_bcast_attached(s->b, 1));
    assert_int_equal(s->b->detached_events, 1);
    assert_int_equal(kill(consumer, SIGCONT), 0);
    pid_t pids[2] = {consumer, producer};
    assert_int_equal(ipc_test_wait_all(pids, 2), 0);
    assert_int_equal(s->lag_reports, 1u);
    assert_int_equal(s->missed, s->phase2); /* it had read all of phase 1 */
    assert_int_equal(s->read, s->phase1 + s->phase2 + s->phase3);
    munmap(s->b, ipc_bcast_bytes(SLOTS));
    munmap(s, sizeof(*s));
}

/* Shared state of the random-stops test. */
struct stops_ctl {
    struct ipc_bcast *b;
    uint32_t stop;      /* parent -> producer: finish */
    uint32_t total_set; /* producer -> consumer: total is final */
    uint64_t total;     /* messages published */
    uint64_t read;      /* consumer: messages read */
    uint64_t missed;    /* consumer: sum of the missed counts */
    uint64_t lag_reports;
};

static int stops_producer(void *p)
{
    struct stops_ctl *s = p;
    struct ipc_test_msg m[BATCH_MAX];
    unsigned spins = 0;
    uint64_t seq = 0;
    while (!uatomic_read(&s->stop)) {
        for (uint32_t i = 0; i < BATCH_MAX; i++)
            ipc_test_fill(&m[i], 1, seq + i);
        uint32_t k = ipc_bcast_publish(s->b, m, BATCH_MAX, IPC_BCAST_DETACH_LAGGARDS);
        if (k == 0)
            ipc_test_backoff(&spins);
        seq += k;
    }
    uatomic_set(&s->total, seq);
    uatomic_set(&s->total_set, 1);
    return 0;
}

static int stops_consumer(void *p)
{
    struct stops_ctl *s = p;
    struct ipc_test_msg m[BATCH_MAX];
    uint64_t next = 0, read = 0, missed = 0;
    unsigned spins = 0;
    while (!uatomic_read(&s->total_set) || next < uatomic_read(&s->total)) {
        struct ipc_bcast_read_result r = ipc_bcast_read(s->b, 1, m, BATCH_MAX);
        if (r.lagged) {
            next += r.missed;
            missed += r.missed;
            uatomic_set(&s->lag_reports, s->lag_reports + 1);
            ipc_bcast_reattach(s->b, 1);
            continue;
        }
        if (r.n == 0)
            ipc_test_backoff(&spins);
        for (uint32_t i = 0; i < r.n; i++) {
            if (!ipc_test_whole(&m[i]))
                return 2; /* torn: copied while the producer overwrote it */
            if (m[i].seq != next++)
                return 3; /* skipped without being told, or an overwritten slot */
        }
        read += r.n;
        uatomic_set(&s->read, read);
    }
    s->missed = missed;
    return next == s->total ? 0 : 4;
}

/* The consumer is stopped at random moments (mid-copy among them) while the producer streams
 * with DETACH_LAGGARDS and runs at least two rings ahead before SIGCONT: whatever it returns is
 * whole and in order, and read + missed is exactly what was published. */
static void
test_bcast_consumer_stopped_at_random_moments_never_reads_overwritten_slots(void **state)
{
    (void)state;
    enum { SLOTS = 64, STOPS = 100 };
    struct stops_ctl *s = ipc_test_shared(sizeof(*s));
    s->b = ipc_bcast_init(ipc_test_shared(ipc_bcast_bytes(SLOTS)), SLOTS, 0x2);
    pid_t consumer = ipc_test_fork(stops_consumer, s);
    pid_t producer = ipc_test_fork(stops_producer, s);
    unsigned seed = KILL_SEED, spins = 0;
    for (int i = 0; i < STOPS; i++) {
        usleep((useconds_t)(rand_r(&seed) % 500));
        assert_int_equal(kill(consumer, SIGSTOP), 0);
        int status = 0;
        assert_int_equal(waitpid(consumer, &status, WUNTRACED), consumer);
        assert_true(WIFSTOPPED(status));
        uint64_t head = ipc_bcast_head(s->b);
        while (ipc_bcast_head(s->b) < head + 2 * SLOTS)
            ipc_test_backoff(&spins);
        assert_int_equal(kill(consumer, SIGCONT), 0);
    }
    uatomic_set(&s->stop, 1);
    pid_t pids[2] = {consumer, producer};
    assert_int_equal(ipc_test_wait_all(pids, 2), 0);
    print_message("random stops: %llu published, %llu read, %llu missed in %llu lags\n",
                  (unsigned long long)s->total, (unsigned long long)s->read,
                  (unsigned long long)s->missed, (unsigned long long)s->lag_reports);
    assert_true(s->lag_reports >= 1);
    assert_int_equal(s->read + s->missed, s->total);
    assert_int_equal(s->b->cursors[1].missed_total, s->missed);
    munmap(s->b, ipc_bcast_bytes(SLOTS));
    munmap(s, sizeof(*s));
}

static int kill_producer(void *p)
{
    struct fanout_arg *a = p; /* consumer field holds the stream id */
    struct ipc_test_msg m[BATCH_MAX];
    unsigned spins = 0;
    for (uint64_t seq = 0;;) {
        uint32_t n = 1 + (uint32_t)(ipc_test_mix(seq ^ a->consumer) % BATCH_MAX);
        for (uint32_t i = 0; i < n; i++)
            ipc_test_fill(&m[i], a->consumer, seq + i);
        uint32_t k = ipc_bcast_publish(a->b, m, n, 0);
        if (k == 0)
            ipc_test_backoff(&spins);
        seq += k;
    }
    return 0;
}

/* Reads everything available as consumer 1; whole messages, contiguous within a stream. */
static bool kill_drain(struct ipc_bcast *b, uint64_t *stream, uint64_t *next, uint64_t *total)
{
    struct ipc_test_msg m[BATCH_MAX];
    for (;;) {
        struct ipc_bcast_read_result r = ipc_bcast_read(b, 1, m, BATCH_MAX);
        if (r.lagged)
            return false;
        if (r.n == 0)
            return true;
        for (uint32_t i = 0; i < r.n; i++) {
            if (!ipc_test_whole(&m[i]))
                return false;
            if (m[i].stream != *stream) {
                if (m[i].stream < *stream || m[i].seq != 0)
                    return false;
                *stream = m[i].stream;
                *next = 0;
            }
            if (m[i].seq != (*next)++)
                return false;
            (*total)++;
        }
    }
}

static void test_bcast_producer_killed_at_random_moments_exposes_only_whole_messages(void **state)
{
    (void)state;
    enum { SLOTS = 256 };
    struct ipc_bcast *b = ipc_bcast_init(ipc_test_shared(ipc_bcast_bytes(SLOTS)), SLOTS, 0x2);
    unsigned seed = KILL_SEED;
    uint64_t stream = 0, next = 0, total = 0;
    for (uint32_t round = 1; round <= KILL_ROUNDS; round++) {
        struct fanout_arg a = {.b = b, .consumer = round, .msgs = 0};
        pid_t producer = ipc_test_fork(kill_producer, &a);
        uint64_t end_ns = ipc_test_now_ns() + (uint64_t)(rand_r(&seed) % KILL_DELAY_US_MAX) * 1000;
        do {
            assert_true(kill_drain(b, &stream, &next, &total));
        } while (ipc_test_now_ns() < end_ns);
        assert_int_equal(kill(producer, SIGKILL), 0);
        assert_int_equal(ipc_test_wait(producer), 100 + SIGKILL);
        assert_true(kill_drain(b, &stream, &next, &total));
        assert_true(ipc_bcast_empty(b, 1));
    }
    print_message("bcast kill test: %d producers killed, %llu messages checked\n", KILL_ROUNDS,
                  (unsigned long long)total);
    assert_true(total > 0);
    munmap(b, ipc_bcast_bytes(SLOTS));
}

/* Shared state of the restarts stress test. */
struct restarts_ctl {
    struct ipc_bcast *b;
    uint32_t stop;      /* parent -> producer: finish */
    uint32_t total_set; /* parent -> consumer: total is final */
    uint64_t total;     /* head when the last producer finished */
    uint64_t read, missed, lag_reports;
};

/* Producer incarnation `gen`: continues at head; message = (stream gen, seq = its position). Its
 * first publish is one message, the smallest reservation after a dead incarnation's. */
static int restarts_producer(void *p)
{
    struct fanout_arg *a = p;
    struct restarts_ctl *s = (struct restarts_ctl *)(void *)a->b;
    struct ipc_test_msg m[BATCH_MAX];
    unsigned spins = 0, blocked = 0;
    uint32_t n = 1;
    while (!uatomic_read(&s->stop)) {
        uint64_t head = ipc_bcast_head(s->b);
        for (uint32_t i = 0; i < n; i++)
            ipc_test_fill(&m[i], a->consumer, head + i);
        /* Like the transport: backpressure, and detach only a consumer that stalls it. */
        unsigned flags = blocked >= STALL_TRIES ? IPC_BCAST_DETACH_LAGGARDS : 0;
        if (ipc_bcast_publish(s->b, m, n, flags) == 0) {
            blocked++;
            ipc_test_backoff(&spins);
            continue;
        }
        blocked = 0;
        n = 1 + (uint32_t)(ipc_test_mix(head) % BATCH_MAX);
    }
    return 0;
}

/* Reads in whole-ring batches (long copies); after a lag it waits a little before re-attaching,
 * as a descheduled node does, so the producer may run on without seeing it. */
static int restarts_consumer(void *p)
{
    struct restarts_ctl *s = p;
    struct ipc_test_msg m[BATCH_MAX];
    uint64_t next = 0, read = 0, missed = 0, lags = 0;
    unsigned spins = 0, seed = KILL_SEED;
    while (!uatomic_read(&s->total_set) || next < uatomic_read(&s->total)) {
        struct ipc_bcast_read_result r = ipc_bcast_read(s->b, 1, m, BATCH_MAX);
        if (r.lagged) {
            next += r.missed;
            missed += r.missed;
            lags++;
            usleep((useconds_t)(rand_r(&seed) % 50));
            ipc_bcast_reattach(s->b, 1);
            continue;
        }
        if (r.n == 0)
            ipc_test_backoff(&spins);
        for (uint32_t i = 0; i < r.n; i++) {
            if (!ipc_test_whole(&m[i]))
                return 2; /* torn, or a dead incarnation's slot */
            if (m[i].seq != next++)
                return 3; /* skipped without being told, or a stale slot */
        }
        read += r.n;
    }
    s->read = read;
    s->missed = missed;
    s->lag_reports = lags;
    return next == uatomic_read(&s->total) ? 0 : 4;
}

/* The producer is killed at random moments (mid-publish among them) and restarted while the
 * consumer is stopped at random moments: whatever the consumer returns is whole, in order and
 * published, and read + missed is exactly the final head. */
static void test_bcast_producer_restarts_and_consumer_stops_never_yield_a_torn_message(void **st)
{
    (void)st;
    enum { SLOTS = 64, ROUNDS = 300 };
    struct restarts_ctl *s = ipc_test_shared(sizeof(*s));
    s->b = ipc_bcast_init(ipc_test_shared(ipc_bcast_bytes(SLOTS)), SLOTS, 0x2);
    pid_t consumer = ipc_test_fork(restarts_consumer, s);
    struct fanout_arg a = {.b = (struct ipc_bcast *)(void *)s, .consumer = 1, .msgs = 0};
    pid_t producer = ipc_test_fork(restarts_producer, &a);
    unsigned seed = KILL_SEED;
    for (int i = 0; i < ROUNDS; i++) {
        usleep((useconds_t)(rand_r(&seed) % 300));
        bool stop_consumer = rand_r(&seed) % 2 == 0;
        if (stop_consumer) {
            assert_int_equal(kill(consumer, SIGSTOP), 0);
            int status = 0;
            assert_int_equal(waitpid(consumer, &status, WUNTRACED), consumer);
            usleep((useconds_t)(rand_r(&seed) % 300));
        }
        assert_int_equal(kill(producer, SIGKILL), 0);
        assert_int_equal(ipc_test_wait(producer), 100 + SIGKILL);
        a.consumer = (uint32_t)i + 2; /* the next incarnation's stream */
        producer = ipc_test_fork(restarts_producer, &a);
        usleep((useconds_t)(rand_r(&seed) % 100));
        if (stop_consumer)
            assert_int_equal(kill(consumer, SIGCONT), 0);
    }
    uatomic_set(&s->stop, 1);
    assert_int_equal(ipc_test_wait(producer), 0);
    uatomic_set(&s->total, ipc_bcast_head(s->b));
    uatomic_set(&s->total_set, 1);
    assert_int_equal(ipc_test_wait(consumer), 0);
    print_message("restarts: %llu published, %llu read, %llu missed in %llu lags\n",
                  (unsigned long long)s->total, (unsigned long long)s->read,
                  (unsigned long long)s->missed, (unsigned long long)s->lag_reports);
    assert_int_equal(s->read + s->missed, s->total);
    munmap(s->b, ipc_bcast_bytes(SLOTS));
    munmap(s, sizeof(*s));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bcast_read_on_empty_returns_zero_and_not_lagged),
        cmocka_unit_test(test_bcast_every_consumer_reads_every_message_in_order),
        cmocka_unit_test(test_bcast_publish_stops_before_the_slowest_attached_consumer),
        cmocka_unit_test(test_bcast_publish_clips_a_batch_to_the_capacity),
        cmocka_unit_test(test_bcast_detach_laggards_goes_on_and_laggard_reads_exact_missed_count),
        cmocka_unit_test(test_bcast_detach_laggards_spares_consumers_less_than_a_ring_behind),
        cmocka_unit_test(test_bcast_detached_consumer_stops_gating_and_is_told_on_next_read),
        cmocka_unit_test(test_bcast_overrun_before_reattach_is_reported_again_exactly),
        cmocka_unit_test(test_bcast_restarted_producer_never_lowers_the_reserve_of_a_dead_one),
        cmocka_unit_test(test_bcast_forked_15_consumers_each_read_every_message_in_order),
        cmocka_unit_test(
            test_bcast_sigstopped_consumer_is_detached_then_reads_exact_missed_and_all_later),
        cmocka_unit_test(
            test_bcast_consumer_stopped_at_random_moments_never_reads_overwritten_slots),
        cmocka_unit_test(test_bcast_producer_killed_at_random_moments_exposes_only_whole_messages),
        cmocka_unit_test(
            test_bcast_producer_restarts_and_consumer_stops_never_yield_a_torn_message),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
