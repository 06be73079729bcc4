/* test_sm.c: the node's state machine steps (node/sm.h) with a fake state machine: a running
 * sum of every command byte, a log of the indexes it applied, and switches that make a callback
 * fail. Also the inline encoding of a library command (common/cmd.h). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/cmd.h"
#include "ipc/check.h"
#include "node/sm.h"
#include "paxos/px_mix.h"

struct fake {
    uint64_t sum;
    uint64_t applied[64];
    uint32_t n_applied;
    uint32_t starts;
    int fail_apply_at; /* index whose apply returns -EIO, 0 = none */
    int fail_snapshot, fail_restore;
    uint8_t result[8];
    size_t result_len;
};

static int fake_start(void *ctx, uint32_t node)
{
    struct fake *f = ctx;
    (void)node;
    f->starts++;
    return 0;
}

static int fake_apply(void *ctx, uint64_t index, const void *cmd, size_t len, const void **result,
                      size_t *result_len)
{
    struct fake *f = ctx;
    if (f->fail_apply_at != 0 && index == (uint64_t)f->fail_apply_at)
        return -EIO;
    const uint8_t *b = cmd;
    for (size_t i = 0; i < len; i++)
        f->sum = f->sum * 31 + b[i];
    if (f->n_applied < 64)
        f->applied[f->n_applied++] = index;
    memcpy(f->result, &f->sum, sizeof(f->sum));
    f->result_len = (size_t)(index % 9); /* 0..8 bytes */
    *result = f->result_len > 0 ? f->result : NULL;
    *result_len = f->result_len;
    return (int)(index % 3);
}

static int fake_snapshot(void *ctx, struct pxs_writer *w)
{
    struct fake *f = ctx;
    if (f->fail_snapshot)
        return -ENOSPC;
    /* two chunks: any chunking must do */
    int rc = w->write(w, &f->sum, 3);
    return rc != 0 ? rc : w->write(w, (const uint8_t *)&f->sum + 3, sizeof(f->sum) - 3);
}

static int fake_restore(void *ctx, struct pxs_reader *r)
{
    struct fake *f = ctx;
    if (f->fail_restore)
        return -EPROTO;
    uint64_t v = 0;
    uint8_t *at = (uint8_t *)&v;
    size_t have = 0;
    long got;
    while ((got = r->read(r, at + have, 1)) > 0) /* one byte at a time */
        have += (size_t)got;
    if (have != sizeof(v))
        return -EBADMSG;
    f->sum = v;
    f->n_applied = 0;
    return 0;
}

static uint64_t fake_digest(void *ctx)
{
    return ((struct fake *)ctx)->sum ^ 0x1234;
}

static struct pxs_state_machine machine(struct fake *f)
{
    memset(f, 0, sizeof(*f));
    return (struct pxs_state_machine){.size = sizeof(struct pxs_state_machine),
                                      .ctx = f,
                                      .start = fake_start,
                                      .apply = fake_apply,
                                      .snapshot = fake_snapshot,
                                      .restore = fake_restore,
                                      .digest = fake_digest};
}

static struct px_applied entry(px_inst_t inst, uint32_t client, uint32_t seq, const char *inl)
{
    struct px_applied a = {.instance = inst};
    a.value.client_id = client;
    a.value.seq = seq;
    if (inl != NULL)
        a.value.word = cmd_lib_pack(inl, (uint32_t)strlen(inl));
    return a;
}

static void test_cmd_lib_pack_round_trips_0_to_7_bytes(void **state)
{
    (void)state;
    const uint8_t src[8] = {0xff, 0, 1, 0x80, 7, 0xfe, 0x42, 0x99};
    for (uint32_t len = 0; len <= CMD_LIB_INLINE_MAX; len++) {
        uint64_t w = cmd_lib_pack(src, len);
        uint8_t out[CMD_LIB_INLINE_MAX];
        memset(out, 0xaa, sizeof(out));
        assert_int_equal(cmd_lib_unpack(w, out), len);
        assert_memory_equal(out, src, len);
        assert_int_equal(w >> 56, len);
    }
    /* a damaged length never overruns */
    uint8_t out[CMD_LIB_INLINE_MAX];
    assert_int_equal(cmd_lib_unpack(UINT64_C(0xff) << 56, out), CMD_LIB_INLINE_MAX);
}

