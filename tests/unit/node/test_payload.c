/* test_payload.c: the payload plane (src/node/payload.h): a long command survives the trip in
 * DATA chunks whole or not at all, and the table keeps what the log needs within its bounds. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ipc/check.h"
#include "node/payload.h"

#define NODES 3

static struct px_value long_value(uint32_t client, uint32_t seq)
{
    return (struct px_value){.word = 7, .client_id = client | PX_VALUE_PAYLOAD, .seq = seq};
}

static uint8_t *make_cmd(uint64_t key, uint32_t len)
{
    uint8_t *b = malloc(len > 0 ? len : 1);
    assert_non_null(b);
    payload_fib_fill(key, 7, b, len);
    return b;
}

/* Every chunk of a stream from node 1 to node 0, as the sender makes them. */
static struct px_msg *stream_of(const struct payload_entry *e, uint16_t to, uint32_t *n)
{
    uint32_t total = payload_stream_len(e->len);
    uint32_t max = total / PAYLOAD_CHUNK_BYTES + 1;
    struct px_msg *m = calloc(max, sizeof(*m));
    assert_non_null(m);
    uint32_t off = 0;
    *n = payload_chunks(e, 1, to, &off, m, max);
    assert_int_equal(off, total);
    return m;
}

static void check_round_trip(uint32_t len, uint16_t to)
{
    struct payload_plane tx, rx;
    assert_int_equal(payload_init(&tx, 1, NODES, CMD_BYTES_MAX, CMD_BYTES_MAX), 0);
    assert_int_equal(payload_init(&rx, 0, NODES, CMD_BYTES_MAX, CMD_BYTES_MAX), 0);
    struct px_value v = long_value(3, 9);
    uint64_t key = cmd_key(&v);
    uint8_t *cmd = make_cmd(key, len);
    assert_int_equal(payload_put(&tx, key, cmd, len), 0);
    uint32_t n;
    struct px_msg *m = stream_of(payload_get(&tx, key), to, &n);
    for (uint32_t i = 0; i < n; i++) {
        assert_int_equal(m[i].type, PX_MSG_DATA);
        assert_true(payload_rx_data(&rx, &m[i]));
        if (i + 1 < n)
            assert_null(payload_get(&rx, key)); /* nothing before the last chunk */
    }
    const struct payload_entry *got = payload_get(&rx, key);
    assert_non_null(got);
    assert_int_equal(got->len, len);
    if (len > 0)
        assert_memory_equal(got->bytes, cmd, len);
    assert_true(payload_fib_check(key, 7, got->bytes, got->len));
    assert_int_equal(rx.stats.streams_in, 1);
    struct px_msg accept = {.type = PX_MSG_ACCEPT, .from = 1, .to = to, .instance = 5};
    accept.u.accept.value = v;
    assert_true(payload_rx_admit(&rx, &accept));
    free(m);
    free(cmd);
    payload_fini(&tx);
    payload_fini(&rx);
}

static void test_round_trip_sizes(void **state)
{
    (void)state;
    const uint32_t sizes[] = {0, 1, 9, 35, 36, 37, 40, 4096, 65536, 1u << 20};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        check_round_trip(sizes[i], 0);
        check_round_trip(sizes[i], PX_TO_ALL);
    }
}

/* A chunk lost in the middle: the stream is dropped whole, and the message carrying its value
 * is not admitted (the protocol recovers it like a lost message). */
