/* test_px_learner.c: the learner ("Paxos Made Simple" 2.3 and 3): decisions from cumulative
 * DECIDEs (also piggybacked), applied strictly in order, acknowledged to the leader. Node 1 of
 * 3 learns; node 0 leads with ballot B. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "px_cluster.h"

#define B  px_ballot_make(1, 0)
#define B2 px_ballot_make(2, 2)

static void accept_in(struct px_node *n, struct px_ready *r, px_ballot_t b, px_inst_t i,
                      uint64_t inc, px_inst_t decided)
{
    struct px_msg m = pxu_msg(PX_MSG_ACCEPT, px_ballot_node(b), PX_TO_ALL, b, i);
    m.u.accept.value = (struct px_value){.word = inc, .client_id = 1, .seq = (uint32_t)inc};
    m.u.accept.decided_hi = decided;
    px_node_step(n, &m, r);
}

static void decide_in(struct px_node *n, struct px_ready *r, px_ballot_t b, px_inst_t hi)
{
    struct px_msg m = pxu_msg(PX_MSG_DECIDE, px_ballot_node(b), PX_TO_ALL, b, 0);
    m.u.decide.hi = hi;
    px_node_step(n, &m, r);
}

static void test_learner_applies_decided_entries_strictly_in_instance_order(void **state)
{
    (void)state;
    struct px_node *n = pxu_node(1, 3, false);
    struct px_ready *r = pxu_ready();
    accept_in(n, r, B, 2, 20, 0);
    accept_in(n, r, B, 3, 30, 0);
    decide_in(n, r, B, 1); /* 1 is chosen but its ACCEPT was lost: nothing can apply */
    assert_int_equal(r->apply_len, 0);
    accept_in(n, r, B, 1, 10, 3); /* (a retransmission) with decided-up-to 3 piggybacked */
    assert_int_equal(r->apply_len, 3);
    for (uint32_t k = 0; k < 3; k++) {
        assert_int_equal(r->apply[k].instance, k + 1);
        assert_int_equal(r->apply[k].value.word, 10 * (k + 1));
        assert_false(r->apply[k].duplicate);
    }
    /* (1,10,+10) at 1, (1,20,+20) at 2, (1,30,+30) at 3, in that order */
    uint64_t want = 0;
    for (uint32_t k = 1; k <= 3; k++)
        want = pxc_digest_step(want, k, 1, 10 * k, 10 * k);
    assert_int_equal(px_node_history(n)->digest, want);
    assert_int_equal(px_node_history(n)->requests, 3);
    assert_int_equal(px_node_history(n)->applied, 3);
    pxu_free(n);
    free(r);
}

static void test_learner_persists_a_decided_record_per_applied_entry(void **state)
{
    (void)state;
    struct px_node *n = pxu_node(1, 3, false);
    struct px_ready *r = pxu_ready();
    accept_in(n, r, B, 1, 10, 0);
    px_ready_clear(r);
    decide_in(n, r, B, 1);
    assert_int_equal(r->recs_len, 1);
    assert_int_equal(r->recs[0].type, PX_REC_DECIDED);
    assert_int_equal(r->recs[0].instance, 1);
    assert_int_equal(r->recs[0].value.word, 10);
    pxu_free(n);
    free(r);
}

static void test_learner_knows_value_only_if_it_is_of_the_deciding_ballot(void **state)
{
    (void)state;
    struct px_node *n = pxu_node(1, 3, false);
    struct px_ready *r = pxu_ready();
    accept_in(n, r, B, 1, 10, 0); /* accepted at B ... */
    px_ready_clear(r);
    decide_in(n, r, B2, 1); /* ... but B2 decided instance 1: its value may differ */
    assert_int_equal(r->apply_len, 0);
    int k = pxu_find(r, PX_MSG_CATCHUP_REQ, 0);
    assert_true(k >= 0);
    assert_int_equal(r->msgs[k].instance, 1);
    assert_int_equal(r->msgs[k].to, 2);
    pxu_free(n);
    free(r);
}

static void test_learner_only_node_learns_from_seen_accept_without_extra_messages(void **state)
{
    (void)state;
    struct px_config cfg = pxu_config(2, 3);
    cfg.roles[2] = PX_ROLE_LEARNER;
    struct px_node *n = pxu_node_cfg(&cfg);
    struct px_ready *r = pxu_ready();
    accept_in(n, r, B, 1, 10, 0);
    assert_int_equal(r->msgs_len, 0); /* not an acceptor: no ACCEPTED */
    assert_int_equal(r->recs_len, 0);
    decide_in(n, r, B, 1);
    assert_int_equal(r->apply_len, 1);
    assert_int_equal(r->apply[0].value.word, 10);
    assert_int_equal(r->msgs_len, 0); /* no catch-up needed */
    pxu_free(n);
    free(r);
}

