/* test_store_shm_damage.c: damage written into a shm store area (a stray write, garbage) is
 * detected and named: the store fails with -EBADMSG and a line saying "damaged", or, when the
 * damage hit bytes the store does not use, it loads exactly what was committed. Never another
 * state, never a capacity error. Seeded (fixed seed); every trial builds the same store. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "px_mix.h"
#include "store.h"

/* Small, so that the log wraps: 3 batches of 24 instances over 32 slots. */
#define ENTRIES    32u
#define BATCHES    3u
#define PER_BATCH  24u
#define NODE       1u
#define POOL       3u
#define LOADED_MAX 256u
/* Random damages tried (one fresh store each), and the longest one. */
#define TRIALS           2000u
#define DAMAGE_BYTES_MAX 96u
#define SEED             0xda3a6eu

struct loaded {
    struct px_durable d;
    uint32_t n;
    struct px_rec recs[LOADED_MAX];
};

static void *area;
static size_t area_bytes;

/* A stateless hash: the splitmix64 number that follows state x (px_mix.h; x is a copy). */
static uint64_t mix(uint64_t x)
{
    return px_splitmix64(&x);
}

static int open_store(struct store **s, char *err, size_t len)
{
    struct store_params p = {.kind = STORE_SHM,
                             .node_id = NODE,
                             .nodes = POOL,
                             .shm_area = area,
                             .shm_bytes = area_bytes};
    return store_open(&p, s, err, len);
}

static void collect(void *ctx, const struct px_rec *r, const void *cmd, uint32_t cmd_len)
{
    struct loaded *l = ctx;
    assert_null(cmd); /* the shm store keeps no command bytes */
    assert_int_equal(cmd_len, 0);
    assert_true(l->n < LOADED_MAX);
    l->recs[l->n++] = *r;
}

static int load(struct store *s, struct loaded *l)
{
    memset(l, 0, sizeof(*l));
    return store_load(s, &l->d, collect, l);
}

static struct px_rec rec(uint8_t type, px_inst_t inst, px_ballot_t b)
{
    struct px_rec r;
    memset(&r, 0, sizeof(r));
    r.type = type;
    r.instance = inst;
    r.ballot = b;
    r.value.word = mix(inst);
    r.value.client_id = 1;
    r.value.seq = (uint32_t)inst;
    return r;
}

static int batch(struct store *s, uint32_t k)
{
    px_ballot_t b = px_ballot_make(10 + k, 2);
    int rc = store_begin(s);
    struct px_rec r = rec(PX_REC_PROMISE, 0, b);
    if (rc == 0)
        rc = store_put(s, &r);
    if (rc == 0 && k > 1) { /* first, as the node does: it frees the slots reused below */
        r = rec(PX_REC_TRUNCATE, (k - 1) * PER_BATCH - 8, 0);
        rc = store_put(s, &r);
    }
    for (px_inst_t i = (k - 1) * PER_BATCH + 1; rc == 0 && i <= k * PER_BATCH; i++) {
        r = rec(PX_REC_ACCEPTED, i, b);
        rc = store_put(s, &r);
        if (rc == 0 && i % 3 != 0) {
            r = rec(PX_REC_DECIDED, i, 0);
            rc = store_put(s, &r);
        }
    }
    struct px_history f;
    memset(&f, 0, sizeof(f));
    f.digest = mix(k);
    f.applied = k;
    if (rc == 0)
        rc = store_put_fib(s, &f);
    if (rc == 0)
        rc = store_commit(s);
    return rc;
}

/* A fresh area with BATCHES committed batches; the open store in *s, its state in *l. */
static void build(struct store **s, struct loaded *l)
{
    memset(area, 0, area_bytes);
    char err[STORE_ERR_MAX];
    assert_int_equal(open_store(s, err, sizeof(err)), 0);
    for (uint32_t k = 1; k <= BATCHES; k++)
        assert_int_equal(batch(*s, k), 0);
    assert_int_equal(load(*s, l), 0);
    assert_true(l->n > ENTRIES / 2);
}

static void assert_same(const struct loaded *a, const struct loaded *b)
{
    assert_int_equal(a->d.promised, b->d.promised);
    assert_memory_equal(&a->d.fib, &b->d.fib, sizeof(a->d.fib));
    assert_int_equal(a->n, b->n);
    assert_memory_equal(a->recs, b->recs, a->n * sizeof(a->recs[0]));
}

static void assert_damaged(int rc, const char *err)
{
    if (rc != -EBADMSG || strstr(err, "damaged") == NULL)
        print_error("rc %d: %s\n", rc, err);
    assert_int_equal(rc, -EBADMSG);
    assert_non_null(strstr(err, "damaged"));
}

