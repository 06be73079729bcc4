/* test_px_lazy.c: the core marks the messages whose receiver need not be woken (PX_FLAG_LAZY):
 * DECIDE, HEARTBEAT and ACK, and no other type. The transport only obeys the mark, so a
 * message the core leaves unmarked always wakes its reader. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "px_cluster.h"

struct seen {
    uint64_t marked[PX_MSG_TYPE_COUNT];
    uint64_t unmarked[PX_MSG_TYPE_COUNT];
};

static bool record_mark(const struct px_msg *m, uint16_t to, void *ctx)
{
    (void)to;
    struct seen *s = ctx;
    if (m->type < PX_MSG_TYPE_COUNT) {
        if (m->flags & PX_FLAG_LAZY)
            s->marked[m->type]++;
        else
            s->unmarked[m->type]++;
    }
    return false; /* observe only: every message is delivered */
}

static bool lazy_type(uint8_t type)
{
    return type == PX_MSG_DECIDE || type == PX_MSG_HEARTBEAT || type == PX_MSG_ACK;
}

static void run_quiet(struct pxc *c, uint32_t ticks)
{
    for (uint32_t t = 0; t < ticks; t++) {
        pxc_tick_all(c);
        pxc_run(c, 100000);
    }
}

/* One run that makes the core produce most message types: elections, forwarded client values,
 * rotation, a crash and a restart that catches up, a duelling candidate. */
static void busy_run(struct pxc *c)
{
    pxc_campaign(c, 0);
    pxc_run(c, 100000);
    uint32_t seq = 1;
    for (; seq <= 40; seq++) {
        /* to a follower too: it forwards (CLIENT) to the leader */
        assert_int_equal(pxc_submit(c, (uint16_t)(seq % 3), 1, seq, seq), 0);
        pxc_run(c, 100000);
    }
    run_quiet(c, 20);
    pxc_crash(c, 2);
    for (; seq <= 80; seq++) {
        int l = pxc_leader(c);
        assert_true(l >= 0);
        assert_int_equal(pxc_submit(c, (uint16_t)l, 1, seq, seq), 0);
        pxc_run(c, 100000);
    }
    pxc_start_node(c, 2); /* behind by 40 instances: it asks for them (CATCHUP_*) */
    run_quiet(c, 40);
    int l = pxc_leader(c);
    assert_true(l >= 0);
    uint16_t rival = (uint16_t)((l + 1) % 3);
    pxc_campaign(c, rival); /* a second candidate: the old ballot is refused (NACK) */
    pxc_run(c, 100000);
    run_quiet(c, 40);
}

static void test_core_marks_exactly_decide_heartbeat_and_ack_lazy(void **state)
{
    (void)state;
    struct pxc *c = pxc_new(3, NULL, 4, 10);
    struct seen s = {0};
    c->filter = record_mark;
    c->filter_ctx = &s;
    busy_run(c);
    for (uint8_t t = 1; t < PX_MSG_TYPE_COUNT; t++) {
        if (lazy_type(t))
            assert_int_equal(s.unmarked[t], 0);
        else
            assert_int_equal(s.marked[t], 0);
    }
    /* the run did produce the lazy types and the urgent ones around them */
    static const uint8_t lazy[] = {PX_MSG_DECIDE, PX_MSG_HEARTBEAT, PX_MSG_ACK};
    for (size_t k = 0; k < sizeof(lazy); k++)
        assert_true(s.marked[lazy[k]] > 0);
    static const uint8_t urgent[] = {PX_MSG_PREPARE,       PX_MSG_PROMISE, PX_MSG_ACCEPT,
                                     PX_MSG_ACCEPTED,      PX_MSG_CLIENT,  PX_MSG_CATCHUP_REQ,
                                     PX_MSG_CATCHUP_ENTRY, PX_MSG_TAKEOVER};
    for (size_t k = 0; k < sizeof(urgent); k++)
        assert_true(s.unmarked[urgent[k]] > 0);
    /* replies go to the client endpoint, past the filter: they are urgent too */
    assert_true(c->replies_len > 0);
    for (size_t k = 0; k < c->replies_len; k++)
        assert_int_equal(c->replies[k].flags & PX_FLAG_LAZY, 0);
    pxc_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_core_marks_exactly_decide_heartbeat_and_ack_lazy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
