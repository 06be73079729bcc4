/* test_px_client.c: client requests: forwarding to the leader, bounded queue, replies to the
 * client endpoint (PX_CLIENT_NODE = N), exactly-once application by (client_id, seq). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "px_cluster.h"

static void test_client_request_at_follower_is_forwarded_to_known_leader(void **state)
{
    (void)state;
    struct px_node *n = pxu_node(1, 3, false);
    struct px_ready *r = pxu_ready();
    struct px_msg hb = pxu_msg(PX_MSG_HEARTBEAT, 2, PX_TO_ALL, px_ballot_make(1, 2), 0);
    px_node_step(n, &hb, r);
    px_ready_clear(r);
    struct px_value v = {.word = 5, .client_id = 3, .seq = 4};
    assert_int_equal(px_node_submit(n, &v, r), 0);
    assert_int_equal(r->msgs_len, 1);
    assert_int_equal(r->msgs[0].type, PX_MSG_CLIENT);
    assert_int_equal(r->msgs[0].to, 2);
    assert_int_equal(r->msgs[0].u.client.value.seq, 4);
    assert_int_equal((r->msgs[0].flags & PX_FLAG_HOPS) >> PX_FLAG_HOPS_SHIFT, 1);
    pxu_free(n);
    free(r);
}

static void test_client_forwarding_stops_after_hops_max_and_queues(void **state)
{
    (void)state;
    struct px_node *n = pxu_node(1, 3, false);
    struct px_ready *r = pxu_ready();
    struct px_msg hb = pxu_msg(PX_MSG_HEARTBEAT, 2, PX_TO_ALL, px_ballot_make(1, 2), 0);
    px_node_step(n, &hb, r);
    px_ready_clear(r);
    struct px_msg c = pxu_msg(PX_MSG_CLIENT, 0, 1, 0, 0);
    c.u.client.value = (struct px_value){.word = 5, .client_id = 3, .seq = 4};
    c.flags = PX_HOPS_MAX << PX_FLAG_HOPS_SHIFT; /* forwarded twice: two nodes disagree */
    px_node_step(n, &c, r);
    assert_int_equal(r->msgs_len, 0); /* queued until a leader change, not bounced */
    pxu_free(n);
    free(r);
}

static void test_client_reply_goes_to_client_endpoint_after_decision(void **state)
{
    (void)state;
    struct pxc *c = pxc_new(3, NULL, 4, 0);
    pxc_campaign(c, 0);
    pxc_run(c, 100000);
    assert_int_equal(pxc_submit(c, 1, 7, 1, 100), 0); /* at a follower: forwarded */
    pxc_run(c, 100000);
    assert_int_equal(c->replies_len, 1);
    assert_int_equal(c->replies[0].type, PX_MSG_CLIENT_REPLY);
    assert_int_equal(c->replies[0].to, 3);
    assert_int_equal(c->replies[0].from, 0);
    assert_int_equal(c->replies[0].u.client_reply.value.client_id, 7);
    assert_int_equal(c->replies[0].u.client_reply.value.seq, 1);
    assert_int_equal(c->replies[0].instance, 1);
    pxc_free(c);
}

static void test_client_resubmitted_request_is_applied_once_and_flagged_duplicate(void **state)
{
    (void)state;
    struct pxc *c = pxc_new(3, NULL, 4, 0);
    pxc_campaign(c, 0);
    pxc_run(c, 100000);
    pxc_submit(c, 0, 7, 1, 100);
    pxc_submit(c, 0, 7, 1, 100); /* the client timed out and resent it */
    pxc_run(c, 100000);
    for (uint16_t i = 0; i < 3; i++) {
        const struct pxc_node *nd = &c->node[i];
        assert_int_equal(nd->applied_len, 2); /* decided twice ... */
        assert_false(nd->applied[0].duplicate);
        assert_true(nd->applied[1].duplicate); /* ... applied once */
        assert_int_equal(nd->applied[0].instance, 1);
        assert_int_equal(nd->applied[1].instance, 2);
        const struct px_history *f = px_node_history(nd->px);
        assert_int_equal(f->requests, 1);
        assert_int_equal(f->applied, 2);
        assert_int_equal(f->digest, pxc_digest_step(0, 1, 7, 1, 100)); /* only the first */
        assert_int_equal(nd->st.sm.value, 1 + 100);
    }
    assert_int_equal(c->replies_len, 2); /* both proposals are answered */
    pxc_free(c);
}

