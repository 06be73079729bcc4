/* test_px_acceptor.c: the acceptor ("Paxos Made Simple" 2.2: P1a, phase 1b and 2b), one node
 * driven with hand-made messages. Node 1 of 3 is the acceptor; node 0 proposes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "px_cluster.h"

#define B(counter, node) px_ballot_make(counter, node)

static struct px_msg accept_msg(px_ballot_t b, px_inst_t i, uint64_t inc)
{
    struct px_msg m = pxu_msg(PX_MSG_ACCEPT, px_ballot_node(b), PX_TO_ALL, b, i);
    m.u.accept.value = (struct px_value){.word = inc, .client_id = 1, .seq = (uint32_t)i};
    return m;
}

static void test_acceptor_promises_prepare_and_persists_promise_in_same_ready(void **state)
{
    (void)state;
    struct px_node *n = pxu_node(1, 3, false);
    struct px_ready *r = pxu_ready();
    struct px_msg p = pxu_msg(PX_MSG_PREPARE, 0, PX_TO_ALL, B(1, 0), 1);
    px_node_step(n, &p, r);
    assert_int_equal(r->recs_len, 1);
    assert_int_equal(r->recs[0].type, PX_REC_PROMISE);
    assert_int_equal(r->recs[0].ballot, B(1, 0));
    assert_int_equal(r->msgs_len, 1);
    assert_int_equal(r->msgs[0].type, PX_MSG_PROMISE);
    assert_int_equal(r->msgs[0].to, 0);
    assert_int_equal(r->msgs[0].ballot, B(1, 0));
    assert_int_equal(r->msgs[0].u.promise.entries, 0);   /* no entries */
    assert_int_equal(r->msgs[0].u.promise.truncated, 0); /* nothing truncated */
    pxu_free(n);
    free(r);
}

static void test_acceptor_rejects_prepare_below_promised_ballot_with_nack_p1a(void **state)
{
    (void)state;
    struct px_node *n = pxu_node(1, 3, false);
    struct px_ready *r = pxu_ready();
    struct px_msg hi = pxu_msg(PX_MSG_PREPARE, 2, PX_TO_ALL, B(5, 2), 1);
    px_node_step(n, &hi, r);
    px_ready_clear(r);
    struct px_msg lo = pxu_msg(PX_MSG_PREPARE, 0, PX_TO_ALL, B(4, 0), 1);
    px_node_step(n, &lo, r);
    assert_int_equal(r->recs_len, 0);
    assert_int_equal(r->msgs_len, 1);
    assert_int_equal(r->msgs[0].type, PX_MSG_NACK);
    assert_int_equal(r->msgs[0].to, 0);
    assert_int_equal(r->msgs[0].ballot, B(5, 2));
    assert_int_equal(r->msgs[0].u.nack.rejected_ballot, B(4, 0));
    pxu_free(n);
    free(r);
}

static void test_acceptor_rejects_accept_below_promised_ballot(void **state)
{
    (void)state;
    struct px_node *n = pxu_node(1, 3, false);
    struct px_ready *r = pxu_ready();
    struct px_msg hi = pxu_msg(PX_MSG_PREPARE, 2, PX_TO_ALL, B(5, 2), 1);
    px_node_step(n, &hi, r);
    px_ready_clear(r);
    struct px_msg a = accept_msg(B(4, 0), 1, 9);
    px_node_step(n, &a, r);
    assert_int_equal(r->recs_len, 0);
    assert_int_equal(pxu_count(r, PX_MSG_ACCEPTED), 0);
    assert_int_equal(r->msgs_len, 1);
    assert_int_equal(r->msgs[0].type, PX_MSG_NACK);
    assert_int_equal(r->msgs[0].ballot, B(5, 2));
    pxu_free(n);
    free(r);
}

