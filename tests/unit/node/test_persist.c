/* test_persist.c: the node loop's group commit (src/persist.c) on a bounded shm store. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "node/persist.h"

#define ENTRIES_MAX 64u

struct fx {
    void *area;
    size_t bytes;
    struct store *s;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->bytes = store_shm_bytes(ENTRIES_MAX);
    f->area = mmap(NULL, f->bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(f->area != MAP_FAILED);
    struct store_params p = {
        .kind = STORE_SHM, .node_id = 0, .nodes = 3, .shm_area = f->area, .shm_bytes = f->bytes};
    char err[STORE_ERR_MAX];
    assert_int_equal(store_open(&p, &f->s, err, sizeof(err)), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    store_close(f->s);
    munmap(f->area, f->bytes);
    free(f);
    return 0;
}

static void add(struct px_ready *r, uint8_t type, px_inst_t i)
{
    struct px_rec *rec = &r->recs[r->recs_len++];
    memset(rec, 0, sizeof(*rec));
    rec->type = type;
    rec->instance = i;
    rec->ballot = 0x10000;
    rec->value = (struct px_value){.word = i, .client_id = 1, .seq = (uint32_t)i};
}

static px_inst_t loaded_max;
static void note_max(void *ctx, const struct px_rec *r, const void *cmd, uint32_t cmd_len)
{
    (void)ctx;
    (void)cmd;
    (void)cmd_len;
    if (r->type == PX_REC_ACCEPTED && r->instance > loaded_max)
        loaded_max = r->instance;
}

/* A restarted node that catches up emits, in one batch, entries far beyond its old truncation
 * point and (at the end of the same core call) the TRUNCATE that frees the room for them. */
static void test_persist_applies_the_batch_truncate_before_its_new_entries(void **state)
{
    struct fx *f = *state;
    static struct px_ready r;
    px_ready_clear(&r);
    for (px_inst_t i = 1; i <= ENTRIES_MAX; i++)
        add(&r, PX_REC_ACCEPTED, i); /* the store is full */
    assert_int_equal(persist_ready(f->s, &r, NULL, NULL), 0);

    px_ready_clear(&r);
    add(&r, PX_REC_ACCEPTED, 3 * ENTRIES_MAX);
    add(&r, PX_REC_ACCEPTED, 3 * ENTRIES_MAX + 1);
    add(&r, PX_REC_TRUNCATE, 2 * ENTRIES_MAX + 10);
    assert_int_equal(persist_ready(f->s, &r, NULL, NULL), 0);

    struct px_durable d;
    loaded_max = 0;
    assert_int_equal(store_load(f->s, &d, note_max, NULL), 0);
    assert_int_equal(loaded_max, 3 * ENTRIES_MAX + 1);
}

static void test_persist_writes_the_fib_with_the_batch(void **state)
{
    struct fx *f = *state;
    static struct px_ready r;
    px_ready_clear(&r);
    add(&r, PX_REC_ACCEPTED, 1);
    struct px_history fib;
    px_history_init(&fib);
    fib.applied = 1;
    fib.digest = 42;
    fib.requests = 1;
    assert_int_equal(persist_ready(f->s, &r, &fib, NULL), 0);
    struct px_durable d;
    assert_int_equal(store_load(f->s, &d, NULL, NULL), 0);
    assert_int_equal(d.fib.digest, 42);
    assert_int_equal(d.fib.requests, 1);
    assert_int_equal(d.fib.applied, 1);
}

struct got_cmd {
    px_inst_t instance;
    uint32_t len;
    uint8_t first, last;
};
static void note_cmd(void *ctx, const struct px_rec *r, const void *cmd, uint32_t cmd_len)
{
    struct got_cmd *g = ctx;
    if (cmd == NULL)
        return;
    g->instance = r->instance;
    g->len = cmd_len;
    g->first = ((const uint8_t *)cmd)[0];
    g->last = ((const uint8_t *)cmd)[cmd_len - 1];
}

/* A record whose value carries a long command is written with the command's bytes from the
 * payload plane, which learns the instance that keeps them; one whose bytes are not held fails
 * the batch before anything is written, and the store takes the next batch. */
static void test_persist_writes_commands_with_their_records(void **state)
{
    (void)state;
    char dir[] = "/tmp/px-persist-XXXXXX";
    assert_non_null(mkdtemp(dir));
    struct store_params p = {.kind = STORE_SQLITE, .dir = dir, .node_id = 0, .nodes = 3};
    char err[STORE_ERR_MAX];
    struct store *s;
    assert_int_equal(store_open(&p, &s, err, sizeof(err)), 0);
    struct payload_plane pay;
    assert_int_equal(payload_init(&pay, 0, 3, 1u << 20, 1u << 21), 0);
    static struct px_ready r;
    px_ready_clear(&r);
    add(&r, PX_REC_ACCEPTED, 1);
    r.recs[0].value.client_id |= PX_VALUE_PAYLOAD;
    uint64_t key = cmd_key(&r.recs[0].value);
    assert_int_equal(persist_ready(s, &r, NULL, &pay), -ENODATA); /* not held */
    static uint8_t cmd[100000];
    memset(cmd, 0xab, sizeof(cmd));
    cmd[0] = 1;
    cmd[sizeof(cmd) - 1] = 2;
    assert_int_equal(payload_put(&pay, key, cmd, sizeof(cmd)), 0);
    assert_int_equal(persist_ready(s, &r, NULL, &pay), 0);
    assert_int_equal(payload_get(&pay, key)->inst, 1); /* its instance keeps it now */
    store_close(s);
    assert_int_equal(store_open(&p, &s, err, sizeof(err)), 0);
    struct px_durable d;
    struct got_cmd g = {0};
    assert_int_equal(store_load(s, &d, note_cmd, &g), 0);
    assert_int_equal(g.instance, 1);
    assert_int_equal(g.len, sizeof(cmd));
    assert_int_equal(g.first, 1);
    assert_int_equal(g.last, 2);
    store_close(s);
    payload_fini(&pay);
    char path[256];
    snprintf(path, sizeof(path), "rm -rf '%s'", dir);
    assert_int_equal(system(path), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_persist_applies_the_batch_truncate_before_its_new_entries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_persist_writes_the_fib_with_the_batch, setup,
                                        teardown),
        cmocka_unit_test(test_persist_writes_commands_with_their_records),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
