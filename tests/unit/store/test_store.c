/* test_store.c: the store contract, the same test functions on both backends (sqlite, shm),
 * then the failures each backend must report (damaged file, full disk, other layout ...).
 *
 * "An acceptor records its intended response in stable storage before it sends it"
 * (Paxos Made Simple, 2.3): these tests check that a committed batch is never lost and an
 * uncommitted one never appears, across close, crash (SIGKILL at random moments) and reopen.
 * Seed: PX_TEST_SEED (default fixed), printed once. */
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sqlite3.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "store.h"
#include "store_internal.h" /* store_sq_limit_length */

/* ipc/check.h's CRC-32C, the checksum of an old layout's state row (paxos_store links paxos_ipc
 * privately: its objects come with it, its headers are not on this test's path). */
uint32_t ipc_crc32c(uint32_t crc, const void *p, size_t bytes);

/* Log slots of the shm area in these tests: small, so the ring wraps often. */
#define TEST_ENTRIES_MAX 256
/* The shm area's command area: small too (the crash scenario's live commands take about half),
 * so it wraps every few batches; tests of one long command use an area of their own. */
#define TEST_ARENA_BYTES (192u * 1024u)
/* Records one load may return in these tests (2 per instance). */
#define LOADED_MAX 4096
#define TEST_NODES 3
#define KIB        1024u
#define MIB        (1024u * 1024u)
#define TEST_NODE  1

struct fx {
    enum store_kind kind;
    char dir[256];
    void *area;
    size_t area_bytes;
};

/* The command area's size opening the area: 0 (none) only in the tests of that case. */
static uint64_t fx_arena = TEST_ARENA_BYTES;

static bool scen_cmds = true; /* false: every value inline (a store of a layout before commands) */
static struct fx fx_sqlite = {.kind = STORE_SQLITE};
static struct fx fx_shm = {.kind = STORE_SHM};
static uint64_t test_seed = 0x5eed2026;

struct loaded {
    struct px_durable d;
    uint32_t n;
    struct px_rec recs[LOADED_MAX];
    unsigned char *cmd[LOADED_MAX]; /* recs[i]'s command bytes (a copy), or NULL */
    uint32_t cmd_len[LOADED_MAX];
};
static struct loaded got, want;

/* Empties l, freeing the command bytes it holds. */
static void loaded_reset(struct loaded *l)
{
    for (uint32_t i = 0; i < l->n; i++)
        free(l->cmd[i]);
    memset(l, 0, sizeof(*l));
}

/* ---- fixture ---- */

static int fx_setup(void **state)
{
    struct fx *f = *state;
    const char *tmp = getenv("TMPDIR");
    snprintf(f->dir, sizeof(f->dir), "%s/store-test-XXXXXX", tmp != NULL ? tmp : "/tmp");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    f->area_bytes = store_shm_bytes(TEST_ENTRIES_MAX) + TEST_ARENA_BYTES;
    fx_arena = TEST_ARENA_BYTES; /* a failed test may have left another */
    scen_cmds = true;
    /* MAP_SHARED: the area outlives a forked child that is killed, as the segment does. */
    f->area = mmap(NULL, f->area_bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    return f->area == MAP_FAILED ? -1 : 0;
}

static void fx_rmdir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[512];
    if (d == NULL)
        return;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (unlink(path) != 0)
            rmdir(path); /* the empty mount point of the read-only test */
    }
    closedir(d);
    rmdir(dir);
}

static void loaded_reset(struct loaded *l);

static int fx_teardown(void **state)
{
    struct fx *f = *state;
    loaded_reset(&got); /* the command bytes a test left */
    loaded_reset(&want);
    fx_rmdir(f->dir);
    munmap(f->area, f->area_bytes);
    return 0;
}

static int fx_try_open(struct fx *f, uint16_t nodes, struct store **s, char *err, size_t len)
{
    struct store_params p = {
        .kind = f->kind,
        .dir = f->dir,
        .node_id = TEST_NODE,
        .nodes = nodes,
        .sync = STORE_SYNC_NORMAL,
        .shm_area = f->area,
        .shm_bytes = f->area_bytes,
        .shm_arena_bytes = fx_arena,
    };
    return store_open(&p, s, err, len);
}

static struct store *fx_open(struct fx *f)
{
    char err[STORE_ERR_MAX];
    struct store *s = NULL;
    int rc = fx_try_open(f, TEST_NODES, &s, err, sizeof(err));
    if (rc != 0)
        print_error("store_open: %d %s\n", rc, err);
    assert_int_equal(rc, 0);
    assert_non_null(s);
    return s;
}

static void fx_path(const struct fx *f, char *out, size_t len)
{
    snprintf(out, len, "%s/node-%d.db", f->dir, TEST_NODE);
}

/* ---- records ---- */

static bool has_cmd(const struct px_rec *r)
{
    return (r->type == PX_REC_ACCEPTED || r->type == PX_REC_DECIDED) &&
           (r->value.client_id & PX_VALUE_PAYLOAD) != 0;
}

/* Keeps a copy of each record and its command bytes; store.h: bytes (never NULL) for a record
 * with a command, NULL/0 for any other. */
static void collect(void *ctx, const struct px_rec *r, const void *cmd, uint32_t cmd_len)
{
    struct loaded *l = ctx;
    assert_true(l->n < LOADED_MAX);
    assert_int_equal(cmd != NULL, has_cmd(r));
    l->cmd[l->n] = NULL;
    l->cmd_len[l->n] = cmd_len;
    if (cmd != NULL) {
        l->cmd[l->n] = malloc(cmd_len > 0 ? cmd_len : 1);
        assert_non_null(l->cmd[l->n]);
        memcpy(l->cmd[l->n], cmd, cmd_len);
    } else {
        assert_int_equal(cmd_len, 0);
    }
    l->recs[l->n++] = *r;
}

static void load_into(struct store *s, struct loaded *l)
{
    loaded_reset(l);
    int rc = store_load(s, &l->d, collect, l);
    if (rc != 0)
        print_error("store_load: %s\n", store_errmsg(s));
    assert_int_equal(rc, 0);
}

static struct px_rec rec(uint8_t type, px_inst_t inst, px_ballot_t b, uint64_t incr)
{
    struct px_rec r;
    memset(&r, 0, sizeof(r));
    r.type = type;
    r.instance = inst;
    r.ballot = b;
    if (type == PX_REC_ACCEPTED || type == PX_REC_DECIDED) {
        r.value.word = incr;
        r.value.client_id = (uint32_t)(inst % 5); /* 0 sometimes: the no-op */
        r.value.seq = (uint32_t)inst * 3;
    }
    return r;
}

static void want_rec(struct loaded *l, uint8_t type, px_inst_t inst, px_ballot_t b, uint64_t incr)
{
    assert_true(l->n < LOADED_MAX);
    l->recs[l->n++] = rec(type, inst, type == PX_REC_ACCEPTED ? b : 0, incr);
}

static void assert_rec_eq(const struct px_rec *a, const struct px_rec *b, uint32_t i)
{
    if (a->type != b->type || a->instance != b->instance || a->ballot != b->ballot ||
        a->value.word != b->value.word || a->value.client_id != b->value.client_id ||
        a->value.seq != b->value.seq)
        print_error("record %u: got type %u inst %llu ballot %llx, want type %u inst %llu "
                    "ballot %llx\n",
                    i, a->type, (unsigned long long)a->instance, (unsigned long long)a->ballot,
                    b->type, (unsigned long long)b->instance, (unsigned long long)b->ballot);
    assert_int_equal(a->type, b->type);
    assert_int_equal(a->instance, b->instance);
    assert_int_equal(a->ballot, b->ballot);
    assert_int_equal(a->value.word, b->value.word);
    assert_int_equal(a->value.client_id, b->value.client_id);
    assert_int_equal(a->value.seq, b->value.seq);
}

static void assert_loaded_eq(const struct loaded *g, const struct loaded *w)
{
    assert_int_equal(g->d.promised, w->d.promised);
    assert_memory_equal(&g->d.fib, &w->d.fib, sizeof(g->d.fib));
    assert_int_equal(g->n, w->n);
    for (uint32_t i = 0; i < g->n; i++) {
        assert_rec_eq(&g->recs[i], &w->recs[i], i);
        if ((g->cmd[i] == NULL) != (w->cmd[i] == NULL) || g->cmd_len[i] != w->cmd_len[i])
            print_error("record %u (instance %llu): command of %u bytes%s, want %u bytes%s\n", i,
                        (unsigned long long)g->recs[i].instance, g->cmd_len[i],
                        g->cmd[i] == NULL ? " (none)" : "", w->cmd_len[i],
                        w->cmd[i] == NULL ? " (none)" : "");
        assert_int_equal(g->cmd[i] == NULL, w->cmd[i] == NULL);
        assert_int_equal(g->cmd_len[i], w->cmd_len[i]);
        if (g->cmd[i] != NULL && memcmp(g->cmd[i], w->cmd[i], g->cmd_len[i]) != 0)
            print_error("record %u (instance %llu): command bytes differ\n", i,
                        (unsigned long long)g->recs[i].instance);
        if (g->cmd[i] != NULL)
            assert_true(memcmp(g->cmd[i], w->cmd[i], g->cmd_len[i]) == 0);
    }
}

/* store_load fails with -EBADMSG, and its line holds words. */
static void load_fails_naming(struct store *s, const char *words)
{
    struct px_durable d;
    loaded_reset(&got);
    assert_int_equal(store_load(s, &d, collect, &got), -EBADMSG);
    assert_non_null(strstr(store_errmsg(s), words));
}

static void put_ok(struct store *s, struct px_rec r)
{
    int rc = store_put(s, &r);
    if (rc != 0)
        print_error("store_put: %s\n", store_errmsg(s));
    assert_int_equal(rc, 0);
}

static void commit_ok(struct store *s)
{
    int rc = store_commit(s);
    if (rc != 0)
        print_error("store_commit: %s\n", store_errmsg(s));
    assert_int_equal(rc, 0);
}

/* ---- commands (store_put_cmd) ---- */

/* The bytes of test command (seed, len): every byte depends on seed and its place. */
static void cmd_fill(unsigned char *out, uint32_t len, uint64_t seed)
{
    uint64_t x = seed * UINT64_C(0x9e3779b97f4a7c15) + 1;
    for (uint32_t i = 0; i < len; i += 8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        uint32_t n = len - i < 8 ? len - i : 8;
        memcpy(out + i, &x, n);
    }
}

static unsigned char *cmd_make(uint32_t len, uint64_t seed)
{
    unsigned char *b = malloc(len > 0 ? len : 1);
    assert_non_null(b);
    cmd_fill(b, len, seed);
    return b;
}

/* A record whose value carries command (seed, len): PX_VALUE_PAYLOAD, its first 8 bytes in
 * increment (cmd.h). */
static struct px_rec rec_cmd(uint8_t type, px_inst_t inst, px_ballot_t b, uint32_t len,
                             uint64_t seed)
{
    struct px_rec r;
    memset(&r, 0, sizeof(r));
    r.type = type;
    r.instance = inst;
    r.ballot = type == PX_REC_ACCEPTED ? b : 0;
    unsigned char head[8] = {0};
    cmd_fill(head, len < 8 ? len : 8, seed);
    memcpy(&r.value.word, head, sizeof(head));
    r.value.client_id = 7u | PX_VALUE_PAYLOAD;
    r.value.seq = (uint32_t)inst;
    return r;
}

static void put_cmd_ok(struct store *s, uint8_t type, px_inst_t inst, px_ballot_t b, uint32_t len,
                       uint64_t seed)
{
    struct px_rec r = rec_cmd(type, inst, b, len, seed);
    unsigned char *bytes = cmd_make(len, seed);
    int rc = store_put_cmd(s, &r, bytes, len);
    if (rc != 0)
        print_error("store_put_cmd: %s\n", store_errmsg(s));
    assert_int_equal(rc, 0);
    memset(bytes, 0xee, len); /* copied before store_put_cmd returned */
    free(bytes);
}

static void want_cmd(struct loaded *l, uint8_t type, px_inst_t inst, px_ballot_t b, uint32_t len,
                     uint64_t seed)
{
    assert_true(l->n < LOADED_MAX);
    l->cmd[l->n] = cmd_make(len, seed);
    l->cmd_len[l->n] = len;
    l->recs[l->n++] = rec_cmd(type, inst, b, len, seed);
}

static struct px_history fib_of(uint64_t k)
{
    struct px_history f;
    memset(&f, 0, sizeof(f));
    f.digest = k ^ UINT64_C(0x5eedf00dcafe); /* markers: batch k's history, byte for byte */
    f.requests = k;
    f.clients[0].client_id = 1;
    f.clients[0].seq_low = (uint32_t)k;
    f.clients[0].seen[1] = ~k;
    return f;
}

/* Layouts 2..5 kept the core's state with the Fibonacci value first (8 bytes, host order), then
 * what struct px_history holds now: fib_of(k)'s bytes behind the value k * 1000003. */
#define OLD_FIB_BYTES (8 + sizeof(struct px_history))
static void old_fib_of(uint64_t k, unsigned char out[OLD_FIB_BYTES])
{
    uint64_t value = k * 1000003u;
    struct px_history f = fib_of(k);
    memcpy(out, &value, 8);
    memcpy(out + 8, &f, sizeof(f));
}

/* ---- the batch scenario used by reload and crash tests ----
 * Batch k: PROMISE b(k); re-ACCEPT instance (k-1)W at b(k); ACCEPT (k-1)W+1 .. kW at b(k);
 * DECIDE (k-2)W+1 .. (k-1)W; TRUNCATE (k-T)W; fib_of(k). Any committed prefix 0..P has exactly
 * one expected state, built by scen_expect. */
#define SCEN_W 16 /* instances accepted per batch */
#define SCEN_T 4  /* batches kept behind the truncation point (64 live instances < 256 slots) */

static px_ballot_t scen_ballot(uint64_t k)
{
    return px_ballot_make(k + 7, TEST_NODE);
}

/* Multiplicative (Fibonacci) hashing, Knuth TAOCP 6.4: 2^64 / golden ratio, odd, so
 * inst -> inst * SCEN_INCR_MUL is a bijection whose products wrap and spread over all 64 bits.
 * Neighbouring instances get unrelated increments, and a store that loses high bits or mixes
 * up rows fails the comparison. The same number is splitmix64's step (PX_SPLITMIX64_GAMMA);
 * here it is a plain multiplier, not a generator. */
#define SCEN_INCR_MUL UINT64_C(0x9e3779b97f4a7c15)

static uint64_t scen_incr(px_inst_t inst)
{
    return inst * SCEN_INCR_MUL; /* wraps: uses all 64 bits */
}

/* Every third instance carries a command of 9 to 3008 bytes (command seed: the instance), the
 * others an inline value: the crash test covers both, and the shm command area wraps. */
#define SCEN_CMD_LEN_MAX 3008u
static bool scen_has_cmd(px_inst_t inst)
{
    return scen_cmds && inst % 3 == 0;
}

static uint32_t scen_cmd_len(px_inst_t inst)
{
    return 9u + (uint32_t)(inst * 37u % (SCEN_CMD_LEN_MAX - 8u));
}

