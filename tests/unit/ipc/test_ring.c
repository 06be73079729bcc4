/* test_ring.c: the SPSC ring (ipc/ring.h): semantics in one process, then forked producer and
 * consumer streams, a producer killed at random moments, and both sides killed and restarted. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "ipc/ring.h"
#include "ipc_test.h"

/* 10 M messages (also under ASan: the whole ipc suite stays well under a minute). */
#define STREAM_MSGS       UINT64_C(10000000)
#define STREAM_RING_SLOTS 1024u
#define STREAM_BATCH_MAX  32u
/* Producer kills: 50 independent kill moments, each after a seeded random delay. */
#define KILL_ROUNDS       50
#define KILL_DELAY_US_MAX 3000
#define KILL_SEED         20261126u
/* Restarts test: batches up to 256 slots (16 KiB), as the node's receive per source. */
#define RESTARTS_BATCH_MAX 256u

static struct ipc_ring *ring_new(uint32_t slots)
{
    void *mem = NULL;
    int rc = posix_memalign(&mem, IPC_LINE_BYTES, ipc_ring_bytes(slots));
    assert_int_equal(rc, 0);
    return ipc_ring_init(mem, slots);
}

static void test_ring_pop_on_empty_returns_zero(void **state)
{
    (void)state;
    struct ipc_ring *r = ring_new(8);
    struct ipc_test_msg out[4];
    assert_true(ipc_ring_empty(r));
    assert_int_equal(ipc_ring_pop(r, out, 4), 0);
    assert_int_equal(ipc_ring_count(r), 0);
    free(r);
}

static void test_ring_capacity_is_the_slot_count(void **state)
{
    (void)state;
    for (uint32_t slots = 1; slots <= IPC_RING_SLOTS_MAX; slots *= 2) {
        struct ipc_ring *r = ring_new(slots);
        assert_int_equal(ipc_ring_capacity(r), slots);
        assert_int_equal(ipc_ring_bytes(slots), 2 * IPC_LINE_BYTES + (size_t)slots * 64);
        free(r);
    }
}

/* For every capacity 1..2^16: exactly `capacity` single pushes fit, the next one is refused,
 * and the pops return them in order, leaving the ring empty. */
static void test_ring_holds_exactly_capacity_then_refuses_for_every_capacity(void **state)
{
    (void)state;
    struct ipc_test_msg m, out;
    for (uint32_t slots = 1; slots <= IPC_RING_SLOTS_MAX; slots *= 2) {
        struct ipc_ring *r = ring_new(slots);
        for (uint32_t i = 0; i < slots; i++) {
            ipc_test_fill(&m, slots, i);
            assert_int_equal(ipc_ring_push(r, &m, 1), 1);
        }
        ipc_test_fill(&m, slots, slots);
        assert_int_equal(ipc_ring_push(r, &m, 1), 0);
        assert_int_equal(ipc_ring_count(r), slots);
        assert_false(ipc_ring_empty(r));
        for (uint32_t i = 0; i < slots; i++) {
            assert_int_equal(ipc_ring_pop(r, &out, 1), 1);
            assert_true(ipc_test_whole(&out));
            assert_int_equal(out.seq, i);
        }
        assert_int_equal(ipc_ring_pop(r, &out, 1), 0);
        assert_true(ipc_ring_empty(r));
        free(r);
    }
}

static void test_ring_batch_push_is_clipped_to_free_space(void **state)
{
    (void)state;
    struct ipc_ring *r = ring_new(8);
    struct ipc_test_msg in[12], out[12];
    for (uint32_t i = 0; i < 12; i++)
        ipc_test_fill(&in[i], 1, i);
    assert_int_equal(ipc_ring_push(r, in, 5), 5);
    assert_int_equal(ipc_ring_push(r, in + 5, 7), 3);
    assert_int_equal(ipc_ring_push(r, in + 8, 4), 0);
    assert_int_equal(ipc_ring_pop(r, out, 3), 3);
    assert_int_equal(ipc_ring_push(r, in + 8, 4), 3);
    assert_int_equal(ipc_ring_pop(r, out + 3, 12), 8);
    for (uint32_t i = 0; i < 11; i++) {
        assert_int_equal(out[i].seq, i);
        assert_true(ipc_test_whole(&out[i]));
    }
    free(r);
}

