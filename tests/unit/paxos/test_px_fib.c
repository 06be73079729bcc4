/* test_px_fib.c: the replicated state machine (DESIGN.md "distributed Fibonacci") and its
 * exactly-once table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "px.h"

static struct px_value req(uint32_t client, uint32_t seq, uint64_t inc)
{
    return (struct px_value){.increment = inc, .client_id = client, .seq = seq};
}

static void test_fib_starts_at_f1_equal_one(void **state)
{
    (void)state;
    struct px_fib f;
    px_fib_init(&f);
    assert_int_equal(f.value, 1);
    assert_int_equal(f.applied, 0);
    assert_int_equal(f.requests, 0);
    assert_int_equal(f.digest, 0);
}

static void test_fib_rounds_walk_the_fibonacci_sequence(void **state)
{
    (void)state;
    struct px_fib f;
    px_fib_init(&f);
    uint64_t a = 0, b = 1; /* F(r-1), F(r) */
    for (uint32_t r = 1; r <= 100; r++) {
        struct px_value v = req(1, r, a);
        assert_false(px_fib_apply(&f, r, &v));
        uint64_t t = a + b;
        a = b;
        b = t;
    }
    /* after R rounds value = F(R+1) mod 2^64: F(101) mod 2^64 */
    assert_int_equal(f.value, b);
    assert_int_equal(f.value, 0x12062f76909038c5ull); /* F(101) mod 2^64 */
    assert_int_equal(f.applied, 100);
    assert_int_equal(f.requests, 100);
}

static void test_fib_value_wraps_modulo_2_64(void **state)
{
    (void)state;
    struct px_fib f;
    px_fib_init(&f);
    struct px_value v = req(1, 0, UINT64_MAX);
    px_fib_apply(&f, 1, &v);
    assert_int_equal(f.value, 0);
}

static void test_fib_duplicate_request_changes_nothing_but_applied(void **state)
{
    (void)state;
    struct px_fib f;
    px_fib_init(&f);
    struct px_value v = req(7, 3, 10);
    assert_false(px_fib_apply(&f, 1, &v));
    uint64_t value = f.value, digest = f.digest;
    assert_true(px_fib_apply(&f, 2, &v));
    assert_int_equal(f.value, value);
    assert_int_equal(f.digest, digest);
    assert_int_equal(f.requests, 1);
    assert_int_equal(f.applied, 2);
}

static void test_fib_noop_advances_applied_only_and_stays_out_of_digest(void **state)
{
    (void)state;
    struct px_fib f;
    px_fib_init(&f);
    struct px_value noop = {0};
    assert_false(px_fib_apply(&f, 1, &noop));
    assert_int_equal(f.applied, 1);
    assert_int_equal(f.value, 1);
    assert_int_equal(f.digest, 0);
    assert_int_equal(f.requests, 0);
}

static void test_fib_digest_depends_on_instance_and_order(void **state)
{
    (void)state;
    struct px_fib a, b;
    px_fib_init(&a);
    px_fib_init(&b);
    struct px_value x = req(1, 0, 5), y = req(1, 1, 6);
    px_fib_apply(&a, 1, &x);
    px_fib_apply(&a, 2, &y);
    px_fib_apply(&b, 1, &y);
    px_fib_apply(&b, 2, &x);
    assert_int_equal(a.value, b.value);       /* addition commutes ... */
    assert_int_not_equal(a.digest, b.digest); /* ... the digest does not */
    struct px_fib c;
    px_fib_init(&c);
    struct px_value noop = {0};
    px_fib_apply(&c, 1, &noop);
    px_fib_apply(&c, 2, &x);
    px_fib_apply(&c, 3, &y);
    assert_int_not_equal(a.digest, c.digest); /* same requests at other instances */
}

static void test_fib_out_of_order_seqs_each_apply_once(void **state)
{
    (void)state;
    struct px_fib f;
    px_fib_init(&f);
    uint32_t seqs[] = {2, 0, 3, 1, 2, 0, 5, 4, 5};
    bool dup[] = {false, false, false, false, true, true, false, false, true};
    for (uint32_t i = 0; i < 9; i++) {
        struct px_value v = req(9, seqs[i], 1);
        assert_int_equal(px_fib_apply(&f, i + 1, &v), dup[i]);
    }
    assert_int_equal(f.requests, 6);
    assert_int_equal(f.value, 7);
    assert_int_equal(f.clients[0].client_id, 9);
    assert_int_equal(f.clients[0].seq_low, 6); /* 0..5 all applied: window slid past them */
}

static void test_fib_seq_beyond_span_slides_window_and_older_count_as_applied(void **state)
{
    (void)state;
    struct px_fib f;
    px_fib_init(&f);
    struct px_value v = req(4, PX_DEDUP_SPAN + 10, 1);
    assert_false(px_fib_apply(&f, 1, &v));
    struct px_value old = req(4, 10, 1); /* now below seq_low: the client promised it done */
    assert_true(px_fib_apply(&f, 2, &old));
    struct px_value inside = req(4, 11, 1);
    assert_false(px_fib_apply(&f, 3, &inside));
    assert_int_equal(f.requests, 2);
}

static void test_fib_full_client_table_evicts_lowest_client_id(void **state)
{
    (void)state;
    struct px_fib f;
    px_fib_init(&f);
    for (uint32_t c = 1; c <= PX_CLIENTS_MAX; c++) {
        struct px_value v = req(c + 10, 0, 1);
        px_fib_apply(&f, c, &v);
    }
    struct px_value v = req(100, 0, 1);
    assert_false(px_fib_apply(&f, PX_CLIENTS_MAX + 1, &v));
    bool has11 = false, has100 = false;
    for (uint32_t k = 0; k < PX_CLIENTS_MAX; k++) {
        has11 |= f.clients[k].client_id == 11;
        has100 |= f.clients[k].client_id == 100;
    }
    assert_false(has11);
    assert_true(has100);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fib_starts_at_f1_equal_one),
        cmocka_unit_test(test_fib_rounds_walk_the_fibonacci_sequence),
        cmocka_unit_test(test_fib_value_wraps_modulo_2_64),
        cmocka_unit_test(test_fib_duplicate_request_changes_nothing_but_applied),
        cmocka_unit_test(test_fib_noop_advances_applied_only_and_stays_out_of_digest),
        cmocka_unit_test(test_fib_digest_depends_on_instance_and_order),
        cmocka_unit_test(test_fib_out_of_order_seqs_each_apply_once),
        cmocka_unit_test(test_fib_seq_beyond_span_slides_window_and_older_count_as_applied),
        cmocka_unit_test(test_fib_full_client_table_evicts_lowest_client_id),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