static int scen_put(struct store *s, uint8_t type, px_inst_t inst, px_ballot_t b)
{
    if ((type == PX_REC_ACCEPTED || type == PX_REC_DECIDED) && scen_has_cmd(inst)) {
        static unsigned char bytes[SCEN_CMD_LEN_MAX];
        uint32_t len = scen_cmd_len(inst);
        struct px_rec r = rec_cmd(type, inst, b, len, inst);
        cmd_fill(bytes, len, inst);
        return store_put_cmd(s, &r, bytes, len);
    }
    struct px_rec r = rec(type, inst, b, scen_incr(inst));
    return store_put(s, &r);
}

static void scen_want(struct loaded *l, uint8_t type, px_inst_t inst, px_ballot_t b)
{
    if (scen_has_cmd(inst))
        want_cmd(l, type, inst, b, scen_cmd_len(inst), inst);
    else
        want_rec(l, type, inst, b, scen_incr(inst));
}

static int scen_batch(struct store *s, uint64_t k)
{
    int rc = store_begin(s);
    if (rc == 0)
        rc = scen_put(s, PX_REC_PROMISE, 0, scen_ballot(k));
    if (rc == 0 && k > 1)
        rc = scen_put(s, PX_REC_ACCEPTED, (k - 1) * SCEN_W, scen_ballot(k));
    for (px_inst_t i = (k - 1) * SCEN_W + 1; rc == 0 && i <= k * SCEN_W; i++)
        rc = scen_put(s, PX_REC_ACCEPTED, i, scen_ballot(k));
    for (px_inst_t i = k > 1 ? (k - 2) * SCEN_W + 1 : 1; rc == 0 && i <= (k - 1) * SCEN_W; i++)
        rc = scen_put(s, PX_REC_DECIDED, i, 0);
    if (rc == 0 && k > SCEN_T)
        rc = scen_put(s, PX_REC_TRUNCATE, (k - SCEN_T) * SCEN_W, 0);
    struct px_history f = fib_of(k);
    if (rc == 0)
        rc = store_put_fib(s, &f);
    return rc == 0 ? store_commit(s) : rc;
}

static void scen_expect(uint64_t p, struct loaded *l)
{
    loaded_reset(l);
    if (p == 0)
        return;
    l->d.promised = scen_ballot(p);
    l->d.fib = fib_of(p);
    px_inst_t trunc = p > SCEN_T ? (p - SCEN_T) * SCEN_W : 0;
    if (trunc > 0)
        want_rec(l, PX_REC_TRUNCATE, trunc, 0, 0);
    for (px_inst_t i = trunc + 1; i <= p * SCEN_W; i++) {
        uint64_t j = (i - 1) / SCEN_W + 1; /* the batch that first accepted i */
        px_ballot_t b = i == j * SCEN_W && j < p ? scen_ballot(j + 1) : scen_ballot(j);
        scen_want(l, PX_REC_ACCEPTED, i, b);
        if (i <= (p - 1) * SCEN_W)
            scen_want(l, PX_REC_DECIDED, i, 0);
    }
}

/* ---- tests on both backends ---- */

static void test_store_fresh_store_loads_zero_state_and_no_entries(void **state)
{
    {
        struct store *fresh = fx_open(*state);
        assert_int_equal(store_sm_digest_version(fresh), 2); /* a store of this version */
        store_close(fresh);
    }
    struct store *s = fx_open(*state);
    load_into(s, &got);
    scen_expect(0, &want);
    assert_loaded_eq(&got, &want);
    assert_string_equal(store_errmsg(s), "");
    store_close(s);
}

static void test_store_round_trip_of_every_record_type(void **state)
{
    struct store *s = fx_open(*state);
    struct px_history f = fib_of(42);
    assert_int_equal(store_begin(s), 0);
    put_ok(s, rec(PX_REC_PROMISE, 0, px_ballot_make(5, 2), 0));
    put_ok(s, rec(PX_REC_ACCEPTED, 3, px_ballot_make(5, 2), UINT64_MAX));
    put_ok(s, rec(PX_REC_ACCEPTED, 1, px_ballot_make(4, 0), 11));
    put_ok(s, rec(PX_REC_DECIDED, 1, 0, 11));
    put_ok(s, rec(PX_REC_DECIDED, 2, 0, 22)); /* a learner that never accepted 2 */
    put_ok(s, rec(PX_REC_ACCEPTED, 4, px_ballot_make(5, 2), 44));
    put_ok(s, rec(PX_REC_TRUNCATE, 1, 0, 0));
    assert_int_equal(store_put_fib(s, &f), 0);
    commit_ok(s);

    loaded_reset(&want);
    want.d.promised = px_ballot_make(5, 2);
    want.d.fib = f;
    want_rec(&want, PX_REC_TRUNCATE, 1, 0, 0);
    want_rec(&want, PX_REC_DECIDED, 2, 0, 22);
    want_rec(&want, PX_REC_ACCEPTED, 3, px_ballot_make(5, 2), UINT64_MAX);
    want_rec(&want, PX_REC_ACCEPTED, 4, px_ballot_make(5, 2), 44);
    load_into(s, &got);
    assert_loaded_eq(&got, &want);
    store_close(s);
}

static void test_store_later_accept_of_an_instance_replaces_the_earlier(void **state)
{
    struct store *s = fx_open(*state);
    assert_int_equal(store_begin(s), 0);
    put_ok(s, rec(PX_REC_ACCEPTED, 9, px_ballot_make(1, 0), 100));
    commit_ok(s);
    assert_int_equal(store_begin(s), 0);
    put_ok(s, rec(PX_REC_ACCEPTED, 9, px_ballot_make(3, 1), 300));
    put_ok(s, rec(PX_REC_DECIDED, 9, 0, 300));
    commit_ok(s);
    store_close(s);

    s = fx_open(*state);
    loaded_reset(&want);
    want_rec(&want, PX_REC_ACCEPTED, 9, px_ballot_make(3, 1), 300);
    want_rec(&want, PX_REC_DECIDED, 9, 0, 300);
    load_into(s, &got);
    assert_loaded_eq(&got, &want);
    store_close(s);
}

static void test_store_reload_after_close_keeps_every_committed_batch(void **state)
{
    /* 40 batches: the truncation point moves and the shm ring wraps twice. */
    struct store *s = fx_open(*state);
    for (uint64_t k = 1; k <= 40; k++)
        assert_int_equal(scen_batch(s, k), 0);
    store_close(s);
    s = fx_open(*state);
    load_into(s, &got);
    scen_expect(40, &want);
    assert_loaded_eq(&got, &want);
    /* The reopened store continues where it stopped. */
    for (uint64_t k = 41; k <= 45; k++)
        assert_int_equal(scen_batch(s, k), 0);
    store_close(s);
    s = fx_open(*state);
    load_into(s, &got);
    scen_expect(45, &want);
    assert_loaded_eq(&got, &want);
    store_close(s);
}

static void test_store_close_discards_the_open_batch(void **state)
{
    struct store *s = fx_open(*state);
    assert_int_equal(scen_batch(s, 1), 0);
    assert_int_equal(store_begin(s), 0);
    put_ok(s, rec(PX_REC_PROMISE, 0, px_ballot_make(99, 0), 0));
    put_ok(s, rec(PX_REC_ACCEPTED, 17, px_ballot_make(99, 0), 5));
    put_ok(s, rec(PX_REC_TRUNCATE, 16, 0, 0));
    store_close(s);
    s = fx_open(*state);
    load_into(s, &got);
    scen_expect(1, &want);
    assert_loaded_eq(&got, &want);
    store_close(s);
}

static void test_store_uncommitted_batch_is_not_visible_after_crash(void **state)
{
    struct fx *f = *state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct store *s = NULL;
        char err[STORE_ERR_MAX];
        if (fx_try_open(f, TEST_NODES, &s, err, sizeof(err)) != 0)
            _exit(10);
        if (scen_batch(s, 1) != 0 || scen_batch(s, 2) != 0)
            _exit(11);
        /* Batch 3 without its commit: every record type, then the process dies. */
        struct px_history fib = fib_of(3);
        if (store_begin(s) != 0 || scen_put(s, PX_REC_PROMISE, 0, scen_ballot(3)) != 0 ||
            scen_put(s, PX_REC_ACCEPTED, 33, scen_ballot(3)) != 0 ||
            scen_put(s, PX_REC_ACCEPTED, 32, scen_ballot(3)) != 0 ||
            scen_put(s, PX_REC_DECIDED, 20, 0) != 0 || scen_put(s, PX_REC_TRUNCATE, 8, 0) != 0 ||
            store_put_fib(s, &fib) != 0)
            _exit(12);
        raise(SIGKILL);
        _exit(13);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGKILL);
    struct store *s = fx_open(f);
    load_into(s, &got);
    scen_expect(2, &want);
    assert_loaded_eq(&got, &want);
    store_close(s);
}

/* The batch after a crash reuses the dead batch's sequence number: none of the dead batch's
 * records may come back with it. */
static void test_store_batch_after_crash_does_not_revive_the_dead_batch(void **state)
{
    struct fx *f = *state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct store *s = NULL;
        char err[STORE_ERR_MAX];
        if (fx_try_open(f, TEST_NODES, &s, err, sizeof(err)) != 0 || scen_batch(s, 1) != 0)
            _exit(10);
        if (store_begin(s) != 0 || scen_put(s, PX_REC_ACCEPTED, 40, scen_ballot(9)) != 0 ||
            scen_put(s, PX_REC_DECIDED, 41, 0) != 0 ||
            scen_put(s, PX_REC_ACCEPTED, 16, scen_ballot(9)) != 0)
            _exit(11);
        raise(SIGKILL);
        _exit(12);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    struct store *s = fx_open(f);
    assert_int_equal(store_begin(s), 0);
    put_ok(s, rec(PX_REC_ACCEPTED, 50, scen_ballot(2), scen_incr(50)));
    commit_ok(s);
    store_close(s);
    s = fx_open(f);
    load_into(s, &got);
    scen_expect(1, &want);
    want.recs[want.n++] = rec(PX_REC_ACCEPTED, 50, scen_ballot(2), scen_incr(50));
    assert_loaded_eq(&got, &want);
    store_close(s);
}

static void test_store_truncate_drops_entries_at_or_below_its_instance(void **state)
{
    struct store *s = fx_open(*state);
    assert_int_equal(store_begin(s), 0);
    for (px_inst_t i = 1; i <= 10; i++) {
        put_ok(s, rec(PX_REC_ACCEPTED, i, px_ballot_make(1, 1), i));
        put_ok(s, rec(PX_REC_DECIDED, i, 0, i));
    }
    commit_ok(s);
    assert_int_equal(store_begin(s), 0);
    put_ok(s, rec(PX_REC_TRUNCATE, 6, 0, 0));
    put_ok(s, rec(PX_REC_TRUNCATE, 4, 0, 0));                    /* lower: no effect */
    put_ok(s, rec(PX_REC_ACCEPTED, 5, px_ballot_make(2, 1), 5)); /* below: dropped */
    commit_ok(s);
    loaded_reset(&want);
    want_rec(&want, PX_REC_TRUNCATE, 6, 0, 0); /* first: the core learns its log base */
    for (px_inst_t i = 7; i <= 10; i++) {
        want_rec(&want, PX_REC_ACCEPTED, i, px_ballot_make(1, 1), i);
        want_rec(&want, PX_REC_DECIDED, i, 0, i);
    }
    load_into(s, &got);
    assert_loaded_eq(&got, &want);
    store_close(s);
    s = fx_open(*state);
    load_into(s, &got);
    assert_loaded_eq(&got, &want);
    store_close(s);
}

static void test_store_promised_ballot_survives_batches_without_a_promise(void **state)
{
    struct store *s = fx_open(*state);
    assert_int_equal(store_begin(s), 0);
    put_ok(s, rec(PX_REC_PROMISE, 0, px_ballot_make(77, 2), 0));
    commit_ok(s);
    for (uint64_t k = 1; k <= 30; k++) {
        struct px_history f = fib_of(k);
        assert_int_equal(store_begin(s), 0);
        put_ok(s, rec(PX_REC_ACCEPTED, k, px_ballot_make(77, 2), k));
        put_ok(s, rec(PX_REC_TRUNCATE, k > 3 ? k - 3 : 0, 0, 0));
        assert_int_equal(store_put_fib(s, &f), 0);
        commit_ok(s);
    }
    /* An empty batch and an abandoned one change nothing either. */
    assert_int_equal(store_begin(s), 0);
    commit_ok(s);
    assert_int_equal(store_begin(s), 0);
    put_ok(s, rec(PX_REC_PROMISE, 0, px_ballot_make(78, 0), 0));
    store_close(s);
    s = fx_open(*state);
    load_into(s, &got);
    assert_int_equal(got.d.promised, px_ballot_make(77, 2));
    assert_int_equal(got.d.fib.requests, 30);
    assert_int_equal(got.n, 4); /* TRUNCATE 27, ACCEPTED 28..30 */
    assert_int_equal(got.recs[0].type, PX_REC_TRUNCATE);
    assert_int_equal(got.recs[0].instance, 27);
    store_close(s);
}

/* store_put of a record whose value carries a command would lose its bytes: refused, and the
 * batch with it (sticky, store.h). */
static void test_store_put_of_a_value_with_a_command_fails_with_einval(void **state)
{
    for (int k = 0; k < 2; k++) {
        uint8_t type = k == 0 ? PX_REC_ACCEPTED : PX_REC_DECIDED;
        struct store *s = fx_open(*state);
        assert_int_equal(store_begin(s), 0);
        put_ok(s, rec(PX_REC_ACCEPTED, 1, px_ballot_make(1, 0), 1));
        struct px_rec r = rec_cmd(type, 2, px_ballot_make(1, 0), 100, 5);
        assert_int_equal(store_put(s, &r), -EINVAL);
        assert_non_null(strstr(store_errmsg(s), "store_put_cmd"));
        assert_int_equal(store_commit(s), -EINVAL);
        assert_int_equal(store_begin(s), -EINVAL);
        store_close(s);
        s = fx_open(*state);
        load_into(s, &got);
        assert_int_equal(got.n, 0);
        store_close(s);
    }
}

/* store_put_cmd takes only an ACCEPTED or DECIDED with PX_VALUE_PAYLOAD and at most
 * CMD_BYTES_MAX bytes; anything else is -EINVAL, on every backend, and breaks the store. */