static void test_client_submit_on_full_queue_returns_eagain(void **state)
{
    (void)state;
    struct px_node *n = pxu_node(2, 3, false);
    struct px_ready *r = pxu_ready();
    struct px_value v = {.word = 1, .client_id = 1};
    for (uint32_t s = 0; s < PX_QUEUE_MAX; s++) {
        v.seq = s;
        assert_int_equal(px_node_submit(n, &v, r), 0);
    }
    v.seq = PX_QUEUE_MAX;
    assert_int_equal(px_node_submit(n, &v, r), -EAGAIN);
    assert_int_equal(r->msgs_len, 0);
    pxu_free(n);
    free(r);
}

/* A CLIENT message (from the client or forwarded by a peer) cannot be pushed back: at a full
 * queue the value is dropped, and the drop is counted where the node loop can report it (the
 * client resubmits it after its timeout). A local submit is refused instead, never counted. */
static void test_client_message_on_full_queue_is_dropped_and_counted(void **state)
{
    (void)state;
    struct px_node *n = pxu_node(2, 3, false);
    struct px_ready *r = pxu_ready();
    struct px_value v = {.word = 1, .client_id = 1};
    for (uint32_t s = 0; s < PX_QUEUE_MAX; s++) {
        v.seq = s;
        assert_int_equal(px_node_submit(n, &v, r), 0);
    }
    v.seq = PX_QUEUE_MAX;
    assert_int_equal(px_node_submit(n, &v, r), -EAGAIN);
    assert_int_equal(px_node_stats(n)->requests_dropped, 0);
    struct px_msg m = pxu_msg(PX_MSG_CLIENT, 3, 2, 0, 0);
    m.u.client.value = v;
    px_node_step(n, &m, r);
    m.from = 0;                         /* forwarded by a peer */
    m.flags = 1u << PX_FLAG_HOPS_SHIFT; /* one hop */
    px_node_step(n, &m, r);
    assert_int_equal(px_node_stats(n)->requests_dropped, 2);
    assert_int_equal(r->msgs_len, 0);
    pxu_free(n);
    free(r);
}

static void test_client_values_queued_without_leader_are_proposed_once_one_is_elected(void **state)
{
    (void)state;
    struct pxc *c = pxc_new(3, NULL, 4, 0);
    for (uint32_t s = 1; s <= 10; s++)
        assert_int_equal(pxc_submit(c, 2, 1, s, s), 0); /* no leader yet: queued at 2 */
    assert_int_equal(c->q_len, 0);
    assert_true(pxc_until(c, pxc_has_leader, NULL, 100));
    pxc_run(c, 100000);
    for (uint32_t t = 0; t < 10; t++) {
        pxc_tick_all(c);
        pxc_run(c, 100000);
    }
    for (uint16_t i = 0; i < 3; i++) {
        const struct px_history *f = px_node_history(c->node[i].px);
        const struct pxc_sm *sm = &c->node[i].st.sm;
        assert_int_equal(f->requests, 10);
        assert_true(sm->valid);
        assert_int_equal(sm->value, 1 + 55); /* each of 1..10 applied once */
        assert_int_equal(sm->requests, 10);
        assert_int_equal(sm->applied, f->applied);
        assert_int_equal(f->digest, sm->digest);
        assert_int_equal(f->digest, px_node_history(c->node[0].px)->digest);
    }
    pxc_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_client_request_at_follower_is_forwarded_to_known_leader),
        cmocka_unit_test(test_client_forwarding_stops_after_hops_max_and_queues),
        cmocka_unit_test(test_client_reply_goes_to_client_endpoint_after_decision),
        cmocka_unit_test(test_client_resubmitted_request_is_applied_once_and_flagged_duplicate),
        cmocka_unit_test(test_client_submit_on_full_queue_returns_eagain),
        cmocka_unit_test(test_client_message_on_full_queue_is_dropped_and_counted),
        cmocka_unit_test(test_client_values_queued_without_leader_are_proposed_once_one_is_elected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