/* Batches of every size 1..capacity+3 wrap the ring many times; order and content hold. */
static void test_ring_batches_wrap_around_in_order(void **state)
{
    (void)state;
    enum { SLOTS = 16, BATCH = SLOTS + 3 };
    struct ipc_ring *r = ring_new(SLOTS);
    struct ipc_test_msg in[BATCH], out[BATCH];
    uint64_t next_in = 0, next_out = 0;
    for (uint32_t round = 0; round < 2000; round++) {
        uint32_t n = 1 + round % BATCH;
        for (uint32_t i = 0; i < n; i++)
            ipc_test_fill(&in[i], 2, next_in + i);
        uint32_t free_before = SLOTS - ipc_ring_count(r);
        uint32_t pushed = ipc_ring_push(r, in, n);
        assert_int_equal(pushed, n < free_before ? n : free_before);
        next_in += pushed;
        uint32_t want = 1 + (round * 7) % BATCH;
        uint32_t popped = ipc_ring_pop(r, out, want);
        uint64_t avail = next_in - next_out;
        assert_int_equal(popped, want < avail ? want : avail);
        for (uint32_t i = 0; i < popped; i++) {
            assert_true(ipc_test_whole(&out[i]));
            assert_int_equal(out[i].seq, next_out + i);
        }
        next_out += popped;
    }
    assert_true(next_out > 20 * SLOTS);
    free(r);
}

/* The free-running 32-bit indices overflow; the ring must not notice. */
static void test_ring_index_overflow_past_2_32_keeps_order(void **state)
{
    (void)state;
    struct ipc_ring *r = ring_new(4);
    uint32_t start = UINT32_MAX - 5;
    r->head = r->tail = r->tail_cache = r->head_cache = start;
    struct ipc_test_msg in[3], out[3];
    for (uint64_t seq = 0; seq < 30; seq += 3) {
        for (uint32_t i = 0; i < 3; i++)
            ipc_test_fill(&in[i], 3, seq + i);
        assert_int_equal(ipc_ring_push(r, in, 3), 3);
        assert_int_equal(ipc_ring_count(r), 3);
        assert_int_equal(ipc_ring_pop(r, out, 3), 3);
        for (uint32_t i = 0; i < 3; i++)
            assert_int_equal(out[i].seq, seq + i);
    }
    assert_int_equal(r->head, start + 30);
    free(r);
}

struct stream_arg {
    struct ipc_ring *ring;
    uint64_t msgs;
    uint64_t stream;
};

static int stream_producer(void *p)
{
    struct stream_arg *a = p;
    struct ipc_test_msg batch[STREAM_BATCH_MAX];
    uint64_t seq = 0;
    unsigned spins = 0;
    while (seq < a->msgs) {
        uint32_t n = 1 + (uint32_t)(ipc_test_mix(seq) % STREAM_BATCH_MAX);
        if (n > a->msgs - seq)
            n = (uint32_t)(a->msgs - seq);
        for (uint32_t i = 0; i < n; i++)
            ipc_test_fill(&batch[i], a->stream, seq + i);
        uint32_t pushed = 0;
        while (pushed < n) {
            uint32_t k = ipc_ring_push(a->ring, batch + pushed, n - pushed);
            if (k == 0)
                ipc_test_backoff(&spins);
            pushed += k;
        }
        seq += n;
    }
    return 0;
}

static int stream_consumer(void *p)
{
    struct stream_arg *a = p;
    struct ipc_test_msg batch[STREAM_BATCH_MAX];
    uint64_t next = 0;
    unsigned spins = 0;
    while (next < a->msgs) {
        uint32_t n = ipc_ring_pop(a->ring, batch, STREAM_BATCH_MAX);
        if (n == 0)
            ipc_test_backoff(&spins);
        for (uint32_t i = 0; i < n; i++) {
            if (!ipc_test_whole(&batch[i]) || batch[i].stream != a->stream)
                return 2; /* torn */
            if (batch[i].seq != next)
                return 3; /* lost, duplicated or reordered */
            next++;
        }
    }
    return ipc_ring_empty(a->ring) ? 0 : 4; /* nothing beyond the last message */
}

static void test_ring_forked_stream_delivers_every_message_exactly_once_in_order(void **state)
{
    (void)state;
    struct ipc_ring *r =
        ipc_ring_init(ipc_test_shared(ipc_ring_bytes(STREAM_RING_SLOTS)), STREAM_RING_SLOTS);
    struct stream_arg a = {.ring = r, .msgs = STREAM_MSGS, .stream = 77};
    pid_t consumer = ipc_test_fork(stream_consumer, &a);
    pid_t producer = ipc_test_fork(stream_producer, &a);
    pid_t pids[2] = {consumer, producer};
    assert_int_equal(ipc_test_wait_all(pids, 2), 0);
    assert_int_equal(r->head, (uint32_t)STREAM_MSGS);
    assert_int_equal(r->tail, (uint32_t)STREAM_MSGS);
    munmap(r, ipc_ring_bytes(STREAM_RING_SLOTS));
}