static void test_store_put_cmd_of_bad_arguments_fails_with_einval(void **state)
{
    static unsigned char bytes[64];
    struct px_rec plain = rec(PX_REC_ACCEPTED, 3, px_ballot_make(1, 0), 3);
    struct px_rec promise = rec_cmd(PX_REC_ACCEPTED, 0, px_ballot_make(2, 0), 9, 1);
    struct px_rec truncate = rec_cmd(PX_REC_ACCEPTED, 1, 0, 9, 1);
    struct px_rec good = rec_cmd(PX_REC_DECIDED, 4, 0, 9, 1);
    promise.type = PX_REC_PROMISE;
    truncate.type = PX_REC_TRUNCATE;
    struct {
        const struct px_rec *r;
        const void *cmd;
        uint32_t len;
        const char *words;
    } bad[] = {
        {&plain, bytes, 9, "PX_VALUE_PAYLOAD not set"},
        {&promise, bytes, 9, "carries no command"},
        {&truncate, bytes, 9, "carries no command"},
        {&good, bytes, CMD_BYTES_MAX + 1, "at most 67108864"},
        {&good, NULL, 9, "at NULL"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct store *s = fx_open(*state);
        assert_int_equal(store_begin(s), 0);
        int rc = store_put_cmd(s, bad[i].r, bad[i].cmd, bad[i].len);
        if (rc != -EINVAL || strstr(store_errmsg(s), bad[i].words) == NULL)
            print_error("case %zu: %d '%s'\n", i, rc, store_errmsg(s));
        assert_int_equal(rc, -EINVAL);
        assert_non_null(strstr(store_errmsg(s), bad[i].words));
        assert_int_equal(store_put_cmd(s, &good, bytes, 9), -EINVAL); /* sticky */
        assert_int_equal(store_commit(s), -EINVAL);
        store_close(s);
    }
    struct store *s = fx_open(*state);
    load_into(s, &got);
    assert_int_equal(got.n, 0);
    store_close(s);
}

/* ---- crash at random moments ---- */

static uint64_t rng_next(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

/* Child: reopen, then write batch after batch until killed; one byte on fd after the first
 * commit. The scenario bounds nothing but the batch count: the parent always kills it. */
static void crash_child(struct fx *f, int fd)
{
    struct store *s = NULL;
    char err[STORE_ERR_MAX];
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
        _exit(20);
    if (fx_try_open(f, TEST_NODES, &s, err, sizeof(err)) != 0)
        _exit(21);
    if (store_load(s, &got.d, NULL, NULL) != 0)
        _exit(22);
    uint64_t first = got.d.fib.requests + 1;
    for (uint64_t k = first; k < first + (UINT64_C(1) << 32); k++) {
        if (scen_batch(s, k) != 0)
            _exit(23);
        if (k == first && write(fd, "c", 1) != 1)
            _exit(24);
    }
    _exit(0);
}

/* Kills a writer `iters` times at seeded random moments within max_us; every reopened store
 * must be exactly one committed prefix, never behind the previous one. On even iterations
 * the kill comes after the child's first commit, so progress is certain. */
static void crash_loop(struct fx *f, int iters, unsigned max_us)
{
    uint64_t rng = test_seed | 1, last = 0;
    for (int it = 0; it < iters; it++) {
        int pfd[2];
        assert_int_equal(pipe(pfd), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(pfd[0]);
            crash_child(f, pfd[1]);
        }
        close(pfd[1]);
        char c;
        bool after_commit = it % 2 == 0;
        if (after_commit)
            assert_int_equal(read(pfd[0], &c, 1), 1);
        usleep((useconds_t)(rng_next(&rng) % max_us));
        assert_int_equal(kill(pid, SIGKILL), 0);
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        close(pfd[0]);
        if (!WIFSIGNALED(status))
            print_error("iteration %d: child exited with %d\n", it, WEXITSTATUS(status));
        assert_true(WIFSIGNALED(status));
        struct store *s = fx_open(f);
        load_into(s, &got);
        store_close(s);
        uint64_t p = got.d.fib.requests;
        scen_expect(p, &want);
        assert_loaded_eq(&got, &want);
        assert_true(p >= last);
        if (after_commit)
            assert_true(p > last);
        last = p;
    }
}

static void test_store_kill_at_random_moments_leaves_a_committed_prefix(void **state)
{
    struct fx *f = *state;
    if (f->kind == STORE_SHM)
        crash_loop(f, 100, 2000);
    else
        crash_loop(f, 20, 20000); /* each sqlite reopen recovers a WAL: fewer, longer runs */
}

/* ---- shm only ---- */

static void test_shm_instance_beyond_the_ring_fails_with_enospc_and_keeps_old_state(void **s0)
{
    struct fx *f = *s0;
    struct store *s = fx_open(f);
    assert_int_equal(store_shm_entries_max(s), TEST_ENTRIES_MAX);
    assert_int_equal(scen_batch(s, 1), 0); /* instances 1..16 */
    assert_int_equal(store_begin(s), 0);
    put_ok(s, rec(PX_REC_ACCEPTED, TEST_ENTRIES_MAX, 1, 1));            /* last free slot: fits */
    struct px_rec r = rec(PX_REC_ACCEPTED, TEST_ENTRIES_MAX + 1, 1, 1); /* slot of instance 1 */
    assert_int_equal(store_put(s, &r), -ENOSPC);
    assert_non_null(strstr(store_errmsg(s), "shm store of node 1: log area full"));
    assert_int_equal(store_commit(s), -ENOSPC); /* sticky */
    assert_int_equal(store_begin(s), -ENOSPC);
    store_close(s);
    s = fx_open(f);
    load_into(s, &got);
    scen_expect(1, &want);
    assert_loaded_eq(&got, &want);
    /* After truncating instance 1, its slot is free for instance entries_max + 1. */
    assert_int_equal(store_begin(s), 0);
    put_ok(s, rec(PX_REC_TRUNCATE, 1, 0, 0));
    put_ok(s, r);
    commit_ok(s);
    load_into(s, &got);
    assert_int_equal(got.recs[got.n - 1].instance, TEST_ENTRIES_MAX + 1);
    store_close(s);
}

static void test_shm_area_of_other_pool_size_fails_with_einval(void **state)
{
    struct fx *f = *state;
    char err[STORE_ERR_MAX];
    struct store *s = fx_open(f);
    store_close(s);
    assert_int_equal(fx_try_open(f, TEST_NODES + 1, &s, err, sizeof(err)), -EINVAL);
    assert_null(s);
    assert_non_null(strstr(err, "shm store of node 1: the store was made for node 1 of 3"));
}

static void test_shm_area_of_other_layout_version_fails_with_eproto(void **state)
{
    struct fx *f = *state;
    char err[STORE_ERR_MAX];
    struct store *s = fx_open(f);
    store_close(s);
    uint32_t v = 99; /* layout_version follows the 8-byte magic */
    memcpy((char *)f->area + 8, &v, sizeof(v));
    assert_int_equal(fx_try_open(f, TEST_NODES, &s, err, sizeof(err)), -EPROTO);
    assert_non_null(strstr(err, "layout version 99"));
}

static void test_shm_damaged_area_fails_with_ebadmsg(void **state)
{
    struct fx *f = *state;
    char err[STORE_ERR_MAX];
    struct store *s = NULL;
    memset(f->area, 0xa5, 64); /* not zero (fresh) and not the magic */
    assert_int_equal(fx_try_open(f, TEST_NODES, &s, err, sizeof(err)), -EBADMSG);
    assert_non_null(strstr(err, "shm store of node 1: not a store area"));
}

static void test_shm_unaligned_or_small_area_fails_with_einval(void **state)
{
    struct fx *f = *state;
    char err[STORE_ERR_MAX];
    struct store *s = NULL;
    struct store_params p = {.kind = STORE_SHM, .node_id = 0, .nodes = 1};
    p.shm_area = (char *)f->area + 8;
    p.shm_bytes = f->area_bytes - 64;
    assert_int_equal(store_open(&p, &s, err, sizeof(err)), -EINVAL);
    p.shm_area = f->area;
    p.shm_bytes = store_shm_bytes(1) - 1;
    assert_int_equal(store_open(&p, &s, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "not 64-byte aligned or smaller than"));
}

/* A shm store made without a command area keeps no command bytes: it says so, and the batch is
 * not committed; an area opened with another command area's size is refused. */
static void test_shm_without_a_command_area_refuses_commands_with_emsgsize(void **state)
{
    static unsigned char bytes[16];
    char err[STORE_ERR_MAX];
    fx_arena = 0;
    struct store *s = fx_open(*state);
    assert_int_equal(store_begin(s), 0);
    put_ok(s, rec(PX_REC_ACCEPTED, 16, scen_ballot(1), 16));
    commit_ok(s);
    assert_int_equal(store_begin(s), 0);
    struct px_rec r = rec_cmd(PX_REC_ACCEPTED, 17, scen_ballot(2), sizeof(bytes), 3);
    assert_int_equal(store_put_cmd(s, &r, bytes, sizeof(bytes)), -EMSGSIZE);
    assert_string_equal(store_errmsg(s), "shm store of node 1: commands longer than 8 bytes need a "
                                         "command area (this shm store has none)");
    assert_int_equal(store_commit(s), -EMSGSIZE);
    store_close(s);
    s = fx_open(*state);
    load_into(s, &got);
    loaded_reset(&want);
    want_rec(&want, PX_REC_ACCEPTED, 16, scen_ballot(1), 16);
    assert_loaded_eq(&got, &want);
    store_close(s);
    fx_arena = TEST_ARENA_BYTES;
    assert_int_equal(fx_try_open(*state, TEST_NODES, &s, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "made with a command area of 0 bytes, opened with 196608"));
}

/* One 10 KiB command per batch, truncated two batches later: 2 MiB through a 192 KiB area,
 * which only works when the space of truncated commands comes back. Reopened along the way. */
static void test_shm_command_area_wraps_and_gives_space_back(void **state)
{
    const uint32_t len = 10 * KIB;
    struct store *s = fx_open(*state);
    for (px_inst_t k = 1; k <= 200; k++) {
        assert_int_equal(store_begin(s), 0);
        if (k > 2)
            put_ok(s, rec(PX_REC_TRUNCATE, k - 2, 0, 0));
        put_cmd_ok(s, PX_REC_ACCEPTED, k, px_ballot_make(1, 1), len, k);
        put_cmd_ok(s, PX_REC_DECIDED, k, 0, len, k); /* the ACCEPTED's record, named again */
        commit_ok(s);
        if (k % 37 == 0) {
            store_close(s);
            s = fx_open(*state);
            loaded_reset(&want);
            want_rec(&want, PX_REC_TRUNCATE, k - 2, 0, 0);
            for (px_inst_t i = k - 1; i <= k; i++) {
                want_cmd(&want, PX_REC_ACCEPTED, i, px_ballot_make(1, 1), len, i);
                want_cmd(&want, PX_REC_DECIDED, i, 0, len, i);
            }
            load_into(s, &got);
            assert_loaded_eq(&got, &want);
        }
    }
    store_close(s);
}

/* Commands never truncated fill the area: the batch that does not fit fails with -ENOSPC
 * (store_shm_area_full), the committed state stays whole, and once a committed TRUNCATE drops
 * them, their space comes back. */
static void test_shm_full_command_area_fails_with_enospc_and_keeps_old_state(void **state)
{
    const uint32_t len = 16 * KIB;
    struct store *s = fx_open(*state);
    px_inst_t k = 0;
    int rc = 0;
    loaded_reset(&want);
    while (rc == 0) {
        k++;
        assert_true(k < 64);
        struct px_rec r = rec_cmd(PX_REC_ACCEPTED, k, px_ballot_make(1, 1), len, k);
        unsigned char *bytes = cmd_make(len, k);
        assert_int_equal(store_begin(s), 0);
        rc = store_put_cmd(s, &r, bytes, len);
        free(bytes);
        if (rc == 0) {
            commit_ok(s);
            want_cmd(&want, PX_REC_ACCEPTED, k, px_ballot_make(1, 1), len, k);
        }
    }
    assert_int_equal(rc, -ENOSPC);
    assert_true(store_shm_area_full(s));
    assert_non_null(strstr(store_errmsg(s), "command area full: the 16384-byte command of "
                                            "instance"));
    assert_true(k > 8); /* 192 KiB hold 11 of them */
    assert_int_equal(store_commit(s), -ENOSPC);
    store_close(s);
    s = fx_open(*state);
    assert_false(store_shm_area_full(s));
    load_into(s, &got);
    assert_loaded_eq(&got, &want);
    assert_int_equal(store_begin(s), 0);
    put_ok(s, rec(PX_REC_TRUNCATE, k - 1, 0, 0));
    commit_ok(s);
    for (px_inst_t i = k; i < k + 8; i++) {
        assert_int_equal(store_begin(s), 0);
        put_cmd_ok(s, PX_REC_ACCEPTED, i, px_ballot_make(2, 1), len, i);
        commit_ok(s);
    }
    store_close(s);
}

/* The same command accepted again at later ballots (a new leader's phase 2 of what it adopted)
 * and then decided names the one record: 40 ballots of a 16 KiB command in a 192 KiB area
 * whose tail a live record holds. */
static void test_shm_same_command_accepted_again_takes_no_new_space(void **state)
{
    const uint32_t len = 16 * KIB;
    struct store *s = fx_open(*state);
    /* Instance 1's record stays live: space behind it comes back only when it goes. */
    assert_int_equal(store_begin(s), 0);
    put_cmd_ok(s, PX_REC_ACCEPTED, 1, px_ballot_make(1, 1), 100, 11);
    commit_ok(s);
    for (uint32_t b = 1; b <= 40; b++) {
        assert_int_equal(store_begin(s), 0);
        put_cmd_ok(s, PX_REC_ACCEPTED, 3, px_ballot_make(b, 1), len, 33);
        commit_ok(s);
    }
    assert_int_equal(store_begin(s), 0);
    put_cmd_ok(s, PX_REC_DECIDED, 3, 0, len, 33);
    put_cmd_ok(s, PX_REC_ACCEPTED, 4, px_ballot_make(40, 1), len, 44); /* another: its own */
    commit_ok(s);
    store_close(s);
    s = fx_open(*state);
    loaded_reset(&want);
    want_cmd(&want, PX_REC_ACCEPTED, 1, px_ballot_make(1, 1), 100, 11);
    want_cmd(&want, PX_REC_ACCEPTED, 3, px_ballot_make(40, 1), len, 33);
    want_cmd(&want, PX_REC_DECIDED, 3, 0, len, 33);
    want_cmd(&want, PX_REC_ACCEPTED, 4, px_ballot_make(40, 1), len, 44);
    load_into(s, &got);
    assert_loaded_eq(&got, &want);
    store_close(s);
}

/* A byte of a command in the area changed (a stray write into the segment): the load names the
 * instance and fails with -EBADMSG, never hands out other bytes. */
static void test_shm_damaged_command_byte_fails_load_with_ebadmsg(void **state)
{
    struct fx *f = *state;
    struct store *s = fx_open(f);
    assert_int_equal(store_begin(s), 0);
    put_cmd_ok(s, PX_REC_ACCEPTED, 5, px_ballot_make(1, 1), 4 * KIB, 5);
    commit_ok(s);
    store_close(s);
    unsigned char *area = (unsigned char *)f->area + store_shm_bytes(TEST_ENTRIES_MAX);
    area[32 + 1000] ^= 0x01; /* the record's header is 32 bytes, its bytes follow */
    s = fx_open(f);
    load_fails_naming(s, "damaged: the command of instance 5 (4096 bytes");
    store_close(s);
}

/* A 16 MiB command in an area of its own: put, commit, reopen, load. */
static void test_shm_command_of_16_mib_round_trips(void **state)
{
    (void)state;
    const uint32_t len = 16 * MIB;
    struct fx big = {.kind = STORE_SHM};
    uint64_t arena = store_shm_arena_for(len, 1);
    big.area_bytes = store_shm_bytes(16) + arena;
    big.area =
        mmap(NULL, big.area_bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(big.area != MAP_FAILED);
    fx_arena = arena;
    struct store *s = fx_open(&big);
    assert_int_equal(store_begin(s), 0);
    put_cmd_ok(s, PX_REC_ACCEPTED, 1, px_ballot_make(1, 1), len, 16);
    commit_ok(s);
    store_close(s);
    s = fx_open(&big);
    loaded_reset(&want);
    want_cmd(&want, PX_REC_ACCEPTED, 1, px_ballot_make(1, 1), len, 16);
    load_into(s, &got);
    assert_loaded_eq(&got, &want);
    store_close(s);
    loaded_reset(&got);
    loaded_reset(&want);
    fx_arena = TEST_ARENA_BYTES;
    munmap(big.area, big.area_bytes);
}

/* ---- sqlite only ---- */

static void sq_make_store(struct fx *f, uint64_t batches)
{
    struct store *s = fx_open(f);
    for (uint64_t k = 1; k <= batches; k++)
        assert_int_equal(scen_batch(s, k), 0);
    store_close(s); /* the last connection checkpoints the WAL into the main file */
}

static void sq_overwrite(struct fx *f, off_t at, int byte, size_t len)
{
    char path[512], buf[4096];
    fx_path(f, path, sizeof(path));
    assert_true(len <= sizeof(buf));
    memset(buf, byte, len);
    int fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, buf, len, at), (ssize_t)len);
    assert_int_equal(close(fd), 0);
}

static void sq_expect_open_fails(struct fx *f, uint16_t nodes, int code, const char *words)
{
    char err[STORE_ERR_MAX], path[512];
    struct store *s = NULL;
    fx_path(f, path, sizeof(path));
    int rc = fx_try_open(f, nodes, &s, err, sizeof(err));
    if (rc != code || strstr(err, words) == NULL || strstr(err, path) == NULL)
        print_error("open: %d (want %d) '%s'\n", rc, code, err);
    assert_int_equal(rc, code);
    assert_null(s);
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, words));
}