static void test_acceptor_accept_records_value_before_accepted_reply(void **state)
{
    (void)state;
    struct px_node *n = pxu_node(1, 3, false);
    struct px_ready *r = pxu_ready();
    struct px_msg a = accept_msg(B(1, 0), 1, 9);
    px_node_step(n, &a, r);
    /* accepting at b implies promising b: both are durable before the reply */
    assert_int_equal(r->recs_len, 2);
    assert_int_equal(r->recs[0].type, PX_REC_PROMISE);
    assert_int_equal(r->recs[0].ballot, B(1, 0));
    assert_int_equal(r->recs[1].type, PX_REC_ACCEPTED);
    assert_int_equal(r->recs[1].instance, 1);
    assert_int_equal(r->recs[1].ballot, B(1, 0));
    assert_int_equal(r->recs[1].value.word, 9);
    assert_int_equal(r->msgs_len, 1);
    assert_int_equal(r->msgs[0].type, PX_MSG_ACCEPTED);
    assert_int_equal(r->msgs[0].to, 0);
    assert_int_equal(r->msgs[0].instance, 1);
    assert_int_equal(r->msgs[0].u.accepted.hi, 1);
    pxu_free(n);
    free(r);
}

static void test_acceptor_promise_reports_accepted_entries_numbered_then_count(void **state)
{
    (void)state;
    struct px_node *n = pxu_node(1, 3, false);
    struct px_ready *r = pxu_ready();
    for (px_inst_t i = 1; i <= 3; i++) {
        struct px_msg a = accept_msg(B(1, 0), i, 10 + i);
        px_node_step(n, &a, r);
    }
    px_ready_clear(r);
    struct px_msg p = pxu_msg(PX_MSG_PREPARE, 2, PX_TO_ALL, B(2, 2), 2);
    px_node_step(n, &p, r);
    assert_int_equal(r->msgs_len, 3);
    for (uint32_t k = 0; k < 2; k++) {
        const struct px_msg *e = &r->msgs[k];
        assert_int_equal(e->type, PX_MSG_PROMISE_ENTRY);
        assert_int_equal(e->to, 2);
        assert_int_equal(e->ballot, B(2, 2));
        assert_int_equal(e->instance, 2 + k); /* from = 2: instance 1 is not reported */
        assert_int_equal(e->u.promise_entry.accepted_ballot,
                         B(1, 0)); /* the ballot it was accepted at */
        assert_int_equal(e->u.promise_entry.value.word, 12 + k);
        assert_int_equal(e->u.promise_entry.seq, k + 1); /* sequence number */
    }
    assert_int_equal(r->msgs[2].type, PX_MSG_PROMISE);
    assert_int_equal(r->msgs[2].u.promise.entries, 2);
    assert_int_equal(r->msgs[2].instance, 2);
    pxu_free(n);
    free(r);
}

static void test_acceptor_promise_marks_decided_entries(void **state)
{
    (void)state;
    struct px_node *n = pxu_node(1, 3, false);
    struct px_ready *r = pxu_ready();
    struct px_msg a = accept_msg(B(1, 0), 1, 5);
    a.u.accept.decided_hi = 0;
    px_node_step(n, &a, r);
    struct px_msg d = pxu_msg(PX_MSG_DECIDE, 0, PX_TO_ALL, B(1, 0), 0);
    d.u.decide.hi = 1;
    px_node_step(n, &d, r);
    px_ready_clear(r);
    struct px_msg p = pxu_msg(PX_MSG_PREPARE, 2, PX_TO_ALL, B(2, 2), 1);
    px_node_step(n, &p, r);
    int k = pxu_find(r, PX_MSG_PROMISE_ENTRY, 0);
    assert_true(k >= 0);
    assert_int_equal(r->msgs[k].flags & PX_FLAG_DECIDED, PX_FLAG_DECIDED);
    assert_int_equal(r->msgs[k].u.promise_entry.accepted_ballot, 0);
    assert_int_equal(r->msgs[k].u.promise_entry.value.word, 5);
    pxu_free(n);
    free(r);
}