static int setup(void **state)
{
    (void)state;
    area_bytes = store_shm_bytes(ENTRIES);
    return posix_memalign(&area, 64, area_bytes) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    free(area);
    return 0;
}

/* The area: the header, ENTRIES slots of two 64-byte copies, then a 64-byte line of command
 * refs per slot (no command area here). */
static size_t header_bytes(void)
{
    return area_bytes - (size_t)ENTRIES * (128 + 64);
}

/* The byte offset of the copy of instance inst's slot that load uses: of the slot's two
 * 64-byte copies, the one with the higher stamp (its first 8 bytes). */
static size_t live_copy_offset(px_inst_t inst)
{
    size_t slot = header_bytes() + (size_t)(inst % ENTRIES) * 128;
    uint64_t stamp[2];
    memcpy(&stamp[0], (char *)area + slot, 8);
    memcpy(&stamp[1], (char *)area + slot + 64, 8);
    return slot + (stamp[1] > stamp[0] ? 64 : 0);
}

/* The incident: a stray write into the instance field of a live log slot, then the next
 * batch writes that slot. It used to fail as "log area full" (-ENOSPC). */
static void test_shm_store_stray_write_in_a_live_slot_fails_the_next_batch_as_damaged(void **st)
{
    (void)st;
    struct store *s = NULL;
    struct loaded want;
    build(&s, &want);
    px_inst_t inst = BATCHES * PER_BATCH; /* live, accepted, not decided */
    size_t off = live_copy_offset(inst);
    uint64_t garbage = UINT64_C(0x00a5a5a5a5a5a5a5);
    memcpy((char *)area + off + 8, &garbage, sizeof(garbage));
    assert_int_equal(store_begin(s), 0);
    struct px_rec r = rec(PX_REC_DECIDED, inst, 0);
    assert_damaged(store_put(s, &r), store_errmsg(s));
    store_close(s);
}

/* The committed state in the area is read only by load and open (a batch starts from the
 * store's own copy of it): there the damage is named. */
static void test_shm_store_damaged_committed_state_is_named_by_load_and_open(void **st)
{
    (void)st;
    struct store *s = NULL;
    struct loaded want, got;
    build(&s, &want);
    /* ctl[BATCHES & 1], the committed one: its truncation point (offset 16 in it). */
    size_t ctl_off = 64 + (BATCHES & 1) * (header_bytes() - 64) / 2;
    ((char *)area)[ctl_off + 16] ^= 0x40;
    assert_damaged(load(s, &got), store_errmsg(s));
    store_close(s);
    char err[STORE_ERR_MAX];
    assert_damaged(open_store(&s, err, sizeof(err)), err);
}

/* Random garbage anywhere in a committed area: reopened, the store is damaged or unchanged. */
static void test_shm_store_random_garbage_is_reported_damaged_or_harmless(void **st)
{
    (void)st;
    uint64_t rng = SEED;
    uint32_t damaged = 0, harmless = 0;
    for (uint32_t t = 0; t < TRIALS; t++) {
        struct store *s = NULL;
        struct loaded want, got;
        build(&s, &want);
        store_close(s);
        size_t len = 1 + mix(rng++) % DAMAGE_BYTES_MAX;
        size_t off = mix(rng++) % (area_bytes - len);
        for (size_t i = 0; i < len; i++)
            ((unsigned char *)area)[off + i] = (unsigned char)mix(rng++);
        char err[STORE_ERR_MAX] = "";
        int rc = open_store(&s, err, sizeof(err));
        if (rc == 0) {
            rc = load(s, &got);
            snprintf(err, sizeof(err), "%s", store_errmsg(s));
        }
        bool version_hit = off < 12 && off + len > 8; /* the layout version field */
        if (rc == 0) {
            assert_same(&got, &want);
            harmless++;
        } else if (rc == -EPROTO && version_hit) {
            assert_non_null(strstr(err, "layout version")); /* named, as a foreign layout */
            damaged++;
        } else {
            if (rc != -EBADMSG || strstr(err, "damaged") == NULL)
                print_error("trial %u: %zu bytes at %zu: rc %d: %s\n", t, len, off, rc, err);
            assert_damaged(rc, err);
            damaged++;
        }
        store_close(s);
    }
    print_message("random garbage: %u damaged, %u harmless of %u\n", damaged, harmless, TRIALS);
    assert_true(damaged > TRIALS / 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shm_store_stray_write_in_a_live_slot_fails_the_next_batch_as_damaged),
        cmocka_unit_test(test_shm_store_damaged_committed_state_is_named_by_load_and_open),
        cmocka_unit_test(test_shm_store_random_garbage_is_reported_damaged_or_harmless),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
