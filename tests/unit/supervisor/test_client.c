/* test_client.c: the supervisor's client: its durable high-water mark, the decided prefix it
 * records, the identity of resubmitted rounds, and the cross-check of a learner's exactly-once
 * table against "global rounds 1..g applied, nothing else". */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "supervisor/client.h"

static struct client cl;

/* Submits what the client lets go now; returns how many. */
static uint32_t take_all(struct client *c, struct px_value *out, uint32_t max)
{
    uint32_t n = 0;
    while (n < max && client_next(c, 0, &out[n]))
        n++;
    return n;
}

static uint64_t global_of(const struct px_value *v)
{
    return (uint64_t)(v->seq - 1) * CLIENT_IDS + v->client_id;
}

static void test_client_submits_nothing_before_a_durable_high_water_mark(void **state)
{
    (void)state;
    struct px_value v;
    client_init(&cl, 10000, 64, 0);
    assert_false(client_next(&cl, 0, &v));
    assert_int_equal(client_hwm_wanted(&cl), CLIENT_HWM_CHUNK);
}

/* Long commands: a smaller reservation, so a crash leaves fewer rounds in doubt for the next
 * run to resubmit whole (a 1 MiB run left 4086 in doubt and took minutes to resolve). */
static void test_client_reserves_what_hwm_chunk_says(void **state)
{
    (void)state;
    struct px_value v;
    client_init(&cl, 10000, 2, 0);
    cl.hwm_chunk = 128;
    assert_false(client_next(&cl, 0, &v));
    assert_int_equal(client_hwm_wanted(&cl), 128);
}

static void test_client_never_submits_beyond_the_high_water_mark(void **state)
{
    (void)state;
    static struct px_value v[CLIENT_SPAN_MAX];
    client_init(&cl, 10000, 64, 0);
    client_hwm_durable(&cl, 40);
    assert_int_equal(take_all(&cl, v, CLIENT_SPAN_MAX), 40);
    assert_int_equal(global_of(&v[39]), 40);
    /* Fewer than a window reserved: the client asks for the next chunk from what it sent. */
    assert_int_equal(client_hwm_wanted(&cl), 40 + CLIENT_HWM_CHUNK);
}

static void test_client_asks_for_no_mark_while_a_window_is_reserved(void **state)
{
    (void)state;
    static struct px_value v[CLIENT_SPAN_MAX];
    client_init(&cl, 10000, 64, 100);
    client_hwm_durable(&cl, 100 + 64);
    assert_int_equal(client_hwm_wanted(&cl), 0);
    assert_int_equal(take_all(&cl, v, 1), 1);
    assert_int_equal(global_of(&v[0]), 101);
    assert_int_equal(client_hwm_wanted(&cl), 101 + CLIENT_HWM_CHUNK);
}

static void test_client_mark_stops_at_the_last_round_of_the_run(void **state)
{
    (void)state;
    client_init(&cl, 500, 64, 7000);
    assert_int_equal(client_hwm_wanted(&cl), 7500);
    client_hwm_durable(&cl, 7500);
    assert_int_equal(client_hwm_wanted(&cl), 0);
}

static void test_client_decided_prefix_waits_for_the_oldest_undecided_round(void **state)
{
    (void)state;
    struct px_value v[8];
    client_init(&cl, 100, 8, 1000);
    client_hwm_durable(&cl, 1100);
    assert_int_equal(take_all(&cl, v, 8), 8);
    assert_int_equal(client_decided_prefix(&cl), 1000);
    assert_true(client_decided(&cl, &v[1], 5, 0)); /* round 2 before round 1 */
    assert_int_equal(client_decided_prefix(&cl), 1000);
    assert_true(client_decided(&cl, &v[0], 6, 0));
    assert_int_equal(client_decided_prefix(&cl), 1002);
    assert_false(client_decided(&cl, &v[0], 0, 0)); /* a second reply changes nothing */
    assert_int_equal(cl.done, 2);
}

static void test_client_resolving_rounds_in_doubt_resubmits_their_identity(void **state)
{
    (void)state;
    struct px_value first[4], again[4];
    /* The run that submitted global rounds 13..16 ... */
    client_init(&cl, 16, 4, 12);
    client_hwm_durable(&cl, 16);
    assert_int_equal(take_all(&cl, first, 4), 4);
    /* ... and the next run, resolving them from its record: same ids, seqs and increments. */
    client_init(&cl, 4, 4, 12);
    client_hwm_durable(&cl, 16);
    assert_int_equal(take_all(&cl, again, 4), 4);
    assert_memory_equal(first, again, sizeof(first));
    assert_int_equal(again[0].word, client_fib(12));
    assert_int_equal(global_of(&again[3]), 16);
}