static void test_gap_drops_the_stream_whole(void **state)
{
    (void)state;
    struct payload_plane tx, rx;
    assert_int_equal(payload_init(&tx, 1, NODES, 1u << 20, 1u << 20), 0);
    assert_int_equal(payload_init(&rx, 0, NODES, 1u << 20, 1u << 20), 0);
    struct px_value v = long_value(2, 4);
    uint64_t key = cmd_key(&v);
    uint8_t *cmd = make_cmd(key, 1000);
    assert_int_equal(payload_put(&tx, key, cmd, 1000), 0);
    uint32_t n;
    struct px_msg *m = stream_of(payload_get(&tx, key), 0, &n);
    for (uint32_t i = 0; i < n; i++)
        if (i != n / 2)
            assert_true(payload_rx_data(&rx, &m[i]));
    assert_null(payload_get(&rx, key));
    assert_true(rx.stats.streams_torn >= 1);
    struct px_msg accept = {.type = PX_MSG_ACCEPT, .from = 1, .to = 0, .instance = 5};
    accept.u.accept.value = v;
    assert_false(payload_rx_admit(&rx, &accept));
    assert_int_equal(rx.stats.missing, 1);
    /* The same stream again, whole: now it is held. */
    for (uint32_t i = 0; i < n; i++)
        assert_true(payload_rx_data(&rx, &m[i]));
    assert_non_null(payload_get(&rx, key));
    assert_true(payload_rx_admit(&rx, &accept));
    free(m);
    free(cmd);
    payload_fini(&tx);
    payload_fini(&rx);
}

/* A changed byte in any chunk: the CRC at the end refuses the command. */
static void test_damaged_chunk_is_refused(void **state)
{
    (void)state;
    struct payload_plane tx, rx;
    assert_int_equal(payload_init(&tx, 1, NODES, 1u << 20, 1u << 20), 0);
    assert_int_equal(payload_init(&rx, 0, NODES, 1u << 20, 1u << 20), 0);
    struct px_value v = long_value(2, 5);
    uint64_t key = cmd_key(&v);
    uint8_t *cmd = make_cmd(key, 300);
    assert_int_equal(payload_put(&tx, key, cmd, 300), 0);
    uint32_t n;
    struct px_msg *m = stream_of(payload_get(&tx, key), 0, &n);
    ((uint8_t *)&m[2].u)[3] ^= 0x10;
    for (uint32_t i = 0; i < n; i++)
        assert_true(payload_rx_data(&rx, &m[i]));
    assert_null(payload_get(&rx, key));
    assert_int_equal(rx.stats.streams_bad, 1);
    free(m);
    free(cmd);
    payload_fini(&tx);
    payload_fini(&rx);
}

/* A sender killed mid-stream starts the stream again after its restart: the torn beginning is
 * forgotten, the new stream is taken whole. Streams on two links of one sender do not mix. */
static void test_restart_mid_stream_and_two_links(void **state)
{
    (void)state;
    struct payload_plane tx, rx;
    assert_int_equal(payload_init(&tx, 1, NODES, 1u << 20, 1u << 20), 0);
    assert_int_equal(payload_init(&rx, 0, NODES, 1u << 20, 1u << 20), 0);
    struct px_value a = long_value(2, 6), b = long_value(2, 7);
    uint8_t *ca = make_cmd(cmd_key(&a), 500), *cb = make_cmd(cmd_key(&b), 700);
    assert_int_equal(payload_put(&tx, cmd_key(&a), ca, 500), 0);
    assert_int_equal(payload_put(&tx, cmd_key(&b), cb, 700), 0);
    uint32_t na, nb;
    struct px_msg *ma = stream_of(payload_get(&tx, cmd_key(&a)), PX_TO_ALL, &na);
    struct px_msg *mb = stream_of(payload_get(&tx, cmd_key(&b)), 0, &nb);
    for (uint32_t i = 0; i < na / 2; i++)
        assert_true(payload_rx_data(&rx, &ma[i])); /* then the sender dies */
    for (uint32_t i = 0; i < nb || i < na; i++) {  /* restarted: both streams, interleaved */
        if (i < na)
            assert_true(payload_rx_data(&rx, &ma[i]));
        if (i < nb)
            assert_true(payload_rx_data(&rx, &mb[i]));
    }
    assert_non_null(payload_get(&rx, cmd_key(&a)));
    assert_non_null(payload_get(&rx, cmd_key(&b)));
    assert_int_equal(rx.stats.streams_torn, 1);
    free(ma);
    free(mb);
    free(ca);
    free(cb);
    payload_fini(&tx);
    payload_fini(&rx);
}

/* The byte budget: commands never recorded at an instance go first, oldest first; recorded ones
 * stay until truncation; pinned ones stay until unpinned; with nothing to evict a new one is
 * refused (counted). */
