/* test_px_history.c: the history every learner keeps of what it applied -- the digest chain
 * over the requests, their count, the highest instance -- and its exactly-once table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "px.h"
#include "px_mix.h"

static struct px_value req(uint32_t client, uint32_t seq, uint64_t inc)
{
    return (struct px_value){.word = inc, .client_id = client, .seq = seq};
}

/* The chain as px.h defines it, spelled out here: one applied request at `instance`. */
static uint64_t chain(uint64_t d, px_inst_t instance, uint32_t client, uint32_t seq, uint64_t word)
{
    d = px_mix64(d ^ instance);
    d = px_mix64(d ^ (((uint64_t)client << 32) | seq));
    return px_mix64(d ^ word);
}

static bool all_zero(const void *p, size_t bytes)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < bytes; i++)
        if (b[i] != 0)
            return false;
    return true;
}

static void test_history_starts_all_zero(void **state)
{
    (void)state;
    struct px_history f;
    memset(&f, 0xa5, sizeof(f));
    px_history_init(&f);
    assert_int_equal(f.applied, 0);
    assert_int_equal(f.requests, 0);
    assert_int_equal(f.digest, 0);
    assert_true(all_zero(&f, sizeof(f))); /* the dedup table too: every slot free */
}

static void test_history_rounds_extend_the_digest_chain_request_by_request(void **state)
{
    (void)state;
    struct px_history f;
    px_history_init(&f);
    uint64_t a = 0, b = 1; /* F(r-1), F(r): the Fibonacci increments, as opaque words */
    uint64_t want = 0;
    for (uint32_t r = 1; r <= 100; r++) {
        struct px_value v = req(1, r, a);
        assert_false(px_history_apply(&f, r, &v));
        want = chain(want, r, 1, r, a);
        assert_int_equal(f.digest, want); /* after every request, not only at the end */
        assert_int_equal(f.applied, r);
        assert_int_equal(f.requests, r);
        uint64_t t = a + b;
        a = b;
        b = t;
    }
    /* pinned: the chain must not change under a build or a refactoring (it is persisted) */
    assert_int_equal(f.digest, 0x6af45a0d5b178f7aull);
    assert_int_equal(f.applied, 100);
    assert_int_equal(f.requests, 100);
}

static void test_history_digest_chain_is_the_formula_and_sees_every_field(void **state)
{
    (void)state;
    /* One request at instance 9: mix(mix(mix(0 ^ 9) ^ (3 << 32 | 5)) ^ word). */
    struct px_history f;
    px_history_init(&f);
    struct px_value v = req(3, 5, UINT64_MAX);
    assert_false(px_history_apply(&f, 9, &v));
    uint64_t one = px_mix64(px_mix64(px_mix64(9) ^ ((3ull << 32) | 5)) ^ UINT64_MAX);
    assert_int_equal(f.digest, one);
    /* then one more at instance 10, chained on the first */
    struct px_value w = req(4, 1, 42);
    assert_false(px_history_apply(&f, 10, &w));
    assert_int_equal(f.digest, px_mix64(px_mix64(px_mix64(one ^ 10) ^ ((4ull << 32) | 1)) ^ 42));
    /* each field of the request changes the digest: instance, client, seq, word */
    struct px_history g[4];
    const px_inst_t inst[4] = {8, 9, 9, 9};
    const struct px_value vals[4] = {req(3, 5, UINT64_MAX), req(2, 5, UINT64_MAX),
                                     req(3, 6, UINT64_MAX), req(3, 5, UINT64_MAX - 1)};
    for (int k = 0; k < 4; k++) {
        px_history_init(&g[k]);
        px_history_apply(&g[k], inst[k], &vals[k]);
        assert_int_not_equal(g[k].digest, one);
        assert_int_equal(g[k].requests, 1);
    }
    /* the caller's PX_VALUE_PAYLOAD bit is no part of the request: same digest */
    struct px_history p;
    px_history_init(&p);
    struct px_value long_cmd = req(3 | PX_VALUE_PAYLOAD, 5, UINT64_MAX);
    assert_false(px_history_apply(&p, 9, &long_cmd));
    assert_int_equal(p.digest, one);
}

static void test_history_duplicate_request_changes_nothing_but_applied(void **state)
{
    (void)state;
    struct px_history f;
    px_history_init(&f);
    struct px_value v = req(7, 3, 10);
    assert_false(px_history_apply(&f, 1, &v));
    struct px_history before = f;
    assert_int_equal(before.digest, chain(0, 1, 7, 3, 10));
    assert_true(px_history_apply(&f, 2, &v));
    assert_int_equal(f.digest, before.digest);
    assert_memory_equal(f.clients, before.clients, sizeof(f.clients));
    assert_int_equal(f.requests, 1);
    assert_int_equal(f.applied, 2);
    struct px_value other_word = req(7, 3, 11); /* the same request, another word: still it */
    assert_true(px_history_apply(&f, 3, &other_word));
    assert_int_equal(f.digest, before.digest);
    assert_int_equal(f.requests, 1);
}