/* A crash keeps only the record: the rounds between the decided prefix and the durable mark
 * are in doubt, the continued run's base is the mark (their identities are used up), and the
 * client that resolves them resubmits exactly those rounds, from the oldest undecided one. */
static void test_record_after_a_crash_resolves_the_rounds_between_prefix_and_mark(void **state)
{
    (void)state;
    static struct client resolver;
    struct px_value v[8], again[64];
    struct client_record rec = {0};
    client_init(&cl, 100, 8, 0);
    client_hwm_durable(&cl, 40);
    client_record_take(&rec, &cl);
    assert_int_equal(take_all(&cl, v, 8), 8);
    for (int k = 0; k < 5; k++)
        if (k != 3)
            assert_true(client_decided(&cl, &v[k], (uint64_t)k + 1, 0)); /* 1..3 and 5 */
    client_record_take(&rec, &cl);
    assert_int_equal(rec.decided, 3);
    assert_int_equal(rec.submitted, 40);
    struct client_resume from = client_resume_of(&rec);
    assert_int_equal(from.base, 40);
    assert_int_equal(from.in_doubt, 37);
    assert_true(client_resolve_init(&resolver, &from, 64));
    assert_int_equal(take_all(&resolver, again, 64), 37);
    assert_memory_equal(&again[0], &v[3], sizeof(v[3])); /* round 4, as first submitted */
    assert_int_equal(global_of(&again[36]), 40);
    /* The record only grows: a client that knows less changes nothing. */
    client_init(&cl, 10, 8, 0);
    client_record_take(&rec, &cl);
    assert_int_equal(rec.decided, 3);
    assert_int_equal(rec.submitted, 40);
}

static void test_record_with_nothing_in_doubt_resolves_nothing(void **state)
{
    (void)state;
    struct client_record rec = {.decided = 250, .submitted = 250};
    struct client_resume from = client_resume_of(&rec);
    assert_int_equal(from.base, 250);
    assert_int_equal(from.in_doubt, 0);
    client_init(&cl, 7, 1, 3);
    assert_false(client_resolve_init(&cl, &from, 8));
    assert_int_equal(cl.base, 3); /* untouched */
}

static void test_client_counts_a_reply_with_another_value_and_ignores_it(void **state)
{
    (void)state;
    struct px_value v;
    client_init(&cl, 10, 1, 0);
    client_hwm_durable(&cl, 10);
    assert_true(client_next(&cl, 0, &v));
    struct px_value forged = v;
    forged.word += 1;
    assert_false(client_decided(&cl, &forged, 1, 0));
    assert_int_equal(cl.bad_replies, 1);
    assert_int_equal(cl.done, 0);
    assert_true(client_decided(&cl, &v, 1, 0));
}

/* A learner's table after applying global rounds 1..g, skipping `skip` (0: none). */
static void table_of(struct px_history *f, uint64_t g, uint64_t skip)
{
    px_history_init(f);
    for (uint64_t r = 1; r <= g; r++) {
        struct px_value v = {.client_id = (uint32_t)((r - 1) % CLIENT_IDS + 1),
                             .seq = (uint32_t)((r - 1) / CLIENT_IDS + 1),
                             .word = r};
        if (r != skip)
            px_history_apply(f, r, &v);
    }
}

static void test_table_of_exactly_the_recorded_rounds_agrees(void **state)
{
    (void)state;
    static struct px_history f;
    table_of(&f, 0, 0);
    assert_int_equal(client_table_check(&f, 0), CLIENT_TABLE_AGREES);
    table_of(&f, 5, 0);
    assert_int_equal(client_table_check(&f, 5), CLIENT_TABLE_AGREES);
    /* Past the exactly-once span of every client id. */
    table_of(&f, 20011, 0);
    assert_int_equal(client_table_check(&f, 20011), CLIENT_TABLE_AGREES);
}

static void test_table_with_a_request_the_client_never_submitted_is_unknown(void **state)
{
    (void)state;
    static struct px_history f;
    table_of(&f, 501, 0);
    assert_int_equal(client_table_check(&f, 500), CLIENT_TABLE_UNKNOWN);
    assert_int_equal(client_table_check(&f, 0), CLIENT_TABLE_UNKNOWN);
    table_of(&f, 20011, 0);
    assert_int_equal(client_table_check(&f, 100), CLIENT_TABLE_UNKNOWN);
}

static void test_table_without_a_recorded_round_is_missing(void **state)
{
    (void)state;
    static struct px_history f;
    table_of(&f, 500, 123);
    assert_int_equal(client_table_check(&f, 500), CLIENT_TABLE_MISSING);
    table_of(&f, 500, 0);
    assert_int_equal(client_table_check(&f, 501), CLIENT_TABLE_MISSING);
    assert_int_equal(client_table_check(&f, 20000), CLIENT_TABLE_MISSING);
}