static void test_learner_decide_before_accept_of_same_ballot_still_learns(void **state)
{
    (void)state;
    struct px_node *n = pxu_node(1, 3, false);
    struct px_ready *r = pxu_ready();
    decide_in(n, r, B, 1);
    assert_int_equal(r->apply_len, 0);
    accept_in(n, r, B, 1, 10, 0); /* the leader's retransmission arrives late */
    assert_int_equal(r->apply_len, 1);
    pxu_free(n);
    free(r);
}

static void test_learner_acks_applied_index_on_heartbeat(void **state)
{
    (void)state;
    struct px_node *n = pxu_node(1, 3, false);
    struct px_ready *r = pxu_ready();
    accept_in(n, r, B, 1, 10, 0);
    accept_in(n, r, B, 2, 10, 0);
    px_ready_clear(r);
    struct px_msg hb = pxu_msg(PX_MSG_HEARTBEAT, 0, PX_TO_ALL, B, 0);
    hb.u.heartbeat.decided_hi = 2;
    px_node_step(n, &hb, r);
    int k = pxu_find(r, PX_MSG_ACK, 0);
    assert_true(k >= 0);
    assert_int_equal(r->msgs[k].to, 0);
    assert_int_equal(r->msgs[k].instance, 2);
    pxu_free(n);
    free(r);
}

static void test_learner_apply_is_bounded_per_call_and_continues_on_next_call(void **state)
{
    (void)state;
    struct px_node *n = pxu_node(1, 3, false);
    struct px_ready *r = pxu_ready();
    for (px_inst_t i = 1; i <= 600; i++) {
        accept_in(n, r, B, i, 1, 0);
        px_ready_clear(r);
    }
    decide_in(n, r, B, 600);
    assert_true(r->apply_len <= PX_STEP_OUTPUT_MAX);
    assert_true(r->apply_len > 0);
    uint32_t total = r->apply_len, calls = 1;
    while (px_node_history(n)->applied < 600) {
        px_ready_clear(r);
        px_node_tick(n, r);
        assert_true(r->apply_len <= PX_STEP_OUTPUT_MAX);
        total += r->apply_len;
        calls++;
    }
    assert_int_equal(total, 600);
    assert_true(calls >= 3);
    assert_int_equal(px_node_stats(n)->catchup_reqs, 0); /* a full output is no gap */
    pxu_free(n);
    free(r);
}

static void test_learner_ignores_stale_decide_of_older_ballot_for_values(void **state)
{
    (void)state;
    struct px_node *n = pxu_node(1, 3, false);
    struct px_ready *r = pxu_ready();
    accept_in(n, r, B2, 1, 99, 0);
    decide_in(n, r, B2, 0);
    accept_in(n, r, B, 2, 10, 0); /* rejected by the acceptor: promised B2 */
    px_ready_clear(r);
    decide_in(n, r, B, 2);
    assert_int_equal(r->apply_len, 0); /* B < B2: the old leader's DECIDE proves no value */
    pxu_free(n);
    free(r);
}

static void test_learner_acks_every_eighth_of_the_ring_without_waiting_for_heartbeat(void **state)
{
    (void)state;
    struct px_node *n = pxu_node(1, 3, false);
    struct px_ready *r = pxu_ready();
    uint32_t acks = 0;
    px_inst_t last = 0;
    for (px_inst_t i = 1; i <= 1100; i++) {
        accept_in(n, r, B, i, 1, i - 1); /* instance i - 1 decided on the way */
        int k = pxu_find(r, PX_MSG_ACK, 0);
        if (k >= 0) {
            acks++;
            last = r->msgs[k].instance;
            assert_int_equal(r->msgs[k].to, 0);
        }
        px_ready_clear(r);
    }
    assert_int_equal(acks, 2); /* at 512 and 1024 applied (PX_LOG_MAX / 8) */
    assert_int_equal(last, 1024);
    pxu_free(n);
    free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_learner_applies_decided_entries_strictly_in_instance_order),
        cmocka_unit_test(test_learner_persists_a_decided_record_per_applied_entry),
        cmocka_unit_test(test_learner_knows_value_only_if_it_is_of_the_deciding_ballot),
        cmocka_unit_test(test_learner_only_node_learns_from_seen_accept_without_extra_messages),
        cmocka_unit_test(test_learner_decide_before_accept_of_same_ballot_still_learns),
        cmocka_unit_test(test_learner_acks_applied_index_on_heartbeat),
        cmocka_unit_test(test_learner_apply_is_bounded_per_call_and_continues_on_next_call),
        cmocka_unit_test(test_learner_ignores_stale_decide_of_older_ballot_for_values),
        cmocka_unit_test(test_learner_acks_every_eighth_of_the_ring_without_waiting_for_heartbeat),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
