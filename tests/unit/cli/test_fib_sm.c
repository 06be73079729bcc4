/* test_fib_sm.c: the main job's Fibonacci state machine (src/cli/fib_sm.h) through the
 * callbacks the library calls: start, apply, snapshot, restore, digest. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "cli/fib_sm.h"

static void le(uint64_t v, uint8_t out[8])
{
    for (int i = 0; i < 8; i++)
        out[i] = (uint8_t)(v >> (8 * i));
}

static int apply_u64(const struct pxs_state_machine *m, uint64_t index, uint64_t inc)
{
    uint8_t b[8];
    le(inc, b);
    const void *res = NULL;
    size_t res_len = 99;
    int st = m->apply(m->ctx, index, b, sizeof(b), &res, &res_len);
    assert_null(res); /* no result bytes */
    return st;
}

struct buf {
    uint8_t bytes[64];
    size_t len, at, chunk; /* chunk: the reader hands out at most this many per call */
};

static int buf_write(struct pxs_writer *w, const void *chunk, size_t len)
{
    struct buf *b = w->opaque;
    if (len > sizeof(b->bytes) - b->len)
        return -ENOSPC;
    memcpy(b->bytes + b->len, chunk, len);
    b->len += len;
    return 0;
}

static long buf_read(struct pxs_reader *r, void *out, size_t cap)
{
    struct buf *b = r->opaque;
    size_t n = b->len - b->at;
    if (n > cap)
        n = cap;
    if (b->chunk > 0 && n > b->chunk)
        n = b->chunk;
    memcpy(out, b->bytes + b->at, n);
    b->at += n;
    return (long)n;
}

static int restore_from(const struct pxs_state_machine *m, struct buf *b)
{
    b->at = 0;
    struct pxs_reader r = {.read = buf_read, .opaque = b};
    return m->restore(m->ctx, &r);
}

static void test_starts_at_f1_and_adds_the_increments(void **state)
{
    (void)state;
    const struct pxs_state_machine *m = fib_sm();
    assert_int_equal(m->size, sizeof(struct pxs_state_machine));
    assert_int_equal(m->start(m->ctx, 0), 0);
    assert_int_equal(m->digest(m->ctx), 1); /* F(1) */
    /* Round r adds F(r - 1): after R rounds the value is F(R + 1). */
    uint64_t a = 0, b = 1; /* F(0), F(1) */
    for (uint64_t r = 1; r <= 200; r++) {
        assert_int_equal(apply_u64(m, r, a), 0);
        uint64_t next = a + b;
        a = b;
        b = next;
    }
    assert_int_equal(m->digest(m->ctx), b); /* F(201) mod 2^64: it wraps */
    assert_int_equal(m->start(m->ctx, 1), 0);
    assert_int_equal(m->digest(m->ctx), 1); /* a new incarnation starts empty */
}

static void test_a_longer_command_adds_its_first_8_bytes(void **state)
{
    (void)state;
    const struct pxs_state_machine *m = fib_sm();
    m->start(m->ctx, 0);
    uint8_t cmd[4096];
    memset(cmd, 0xa5, sizeof(cmd));
    le(41, cmd);
    const void *res = NULL;
    size_t res_len = 0;
    assert_int_equal(m->apply(m->ctx, 1, cmd, sizeof(cmd), &res, &res_len), 0);
    assert_int_equal(m->digest(m->ctx), 42);
}

static void test_a_short_command_is_rejected_and_changes_nothing(void **state)
{
    (void)state;
    const struct pxs_state_machine *m = fib_sm();
    m->start(m->ctx, 0);
    const uint8_t seven[7] = {1, 2, 3, 4, 5, 6, 7};
    const void *res = NULL;
    size_t res_len = 0;
    assert_int_equal(m->apply(m->ctx, 1, seven, sizeof(seven), &res, &res_len), FIB_SM_SHORT);
    assert_int_equal(m->apply(m->ctx, 2, NULL, 0, &res, &res_len), FIB_SM_SHORT);
    assert_int_equal(m->digest(m->ctx), 1);
}

static void test_snapshot_is_the_value_and_restores_in_any_chunks(void **state)
{
    (void)state;
    const struct pxs_state_machine *m = fib_sm();
    m->start(m->ctx, 0);
    assert_int_equal(apply_u64(m, 1, UINT64_C(0x0102030405060708)), 0);
    uint64_t want = m->digest(m->ctx);
    struct buf b = {.len = 0};
    struct pxs_writer w = {.write = buf_write, .opaque = &b};
    assert_int_equal(m->snapshot(m->ctx, &w), 0);
    assert_int_equal(b.len, FIB_SM_STATE_BYTES);
    uint8_t le_want[8];
    le(want, le_want);
    assert_memory_equal(b.bytes, le_want, 8); /* little endian, whatever the host */
    for (size_t chunk = 1; chunk <= 8; chunk++) {
        m->start(m->ctx, 0);
        b.chunk = chunk;
        assert_int_equal(restore_from(m, &b), 0);
        assert_int_equal(m->digest(m->ctx), want);
    }
}

static void test_a_snapshot_of_another_length_is_refused(void **state)
{
    (void)state;
    const struct pxs_state_machine *m = fib_sm();
    m->start(m->ctx, 0);
    apply_u64(m, 1, 6);
    for (size_t len = 0; len <= 16; len++) {
        if (len == FIB_SM_STATE_BYTES)
            continue;
        struct buf b = {.len = len};
        memset(b.bytes, 0xff, sizeof(b.bytes));
        assert_int_equal(restore_from(m, &b), -EBADMSG);
        assert_int_equal(m->digest(m->ctx), 7); /* the state is left as it was */
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_starts_at_f1_and_adds_the_increments),
        cmocka_unit_test(test_a_longer_command_adds_its_first_8_bytes),
        cmocka_unit_test(test_a_short_command_is_rejected_and_changes_nothing),
        cmocka_unit_test(test_snapshot_is_the_value_and_restores_in_any_chunks),
        cmocka_unit_test(test_a_snapshot_of_another_length_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