static void test_learners_with_trailing_duplicates_and_no_ops_have_the_same_history(void **state)
{
    (void)state;
    static struct px_history a, b;
    table_of(&a, 900, 0);
    table_of(&b, 900, 0);
    /* b applied 64 more instances after the run's last request: a duplicate decided again
     * (a resubmission answered late) and no-ops. The soak saw this as DIVERGED when applied
     * indexes had to be equal (seed 20261201, cases 726 and 907). */
    struct px_value dup = {.client_id = 1, .seq = 1, .word = 1};
    struct px_value noop = {0};
    px_history_apply(&b, 901, &dup);
    for (px_inst_t i = 902; i <= 964; i++)
        px_history_apply(&b, i, &noop);
    assert_int_not_equal(a.applied, b.applied);
    assert_true(client_same_history(&a, &b));
    assert_true(client_same_history(&b, &a));
}

static void test_learners_that_applied_a_request_at_another_instance_differ(void **state)
{
    (void)state;
    static struct px_history a, b;
    table_of(&a, 900, 0);
    table_of(&b, 899, 0);
    struct px_value last = {.client_id = (uint32_t)(899 % CLIENT_IDS + 1),
                            .seq = (uint32_t)(899 / CLIENT_IDS + 1),
                            .word = 900};
    px_history_apply(&b, 901, &last); /* the same request, one instance later */
    /* the same requests, the same words: the same count and exactly-once table ... */
    assert_memory_equal(a.clients, b.clients, sizeof(a.clients));
    assert_int_equal(a.requests, b.requests);
    /* ... but not the same history (the digest chain binds each request to its instance) */
    assert_false(client_same_history(&a, &b));
    table_of(&b, 899, 0);
    assert_false(client_same_history(&a, &b)); /* one request short */
}

/* A leader death: every outstanding request goes out again at once, not after the
 * resubmission timer; decided ones are not resent, and a resent one is due again only after
 * the timer (the expiry is one-shot). */
static void test_client_expire_all_makes_every_outstanding_request_due_at_once(void **state)
{
    (void)state;
    static struct px_value v[CLIENT_SPAN_MAX];
    static struct px_value again[CLIENT_SPAN_MAX];
    client_init(&cl, 100, 8, 0);
    client_hwm_durable(&cl, 100);
    assert_int_equal(take_all(&cl, v, CLIENT_SPAN_MAX), 8);
    assert_true(client_decided(&cl, &v[2], 3, 1000));
    uint64_t soon = 1000; /* far below CLIENT_RESUBMIT_NS */
    assert_int_equal(client_overdue(&cl, soon, again, CLIENT_SPAN_MAX), 0);
    client_expire_all(&cl);
    assert_int_equal(client_overdue(&cl, soon, again, CLIENT_SPAN_MAX), 7);
    assert_int_equal(global_of(&again[0]), 1);
    assert_int_equal(global_of(&again[2]), 4); /* round 3 was decided: not resent */
    assert_int_equal(again[2].word, v[3].word);
    assert_int_equal(cl.resubmits, 7);
    assert_int_equal(client_overdue(&cl, soon + 1, again, CLIENT_SPAN_MAX), 0);
    assert_int_equal(client_overdue(&cl, soon + CLIENT_RESUBMIT_NS, again, CLIENT_SPAN_MAX), 7);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_client_submits_nothing_before_a_durable_high_water_mark),
        cmocka_unit_test(test_client_reserves_what_hwm_chunk_says),
        cmocka_unit_test(test_client_never_submits_beyond_the_high_water_mark),
        cmocka_unit_test(test_client_asks_for_no_mark_while_a_window_is_reserved),
        cmocka_unit_test(test_client_mark_stops_at_the_last_round_of_the_run),
        cmocka_unit_test(test_client_decided_prefix_waits_for_the_oldest_undecided_round),
        cmocka_unit_test(test_client_resolving_rounds_in_doubt_resubmits_their_identity),
        cmocka_unit_test(test_record_after_a_crash_resolves_the_rounds_between_prefix_and_mark),
        cmocka_unit_test(test_record_with_nothing_in_doubt_resolves_nothing),
        cmocka_unit_test(test_client_expire_all_makes_every_outstanding_request_due_at_once),
        cmocka_unit_test(test_client_counts_a_reply_with_another_value_and_ignores_it),
        cmocka_unit_test(test_table_of_exactly_the_recorded_rounds_agrees),
        cmocka_unit_test(test_table_with_a_request_the_client_never_submitted_is_unknown),
        cmocka_unit_test(test_table_without_a_recorded_round_is_missing),
        cmocka_unit_test(test_learners_with_trailing_duplicates_and_no_ops_have_the_same_history),
        cmocka_unit_test(test_learners_that_applied_a_request_at_another_instance_differ),
    };
    return cmocka_run_group_tests_name("supervisor_client", tests, NULL, NULL);
}