/* The producer of round k writes stream k, sequence 0, 1, 2... until it is killed. */
static int kill_producer(void *p)
{
    struct stream_arg *a = p;
    struct ipc_test_msg batch[STREAM_BATCH_MAX];
    unsigned spins = 0;
    for (uint64_t seq = 0;;) {
        uint32_t n = 1 + (uint32_t)(ipc_test_mix(seq ^ a->stream) % STREAM_BATCH_MAX);
        for (uint32_t i = 0; i < n; i++)
            ipc_test_fill(&batch[i], a->stream, seq + i);
        uint32_t k = ipc_ring_push(a->ring, batch, n);
        if (k == 0)
            ipc_test_backoff(&spins);
        seq += k;
    }
    return 0;
}

/* Pops everything available, checking that messages are whole and that within a stream the
 * sequence is contiguous from 0. Returns false on any violation. */
static bool kill_drain(struct ipc_ring *r, uint64_t *stream, uint64_t *next, uint64_t *total)
{
    struct ipc_test_msg batch[STREAM_BATCH_MAX];
    uint32_t n;
    while ((n = ipc_ring_pop(r, batch, STREAM_BATCH_MAX)) > 0) {
        for (uint32_t i = 0; i < n; i++) {
            if (!ipc_test_whole(&batch[i]))
                return false;
            if (batch[i].stream != *stream) {
                if (batch[i].stream < *stream || batch[i].seq != 0)
                    return false;
                *stream = batch[i].stream;
                *next = 0;
            }
            if (batch[i].seq != *next)
                return false;
            (*next)++;
            (*total)++;
        }
    }
    return true;
}

static void test_ring_producer_killed_at_random_moments_exposes_only_whole_messages(void **state)
{
    (void)state;
    enum { SLOTS = 256 };
    struct ipc_ring *r = ipc_ring_init(ipc_test_shared(ipc_ring_bytes(SLOTS)), SLOTS);
    unsigned seed = KILL_SEED;
    uint64_t stream = 0, next = 0, total = 0;
    for (int round = 1; round <= KILL_ROUNDS; round++) {
        /* The same ring across rounds: each new producer continues where the killed one
         * left the indices, as a restarted node does. */
        struct stream_arg a = {.ring = r, .msgs = 0, .stream = (uint64_t)round};
        pid_t producer = ipc_test_fork(kill_producer, &a);
        useconds_t delay = (useconds_t)(rand_r(&seed) % KILL_DELAY_US_MAX);
        uint64_t end_ns = ipc_test_now_ns() + (uint64_t)delay * 1000u;
        for (;;) { /* consume concurrently until the kill moment */
            assert_true(kill_drain(r, &stream, &next, &total));
            if (ipc_test_now_ns() >= end_ns)
                break;
        }
        assert_int_equal(kill(producer, SIGKILL), 0);
        assert_int_equal(ipc_test_wait(producer), 100 + SIGKILL);
        assert_true(kill_drain(r, &stream, &next, &total));
        assert_true(ipc_ring_empty(r));
    }
    print_message("ring kill test: %d producers killed, %llu messages checked\n", KILL_ROUNDS,
                  (unsigned long long)total);
    assert_true(total > 0);
    munmap(r, ipc_ring_bytes(SLOTS));
}

/* Shared state of the restarts stress test. */
struct restarts_ctl {
    struct ipc_ring *ring;
    uint32_t stop;     /* parent -> producer: finish */
    uint32_t drain;    /* parent -> consumer: the producer is done, empty the ring and exit */
    uint64_t stream;   /* the next producer incarnation's stream */
    uint64_t checked;  /* consumer: messages checked, all incarnations */
    uint32_t consumed; /* consumer: it read something since its start */
};

/* Producer incarnation: each message says which ring index it was pushed at (seq = head + i),
 * so a stale slot of an earlier lap or a slot read before it was written is told apart. Large
 * batches: copies of more than 2 KiB go through memcpy's string path (rep movsb). */