/* Commands are applied in order; no-ops and duplicates only move the index; the digest and the
 * count follow the commands; results are cached by request. */
static void test_apply_skips_noops_and_duplicates_and_caches_results(void **state)
{
    (void)state;
    struct fake f;
    struct pxs_state_machine m = machine(&f);
    struct sm_node n;
    assert_int_equal(sm_init(&n, &m, 2), 0);
    assert_int_equal(sm_start(&n), 0);
    assert_int_equal(f.starts, 1);
    struct px_applied a1 = entry(1, 5, 1, "ab");
    struct px_applied a2 = entry(2, 0, 0, NULL); /* no-op */
    struct px_applied a3 = entry(3, 5, 1, "ab");
    a3.duplicate = true;
    struct px_applied a4 = entry(4, 5, 2, "");
    assert_int_equal(sm_apply(&n, &a1, NULL, 0, true), 0);
    uint64_t d1 = n.cmd_digest;
    assert_int_equal(sm_apply(&n, &a2, NULL, 0, true), 0);
    assert_int_equal(sm_apply(&n, &a3, NULL, 0, true), 0);
    assert_int_equal(n.cmd_digest, d1);
    assert_int_equal(sm_apply(&n, &a4, NULL, 0, true), 0);
    assert_int_equal(n.index, 4);
    assert_int_equal(n.applied, 2);
    assert_int_equal(f.n_applied, 2);
    assert_int_equal(f.applied[0], 1);
    assert_int_equal(f.applied[1], 4);
    assert_int_not_equal(n.cmd_digest, d1);
    /* again (an entry at or below the index): nothing happens */
    assert_int_equal(sm_apply(&n, &a1, NULL, 0, true), 0);
    assert_int_equal(f.n_applied, 2);
    const struct sm_result *r = sm_result(&n, cmd_key(&a4.value));
    assert_non_null(r);
    assert_int_equal(r->status, 4 % 3);
    assert_int_equal(r->len, 4 % 9);
    uint8_t bytes[4 + 8];
    sm_result_bytes(r, bytes);
    assert_int_equal(bytes[0], 1);
    assert_int_equal(bytes[1] | bytes[2] | bytes[3], 0);
    assert_null(sm_result(&n, cmd_key(&a2.value) + 99));
    /* a long command: its bytes are given; without them nothing is applied */
    struct px_applied a5 = entry(5, 5 | PX_VALUE_PAYLOAD, 3, NULL);
    assert_int_equal(sm_apply(&n, &a5, NULL, 0, true), -ENODATA);
    assert_int_equal(n.index, 4);
    const uint8_t longcmd[20] = {1, 2, 3};
    assert_int_equal(sm_apply(&n, &a5, longcmd, sizeof(longcmd), true), 0);
    assert_int_equal(n.index, 5);
    /* a gap is refused */
    struct px_applied a7 = entry(7, 5, 4, "x");
    assert_int_equal(sm_apply(&n, &a7, NULL, 0, true), -ENODATA);
    assert_int_equal(sm_digest(&n), f.sum ^ 0x1234);
    sm_fini(&n);
}

/* The cache keeps SM_RESULTS_MAX results at most: the oldest go. */
static void test_results_cache_is_bounded_oldest_first(void **state)
{
    (void)state;
    struct fake f;
    struct pxs_state_machine m = machine(&f);
    struct sm_node n;
    assert_int_equal(sm_init(&n, &m, 0), 0);
    uint32_t total = SM_RESULTS_MAX + 10;
    for (uint32_t i = 1; i <= total; i++) {
        struct px_applied a = entry(i, 7, i, "c");
        assert_int_equal(sm_apply(&n, &a, NULL, 0, true), 0);
    }
    assert_int_equal(n.res_len, SM_RESULTS_MAX);
    assert_int_equal(n.stats.results_dropped, 10);
    struct px_applied old = entry(10, 7, 10, "c"), kept = entry(11, 7, 11, "c");
    assert_null(sm_result(&n, cmd_key(&old.value)));
    assert_non_null(sm_result(&n, cmd_key(&kept.value)));
    assert_true(n.res_bytes <= SM_RESULTS_BYTES);
    sm_fini(&n);
}

/* A snapshot carries the digest and the count; restored elsewhere, the state and both words
 * continue from there, and the cached results of the state replaced are gone. */