static void test_sqlite_damaged_header_fails_with_ebadmsg(void **state)
{
    sq_make_store(*state, 3);
    sq_overwrite(*state, 0, 'x', 16); /* "SQLite format 3\0" */
    sq_expect_open_fails(*state, TEST_NODES, -EBADMSG, "damaged or is not a database");
}

static void test_sqlite_damaged_table_page_fails_with_ebadmsg(void **state)
{
    struct stat st;
    char path[512];
    unsigned char hdr[18];
    sq_make_store(*state, 3);
    fx_path(*state, path, sizeof(path));
    assert_int_equal(stat(path, &st), 0);
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, hdr, sizeof(hdr), 0), (ssize_t)sizeof(hdr));
    assert_int_equal(close(fd), 0);
    size_t page = (size_t)hdr[16] << 8 | hdr[17]; /* the header's page size (big-endian) */
    assert_true(page >= 512 && page <= 4096);
    assert_true(st.st_size >= 4 * (off_t)page);        /* master, meta, paxos_state, log */
    sq_overwrite(*state, 3 * (off_t)page, 0x5a, page); /* page 4: a table's b-tree page */
    sq_expect_open_fails(*state, TEST_NODES, -EBADMSG, "damaged");
}

static void test_sqlite_file_that_is_not_a_database_fails_with_ebadmsg(void **state)
{
    char path[512];
    fx_path(*state, path, sizeof(path));
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    for (int i = 0; i < 200; i++)
        fputs("this is a text file, not a database\n", fp);
    assert_int_equal(fclose(fp), 0);
    sq_expect_open_fails(*state, TEST_NODES, -EBADMSG, "not a database");
}

static void sq_raw_exec(struct fx *f, const char *sql)
{
    char path[512];
    sqlite3 *db = NULL;
    fx_path(f, path, sizeof(path));
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

/* The integer the query's first row holds. */
static int64_t sq_raw_int(struct fx *f, const char *sql)
{
    char path[512];
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    fx_path(f, path, sizeof(path));
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
    return v;
}

static void test_sqlite_other_layout_version_fails_with_eproto(void **state)
{
    sq_make_store(*state, 1);
    sq_raw_exec(*state, "UPDATE meta SET value = 99 WHERE key = 'layout_version'");
    sq_expect_open_fails(*state, TEST_NODES, -EPROTO, "layout version 99");
    /* The next layout is refused too: this build reads 2 to 6. */
    sq_raw_exec(*state, "UPDATE meta SET value = 7 WHERE key = 'layout_version'");
    sq_expect_open_fails(*state, TEST_NODES, -EPROTO,
                         "layout version 7, this build reads versions 2 to 6");
}

/* Layout 2's log record (the release before the packed records): 32 bytes, native order. */
struct v2_packed {
    uint64_t instance, ballot, word;
    uint32_t client_id, seq;
};

/* Appends one layout-2 log row holding recs[0..n) of kind 1 (ACCEPTED) or 2 (DECIDED). */
static void v2_row(sqlite3 *db, int kind, const struct px_rec *recs, int n)
{
    struct v2_packed packed[3 * SCEN_W];
    sqlite3_stmt *st = NULL;
    assert_true(n > 0 && n <= 3 * SCEN_W);
    for (int i = 0; i < n; i++)
        packed[i] = (struct v2_packed){recs[i].instance, recs[i].ballot, recs[i].value.word,
                                       recs[i].value.client_id, recs[i].value.seq};
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "INSERT INTO log(kind, first, last, recs)"
                                        " VALUES(?1, ?2, ?3, ?4)",
                                        -1, &st, NULL),
                     SQLITE_OK);
    sqlite3_bind_int(st, 1, kind);
    sqlite3_bind_int64(st, 2, (int64_t)recs[0].instance);
    sqlite3_bind_int64(st, 3, (int64_t)recs[n - 1].instance);
    sqlite3_bind_blob(st, 4, packed, n * (int)sizeof(packed[0]), SQLITE_TRANSIENT);
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
}