static void test_budget_truncate_and_pins(void **state)
{
    (void)state;
    struct payload_plane p;
    assert_int_equal(payload_init(&p, 0, NODES, 1000, 3000), 0);
    uint8_t buf[1000] = {0};
    assert_int_equal(payload_put(&p, 11, buf, 1000), 0);
    assert_int_equal(payload_put(&p, 12, buf, 1000), 0);
    assert_int_equal(payload_put(&p, 13, buf, 1000), 0);
    payload_note(&p, 12, 5);
    payload_note(&p, 13, 6);
    assert_int_equal(payload_put(&p, 14, buf, 1000), 0); /* 11 (no instance) goes */
    assert_null(payload_get(&p, 11));
    payload_note(&p, 14, 7);
    assert_int_equal(payload_put(&p, 15, buf, 1000), -ENOSPC); /* all recorded: refused */
    assert_int_equal(p.stats.refused, 1);
    assert_int_equal(payload_put(&p, 16, buf, 1001), -EMSGSIZE);
    payload_pin(&p, 12);
    payload_truncate(&p, 6); /* 13 goes, 12 is pinned */
    assert_non_null(payload_get(&p, 12));
    assert_null(payload_get(&p, 13));
    assert_non_null(payload_get(&p, 14));
    payload_unpin(&p, 12); /* now it goes */
    assert_null(payload_get(&p, 12));
    assert_int_equal(p.stats.bytes, 1000);
    /* The same key again: held, nothing changes; other bytes are a conflict, the first kept. */
    assert_int_equal(payload_put(&p, 14, buf, 1000), -EEXIST);
    assert_int_equal(p.stats.conflicts, 0);
    buf[0] = 1;
    assert_int_equal(payload_put(&p, 14, buf, 1000), -EEXIST);
    assert_int_equal(p.stats.conflicts, 1);
    assert_int_equal(payload_get(&p, 14)->bytes[0], 0);
    payload_fini(&p);
}

/* A request decided at instance 5 arrives again (a resubmission, a round in doubt): the node
 * may propose it again, so truncating instance 5 must not free its bytes (the proposal would
 * persist an ACCEPTED without them: the e2e continued run after a kill -9 found this). */
static void test_a_request_again_outlives_its_old_instance(void **state)
{
    (void)state;
    struct payload_plane p;
    assert_int_equal(payload_init(&p, 0, NODES, 100, 1000), 0);
    uint8_t buf[100] = {0};
    assert_int_equal(payload_put(&p, 21, buf, 100), 0);
    payload_note(&p, 21, 5);
    payload_touch(&p, 21);
    payload_truncate(&p, 6);
    assert_non_null(payload_get(&p, 21));
    payload_note(&p, 21, 9); /* proposed again, recorded at 9 */
    payload_truncate(&p, 8);
    assert_non_null(payload_get(&p, 21));
    payload_truncate(&p, 9);
    assert_null(payload_get(&p, 21));
    payload_fini(&p);
}

/* The owner's keep hook (the driver: the request waits in the core's queue) holds a command past
 * the truncation of its instance; once the hook lets it go, the next truncation or unpinning
 * takes it. */
static uint64_t kept_key;
static bool keep_one(void *ctx, uint64_t key)
{
    (void)ctx;
    return key == kept_key;
}

static void test_keep_hook_holds_a_command_past_truncation(void **state)
{
    (void)state;
    struct payload_plane p;
    assert_int_equal(payload_init(&p, 0, NODES, 1000, 10000), 0);
    p.keep = keep_one;
    uint8_t buf[1000] = {0};
    for (uint64_t k = 21; k <= 23; k++) {
        assert_int_equal(payload_put(&p, k, buf, 1000), 0);
        payload_note(&p, k, k - 20); /* instances 1, 2, 3 */
    }
    kept_key = 22;
    payload_truncate(&p, 3);
    assert_null(payload_get(&p, 21));
    assert_non_null(payload_get(&p, 22)); /* queued: it may be proposed anew */
    assert_null(payload_get(&p, 23));
    payload_pin(&p, 22);
    kept_key = 0;
    payload_unpin(&p, 22); /* no longer needed: unpinning takes it */
    assert_null(payload_get(&p, 22));
    assert_int_equal(p.stats.bytes, 0);
    /* kept, then let go: the next truncation point takes it */
    assert_int_equal(payload_put(&p, 24, buf, 1000), 0);
    payload_note(&p, 24, 4);
    kept_key = 24;
    payload_truncate(&p, 4);
    assert_non_null(payload_get(&p, 24));
    kept_key = 0;
    payload_truncate(&p, 5);
    assert_null(payload_get(&p, 24));
    payload_fini(&p);
}