static int restarts_ring_producer(void *p)
{
    struct restarts_ctl *s = p;
    static struct ipc_test_msg batch[RESTARTS_BATCH_MAX];
    unsigned spins = 0;
    uint64_t stream = s->stream;
    while (!uatomic_read(&s->stop)) {
        uint32_t head = CMM_LOAD_SHARED(s->ring->head); /* the producer's own index */
        uint32_t n = 1 + (uint32_t)(ipc_test_mix(head ^ stream) % RESTARTS_BATCH_MAX);
        for (uint32_t i = 0; i < n; i++)
            ipc_test_fill(&batch[i], stream, (uint64_t)head + i);
        if (ipc_ring_push(s->ring, batch, n) == 0)
            ipc_test_backoff(&spins);
    }
    return 0;
}

/* Consumer incarnation: continues at tail, as a restarted node does. */
static int restarts_ring_consumer(void *p)
{
    struct restarts_ctl *s = p;
    static struct ipc_test_msg batch[RESTARTS_BATCH_MAX];
    unsigned spins = 0;
    for (;;) {
        uint32_t tail = CMM_LOAD_SHARED(s->ring->tail); /* the consumer's own index */
        uint32_t n = ipc_ring_pop(s->ring, batch, RESTARTS_BATCH_MAX);
        if (n == 0) {
            if (uatomic_read(&s->drain) && ipc_ring_empty(s->ring))
                return 0;
            ipc_test_backoff(&spins);
            continue;
        }
        for (uint32_t i = 0; i < n; i++) {
            if (!ipc_test_whole(&batch[i]))
                return 2; /* torn */
            if ((uint32_t)batch[i].seq != tail + i)
                return 3; /* another lap's slot, or one not yet written */
        }
        uatomic_add(&s->checked, n);
        uatomic_set(&s->consumed, 1);
    }
}

/* Producer and consumer are killed at random moments (in the middle of a copy among them) and
 * restarted, each continuing from the indices the dead one left: every message read is whole
 * and is the one pushed at that index. */
static void
test_ring_producer_and_consumer_restarts_never_yield_a_torn_or_stale_message(void **state)
{
    (void)state;
    enum { SLOTS = 1024, ROUNDS = 200 };
    struct restarts_ctl *s = ipc_test_shared(sizeof(*s));
    s->ring = ipc_ring_init(ipc_test_shared(ipc_ring_bytes(SLOTS)), SLOTS);
    s->stream = 1;
    pid_t producer = ipc_test_fork(restarts_ring_producer, s);
    pid_t consumer = ipc_test_fork(restarts_ring_consumer, s);
    unsigned seed = KILL_SEED;
    for (int i = 0; i < ROUNDS; i++) {
        usleep((useconds_t)(rand_r(&seed) % 500));
        uint32_t which = (uint32_t)rand_r(&seed) % 3; /* 0 producer, 1 consumer, 2 both */
        if (which != 1) {
            assert_int_equal(kill(producer, SIGKILL), 0);
            assert_int_equal(ipc_test_wait(producer), 100 + SIGKILL);
            s->stream++;
            producer = ipc_test_fork(restarts_ring_producer, s);
        }
        if (which != 0) {
            assert_int_equal(kill(consumer, SIGKILL), 0);
            int st = ipc_test_wait(consumer);
            if (st != 100 + SIGKILL)
                fail_msg("consumer failed with status %d before round %d", st, i);
            consumer = ipc_test_fork(restarts_ring_consumer, s);
        }
    }
    uatomic_set(&s->stop, 1);
    assert_int_equal(ipc_test_wait(producer), 0);
    uatomic_set(&s->drain, 1);
    assert_int_equal(ipc_test_wait(consumer), 0);
    print_message("ring restarts: %llu messages checked, %llu producer incarnations\n",
                  (unsigned long long)s->checked, (unsigned long long)s->stream);
    assert_true(s->checked > 0);
    assert_int_equal(s->ring->head, s->ring->tail);
    munmap(s->ring, ipc_ring_bytes(SLOTS));
    munmap(s, sizeof(*s));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ring_pop_on_empty_returns_zero),
        cmocka_unit_test(test_ring_capacity_is_the_slot_count),
        cmocka_unit_test(test_ring_holds_exactly_capacity_then_refuses_for_every_capacity),
        cmocka_unit_test(test_ring_batch_push_is_clipped_to_free_space),
        cmocka_unit_test(test_ring_batches_wrap_around_in_order),
        cmocka_unit_test(test_ring_index_overflow_past_2_32_keeps_order),
        cmocka_unit_test(test_ring_forked_stream_delivers_every_message_exactly_once_in_order),
        cmocka_unit_test(test_ring_producer_killed_at_random_moments_exposes_only_whole_messages),
        cmocka_unit_test(
            test_ring_producer_and_consumer_restarts_never_yield_a_torn_or_stale_message),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