/* Writes scenario batches 1..p as the previous release did (layout 2), into a new store. */
static void v2_make_store(struct fx *f, uint64_t p)
{
    char path[512];
    sqlite3 *db = NULL;
    struct px_rec recs[3 * SCEN_W];
    store_close(fx_open(f)); /* the tables */
    fx_path(f, path, sizeof(path));
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "UPDATE meta SET value = 2 WHERE key = 'layout_version';"
                                  "ALTER TABLE paxos_state DROP COLUMN crc;"
                                  "ALTER TABLE log DROP COLUMN crc;"
                                  "DELETE FROM meta WHERE key IN ('pool_id', 'epoch')",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    for (uint64_t k = 1; k <= p; k++) {
        int n = 0;
        if (k > 1)
            recs[n++] =
                rec(PX_REC_ACCEPTED, (k - 1) * SCEN_W, scen_ballot(k), scen_incr((k - 1) * SCEN_W));
        for (px_inst_t i = (k - 1) * SCEN_W + 1; i <= k * SCEN_W; i++)
            recs[n++] = rec(PX_REC_ACCEPTED, i, scen_ballot(k), scen_incr(i));
        v2_row(db, 1, recs, n);
        n = 0;
        for (px_inst_t i = k > 1 ? (k - 2) * SCEN_W + 1 : 1; i <= (k - 1) * SCEN_W; i++)
            recs[n++] = rec(PX_REC_DECIDED, i, 0, scen_incr(i));
        if (n > 0)
            v2_row(db, 2, recs, n);
    }
    unsigned char fib[OLD_FIB_BYTES];
    old_fib_of(p, fib);
    char sql[96];
    snprintf(sql, sizeof(sql), "UPDATE meta SET value = %zu WHERE key = 'fib_bytes'", sizeof(fib));
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(
        sqlite3_prepare_v2(db, "UPDATE paxos_state SET promised = ?1, fib = ?2", -1, &st, NULL),
        SQLITE_OK);
    sqlite3_bind_int64(st, 1, (int64_t)scen_ballot(p));
    sqlite3_bind_blob(st, 2, fib, (int)sizeof(fib), SQLITE_TRANSIENT);
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

/* The state row's checksum as layouts 4 and 5 computed it (store_sqlite.c: seed "ST", then
 * promised, truncated and the length of the core's state as 8 bytes little endian each, then
 * its bytes). */
static uint32_t old_word_crc(uint32_t crc, uint64_t v)
{
    unsigned char b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(v >> (8 * i));
    return ipc_crc32c(crc, b, sizeof(b));
}

/* Makes the store in f (of this layout, its scenario batches 1..k committed, no state machine
 * snapshot) what a build of layout `version` (4 or 5) left: its state row holds the old core
 * state of fib_of(k), value first, under the checksum of then. */
static void sq_make_old_layout_fib(struct fx *f, int version, const unsigned char *fib);

static void sq_make_old_layout(struct fx *f, int version, uint64_t k)
{
    unsigned char fib[OLD_FIB_BYTES];
    old_fib_of(k, fib);
    sq_make_old_layout_fib(f, version, fib);
}

/* The same with the old state row's bytes given (OLD_FIB_BYTES). */
static void sq_make_old_layout_fib(struct fx *f, int version, const unsigned char *fib)
{
    char path[512], sql[160];
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    uint64_t promised = (uint64_t)sq_raw_int(f, "SELECT promised FROM paxos_state");
    uint64_t truncated = (uint64_t)sq_raw_int(f, "SELECT truncated FROM paxos_state");
    uint32_t crc =
        old_word_crc(old_word_crc(old_word_crc(0x5354u, promised), truncated), OLD_FIB_BYTES);
    crc = ipc_crc32c(crc, fib, OLD_FIB_BYTES);
    fx_path(f, path, sizeof(path));
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(
        sqlite3_prepare_v2(db, "UPDATE paxos_state SET fib = ?1, crc = ?2", -1, &st, NULL),
        SQLITE_OK);
    sqlite3_bind_blob(st, 1, fib, (int)OLD_FIB_BYTES, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, crc);
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
    snprintf(sql, sizeof(sql),
             "UPDATE meta SET value = %d WHERE key = 'layout_version';"
             "UPDATE meta SET value = %zu WHERE key = 'fib_bytes'",
             version, (size_t)OLD_FIB_BYTES);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

static int64_t sq_layout_version(struct fx *f)
{
    char path[512];
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    fx_path(f, path, sizeof(path));
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key = 'layout_version'",
                                        -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
    return v;
}

/* A data directory of layout 2 (32-byte records, the core's state with the Fibonacci value)
 * loads as it was, less the value, and goes on with packed records; its meta says layout 6
 * afterwards, so a build that reads only 2 refuses it. */
static void test_sqlite_layout_2_store_loads_and_continues_in_layout_6(void **state)
{
    scen_cmds = false; /* layout 2 kept no commands */
    v2_make_store(*state, 3);
    struct store *s = fx_open(*state);
    load_into(s, &got);
    scen_expect(3, &want);
    assert_loaded_eq(&got, &want);
    scen_cmds = true;
    for (uint64_t k = 4; k <= 2 * SCEN_T + 1; k++) /* truncation drops the layout-2 rows */
        assert_int_equal(scen_batch(s, k), 0);
    store_close(s);
    assert_int_equal(sq_layout_version(*state), 6);
    assert_int_equal(sq_raw_int(*state, "SELECT length(fib) FROM paxos_state"),
                     sizeof(struct px_history));
    s = fx_open(*state);
    load_into(s, &got);
    scen_expect(2 * SCEN_T + 1, &want);
    assert_loaded_eq(&got, &want);
    store_close(s);
}

/* Opens the test node's store with an identity (store_params.pool_id, epoch, must_exist). */
static int fx_try_open_as(struct fx *f, int64_t pool_id, int64_t epoch, bool must_exist,
                          struct store **s, char *err, size_t len)
{
    struct store_params p = {
        .kind = f->kind,
        .dir = f->dir,
        .node_id = TEST_NODE,
        .nodes = TEST_NODES,
        .sync = STORE_SYNC_NORMAL,
        .pool_id = pool_id,
        .epoch = epoch,
        .must_exist = must_exist,
    };
    return store_open(&p, s, err, len);
}

static void expect_open_as(struct fx *f, int64_t pool_id, int64_t epoch, bool must_exist, int code,
                           const char *words)
{
    char err[STORE_ERR_MAX] = "";
    struct store *s = NULL;
    int rc = fx_try_open_as(f, pool_id, epoch, must_exist, &s, err, sizeof(err));
    if (rc != code || (words != NULL && strstr(err, words) == NULL))
        print_error("open: %d (want %d) '%s'\n", rc, code, err);
    assert_int_equal(rc, code);
    if (words != NULL)
        assert_non_null(strstr(err, words));
    store_close(s);
}

/* The state row changed through sqlite (the file stays well formed, as bit rot looks): the open
 * names the file and the row and loads nothing. */
static void test_sqlite_state_row_changed_outside_fails_open_with_ebadmsg(void **state)
{
    sq_make_store(*state, 2);
    /* byte 0 of the history: the low byte of its digest (fib_of(2): 0xfc), made 0 */
    sq_raw_exec(*state, "UPDATE paxos_state SET fib = cast(x'00' || substr(fib, 2) as blob)");
    sq_expect_open_fails(*state, TEST_NODES, -EBADMSG, "row paxos_state");
}

static void test_sqlite_promise_changed_outside_fails_open_with_ebadmsg(void **state)
{
    sq_make_store(*state, 2);
    sq_raw_exec(*state, "UPDATE paxos_state SET promised = promised - 1");
    sq_expect_open_fails(*state, TEST_NODES, -EBADMSG, "checksum mismatch");
}

/* A log row (accepted values) changed or added through sqlite fails the load, naming the row. */
static void test_sqlite_log_row_changed_outside_fails_load_with_ebadmsg(void **state)
{
    sq_make_store(*state, 3);
    sq_raw_exec(*state, "UPDATE log SET recs = x'00' || substr(recs, 2)"
                        " WHERE batch = (SELECT min(batch) FROM log)");
    struct store *s = fx_open(*state);
    struct px_durable d;
    loaded_reset(&got);
    assert_int_equal(store_load(s, &d, collect, &got), -EBADMSG);
    assert_non_null(strstr(store_errmsg(s), "of table log"));
    assert_non_null(strstr(store_errmsg(s), "checksum mismatch"));
    store_close(s);
}

static void test_sqlite_log_row_added_outside_fails_load_with_ebadmsg(void **state)
{
    sq_make_store(*state, 2);
    sq_raw_exec(*state, "INSERT INTO log(kind, first, last, recs) VALUES(3, 40, 40, x'5002')");
    struct store *s = fx_open(*state);
    struct px_durable d;
    loaded_reset(&got);
    assert_int_equal(store_load(s, &d, collect, &got), -EBADMSG);
    assert_non_null(strstr(store_errmsg(s), "checksum missing"));
    store_close(s);
}

/* ---- the state machine's snapshot (store_put_sm_snapshot) ---- */

static struct store_sm_snap sm_head(uint64_t k)
{
    struct store_sm_snap h;
    memset(&h, 0, sizeof(h));
    h.index = 100 + k;
    h.cmd_digest = UINT64_C(0xabcdef0123456789) ^ k;
    h.applied = 90 + k;
    h.fib = fib_of(k);
    return h;
}

static void sm_put_ok(struct store *s, const struct store_sm_snap *h, const void *b, size_t len)
{
    assert_int_equal(store_begin(s), 0);
    put_ok(s, rec(PX_REC_DECIDED, h->index, 0, 7));
    assert_int_equal(store_put_sm_snapshot(s, h, b, len), 0);
    commit_ok(s);
}

static void sm_expect(struct store *s, const struct store_sm_snap *want_h, const void *b,
                      size_t len)
{
    struct store_sm_snap h;
    void *bytes = NULL;
    size_t got_len = 0;
    bool found = false;
    int rc = store_load_sm_snapshot(s, &h, &bytes, &got_len, &found);
    if (rc != 0)
        print_error("store_load_sm_snapshot: %s\n", store_errmsg(s));
    assert_int_equal(rc, 0);
    assert_true(found);
    assert_non_null(bytes);
    assert_int_equal(h.index, want_h->index);
    assert_int_equal(h.cmd_digest, want_h->cmd_digest);
    assert_int_equal(h.applied, want_h->applied);
    assert_memory_equal(&h.fib, &want_h->fib, sizeof(h.fib));
    assert_int_equal(got_len, len);
    if (len > 0)
        assert_memory_equal(bytes, b, len);
    free(bytes);
}

/* No snapshot in a fresh store; a put one comes back whole, after a reopen too, and a later
 * one replaces it (shorter bytes included). */
static void test_store_sm_snapshot_round_trips_and_survives_reopen(void **state)
{
    struct store *s = fx_open(*state);
    struct store_sm_snap h;
    void *bytes = (void *)1;
    size_t len = 1;
    bool found = true;
    assert_int_equal(store_load_sm_snapshot(s, &h, &bytes, &len, &found), 0);
    assert_false(found);
    assert_null(bytes);
    unsigned char *big = cmd_make(100000, 3);
    struct store_sm_snap h1 = sm_head(1), h2 = sm_head(2), h3 = sm_head(3);
    sm_put_ok(s, &h1, big, 100000);
    sm_expect(s, &h1, big, 100000);
    store_close(s);
    s = fx_open(*state);
    sm_expect(s, &h1, big, 100000);
    sm_put_ok(s, &h2, big + 5, 17);
    sm_expect(s, &h2, big + 5, 17);
    sm_put_ok(s, &h3, NULL, 0);
    store_close(s);
    s = fx_open(*state);
    sm_expect(s, &h3, NULL, 0);
    /* the batch's other records came with it */
    struct px_durable d;
    loaded_reset(&got);
    assert_int_equal(store_load(s, &d, collect, &got), 0);
    assert_int_equal(got.n, 3);
    store_close(s);
    free(big);
}

/* Writes b[0..len) through store_sm_begin / write / end in chunks of `chunk` bytes. */
static void sm_stream_put_ok(struct store *s, const struct store_sm_snap *h, const uint8_t *b,
                             size_t len, size_t chunk)
{
    assert_int_equal(store_begin(s), 0);
    put_ok(s, rec(PX_REC_DECIDED, h->index, 0, 7));
    assert_int_equal(store_sm_begin(s), 0);
    for (size_t off = 0; off < len; off += chunk)
        assert_int_equal(store_sm_write(s, b + off, len - off < chunk ? len - off : chunk), 0);
    assert_int_equal(store_sm_end(s, h), 0);
    commit_ok(s);
}

/* Reads the kept snapshot through store_sm_open / read / close in reads of `cap` bytes. */
static void sm_stream_expect(struct store *s, const struct store_sm_snap *want_h, const uint8_t *b,
                             size_t len, size_t cap)
{
    struct store_sm_snap h;
    uint64_t got_len = 0;
    bool found = false;
    int rc = store_sm_open(s, &h, &got_len, &found);
    if (rc != 0)
        print_error("store_sm_open: %s\n", store_errmsg(s));
    assert_int_equal(rc, 0);
    assert_true(found);
    assert_int_equal(h.index, want_h->index);
    assert_int_equal(h.cmd_digest, want_h->cmd_digest);
    assert_int_equal(h.applied, want_h->applied);
    assert_memory_equal(&h.fib, &want_h->fib, sizeof(h.fib));
    assert_int_equal(got_len, len);
    uint8_t *out = malloc(len + 1);
    assert_non_null(out);
    size_t have = 0;
    long n;
    while ((n = store_sm_read(s, out + have, have + cap <= len + 1 ? cap : len + 1 - have)) > 0)
        have += (size_t)n;
    assert_int_equal(n, 0);
    assert_int_equal(have, len);
    if (len > 0)
        assert_memory_equal(out, b, len);
    store_sm_close(s);
    free(out);
}

/* A snapshot written in pieces of any size is the one store_put_sm_snapshot writes: it reads back
 * whole (store_load_sm_snapshot) and in pieces (store_sm_read), after a reopen too, and one put
 * whole reads back in pieces. Lengths across a part's end (STORE_SM_PART_BYTES) and 0. */
static void test_store_sm_snapshot_streamed_in_pieces(void **state)
{
    /* shm: one record of a small test area, gathered first; the lengths shrink to fit it */
    size_t part = ((struct fx *)*state)->kind == STORE_SHM ? 16384 : STORE_SM_PART_BYTES;
    size_t len = 3 * part + 17;
    uint8_t *b = cmd_make((uint32_t)len, 11);
    struct store_sm_snap h1 = sm_head(1), h2 = sm_head(2), h3 = sm_head(3);
    struct store *s = fx_open(*state);
    sm_stream_put_ok(s, &h1, b, len, 4099);
    sm_expect(s, &h1, b, len);
    sm_stream_expect(s, &h1, b, len, 1000);
    store_close(s);
    s = fx_open(*state);
    sm_stream_expect(s, &h1, b, len, part * 2);
    /* one write of everything, and writes of a byte around a part's end */
    sm_stream_put_ok(s, &h2, b, part + 1, part + 1);
    sm_stream_expect(s, &h2, b, part + 1, 7);
    sm_put_ok(s, &h3, b + 3, part + 5);
    sm_stream_expect(s, &h3, b + 3, part + 5, 333);
    sm_stream_put_ok(s, &h1, b, 0, 1);
    sm_stream_expect(s, &h1, b, 0, 10);
    sm_expect(s, &h1, NULL, 0);
    store_close(s);
    free(b);
}

/* sqlite writes a streamed snapshot as rows of STORE_SM_PART_BYTES (the last one shorter), so a
 * large state is never one row held in memory; a damaged row fails store_sm_open before a byte
 * is handed out, and the store goes on. */
static void test_sqlite_sm_snapshot_streamed_as_bounded_rows(void **state)
{
    size_t len = 5 * (size_t)STORE_SM_PART_BYTES / 2;
    uint8_t *b = cmd_make((uint32_t)len, 12);
    struct store_sm_snap h = sm_head(4);
    struct store *s = fx_open(*state);
    sm_stream_put_ok(s, &h, b, len, 65536 + 3);
    store_close(s);
    assert_int_equal(sq_raw_int(*state, "SELECT count(*) FROM sm_part"), 3);
    assert_int_equal(sq_raw_int(*state, "SELECT max(length(bytes)) FROM sm_part"),
                     STORE_SM_PART_BYTES);
    assert_int_equal(sq_raw_int(*state, "SELECT length(bytes) FROM sm_part WHERE part = 2"),
                     STORE_SM_PART_BYTES / 2);
    sq_raw_exec(*state, "UPDATE sm_part SET bytes = x'00' || substr(bytes, 2) WHERE part = 2");
    s = fx_open(*state);
    struct store_sm_snap got_h;
    uint64_t got_len = 1;
    bool found = true;
    assert_int_equal(store_sm_open(s, &got_h, &got_len, &found), -EBADMSG);
    assert_false(found);
    assert_non_null(strstr(store_errmsg(s), "checksum mismatch"));
    store_sm_close(s); /* harmless after a failed open */
    struct px_durable d;
    loaded_reset(&got);
    assert_int_equal(store_load(s, &d, collect, &got), 0);
    store_close(s);
    free(b);
}

/* A batch that is not committed leaves the kept snapshot as it was. */
static void test_store_sm_snapshot_of_an_uncommitted_batch_is_not_kept(void **state)
{
    struct store *s = fx_open(*state);
    struct store_sm_snap h1 = sm_head(1), h2 = sm_head(2);
    sm_put_ok(s, &h1, "abc", 3);
    assert_int_equal(store_begin(s), 0);
    assert_int_equal(store_put_sm_snapshot(s, &h2, "defgh", 5), 0);
    store_close(s); /* discards the open batch */
    s = fx_open(*state);
    sm_expect(s, &h1, "abc", 3);
    store_close(s);
}

/* Bytes longer than sqlite takes in one row are split into parts and joined at load. */
static void test_sqlite_sm_snapshot_longer_than_a_row_is_split(void **state)
{
    struct store *s = fx_open(*state);
    (void)store_sq_limit_length(s, 4096);
    unsigned char *b = cmd_make(50000, 9);
    struct store_sm_snap h = sm_head(4);
    sm_put_ok(s, &h, b, 50000);
    store_close(s);
    int64_t parts = sq_raw_int(*state, "SELECT count(*) FROM sm_part");
    assert_true(parts > 10);
    s = fx_open(*state);
    sm_expect(s, &h, b, 50000);
    store_close(s);
    free(b);
}

/* A byte of a part, the index or a missing part: -EBADMSG with a line, never an abort. */
static void sm_expect_damaged(void **state, const char *sql, const char *msg)
{
    struct store *s = fx_open(*state);
    (void)store_sq_limit_length(s, 4096);
    unsigned char *b = cmd_make(20000, 5);
    struct store_sm_snap h = sm_head(5);
    sm_put_ok(s, &h, b, 20000);
    store_close(s);
    free(b);
    sq_raw_exec(*state, sql);
    s = fx_open(*state);
    struct store_sm_snap got_h;
    void *bytes = NULL;
    size_t len = 0;
    bool found = true;
    assert_int_equal(store_load_sm_snapshot(s, &got_h, &bytes, &len, &found), -EBADMSG);
    assert_false(found);
    assert_null(bytes);
    assert_non_null(strstr(store_errmsg(s), msg));
    /* the store itself stays usable */
    struct px_durable d;
    loaded_reset(&got);
    assert_int_equal(store_load(s, &d, collect, &got), 0);
    store_close(s);
}

static void test_sqlite_sm_snapshot_damaged_fails_load_with_ebadmsg(void **state)
{
    sm_expect_damaged(state, "UPDATE sm_part SET bytes = x'00' || substr(bytes, 2) WHERE part = 1",
                      "checksum mismatch");
    sm_expect_damaged(state, "UPDATE sm_state SET idx = idx + 1", "checksum mismatch");
    sm_expect_damaged(state, "DELETE FROM sm_part WHERE part = 2", "does not follow");
    sm_expect_damaged(state, "UPDATE sm_state SET fib = x'00'", "core's state");
}

/* A shm store without a command area cannot hold a snapshot: an explicit -ENOTSUP, with a
 * line. */
static void test_shm_without_a_command_area_keeps_no_sm_snapshot(void **state)
{
    fx_arena = 0;
    struct store *s = fx_open(*state);
    struct store_sm_snap h = sm_head(1);
    void *bytes = NULL;
    size_t len = 0;
    bool found = true;
    assert_int_equal(store_load_sm_snapshot(s, &h, &bytes, &len, &found), 0);
    assert_false(found);
    assert_int_equal(store_begin(s), 0);
    assert_int_equal(store_put_sm_snapshot(s, &h, "x", 1), -ENOTSUP);
    assert_non_null(strstr(store_errmsg(s), "needs a command area"));
    assert_int_equal(store_commit(s), -ENOTSUP);
    store_close(s);
    fx_arena = TEST_ARENA_BYTES;
}

/* Snapshots of 50 KB in successive batches, 1 MB through a 192 KiB area: each replaced one's
 * space comes back; the last is kept across a reopen. */
static void test_shm_replaced_sm_snapshots_give_their_space_back(void **state)
{
    unsigned char *b = cmd_make(50000, 8);
    struct store *s = fx_open(*state);
    for (uint64_t k = 1; k <= 20; k++) {
        struct store_sm_snap h = sm_head(k);
        b[0] = (unsigned char)k;
        sm_put_ok(s, &h, b, 50000);
    }
    store_close(s);
    s = fx_open(*state);
    struct store_sm_snap h = sm_head(20);
    sm_expect(s, &h, b, 50000);
    store_close(s);
    free(b);
}

/* A byte of the snapshot's record changed: -EBADMSG with a line, and the store stays usable. */
static void test_shm_damaged_sm_snapshot_fails_load_with_ebadmsg(void **state)
{
    struct fx *f = *state;
    unsigned char *b = cmd_make(20000, 5);
    struct store *s = fx_open(f);
    struct store_sm_snap h = sm_head(5);
    sm_put_ok(s, &h, b, 20000);
    store_close(s);
    unsigned char *area = (unsigned char *)f->area + store_shm_bytes(TEST_ENTRIES_MAX);
    area[32 + sizeof(struct store_sm_snap) + 700] ^= 0x10;
    s = fx_open(f);
    struct store_sm_snap got_h;
    void *bytes = NULL;
    size_t len = 0;
    bool found = true;
    assert_int_equal(store_load_sm_snapshot(s, &got_h, &bytes, &len, &found), -EBADMSG);
    assert_false(found);
    assert_null(bytes);
    assert_non_null(strstr(store_errmsg(s), "damaged: the state machine's snapshot"));
    struct px_durable d;
    loaded_reset(&got);
    assert_int_equal(store_load(s, &d, collect, &got), 0);
    store_close(s);
    free(b);
}

/* A store records the pool that made it and refuses another one. */
static void test_sqlite_store_of_another_pool_fails_with_exdev(void **state)
{
    expect_open_as(*state, 7, 1, false, 0, NULL);
    expect_open_as(*state, 7, 2, false, 0, NULL);
    expect_open_as(*state, 8, 3, false, -EXDEV, "belongs to another pool");
    expect_open_as(*state, 7, 3, false, 0, NULL); /* the refusal changed nothing */
}

/* A store opened by a later run than the opener's is refused: the opener's record is older. */
static void test_sqlite_store_of_a_later_run_fails_with_estale(void **state)
{
    expect_open_as(*state, 7, 5, false, 0, NULL);
    expect_open_as(*state, 7, 4, false, -ESTALE, "later than this run");
    expect_open_as(*state, 7, 5, false, 0, NULL);
    expect_open_as(*state, 7, 6, false, 0, NULL);
    expect_open_as(*state, 7, 5, false, -ESTALE, "run 6");
}

/* must_exist: a store that vanished is -ENOENT and is not made again. */
static void test_sqlite_must_exist_refuses_a_missing_store(void **state)
{
    char path[512];
    fx_path(*state, path, sizeof(path));
    expect_open_as(*state, 7, 1, true, -ENOENT, "missing");
    assert_int_equal(access(path, F_OK), -1);
    expect_open_as(*state, 7, 1, false, 0, NULL);
    expect_open_as(*state, 7, 1, true, 0, NULL);
}

/* peek reads what a store holds and its stamps without stamping it. */
static void test_sqlite_peek_reads_the_identity_and_position(void **state)
{
    struct fx *f = *state;
    struct store_ident id;
    char err[STORE_ERR_MAX];
    assert_int_equal(store_sqlite_peek(f->dir, TEST_NODE, TEST_NODES, false, &id, err, sizeof(err)),
                     0);
    assert_false(id.exists);
    struct store *s = NULL;
    assert_int_equal(fx_try_open_as(f, 42, 3, false, &s, err, sizeof(err)), 0);
    for (uint64_t k = 1; k <= 3; k++)
        assert_int_equal(scen_batch(s, k), 0);
    store_close(s);
    assert_int_equal(store_sqlite_peek(f->dir, TEST_NODE, TEST_NODES, false, &id, err, sizeof(err)),
                     0);
    assert_true(id.exists);
    assert_int_equal(id.pool_id, 42);
    assert_int_equal(id.epoch, 3);
    assert_int_equal(id.promised, scen_ballot(3));
    assert_true(id.hwm >= 3 * SCEN_W);
    expect_open_as(f, 42, 2, false, -ESTALE, NULL); /* peek left the epoch as it was */
}

/* Extreme values survive the packing: a decreasing instance, ballots and seqs at both ends. */
static void test_sqlite_packed_records_keep_extreme_values(void **state)
{
    struct store *s = fx_open(*state);
    struct px_rec a = rec(PX_REC_ACCEPTED, UINT64_MAX - 1, UINT64_MAX, 0);
    struct px_rec b = rec(PX_REC_ACCEPTED, 7, 0, UINT64_MAX);
    struct px_rec c = rec(PX_REC_DECIDED, UINT64_MAX, 0, 1);
    struct px_rec d = rec(PX_REC_DECIDED, 8, 0, 2);
    static const unsigned char bytes[9] = "123456789";
    a.value.client_id = UINT32_MAX; /* PX_VALUE_PAYLOAD and the largest client id */
    a.value.seq = UINT32_MAX;
    b.value.seq = 0;
    c.value.seq = UINT32_MAX;
    d.value.client_id = UINT32_MAX & ~PX_VALUE_PAYLOAD;
    d.value.seq = 0;
    assert_int_equal(store_begin(s), 0);
    assert_int_equal(store_put_cmd(s, &a, bytes, sizeof(bytes)), 0);
    put_ok(s, b);
    put_ok(s, c);
    put_ok(s, d);
    commit_ok(s);
    store_close(s);
    s = fx_open(*state);
    load_into(s, &got);
    assert_int_equal(got.n, 4);
    assert_rec_eq(&got.recs[0], &b, 0);
    assert_rec_eq(&got.recs[1], &d, 1);
    assert_rec_eq(&got.recs[2], &a, 2);
    assert_rec_eq(&got.recs[3], &c, 3);
    assert_int_equal(got.cmd_len[2], sizeof(bytes));
    assert_memory_equal(got.cmd[2], bytes, sizeof(bytes));
    store_close(s);
}

/* A packed log row whose last record is cut short is damage, named as such (in a file of an
 * older layout: its rows gain their checksums as they are, cut or not). */
static void test_sqlite_cut_packed_record_fails_load_with_ebadmsg(void **state)
{
    v2_make_store(*state, 2);
    sq_raw_exec(*state, "INSERT INTO log(kind, first, last, recs) VALUES(3, 40, 40, x'5002ff')");
    struct store *s = fx_open(*state);
    load_fails_naming(s, "cut");
    store_close(s);
}

/* ---- command bytes: both backends, then sqlite's rows (layout 5) ---- */

/* ACCEPTED and DECIDED records with commands of 0, 9 B, 4 KiB and 1 MiB come back with their
 * bytes, in the batch's open and after a reopen; the DECIDED value may differ from the
 * ACCEPTED one. */
static void test_store_commands_round_trip_with_their_records(void **state)
{
    /* shm: its test command area is smaller than 1 MiB (test_shm_command_of_16_mib_round_trips) */
    const uint32_t lens[] = {9, 4 * KIB, ((struct fx *)*state)->kind == STORE_SHM ? 60 * KIB : MIB,
                             0};
    const px_ballot_t b = px_ballot_make(3, 1);
    struct store *s = fx_open(*state);
    assert_int_equal(store_begin(s), 0);
    loaded_reset(&want);
    for (uint32_t k = 0; k < 4; k++) {
        px_inst_t inst = k + 1;
        put_cmd_ok(s, PX_REC_ACCEPTED, inst, b, lens[k], 100 + k);
        put_cmd_ok(s, PX_REC_DECIDED, inst, 0, lens[k], k == 2 ? 300 : 100 + k);
        want_cmd(&want, PX_REC_ACCEPTED, inst, b, lens[k], 100 + k);
        want_cmd(&want, PX_REC_DECIDED, inst, 0, lens[k], k == 2 ? 300 : 100 + k);
    }
    commit_ok(s);
    load_into(s, &got);
    assert_loaded_eq(&got, &want);
    store_close(s);
    s = fx_open(*state);
    load_into(s, &got);
    assert_loaded_eq(&got, &want);
    store_close(s);
}

/* Checks the one 64 MiB command against its expected bytes without a copy. */
struct big_check {
    const unsigned char *bytes;
    uint32_t seen;
};

static void big_collect(void *ctx, const struct px_rec *r, const void *cmd, uint32_t cmd_len)
{
    struct big_check *c = ctx;
    assert_int_equal(r->type, PX_REC_ACCEPTED);
    assert_int_equal(r->instance, 1);
    assert_true(has_cmd(r));
    assert_non_null(cmd);
    assert_int_equal(cmd_len, CMD_BYTES_MAX);
    assert_true(memcmp(cmd, c->bytes, cmd_len) == 0);
    c->seen++;
}

static double test_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* The largest command (CMD_BYTES_MAX, 64 MiB): commit, then load after a reopen. */
static void test_sqlite_command_of_64_mib_round_trips(void **state)
{
    unsigned char *bytes = cmd_make(CMD_BYTES_MAX, 64);
    struct px_rec r = rec_cmd(PX_REC_ACCEPTED, 1, px_ballot_make(1, 1), CMD_BYTES_MAX, 64);
    double t0 = test_now();
    struct store *s = fx_open(*state);
    assert_int_equal(store_begin(s), 0);
    assert_int_equal(store_put_cmd(s, &r, bytes, CMD_BYTES_MAX), 0);
    commit_ok(s);
    double t1 = test_now();
    store_close(s);
    double t2 = test_now();
    s = fx_open(*state);
    struct big_check c = {bytes, 0};
    struct px_durable d;
    assert_int_equal(store_load(s, &d, big_collect, &c), 0);
    assert_int_equal(c.seen, 1);
    store_close(s);
    double t3 = test_now();
    print_message("64 MiB command: put+commit %.3f s, close %.3f s, open+load %.3f s\n", t1 - t0,
                  t2 - t1, t3 - t2);
    free(bytes);
}

/* Records with and without commands, of both kinds, interleaved in one batch (the packing's
 * differences run across both), and a second batch of the same mix. */
static void test_store_batch_mixes_commands_and_inline_values(void **state)
{
    struct store *s = fx_open(*state);
    loaded_reset(&want);
    for (uint64_t k = 0; k < 2; k++) {
        px_ballot_t b = px_ballot_make(5 + k, 2);
        assert_int_equal(store_begin(s), 0);
        for (px_inst_t i = 1 + 20 * k; i <= 20 + 20 * k; i++) {
            if (i % 3 == 0) {
                put_cmd_ok(s, PX_REC_ACCEPTED, i, b, (uint32_t)(9 + 37 * i), i);
                put_cmd_ok(s, PX_REC_DECIDED, i, 0, (uint32_t)(9 + 37 * i), i);
            } else {
                put_ok(s, rec(PX_REC_ACCEPTED, i, b, i * 11));
                if (i % 2 == 0)
                    put_ok(s, rec(PX_REC_DECIDED, i, 0, i * 11));
            }
        }
        commit_ok(s);
        for (px_inst_t i = 1 + 20 * k; i <= 20 + 20 * k; i++) {
            if (i % 3 == 0) {
                want_cmd(&want, PX_REC_ACCEPTED, i, b, (uint32_t)(9 + 37 * i), i);
                want_cmd(&want, PX_REC_DECIDED, i, 0, (uint32_t)(9 + 37 * i), i);
            } else {
                want_rec(&want, PX_REC_ACCEPTED, i, b, i * 11);
                if (i % 2 == 0)
                    want_rec(&want, PX_REC_DECIDED, i, 0, i * 11);
            }
        }
    }
    store_close(s);
    s = fx_open(*state);
    load_into(s, &got);
    assert_loaded_eq(&got, &want);
    store_close(s);
}

/* A later ACCEPTED of an instance replaces the earlier one with its bytes: in a later batch, in
 * the same batch, a command by an inline value and an inline value by a command. */
static void test_store_later_accept_replaces_the_command(void **state)
{
    const px_ballot_t b1 = px_ballot_make(1, 0), b2 = px_ballot_make(2, 1);
    struct store *s = fx_open(*state);
    assert_int_equal(store_begin(s), 0);
    put_cmd_ok(s, PX_REC_ACCEPTED, 9, b1, 4 * KIB, 91);
    put_cmd_ok(s, PX_REC_ACCEPTED, 11, b1, 100, 111);
    put_ok(s, rec(PX_REC_ACCEPTED, 12, b1, 12));
    commit_ok(s);
    assert_int_equal(store_begin(s), 0);
    put_cmd_ok(s, PX_REC_ACCEPTED, 9, b2, 5000, 92);
    put_cmd_ok(s, PX_REC_ACCEPTED, 10, b1, 64, 101);
    put_cmd_ok(s, PX_REC_ACCEPTED, 10, b2, 65, 102); /* same batch: the later wins */
    put_ok(s, rec(PX_REC_ACCEPTED, 11, b2, 11));
    put_cmd_ok(s, PX_REC_ACCEPTED, 12, b2, 20, 122);
    commit_ok(s);
    store_close(s);
    s = fx_open(*state);
    loaded_reset(&want);
    want_cmd(&want, PX_REC_ACCEPTED, 9, b2, 5000, 92);
    want_cmd(&want, PX_REC_ACCEPTED, 10, b2, 65, 102);
    want_rec(&want, PX_REC_ACCEPTED, 11, b2, 11);
    want_cmd(&want, PX_REC_ACCEPTED, 12, b2, 20, 122);
    load_into(s, &got);
    assert_loaded_eq(&got, &want);
    store_close(s);
}

/* TRUNCATE drops the entries' commands with them; one put below the truncation point is
 * ignored, bytes and all. */
static void test_sqlite_truncate_drops_commands(void **state)
{
    const px_ballot_t b = px_ballot_make(1, 1);
    struct store *s = fx_open(*state);
    assert_int_equal(store_begin(s), 0);
    for (px_inst_t i = 1; i <= 10; i++) {
        put_cmd_ok(s, PX_REC_ACCEPTED, i, b, 1000 + (uint32_t)i, i);
        put_cmd_ok(s, PX_REC_DECIDED, i, 0, 1000 + (uint32_t)i, i);
    }
    commit_ok(s);
    assert_int_equal(store_begin(s), 0);
    put_ok(s, rec(PX_REC_TRUNCATE, 6, 0, 0));
    put_cmd_ok(s, PX_REC_ACCEPTED, 5, px_ballot_make(2, 1), 77, 5); /* below: dropped */
    commit_ok(s);
    loaded_reset(&want);
    want_rec(&want, PX_REC_TRUNCATE, 6, 0, 0);
    for (px_inst_t i = 7; i <= 10; i++) {
        want_cmd(&want, PX_REC_ACCEPTED, i, b, 1000 + (uint32_t)i, i);
        want_cmd(&want, PX_REC_DECIDED, i, 0, 1000 + (uint32_t)i, i);
    }
    load_into(s, &got);
    assert_loaded_eq(&got, &want);
    /* Truncating past every row deletes them all. */
    assert_int_equal(store_begin(s), 0);
    put_ok(s, rec(PX_REC_TRUNCATE, 10, 0, 0));
    commit_ok(s);
    store_close(s);
    s = fx_open(*state);
    load_into(s, &got);
    assert_int_equal(got.n, 1);
    assert_int_equal(got.recs[0].type, PX_REC_TRUNCATE);
    store_close(s);
    char path[512];
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    fx_path(*state, path, sizeof(path));
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM log", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

/* Batches with commands, closed and reopened twice, continuing in between. */
static void test_store_commands_survive_close_and_reopen(void **state)
{
    loaded_reset(&want);
    for (int round = 0; round < 3; round++) {
        struct store *s = fx_open(*state);
        if (round > 0) {
            load_into(s, &got);
            assert_loaded_eq(&got, &want);
        }
        if (round == 2) {
            store_close(s);
            break;
        }
        for (uint64_t k = 1; k <= 3; k++) {
            px_inst_t base = (px_inst_t)(round * 3 + k - 1) * 4;
            px_ballot_t b = px_ballot_make(10 + round, 1);
            assert_int_equal(store_begin(s), 0);
            for (px_inst_t i = base + 1; i <= base + 4; i++)
                put_cmd_ok(s, PX_REC_ACCEPTED, i, b, (uint32_t)(i * 97), i + 1000);
            commit_ok(s);
            for (px_inst_t i = base + 1; i <= base + 4; i++)
                want_cmd(&want, PX_REC_ACCEPTED, i, b, (uint32_t)(i * 97), i + 1000);
        }
        store_close(s);
    }
}

/* A byte of a stored command changed through sqlite (the file stays well formed): the row's
 * checksum covers the bytes, the load names the row. */
static void test_sqlite_command_byte_changed_outside_fails_load_with_ebadmsg(void **state)
{
    struct store *s = fx_open(*state);
    assert_int_equal(store_begin(s), 0);
    put_cmd_ok(s, PX_REC_ACCEPTED, 1, px_ballot_make(1, 1), 4 * KIB, 7);
    commit_ok(s);
    store_close(s);
    /* Byte 2000 of the row lies inside the 4 KiB command (the record before it is ~20 bytes). */
    sq_raw_exec(*state, "UPDATE log SET recs = cast(substr(recs, 1, 1999) ||"
                        " (CASE WHEN substr(recs, 2000, 1) = x'00' THEN x'01' ELSE x'00' END) ||"
                        " substr(recs, 2001) as blob)");
    s = fx_open(*state);
    struct px_durable d;
    loaded_reset(&got);
    assert_int_equal(store_load(s, &d, collect, &got), -EBADMSG);
    assert_int_equal(got.n, 0);
    assert_non_null(strstr(store_errmsg(s), "of table log"));
    assert_non_null(strstr(store_errmsg(s), "checksum mismatch"));
    store_close(s);
}

/* A command length that runs past its row, or over CMD_BYTES_MAX, in a row whose checksum holds
 * (a file of an older layout gains the checksums of its rows as they are): -EBADMSG naming the
 * file and the row. recs: instance 40, ballot 1, increment 0, client id 1 | PX_VALUE_PAYLOAD,
 * seq 0, then the length varint and three bytes. */
static void sq_bad_length_fails_load(struct fx *f, const char *len_hex, const char *words)
{
    char sql[256], path[512];
    v2_make_store(f, 2);
    snprintf(sql, sizeof(sql),
             "INSERT INTO log(kind, first, last, recs) VALUES(3, 40, 40,"
             " x'5002' || x'0000000000000000' || x'8180808008' || x'00' || x'%s' || x'616263')",
             len_hex);
    sq_raw_exec(f, sql);
    struct store *s = fx_open(f);
    struct px_durable d;
    loaded_reset(&got);
    assert_int_equal(store_load(s, &d, collect, &got), -EBADMSG);
    fx_path(f, path, sizeof(path));
    if (strstr(store_errmsg(s), words) == NULL)
        print_error("load: '%s'\n", store_errmsg(s));
    assert_non_null(strstr(store_errmsg(s), path));
    assert_non_null(strstr(store_errmsg(s), "of table log (instances 40..40)"));
    assert_non_null(strstr(store_errmsg(s), words));
    store_close(s);
}

static void test_sqlite_command_running_past_its_row_fails_load_with_ebadmsg(void **state)
{
    sq_bad_length_fails_load(*state, "04", "the command of instance 40 runs past the end");
}

static void test_sqlite_command_longer_than_the_maximum_fails_load_with_ebadmsg(void **state)
{
    /* CMD_BYTES_MAX + 1 = 2^26 + 1 */
    sq_bad_length_fails_load(*state, "81808020", "is longer than CMD_BYTES_MAX");
}

/* A batch whose records would make a row longer than sqlite takes is split into rows of the
 * same kind (sqlite's limit lowered on this connection to try it); a command longer than one
 * row is -EMSGSIZE. */
static void test_sqlite_batch_longer_than_a_row_is_split(void **state)
{
    const px_ballot_t b = px_ballot_make(4, 1);
    const int limit = 64 * (int)KIB;
    struct store *s = fx_open(*state);
    assert_true(store_sq_limit_length(s, limit) >= (int)CMD_BYTES_MAX + 4096);
    assert_int_equal(store_begin(s), 0);
    loaded_reset(&want);
    for (px_inst_t i = 1; i <= 60; i++) {
        uint32_t len = i % 4 == 0 ? 8 : (uint32_t)(3 * KIB + i);
        if (i % 4 == 0) {
            put_ok(s, rec(PX_REC_ACCEPTED, i, b, i));
            want_rec(&want, PX_REC_ACCEPTED, i, b, i);
        } else {
            put_cmd_ok(s, PX_REC_ACCEPTED, i, b, len, i);
            want_cmd(&want, PX_REC_ACCEPTED, i, b, len, i);
        }
        put_cmd_ok(s, PX_REC_DECIDED, i, 0, 2 * KIB, i + 500);
        want_cmd(&want, PX_REC_DECIDED, i, 0, 2 * KIB, i + 500);
    }
    put_cmd_ok(s, PX_REC_ACCEPTED, 7, px_ballot_make(5, 1), 100, 777); /* a later row wins */
    want.recs[12] = rec_cmd(PX_REC_ACCEPTED, 7, px_ballot_make(5, 1), 100, 777);
    free(want.cmd[12]);
    want.cmd[12] = cmd_make(100, 777);
    want.cmd_len[12] = 100;
    commit_ok(s);
    load_into(s, &got);
    assert_loaded_eq(&got, &want);
    /* One command longer than a row fits nowhere. */
    assert_int_equal(store_begin(s), 0);
    unsigned char *big = cmd_make((uint32_t)limit, 1);
    struct px_rec r = rec_cmd(PX_REC_ACCEPTED, 61, b, (uint32_t)limit, 1);
    assert_int_equal(store_put_cmd(s, &r, big, (uint32_t)limit), -EMSGSIZE);
    assert_non_null(strstr(store_errmsg(s), "does not fit in one log row"));
    free(big);
    store_close(s);
    /* Several rows of each kind; the reopened store (sqlite's own limit) reads them all. */
    char path[512];
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    fx_path(*state, path, sizeof(path));
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT sum(kind = 3), sum(kind = 4), max(length(recs))"
                                        " FROM log",
                                        -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_true(sqlite3_column_int(st, 0) >= 3);
    assert_true(sqlite3_column_int(st, 1) >= 2);
    assert_true(sqlite3_column_int(st, 2) <= limit);
    sqlite3_finalize(st);
    sqlite3_close(db);
    s = fx_open(*state);
    load_into(s, &got);
    assert_loaded_eq(&got, &want);
    store_close(s);
}

/* A file of layout 4 (the release before commands) or 5 (the core's state with the Fibonacci
 * value) opens as it is, less the value, and is raised to 6; it then takes commands. */
static void sq_old_layout_opens_and_is_raised_to_6(struct fx *f, int version)
{
    sq_make_store(f, 3);
    sq_make_old_layout(f, version, 3);
    struct store *s = fx_open(f);
    /* its snapshots' digests were chained the old way: its nodes go on so */
    assert_int_equal(store_sm_digest_version(s), 1);
    load_into(s, &got);
    scen_expect(3, &want);
    assert_loaded_eq(&got, &want);
    assert_int_equal(store_begin(s), 0);
    put_cmd_ok(s, PX_REC_ACCEPTED, 49, scen_ballot(3), 300, 49);
    commit_ok(s);
    store_close(s);
    assert_int_equal(sq_layout_version(f), 6);
    assert_int_equal(sq_raw_int(f, "SELECT length(fib) FROM paxos_state"),
                     sizeof(struct px_history));
    want_cmd(&want, PX_REC_ACCEPTED, 49, scen_ballot(3), 300, 49);
    s = fx_open(f);
    assert_int_equal(store_sm_digest_version(s), 1); /* for good, not only at the upgrade */
    load_into(s, &got);
    assert_loaded_eq(&got, &want);
    store_close(s);
}

static void test_sqlite_layout_4_store_opens_and_is_raised_to_6(void **state)
{
    sq_old_layout_opens_and_is_raised_to_6(*state, 4);
}

static void test_sqlite_layout_5_store_opens_and_is_raised_to_6(void **state)
{
    sq_old_layout_opens_and_is_raised_to_6(*state, 5);
}

/* The old state row is checked under its own checksum before the value leaves it: a byte of it
 * changed outside (the history's, behind the value) fails the open, naming layout 5. */
static void test_sqlite_layout_5_state_row_changed_outside_fails_open_with_ebadmsg(void **state)
{
    sq_make_store(*state, 2);
    sq_make_old_layout(*state, 5, 2);
    sq_raw_exec(*state, "UPDATE paxos_state SET fib = cast(substr(fib, 1, 8) || x'00' ||"
                        " substr(fib, 10) as blob)");
    sq_expect_open_fails(*state, TEST_NODES, -EBADMSG, "layout 5");
}

/* A main job's file of layout 5 (store_params.job) keeps its Fibonacci value as the snapshot
 * of the main job's state machine (8 bytes, little endian) at the applied index; another's
 * (a library pool's, which kept its state machine's own snapshots) gets none. */
static void test_sqlite_layout_5_main_job_store_keeps_its_value_as_a_snapshot(void **state)
{
    struct fx *f = *state;
    for (int job = 0; job <= 1; job++) {
        sq_make_store(f, 3);
        struct px_history hist = fib_of(3);
        hist.applied = 48;
        hist.requests = 47;
        const uint64_t value = UINT64_C(0x0123456789abcdef);
        unsigned char old[OLD_FIB_BYTES];
        memcpy(old, &value, 8);
        memcpy(old + 8, &hist, sizeof(hist));
        sq_make_old_layout_fib(f, 5, old);
        struct store_params p = {.kind = STORE_SQLITE,
                                 .dir = f->dir,
                                 .node_id = TEST_NODE,
                                 .nodes = TEST_NODES,
                                 .sync = STORE_SYNC_NORMAL,
                                 .job = job != 0};
        char err[STORE_ERR_MAX];
        struct store *s = NULL;
        for (int open = 0; open < 2; open++) { /* the second open finds layout 6 */
            assert_int_equal(store_open(&p, &s, err, sizeof(err)), 0);
            struct store_sm_snap h;
            void *bytes = NULL;
            size_t len = 0;
            bool found = false;
            assert_int_equal(store_load_sm_snapshot(s, &h, &bytes, &len, &found), 0);
            assert_int_equal(found, job != 0);
            if (job) {
                const unsigned char le[8] = {0xef, 0xcd, 0xab, 0x89, 0x67, 0x45, 0x23, 0x01};
                assert_int_equal(h.index, 48);
                assert_int_equal(h.applied, 47);
                assert_memory_equal(&h.fib, &hist, sizeof(hist));
                assert_int_equal(len, 8);
                assert_memory_equal(bytes, le, 8);
            }
            free(bytes);
            load_into(s, &got);
            assert_memory_equal(&got.d.fib, &hist, sizeof(hist)); /* the value left the row */
            store_close(s);
        }
        assert_int_equal(sq_layout_version(f), 6);
        fx_rmdir(f->dir);
        assert_int_equal(mkdir(f->dir, 0700), 0);
    }
}

static void test_sqlite_database_of_another_program_fails_with_eproto(void **state)
{
    sq_raw_exec(*state, "CREATE TABLE t(x); INSERT INTO t VALUES(1)");
    sq_expect_open_fails(*state, TEST_NODES, -EPROTO, "not a paxos-shm store");
}

static void test_sqlite_other_pool_size_fails_with_einval(void **state)
{
    sq_make_store(*state, 1);
    sq_expect_open_fails(*state, TEST_NODES + 2, -EINVAL,
                         "made with nodes = 3, opened with nodes = 5");
}

static void test_sqlite_missing_dir_fails_with_enoent(void **state)
{
    struct fx *f = *state;
    char err[STORE_ERR_MAX], dir[300];
    struct store *s = NULL;
    snprintf(dir, sizeof(dir), "%s/missing", f->dir);
    struct store_params p = {.kind = STORE_SQLITE, .dir = dir, .node_id = 0, .nodes = 1};
    assert_int_equal(store_open(&p, &s, err, sizeof(err)), -ENOENT);
    assert_non_null(strstr(err, dir));
    assert_non_null(strstr(err, "No such file or directory"));
}

static void test_sqlite_dir_under_a_regular_file_fails_with_enotdir(void **state)
{
    /* Tests run as root, which ignores permission bits: a path through a regular file is the
     * directory no one can create files in. */
    struct fx *f = *state;
    char err[STORE_ERR_MAX], file[300], dir[320];
    struct store *s = NULL;
    snprintf(file, sizeof(file), "%s/plain", f->dir);
    snprintf(dir, sizeof(dir), "%s/sub", file);
    FILE *fp = fopen(file, "w");
    assert_non_null(fp);
    assert_int_equal(fclose(fp), 0);
    struct store_params p = {.kind = STORE_SQLITE, .dir = file, .node_id = 0, .nodes = 1};
    assert_int_equal(store_open(&p, &s, err, sizeof(err)), -ENOTDIR);
    assert_non_null(strstr(err, file));
    p.dir = dir;
    assert_int_equal(store_open(&p, &s, err, sizeof(err)), -ENOTDIR);
    assert_non_null(strstr(err, "Not a directory"));
    assert_int_equal(store_registry_open(dir, 1, STORE_SYNC_NORMAL,
                                         &(struct store_registry *){NULL}, err, sizeof(err)),
                     -ENOTDIR);
}

/* Child in a private mount namespace (it dies with the child: nothing is left mounted): a
 * read-only tmpfs is a directory even root cannot write. Exit 0: -EROFS with a clear line;
 * 77: the sandbox does not allow mounts (the test is skipped). */
static void read_only_dir_child(struct fx *f)
{
    char dir[300], err[STORE_ERR_MAX];
    struct store *s = NULL;
    snprintf(dir, sizeof(dir), "%s/ro", f->dir);
    if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
        _exit(77);
    if (mount("store-test", dir, "tmpfs", MS_RDONLY, "size=64k") != 0)
        _exit(77);
    struct store_params p = {.kind = STORE_SQLITE, .dir = dir, .node_id = 0, .nodes = 1};
    int rc = store_open(&p, &s, err, sizeof(err));
    if (rc != -EROFS || strstr(err, dir) == NULL ||
        strstr(err, "data directory is not writable: Read-only file system") == NULL) {
        fprintf(stderr, "rc %d: %s\n", rc, err);
        _exit(1);
    }
    _exit(0);
}

static void test_sqlite_read_only_dir_fails_with_erofs(void **state)
{
    struct fx *f = *state;
    char dir[300];
    snprintf(dir, sizeof(dir), "%s/ro", f->dir);
    assert_int_equal(mkdir(dir, 0700), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        read_only_dir_child(f);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    if (WEXITSTATUS(status) == 77)
        skip();
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* Child: RLIMIT_FSIZE caps the files (writes fail with EFBIG, SIGXFSZ ignored); the batches
 * go on until one fails. Exit 0 when that failure is -ENOSPC with a clear line. */
static void full_disk_child(struct fx *f)
{
    struct store *s = NULL;
    char err[STORE_ERR_MAX], path[512];
    struct rlimit lim = {.rlim_cur = 256 * 1024, .rlim_max = 256 * 1024};
    if (signal(SIGXFSZ, SIG_IGN) == SIG_ERR || setrlimit(RLIMIT_FSIZE, &lim) != 0)
        _exit(30);
    if (fx_try_open(f, TEST_NODES, &s, err, sizeof(err)) != 0)
        _exit(31);
    int rc = 0;
    uint64_t k = 1;
    for (; rc == 0 && k < 100000; k++)
        rc = scen_batch(s, k);
    if (k <= 2)
        _exit(32); /* not even one batch fitted */
    fx_path(f, path, sizeof(path));
    if (rc != -ENOSPC || strstr(store_errmsg(s), path) == NULL ||
        strstr(store_errmsg(s), "disk full or file size limit reached") == NULL) {
        fprintf(stderr, "rc %d: %s\n", rc, store_errmsg(s));
        _exit(33);
    }
    store_close(s);
    _exit(0);
}

static void test_sqlite_full_disk_fails_with_enospc_and_keeps_committed_state(void **state)
{
    struct fx *f = *state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        full_disk_child(f);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    struct store *s = fx_open(f); /* without the limit: a consistent committed prefix */
    load_into(s, &got);
    assert_true(got.d.fib.requests >= 1);
    scen_expect(got.d.fib.requests, &want);
    assert_loaded_eq(&got, &want);
    store_close(s);
}

static void test_sqlite_second_open_of_a_held_file_fails_with_ebusy(void **state)
{
    char err[STORE_ERR_MAX];
    struct store *s = fx_open(*state), *s2 = NULL;
    assert_int_equal(scen_batch(s, 1), 0); /* the first write takes the exclusive lock */
    assert_int_equal(fx_try_open(*state, TEST_NODES, &s2, err, sizeof(err)), -EBUSY);
    assert_non_null(strstr(err, "held by another process"));
    store_close(s);
}

/* A link in place of a store file (or a companion) would make sqlite write at its target,
 * outside the data directory: refused with -ELOOP, the target neither created nor written. */
static void expect_link_refused(struct fx *f, const char *name, bool target_exists)
{
    char err[STORE_ERR_MAX], target[300], link[300];
    struct store *s = NULL;
    struct store_registry *r = NULL;
    snprintf(target, sizeof(target), "%s/outside-target", f->dir);
    snprintf(link, sizeof(link), "%s/%s", f->dir, name);
    if (target_exists) {
        FILE *fp = fopen(target, "w");
        assert_non_null(fp);
        assert_int_equal(fclose(fp), 0);
    }
    assert_int_equal(symlink(target, link), 0);
    struct store_params p = {.kind = STORE_SQLITE, .dir = f->dir, .node_id = 1, .nodes = 3};
    int rc = strncmp(name, "registry", 8) == 0
                 ? store_registry_open(f->dir, 3, STORE_SYNC_NORMAL, &r, err, sizeof(err))
                 : store_open(&p, &s, err, sizeof(err));
    assert_int_equal(rc, -ELOOP);
    assert_null(s);
    assert_null(r);
    assert_non_null(strstr(err, link));
    assert_non_null(strstr(err, "symbolic link"));
    assert_int_equal(store_sqlite_check_files(f->dir, 3, err, sizeof(err)), -ELOOP);
    assert_non_null(strstr(err, link));
    struct stat st;
    if (target_exists) {
        assert_int_equal(stat(target, &st), 0);
        assert_int_equal(st.st_size, 0);
        assert_int_equal(unlink(target), 0);
    } else {
        assert_int_equal(stat(target, &st), -1);
    }
    assert_int_equal(unlink(link), 0);
}

static void test_sqlite_store_file_that_is_a_symlink_fails_with_eloop(void **state)
{
    expect_link_refused(*state, "node-1.db", false);
    expect_link_refused(*state, "node-1.db", true);
    expect_link_refused(*state, "registry.db", false);
    expect_link_refused(*state, "registry.db", true);
}

static void test_sqlite_companion_that_is_a_symlink_fails_with_eloop(void **state)
{
    expect_link_refused(*state, "node-1.db-wal", false);
    expect_link_refused(*state, "node-1.db-shm", false);
    expect_link_refused(*state, "node-1.db-journal", false);
    expect_link_refused(*state, "registry.db-wal", false);
    expect_link_refused(*state, "registry.db-shm", false);
}

static void test_sqlite_dir_reached_through_a_symlink_opens(void **state)
{
    struct fx *f = *state;
    char err[STORE_ERR_MAX], real[300], link[300];
    struct store *s = NULL;
    struct store_registry *r = NULL;
    snprintf(real, sizeof(real), "%s/real", f->dir);
    snprintf(link, sizeof(link), "%s/link", f->dir);
    assert_int_equal(mkdir(real, 0755), 0);
    assert_int_equal(symlink(real, link), 0);
    struct store_params p = {.kind = STORE_SQLITE, .dir = link, .node_id = 0, .nodes = 1};
    assert_int_equal(store_open(&p, &s, err, sizeof(err)), 0);
    store_close(s);
    assert_int_equal(store_registry_open(link, 1, STORE_SYNC_NORMAL, &r, err, sizeof(err)), 0);
    store_registry_close(r);
    assert_int_equal(store_sqlite_check_files(link, 1, err, sizeof(err)), 0);
    struct stat st;
    assert_int_equal(stat(real, &st), 0);
    char file[320];
    snprintf(file, sizeof(file), "%s/node-0.db", real);
    assert_int_equal(lstat(file, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(unlink(link), 0);
    fx_rmdir(real);
}

/* ---- registry ---- */

/* The registry makes a pool id once and keeps it; what it knows of a store only rises. */
static void test_registry_pool_id_and_known_stores(void **state)
{
    struct fx *f = *state;
    char err[STORE_ERR_MAX];
    struct store_registry *r = NULL;
    struct store_known k;
    assert_int_equal(store_registry_open(f->dir, 4, STORE_SYNC_NORMAL, &r, err, sizeof(err)), 0);
    assert_true(store_registry_fresh(r));
    int64_t id = store_registry_pool_id(r);
    assert_true(id > 0);
    assert_int_equal(store_registry_known(r, 1, &k), 0);
    assert_false(k.found);
    assert_int_equal(store_registry_know(r, 1, 10, 500), 0);
    assert_int_equal(store_registry_know(r, 1, 9, 700), 0); /* promised never goes down */
    store_registry_close(r);
    assert_int_equal(store_registry_open(f->dir, 4, STORE_SYNC_NORMAL, &r, err, sizeof(err)), 0);
    assert_false(store_registry_fresh(r));
    assert_int_equal(store_registry_pool_id(r), id);
    assert_int_equal(store_registry_known(r, 1, &k), 0);
    assert_true(k.found);
    assert_int_equal(k.promised, 10);
    assert_int_equal(k.hwm, 700);
    store_registry_close(r);
}

static void test_registry_round_trip_and_reopen(void **state)
{
    struct fx *f = *state;
    char err[STORE_ERR_MAX];
    struct store_registry *r = NULL;
    struct store_node_info n;
    assert_int_equal(store_registry_open(f->dir, 4, STORE_SYNC_NORMAL, &r, err, sizeof(err)), 0);
    assert_int_equal(store_registry_get(r, 2, &n), -ENOENT);
    assert_non_null(strstr(store_registry_errmsg(r), "registry.db: node 2 not registered"));
    assert_int_equal(store_registry_update(r, 2, 5, 1234, 1, 0, 1000), 0);
    assert_int_equal(store_registry_update(r, 2, 7, 4321, 2, 1, INT64_MAX), 0);
    assert_int_equal(store_registry_update(r, 3, 2, 99, 1, 0, 5), 0);
    store_registry_close(r);
    assert_int_equal(store_registry_open(f->dir, 4, STORE_SYNC_NORMAL, &r, err, sizeof(err)), 0);
    assert_int_equal(store_registry_get(r, 2, &n), 0);
    assert_int_equal(n.roles, 7);
    assert_int_equal(n.pid, 4321);
    assert_int_equal(n.incarnation, 2);
    assert_int_equal(n.restarts, 1);
    assert_int_equal(n.last_activity_ms, INT64_MAX);
    assert_int_equal(store_registry_get(r, 3, &n), 0);
    assert_int_equal(n.pid, 99);
    store_registry_close(r);
    assert_int_equal(store_registry_open(f->dir, 5, STORE_SYNC_NORMAL, &r, err, sizeof(err)),
                     -EINVAL);
    assert_non_null(strstr(err, "registry.db: the store was made with nodes = 4"));
}

static void test_registry_runs_keep_the_client_record_across_reopen(void **state)
{
    struct fx *f = *state;
    char err[STORE_ERR_MAX];
    struct store_registry *r = NULL;
    struct store_run last;
    assert_int_equal(store_registry_open(f->dir, 3, STORE_SYNC_FULL, &r, err, sizeof(err)), 0);
    assert_int_equal(store_registry_run_last(r, &last), -ENOENT);
    struct store_run run = {.started_ms = 10, .rounds = 5000, .submitted = 4096, .decided = 0};
    assert_int_equal(store_registry_run_begin(r, &run), 0);
    assert_int_equal(run.id, 1);
    run.submitted = 5000;
    run.decided = 4321;
    run.done = 4400;
    store_registry_close(r);
    assert_int_equal(store_registry_open(f->dir, 3, STORE_SYNC_FULL, &r, err, sizeof(err)), 0);
    assert_int_equal(store_registry_run_update(r, &run), 0);
    assert_int_equal(store_registry_run_last(r, &last), 0);
    assert_int_equal(last.id, 1);
    assert_int_equal(last.started_ms, 10);
    assert_int_equal(last.ended_ms, 0);
    assert_int_equal(last.rounds, 5000);
    assert_int_equal(last.submitted, 5000);
    assert_int_equal(last.decided, 4321);
    assert_int_equal(last.done, 4400);
    assert_string_equal(last.outcome, "");
    struct store_run next = {.started_ms = 20,
                             .rounds = 7,
                             .in_doubt = 679,
                             .base = 5000,
                             .submitted = 5000,
                             .decided = 4321};
    assert_int_equal(store_registry_run_begin(r, &next), 0);
    assert_int_equal(next.id, 2);
    next.decided = 5007;
    next.submitted = 5007;
    next.ended_ms = 30;
    snprintf(next.outcome, sizeof(next.outcome), "VERIFIED");
    assert_int_equal(store_registry_run_update(r, &next), 0);
    store_registry_close(r);
    assert_int_equal(store_registry_open(f->dir, 3, STORE_SYNC_NORMAL, &r, err, sizeof(err)), 0);
    assert_int_equal(store_registry_run_last(r, &last), 0);
    assert_int_equal(last.id, 2);
    assert_int_equal(last.in_doubt, 679);
    assert_int_equal(last.base, 5000);
    assert_int_equal(last.decided, 5007);
    assert_int_equal(last.ended_ms, 30);
    assert_string_equal(last.outcome, "VERIFIED");
    store_registry_close(r);
}

static void test_registry_of_a_build_without_a_client_record_fails_with_eproto(void **state)
{
    /* What an earlier build left: meta and nodes, no runs table. */
    struct fx *f = *state;
    char err[STORE_ERR_MAX], path[300];
    struct store_registry *r = NULL;
    snprintf(path, sizeof(path), "%s/registry.db", f->dir);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "CREATE TABLE meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
                                  "INSERT INTO meta VALUES('layout_version', 2);"
                                  "INSERT INTO meta VALUES('nodes', 3);"
                                  "CREATE TABLE nodes(id INTEGER PRIMARY KEY, roles INTEGER);",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(store_registry_open(f->dir, 3, STORE_SYNC_NORMAL, &r, err, sizeof(err)),
                     -EPROTO);
    assert_null(r);
    assert_non_null(strstr(err, "registry.db: written by an earlier build"));
}

#define ON(t, f, tag)                                                                              \
    {                                                                                              \
        .name = #t " [" tag "]", .test_func = t, .setup_func = fx_setup,                           \
        .teardown_func = fx_teardown, .initial_state = &f                                          \
    }
#define SQLITE(t) ON(t, fx_sqlite, "sqlite")
#define SHM(t)    ON(t, fx_shm, "shm")
/* The contract tests, run on each backend. */
#define CONTRACT(B)                                                                                \
    B(test_store_fresh_store_loads_zero_state_and_no_entries),                                     \
        B(test_store_round_trip_of_every_record_type),                                             \
        B(test_store_later_accept_of_an_instance_replaces_the_earlier),                            \
        B(test_store_reload_after_close_keeps_every_committed_batch),                              \
        B(test_store_close_discards_the_open_batch),                                               \
        B(test_store_uncommitted_batch_is_not_visible_after_crash),                                \
        B(test_store_batch_after_crash_does_not_revive_the_dead_batch),                            \
        B(test_store_truncate_drops_entries_at_or_below_its_instance),                             \
        B(test_store_promised_ballot_survives_batches_without_a_promise),                          \
        B(test_store_kill_at_random_moments_leaves_a_committed_prefix),                            \
        B(test_store_put_of_a_value_with_a_command_fails_with_einval),                             \
        B(test_store_put_cmd_of_bad_arguments_fails_with_einval),                                  \
        B(test_store_commands_round_trip_with_their_records),                                      \
        B(test_store_batch_mixes_commands_and_inline_values),                                      \
        B(test_store_later_accept_replaces_the_command),                                           \
        B(test_store_commands_survive_close_and_reopen),                                           \
        B(test_store_sm_snapshot_round_trips_and_survives_reopen),                                 \
        B(test_store_sm_snapshot_streamed_in_pieces),                                              \
        B(test_store_sm_snapshot_of_an_uncommitted_batch_is_not_kept)

/* Usage: test_store [sqlite|shm] (default: both). */
int main(int argc, char **argv)
{
    const char *seed = getenv("PX_TEST_SEED");
    const char *which = argc > 1 ? argv[1] : "";
    if (seed != NULL)
        test_seed = strtoull(seed, NULL, 0);
    printf("store tests: seed %#llx (PX_TEST_SEED)\n", (unsigned long long)test_seed);
    const struct CMUnitTest on_sqlite[] = {
        CONTRACT(SQLITE),
        SQLITE(test_sqlite_damaged_header_fails_with_ebadmsg),
        SQLITE(test_sqlite_damaged_table_page_fails_with_ebadmsg),
        SQLITE(test_sqlite_file_that_is_not_a_database_fails_with_ebadmsg),
        SQLITE(test_sqlite_other_layout_version_fails_with_eproto),
        SQLITE(test_sqlite_database_of_another_program_fails_with_eproto),
        SQLITE(test_sqlite_layout_2_store_loads_and_continues_in_layout_6),
        SQLITE(test_sqlite_packed_records_keep_extreme_values),
        SQLITE(test_sqlite_cut_packed_record_fails_load_with_ebadmsg),
        SQLITE(test_sqlite_command_of_64_mib_round_trips),
        SQLITE(test_sqlite_truncate_drops_commands),
        SQLITE(test_sqlite_command_byte_changed_outside_fails_load_with_ebadmsg),
        SQLITE(test_sqlite_command_running_past_its_row_fails_load_with_ebadmsg),
        SQLITE(test_sqlite_command_longer_than_the_maximum_fails_load_with_ebadmsg),
        SQLITE(test_sqlite_batch_longer_than_a_row_is_split),
        SQLITE(test_sqlite_layout_4_store_opens_and_is_raised_to_6),
        SQLITE(test_sqlite_layout_5_store_opens_and_is_raised_to_6),
        SQLITE(test_sqlite_layout_5_state_row_changed_outside_fails_open_with_ebadmsg),
        SQLITE(test_sqlite_layout_5_main_job_store_keeps_its_value_as_a_snapshot),
        SQLITE(test_sqlite_state_row_changed_outside_fails_open_with_ebadmsg),
        SQLITE(test_sqlite_promise_changed_outside_fails_open_with_ebadmsg),
        SQLITE(test_sqlite_log_row_changed_outside_fails_load_with_ebadmsg),
        SQLITE(test_sqlite_log_row_added_outside_fails_load_with_ebadmsg),
        SQLITE(test_sqlite_sm_snapshot_longer_than_a_row_is_split),
        SQLITE(test_sqlite_sm_snapshot_streamed_as_bounded_rows),
        SQLITE(test_sqlite_sm_snapshot_damaged_fails_load_with_ebadmsg),
        SQLITE(test_sqlite_store_of_another_pool_fails_with_exdev),
        SQLITE(test_sqlite_store_of_a_later_run_fails_with_estale),
        SQLITE(test_sqlite_must_exist_refuses_a_missing_store),
        SQLITE(test_sqlite_peek_reads_the_identity_and_position),
        SQLITE(test_sqlite_other_pool_size_fails_with_einval),
        SQLITE(test_sqlite_missing_dir_fails_with_enoent),
        SQLITE(test_sqlite_dir_under_a_regular_file_fails_with_enotdir),
        SQLITE(test_sqlite_read_only_dir_fails_with_erofs),
        SQLITE(test_sqlite_full_disk_fails_with_enospc_and_keeps_committed_state),
        SQLITE(test_sqlite_second_open_of_a_held_file_fails_with_ebusy),
        SQLITE(test_sqlite_store_file_that_is_a_symlink_fails_with_eloop),
        SQLITE(test_sqlite_companion_that_is_a_symlink_fails_with_eloop),
        SQLITE(test_sqlite_dir_reached_through_a_symlink_opens),
        SQLITE(test_registry_round_trip_and_reopen),
        SQLITE(test_registry_pool_id_and_known_stores),
        SQLITE(test_registry_runs_keep_the_client_record_across_reopen),
        SQLITE(test_registry_of_a_build_without_a_client_record_fails_with_eproto),
    };
    const struct CMUnitTest on_shm[] = {
        CONTRACT(SHM),
        SHM(test_shm_instance_beyond_the_ring_fails_with_enospc_and_keeps_old_state),
        SHM(test_shm_area_of_other_pool_size_fails_with_einval),
        SHM(test_shm_area_of_other_layout_version_fails_with_eproto),
        SHM(test_shm_damaged_area_fails_with_ebadmsg),
        SHM(test_shm_unaligned_or_small_area_fails_with_einval),
        SHM(test_shm_without_a_command_area_refuses_commands_with_emsgsize),
        SHM(test_shm_command_area_wraps_and_gives_space_back),
        SHM(test_shm_full_command_area_fails_with_enospc_and_keeps_old_state),
        SHM(test_shm_same_command_accepted_again_takes_no_new_space),
        SHM(test_shm_damaged_command_byte_fails_load_with_ebadmsg),
        SHM(test_shm_command_of_16_mib_round_trips),
        SHM(test_shm_without_a_command_area_keeps_no_sm_snapshot),
        SHM(test_shm_replaced_sm_snapshots_give_their_space_back),
        SHM(test_shm_damaged_sm_snapshot_fails_load_with_ebadmsg),
    };
    int failed = 0;
    if (strcmp(which, "shm") != 0)
        failed += cmocka_run_group_tests_name("store_sqlite", on_sqlite, NULL, NULL);
    if (strcmp(which, "sqlite") != 0)
        failed += cmocka_run_group_tests_name("store_shm", on_shm, NULL, NULL);
    return failed;
}