/* Many entries in and out: the open-addressing table keeps finding every live key after
 * deletions (backward shift). */
static void test_table_churn(void **state)
{
    (void)state;
    struct payload_plane p;
    assert_int_equal(payload_init(&p, 0, NODES, 8, 1u << 20), 0);
    uint8_t b[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    for (uint64_t round = 0; round < 20; round++) {
        for (uint64_t k = 1; k <= 500; k++) {
            uint64_t key = round * 1000 + k;
            assert_int_equal(payload_put(&p, key, b, 8), 0);
            payload_note(&p, key, key);
        }
        payload_truncate(&p, round * 1000 + 250);
        for (uint64_t k = 1; k <= 500; k++) {
            uint64_t key = round * 1000 + k;
            if (k <= 250)
                assert_null(payload_get(&p, key));
            else
                assert_non_null(payload_get(&p, key));
        }
        payload_truncate(&p, round * 1000 + 999);
        assert_int_equal(p.used, 0);
    }
    payload_fini(&p);
}

/* Only values marked PX_VALUE_PAYLOAD in the four value-carrying types need bytes. */
static void test_value_of(void **state)
{
    (void)state;
    struct px_msg m = {.type = PX_MSG_ACCEPT};
    m.u.accept.value = (struct px_value){.word = 1, .client_id = 2, .seq = 3};
    assert_null(payload_value_of(&m));
    m.u.accept.value.client_id |= PX_VALUE_PAYLOAD;
    assert_non_null(payload_value_of(&m));
    m.type = PX_MSG_CLIENT_REPLY;
    assert_null(payload_value_of(&m));
    m.type = PX_MSG_SNAPSHOT_PART;
    assert_null(payload_value_of(&m));
    const uint8_t types[] = {PX_MSG_PROMISE_ENTRY, PX_MSG_CATCHUP_ENTRY, PX_MSG_CLIENT};
    for (size_t i = 0; i < sizeof(types); i++) {
        struct px_msg t = {.type = types[i]};
        t.u.promise_entry.value.client_id = PX_VALUE_PAYLOAD | 1;
        t.u.catchup_entry.value.client_id = PX_VALUE_PAYLOAD | 1;
        t.u.client.value.client_id = PX_VALUE_PAYLOAD | 1;
        assert_non_null(payload_value_of(&t));
    }
}

static void test_fib_fill_checks_every_byte(void **state)
{
    (void)state;
    uint8_t b[100];
    payload_fib_fill(42, 0x0102030405060708ull, b, sizeof(b));
    assert_int_equal(b[0], 0x08);
    assert_int_equal(b[7], 0x01);
    assert_true(payload_fib_check(42, 0x0102030405060708ull, b, sizeof(b)));
    for (size_t i = 0; i < sizeof(b); i++) {
        b[i] ^= 1;
        assert_false(payload_fib_check(42, 0x0102030405060708ull, b, sizeof(b)));
        b[i] ^= 1;
    }
    assert_false(payload_fib_check(43, 0x0102030405060708ull, b, sizeof(b)));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_sizes),
        cmocka_unit_test(test_gap_drops_the_stream_whole),
        cmocka_unit_test(test_damaged_chunk_is_refused),
        cmocka_unit_test(test_restart_mid_stream_and_two_links),
        cmocka_unit_test(test_budget_truncate_and_pins),
        cmocka_unit_test(test_a_request_again_outlives_its_old_instance),
        cmocka_unit_test(test_keep_hook_holds_a_command_past_truncation),
        cmocka_unit_test(test_table_churn),
        cmocka_unit_test(test_value_of),
        cmocka_unit_test(test_fib_fill_checks_every_byte),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