static void test_acceptor_long_promise_streams_over_calls_within_step_output_max(void **state)
{
    (void)state;
    struct px_node *n = pxu_node(1, 3, false);
    struct px_ready *r = pxu_ready();
    const uint32_t entries = 600;
    for (px_inst_t i = 1; i <= entries; i++) {
        struct px_msg a = accept_msg(B(1, 0), i, i);
        px_node_step(n, &a, r);
        px_ready_clear(r);
    }
    struct px_msg p = pxu_msg(PX_MSG_PREPARE, 2, PX_TO_ALL, B(2, 2), 1);
    px_node_step(n, &p, r);
    assert_true(r->msgs_len <= PX_STEP_OUTPUT_MAX);
    assert_int_equal(pxu_count(r, PX_MSG_PROMISE), 0); /* not finished in one call */
    uint32_t seq = 0, calls = 1;
    bool done = false;
    while (!done) {
        for (uint32_t i = 0; i < r->msgs_len; i++) {
            const struct px_msg *m = &r->msgs[i];
            if (m->type == PX_MSG_PROMISE_ENTRY) {
                assert_int_equal(m->u.promise_entry.seq, ++seq);
                assert_int_equal(m->instance, seq);
            } else if (m->type == PX_MSG_PROMISE) {
                assert_int_equal(m->u.promise.entries, entries);
                done = true;
            }
        }
        px_ready_clear(r);
        if (!done) {
            px_node_tick(n, r);
            assert_true(r->msgs_len <= PX_STEP_OUTPUT_MAX);
            calls++;
        }
    }
    assert_int_equal(seq, entries);
    assert_int_equal(calls, 3);
    pxu_free(n);
    free(r);
}

static void test_acceptor_batch_mode_coalesces_accepted_into_one_range_on_flush(void **state)
{
    (void)state;
    struct px_node *n = pxu_node(1, 3, true);
    struct px_ready *r = pxu_ready();
    for (px_inst_t i = 1; i <= 5; i++) {
        struct px_msg a = accept_msg(B(1, 0), i, i);
        px_node_step(n, &a, r);
    }
    assert_int_equal(pxu_count(r, PX_MSG_ACCEPTED), 0);
    assert_int_equal(r->recs_len, 6); /* one promise, five accepted */
    px_node_flush(n, r);
    assert_int_equal(pxu_count(r, PX_MSG_ACCEPTED), 1);
    int k = pxu_find(r, PX_MSG_ACCEPTED, 0);
    assert_int_equal(r->msgs[k].instance, 1);
    assert_int_equal(r->msgs[k].u.accepted.hi, 5);
    assert_int_equal(r->msgs[k].ballot, B(1, 0));
    pxu_free(n);
    free(r);
}

static void test_acceptor_batch_mode_splits_ranges_at_a_gap(void **state)
{
    (void)state;
    struct px_node *n = pxu_node(1, 3, true);
    struct px_ready *r = pxu_ready();
    px_inst_t order[] = {1, 2, 4, 5};
    for (uint32_t k = 0; k < 4; k++) {
        struct px_msg a = accept_msg(B(1, 0), order[k], 1);
        px_node_step(n, &a, r);
    }
    px_node_flush(n, r);
    assert_int_equal(pxu_count(r, PX_MSG_ACCEPTED), 2);
    int k = pxu_find(r, PX_MSG_ACCEPTED, 0);
    assert_int_equal(r->msgs[k].instance, 1);
    assert_int_equal(r->msgs[k].u.accepted.hi, 2);
    k = pxu_find(r, PX_MSG_ACCEPTED, (uint32_t)k + 1);
    assert_int_equal(r->msgs[k].instance, 4);
    assert_int_equal(r->msgs[k].u.accepted.hi, 5);
    pxu_free(n);
    free(r);
}

