/* test_doorbell.c: the futex doorbell (ipc/doorbell.h): a sleeping consumer is woken, a wait
 * times out, and a busy exchange makes almost no futex syscalls. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "ipc/doorbell.h"
#include "ipc/ring.h"
#include "ipc_test.h"

/* Long enough that a lost wake-up cannot be mistaken for a slow machine, short enough that a
 * broken doorbell fails the test instead of hanging it. */
#define WAKE_TIMEOUT_NS (UINT64_C(20) * 1000000000u)
#define BUSY_MSGS       UINT64_C(1000000)
#define BUSY_SLOTS      1024u
#define BUSY_BATCH      32u
/* Idle time (polling, yielding the core) before the consumer sleeps: the usual
 * spin-then-sleep of a node loop. */
#define BUSY_IDLE_NS_BEFORE_SLEEP UINT64_C(1000000)
/* Futex syscalls allowed for the busy exchange: ringing per push would be 31 250 wakes, one
 * per message 1 M; sleeping only after a millisecond without messages (the producer
 * descheduled on this shared machine) gives at most one wait and one wake per such gap. */
#define BUSY_SYSCALLS_MAX (BUSY_MSGS / 200)

struct bell_shared {
    struct ipc_doorbell bell;
    uint32_t announced; /* consumer -> parent: about to wait */
    int32_t wait_rc;
    uint64_t msgs;
    uint64_t received;
    uint64_t sleeps;
    struct ipc_ring *ring;
};

static struct bell_shared *bell_new(uint32_t slots)
{
    struct bell_shared *s = ipc_test_shared(sizeof(*s));
    ipc_doorbell_init(&s->bell);
    s->ring = ipc_ring_init(ipc_test_shared(ipc_ring_bytes(slots)), slots);
    return s;
}

static void bell_free(struct bell_shared *s, uint32_t slots)
{
    munmap(s->ring, ipc_ring_bytes(slots));
    munmap(s, sizeof(*s));
}

static void test_doorbell_ring_without_sleeper_makes_no_syscall(void **state)
{
    (void)state;
    struct bell_shared *s = bell_new(4);
    for (int i = 0; i < 1000; i++)
        ipc_doorbell_ring(&s->bell);
    assert_int_equal(ipc_doorbell_wake_syscalls(&s->bell), 0);
    bell_free(s, 4);
}

static void test_doorbell_wait_times_out_when_nobody_rings(void **state)
{
    (void)state;
    struct bell_shared *s = bell_new(4);
    ipc_doorbell_prepare(&s->bell);
    assert_true(ipc_ring_empty(s->ring));
    assert_int_equal(ipc_doorbell_wait(&s->bell, 20 * 1000000u), -ETIMEDOUT);
    assert_int_equal(ipc_doorbell_wait_syscalls(&s->bell), 1);
    /* The wait leaves the doorbell awake: a later ring makes no syscall. */
    ipc_doorbell_ring(&s->bell);
    assert_int_equal(ipc_doorbell_wake_syscalls(&s->bell), 0);
    bell_free(s, 4);
}

static void test_doorbell_cancelled_sleep_makes_no_syscall(void **state)
{
    (void)state;
    struct bell_shared *s = bell_new(4);
    struct ipc_test_msg m;
    ipc_test_fill(&m, 1, 0);
    ipc_doorbell_prepare(&s->bell);
    assert_int_equal(ipc_ring_push(s->ring, &m, 1), 1); /* a message arrives meanwhile */
    assert_false(ipc_ring_empty(s->ring));              /* the re-check finds it */
    ipc_doorbell_cancel(&s->bell);
    ipc_doorbell_ring(&s->bell);
    assert_int_equal(ipc_doorbell_wake_syscalls(&s->bell), 0);
    assert_int_equal(ipc_doorbell_wait_syscalls(&s->bell), 0);
    bell_free(s, 4);
}

static int sleeper(void *p)
{
    struct bell_shared *s = p;
    ipc_doorbell_prepare(&s->bell);
    if (!ipc_ring_empty(s->ring))
        return 2; /* the parent pushes only after we announced sleep */
    uatomic_set(&s->announced, 1);
    int rc = ipc_doorbell_wait(&s->bell, WAKE_TIMEOUT_NS);
    uatomic_set(&s->wait_rc, rc);
    struct ipc_test_msg m;
    if (rc != 0 || ipc_ring_pop(s->ring, &m, 1) != 1 || !ipc_test_whole(&m))
        return 3;
    return 0;
}