static void test_snapshot_and_restore_carry_the_digest(void **state)
{
    (void)state;
    struct fake f1, f2;
    struct pxs_state_machine m1 = machine(&f1), m2 = machine(&f2);
    struct sm_node a, b;
    assert_int_equal(sm_init(&a, &m1, 0), 0);
    assert_int_equal(sm_init(&b, &m2, 1), 0);
    for (uint32_t i = 1; i <= 5; i++) {
        struct px_applied e = entry(i, 3, i, "xyz");
        assert_int_equal(sm_apply(&a, &e, NULL, 0, true), 0);
    }
    struct px_applied e1 = entry(1, 3, 1, "q");
    assert_int_equal(sm_apply(&b, &e1, NULL, 0, true), 0);
    assert_int_equal(sm_snapshot(&a), 0);
    assert_int_equal(a.buf_len, SM_SNAP_HEADER_BYTES + 8);
    assert_int_equal(sm_restore(&b, a.index, a.buf, a.buf_len), 0);
    assert_int_equal(b.index, 5);
    assert_int_equal(b.cmd_digest, a.cmd_digest);
    assert_int_equal(b.applied, a.applied);
    assert_int_equal(f2.sum, f1.sum);
    assert_int_equal(b.res_len, 0);
    struct px_applied e6 = entry(6, 3, 6, "w");
    assert_int_equal(sm_apply(&a, &e6, NULL, 0, true), 0);
    assert_int_equal(sm_apply(&b, &e6, NULL, 0, true), 0);
    assert_int_equal(b.cmd_digest, a.cmd_digest);
    assert_int_equal(sm_digest(&b), sm_digest(&a));
    assert_int_equal(sm_restore(&b, 9, a.buf, 3), -EBADMSG);
    sm_fini(&a);
    sm_fini(&b);
}

/* A callback's failure is SM_FAILED with a line, and the state does not move past it. */
struct sink {
    uint8_t bytes[64];
    size_t len;
    int fail; /* returned by every write when not 0 */
};

static int sink_write(void *ctx, const void *chunk, size_t len)
{
    struct sink *k = ctx;
    if (k->fail)
        return k->fail;
    assert_true(k->len + len <= sizeof(k->bytes));
    memcpy(k->bytes + k->len, chunk, len);
    k->len += len;
    return 0;
}

struct source {
    const uint8_t *at;
    size_t left;
    int fail; /* returned once left is 0 and fail is set, instead of the end */
};

static long source_read(void *ctx, void *buf, size_t cap)
{
    struct source *s = ctx;
    if (s->left == 0 && s->fail)
        return s->fail;
    size_t n = cap < s->left ? cap : s->left;
    memcpy(buf, s->at, n);
    s->at += n;
    s->left -= n;
    return (long)n;
}

/* A snapshot streamed through a sink is the state part of the gathered one, and restores the
 * same state from a source; a sink or source that fails is the caller's failure, never the
 * state machine's (not SM_FAILED: the node is not to count it as a crashing callback); a
 * gathered snapshot over its cap stops at the cap with -EFBIG. */