static void test_acceptor_restart_restores_promise_and_accepted_from_records(void **state)
{
    (void)state;
    struct px_node *n = pxu_node(1, 3, false);
    struct px_ready *r = pxu_ready();
    struct px_msg a = accept_msg(B(3, 0), 1, 77);
    px_node_step(n, &a, r);
    struct px_durable d = {0};
    d.promised = B(3, 0);
    struct px_rec recs[4];
    uint32_t nrec = r->recs_len;
    for (uint32_t i = 0; i < nrec; i++)
        recs[i] = r->recs[i];
    pxu_free(n);
    px_ready_clear(r);

    n = pxu_node(1, 3, false);
    px_node_load(n, &d);
    for (uint32_t i = 0; i < nrec; i++)
        px_node_load_rec(n, &recs[i]);
    /* all-zero history in d = a fresh node: nothing applied, the initial history */
    struct px_history fresh;
    px_history_init(&fresh);
    assert_memory_equal(px_node_history(n), &fresh, sizeof(fresh));
    struct px_msg lo = pxu_msg(PX_MSG_PREPARE, 2, PX_TO_ALL, B(2, 2), 1);
    px_node_step(n, &lo, r);
    assert_int_equal(r->msgs[0].type, PX_MSG_NACK); /* the promise survived */
    px_ready_clear(r);
    struct px_msg hi = pxu_msg(PX_MSG_PREPARE, 2, PX_TO_ALL, B(4, 2), 1);
    px_node_step(n, &hi, r);
    assert_int_equal(r->msgs_len, 2);
    assert_int_equal(r->msgs[0].type, PX_MSG_PROMISE_ENTRY); /* the acceptance survived */
    assert_int_equal(r->msgs[0].u.promise_entry.accepted_ballot, B(3, 0));
    assert_int_equal(r->msgs[0].u.promise_entry.value.word, 77);
    pxu_free(n);
    free(r);
}

static void test_acceptor_ring_full_of_undecided_entries_drops_accept(void **state)
{
    (void)state;
    struct px_node *n = pxu_node(1, 3, false);
    struct px_ready *r = pxu_ready();
    struct px_msg a = accept_msg(B(1, 0), 1, 1);
    px_node_step(n, &a, r);
    px_ready_clear(r);
    /* instance 1 is undecided, so instance 1 + PX_LOG_MAX has no slot */
    struct px_msg far = accept_msg(B(1, 0), 1 + PX_LOG_MAX, 1);
    px_node_step(n, &far, r);
    assert_int_equal(r->recs_len, 0);
    assert_int_equal(r->msgs_len, 0);
    assert_int_equal(px_node_stats(n)->dropped, 1);
    /* once everything up to 1 is decided, the slot can be reused */
    far.u.accept.decided_hi = 1;
    px_node_step(n, &far, r);
    assert_int_equal(pxu_count(r, PX_MSG_ACCEPTED), 1);
    pxu_free(n);
    free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_acceptor_promises_prepare_and_persists_promise_in_same_ready),
        cmocka_unit_test(test_acceptor_rejects_prepare_below_promised_ballot_with_nack_p1a),
        cmocka_unit_test(test_acceptor_rejects_accept_below_promised_ballot),
        cmocka_unit_test(test_acceptor_accept_records_value_before_accepted_reply),
        cmocka_unit_test(test_acceptor_promise_reports_accepted_entries_numbered_then_count),
        cmocka_unit_test(test_acceptor_promise_marks_decided_entries),
        cmocka_unit_test(test_acceptor_long_promise_streams_over_calls_within_step_output_max),
        cmocka_unit_test(test_acceptor_batch_mode_coalesces_accepted_into_one_range_on_flush),
        cmocka_unit_test(test_acceptor_batch_mode_splits_ranges_at_a_gap),
        cmocka_unit_test(test_acceptor_restart_restores_promise_and_accepted_from_records),
        cmocka_unit_test(test_acceptor_ring_full_of_undecided_entries_drops_accept),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