static void test_history_noop_advances_applied_only_and_stays_out_of_digest(void **state)
{
    (void)state;
    struct px_history f;
    px_history_init(&f);
    struct px_value noop = {0};
    assert_false(px_history_apply(&f, 1, &noop));
    assert_int_equal(f.applied, 1);
    assert_int_equal(f.digest, 0);
    assert_int_equal(f.requests, 0);
    assert_true(all_zero(f.clients, sizeof(f.clients))); /* no client entered the table */
}

static void test_history_digest_depends_on_instance_and_order(void **state)
{
    (void)state;
    struct px_history a, b;
    px_history_init(&a);
    px_history_init(&b);
    struct px_value x = req(1, 0, 5), y = req(1, 1, 6);
    px_history_apply(&a, 1, &x);
    px_history_apply(&a, 2, &y);
    px_history_apply(&b, 1, &y);
    px_history_apply(&b, 2, &x);
    assert_int_equal(a.requests, b.requests); /* the same requests, the same count ... */
    assert_memory_equal(a.clients, b.clients, sizeof(a.clients)); /* ... and table ... */
    assert_int_not_equal(a.digest, b.digest); /* ... but another order: another digest */
    assert_int_equal(a.digest, chain(chain(0, 1, 1, 0, 5), 2, 1, 1, 6));
    assert_int_equal(b.digest, chain(chain(0, 1, 1, 1, 6), 2, 1, 0, 5));
    struct px_history c;
    px_history_init(&c);
    struct px_value noop = {0};
    px_history_apply(&c, 1, &noop);
    px_history_apply(&c, 2, &x);
    px_history_apply(&c, 3, &y);
    assert_int_not_equal(a.digest, c.digest); /* same requests at other instances */
}

static void test_history_out_of_order_seqs_each_apply_once(void **state)
{
    (void)state;
    struct px_history f;
    px_history_init(&f);
    uint32_t seqs[] = {2, 0, 3, 1, 2, 0, 5, 4, 5};
    bool dup[] = {false, false, false, false, true, true, false, false, true};
    uint64_t want = 0;
    for (uint32_t i = 0; i < 9; i++) {
        struct px_value v = req(9, seqs[i], 1);
        assert_int_equal(px_history_apply(&f, i + 1, &v), dup[i]);
        if (!dup[i])
            want = chain(want, i + 1, 9, seqs[i], 1);
    }
    assert_int_equal(f.requests, 6);
    assert_int_equal(f.digest, want); /* each of the six once, at its first instance */
    assert_int_equal(f.clients[0].client_id, 9);
    assert_int_equal(f.clients[0].seq_low, 6); /* 0..5 all applied: window slid past them */
}

static void test_history_seq_beyond_span_slides_window_and_older_count_as_applied(void **state)
{
    (void)state;
    struct px_history f;
    px_history_init(&f);
    struct px_value v = req(4, PX_DEDUP_SPAN + 10, 1);
    assert_false(px_history_apply(&f, 1, &v));
    struct px_value old = req(4, 10, 1); /* now below seq_low: the client promised it done */
    assert_true(px_history_apply(&f, 2, &old));
    struct px_value inside = req(4, 11, 1);
    assert_false(px_history_apply(&f, 3, &inside));
    assert_int_equal(f.requests, 2);
}

static void test_history_full_client_table_evicts_lowest_client_id(void **state)
{
    (void)state;
    struct px_history f;
    px_history_init(&f);
    for (uint32_t c = 1; c <= PX_CLIENTS_MAX; c++) {
        struct px_value v = req(c + 10, 0, 1);
        px_history_apply(&f, c, &v);
    }
    struct px_value v = req(100, 0, 1);
    assert_false(px_history_apply(&f, PX_CLIENTS_MAX + 1, &v));
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
        cmocka_unit_test(test_history_starts_all_zero),
        cmocka_unit_test(test_history_rounds_extend_the_digest_chain_request_by_request),
        cmocka_unit_test(test_history_digest_chain_is_the_formula_and_sees_every_field),
        cmocka_unit_test(test_history_duplicate_request_changes_nothing_but_applied),
        cmocka_unit_test(test_history_noop_advances_applied_only_and_stays_out_of_digest),
        cmocka_unit_test(test_history_digest_depends_on_instance_and_order),
        cmocka_unit_test(test_history_out_of_order_seqs_each_apply_once),
        cmocka_unit_test(test_history_seq_beyond_span_slides_window_and_older_count_as_applied),
        cmocka_unit_test(test_history_full_client_table_evicts_lowest_client_id),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