static void test_snapshot_streams_through_a_sink_and_a_source(void **state)
{
    (void)state;
    struct fake f;
    struct pxs_state_machine m = machine(&f);
    struct sm_node n;
    assert_int_equal(sm_init(&n, &m, 0), 0);
    struct px_applied e1 = entry(1, 3, 1, "abc");
    assert_int_equal(sm_apply(&n, &e1, NULL, 0, true), 0);
    assert_int_equal(sm_snapshot(&n), 0);
    struct sink k = {.len = 0, .fail = 0};
    uint64_t len = 0;
    assert_int_equal(sm_snapshot_to(&n, sink_write, &k, &len), 0);
    assert_int_equal(len, sizeof(uint64_t));
    assert_int_equal(k.len, n.buf_len - SM_SNAP_HEADER_BYTES);
    assert_memory_equal(k.bytes, n.buf + SM_SNAP_HEADER_BYTES, k.len);
    uint64_t sum = f.sum;
    f.sum = 0;
    struct source src = {.at = k.bytes, .left = k.len, .fail = 0};
    assert_int_equal(sm_restore_from(&n, 7, 11, 13, source_read, &src, k.len), 0);
    assert_int_equal(f.sum, sum);
    assert_int_equal(n.index, 7);
    assert_int_equal(n.cmd_digest, 11);
    assert_int_equal(n.applied, 13);
    /* a failing sink: its code */
    k.fail = -ENOSPC;
    assert_int_equal(sm_snapshot_to(&n, sink_write, &k, &len), -ENOSPC);
    assert_non_null(strstr(n.err, "writing the snapshot"));
    /* a source that ends early, or fails: restore sees an error, the caller gets the code */
    struct source shortsrc = {.at = k.bytes, .left = 3, .fail = 0};
    assert_int_equal(sm_restore_from(&n, 8, 0, 0, source_read, &shortsrc, k.len), -EBADMSG);
    assert_non_null(strstr(n.err, "reading the snapshot"));
    struct source bad = {.at = k.bytes, .left = 3, .fail = -EIO};
    assert_int_equal(sm_restore_from(&n, 8, 0, 0, source_read, &bad, k.len), -EIO);
    assert_int_equal(n.index, 7); /* nothing restored */
    /* gathered with a cap shorter than the snapshot */
    assert_int_equal(sm_snapshot_max(&n, SM_SNAP_HEADER_BYTES + 3), -EFBIG);
    assert_non_null(strstr(n.err, "writing the snapshot"));
    assert_int_equal(n.buf_len, SM_SNAP_HEADER_BYTES + 3);
    assert_int_equal(sm_snapshot_max(&n, SM_SNAP_HEADER_BYTES + 8), 0);
    sm_fini(&n);
}

/* The digest of a store made by 0.3.0 (store_sm_digest_version 1) goes on with that version's
 * formula, three mixes per command, so that a learner restored from such a snapshot and one
 * that applied the same commands since agree; the default is one mix per command. */
static void test_command_digest_follows_the_store_s_formula(void **state)
{
    (void)state;
    struct fake f;
    struct pxs_state_machine m = machine(&f);
    struct sm_node v1, v2;
    assert_int_equal(sm_init(&v1, &m, 0), 0);
    assert_int_equal(sm_init(&v2, &m, 0), 0);
    v1.digest_v1 = true;
    struct px_applied e1 = entry(1, 3, 1, "abc");
    assert_int_equal(sm_apply(&v1, &e1, NULL, 0, false), 0);
    assert_int_equal(sm_apply(&v2, &e1, NULL, 0, false), 0);
    uint32_t crc = ipc_crc32c(0, "abc", 3);
    assert_int_equal(v1.cmd_digest, px_mix64(px_mix64(px_mix64(0 ^ 1) ^ 3) ^ crc));
    assert_int_equal(v2.cmd_digest, px_mix64(1 * SM_DIGEST_SPREAD ^ ((uint64_t)3 << 32 | crc)));
    sm_fini(&v1);
    sm_fini(&v2);
}

static void test_callback_failure_is_reported(void **state)
{
    (void)state;
    struct fake f;
    struct pxs_state_machine m = machine(&f);
    struct sm_node n;
    assert_int_equal(sm_init(&n, &m, 0), 0);
    f.fail_apply_at = 2;
    struct px_applied e1 = entry(1, 3, 1, "a"), e2 = entry(2, 3, 2, "b");
    assert_int_equal(sm_apply(&n, &e1, NULL, 0, true), 0);
    assert_int_equal(sm_apply(&n, &e2, NULL, 0, true), SM_FAILED);
    assert_int_equal(n.index, 1);
    assert_non_null(strstr(n.err, "apply"));
    f.fail_snapshot = 1;
    assert_int_equal(sm_snapshot(&n), SM_FAILED);
    assert_non_null(strstr(n.err, "snapshot"));
    f.fail_snapshot = 0;
    assert_int_equal(sm_snapshot(&n), 0);
    f.fail_restore = 1;
    assert_int_equal(sm_restore(&n, 1, n.buf, n.buf_len), SM_FAILED);
    assert_non_null(strstr(n.err, "restore"));
    sm_fini(&n);
}

/* Restart: restore the snapshot, then replay the log's DECIDED records above it up to the
 * core's applied index, in order, telling duplicates as the core did (its fib). */