static void test_doorbell_sleeping_consumer_is_woken_by_one_ring(void **state)
{
    (void)state;
    struct bell_shared *s = bell_new(4);
    pid_t child = ipc_test_fork(sleeper, s);
    unsigned spins = 0;
    while (!uatomic_read(&s->announced))
        ipc_test_backoff(&spins);
    usleep(20000); /* most likely asleep in FUTEX_WAIT now; if not, the wait returns at once */
    struct ipc_test_msg m;
    ipc_test_fill(&m, 1, 0);
    assert_int_equal(ipc_ring_push(s->ring, &m, 1), 1);
    ipc_doorbell_ring(&s->bell);
    ipc_doorbell_ring(&s->bell); /* the second finds it awake: no syscall */
    assert_int_equal(ipc_test_wait(child), 0);
    assert_int_equal(s->wait_rc, 0);
    assert_int_equal(ipc_doorbell_wake_syscalls(&s->bell), 1);
    assert_int_equal(ipc_doorbell_wait_syscalls(&s->bell), 1);
    bell_free(s, 4);
}

/* Consumer of the busy exchange: polls, and sleeps on the doorbell only after
 * BUSY_IDLE_NS_BEFORE_SLEEP without messages, with the prepare / re-check / wait protocol. */
static int busy_consumer(void *p)
{
    struct bell_shared *s = p;
    struct ipc_test_msg m[BUSY_BATCH];
    uint64_t next = 0, idle_since = 0;
    unsigned spins = 0;
    while (next < s->msgs) {
        uint32_t n = ipc_ring_pop(s->ring, m, BUSY_BATCH);
        for (uint32_t i = 0; i < n; i++) {
            if (!ipc_test_whole(&m[i]) || m[i].seq != next++)
                return 2;
        }
        if (n > 0) {
            idle_since = 0;
            continue;
        }
        uint64_t now = ipc_test_now_ns();
        if (idle_since == 0)
            idle_since = now;
        if (now - idle_since < BUSY_IDLE_NS_BEFORE_SLEEP) {
            ipc_test_backoff(&spins);
            continue;
        }
        idle_since = 0;
        ipc_doorbell_prepare(&s->bell);
        if (!ipc_ring_empty(s->ring)) {
            ipc_doorbell_cancel(&s->bell);
            continue;
        }
        s->sleeps++;
        if (ipc_doorbell_wait(&s->bell, WAKE_TIMEOUT_NS) != 0)
            return 3; /* a lost wake-up */
    }
    uatomic_set(&s->received, next);
    return 0;
}

static int busy_producer(void *p)
{
    struct bell_shared *s = p;
    struct ipc_test_msg m[BUSY_BATCH];
    unsigned spins = 0;
    for (uint64_t seq = 0; seq < s->msgs;) {
        uint32_t n = BUSY_BATCH;
        if (n > s->msgs - seq)
            n = (uint32_t)(s->msgs - seq);
        for (uint32_t i = 0; i < n; i++)
            ipc_test_fill(&m[i], 1, seq + i);
        uint32_t k = ipc_ring_push(s->ring, m, n);
        if (k > 0)
            ipc_doorbell_ring(&s->bell); /* after every push, as a node does */
        else
            ipc_test_backoff(&spins);
        seq += k;
    }
    return 0;
}

static void test_doorbell_busy_exchange_of_1M_messages_makes_almost_no_syscalls(void **state)
{
    (void)state;
    struct bell_shared *s = bell_new(BUSY_SLOTS);
    s->msgs = BUSY_MSGS;
    pid_t pids[2];
    pids[0] = ipc_test_fork(busy_consumer, s);
    pids[1] = ipc_test_fork(busy_producer, s);
    assert_int_equal(ipc_test_wait_all(pids, 2), 0);
    assert_int_equal(s->received, BUSY_MSGS);
    uint64_t wakes = ipc_doorbell_wake_syscalls(&s->bell);
    uint64_t waits = ipc_doorbell_wait_syscalls(&s->bell);
    print_message("busy exchange: %llu messages, %llu wake and %llu wait syscalls\n",
                  (unsigned long long)BUSY_MSGS, (unsigned long long)wakes,
                  (unsigned long long)waits);
    assert_int_equal(waits, s->sleeps);
    assert_true(wakes <= waits);
    assert_true(wakes + waits <= BUSY_SYSCALLS_MAX);
    bell_free(s, BUSY_SLOTS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_doorbell_ring_without_sleeper_makes_no_syscall),
        cmocka_unit_test(test_doorbell_wait_times_out_when_nobody_rings),
        cmocka_unit_test(test_doorbell_cancelled_sleep_makes_no_syscall),
        cmocka_unit_test(test_doorbell_sleeping_consumer_is_woken_by_one_ring),
        cmocka_unit_test(test_doorbell_busy_exchange_of_1M_messages_makes_almost_no_syscalls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