static void test_replay_after_restore_applies_what_the_snapshot_lacks(void **state)
{
    (void)state;
    struct fake f1, f2;
    struct pxs_state_machine m1 = machine(&f1), m2 = machine(&f2);
    struct sm_node live, again;
    assert_int_equal(sm_init(&live, &m1, 0), 0);
    assert_int_equal(sm_init(&again, &m2, 0), 0);
    /* the live node: commands 1..3, snapshot at 3 with the core's fib at 3, then 4..8 */
    struct px_history fib;
    px_history_init(&fib);
    struct px_rec recs[8];
    struct px_history fib_at_3;
    for (uint32_t i = 1; i <= 8; i++) {
        struct px_applied e = entry(i, 4, i == 6 ? 2 : i, "cmd");
        if (i == 5)
            e.value.client_id = 0; /* a no-op */
        e.duplicate = px_history_apply(&fib, i, &e.value);
        assert_int_equal(sm_apply(&live, &e, NULL, 0, true), 0);
        recs[i - 1] = (struct px_rec){.type = PX_REC_DECIDED, .instance = i, .value = e.value};
        if (i == 3) {
            fib_at_3 = fib;
            assert_int_equal(sm_snapshot(&live), 0);
        }
    }
    assert_int_equal(live.applied, 6); /* 8 less a no-op and a duplicate (seq 2 again) */
    /* a restart: the snapshot at 3 ... */
    assert_int_equal(sm_restore(&again, 3, live.buf, live.buf_len), 0);
    struct sm_replay r = {.n = &again, .fib = fib_at_3, .upto = 7};
    struct px_rec t = {.type = PX_REC_TRUNCATE, .instance = 2};
    sm_replay_rec(&r, &t, NULL, 0);
    for (uint32_t i = 0; i < 8; i++) {
        struct px_rec acc = recs[i];
        acc.type = PX_REC_ACCEPTED; /* ignored */
        sm_replay_rec(&r, &acc, NULL, 0);
        sm_replay_rec(&r, &recs[i], NULL, 0);
    }
    assert_int_equal(sm_replay_end(&r), 0);
    assert_int_equal(again.index, 7);
    assert_int_equal(again.applied, 5);
    assert_int_equal(again.res_len, 0); /* results of a replay are not kept */
    struct px_applied e8 = {.instance = 8, .value = recs[7].value};
    assert_int_equal(sm_apply(&again, &e8, NULL, 0, true), 0);
    assert_int_equal(again.cmd_digest, live.cmd_digest);
    assert_int_equal(f2.sum, f1.sum);
    sm_fini(&again);

    /* a log truncated above the snapshot, or a gap, or a short log: refused */
    assert_int_equal(sm_init(&again, &m2, 0), 0);
    assert_int_equal(sm_restore(&again, 3, live.buf, live.buf_len), 0);
    r = (struct sm_replay){.n = &again, .fib = fib_at_3, .upto = 7};
    t.instance = 4;
    sm_replay_rec(&r, &t, NULL, 0);
    assert_int_equal(sm_replay_end(&r), -EBADMSG);
    assert_non_null(strstr(again.err, "truncated"));
    assert_int_equal(sm_restore(&again, 3, live.buf, live.buf_len), 0);
    r = (struct sm_replay){.n = &again, .fib = fib_at_3, .upto = 7};
    sm_replay_rec(&r, &recs[4], NULL, 0);
    assert_int_equal(sm_replay_end(&r), -EBADMSG);
    assert_non_null(strstr(again.err, "lacks instance 4"));
    assert_int_equal(sm_restore(&again, 3, live.buf, live.buf_len), 0);
    r = (struct sm_replay){.n = &again, .fib = fib_at_3, .upto = 7};
    sm_replay_rec(&r, &recs[3], NULL, 0);
    assert_int_equal(sm_replay_end(&r), -EBADMSG);
    assert_non_null(strstr(again.err, "ends at 4"));
    sm_fini(&again);
    sm_fini(&live);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cmd_lib_pack_round_trips_0_to_7_bytes),
        cmocka_unit_test(test_apply_skips_noops_and_duplicates_and_caches_results),
        cmocka_unit_test(test_results_cache_is_bounded_oldest_first),
        cmocka_unit_test(test_snapshot_and_restore_carry_the_digest),
        cmocka_unit_test(test_callback_failure_is_reported),
        cmocka_unit_test(test_command_digest_follows_the_store_s_formula),
        cmocka_unit_test(test_snapshot_streams_through_a_sink_and_a_source),
        cmocka_unit_test(test_replay_after_restore_applies_what_the_snapshot_lacks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
